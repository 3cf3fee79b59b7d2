"""What tickets and passes earn: the booking fee, the weekday cinema promotion and its cap,
tier bonuses, the pass cooling-off hold, refunds and visits.

Calendar used: 2 March 2026 is a Monday (so 3 Mar Tue ... 7 Mar Sat, 8 Mar Sun). Base rate
1 point per CNY, rounding floor (rulesets/group.yaml), figures from the ruleset.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from entertainment_support import balances, by_rule, reasons


def test_weekend_cinema_tickets_earn_without_the_booking_fee(engine, ent):
    # Saturday show: 2 tickets, 90.00 paid of which 6.00 booking fee
    # spend 90.00 - 6.00 = 84.00 -> 84 points, 84.00 spend credit
    receipt = engine.process(ent.ticket("90.00", fee="6.00", tickets=2))

    assert receipt.accepted, reasons(receipt)
    assert by_rule(receipt) == {"entertainment-ticket": 84}
    assert by_rule(receipt, "credit") == {"entertainment-spend-ticket": Decimal("84.00")}


@pytest.mark.parametrize(("bought", "show", "promoted"), [
    ("2026-03-07", "2026-03-09", True),    # Sat for Mon: 5 + 2 = 7 % 7 = 0
    ("2026-03-07", "2026-03-10", True),    # Sat for Tue: 5 + 3 = 8 % 7 = 1
    ("2026-03-02", "2026-03-05", True),    # Mon for Thu: 0 + 3 = 3
    ("2026-03-05", "2026-03-05", True),    # Thu, same day: 3
    ("2026-03-03", "2026-03-06", False),   # Tue for Fri: 1 + 3 = 4
    ("2026-03-02", "2026-03-07", False),   # Mon for Sat: 0 + 5 = 5
    ("2026-03-04", "2026-03-08", False),   # Wed for Sun: 2 + 4 = 6
    ("2026-03-10", "2026-03-31", True),    # Tue for a Tue three weeks on: 1 + 21 = 22 % 7 = 1
    ("2026-03-01", "2026-02-26", True),    # a late sale entered after a Thursday show: 6 - 3 = 3
])
def test_weekday_promotion_follows_the_show_day_not_the_purchase_day(engine, ent, bought,
                                                                      show, promoted):
    # 84.00 spend -> 84 base; the promotion doubles it: + 84 x 1 = 84 extra
    receipt = engine.process(ent.ticket("90.00", fee="6.00", bought=bought, show=show))

    expected = {"entertainment-ticket": 84}
    if promoted:
        expected["entertainment-cinema-weekday"] = 84
    assert by_rule(receipt) == expected


def test_weekday_promotion_is_for_cinemas_only(engine, ent):
    # a park ticket for a Tuesday: 260 points, no promotion
    receipt = engine.process(ent.ticket("260.00", kind="park", show="2026-03-10"))

    assert by_rule(receipt) == {"entertainment-ticket": 260}


@pytest.mark.parametrize(("tier", "rule", "extra"), [
    # floor(85 x 0.25) = floor(21.25) = 21 -> 85 + 85 + 21 = 191
    ("silver", "entertainment-tier-silver", 21),
    # floor(85 x 0.5) = floor(42.5) = 42 -> 85 + 85 + 42 = 212
    ("gold", "entertainment-tier-gold", 42),
    # 85 x 1 = 85 -> 85 + 85 + 85 = 255 (3x: the line's worst case, under its 4x cap)
    ("diamond", "entertainment-tier-diamond", 85),
])
def test_tier_bonus_adds_to_the_weekday_promotion(engine, ent, tier, rule, extra):
    engine.enrol({"id": "M1", "tier": tier})
    # Monday show, 85.00 paid, no fee: base 85, promotion + 85
    receipt = engine.process(ent.ticket("85.00", bought="2026-03-02"))

    assert receipt.accepted, reasons(receipt)
    assert by_rule(receipt) == {"entertainment-ticket": 85,
                                "entertainment-cinema-weekday": 85, rule: extra}
    assert receipt.points == 170 + extra


def test_weekday_promotion_is_capped_at_1000_extra_points_a_month(engine, ent):
    # a private screening hall booked for Tuesdays: 600.00 each, base 600
    first = engine.process(ent.ticket("600.00", bought="2026-03-03"))
    # extra 600 (600 of 1000 used)
    assert by_rule(first)["entertainment-cinema-weekday"] == 600

    second = engine.process(ent.ticket("600.00", bought="2026-03-10"))
    # extra would be 600, only 1000 - 600 = 400 left
    assert by_rule(second)["entertainment-cinema-weekday"] == 400
    assert "capped from 600 to 400" in next(
        e.trace.detail for e in second.effects if e.rule == "entertainment-cinema-weekday")

    third = engine.process(ent.ticket("600.00", bought="2026-03-17"))
    assert by_rule(third) == {"entertainment-ticket": 600}

    # April is a new month: 600 + 600 again
    april = engine.process(ent.ticket("600.00", bought="2026-04-07"))
    assert april.points == 1200


def test_pass_points_wait_for_the_cooling_off_period(engine, ent):
    engine.enrol({"id": "M1", "tier": "gold"})
    # annual pass 1280.00: base 1280 + gold floor(1280 x 0.5) = 640 -> 1920, all held
    # 14 days (the bonus inherits the base rule's hold); no weekday promotion on passes
    receipt = engine.process(ent.pass_("1280.00", day="2026-03-02"))

    assert receipt.accepted, reasons(receipt)
    assert by_rule(receipt, "hold") == {"entertainment-pass": 1280,
                                        "entertainment-tier-gold": 640}
    assert receipt.points == 0 and receipt.pending_points == 1920
    assert by_rule(receipt, "credit") == {"entertainment-spend-pass": Decimal("1280.00")}
    # vests at 2026-03-02 10:00 + 14 days = 2026-03-16 10:00
    assert balances(engine, "2026-03-16T09:59:00+08:00") == (0, 1920)
    assert balances(engine, "2026-03-16T10:00:00+08:00") == (1920, 0)


def test_pass_returned_in_the_cooling_off_period_voids_its_points(engine, ent):
    engine.process(ent.pass_("1280.00", day="2026-03-02", id="x-pass"))

    # full refund: floor(1280 x 1280 / 1280) = 1280, taken from the pending points
    receipt = engine.process(ent.refund("x-pass", "1280.00", day="2026-03-10"))

    assert by_rule(receipt, "reverse") == {"entertainment-refund": 1280}
    assert by_rule(receipt, "credit") == {"entertainment-spend-refund": Decimal("-1280.00")}
    assert balances(engine, "2026-03-20") == (0, 0)
    assert engine.member("M1").qualification.credits["spend"] == 0


def test_one_of_two_tickets_refunded_fee_kept(engine, ent):
    engine.process(ent.ticket("90.00", fee="6.00", tickets=2, id="x-t"))  # 84 points

    # one ticket's 42.00 back, the fee is kept:
    # points floor(84 x 42 / 90) = floor(39.2) = 39; spend credit -(42.00 - 0) = -42.00
    receipt = engine.process(ent.refund("x-t", "42.00"))

    assert by_rule(receipt, "reverse") == {"entertainment-refund": 39}
    assert by_rule(receipt, "credit") == {"entertainment-spend-refund": Decimal("-42.00")}
    # 84 - 39 = 45 points; 84.00 - 42.00 = 42.00 spend
    assert balances(engine, "2026-03-08") == (45, 0)
    assert engine.member("M1").qualification.credits["spend"] == Decimal("42.00")

    # the rest, with the fee: refunds now 90 -> floor(84 x 90 / 90) = 84, minus 39 = 45
    # spend credit -(48.00 - 6.00) = -42.00
    rest = engine.process(ent.refund("x-t", "48.00", fee="6.00", day="2026-03-09"))
    assert by_rule(rest, "reverse") == {"entertainment-refund": 45}
    assert by_rule(rest, "credit") == {"entertainment-spend-refund": Decimal("-42.00")}
    assert balances(engine, "2026-03-09") == (0, 0)

    over = engine.process(ent.refund("x-t", "0.01", day="2026-03-10"))
    assert not over.accepted
    assert over.violations[0].invariant == "refund-bounds"


def test_entry_counts_a_visit_and_earns_nothing(engine, ent):
    engine.process(ent.entry(day="2026-03-07"))
    receipt = engine.process(ent.entry(day="2026-03-14"))

    assert receipt.accepted, reasons(receipt)
    assert receipt.points == 0
    assert by_rule(receipt, "credit") == {"entertainment-visits": Decimal(1)}
    member = engine.member("M1")
    assert member.qualification.credits == {"visits": Decimal(2)}
    assert member.qualification.lines_active == frozenset({"entertainment"})


def test_a_big_pass_lifts_a_member_to_silver(engine, ent):
    # a season box at the arena: 20000.00 spend credit reaches silver (20000); the points
    # are judged at the tier before the event: 20000 held, no silver bonus
    receipt = engine.process(ent.pass_("20000.00", kind="season"))

    assert receipt.tier_after == "silver"
    assert by_rule(receipt, "hold") == {"entertainment-pass": 20000}
