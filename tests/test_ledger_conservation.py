"""The points ledger conserves points, never overdraws, and is idempotent under resubmission.

Every test runs on a SQLite file and on a real PostgreSQL schema (the ``db_url`` fixture),
through the public API the way an embedder uses it: ``Engine.open(..., db=URL)``,
``process``/``process_many``/``redeem``/``run_jobs``, then ``member``, ``statement``,
``settlement`` and ``check_ledger``. The group policies are tests/rulesets/ledger/* (the
test group with one field changed each); the retail line is the real retail ruleset, shipped by the retail plugin
(purchase points pending 7 days, a 200-point first-purchase bonus, refunds clawing back
points in proportion) and the arcade line is the test arcade (points at once: 1 per CNY
plus 5 for the first play of a day).

Times: ``support.ts("2026-03-02")`` is 10:00 Shanghai (02:00 UTC); a retail purchase then
vests 7 days later at the same time.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from loyaltycore.effects import RedeemPoints, ReversePoints
from loyaltycore.engine import Engine
from loyaltycore.errors import IdempotencyConflict
from loyaltycore.store import LOTS, MEMBERS, POSTINGS
from plugins import support

LEDGER = support.TEST_RULESETS / "ledger"


def open_engine(db: str | None, policy: str = "plain", *, arcade: bool = True) -> Engine:
    """The ledger test group ``policy`` + real retail rules (from the retail plugin) (+ the
    test arcade line)."""
    paths = [LEDGER / policy]
    plugins = [support.RETAIL]
    if arcade:
        paths.append(support.ARCADE_RULES)
        plugins.append(support.ARCADE)
    return Engine.open(paths, plugins=plugins, load_entrypoints=False, db=db, time_budget=2.0)


def when(day: str) -> datetime:
    """A bare date is 10:00 Shanghai, like the event factory's."""
    return datetime.fromisoformat(support.ts(day))


@pytest.fixture
def ledger(db_url):
    """Open engines on this test's database (closed at the end)."""
    opened: list[Engine] = []

    def make(policy: str = "plain", *, arcade: bool = True) -> Engine:
        engine = open_engine(db_url, policy, arcade=arcade)
        opened.append(engine)
        return engine

    yield make
    for engine in opened:
        engine.close()


def state_of(engine: Engine, members: tuple[str, ...], at: datetime) -> dict:
    """Everything a resubmission must leave alone: balances, statements, the trial balance."""
    report = engine.check_ledger()
    return {
        "members": {m: engine.member(m, at=at).model_dump(mode="json") for m in members},
        "statements": {m: engine.statement(m).model_dump(mode="json") for m in members},
        "check": report.as_dict(),
        "settlement": [r.model_dump(mode="json") for r in engine.settlement()],
    }


def run_stream(engine: Engine, ev: support.Events) -> dict:
    """A stream over two lines and two members; returns the receipts by event id.

    M1 (all hand-computed, member M1 unless said):
      a1 2026-03-02 arcade play 100 CNY: 100 (base) + 5 (first play of the day) = 105
         available at once.
      p1 2026-03-03 retail purchase 1000: not new (a1 was first), so no bonus: 1000 pending
         until 03-10; retail + arcade active = 2 lines -> upgraded to silver.
      p2 2026-03-04 retail purchase 500 as silver: 500 + 10% = 550 pending until 03-11
         (lots p2|1 = 500, p2|2 = 50).
      f1 2026-03-05 refund 250 of p2: floor(550 x 250/500) = 275, voided from p2's pending
         lots in lot order: p2|1 500 -> 225, p2|2 stays 50. Pending 1000 + 275 = 1275.
      jobs 2026-03-12: vests 1000 + 225 + 50 = 1275 -> available 105 + 1275 = 1380.
      x1 2026-03-15 redeem 300 at retail, oldest lots first (nothing expires):
         a1's 100 + 5 (arcade) then 195 of p1 (retail) -> available 1080.
      x2 2026-03-16 redeem 2000 at arcade: rejected, 2000 > 1080 available.
      f2 2026-03-20 full refund of p1 (1000 of 1000): 1000 points; p1's own lot holds
         1000 - 195 = 805, the other 195 come from p2|1 (225 -> 30) -> available 80.
    M2:
      q1 2026-03-20 retail purchase 200: 200 + 200 first-purchase bonus = 400 pending.
    """
    out = {}
    for raw in (ev.play("100", id="a1", at="2026-03-02"),
                ev.purchase("1000", id="p1", at="2026-03-03"),
                ev.purchase("500", id="p2", at="2026-03-04"),
                ev.refund("p2", "250", id="f1", at="2026-03-05")):
        r = engine.process(raw)
        out[r.event_id] = r
    engine.run_jobs(when("2026-03-12"))
    out["x1"] = engine.redeem("M1", 300, line="retail", event_id="x1", at=when("2026-03-15"))
    out["x2"] = engine.redeem("M1", 2000, line="arcade", event_id="x2", at=when("2026-03-16"))
    for r in engine.process_many([ev.refund("p1", "1000", id="f2", at="2026-03-20"),
                                  ev.purchase("200", id="q1", member="M2", at="2026-03-20")]):
        out[r.event_id] = r
    return out


def test_a_stream_of_purchases_refunds_redemptions_and_jobs_conserves_points(ledger, ev):
    engine = ledger()
    r = run_stream(engine, ev)
    assert [r[i].status for i in ("a1", "p1", "p2", "f1", "x1", "x2", "f2", "q1")] == \
        ["accepted"] * 5 + ["rejected"] + ["accepted"] * 2
    assert (r["a1"].points, r["p1"].pending_points, r["p2"].pending_points) == (105, 1000, 550)
    assert [e.points for e in r["f1"].effects if isinstance(e, ReversePoints)] == [275]
    assert [e.points for e in r["f2"].effects if isinstance(e, ReversePoints)] == [1000]
    assert r["x2"].violations[0].invariant == "redemption"
    assert r["x2"].violations[0].message == "would overdraw: 2000 points asked, 1080 available"
    assert r["q1"].pending_points == 400

    m1 = engine.member("M1", at=when("2026-03-21"))
    m2 = engine.member("M2", at=when("2026-03-21"))
    assert (m1.available, m1.pending, m1.tier) == (80, 0, "silver")
    assert (m2.available, m2.pending) == (0, 400)

    report = engine.check_ledger()
    assert report.clean, report.problems
    # earn a1, p1, p2, q1 + reverse f1, f2 + vest p1|1, p2|1, p2|2 + redeem x1 = 10 entries
    # (the rejected x2 writes none).
    assert (report.entries, report.members, report.lots, report.debt) == (10, 2, 7, 0)
    arcade, retail = report.lines["arcade"], report.lines["retail"]
    # arcade issued 105, all of it spent at retail by x1.
    assert (arcade.issued, arcade.available, arcade.pending, arcade.redeemed_from,
            arcade.redeemed_at, arcade.expired, arcade.reversed) == (105, 0, 0, 105, 0, 0, 0)
    # retail issued 1000 + 550 + 400 = 1950: 80 left with M1 (p2|1 30 + p2|2 50), 400
    # pending with M2, 195 spent (x1), 275 (f1) + 1000 (f2) reversed; 300 spent at retail.
    assert (retail.issued, retail.available, retail.pending, retail.redeemed_from,
            retail.redeemed_at, retail.expired, retail.reversed) == \
        (1950, 80, 400, 195, 300, 0, 1275)
    for b in report.lines.values():  # issued = available + pending + redeemed + expired + reversed
        assert b.issued == b.available + b.pending + b.redeemed_from + b.expired + b.reversed

    # Who owes whom for x1, at 0.01 CNY a point: arcade 105 -> 1.05, retail 195 -> 1.95.
    assert [(s.issuer, s.redeemer, s.points, s.amount) for s in engine.settlement()] == [
        ("arcade", "retail", 105, Decimal("1.05")), ("retail", "retail", 195, Decimal("1.95"))]

    st = engine.statement("M1")
    assert [(ln.kind, ln.event_id, ln.available, ln.pending, ln.balance) for ln in st.lines] == [
        ("earn", "a1", 105, 0, 105),
        ("earn", "p1", 0, 1000, 105),
        ("earn", "p2", 0, 550, 105),
        ("reverse", "f1", 0, -275, 105),
        ("vest", None, 1000, -1000, 1105),  # dated when p1 vested (03-10), not at the job
        ("vest", None, 225, -225, 1330),
        ("vest", None, 50, -50, 1380),
        ("redeem", "x1", -300, 0, 1080),
        ("reverse", "f2", -1000, 0, 80),
    ]
    assert (st.closing_available, st.closing_pending) == (80, 0)
    assert st.lines[4].at == when("2026-03-10")


def test_entries_balance_and_member_balances_equal_their_live_lots(ledger, ev):
    """Re-derived straight from the store's tables, independently of ``check_ledger``."""
    engine = ledger()
    run_stream(engine, ev)
    with engine.store.reading() as conn:
        sums = conn.execute(select(POSTINGS.c.entry_id, func.sum(POSTINGS.c.points))
                            .group_by(POSTINGS.c.entry_id)).all()
        assert len(sums) == 10
        assert {entry: int(total) for entry, total in sums if int(total) != 0} == {}
        members = {r.id: (r.available, r.pending, r.debt) for r in conn.execute(select(MEMBERS))}
        lots: dict[tuple[str, str], int] = {}
        for r in conn.execute(select(LOTS).where(LOTS.c.status != "closed")):
            lots[(r.member_id, r.status)] = lots.get((r.member_id, r.status), 0) + r.remaining
    assert members == {"M1": (80, 0, 0), "M2": (0, 400, 0)}
    for member, (available, pending, debt) in members.items():
        assert available + debt == lots.get((member, "available"), 0)
        assert pending == lots.get((member, "pending"), 0)


def test_ledger_check_finds_every_kind_of_tampering(ledger, ev):
    """The check is not a tautology: each projection it re-derives, changed behind its back,
    is reported (and the ledger is clean again once restored)."""
    engine = ledger()
    run_stream(engine, ev)
    assert engine.check_ledger().clean

    def tamper(stmt, undo, *kinds: str) -> None:
        with engine.store.transaction() as conn:
            conn.execute(stmt)
        report = engine.check_ledger()
        assert not report.clean
        assert set(report.counts) == set(kinds), report.problems
        with engine.store.transaction() as conn:
            conn.execute(undo)
        assert engine.check_ledger().clean

    tamper(update(MEMBERS).where(MEMBERS.c.id == "M1").values(available=81),
           update(MEMBERS).where(MEMBERS.c.id == "M1").values(available=80),
           "member-vs-postings", "member-vs-lots")
    tamper(update(LOTS).where(LOTS.c.id == "M1|p2|1").values(remaining=31),
           update(LOTS).where(LOTS.c.id == "M1|p2|1").values(remaining=30),
           "member-vs-lots", "lot-remaining", "line-conservation")
    tamper(update(POSTINGS).where(POSTINGS.c.entry_id == "M1|x1|redeem1",
                                  POSTINGS.c.account == "redeemed:retail").values(points=299),
           update(POSTINGS).where(POSTINGS.c.entry_id == "M1|x1|redeem1",
                                  POSTINGS.c.account == "redeemed:retail").values(points=300),
           "unbalanced-entry", "line-account")
    tamper(update(MEMBERS).where(MEMBERS.c.id == "M2").values(available=-5, pending=405),
           update(MEMBERS).where(MEMBERS.c.id == "M2").values(available=0, pending=400),
           "overdraft", "member-vs-postings", "member-vs-lots")


# --- no overdraft ------------------------------------------------------------------------


def test_a_redemption_beyond_available_is_rejected_and_changes_nothing(ledger, ev):
    engine = ledger(arcade=False)
    # 1000 CNY as a new member: 1000 + 200 bonus = 1200 pending until 03-09.
    assert engine.process(ev.purchase("1000", id="p1", at="2026-03-02")).pending_points == 1200
    # Pending points cannot be spent: 0 available on 03-05.
    early = engine.redeem("M1", 100, line="retail", event_id="x1", at=when("2026-03-05"))
    assert early.status == "rejected"
    assert [(v.invariant, v.message) for v in early.violations] == [
        ("redemption", "would overdraw: 100 points asked, 0 available")]
    assert early.violations[0].numbers["available"] == 0

    at = when("2026-03-11")
    # Let the points vest first: a rejected event still lets time pass for its member (the
    # vest entries it records are not its own doing), so the baseline has them already.
    assert engine.run_jobs(when("2026-03-10")).vested == 1200
    before = state_of(engine, ("M1",), at)
    assert before["members"]["M1"]["available"] == 1200
    over = engine.redeem("M1", 1201, line="retail", event_id="x2", at=when("2026-03-10"))
    assert over.status == "rejected" and over.effects == ()
    assert over.violations[0].message == "would overdraw: 1201 points asked, 1200 available"
    assert state_of(engine, ("M1",), at) == before

    # In one batch each redemption sees what the one before it left: 700 fits, 700 more
    # does not (500 left), 500 does.
    receipts = engine.process_many([
        ev.make(line="retail", type="redeem", id="x3", at="2026-03-10T11:00:00+08:00",
                points=700),
        ev.make(line="retail", type="redeem", id="x4", at="2026-03-10T11:01:00+08:00",
                points=700),
        ev.make(line="retail", type="redeem", id="x5", at="2026-03-10T11:02:00+08:00",
                points=500)])
    assert [r.status for r in receipts] == ["accepted", "rejected", "accepted"]
    assert receipts[1].violations[0].message == \
        "would overdraw: 700 points asked, 500 available"
    assert engine.member("M1", at=at).available == 0
    report = engine.check_ledger()
    assert report.clean and report.lines["retail"].redeemed_at == 1200
    # Still nothing to spend: 1 point is an overdraft.
    last = engine.redeem("M1", 1, line="retail", event_id="x6", at=when("2026-03-12"))
    assert last.violations[0].message == "would overdraw: 1 points asked, 0 available"


REFUSED = [
    (50, "retail", "50 points is below the minimum of 100"),
    (120, "retail", "120 points is not a multiple of 50"),
    (2050, "retail", "2050 points is above the maximum of 2000"),
    (100, "arcade", "points cannot be redeemed at line 'arcade' (group policy)"),
    (6000, "retail", "would overdraw: 6000 points asked, 5200 available"),
]


def test_the_redemption_policy_rejects_and_changes_nothing(ledger, ev):
    # tests/rulesets/ledger/redemption: 100..2000 points in steps of 50, never at arcade.
    engine = ledger("redemption")
    engine.process(ev.purchase("5000", id="p1", at="2026-03-02"))  # 5000 + 200 pending
    assert engine.run_jobs(when("2026-03-10")).vested == 5200  # (see the test above)
    at = when("2026-03-11")
    before = state_of(engine, ("M1",), at)
    assert before["members"]["M1"]["available"] == 5200
    for i, (points, line, message) in enumerate(REFUSED):
        r = engine.redeem("M1", points, line=line, event_id=f"x{i}", at=when("2026-03-10"))
        assert r.status == "rejected", points
        assert [(v.invariant, v.message) for v in r.violations] == [("redemption", message)]
        assert state_of(engine, ("M1",), at) == before, points


def test_redemptions_the_policy_allows_are_spent(ledger, ev):
    engine = ledger("redemption")
    engine.process(ev.purchase("5000", id="p1", at="2026-03-02"))  # 5200 from 03-09
    spent = [engine.redeem("M1", n, line="retail", event_id=f"x{n}", at=when("2026-03-10"))
             for n in (100, 150, 2000)]
    assert [r.status for r in spent] == ["accepted"] * 3
    assert [e.points for r in spent for e in r.effects if isinstance(e, RedeemPoints)] == \
        [100, 150, 2000]
    # 5200 - 100 - 150 - 2000 = 2950
    assert engine.member("M1", at=when("2026-03-11")).available == 2950
    assert [(s.issuer, s.redeemer, s.points) for s in engine.settlement()] == \
        [("retail", "retail", 2250)]


# --- idempotency -------------------------------------------------------------------------


def test_resubmitting_the_same_events_returns_the_same_receipts_and_changes_nothing(ledger, ev):
    engine = ledger()
    raws = [ev.purchase("1000", id="p1", at="2026-03-02"),
            ev.refund("p1", "100", id="f1", at="2026-03-03"),
            ev.make(line="retail", type="redeem", id="x1", at="2026-03-10", points=500),
            ev.make(line="retail", type="redeem", id="x2", at="2026-03-10T11:00:00+08:00",
                    points=5000),
            ev.play("80", id="a1", at="2026-03-11")]
    first = [engine.process(raw) for raw in raws]
    assert [r.status for r in first] == ["accepted"] * 3 + ["rejected", "accepted"]
    # p1: 1200 pending; f1 claws back floor(1200 x 100/1000) = 120; 1080 vest on 03-09;
    # x1 spends 500; x2 (5000) is an overdraft; a1 earns 80 + 5 -> 580 + 85 = 665.
    at = when("2026-03-12")
    before = state_of(engine, ("M1",), at)
    assert before["members"]["M1"]["available"] == 665
    engine.run_jobs(at)
    after_jobs = state_of(engine, ("M1",), at)

    expected = [r.model_dump(mode="json") for r in first]
    assert [engine.process(raw).model_dump(mode="json") for raw in raws] == expected
    assert [r.model_dump(mode="json") for r in engine.process_many(raws)] == expected
    assert [r.model_dump(mode="json") for r in engine.process_many(raws + raws,
                                                                   batch_size=3)] == \
        expected + expected
    assert state_of(engine, ("M1",), at) == after_jobs
    # a rejected event's id is claimed as well: the same redemption stays rejected
    assert engine.redeem("M1", 5000, line="retail", event_id="x2",
                         at=when("2026-03-10").replace(hour=11)).model_dump(mode="json") == \
        expected[3]
    assert len(engine.statement("M1").lines) == len(before["statements"]["M1"]["lines"])


def test_the_same_id_with_another_payload_is_a_conflict_and_changes_nothing(ledger, ev):
    engine = ledger()
    original = engine.process(ev.purchase("1000", id="p1", at="2026-03-02"))
    at = when("2026-03-12")
    before = state_of(engine, ("M1",), at)
    changed = ev.purchase("999", id="p1", at="2026-03-02")
    with pytest.raises(IdempotencyConflict):
        engine.process(changed)
    receipts = engine.process_many([changed, ev.play("50", id="a1", at="2026-03-03")])
    assert receipts[0].status == "rejected"
    assert [v.invariant for v in receipts[0].violations] == ["idempotency"]
    assert receipts[0].effects == ()
    assert receipts[1].status == "accepted"  # the rest of the batch goes on
    # the original receipt is still the answer to the original payload
    again = engine.process(ev.purchase("1000", id="p1", at="2026-03-02"))
    assert again.model_dump(mode="json") == original.model_dump(mode="json")
    after = state_of(engine, ("M1",), at)
    # a1 added 55 (50 + 5 daily) and nothing else changed
    assert after["members"]["M1"]["available"] == before["members"]["M1"]["available"] + 55
    assert len(after["statements"]["M1"]["lines"]) == \
        len(before["statements"]["M1"]["lines"]) + 1
    assert after["check"]["lines"]["retail"] == before["check"]["lines"]["retail"]


def test_a_conflict_inside_one_batch_is_rejected_without_holding_back_the_batch(ledger, ev):
    engine = ledger(arcade=False)
    receipts = engine.process_many([
        ev.purchase("1000", id="p1", at="2026-03-02"),
        ev.purchase("2000", id="p1", at="2026-03-02"),  # same id, another amount
        ev.purchase("1000", id="p1", at="2026-03-02"),  # a true resubmission
        ev.purchase("300", id="p2", at="2026-03-02T12:00:00+08:00")])
    assert [r.status for r in receipts] == ["accepted", "rejected", "accepted", "accepted"]
    assert [v.invariant for v in receipts[1].violations] == ["idempotency"]
    assert receipts[2].model_dump(mode="json") == receipts[0].model_dump(mode="json")
    # 1200 (p1 with the bonus) + 300 (p2) pending, once each
    member = engine.member("M1", at=when("2026-03-03"))
    assert (member.available, member.pending) == (0, 1500)
    report = engine.check_ledger()
    assert report.clean and report.lines["retail"].issued == 1500


def test_a_statement_lists_entries_of_the_same_instant_in_the_order_they_happened(ledger, ev):
    engine = ledger()
    assert engine.process(ev.play("100", id="z1", at="2026-03-02")).points == 105
    assert engine.process(ev.make(line="arcade", type="redeem", id="a1", at="2026-03-02",
                                  points=100)).accepted
    st = engine.statement("M1")
    assert [(ln.event_id, ln.balance) for ln in st.lines] == [("z1", 105), ("a1", 5)]
