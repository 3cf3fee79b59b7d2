"""Cancelling a redemption (the built-in ``cancel_redemption`` event): a voided sale or a
cancelled booking gives the spent points back.

Every test runs in memory, on SQLite and on PostgreSQL, through the public API. Group
policy ``rolling`` (tests/rulesets/ledger): points expire 6 months after they were earned.
The history, computed by hand (as in test_ledger_lifecycle's FIFO test):

    a1 2026-01-10 arcade play 100   -> 100 + 5 (first play of the day), expire 07-10
    p1 2026-02-10 retail 500        -> 500, pending to 02-17, expire 08-10
    a2 2026-03-10 arcade play 300   -> 300 + 5, expire 09-10
    x1 2026-03-20 redeem 400 at the arcade: a1's 105 (soonest expiry) then 295 of p1

Balance after x1: 105 + 500 + 305 - 400 = 510.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from loyaltycore.effects import RestorePoints
from loyaltycore.engine import Engine
from loyaltycore.errors import IdempotencyConflict
from plugins import support


def when(day: str) -> datetime:
    return datetime.fromisoformat(support.ts(day))


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def engine(request, tmp_path):
    yield from support.rolling_engines(request.param, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def durable(request, tmp_path):
    """Settlement reads the durable ledger."""
    yield from support.rolling_engines(request.param, tmp_path)


def history(engine: Engine, member: str = "M1") -> None:
    ev = support.Events(member)
    for event in (ev.play("100", id="a1", at="2026-01-10"),
                  ev.purchase("500", id="p1", at="2026-02-10"),
                  ev.play("300", id="a2", at="2026-03-10")):
        assert engine.process(event).accepted
    receipt = engine.redeem(member, 400, line="arcade", event_id="x1", at=when("2026-03-20"))
    assert receipt.accepted, receipt.violations


def available(engine: Engine, day: str, member: str = "M1") -> int:
    return engine.member(member, at=when(day)).available


def restored(receipt) -> int:
    return sum(e.points for e in receipt.effects if isinstance(e, RestorePoints))


def test_a_cancellation_gives_back_the_last_spent_first_with_their_expiry(engine):
    history(engine)
    assert available(engine, "2026-03-20") == 510
    # 295 back: exactly the piece of p1 (retail, expires 08-10) taken last
    r = engine.cancel_redemption("M1", "x1", line="arcade", event_id="c1",
                                 at=when("2026-03-25"), points=295, reason="sale voided")
    assert r.accepted, r.violations
    assert restored(r) == 295
    assert available(engine, "2026-03-25") == 805
    # the rest (105, a1's, expires 07-10) without naming the points
    r = engine.cancel_redemption("M1", "x1", line="arcade", event_id="c2",
                                 at=when("2026-03-26"))
    assert r.accepted and restored(r) == 105
    assert available(engine, "2026-03-26") == 910
    # nothing is left to give back
    r = engine.cancel_redemption("M1", "x1", line="arcade", event_id="c3",
                                 at=when("2026-03-27"))
    assert not r.accepted
    assert r.violations[0].invariant == "redemption-cancel"
    assert "given back in full (400 of 400 points)" in r.violations[0].message
    # The restored points kept their dates: a1's 105 expire on 07-10, and all 500 of p1
    # (205 never spent + 295 given back) on 08-10; a2's 305 remain.
    assert available(engine, "2026-07-11") == 805
    assert available(engine, "2026-08-11") == 305
    if engine.store is not None:
        assert engine.run_jobs(when("2026-08-11")).expired == 605
        report = engine.check_ledger()
        assert report.clean, report.problems
        a, rt = report.lines["arcade"], report.lines["retail"]
        assert (a.issued, a.available, a.redeemed_from, a.redeemed_at, a.expired) == \
            (410, 305, 0, 0, 105)
        assert (rt.issued, rt.redeemed_from, rt.expired) == (500, 0, 500)
        assert engine.settlement() == []  # spent and given back in March


def test_points_whose_date_has_passed_expire_as_they_come_back(engine):
    history(engine)
    # On 07-15, a1's 105 would have expired on 07-10: they come back and expire at once;
    # p1's 295 are good until 08-10.
    r = engine.cancel_redemption("M1", "x1", line="arcade", event_id="c1",
                                 at=when("2026-07-15"))
    assert r.accepted and restored(r) == 400
    assert available(engine, "2026-07-15") == 510 + 295
    if engine.store is not None:
        # dated when they came back, not before they existed (a1's lots of 100 and 5)
        rows = [(ln.kind, ln.at, ln.available) for ln in engine.statement("M1").lines][-3:]
        assert rows[0] == ("restore", when("2026-07-15"), 400)
        assert sorted(rows[1:]) == [("expire", when("2026-07-15"), -100),
                                    ("expire", when("2026-07-15"), -5)]
        report = engine.check_ledger()
        assert report.clean, report.problems
        assert report.lines["arcade"].expired == 105


def test_settlement_is_reversed_in_the_period_of_the_cancellation(durable):
    engine = durable
    history(engine)
    r = engine.cancel_redemption("M1", "x1", line="arcade", event_id="c1",
                                 at=when("2026-04-02"), points=300)
    assert r.accepted
    march = engine.settlement(until=when("2026-04-01"))
    april = engine.settlement(since=when("2026-04-01"))
    assert [(s.issuer, s.redeemer, s.points) for s in march] == [
        ("arcade", "arcade", 105), ("retail", "arcade", 295)]
    # 300 back: p1's 295 and 5 of a1's 105: a credit note for April
    assert sorted((s.issuer, s.redeemer, s.points) for s in april) == [
        ("arcade", "arcade", -5), ("retail", "arcade", -295)]
    assert sum(s.amount for s in april) == -3  # 300 points at 0.01
    assert engine.check_ledger().clean


def test_only_the_line_of_the_redemption_can_cancel_it_and_only_a_redemption(engine):
    history(engine)
    r = engine.cancel_redemption("M1", "x1", line="retail", event_id="c1",
                                 at=when("2026-03-25"))
    assert not r.accepted
    assert (r.violations[0].invariant, r.violations[0].rule) == \
        ("line-isolation", "cancel_redemption")
    assert "made at 'arcade'" in r.violations[0].message
    for target in ("p1", "nope"):
        r = engine.cancel_redemption("M1", target, line="arcade", event_id=f"c-{target}",
                                     at=when("2026-03-25"))
        assert not r.accepted
        assert "not an accepted redemption of this member" in r.violations[0].message
    # another member cannot cancel M1's redemption
    r = engine.cancel_redemption("M2", "x1", line="arcade", event_id="c9",
                                 at=when("2026-03-25"))
    assert not r.accepted
    r = engine.cancel_redemption("M1", "x1", line="arcade", event_id="c2",
                                 at=when("2026-03-25"), points=401)
    assert not r.accepted
    assert r.violations[0].numbers == {"points": 401, "redeemed": 400, "restored_before": 0}
    assert available(engine, "2026-03-25") == 510  # nothing of the rejected ones applied


def test_a_resent_cancellation_changes_nothing(engine):
    history(engine)
    first = engine.cancel_redemption("M1", "x1", line="arcade", event_id="c1",
                                     at=when("2026-03-25"), points=100)
    again = engine.cancel_redemption("M1", "x1", line="arcade", event_id="c1",
                                     at=when("2026-03-25"), points=100)
    assert again == first
    assert available(engine, "2026-03-25") == 610
    with pytest.raises(IdempotencyConflict):
        engine.cancel_redemption("M1", "x1", line="arcade", event_id="c1",
                                 at=when("2026-03-25"), points=200)
    if engine.store is not None:
        assert engine.check_ledger().clean


def test_a_redemption_made_under_a_merged_away_id_can_be_cancelled(engine):
    history(engine, member="M9")
    assert engine.process(support.Events("M1").play("10", id="b1", at="2026-03-21")).accepted
    engine.merge("M1", "M9", reason="same person", at=when("2026-03-22"))
    # 510 of M9 + 15 of M1
    assert available(engine, "2026-03-22") == 525
    r = engine.cancel_redemption("M9", "x1", line="arcade", event_id="c1",
                                 at=when("2026-03-25"))
    assert r.accepted, r.violations
    assert restored(r) == 400
    assert available(engine, "2026-03-25") == 925
    if engine.store is not None:
        assert engine.check_ledger().clean
