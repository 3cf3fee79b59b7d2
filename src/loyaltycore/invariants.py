"""The group invariants, checked on every decision before anything is applied.

Plugins and rulesets cannot switch these off. Each check re-derives what it needs from
the policy and the proposed effects rather than trusting the rule that proposed them, and
a violation names the invariant, the rule and the numbers. The ledger-side invariants
(no overdraft, conservation) are checked where points are written.

Invariants checked here: line isolation, multiplier cap, bonus cap, cost ceiling, tier
moves along the ladder, rights (exist, eligible, within quota), refund bounds, redemption
(no overdraft, the group's redemption policy). Determinism
of plugin hooks is checked by the plugin guard (each hook runs twice and must agree);
rule expressions are deterministic by construction (no clock, randomness or I/O).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .decide import Decision, to_points
from .effects import (
    EarnPoints,
    GrantRight,
    HoldPoints,
    QualifyingCredit,
    ReversePoints,
    TierChange,
    UseRight,
)
from .receipts import Violation
from .redemption import CORE_EVENT_TYPES, check_core
from .rights import find_right, quota_room
from .tiers import meets

INVARIANTS = ("line-isolation", "multiplier-cap", "bonus-cap", "cost-ceiling", "tier-ladder",
              "rights", "refund-bounds", "redemption")


def check(decision: Decision, *, plugin_lines: dict[str, frozenset[str]] | None = None
          ) -> list[Violation]:
    """All violations of the decision's effects (empty: the decision may be applied).

    One pass over the effects gathers what each invariant needs (per-effect line
    isolation and reversal checks, the line's point totals, tier moves, rights); the
    violations are then reported invariant by invariant, each in effect order.
    """
    if decision.violations or decision.group is None:
        return list(decision.violations)
    d = decision
    plugin_lines = plugin_lines or {}
    ev = d.event.__dict__  # envelope read once (a model's attributes cost more)
    line = ev["line"]
    isolation: list[Violation] = []
    reversals: list[Violation] = []
    spend_points = bonus_points = 0
    labels: list[str] = []
    changes: list[TierChange] = []
    rights: list[GrantRight | UseRight] = []
    kinds = _KINDS
    for e in d.effects:
        src = e.source
        eline = e.line
        kind = kinds.get(type(e)) or _kind_of(e)
        if not (eline == line and src in _EVENT_LINE_SOURCES and kind != _TIER):
            _line_isolation(d, e, plugin_lines, isolation)
        if kind == _POINTS:
            if eline == line:
                if e.basis == "bonus":
                    bonus_points += e.points
                else:
                    spend_points += e.points
                label = e.rule if src == "rules" or src == "group" else (
                    f"{src} ({e.rule})" if e.rule else src)
                if label and label not in labels:
                    labels.append(label)
        elif kind == _CREDIT:
            if src != "rules" and e.value < 0:
                reversals.append(Violation(invariant="refund-bounds", rule=e.rule,
                                           message="negative qualifying credit from a plugin"))
        elif kind == _RIGHT:
            rights.append(e)
        elif kind == _TIER:
            changes.append(e)
        elif kind == _REVERSE and eline != line:
            reversals.append(Violation(
                invariant="line-isolation", rule=e.rule,
                message=f"a {line} event cannot reverse points of a {eline} event "
                        f"({e.reverses})"))
    out = isolation
    if spend_points or bonus_points:
        _point_caps(d, spend_points, bonus_points, labels, out, line, ev["amount"])
    if changes:
        _tier_moves(d, changes, out)
    if rights:
        _rights(d, rights, out)
    out.extend(reversals)
    if ev["type"] in CORE_EVENT_TYPES:
        check_core(d, out)
    return out


# Sources whose effects may only be for the event's own line (see _line_isolation).
_EVENT_LINE_SOURCES = frozenset({"rules", "group", "core"})
_POINTS, _CREDIT, _RIGHT, _TIER, _REVERSE, _OTHER = range(1, 7)
_KINDS: dict[type, int] = {EarnPoints: _POINTS, HoldPoints: _POINTS, QualifyingCredit: _CREDIT,
                           GrantRight: _RIGHT, UseRight: _RIGHT, TierChange: _TIER,
                           ReversePoints: _REVERSE}


def _kind_of(e: Any) -> int:
    """What the invariants make of an effect whose class is not one of the core's own."""
    for cls, kind in _KINDS.items():
        if isinstance(e, cls):
            return kind
    return _OTHER


def _line_isolation(d: Decision, e: Any, plugin_lines: dict[str, frozenset[str]],
                    out: list[Violation]) -> None:
    line = d.event.line
    src = e.source
    if isinstance(e, TierChange):
        allowed = {"group"}
    elif src.startswith("plugin:"):
        allowed = set(plugin_lines.get(src[7:], frozenset()))
    elif src.startswith("tiers:"):
        allowed = {src[6:]}
    elif src == "tiers" and isinstance(e, GrantRight):
        rd = d.group.rights.get(e.right) if d.group else None
        allowed = {line} if rd is not None else {e.line}
    else:
        allowed = {line}
    if e.line not in allowed:
        out.append(Violation(
            invariant="line-isolation", rule=e.rule or src,
            message=f"{e.kind} effect for line {e.line!r} proposed by {src} while judging "
                    f"a {line} event; only {sorted(allowed)} allowed",
            numbers={"effect_line": e.line, "event_line": line}))


def _point_caps(d: Decision, spend_points: int, bonus_points: int, rules_seen: list[str],
                out: list[Violation], line: str, amount: Decimal | None) -> None:
    policy = d.group.policy
    caps = d.group.caps(line)
    who = ", ".join(rules_seen) or None
    amount = amount or Decimal(0)
    limit = to_points(amount * caps.base_rate * caps.max_multiplier, "floor")
    if spend_points > limit:
        out.append(Violation(
            invariant="multiplier-cap", rule=who,
            message=f"{spend_points} spend-based points on a spend of {amount} exceed "
                    f"{amount} x base rate {caps.base_rate} x max multiplier "
                    f"{caps.max_multiplier} = {limit}",
            numbers={"points": spend_points, "spend": str(amount), "limit": limit,
                     "max_multiplier": str(caps.max_multiplier)}))
    if bonus_points > caps.max_bonus_points:
        out.append(Violation(
            invariant="bonus-cap", rule=who,
            message=f"{bonus_points} bonus points on one event exceed the line's cap of "
                    f"{caps.max_bonus_points}",
            numbers={"bonus_points": bonus_points, "limit": caps.max_bonus_points}))
    if amount > 0:
        points = spend_points + bonus_points
        cost = points * caps.point_value
        ceiling = caps.max_cost_ratio * amount
        if cost > ceiling:
            out.append(Violation(
                invariant="cost-ceiling", rule=who,
                message=f"{points} points cost {cost} {policy.currency}, above "
                        f"{caps.max_cost_ratio} x spend {amount} = {ceiling}",
                numbers={"points": points, "cost": str(cost), "ceiling": str(ceiling),
                         "max_cost_ratio": str(caps.max_cost_ratio)}))


def _tier_moves(d: Decision, changes: list[TierChange], out: list[Violation]) -> None:
    if len(changes) > 1:
        out.append(Violation(invariant="tier-ladder", message="more than one tier move in "
                                                              "one decision"))
        return
    change = changes[0]
    rank = d.group.tier_rank
    if change.from_tier != d.member.tier:
        out.append(Violation(invariant="tier-ladder", rule=change.rule,
                             message=f"move from {change.from_tier} but the member is "
                                     f"{d.member.tier}"))
        return
    if change.to_tier not in rank:
        out.append(Violation(invariant="tier-ladder", rule=change.rule,
                             message=f"unknown tier {change.to_tier!r}"))
        return
    if change.reason != "upgrade" or rank[change.to_tier] <= rank[change.from_tier]:
        out.append(Violation(
            invariant="tier-ladder", rule=change.rule,
            message=f"{change.from_tier} -> {change.to_tier} ({change.reason}) outside a "
                    "review: only upgrades happen on events"))
        return
    spec = d.group.policy.tiers[rank[change.to_tier]]
    if d.qualification_after is None or meets(spec.upgrade, d.qualification_after) is None:
        credits = dict(d.qualification_after.credits) if d.qualification_after else {}
        out.append(Violation(
            invariant="tier-ladder", rule=change.rule,
            message=f"upgrade to {change.to_tier} but no upgrade threshold is met",
            numbers={"thresholds": {k: str(v) for k, v in spec.upgrade.items()},
                     "qualification": {k: str(v) for k, v in credits.items()}}))


def _rights(d: Decision, effects: list[GrantRight | UseRight], out: list[Violation]) -> None:
    used: dict[str, int] = {}
    granted: dict[str, int] = {}
    for e in effects:
        rd = find_right(e.right, d.group, _book_for(d, e.line), e.line, d.book,
                        d.event.occurred_at)
        if rd is None:
            out.append(Violation(invariant="rights", rule=e.rule,
                                 message=f"right {e.right!r} does not exist for line {e.line}"))
            continue
        right = rd.right
        tier = d.tier_after if isinstance(e, GrantRight) else d.member.tier
        if right.tiers is not None and tier not in right.tiers:
            out.append(Violation(
                invariant="rights", rule=e.rule or right.id,
                message=f"{right.id} is for tiers {right.tiers}; the member is {tier}",
                numbers={"tier": tier}))
            continue
        if rd.when is not None:
            try:
                ok = rd.when.fn(*d.args)
            except Exception as exc:  # noqa: BLE001
                ok = False
                out.append(Violation(invariant="rights", rule=right.id,
                                     message=f"eligibility of {right.id} failed: {exc}"))
                continue
            if not ok:
                out.append(Violation(invariant="rights", rule=e.rule or right.id,
                                     message=f"not eligible for {right.id}: {right.when}"))
                continue
        if isinstance(e, GrantRight):
            granted[right.id] = granted.get(right.id, 0) + 1
            room = quota_room(rd, d.member, {}, d.local_date, counter="grant")
            if room is not None and granted[right.id] > room:
                out.append(Violation(
                    invariant="rights", rule=e.rule or right.id,
                    message=f"{right.id} quota of {right.quota.count} per {right.quota.per} "
                            f"is used up", numbers={"quota": right.quota.count}))
            continue
        used[right.id] = used.get(right.id, 0) + e.quantity
        if right.mode == "voucher":
            have = d.member.vouchers.get(right.id, 0)
            if used[right.id] > have:
                out.append(Violation(
                    invariant="rights", rule=right.id,
                    message=f"no valid {right.id} to use: {have} unused and unexpired, "
                            f"{used[right.id]} requested",
                    numbers={"available": have, "requested": used[right.id]}))
                continue
        room = quota_room(rd, d.member, {}, d.local_date, counter="use")
        if room is not None and used[right.id] > room:
            out.append(Violation(
                invariant="rights", rule=right.id,
                message=f"{right.id} allows {right.quota.count} per {right.quota.per}; "
                        f"{right.quota.count - room} used, {used[right.id]} more requested",
                numbers={"quota": right.quota.count, "remaining": room,
                         "requested": used[right.id]}))


def _book_for(d: Decision, line: str):
    lb = d.line_book
    return lb if lb is not None and lb.ruleset.line == line else None
