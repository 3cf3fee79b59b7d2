"""Members kept in memory between transactions (``Engine.open(keep_members=...)``).

A writing engine keeps the members it wrote, so that the next batch that touches them
need not read their lots, buckets and vouchers again. These tests pin down when it must
not use them: another engine (another process of the till system) wrote the member since,
or the transaction that changed them did not commit. On SQLite and PostgreSQL, through the
public API.

Group policy ``rolling`` (tests/rulesets/ledger): an arcade play earns its amount, plus 5
for the member's first play of the day and 20 for a play the day after a play (the arcade
plugin's streak), available at once.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy.exc import OperationalError

from loyaltycore.engine import Engine
from loyaltycore.store import SqlState
from plugins import support


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'loyalty.db'}"
        return
    url, drop = support.pg_schema(support.PG_URL)
    yield url
    drop()


def open_rolling(url: str | None, **kw) -> Engine:
    return Engine.open([support.TEST_RULESETS / "ledger" / "rolling", support.ARCADE_RULES],
                       plugins=[support.RETAIL, support.ARCADE], load_entrypoints=False,
                       db=url, **kw)


def when(day: str) -> datetime:
    return datetime.fromisoformat(support.ts(day))


def test_an_engine_sees_what_another_engine_wrote_since_it_kept_the_member(url):
    a, b = open_rolling(url), open_rolling(url)
    try:
        ev = support.Events("M1")
        assert a.process(ev.play("100", id="a1", at="2026-01-10")).accepted  # 105
        assert b.process(ev.play("300", id="a2", at="2026-01-11")).accepted  # +325: 430
        # a kept M1 at 105: only the member as b left it has enough for this
        spent = a.redeem("M1", 400, line="arcade", event_id="r1", at=when("2026-01-12"))
        assert spent.accepted, spent.violations
        assert b.process(ev.play("100", id="a3", at="2026-01-13")).accepted  # 30 + 105
        for engine in (a, b):
            assert engine.member("M1", at=when("2026-01-14")).available == 135
        # b's kept copy is now the stale one
        late = a.redeem("M1", 200, line="arcade", event_id="r2", at=when("2026-01-14"))
        assert not late.accepted
        assert b.redeem("M1", 100, line="arcade", event_id="r3",
                        at=when("2026-01-14")).accepted
        assert a.member("M1", at=when("2026-01-15")).available == 35
        assert a.check_ledger().clean
    finally:
        a.close()
        b.close()


def test_a_unit_of_work_that_does_not_commit_leaves_nothing_kept(url, monkeypatch):
    engine = open_rolling(url)
    try:
        ev = support.Events("M1")
        assert engine.process(ev.play("100", id="a1", at="2026-01-10")).accepted
        real_flush = SqlState.flush
        failures = []

        def flush_failing_once(self, conn):
            if not failures:
                failures.append(1)
                raise OperationalError("flush", {}, Exception("disk I/O error"))
            return real_flush(self, conn)

        monkeypatch.setattr(SqlState, "flush", flush_failing_once)
        # The first attempt applied a2 to the member in memory, then failed to write it;
        # the retry must start from the member as the database has it, not add it twice.
        assert engine.process_many([ev.play("300", id="a2", at="2026-01-11")])[0].accepted
        assert failures
        monkeypatch.undo()
        assert engine.member("M1", at=when("2026-01-12")).available == 105 + 325
        assert engine.process(ev.play("100", id="a3", at="2026-01-12")).accepted
        assert engine.member("M1", at=when("2026-01-13")).available == 430 + 145
        statement = engine.statement("M1")
        assert [ln.event_id for ln in statement.lines] == ["a1", "a2", "a3"]
        assert engine.check_ledger().clean
    finally:
        engine.close()


@pytest.mark.parametrize("keep", [0, 1])
def test_any_number_kept_gives_the_receipts_of_the_memory_engine(tmp_path, keep):
    """With none kept (every member read afresh) and with one (kept members evicted all
    the time), batch after batch of three members' plays, redemptions and refunds."""
    db = open_rolling(f"sqlite:///{tmp_path / 'loyalty.db'}", keep_members=keep)
    mem = open_rolling(None)
    try:
        raws = []
        for day in range(1, 21):
            for member in ("M1", "M2", "M3"):
                ev = support.Events(member)
                at = f"2026-02-{day:02d}"
                raws.append(ev.play(str(50 * day), id=f"{member}-p{day}", at=at))
                if day % 4 == 0:
                    raws.append(ev.make(line="arcade", type="redeem", points=120,
                                        id=f"{member}-r{day}", at=f"{at}T18:00:00+08:00"))
                if day % 5 == 0:
                    raws.append(ev.arcade_refund(f"{member}-p{day - 1}", "20",
                                                 id=f"{member}-f{day}",
                                                 at=f"{at}T19:00:00+08:00"))
        got = db.process_many(raws, batch_size=7)
        want = mem.process_many(raws)
        assert [r.model_dump(mode="json") for r in got] == \
            [r.model_dump(mode="json") for r in want]
        assert sum(r.accepted for r in got) > len(raws) * 0.9
        for member in ("M1", "M2", "M3"):
            assert db.member(member).available == mem.member(member).available
        assert db.check_ledger().clean
    finally:
        db.close()


def test_a_kept_member_counts_a_late_event_with_the_counters_of_its_day(url):
    """A kept member carries the counters of the periods recent on its last event day; a
    batch that goes back further reads them again, as a fresh load would. The arcade's
    bonus for the first play of a day counts plays per day."""
    kept, fresh = open_rolling(url), open_rolling(url, keep_members=0)
    try:
        for engine, member in ((kept, "M1"), (fresh, "M2")):
            ev = support.Events(member)
            first = engine.process(ev.play("100", id="p1", at="2026-01-10"))
            later = engine.process(ev.play("100", id="p2", at="2026-02-20"))  # 41 days on
            # a till that was offline sends a play of 10 January: not the day's first
            late = engine.process(ev.play("100", id="p3", at="2026-01-10T20:00:00+08:00"))
            again = engine.process(ev.play("100", id="p4", at="2026-02-20T21:00:00+08:00"))
            assert [r.points for r in (first, later, late, again)] == [105, 105, 100, 100], \
                (engine is kept, [r.points for r in (first, later, late, again)])
        assert kept.state.kept  # the first engine did keep its member between events
        assert kept.check_ledger().clean
    finally:
        kept.close()
        fresh.close()
