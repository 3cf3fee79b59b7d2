"""Contract to handover: points held and capped per contract, vested at handover, voided on
cancellation; tier credit capped so that one home reaches gold at most.

Figures: 1 point per CNY (group base rate), at most 200000 points per contract; tier
credit 5% of contract value, at most 80000 per contract (gold 80000, diamond 200000).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from property_support import balances, effects, reasons


def test_contract_points_are_held_capped_and_credit_lifts_to_gold(engine, prop):
    # 1,680,000.00 x 1 = 1680000 points, capped per contract to 200000, held until handover
    # credit: min(1680000.00 x 0.05, 80000) = min(84000.0000, 80000) = 80000 -> gold
    # caps: 200000 <= 1680000 x 1; cost 2000.00 <= 0.01 x 1680000 = 16800.00
    receipt = engine.process(prop.contract("1680000.00", id="c-1"))

    assert receipt.accepted, reasons(receipt)
    (hold,) = effects(receipt, "hold")
    assert (hold.rule, hold.points, hold.vests_on) == ("property-contract", 200000, "handover")
    assert "capped from 1680000 to 200000" in hold.trace.detail
    assert receipt.points == 0 and receipt.pending_points == 200000
    (credit,) = effects(receipt, "credit")
    assert credit.value == 80000
    assert receipt.tier_after == "gold"
    # the group's own welcome voucher for gold comes with it
    assert [g.right for g in effects(receipt, "grant_right")] == ["group-welcome-gold"]


def test_a_small_contract_earns_in_full_at_exactly_the_cost_ceiling(engine, prop):
    # a parking space: 150000.00 -> 150000 points, under the 200000 cap
    # cost 150000 x 0.01 = 1500.00 = 0.01 x 150000.00: exactly at the ceiling, allowed
    # credit 150000.00 x 0.05 = 7500.0000 -> still member (silver needs 20000)
    receipt = engine.process(prop.contract("150000.00", id="c-park"))

    assert receipt.accepted, reasons(receipt)
    assert receipt.pending_points == 150000
    assert effects(receipt, "credit")[0].value == Decimal("7500.0000")
    assert receipt.tier_after == "member"


def test_a_mid_priced_home_reaches_silver(engine, prop):
    # 600000.00 x 0.05 = 30000.0000 credit: silver (20000), not gold (80000)
    receipt = engine.process(prop.contract("600000.00", id="c-1"))

    assert receipt.tier_after == "silver"


def test_even_a_villa_alone_never_reaches_diamond(engine, prop):
    # 50,000,000 x 0.05 = 2,500,000 -> capped at 80000: gold, far from diamond's 200000
    receipt = engine.process(prop.contract("50000000.00", id="c-villa"))

    assert receipt.tier_after == "gold"
    assert engine.member("M1").qualification.credits["spend"] == 80000


def test_three_homes_in_a_year_can_reach_diamond(engine, prop):
    # documented consequence of a per-contract cap: 80000 + 80000 = 160000 stays gold,
    # the third home makes 240000 >= 200000
    assert engine.process(prop.contract("2000000", id="c-1")).tier_after == "gold"
    assert engine.process(prop.contract("2000000", id="c-2", unit="T1-1802")).tier_after \
        == "gold"
    third = engine.process(prop.contract("2000000", id="c-3", unit="T1-1803"))
    assert third.tier_after == "diamond"


def test_handover_vests_the_contract_points(engine, prop):
    engine.process(prop.contract("1680000.00", id="c-1", day="2026-03-02"))
    assert balances(engine, "2026-08-31") == (0, 200000)  # no date vests them

    receipt = engine.process(prop.handover("c-1", day="2026-09-01"))

    assert receipt.accepted, reasons(receipt)
    assert receipt.effects == ()  # a handover earns nothing itself
    assert balances(engine, "2026-09-01") == (200000, 0)


def test_handover_vests_only_its_own_contract(engine, prop):
    engine.process(prop.contract("1680000.00", id="c-1"))
    engine.process(prop.contract("150000.00", id="c-park", unit="P-B2-017"))

    engine.process(prop.handover("c-park"))

    # the parking space's 150000 vest; the flat's 200000 wait for their own handover
    assert balances(engine, "2026-09-01") == (150000, 200000)


def test_handover_of_an_unknown_contract_vests_nothing(engine, prop):
    engine.process(prop.contract("1680000.00", id="c-1"))

    receipt = engine.process(prop.handover("c-other"))

    assert receipt.accepted
    assert balances(engine, "2026-09-01") == (0, 200000)


def test_cancellation_before_handover_voids_the_points_and_the_credit(engine, prop):
    engine.process(prop.contract("1680000.00", id="c-1", day="2026-03-02"))

    # whole contract cancelled: floor(200000 x 1680000 / 1680000) = 200000 voided
    # credit: -min(1680000.00 x 0.05, 80000) = -80000
    receipt = engine.process(prop.cancellation("c-1", "1680000.00", day="2026-04-01"))

    assert receipt.accepted, reasons(receipt)
    (reverse,) = effects(receipt, "reverse")
    assert (reverse.rule, reverse.points, reverse.reverses) == \
        ("property-cancellation", 200000, "c-1")
    assert [c.value for c in effects(receipt, "credit")] == [-80000]
    assert balances(engine, "2026-04-01") == (0, 0)
    assert engine.member("M1").qualification.credits["spend"] == 0
    # downgrades happen only at a review, never on an event
    assert receipt.tier_after == "gold"

    # a handover after the cancellation finds nothing to vest
    engine.process(prop.handover("c-1", day="2026-09-01"))
    assert balances(engine, "2026-09-01") == (0, 0)


def test_cancellation_after_handover_takes_the_points_back_from_the_balance(engine, prop):
    engine.process(prop.contract("150000.00", id="c-park"))
    engine.process(prop.handover("c-park", day="2026-09-01"))

    # a buy-back: floor(150000 x 150000 / 150000) = 150000 off the available balance
    receipt = engine.process(prop.cancellation("c-park", "150000.00", day="2026-10-01"))

    assert effects(receipt, "reverse")[0].points == 150000
    assert balances(engine, "2026-10-01") == (0, 0)


def test_cancellation_of_part_of_a_contract_voids_in_proportion(engine, prop):
    engine.process(prop.contract("400000.00", id="c-1"))

    # floor(200000 x 100000 / 400000) = 50000 voided; credit -min(5000.0000, 80000)
    receipt = engine.process(prop.cancellation("c-1", "100000.00"))

    assert effects(receipt, "reverse")[0].points == 50000
    assert effects(receipt, "credit")[0].value == Decimal("-5000.0000")
    assert balances(engine, "2026-04-01") == (0, 150000)


@pytest.mark.parametrize(("contract_id", "value"), [
    ("c-1", "1680000.01"),   # more than the contract value
    ("c-unknown", "100.00"),  # a contract this member never signed
])
def test_impossible_cancellations_are_rejected(engine, prop, contract_id, value):
    engine.process(prop.contract("1680000.00", id="c-1"))

    receipt = engine.process(prop.cancellation(contract_id, value))

    assert not receipt.accepted
    assert receipt.violations[0].invariant == "refund-bounds"
    assert balances(engine, "2026-04-01") == (0, 200000)


def test_cancellation_of_another_members_contract_is_rejected(engine, prop):
    engine.process(prop.contract("1680000.00", id="c-1", member="M1"))

    receipt = engine.process(prop.cancellation("c-1", "1680000.00", member="M2"))

    assert not receipt.accepted
    assert balances(engine, "2026-04-01", member="M1") == (0, 200000)
