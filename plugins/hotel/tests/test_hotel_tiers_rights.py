"""Tier moves from stays, the diamond welcome amenity, room upgrades and late checkout."""

from __future__ import annotations

from datetime import datetime

import pytest
from hotel_support import by_rule, reasons


def test_nights_lift_a_member_to_silver_and_the_next_stay_earns_the_silver_bonus(engine,
                                                                                 hotel):
    # 9 nights, 2700 room: base 2700 + long stay 500 = 3200; 9 nights < 10 -> still member
    first = engine.process(hotel.checkout(nights=9, room="2700", at="2026-03-02"))
    assert first.points == 3200 and first.tier_after == "member"

    # 1 more night: 9 + 1 = 10 nights reaches silver. This stay is judged at the tier the
    # member had before it: 999 points, no silver bonus
    second = engine.process(hotel.checkout(nights=1, room="999", at="2026-03-10"))
    assert second.tier_before == "member" and second.tier_after == "silver"
    assert by_rule(second) == {"hotel-base": 999}
    assert [e.to_tier for e in second.effects if e.kind == "tier_change"] == ["silver"]
    assert by_rule(second, "grant_right") == {}  # the amenity is for diamond only

    # now silver: 999 + floor(999 x 0.25) = 999 + 249 = 1248
    third = engine.process(hotel.checkout(nights=1, room="999", at="2026-03-20"))
    assert third.points == 1248


def _grants(receipt):
    return [(e.right, e.rule) for e in receipt.effects if e.kind == "grant_right"]


def test_reaching_diamond_grants_the_welcome_amenity_once_usable(engine, hotel):
    engine.enrol({"id": "M1", "tier": "gold"})
    # 60 nights, 30000 room + 1800 taxes = 31800 paid
    # base 30000 + gold floor(30000 x 0.5) = 15000 + long stay 500 = 45500 points
    # caps: 45000 <= 31800 x 3; 500 <= 2000; 455.00 CNY <= 0.05 x 31800 = 1590.00
    # credit: 60 nights reaches the diamond threshold of 60
    receipt = engine.process(hotel.checkout(nights=60, room="30000", taxes="1800",
                                            at="2026-04-01"))

    assert receipt.accepted, reasons(receipt)
    assert receipt.points == 45500
    assert receipt.tier_after == "diamond"
    assert _grants(receipt) == [("hotel-welcome-amenity", "hotel-diamond-welcome")]
    grant = next(e for e in receipt.effects if e.kind == "grant_right")
    # valid 180 days from the checkout
    assert grant.valid_until == datetime.fromisoformat("2026-09-28T12:00:00+08:00")

    used = engine.process(hotel.use("hotel-welcome-amenity", at="2026-05-01"))
    assert used.accepted, reasons(used)

    again = engine.process(hotel.use("hotel-welcome-amenity", at="2026-05-02"))
    assert not again.accepted
    assert "no valid hotel-welcome-amenity" in reasons(again)


def test_the_welcome_amenity_expires_after_180_days(engine, hotel):
    engine.enrol({"id": "M1", "tier": "gold"})
    engine.process(hotel.checkout(nights=60, room="30000", at="2026-04-01"))

    # 2026-04-01 + 180 days = 2026-09-28; the next day it is gone
    late = engine.process(hotel.use("hotel-welcome-amenity", at="2026-09-29"))

    assert not late.accepted
    assert "0 unused and unexpired" in reasons(late)


def test_the_welcome_amenity_cannot_be_used_without_a_grant(engine, hotel):
    engine.enrol({"id": "M1", "tier": "diamond"})

    receipt = engine.process(hotel.use("hotel-welcome-amenity"))

    assert not receipt.accepted


@pytest.mark.parametrize(("tier", "right", "quota"), [
    ("silver", "hotel-upgrade-silver", 2),
    ("gold", "hotel-upgrade-gold", 6),
    ("diamond", "hotel-upgrade-diamond", 12),
])
def test_room_upgrade_quota_per_year(engine, hotel, tier, right, quota):
    engine.enrol({"id": "M1", "tier": tier})

    for i in range(quota):
        receipt = engine.process(hotel.use(right, at=f"2026-{i % 12 + 1:02d}-05"))
        assert receipt.accepted, (i, reasons(receipt))

    over = engine.process(hotel.use(right, at="2026-12-20"))
    assert not over.accepted
    assert f"{right} allows {quota} per year; {quota} used, 1 more requested" in reasons(over)

    # a new calendar year, a new quota
    assert engine.process(hotel.use(right, at="2027-01-03")).accepted


def test_several_upgrades_in_one_use_count_against_the_quota(engine, hotel):
    engine.enrol({"id": "M1", "tier": "silver"})

    # a silver member has 2 a year: using 3 rooms' upgrades at once is refused whole
    assert not engine.process(hotel.use("hotel-upgrade-silver", quantity=3)).accepted
    assert engine.process(hotel.use("hotel-upgrade-silver", quantity=2)).accepted


@pytest.mark.parametrize(("tier", "right"), [
    ("member", "hotel-upgrade-silver"),
    ("silver", "hotel-upgrade-gold"),
    ("gold", "hotel-upgrade-diamond"),
    ("member", "hotel-late-checkout-14"),
    ("silver", "hotel-late-checkout-16"),
])
def test_rights_of_a_higher_tier_are_refused(engine, hotel, tier, right):
    engine.enrol({"id": "M1", "tier": tier})

    receipt = engine.process(hotel.use(right))

    assert not receipt.accepted
    assert receipt.violations[0].invariant == "rights"
    assert f"the member is {tier}" in reasons(receipt)


@pytest.mark.parametrize(("tier", "right"), [
    ("silver", "hotel-late-checkout-14"),
    ("gold", "hotel-late-checkout-16"),
    ("diamond", "hotel-late-checkout-16"),
])
def test_late_checkout_has_no_quota(engine, hotel, tier, right):
    engine.enrol({"id": "M1", "tier": tier})

    for day in range(1, 21):
        assert engine.process(hotel.use(right, at=f"2026-03-{day:02d}")).accepted
