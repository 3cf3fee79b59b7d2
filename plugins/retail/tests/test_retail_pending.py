"""The 7-day return window: purchase points are pending, vest when the window ends (by the
member's next event, a member view or the jobs), and only then can be redeemed."""

from __future__ import annotations

from datetime import datetime

from retail_support import at, by_rule, reasons


def test_points_are_pending_for_the_return_window_then_available(engine, retail):
    # 1000.00 on Monday 2026-03-02 12:00: 1000 + first purchase 200 = 1200, all held
    receipt = engine.process(retail.purchase("1000.00", at="2026-03-02"))
    assert receipt.points == 0 and receipt.pending_points == 1200
    # 7 days: every hold vests at 2026-03-09 12:00 (+08:00), bonus included
    assert {e.vests_at for e in receipt.effects if e.kind == "hold"} == {
        datetime.fromisoformat("2026-03-09T12:00:00+08:00")}

    # a minute before the window ends: still pending
    before = engine.member("M1", at=at("2026-03-09", 11))
    assert (before.available, before.pending) == (0, 1200)

    # when it ends, the member view counts them as available, without writing anything
    after = engine.member("M1", at=at("2026-03-09", 12))
    assert (after.available, after.pending) == (1200, 0)
    assert [line.kind for line in engine.statement("M1").lines] == ["earn"]

    # the jobs write the vesting, dated when it fell due, once for a given as_of
    report = engine.run_jobs(at("2026-03-10", 0))
    assert (report.members, report.vested) == (1, 1200)
    assert engine.run_jobs(at("2026-03-10", 0)).vested == 0
    vests = [line for line in engine.statement("M1").lines if line.kind == "vest"]
    assert sum(line.available for line in vests) == 1200
    assert {line.at for line in vests} == {at("2026-03-09", 12)}
    assert engine.member("M1", at=at("2026-03-10", 0)).available == 1200


def test_each_purchase_has_its_own_window(engine, retail):
    engine.process(retail.purchase("1000.00", at="2026-03-02"))  # 1000 + 200 = 1200
    engine.process(retail.purchase("500.00", at="2026-03-05"))   # 500, vests 03-12 12:00

    mid = engine.member("M1", at=at("2026-03-10"))
    assert (mid.available, mid.pending) == (1200, 500)

    # 1200 + 500 = 1700
    late = engine.member("M1", at=at("2026-03-12"))
    assert (late.available, late.pending) == (1700, 0)

    report = engine.run_jobs(at("2026-03-31"))
    assert report.vested == 1700


def test_pending_points_cannot_be_redeemed(engine, retail):
    engine.process(retail.purchase("1000.00", at="2026-03-02"))  # 1200 pending

    receipt = engine.process(retail.redeem(100, at="2026-03-05"))

    assert not receipt.accepted
    assert receipt.violations[0].invariant == "redemption"
    assert "would overdraw: 100 points asked, 0 available" in reasons(receipt)


def test_redemption_in_steps_of_100_without_overdraw(engine, retail):
    engine.process(retail.purchase("1000.00", at="2026-03-02"))  # 1200, vested 03-09

    # group policy: at least 100 points, in steps of 100
    first = engine.process(retail.redeem(300, at="2026-03-20"))
    assert first.accepted, reasons(first)
    assert [(e.kind, e.points) for e in first.effects] == [("redeem", 300)]

    too_few = engine.process(retail.redeem(50, at="2026-03-20"))
    odd = engine.process(retail.redeem(150, at="2026-03-20"))
    # 1200 - 300 = 900 left: 1000 overdraws
    overdraw = engine.process(retail.redeem(1000, at="2026-03-20"))
    for receipt in (too_few, odd, overdraw):
        assert not receipt.accepted
        assert receipt.violations[0].invariant == "redemption"
    assert "below the minimum of 100" in reasons(too_few)
    assert "not a multiple of 100" in reasons(odd)
    assert "1000 points asked, 900 available" in reasons(overdraw)

    # the whole 900 is fine (the engine's shorthand for the same built-in event)
    rest = engine.redeem("M1", 900, line="retail", event_id="till-0001",
                         at=at("2026-03-21"), reference="order 0001")
    assert rest.accepted, reasons(rest)
    assert engine.member("M1", at=at("2026-03-21")).available == 0
    assert by_rule(rest) == {}  # a redemption earns nothing
