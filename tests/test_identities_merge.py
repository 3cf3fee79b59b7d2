"""Identities (keyed hashes only) and merging two member ids, on SQLite and PostgreSQL."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, inspect, text

from loyaltycore.errors import ConfigurationError, EventInputError
from loyaltycore.schema import database_url
from plugins import support

PHONE = "+86 138-0013-8000"


@pytest.fixture
def engine(db_url, monkeypatch):
    monkeypatch.setenv("LOYALTY_SECRET", "group-secret-for-tests")
    e = support.open_db(db_url)
    yield e
    e.close()


def _all_text(url: str) -> str:
    """Every value of every table, as one string (to look for what must not be there)."""
    eng = create_engine(database_url(url))
    out = []
    with eng.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                out.append(" ".join(str(v) for v in row))
    eng.dispose()
    return "\n".join(out)


def test_identity_resolves_events_and_is_stored_only_as_a_keyed_hash(engine, db_url, ev):
    engine.link_identity("M1", "phone", PHONE)
    assert engine.find_member("phone", "+8613800138000") == "M1"  # same number, other spelling
    assert engine.find_member("phone", "+8613800138001") is None
    raw = ev.purchase("300", at="2026-03-02")
    del raw["member"]
    receipt = engine.process({**raw, "identity": {"kind": "phone", "value": PHONE}})
    assert receipt.member == "M1" and receipt.accepted
    dump = _all_text(db_url)
    assert "13800138000" not in dump and "0013" not in dump
    assert "M1" in dump


def test_unknown_identity_is_refused_without_echoing_it(engine, ev):
    raw = ev.purchase("300", at="2026-03-02")
    del raw["member"]
    with pytest.raises(EventInputError) as info:
        engine.process({**raw, "identity": {"kind": "phone", "value": PHONE}})
    assert "13800138000" not in str(info.value) and "identity" in str(info.value)


def test_an_identity_cannot_belong_to_two_members(engine):
    engine.link_identity("M1", "card", "6222 0000 1111")
    with pytest.raises(ConfigurationError, match="already belongs to member M1"):
        engine.link_identity("M2", "card", "6222-0000-1111")


def test_identities_need_the_group_secret(db_url, monkeypatch):
    monkeypatch.delenv("LOYALTY_SECRET", raising=False)
    e = support.open_db(db_url)
    with pytest.raises(ConfigurationError, match="LOYALTY_SECRET"):
        e.link_identity("M1", "card", "1")
    e.close()


def test_merge_moves_balances_lots_qualification_history_and_later_events(engine, ev):
    # A: 1000 CNY -> 1000 base + 200 first-purchase bonus = 1200 pending (7-day window).
    a1 = engine.process(ev.purchase("1000", at="2026-03-02", member="A"))
    # B: 500 CNY -> 500 + 200 = 700 pending.
    b1 = engine.process(ev.purchase("500", at="2026-03-03", member="B"))
    assert (a1.pending_points, b1.pending_points) == (1200, 700)
    engine.link_identity("B", "card", "B-CARD")
    engine.merge("A", "B", reason="same person, CRM ticket 42",
                 at=datetime(2026, 3, 4, tzinfo=UTC))
    after = engine.member("A", at=datetime(2026, 3, 5, tzinfo=UTC))
    assert (after.available, after.pending) == (0, 1900)
    assert after.qualification.credits["spend"] == 1500
    assert engine.member("B", at=datetime(2026, 3, 5, tzinfo=UTC)).id == "A"
    assert engine.find_member("card", "B-CARD") == "A"
    # Later events under the absorbed id land on the survivor; resubmitting B's old event
    # is recognised as a duplicate (its receipt moved with it).
    later = engine.process(ev.purchase("100", at="2026-03-20", member="B"))
    assert later.member == "A"
    again = engine.process(ev.purchase("500", id=b1.event_id, at="2026-03-03", member="B"))
    assert again.model_dump(mode="json") == b1.model_dump(mode="json")
    # B's refund still finds what B's purchase earned: half of 500 back -> 350 of 700 voided.
    refund = engine.process(ev.refund(b1.event_id, "250", at="2026-03-05", member="B"))
    assert refund.accepted and sum(e.points for e in refund.effects if e.kind == "reverse") == 350
    report = engine.check_ledger()
    assert report.clean, report.problems
    history = engine.statement("A")
    assert any(line.kind == "merge" for line in history.lines)


def test_merge_is_refused_twice_and_needs_a_reason(engine, ev):
    engine.process(ev.purchase("100", at="2026-03-02", member="A"))
    engine.process(ev.purchase("100", at="2026-03-02", member="B"))
    with pytest.raises(ConfigurationError, match="reason"):
        engine.merge("A", "B", reason=" ")
    engine.merge("A", "B", reason="duplicate enrolment")
    with pytest.raises(ConfigurationError, match="already merged into A"):
        engine.merge("C", "B", reason="again")
