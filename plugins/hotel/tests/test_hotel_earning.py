"""What a checkout earns: eligible revenue, third-party stays, tier bonuses, long stays.

Every expected figure is worked out by hand in the comment above it: base rate 1 point per
CNY, rounding floor (rulesets/group.yaml), figures from the hotel ruleset.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hotel_support import by_rule, reasons


def test_direct_stay_earns_on_room_and_fnb_but_not_taxes_or_service(engine, hotel):
    # folio 1800.00 room + 320.50 F&B + 127.23 taxes + 212.05 service = 2459.78 paid
    # eligible = 1800.00 + 320.50 = 2120.50 -> floor(2120.50 x 1) = 2120 points
    receipt = engine.process(hotel.checkout(nights=3, room="1800.00", fnb="320.50",
                                            taxes="127.23", service="212.05"))

    assert receipt.accepted, reasons(receipt)
    assert by_rule(receipt) == {"hotel-base": 2120}
    assert receipt.points == 2120 and receipt.pending_points == 0
    assert by_rule(receipt, "credit") == {"hotel-nights": Decimal(3),
                                          "hotel-spend": Decimal("2120.50")}


@pytest.mark.parametrize("channel", ["ota", "wholesale"])
def test_third_party_stay_earns_no_points_and_no_credit(engine, hotel, channel):
    receipt = engine.process(hotel.checkout(nights=6, room="3000", channel=channel))

    assert receipt.accepted, reasons(receipt)
    assert receipt.effects == ()
    assert engine.member("M1").qualification.credits == {}


@pytest.mark.parametrize("channel", ["direct", "app", "web", "call_centre", "corporate"])
def test_every_own_channel_earns(engine, hotel, channel):
    # 2 nights, 700 room -> 700 points, no long-stay bonus (fewer than 5 nights)
    receipt = engine.process(hotel.checkout(nights=2, room="700", channel=channel))

    assert by_rule(receipt) == {"hotel-base": 700}


@pytest.mark.parametrize(("tier", "rule", "extra"), [
    # silver x1.25: floor(999 x 0.25) = floor(249.75) = 249 -> 999 + 249 = 1248
    ("silver", "hotel-tier-silver", 249),
    # gold x1.5: floor(999 x 0.5) = floor(499.5) = 499 -> 999 + 499 = 1498
    ("gold", "hotel-tier-gold", 499),
    # diamond x2: 999 x 1 = 999 -> 999 + 999 = 1998
    ("diamond", "hotel-tier-diamond", 999),
])
def test_tier_bonus_on_base_points(engine, hotel, tier, rule, extra):
    engine.enrol({"id": "M1", "tier": tier})
    # 2 nights, 999.00 room + 99.90 taxes: base floor(999.00) = 999
    receipt = engine.process(hotel.checkout(nights=2, room="999.00", taxes="99.90"))

    assert receipt.accepted, reasons(receipt)
    assert by_rule(receipt) == {"hotel-base": 999, rule: extra}
    assert receipt.points == 999 + extra


def test_tier_bonus_does_not_apply_to_a_third_party_stay(engine, hotel):
    engine.enrol({"id": "M1", "tier": "diamond"})
    # no base points, so the x2 has nothing to multiply
    receipt = engine.process(hotel.checkout(nights=2, room="999", channel="ota"))

    assert receipt.accepted and receipt.points == 0


def test_part_of_the_folio_paid_with_a_voucher_does_not_earn(engine, hotel):
    # 1000 room + 200 F&B on the folio, but only 600.00 changed hands (rest: a voucher)
    # spend = min(600.00, 1200) = 600.00 -> 600 points and 600.00 spend credit
    receipt = engine.process(hotel.checkout(nights=1, room="1000", fnb="200",
                                            amount="600.00"))

    assert by_rule(receipt) == {"hotel-base": 600}
    assert by_rule(receipt, "credit")["hotel-spend"] == Decimal("600.00")


def test_long_stay_bonus_on_five_nights(engine, hotel):
    # 5 nights, 2500 room + 250 taxes: base 2500 + long-stay bonus 500 = 3000
    receipt = engine.process(hotel.checkout(nights=5, room="2500", taxes="250"))

    assert by_rule(receipt) == {"hotel-base": 2500, "hotel-long-stay": 500}
    assert [e.basis for e in receipt.effects if e.kind == "earn"] == ["base", "bonus"]
    assert receipt.points == 3000


@pytest.mark.parametrize(("nights", "room", "channel"), [
    (4, "2500", "direct"),     # one night short
    (5, "999.99", "direct"),   # under the 1000 CNY revenue floor
    (7, "5000", "ota"),        # third-party stays earn nothing, bonuses included
])
def test_no_long_stay_bonus(engine, hotel, nights, room, channel):
    receipt = engine.process(hotel.checkout(nights=nights, room=room, channel=channel))

    assert "hotel-long-stay" not in by_rule(receipt)


def test_diamond_long_stay_stays_inside_the_group_caps(engine, hotel):
    engine.enrol({"id": "M1", "tier": "diamond"})
    # the most a cheap long stay can earn: 5 nights, 1000 room, nothing else paid
    # base 1000 + diamond 1000 + bonus 500 = 2500 points = 25.00 CNY
    # caps: spend points 2000 <= 1000 x 3; bonus 500 <= 2000; 25.00 <= 0.05 x 1000 = 50.00
    receipt = engine.process(hotel.checkout(nights=5, room="1000"))

    assert receipt.accepted, reasons(receipt)
    assert receipt.points == 2500


def test_checkout_without_an_amount_is_rejected(engine, hotel):
    event = hotel.checkout(nights=1, room="500")
    del event["amount"], event["currency"]

    receipt = engine.process(event)

    assert not receipt.accepted
    assert receipt.violations[0].invariant == "rule-evaluation"
    assert receipt.violations[0].rule == "hotel-base"
