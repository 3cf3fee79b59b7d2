"""What a purchase earns: net eligible spend, the exclusions, category, member-day,
birthday and tier multipliers, their monthly caps, the first-purchase bonus.

Every expected figure is worked out by hand in the comment above it: base rate 1 point per
CNY, rounding floor (rulesets/group.yaml), figures from the ruleset this package ships
(src/loyaltycore_retail/rulesets/retail.yaml). Retail points are held (`hold` effects) for
the 7-day return window, so they show as pending points.
Multipliers add up and do not compound: x2 adds base x 1, x1.25 adds floor(base x 0.25).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from retail_support import by_rule, reasons


def test_base_is_net_spend_without_the_gift_card_paid_part_and_parking(engine, retail):
    # 1000.00 paid: 300.00 of it with a gift card, 20.00 of it the parking fee
    # net spend = 1000.00 - 300.00 - 20.00 = 680.00 -> floor(680.00 x 1) = 680 points
    # first purchase of >= 100 CNY (the gross amount): +200 -> 880 points, all pending
    receipt = engine.process(retail.purchase("1000.00", giftcard_paid="300.00",
                                             parking_fee="20.00"))

    assert receipt.accepted, reasons(receipt)
    assert by_rule(receipt) == {"retail-base": 680, "retail-first-purchase": 200}
    assert receipt.points == 0 and receipt.pending_points == 880
    # the same net spend is the tier credit
    assert by_rule(receipt, "credit") == {"retail-spend": Decimal("680.00")}


def test_fractions_of_a_yuan_are_rounded_down(engine, retail):
    engine.process(retail.purchase("50.00"))  # first purchase, under 100: no bonus; 50 points
    # net 129.99 - 10.50 parking = 119.49 -> floor(119.49) = 119
    receipt = engine.process(retail.purchase("129.99", parking_fee="10.50"))

    assert by_rule(receipt) == {"retail-base": 119}


def test_buying_a_gift_card_earns_nothing_and_gives_no_tier_credit(engine, retail):
    engine.process(retail.purchase("50.00"))  # first purchase (under 100: no bonus)

    # the points are earned when the gift card is spent, not when it is bought
    receipt = engine.process(retail.purchase("2000.00", giftcard_purchase=True))

    assert receipt.accepted, reasons(receipt)
    assert receipt.effects == ()
    # 50.00 from the first purchase only
    assert engine.member("M1", at=receipt.occurred_at).qualification.credits == {
        "spend": Decimal("50.00")}


def test_parking_alone_earns_nothing(engine, retail):
    engine.process(retail.purchase("50.00"))
    # 30.00 - 30.00 parking = 0.00 -> 0 points; a credit of 0 adds nothing (no effect)
    receipt = engine.process(retail.purchase("30.00", parking_fee="30.00"))

    assert receipt.accepted, reasons(receipt)
    assert by_rule(receipt) == {"retail-base": 0}
    assert by_rule(receipt, "credit") == {}


def test_first_purchase_bonus_reads_the_gross_amount(engine, retail):
    # The welcome bonus reads net spend like retail-base: a first purchase paid entirely
    # with a gift card (net 150.00 - 150.00 = 0.00) earns neither.
    receipt = engine.process(retail.purchase("150.00", giftcard_paid="150.00"))

    assert receipt.accepted, reasons(receipt)
    assert by_rule(receipt) == {"retail-base": 0}


def test_a_first_purchase_of_a_gift_card_earns_no_bonus(engine, retail):
    # Buying a gift card earns nothing, welcome bonus included (the card earns when it
    # is spent... on nothing either: gift-card money never earns, see the README).
    receipt = engine.process(retail.purchase("100.00", giftcard_purchase=True))

    assert receipt.accepted, reasons(receipt)
    assert (receipt.points, receipt.pending_points) == (0, 0)
    assert by_rule(receipt, "credit") == {}


def test_first_purchase_bonus_only_once_and_only_from_100(engine, retail):
    # 99.99: under 100, no bonus; the member is no longer new afterwards
    first = engine.process(retail.purchase("99.99"))
    second = engine.process(retail.purchase("500.00", at="2026-03-03"))

    assert by_rule(first) == {"retail-base": 99}
    assert by_rule(second) == {"retail-base": 500}


def test_net_spend_below_zero_is_rejected(engine, retail):
    # a till bug: 80.00 gift card + 40.00 parking on a 100.00 sale -> spend -20.00
    receipt = engine.process(retail.purchase("100.00", giftcard_paid="80.00",
                                             parking_fee="40.00"))

    assert not receipt.accepted
    assert receipt.violations[0].invariant == "rule-evaluation"
    assert receipt.violations[0].rule == "retail-base"


def test_beauty_doubles_up_to_3000_extra_points_a_month(engine, retail):
    # 2000.00 beauty: base 2000 + beauty 2000 (3000 left this month) + first purchase 200
    first = engine.process(retail.purchase("2000.00", category="beauty", at="2026-03-02"))
    assert by_rule(first) == {"retail-base": 2000, "retail-beauty-x2": 2000,
                              "retail-first-purchase": 200}

    # 1500.00 beauty: base 1500; the x2 would add 1500 but only 3000 - 2000 = 1000 is left
    second = engine.process(retail.purchase("1500.00", category="beauty", at="2026-03-16"))
    assert by_rule(second) == {"retail-base": 1500, "retail-beauty-x2": 1000}
    beauty = next(e for e in second.effects if e.rule == "retail-beauty-x2")
    assert "capped from 1500 to 1000" in beauty.trace.detail

    # cap used up for March: 400 base only
    third = engine.process(retail.purchase("400.00", category="beauty", at="2026-03-31"))
    assert by_rule(third) == {"retail-base": 400}

    # April (group timezone): a new 3000. 800 + 800
    fourth = engine.process(retail.purchase("800.00", category="beauty",
                                            at="2026-04-01T00:30:00+08:00"))
    assert by_rule(fourth) == {"retail-base": 800, "retail-beauty-x2": 800}


def test_other_categories_are_not_doubled(engine, retail):
    receipt = engine.process(retail.purchase("300.00", category="cosmetics-counter"))

    # only the exact category 'beauty' doubles: 300 + first purchase 200
    assert by_rule(receipt) == {"retail-base": 300, "retail-first-purchase": 200}


def test_member_day_doubles_wednesday_app_purchases_up_to_2000_a_month(engine, retail):
    engine.process(retail.purchase("50.00", at="2026-03-02"))  # not new from here on

    # Wednesday 2026-03-04, in the app: 1200 + 1200
    wed = engine.process(retail.purchase("1200.00", channel="app", at="2026-03-04"))
    assert by_rule(wed) == {"retail-base": 1200, "retail-member-day": 1200}

    # next Wednesday: only 2000 - 1200 = 800 left
    wed2 = engine.process(retail.purchase("1000.00", channel="app", at="2026-03-11"))
    assert by_rule(wed2) == {"retail-base": 1000, "retail-member-day": 800}

    # a Wednesday in April: a new month, 600 + 600
    april = engine.process(retail.purchase("600.00", channel="app", at="2026-04-01"))
    assert by_rule(april) == {"retail-base": 600, "retail-member-day": 600}


@pytest.mark.parametrize(("at", "channel"), [
    ("2026-03-04", "store"),      # Wednesday, but at the till
    ("2026-03-04", "web"),        # Wednesday, on the web shop
    ("2026-03-05", "app"),        # Thursday
    # 16:30 UTC on Wednesday is already Thursday 00:30 in Shanghai
    ("2026-03-04T16:30:00+00:00", "app"),
])
def test_no_member_day(engine, retail, at, channel):
    receipt = engine.process(retail.purchase("50.00", channel=channel, at=at))

    assert by_rule(receipt) == {"retail-base": 50}


def test_member_day_is_wednesday_in_the_group_timezone(engine, retail):
    # 20:30 UTC on Tuesday is Wednesday 04:30 in Shanghai: 50 + 50
    receipt = engine.process(retail.purchase("50.00", channel="app",
                                             at="2026-03-03T20:30:00+00:00"))

    assert by_rule(receipt) == {"retail-base": 50, "retail-member-day": 50}


def test_birthday_month_doubles_up_to_5000_extra_points(engine, retail):
    engine.enrol({"id": "M1", "birth_month": 3})

    # March: 3000 + birthday 3000 + first purchase 200; the birthday gift comes with it
    first = engine.process(retail.purchase("3000.00", at="2026-03-02"))
    assert first.accepted, reasons(first)
    assert by_rule(first) == {"retail-base": 3000, "retail-birthday-x2": 3000,
                              "retail-first-purchase": 200}
    assert by_rule(first, "grant_right") == {"retail-birthday-gift": "retail-birthday-gift"}

    # 4000.00 later in March: the x2 is capped at 5000 - 3000 = 2000; no second gift
    second = engine.process(retail.purchase("4000.00", at="2026-03-20"))
    assert by_rule(second) == {"retail-base": 4000, "retail-birthday-x2": 2000}
    assert by_rule(second, "grant_right") == {}

    # April is not the birthday month: 1000 base only
    april = engine.process(retail.purchase("1000.00", at="2026-04-02"))
    assert by_rule(april) == {"retail-base": 1000}


@pytest.mark.parametrize(("tier", "rule", "extra"), [
    # silver x1.1: floor(999 x 0.1) = floor(99.9) = 99 -> 999 + 99 = 1098
    ("silver", "retail-tier-silver", 99),
    # gold x1.25: floor(999 x 0.25) = floor(249.75) = 249 -> 999 + 249 = 1248
    ("gold", "retail-tier-gold", 249),
    # diamond x1.5: floor(999 x 0.5) = floor(499.5) = 499 -> 999 + 499 = 1498
    ("diamond", "retail-tier-diamond", 499),
])
def test_tier_bonus_on_base_points(engine, retail, tier, rule, extra):
    engine.enrol({"id": "M1", "tier": tier})
    engine.process(retail.purchase("50.00", at="2026-03-01"))  # first purchase, no bonus

    # 999.00 fashion: base floor(999.00) = 999, plus the tier's extra
    receipt = engine.process(retail.purchase("999.00"))

    assert receipt.accepted, reasons(receipt)
    assert by_rule(receipt) == {"retail-base": 999, rule: extra}
    assert receipt.pending_points == 999 + extra


def test_a_member_earns_no_tier_bonus(engine, retail):
    # a plain member: 999 + first purchase 200, no tier rule
    receipt = engine.process(retail.purchase("999.00"))

    assert by_rule(receipt) == {"retail-base": 999, "retail-first-purchase": 200}


def test_every_multiplier_at_once_stays_within_the_retail_caps(engine, retail):
    engine.enrol({"id": "M1", "tier": "diamond", "birth_month": 3})
    # Diamond, birthday month, Wednesday 2026-03-04 in the app, beauty, first purchase:
    # base 1000 + beauty 1000 + member day 1000 + birthday 1000 + diamond 500 = 4500
    # + first purchase 200 = 4700 points
    # caps (group.yaml lines.retail): spend points 4500 <= 1000 x 5 = 5000;
    # bonus 200 <= 500; cost 4700 x 0.01 = 47.00 <= 0.08 x 1000 = 80.00
    receipt = engine.process(retail.purchase("1000.00", category="beauty", channel="app",
                                             at="2026-03-04"))

    assert receipt.accepted, reasons(receipt)
    assert by_rule(receipt) == {"retail-base": 1000, "retail-beauty-x2": 1000,
                                "retail-member-day": 1000, "retail-birthday-x2": 1000,
                                "retail-tier-diamond": 500, "retail-first-purchase": 200}
    assert receipt.pending_points == 4700
    hold = next(e for e in receipt.effects if e.rule == "retail-tier-diamond")
    # every point of the purchase waits for the return window: 7 days after it
    assert hold.vests_at == datetime.fromisoformat("2026-03-11T12:00:00+08:00")
