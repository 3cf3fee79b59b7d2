"""Holds at a till: ``reserve_points``, then ``capture_reservation``, ``release_reservation``
or the hold lapsing by itself.

Every test runs in memory, on SQLite and on PostgreSQL, through the public API. Group
policy ``rolling`` (tests/rulesets/ledger): points expire 6 months after they were earned;
a hold lasts 30 minutes unless the event asks for more (up to 1,440). The history, computed
by hand (as in test_redemption_cancel):

    a1 2026-01-10 arcade play 100   -> 100 + 5 (first play of the day), expire 07-10
    p1 2026-02-10 retail 500        -> 500, pending to 02-17, expire 08-10
    a2 2026-03-10 arcade play 300   -> 300 + 5, expire 09-10

Available from 03-10: 105 + 500 + 305 = 910. A hold of 400 takes a1's 105 (soonest
expiry) and 295 of p1.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

from loyaltycore.cli import cli
from loyaltycore.effects import CaptureReservation, ReleaseReservation, ReservePoints
from loyaltycore.engine import Engine
from loyaltycore.errors import IdempotencyConflict
from plugins import support

NOON = "T12:00:00+08:00"


def when(day: str) -> datetime:
    return datetime.fromisoformat(support.ts(day))


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def engine(request, tmp_path):
    yield from support.rolling_engines(request.param, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def durable(request, tmp_path):
    """Settlement, statements and the ledger check read the durable ledger."""
    yield from support.rolling_engines(request.param, tmp_path)


def history(engine: Engine, member: str = "M1") -> None:
    ev = support.Events(member)
    for event in (ev.play("100", id="a1", at="2026-01-10"),
                  ev.purchase("500", id="p1", at="2026-02-10"),
                  ev.play("300", id="a2", at="2026-03-10")):
        assert engine.process(event).accepted


def hold(engine: Engine, points: int, *, at: datetime, member: str = "M1", id: str = "h1",
         minutes: int | None = None, line: str = "arcade"):
    return engine.reserve_points(member, points, line=line, event_id=id, at=at,
                                 reference="till 7", minutes=minutes)


def balances(engine: Engine, at: datetime, member: str = "M1") -> tuple[int, int]:
    m = engine.member(member, at=at)
    return m.available, m.reserved


def clean(engine: Engine) -> None:
    if engine.store is not None:
        report = engine.check_ledger()
        assert report.clean, report.problems


def effect(receipt, cls):
    [e] = [e for e in receipt.effects if isinstance(e, cls)]
    return e


def test_a_hold_keeps_two_checkouts_from_spending_the_same_points(engine):
    history(engine)
    t = when("2026-03-20" + NOON)
    r = hold(engine, 400, at=t)
    assert r.accepted, r.violations
    e = effect(r, ReservePoints)
    assert (e.points, e.expires_at) == (400, t + timedelta(minutes=30))
    assert balances(engine, t) == (510, 400)
    # a second till asks for more than is left: 510, not 910
    r2 = hold(engine, 600, at=t + timedelta(minutes=1), id="h2")
    assert not r2.accepted
    assert r2.violations[0].invariant == "redemption"
    assert "600 points asked, 510 available" in r2.violations[0].message
    assert engine.redeem("M1", 600, line="retail", event_id="x1",
                         at=t + timedelta(minutes=2)).accepted is False
    clean(engine)


def test_a_captured_hold_is_a_redemption_settled_when_captured(engine):
    history(engine)
    t = when("2026-03-20" + NOON)
    assert hold(engine, 400, at=t).accepted
    r = engine.capture_reservation("M1", "h1", line="arcade", event_id="k1",
                                   at=t + timedelta(minutes=10))
    assert r.accepted, r.violations
    e = effect(r, CaptureReservation)
    assert (e.points, e.reserved, e.released) == (400, 400, 0)
    assert balances(engine, t + timedelta(minutes=10)) == (510, 0)
    again = engine.capture_reservation("M1", "h1", line="arcade", event_id="k2",
                                       at=t + timedelta(minutes=11))
    assert not again.accepted
    assert (again.violations[0].invariant, again.violations[0].rule) == \
        ("reservation", "capture_reservation")
    assert "already captured at 2026-03-20T04:10:00+00:00" in again.violations[0].message
    # the capture is cancelled like any redemption: p1's 295 (spent last) come back first
    c = engine.cancel_redemption("M1", "k1", line="arcade", event_id="c1",
                                 at=when("2026-03-25"), points=295)
    assert c.accepted, c.violations
    assert balances(engine, when("2026-03-25")) == (805, 0)
    if engine.store is not None:
        march = engine.settlement(until=when("2026-03-21"))
        assert [(s.issuer, s.redeemer, s.points) for s in march] == [
            ("arcade", "arcade", 105), ("retail", "arcade", 295)]
        assert [(s.issuer, s.redeemer, s.points)
                for s in engine.settlement(since=when("2026-03-21"))] == [
            ("retail", "arcade", -295)]
        report = engine.check_ledger()
        assert report.clean, report.problems
        a, rt = report.lines["arcade"], report.lines["retail"]
        assert (a.redeemed_from, a.redeemed_at, a.reserved) == (105, 105, 0)
        assert (rt.redeemed_from, rt.available, rt.reserved) == (0, 500, 0)


def test_capturing_less_gives_the_rest_back_with_its_dates(engine):
    history(engine)
    t = when("2026-03-20" + NOON)
    assert hold(engine, 400, at=t).accepted
    r = engine.capture_reservation("M1", "h1", line="arcade", event_id="k1",
                                   at=t + timedelta(minutes=5), points=300)
    assert r.accepted, r.violations
    e = effect(r, CaptureReservation)
    assert (e.points, e.released) == (300, 100)
    # spent: a1's 105 and 195 of p1; back: 100 of p1 (expires 08-10)
    assert balances(engine, t + timedelta(minutes=5)) == (610, 0)
    # a1 was spent whole: nothing expires on 07-10; p1's 205 + 100 expire on 08-10
    assert balances(engine, when("2026-07-11")) == (610, 0)
    assert balances(engine, when("2026-08-11")) == (305, 0)
    if engine.store is not None:
        assert [(s.issuer, s.redeemer, s.points) for s in engine.settlement()] == [
            ("arcade", "arcade", 105), ("retail", "arcade", 195)]
    r = engine.capture_reservation("M1", "h1", line="arcade", event_id="k2",
                                   at=t + timedelta(minutes=6), points=100)
    assert not r.accepted
    clean(engine)


def test_a_released_hold_gives_every_point_back_with_its_dates(engine):
    history(engine)
    t = when("2026-03-20" + NOON)
    assert hold(engine, 400, at=t).accepted
    r = engine.release_reservation("M1", "h1", line="arcade", event_id="v1",
                                   at=t + timedelta(minutes=3), reason="customer paid cash")
    assert r.accepted, r.violations
    assert effect(r, ReleaseReservation).points == 400
    assert balances(engine, t + timedelta(minutes=3)) == (910, 0)
    assert balances(engine, when("2026-07-11")) == (805, 0)  # a1's 105 expired on 07-10
    assert balances(engine, when("2026-08-11")) == (305, 0)
    r = engine.capture_reservation("M1", "h1", line="arcade", event_id="k1",
                                   at=t + timedelta(minutes=4))
    assert not r.accepted and "already released" in r.violations[0].message
    if engine.store is not None:
        assert engine.settlement() == []
        assert engine.run_jobs(when("2026-08-11")).expired == 605
    clean(engine)


def test_a_hold_nobody_settles_lapses_by_itself(engine):
    history(engine)
    t = when("2026-03-20" + NOON)
    assert hold(engine, 400, at=t, minutes=60).accepted
    assert balances(engine, t + timedelta(minutes=59)) == (510, 400)
    assert balances(engine, t + timedelta(minutes=60)) == (910, 0)
    if engine.store is not None:
        jobs = engine.run_jobs(t + timedelta(hours=2))
        assert jobs.released == 400
        assert engine.run_jobs(t + timedelta(hours=2)).released == 0  # idempotent
        rows = [(ln.kind, ln.at, ln.available, ln.reserved)
                for ln in engine.statement("M1").lines][-2:]
        assert rows == [("reserve", t, -400, 400),
                        ("release", t + timedelta(minutes=60), 400, -400)]
    r = engine.capture_reservation("M1", "h1", line="arcade", event_id="k1",
                                   at=t + timedelta(minutes=61))
    assert not r.accepted
    assert r.violations[0].invariant == "reservation"
    assert "lapsed unsettled" in r.violations[0].message
    assert balances(engine, t + timedelta(minutes=61)) == (910, 0)
    clean(engine)


def test_a_lapsing_hold_never_extends_a_points_life(engine):
    history(engine)
    # a day's hold from 07-09 noon takes a1's 105 (expire 07-10 10:00) and 95 of p1; when
    # it lapses on 07-10 noon, a1's points come back already expired
    t = when("2026-07-09" + NOON)
    assert hold(engine, 200, at=t, minutes=1440).accepted
    assert balances(engine, t) == (710, 200)
    assert balances(engine, t + timedelta(days=1)) == (805, 0)
    if engine.store is not None:
        engine.run_jobs(t + timedelta(days=1))
        report = engine.check_ledger()
        assert report.clean, report.problems
        assert report.lines["arcade"].expired == 105


def test_only_the_holding_line_settles_a_hold_and_only_a_hold(engine):
    history(engine)
    t = when("2026-03-20" + NOON)
    assert hold(engine, 400, at=t).accepted
    r = engine.capture_reservation("M1", "h1", line="retail", event_id="k1",
                                   at=t + timedelta(minutes=1))
    assert not r.accepted
    assert (r.violations[0].invariant, r.violations[0].rule) == \
        ("line-isolation", "capture_reservation")
    assert "made at 'arcade'" in r.violations[0].message
    for target in ("a1", "nope"):
        r = engine.release_reservation("M1", target, line="arcade", event_id=f"v-{target}",
                                       at=t + timedelta(minutes=1))
        assert not r.accepted
        assert "not a reservation of this member" in r.violations[0].message
    r = engine.capture_reservation("M2", "h1", line="arcade", event_id="k2",
                                   at=t + timedelta(minutes=1))
    assert not r.accepted
    r = engine.capture_reservation("M1", "h1", line="arcade", event_id="k3",
                                   at=t + timedelta(minutes=1), points=401)
    assert not r.accepted
    assert r.violations[0].numbers["reserved"] == 400
    r = hold(engine, 10, at=t + timedelta(minutes=1), id="h9", minutes=2000)
    assert not r.accepted
    assert "longer than the group's maximum of 1440" in r.violations[0].message
    assert balances(engine, t + timedelta(minutes=2)) == (510, 400)  # nothing applied
    clean(engine)


def test_resent_hold_events_change_nothing(engine):
    history(engine)
    t = when("2026-03-20" + NOON)
    first = hold(engine, 400, at=t)
    assert hold(engine, 400, at=t) == first
    with pytest.raises(IdempotencyConflict):
        hold(engine, 300, at=t)
    k = engine.capture_reservation("M1", "h1", line="arcade", event_id="k1",
                                   at=t + timedelta(minutes=1))
    assert engine.capture_reservation("M1", "h1", line="arcade", event_id="k1",
                                      at=t + timedelta(minutes=1)) == k
    assert balances(engine, t + timedelta(minutes=1)) == (510, 0)
    clean(engine)


def test_a_hold_made_under_a_merged_away_id_goes_on_under_the_survivor(engine):
    history(engine, member="M9")
    assert engine.process(support.Events("M1").play("10", id="b1", at="2026-03-19")).accepted
    t = when("2026-03-20" + NOON)
    assert hold(engine, 400, at=t, member="M9", minutes=120).accepted
    engine.merge("M1", "M9", reason="same person", at=t + timedelta(minutes=1))
    assert balances(engine, t + timedelta(minutes=1)) == (525, 400)  # 510 of M9 + 15 of M1
    r = engine.capture_reservation("M9", "h1", line="arcade", event_id="k1",
                                   at=t + timedelta(minutes=2), points=100)
    assert r.accepted, r.violations
    assert r.member == "M1"
    assert balances(engine, t + timedelta(minutes=2)) == (825, 0)
    clean(engine)


def test_a_member_view_lists_the_open_holds(engine):
    history(engine)
    t = when("2026-03-20" + NOON)
    assert hold(engine, 400, at=t, minutes=120).accepted
    assert hold(engine, 100, at=t + timedelta(minutes=1), id="h2").accepted
    m = engine.member("M1", at=t + timedelta(minutes=5))
    assert [(h.id, h.points, h.line, h.reference) for h in m.holds] == [
        ("h2", 100, "arcade", "till 7"), ("h1", 400, "arcade", "till 7")]  # h2 lapses first
    assert m.reserved == sum(h.points for h in m.holds)
    m = engine.member("M1", at=t + timedelta(minutes=40))  # h2 has lapsed by then
    assert [h.id for h in m.holds] == ["h1"] and m.reserved == 400


def test_holds_show_in_the_statement_and_the_trial_balance(durable):
    engine = durable
    history(engine)
    t = when("2026-03-20" + NOON)
    assert hold(engine, 400, at=t).accepted
    st = engine.statement("M1")
    assert (st.closing_available, st.closing_pending, st.closing_reserved) == (510, 0, 400)
    report = engine.check_ledger()
    assert report.clean, report.problems
    a, rt = report.lines["arcade"], report.lines["retail"]
    assert (a.reserved, rt.reserved) == (105, 295)
    assert (a.outstanding, rt.outstanding) == (410, 500)
    assert engine.settlement() == []  # nothing is owed for a hold


# --- tills racing for the same points (PostgreSQL: row locks on the member) ---------------

RACE_WORKERS = 16
RACE_AT = datetime.fromisoformat("2026-03-20T12:00:00+08:00")


def _till(url: str, wid: int, barrier, results) -> None:
    """One till: holds 300 points of M1, then captures (even tills) or releases them."""
    import traceback

    try:
        engine = support.open_db(url, time_budget=5.0)
        barrier.wait(timeout=120)
        at = RACE_AT + timedelta(seconds=wid)
        held = engine.reserve_points("M1", 300, line="retail", event_id=f"h{wid}", at=at)
        out = {"held": held.accepted, "captured": 0,
               "why": [v.invariant for v in held.violations]}
        if held.accepted:
            at += timedelta(seconds=30)
            if wid % 2 == 0:
                r = engine.capture_reservation("M1", f"h{wid}", line="retail",
                                               event_id=f"k{wid}", at=at)
                assert r.accepted, r.violations
                out["captured"] = effect(r, CaptureReservation).points
            else:
                r = engine.release_reservation("M1", f"h{wid}", line="retail",
                                               event_id=f"v{wid}", at=at)
                assert r.accepted, r.violations
        engine.close()
        results.put((wid, out))
    except BaseException:
        results.put((wid, traceback.format_exc()))
        barrier.abort()


def test_sixteen_tills_racing_for_the_same_points_never_overdraw(pg_url):
    import multiprocessing

    engine = support.open_db(pg_url)
    ev = support.Events("M1")
    seed = engine.process(ev.purchase("1000", id="seed", at="2026-03-01"))  # + 200 bonus
    engine.run_jobs(when("2026-03-10"))
    start = engine.member("M1", at=RACE_AT).available
    assert start == seed.points + seed.pending_points == 1200
    engine.close()
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(RACE_WORKERS), ctx.Queue()
    procs = [ctx.Process(target=_till, args=(pg_url, wid, barrier, results), daemon=True)
             for wid in range(RACE_WORKERS)]
    for p in procs:
        p.start()
    outs = dict(results.get(timeout=240) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    errors = [v for v in outs.values() if isinstance(v, str)]
    assert not errors, "\n".join(errors)
    held = [o for o in outs.values() if o["held"]]
    refused = [o for o in outs.values() if not o["held"]]
    assert held, "no till got a hold"
    assert all(o["why"] == ["redemption"] for o in refused)
    captured = sum(o["captured"] for o in held)
    engine = support.open_db(pg_url)
    try:
        end = RACE_AT + timedelta(minutes=5)
        m = engine.member("M1", at=end)
        assert (m.available, m.reserved) == (start - captured, 0)
        assert m.available >= 0
        report = engine.check_ledger()
        assert report.clean, report.problems
        assert report.lines["retail"].redeemed_at == captured
    finally:
        engine.close()


def test_loyalty_member_lists_the_open_holds(tmp_path):
    url = f"sqlite:///{tmp_path / 'loyalty.db'}"
    engine = support.open_db(url)
    assert engine.process(support.Events("M1").purchase("1000", id="p1",
                                                         at="2026-03-01")).accepted
    t = when("2026-03-20" + NOON)
    assert engine.reserve_points("M1", 300, line="retail", event_id="h1", at=t,
                                 reference="basket 7800").accepted
    engine.close()
    out = CliRunner().invoke(cli, ["member", "M1", "--db", url, "--rulesets",
                                   str(support.RULESETS), "--at",
                                   (t + timedelta(minutes=1)).isoformat()])
    assert out.exit_code == 0, out.output
    assert "available 900  pending 0  on hold 300" in out.output
    assert "on hold: 300 points at retail by h1 (basket 7800), until " \
           "2026-03-20T12:30+08:00" in out.output
