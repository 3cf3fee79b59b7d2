"""The referral bonus (paid to the referrer on a referral_reward event) and priority
booking for diamond members."""

from __future__ import annotations

import pytest
from property_support import balances, effects, reasons


def test_referrer_is_paid_when_the_referee_takes_handover(engine, prop):
    # the referee M2 signs and takes handover; the CRM then sends a reward for M1
    engine.process(prop.contract("1680000.00", id="c-m2", member="M2"))
    engine.process(prop.handover("c-m2", member="M2", day="2026-09-01"))

    receipt = engine.process(prop.referral("M2", "c-m2", member="M1", day="2026-09-01"))

    assert receipt.accepted, reasons(receipt)
    (earn,) = effects(receipt, "earn")
    assert (earn.rule, earn.points, earn.basis) == ("property-referral", 20000, "bonus")
    # available at once: the referee's handover already happened
    assert balances(engine, "2026-09-01", member="M1") == (20000, 0)
    # the referee's own points are untouched by the referral
    assert balances(engine, "2026-09-01", member="M2") == (200000, 0)
    # a referral is no purchase: no tier credit
    assert effects(receipt, "credit") == []


def test_a_resent_referral_is_not_paid_twice(engine, prop):
    first = engine.process(prop.referral("M2", "c-m2"))
    again = engine.process(prop.referral("M2", "c-m2"))

    assert again == first  # the same event id: the original receipt, nothing new
    assert balances(engine, "2026-09-01") == (20000, 0)


def test_self_referral_earns_nothing(engine, prop):
    receipt = engine.process(prop.referral("M1", "c-own", member="M1"))

    assert receipt.accepted and receipt.points == 0


def test_referral_bonus_is_capped_at_five_a_year(engine, prop):
    for n in range(1, 6):
        assert engine.process(prop.referral(f"R{n}", f"c-r{n}", day=f"2026-0{n}-10")).points \
            == 20000

    sixth = engine.process(prop.referral("R6", "c-r6", day="2026-12-01"))
    assert sixth.accepted and sixth.points == 0
    # 5 x 20000 = 100000 in 2026
    assert balances(engine, "2026-12-01") == (100000, 0)

    # a new year, a new allowance
    assert engine.process(prop.referral("R7", "c-r7", day="2027-01-05")).points == 20000


def test_priority_booking_for_diamond_twice_a_year(engine, prop):
    engine.enrol({"id": "M1", "tier": "diamond"})

    assert engine.process(prop.use("property-priority-booking", day="2026-03-02")).accepted
    assert engine.process(prop.use("property-priority-booking", day="2026-06-02")).accepted
    third = engine.process(prop.use("property-priority-booking", day="2026-09-02"))
    assert not third.accepted
    assert "allows 2 per year; 2 used, 1 more requested" in reasons(third)

    assert engine.process(prop.use("property-priority-booking", day="2027-01-10")).accepted


@pytest.mark.parametrize("tier", ["member", "silver", "gold"])
def test_priority_booking_is_for_diamond_only(engine, prop, tier):
    engine.enrol({"id": "M1", "tier": tier})

    receipt = engine.process(prop.use("property-priority-booking"))

    assert not receipt.accepted
    assert receipt.violations[0].invariant == "rights"
