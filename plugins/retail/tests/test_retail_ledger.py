"""The same retail events on the in-memory engine and on a SQLite ledger: same figures,
and `check_ledger` re-derives every balance cleanly."""

from __future__ import annotations

from decimal import Decimal

from retail_support import RetailEvents, at, by_rule, open_engine, reasons


def _run(engine):
    retail = RetailEvents()
    # 1000.00 with 200.00 by gift card: 800 + first purchase 200 = 1000 pending
    buy = engine.process(retail.purchase("1000.00", giftcard_paid="200.00",
                                         at="2026-03-02", id="p-1"))
    # half the money back in the window: floor(1000 x 500.00 / 1000.00) = 500 voided
    back = engine.process(retail.refund("p-1", "500.00", at="2026-03-05"))
    # the other 500 vest on 03-09 12:00
    jobs = engine.run_jobs(at("2026-03-10", 0))
    # 300 spent: 500 - 300 = 200 left
    spend = engine.redeem("M1", 300, line="retail", event_id="till-1", at=at("2026-03-12"))
    # 300 more than the 200 left: refused
    over = engine.process(retail.redeem(300, at="2026-03-12"))
    for receipt in (buy, back, spend):
        assert receipt.accepted, reasons(receipt)
    assert by_rule(buy) == {"retail-base": 800, "retail-first-purchase": 200}
    assert by_rule(back, "reverse") == {"retail-refund": 500}
    assert jobs.vested == 500
    assert not over.accepted and over.violations[0].invariant == "redemption"
    member = engine.member("M1", at=at("2026-03-12"))
    return (member.available, member.pending, member.qualification.credits,
            [(line.kind, line.available, line.pending) for line in engine.statement("M1").lines])


def test_sqlite_ledger_matches_memory_and_checks_clean(tmp_path):
    in_memory = _run(open_engine())
    engine = open_engine(db="sqlite:///" + str(tmp_path / "l.db"))
    try:
        on_disk = _run(engine)
        check = engine.check_ledger()
    finally:
        engine.close()

    assert on_disk == in_memory
    # 200 available, 0 pending; spend 800.00 - 500.00 = 300.00
    assert on_disk[:3] == (200, 0, {"spend": Decimal("300.00")})
    assert check.clean, check.problems
    assert check.members == 1
