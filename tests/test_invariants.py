"""Each group invariant catches its violation and names invariant, rule and numbers.

Decisions are built by hand (support.make_decision) with the violating effects, as if a
rule or plugin had proposed them, and judged by invariants.check directly.
Retail caps (rulesets/group.yaml): multiplier 5, cost ratio 0.08, bonus 500 points.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from loyaltycore.effects import (
    EarnPoints,
    GrantRight,
    HoldPoints,
    QualifyingCredit,
    ReversePoints,
    TierChange,
    UseRight,
)
from loyaltycore.invariants import INVARIANTS, check
from loyaltycore.members import MemberSnapshot, Qualification
from loyaltycore.receipts import Violation
from plugins import support

ev = support.Events()


@pytest.fixture(scope="module")
def engine():
    return support.open_real()


def only(violations, invariant):
    found = [v for v in violations if v.invariant == invariant]
    assert len(found) == 1, violations
    return found[0]


def earn(points, basis="base", line="retail", rule="r", **kw):
    return EarnPoints(line=line, rule=rule, points=points, basis=basis, **kw)


def test_the_invariants_checked(engine):
    assert INVARIANTS == ("line-isolation", "multiplier-cap", "bonus-cap", "cost-ceiling",
                          "tier-ladder", "rights", "refund-bounds", "redemption")


def test_clean_decision_passes(engine):
    d = support.make_decision(engine, [earn(100, rule="retail-base"),
                                       earn(200, "multiply", rule="retail-beauty-x2"),
                                       earn(200, "bonus", rule="retail-first-purchase")])
    assert check(d) == []


# --- line isolation --------------------------------------------------------------------------


def test_rule_effect_for_another_line(engine):
    d = support.make_decision(engine, [earn(10, line="hotel", rule="sneaky")])
    v = only(check(d), "line-isolation")
    assert v.rule == "sneaky"
    assert v.numbers == {"effect_line": "hotel", "event_line": "retail"}
    assert "'hotel'" in v.message and "retail event" in v.message


def test_plugin_effect_outside_its_lines(engine):
    e = earn(10, line="retail", rule=None, source="plugin:arcade")
    d = support.make_decision(engine, [e])
    v = only(check(d, plugin_lines={"arcade": frozenset({"arcade"})}), "line-isolation")
    assert v.rule == "plugin:arcade"  # no rule id: the source is named
    assert "['arcade'] allowed" in v.message
    assert check(d, plugin_lines={"arcade": frozenset({"arcade", "retail"})}) == []


def test_tier_change_must_be_a_group_effect(engine):
    change = TierChange(line="retail", rule="tier:silver", source="tiers", from_tier="member",
                        to_tier="silver")
    q = Qualification(credits={"spend": Decimal(20000)})
    d = support.make_decision(engine, [change], qualification_after=q, tier_after="silver")
    v = only(check(d), "line-isolation")
    assert v.rule == "tier:silver" and v.numbers["effect_line"] == "retail"


def test_reversal_of_another_lines_event(engine):
    e = ReversePoints(line="hotel", rule="retail-refund", points=10, reverses="h-1")
    d = support.make_decision(engine, [e], raw=ev.refund("h-1", "10"))
    violations = [v for v in check(d) if v.invariant == "line-isolation"]
    assert violations and all(v.rule == "retail-refund" for v in violations)
    assert any("cannot reverse points of a hotel event (h-1)" in v.message for v in violations)


# --- point caps ------------------------------------------------------------------------------


def test_multiplier_cap(engine):
    # 100 CNY x base rate 1 x max multiplier 5 = 500 spend-based points at most.
    ok = support.make_decision(engine, [earn(100, rule="base"),
                                        HoldPoints(line="retail", rule="x", points=400,
                                                   basis="multiply")])
    assert check(ok) == []
    d = support.make_decision(engine, [earn(100, rule="base"),
                                       HoldPoints(line="retail", rule="x", points=401,
                                                  basis="multiply")])
    v = only(check(d), "multiplier-cap")
    assert v.rule == "base, x"
    assert v.numbers == {"points": 501, "spend": "100", "limit": 500, "max_multiplier": "5"}
    assert "501 spend-based points on a spend of 100 exceed" in v.message


def test_multiplier_cap_rounds_the_limit_down(engine):
    raw = ev.purchase("10.19")  # 10.19 x 5 = 50.95 -> 50
    assert check(support.make_decision(engine, [earn(50)], raw=raw)) == []
    v = only(check(support.make_decision(engine, [earn(51)], raw=raw)), "multiplier-cap")
    assert v.numbers["limit"] == 50


def test_points_without_spend_break_the_multiplier_cap(engine):
    d = support.make_decision(engine, [earn(1, rule="free")], raw=ev.use("retail-vip-lane"))
    v = only(check(d), "multiplier-cap")
    assert v.numbers["limit"] == 0 and v.numbers["spend"] == "0"


def test_bonus_cap(engine):
    # max 500 bonus points on one retail event, whatever the spend.
    raw = ev.purchase("100000")
    assert check(support.make_decision(engine, [earn(300, "bonus", rule="a"),
                                                earn(200, "bonus", rule="b")], raw=raw)) == []
    d = support.make_decision(engine, [earn(300, "bonus", rule="a"),
                                       earn(201, "bonus", rule="b")], raw=raw)
    v = only(check(d), "bonus-cap")
    assert v.rule == "a, b"
    assert v.numbers == {"bonus_points": 501, "limit": 500}
    assert "501 bonus points on one event exceed the line's cap of 500" in v.message


def test_cost_ceiling(engine):
    # 100 CNY: ceiling 0.08 x 100 = 8 CNY = 800 points at 0.01 each.
    ok = support.make_decision(engine, [earn(400), earn(400, "bonus", rule="b")])
    assert check(ok) == []
    d = support.make_decision(engine, [earn(400, rule="a"), earn(401, "bonus", rule="b")])
    violations = check(d)
    assert [v.invariant for v in violations] == ["cost-ceiling"]
    v = violations[0]
    assert v.rule == "a, b"
    assert v.numbers == {"points": 801, "cost": "8.01", "ceiling": "8.00",
                         "max_cost_ratio": "0.08"}
    assert "801 points cost 8.01 CNY, above 0.08 x spend 100 = 8.00" in v.message


def test_points_of_another_line_are_not_counted_against_this_lines_caps(engine):
    d = support.make_decision(engine, [earn(10_000, "bonus", line="hotel")])
    assert [v.invariant for v in check(d)] == ["line-isolation"]


# --- tier ladder -------------------------------------------------------------------------


SPEND_20K = Qualification(credits={"spend": Decimal(20000)}, lines_active=frozenset({"retail"}))


def move(frm, to, reason="upgrade"):
    return TierChange(line="group", rule=f"tier:{to}", source="tiers", from_tier=frm,
                      to_tier=to, reason=reason)


def test_valid_upgrade_passes(engine):
    d = support.make_decision(engine, [move("member", "silver")],
                              qualification_after=SPEND_20K, tier_after="silver")
    assert check(d) == []


def test_upgrade_without_meeting_a_threshold(engine):
    q = Qualification(credits={"spend": Decimal("19999.99")})
    d = support.make_decision(engine, [move("member", "silver")], qualification_after=q,
                              tier_after="silver")
    v = only(check(d), "tier-ladder")
    assert v.rule == "tier:silver"
    assert v.numbers == {"thresholds": {"spend": "20000", "nights": "10",
                                        "lines_active": "2"},
                         "qualification": {"spend": "19999.99"}}


@pytest.mark.parametrize(("effects", "member_tier", "fragment"), [
    ([move("member", "silver"), move("silver", "gold")], "member", "more than one tier move"),
    ([move("silver", "gold")], "member", "move from silver but the member is member"),
    ([move("member", "platinum")], "member", "unknown tier 'platinum'"),
    ([move("gold", "silver")], "gold", "gold -> silver (upgrade) outside a review"),
    ([move("member", "silver", reason="review")], "member", "(review) outside a review"),
    ([move("silver", "silver")], "silver", "silver -> silver"),
])
def test_tier_moves_off_the_ladder(engine, effects, member_tier, fragment):
    member = MemberSnapshot(id="M1", tier=member_tier)
    d = support.make_decision(engine, effects, member=member, qualification_after=SPEND_20K)
    v = only(check(d), "tier-ladder")
    assert fragment in v.message


# --- rights --------------------------------------------------------------------------------


def use(right, quantity=1):
    return UseRight(line="retail", rule=None, source="core", right=right, quantity=quantity)


def grant(right, rule="g"):
    return GrantRight(line="retail", rule=rule, right=right)


def test_unknown_right(engine):
    v = only(check(support.make_decision(engine, [use("free-lunch")])), "rights")
    assert "'free-lunch' does not exist for line retail" in v.message


def test_right_for_other_tiers(engine):
    d = support.make_decision(engine, [use("retail-vip-lane")])
    v = only(check(d), "rights")
    assert v.rule == "retail-vip-lane" and v.numbers == {"tier": "member"}
    gold = MemberSnapshot(id="M1", tier="gold")
    assert check(support.make_decision(engine, [use("retail-vip-lane")], member=gold)) == []


def test_grant_is_judged_on_the_tier_after_the_event(engine):
    # group-welcome-gold is for gold/diamond: granting it to a member who stays silver fails.
    silver = MemberSnapshot(id="M1", tier="silver")
    d = support.make_decision(engine, [grant("group-welcome-gold", rule="tier:gold")],
                              member=silver)
    v = only(check(d), "rights")
    assert v.rule == "tier:gold" and v.numbers == {"tier": "silver"}
    d = support.make_decision(engine, [grant("group-welcome-gold")], member=silver,
                              tier_after="gold")
    assert [x.invariant for x in check(d) if x.invariant == "rights"] == []


def test_grant_over_quota(engine):
    # group-birthday-gift: one grant a year; this member already had 2026's.
    member = MemberSnapshot(id="M1", tier="member", counters={"grant:group-birthday-gift:y2026": 1})
    v = only(check(support.make_decision(engine, [grant("group-birthday-gift")], member=member)),
             "rights")
    assert v.numbers == {"quota": 1} and "quota of 1 per year is used up" in v.message
    fresh = MemberSnapshot(id="M1", tier="member")
    two = support.make_decision(engine, [grant("group-birthday-gift"),
                                         grant("group-birthday-gift")], member=fresh)
    assert only(check(two), "rights").numbers == {"quota": 1}


def test_voucher_use_needs_a_voucher(engine):
    member = MemberSnapshot(id="M1", tier="member", vouchers={"retail-birthday-gift": 1})
    assert check(support.make_decision(engine, [use("retail-birthday-gift")],
                                       member=member)) == []
    v = only(check(support.make_decision(engine, [use("retail-birthday-gift", 2)],
                                         member=member)), "rights")
    assert v.numbers == {"available": 1, "requested": 2}


def test_entitlement_use_over_quota(engine):
    member = MemberSnapshot(id="M1", tier="silver",
                            counters={"use:retail-parking-2h:m2026-03": 1})
    assert check(support.make_decision(engine, [use("retail-parking-2h")], member=member)) == []
    v = only(check(support.make_decision(engine, [use("retail-parking-2h", 2)], member=member)),
             "rights")
    assert v.rule == "retail-parking-2h"
    assert v.numbers == {"quota": 2, "remaining": 1, "requested": 2}
    assert "allows 2 per month; 1 used, 2 more requested" in v.message
    # Last month's uses do not count.
    april = support.make_decision(engine, [use("retail-parking-2h", 2)], member=member,
                                  raw=ev.purchase("100", at="2026-04-01"))
    assert check(april) == []


# --- refund bounds -----------------------------------------------------------------------------


def test_negative_qualifying_credit_from_a_plugin(engine):
    credit = QualifyingCredit(line="retail", rule="minus", source="plugin:x", credit="spend",
                              value=Decimal(-50))
    v = only(check(support.make_decision(engine, [credit])), "refund-bounds")
    assert v.rule == "minus" and "negative qualifying credit from a plugin" in v.message
    from_rules = credit.model_copy(update={"source": "rules"})
    assert check(support.make_decision(engine, [from_rules])) == []


def test_refund_bounds_from_deciding_are_kept(engine):
    d = support.make_decision(engine, [])
    d.violations.append(Violation(invariant="refund-bounds", rule="retail-refund",
                                  message="over", numbers={"refunded": "1"}))
    assert check(d) == d.violations


def test_several_invariants_are_reported_together(engine):
    d = support.make_decision(engine, [earn(600, rule="a"), earn(600, "bonus", rule="b"),
                                       earn(1, line="hotel", rule="c"),
                                       use("retail-vip-lane")])
    assert {v.invariant for v in check(d)} == {"line-isolation", "multiplier-cap",
                                               "bonus-cap", "cost-ceiling", "rights"}
