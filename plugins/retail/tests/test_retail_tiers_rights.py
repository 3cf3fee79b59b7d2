"""Tier moves from retail spend, the soft landing at the anniversary review, and the
retail rights: discounts, parking hours, the VIP lane and the birthday gift."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from retail_support import at, by_rule, reasons


def test_spend_lifts_a_member_to_silver_and_the_next_purchase_earns_the_silver_bonus(
        engine, retail):
    # 15000.00 -> 15000 + first purchase 200 = 15200; spend 15000.00 < 20000: member
    first = engine.process(retail.purchase("15000.00", at="2026-03-02"))
    assert first.pending_points == 15200 and first.tier_after == "member"

    # 15000.00 + 5000.00 = 20000.00 reaches silver. This purchase is judged at the tier the
    # member had before it: 5000, no silver bonus
    second = engine.process(retail.purchase("5000.00", at="2026-03-10"))
    assert second.tier_before == "member" and second.tier_after == "silver"
    assert by_rule(second) == {"retail-base": 5000}
    assert [(e.from_tier, e.to_tier) for e in second.effects
            if e.kind == "tier_change"] == [("member", "silver")]

    # silver now: 1000 + floor(1000 x 0.1) = 1100
    third = engine.process(retail.purchase("1000.00", at="2026-03-20"))
    assert by_rule(third) == {"retail-base": 1000, "retail-tier-silver": 100}


def test_gift_card_and_parking_do_not_count_towards_tiers(engine, retail):
    # 25000.00 paid, 4000.00 by gift card, 1000.50 parking: 19999.50 spend < 20000
    receipt = engine.process(retail.purchase("25000.00", giftcard_paid="4000.00",
                                             parking_fee="1000.50"))
    assert receipt.tier_after == "member"

    # buying a 10000.00 gift card adds nothing either
    assert engine.process(retail.purchase("10000.00", giftcard_purchase=True,
                                          at="2026-03-03")).tier_after == "member"

    # 0.50 more real spend: 19999.50 + 0.50 = 20000.00
    assert engine.process(retail.purchase("0.50", at="2026-03-04")).tier_after == "silver"


def _moves(report):
    return [(m.on, m.from_tier, m.to_tier) for m in report.moves]


def test_gold_by_spend_then_a_year_without_spend_drops_one_tier_only(engine, retail):
    engine.enrol({"id": "M1", "enrolled_on": "2025-06-15"})  # reviews on 15 June

    # 80000.00 in one go: member -> gold (silver is skipped): 80000 + 200 = 80200 points
    # cost 802.00 <= 0.08 x 80000 = 6400.00
    receipt = engine.process(retail.purchase("80000.00", at="2026-03-02", id="p-gold"))
    assert receipt.accepted, reasons(receipt)
    assert receipt.pending_points == 80200
    assert receipt.tier_after == "gold"
    # reaching gold grants the group's welcome voucher (group.yaml tiers.gold.on_upgrade)
    assert [e.right for e in receipt.effects if e.kind == "grant_right"] == [
        "group-welcome-gold"]

    # review 2026-06-15 judges Jun 2025 - May 2026: 80000.00 >= retain 60000 -> keeps gold
    assert _moves(engine.run_jobs(at("2026-06-15"))) == []
    kept = engine.member("M1", at=at("2026-06-16"))
    assert kept.tier == "gold" and kept.tier_valid_until == date(2027, 6, 15)

    # review 2027-06-15 judges Jun 2026 - May 2027: no spend at all, so no tier is kept;
    # the soft landing (1) drops gold to silver, not to member
    assert _moves(engine.run_jobs(at("2027-06-15"))) == [(date(2027, 6, 15), "gold",
                                                          "silver")]
    landed = engine.member("M1", at=at("2027-06-16"))
    assert landed.tier == "silver"
    assert landed.available == 80200  # earned in 2026: they expire on 2029-01-01

    history = engine.tier_history("M1")
    assert [(h["from_tier"], h["to_tier"], h["reason"]) for h in history] == [
        ("member", "gold", "upgrade"), ("gold", "silver", "review")]
    assert history[0]["event_id"] == "p-gold"
    assert datetime.fromisoformat(history[1]["at"]) == datetime.fromisoformat(
        "2027-06-15T00:00:00+08:00")

    # a second empty year: silver -> member
    assert _moves(engine.run_jobs(at("2028-06-15"))) == [(date(2028, 6, 15), "silver",
                                                          "member")]


def test_the_gold_welcome_voucher_can_be_used_at_a_mall(engine, retail):
    engine.process(retail.purchase("80000.00", at="2026-03-02"))

    used = engine.process(retail.use("group-welcome-gold", at="2026-03-05"))
    assert used.accepted, reasons(used)
    assert not engine.process(retail.use("group-welcome-gold", at="2026-03-06")).accepted


@pytest.mark.parametrize(("tier", "right", "hours"), [
    ("silver", "retail-parking-2h", 2),
    ("gold", "retail-parking-4h", 4),
    ("diamond", "retail-parking-8h", 8),
])
def test_free_parking_hours_per_month(engine, retail, tier, right, hours):
    engine.enrol({"id": "M1", "tier": tier})

    # one hour at a time up to the month's quota
    for day in range(1, hours + 1):
        receipt = engine.process(retail.use(right, at=f"2026-03-{day:02d}"))
        assert receipt.accepted, (day, reasons(receipt))

    over = engine.process(retail.use(right, at="2026-03-31"))
    assert not over.accepted
    assert over.violations[0].invariant == "rights"
    assert f"{right} allows {hours} per month; {hours} used, 1 more requested" in reasons(over)

    # April: a new month's hours, all at once
    assert engine.process(retail.use(right, hours, at="2026-04-01")).accepted


def test_parking_hours_asked_for_all_at_once_are_refused_whole(engine, retail):
    engine.enrol({"id": "M1", "tier": "silver"})

    # 3 hours with 2 a month: refused, nothing used; then 2 fit
    assert not engine.process(retail.use("retail-parking-2h", 3)).accepted
    assert engine.process(retail.use("retail-parking-2h", 2)).accepted


@pytest.mark.parametrize(("tier", "right"), [
    ("member", "retail-discount-10"),
    ("member", "retail-parking-2h"),
    ("silver", "retail-discount-20"),
    ("silver", "retail-parking-4h"),
    ("silver", "retail-vip-lane"),
    ("gold", "retail-discount-30"),
    ("gold", "retail-parking-8h"),
    # a higher tier uses its own right, not the one it supersedes
    ("gold", "retail-parking-2h"),
    ("diamond", "retail-discount-20"),
])
def test_rights_of_another_tier_are_refused(engine, retail, tier, right):
    engine.enrol({"id": "M1", "tier": tier})

    receipt = engine.process(retail.use(right))

    assert not receipt.accepted
    assert receipt.violations[0].invariant == "rights"
    assert f"the member is {tier}" in reasons(receipt)


@pytest.mark.parametrize(("tier", "right"), [
    ("silver", "retail-discount-10"),
    ("gold", "retail-discount-20"),
    ("gold", "retail-vip-lane"),
    ("diamond", "retail-discount-30"),
    ("diamond", "retail-vip-lane"),
])
def test_discounts_and_the_vip_lane_have_no_quota(engine, retail, tier, right):
    engine.enrol({"id": "M1", "tier": tier})

    for day in range(1, 21):
        assert engine.process(retail.use(right, at=f"2026-03-{day:02d}")).accepted


def test_birthday_gift_granted_with_the_first_purchase_of_the_month_and_used_once(
        engine, retail):
    engine.enrol({"id": "M1", "birth_month": 3})

    receipt = engine.process(retail.purchase("50.00", at="2026-03-02"))
    (grant,) = [e for e in receipt.effects if e.kind == "grant_right"]
    assert grant.right == "retail-birthday-gift"
    # valid 30 days from the purchase: 2026-03-02 12:00 + 30 days
    assert grant.valid_until == datetime.fromisoformat("2026-04-01T12:00:00+08:00")
    assert engine.member("M1", at=at("2026-03-02")).vouchers == {"retail-birthday-gift": 1}

    # a second purchase in the month grants nothing more (1 a year)
    again = engine.process(retail.purchase("50.00", at="2026-03-10"))
    assert by_rule(again, "grant_right") == {}

    used = engine.process(retail.use("retail-birthday-gift", at="2026-03-20"))
    assert used.accepted, reasons(used)
    twice = engine.process(retail.use("retail-birthday-gift", at="2026-03-21"))
    assert not twice.accepted and twice.violations[0].invariant == "rights"


def test_birthday_gift_lapses_after_30_days(engine, retail):
    engine.enrol({"id": "M1", "birth_month": 3})
    engine.process(retail.purchase("50.00", at="2026-03-02"))

    late = engine.process(retail.use("retail-birthday-gift", at="2026-04-02"))

    assert not late.accepted
    assert late.violations[0].invariant == "rights"


def test_no_birthday_gift_outside_the_birthday_month(engine, retail):
    engine.enrol({"id": "M1", "birth_month": 5})
    receipt = engine.process(retail.purchase("50.00", at="2026-03-02"))

    assert by_rule(receipt, "grant_right") == {}
    assert not engine.process(retail.use("retail-birthday-gift", at="2026-03-03")).accepted
