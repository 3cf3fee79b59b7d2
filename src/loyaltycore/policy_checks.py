"""Static checks of the group policy: what the group guarantees before any event arrives.

Run once when rulesets load (by :mod:`loyaltycore.rulebook`): tier thresholds rise up the
ladder, retain thresholds sit below upgrade ones, a higher tier keeps the rights of the
tier below (or a right that supersedes them), and every line's rules can be shown to stay
within the group's caps in the worst case. Problems are reported through ``error`` with
the same signature as the rulebook's, so they arrive with file, line, rule and field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .errors import suggest
from .rulefiles import RulesetFile
from .rulesets import GroupPolicy

if TYPE_CHECKING:
    from .rulebook import CompiledRule, GroupBook, LineBook, RightDef, TypeRules

LINES_ACTIVE = "lines_active"
ErrorSink = Callable[..., None]


def check_ladder(f: RulesetFile, p: GroupPolicy, rights: dict[str, RightDef],
                 error: ErrorSink) -> None:
    """The ladder rises, retain <= upgrade, metrics and rights exist, rights carry up."""
    metrics = set(p.qualification.credits) | {LINES_ACTIVE}
    seen: set[str] = set()
    for i, tier in enumerate(p.tiers):
        tl = lambda fld=None, i=i: f.rule_line("tiers", i, fld)  # noqa: E731
        if tier.id in seen:
            error(f, "duplicate tier id", rule=tier.id, line=tl("id"))
        seen.add(tier.id)
        if i > 0 and not tier.upgrade:
            error(f, "every tier above the first needs upgrade thresholds",
                       rule=tier.id, field="upgrade", line=tl())
        for section in ("upgrade", "retain"):
            for metric in (getattr(tier, section) or {}):
                if metric not in metrics:
                    hint = suggest(metric, metrics)
                    error(f, f"unknown metric {metric!r} (qualifying credits and "
                                  f"lines_active: {sorted(metrics)})"
                                  + (f"; did you mean {hint!r}?" if hint else ""),
                               rule=tier.id, field=f"{section}.{metric}", line=tl(section))
        for metric, keep in (tier.retain or {}).items():
            up = tier.upgrade.get(metric)
            if up is not None and keep > up:
                error(f, f"retain threshold {keep} for {metric} is above the upgrade "
                              f"threshold {up}", rule=tier.id, field=f"retain.{metric}",
                           line=tl("retain"))
        for right in tier.on_upgrade:
            if right not in rights:
                error(f, f"unknown right {right!r}", rule=tier.id,
                           field="on_upgrade", line=tl("on_upgrade"))
    for i in range(2, len(p.tiers)):
        lower, higher = p.tiers[i - 1], p.tiers[i]
        for metric, need in higher.upgrade.items():
            below = lower.upgrade.get(metric)
            if below is not None and need <= below:
                error(f, f"upgrade threshold for {metric} ({need}) must be above "
                              f"{lower.id}'s ({below}): thresholds rise up the ladder",
                           rule=higher.id, field=f"upgrade.{metric}",
                           line=f.rule_line("tiers", i, "upgrade"))
        for metric in lower.upgrade:
            if metric not in higher.upgrade:
                error(f, f"{lower.id} qualifies on {metric} but {higher.id} does not: "
                              "a higher tier must be reachable on the same metrics",
                           rule=higher.id, field="upgrade", severity="warning",
                           line=f.rule_line("tiers", i, "upgrade"))
    if p.review.soft_landing > max(1, len(p.tiers) - 1):
        error(f, "soft_landing is larger than the ladder", field="review.soft_landing",
                   line=f.line_of("review", "soft_landing"), severity="warning")
    check_rights_inclusion(f, p, rights, error)

def check_rights_inclusion(f: RulesetFile, p: GroupPolicy, rights: dict[str, RightDef],
                           error: ErrorSink) -> None:
    """A higher tier keeps every right of the tier below, or one that supersedes it."""
    order = [t.id for t in p.tiers]
    superseded_by: dict[str, list[str]] = {}
    for rid, rd in rights.items():
        if rd.right.supersedes:
            superseded_by.setdefault(rd.right.supersedes, []).append(rid)

    def eligible(tier: str) -> set[str]:
        return {rid for rid, rd in rights.items()
                if rd.right.tiers is None or tier in rd.right.tiers}

    for i in range(1, len(order)):
        lower, higher = eligible(order[i - 1]), eligible(order[i])
        for rid in sorted(lower - higher):
            replacements = [r for r in superseded_by.get(rid, []) if r in higher]
            if not replacements:
                rd = rights[rid]
                error(rd.file, f"tier {order[i]} loses right {rid!r} that "
                                    f"{order[i - 1]} has: add {order[i]} to its tiers, or "
                                    f"give {order[i]} a right that supersedes it",
                           rule=rid, field="tiers", line=rd.line_no)

# --- caps: can every line's rules stay within the group's caps? -----------------------

def check_caps(lines: dict[str, list[LineBook]], groups: list[GroupBook],
               error: ErrorSink) -> None:
    """Can every line's rules stay within the group's caps, in the worst case?"""
    for line, books in lines.items():
        for book in books:
            for g in groups:
                caps = g.policy.lines.get(line)
                if caps is None or not _overlaps(book.ruleset, g.policy):
                    continue
                for etype, rules in book.by_type.items():
                    _check_type_caps(book, g, caps, line, etype, rules, error)

def _check_type_caps(book: LineBook, g: GroupBook, caps: Any, line: str, etype: str,
                     rules: TypeRules, error: ErrorSink) -> None:
    if not rules.base and not rules.multiply and not rules.bonus:
        return
    worst = (Decimal(1) if rules.base else Decimal(0)) + worst_extra(rules.multiply)
    if worst > caps.max_multiplier:
        names = ", ".join(r.id for r in rules.multiply)
        error(book.file, f"{etype}: when every multiply rule that can fire together fires "
                              f"({names}; rules on different tiers exclude one another) the "
                              f"multiplier is {worst}, above the group cap "
                              f"{caps.max_multiplier}; such events will be rejected",
                   severity="warning", field="earn")
    cost = worst * g.policy.base_rate * g.policy.point_value
    if cost > caps.max_cost_ratio:
        error(book.file, f"{etype}: worst-case cost ratio {cost} (multiplier {worst} x "
                              f"base rate x point value) is above the cap "
                              f"{caps.max_cost_ratio}; such events will be rejected",
                   severity="warning", field="earn")
    bonus = Decimal(0)
    unbounded = []
    for r in rules.bonus + _cross_sell_bonus(g, line, etype):
        per_event = r.spec.cap.points if r.spec.cap and r.spec.cap.per == "event" else None
        if r.fixed_points is not None:
            bonus += min(r.fixed_points, per_event) if per_event is not None \
                else r.fixed_points
        elif per_event is not None:
            bonus += per_event
        else:
            unbounded.append(r.id)
    if unbounded:
        error(book.file, f"{etype}: bonus rules {unbounded} compute points with no "
                              "per-event cap, so the bonus cap cannot be proven",
                   severity="warning", field="earn")
    elif bonus > caps.max_bonus_points:
        error(book.file, f"{etype}: bonus rules can add {bonus} points to one event, "
                              f"above the group cap of {caps.max_bonus_points}",
                   severity="warning", field="earn")


_TIER_ONLY = re.compile(r"""^\s*member\.tier\s*==\s*(['"])([a-z0-9][a-z0-9_.-]*)\1\s*$""")


def worst_extra(multiply: list[CompiledRule]) -> Decimal:
    """The most extra multiplier the rules can add to one event.

    Rules whose whole condition is ``member.tier == '<tier>'`` exclude one another (a member
    has one tier), so only the largest of them counts; every other rule may fire with any.
    """
    by_tier: dict[str, Decimal] = {}
    total = Decimal(0)
    for r in multiply:
        match = _TIER_ONLY.match(r.spec.when or "")
        if match:
            tier = match.group(2)
            by_tier[tier] = max(by_tier.get(tier, Decimal(0)), Decimal(0)) + r.extra_factor
        else:
            total += r.extra_factor
    return total + max(by_tier.values(), default=Decimal(0))


def _cross_sell_bonus(g: GroupBook, line: str, etype: str) -> list[CompiledRule]:
    rules = g.cross_sell.get(f"{line}:{etype}")
    return rules.bonus if rules is not None else []


def _overlaps(a, b) -> bool:
    a_end = a.effective_to or datetime.max.replace(tzinfo=a.effective_from.tzinfo)
    b_end = b.effective_to or datetime.max.replace(tzinfo=b.effective_from.tzinfo)
    return a.effective_from < b_end and b.effective_from < a_end

