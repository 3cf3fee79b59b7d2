"""Folio refunds: points clawed back in proportion, tier credit taken back exactly."""

from __future__ import annotations

from decimal import Decimal

from hotel_support import by_rule, reasons


def test_partial_then_full_refund_claws_back_in_proportion(engine, hotel):
    # folio 2459.78 (1800.00 room + 320.50 F&B + 127.23 taxes + 212.05 service) -> 2120
    stay = hotel.checkout(nights=3, room="1800.00", fnb="320.50", taxes="127.23",
                          service="212.05", id="h-stay")
    assert engine.process(stay).points == 2120

    # half the money back: floor(2120 x 1229.89 / 2459.78) = floor(1060) = 1060
    first = engine.process(hotel.refund("h-stay", "1229.89", eligible="1060.25"))
    assert first.accepted, reasons(first)
    assert by_rule(first, "reverse") == {"hotel-refund": 1060}
    assert by_rule(first, "credit") == {"hotel-spend-refund": Decimal("-1060.25")}

    # the rest: refunds now 2459.78 -> floor(2120 x 1) = 2120, minus 1060 already = 1060
    second = engine.process(hotel.refund("h-stay", "1229.89", eligible="1060.25",
                                         nights=3))
    assert by_rule(second, "reverse") == {"hotel-refund": 1060}
    assert by_rule(second, "credit") == {"hotel-nights-refund": Decimal(-3),
                                         "hotel-spend-refund": Decimal("-1060.25")}

    member = engine.member("M1")
    # 2120 - 1060 - 1060 = 0 points; 2120.50 - 1060.25 - 1060.25 = 0 spend; 3 - 3 = 0 nights
    assert member.available == 0
    assert member.qualification.credits == {"nights": Decimal(0), "spend": Decimal("0.00")}


def test_refund_of_more_than_the_folio_is_rejected(engine, hotel):
    engine.process(hotel.checkout(nights=1, room="500", id="h-stay"))

    receipt = engine.process(hotel.refund("h-stay", "500.01", eligible="500"))

    assert not receipt.accepted
    assert receipt.violations[0].invariant == "refund-bounds"
    assert engine.member("M1").available == 500


def test_refund_of_an_unknown_stay_is_rejected(engine, hotel):
    receipt = engine.process(hotel.refund("h-nope", "100", eligible="100"))

    assert not receipt.accepted
    assert receipt.violations[0].invariant == "refund-bounds"


def test_eligible_part_never_exceeds_the_money_refunded(engine, hotel):
    engine.process(hotel.checkout(nights=2, room="1000", id="h-stay"))

    # the PMS claims 900 of a 300.00 refund was room revenue: only 300.00 comes off
    # points: floor(1000 x 300 / 1000) = 300
    receipt = engine.process(hotel.refund("h-stay", "300.00", eligible="900"))

    assert by_rule(receipt, "reverse") == {"hotel-refund": 300}
    assert by_rule(receipt, "credit") == {"hotel-spend-refund": Decimal("-300.00")}


def test_refund_of_a_third_party_stay_takes_no_credit(engine, hotel):
    # the direct stay gives 2 nights and 800 spend; the OTA stay gives nothing
    engine.process(hotel.checkout(nights=2, room="800"))
    engine.process(hotel.checkout(nights=3, room="1500", channel="ota", id="h-ota"))

    receipt = engine.process(hotel.refund("h-ota", "1500", eligible="1500", nights=3,
                                          channel="ota"))

    assert receipt.accepted, reasons(receipt)
    # the OTA stay earned 0, so nothing is clawed back, and no credit is taken
    assert by_rule(receipt, "reverse") == {"hotel-refund": 0}
    assert by_rule(receipt, "credit") == {}
    assert engine.member("M1").qualification.credits == {"nights": Decimal(2),
                                                         "spend": Decimal(800)}
