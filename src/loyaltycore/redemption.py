"""Redemption (burn): the built-in ``redeem`` event every line accepts.

A member spends points at a line; the ledger takes them from the member's lots, soonest
expiry first, and records which line issued each point spent (settlement). Deciding
proposes one :class:`~loyaltycore.effects.RedeemPoints`; :func:`check_redemption` holds
it to the group's redemption policy and to the member's available balance (no overdraft),
before anything is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .effects import RedeemPoints, Trace, trusted
from .receipts import Violation

if TYPE_CHECKING:
    from .decide import Decision


def redeem_effect(decision: Decision) -> RedeemPoints:
    event = decision.event
    points = event.data.points
    return trusted(RedeemPoints, dict(
        line=event.line, rule=None, source="core",
        trace=trusted(Trace, dict(rule="redeem", version=None, file=None,
                                  detail=f"member spends {points} points at {event.line}",
                                  values={})),
        kind="redeem", points=points, reference=event.data.reference))


def check_redemption(decision: Decision, out: list[Violation]) -> None:
    """No overdraft, and the group's redemption policy (minimum, step, maximum, blocks)."""
    policy = decision.group.policy.redemption
    available = decision.member.available
    for e in decision.effects:
        if not isinstance(e, RedeemPoints):
            continue
        numbers = {"points": e.points, "available": available,
                   "min_points": policy.min_points, "multiple_of": policy.multiple_of}
        problem = None
        if e.line in policy.blocked_lines:
            problem = f"points cannot be redeemed at line {e.line!r} (group policy)"
        elif e.points > available:
            problem = f"would overdraw: {e.points} points asked, {available} available"
        elif e.points < policy.min_points:
            problem = f"{e.points} points is below the minimum of {policy.min_points}"
        elif e.points % policy.multiple_of:
            problem = f"{e.points} points is not a multiple of {policy.multiple_of}"
        elif policy.max_points is not None and e.points > policy.max_points:
            problem = f"{e.points} points is above the maximum of {policy.max_points}"
            numbers["max_points"] = policy.max_points
        if problem:
            out.append(Violation(invariant="redemption", rule="redeem", message=problem,
                                 numbers=numbers))
        available -= e.points
