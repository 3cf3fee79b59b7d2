"""Redemption (burn): the built-in ``redeem`` event every line accepts.

A member spends points at a line; the ledger takes them from the member's lots, soonest
expiry first, and records which line issued each point spent (settlement). Deciding
proposes one :class:`~loyaltycore.effects.RedeemPoints`; :func:`check_redemption` holds
it to the group's redemption policy and to the member's available balance (no overdraft),
before anything is written.

A redemption can be cancelled (the built-in ``cancel_redemption`` event: a voided sale, a
cancelled booking), in part or in whole, at the line where it was made. The points come
back into new lots with the expiry dates of the lots they were spent from (a cancellation
never extends a point's life; points whose date has passed expire at once), and the
settlement between lines is reversed by the same issuer → redeemer amounts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .effects import RedeemPoints, RestorePoints, Trace, trusted
from .receipts import Violation

if TYPE_CHECKING:
    from .decide import Decision, History


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


def restore_effect(decision: Decision, history: History) -> RestorePoints | None:
    """The points a ``cancel_redemption`` event gives back, or None (with a violation on
    the decision) when there is nothing it may give back."""
    event = decision.event
    data = event.data
    spent = history.redemption(event.member, data.related_event)
    if spent is None:
        decision.violations.append(Violation(
            invariant="redemption-cancel", rule="cancel_redemption",
            message=f"refers to {data.related_event!r}, which is not an accepted redemption "
                    "of this member"))
        return None
    left = spent["points"] - spent["restored"]
    points = data.points if data.points is not None else left
    if points < 1:
        decision.violations.append(Violation(
            invariant="redemption-cancel", rule="cancel_redemption",
            message=f"redemption {data.related_event!r} has been given back in full "
                    f"({spent['restored']} of {spent['points']} points)",
            numbers={"redeemed": spent["points"], "restored": spent["restored"]}))
        return None
    return trusted(RestorePoints, dict(
        line=event.line, rule=None, source="core",
        trace=trusted(Trace, dict(
            rule="cancel_redemption", version=None, file=None,
            detail=f"gives back {points} of the {spent['points']} points redeemed at "
                   f"{spent['line']} by {data.related_event}"
                   + (f" ({spent['restored']} given back before)" if spent["restored"] else ""),
            values={})),
        kind="restore", points=points, redemption=data.related_event,
        redeemed=spent["points"], restored_before=spent["restored"], reason=data.reason,
        redeemed_at=spent["line"]))


def check_restore(decision: Decision, out: list[Violation]) -> None:
    """A cancellation gives back at most what its redemption spent and earlier
    cancellations did not give back, and only at the line where it was spent."""
    for e in decision.effects:
        if not isinstance(e, RestorePoints):
            continue
        numbers = {"points": e.points, "redeemed": e.redeemed,
                   "restored_before": e.restored_before}
        if e.line != decision.event.line or e.line != e.redeemed_at:
            out.append(Violation(
                invariant="line-isolation", rule="cancel_redemption",
                message=f"redemption {e.redemption!r} was made at {e.redeemed_at!r}; only "
                        f"that line can cancel it, not {decision.event.line!r}"))
        elif e.points > e.redeemed - e.restored_before:
            out.append(Violation(
                invariant="redemption-cancel", rule="cancel_redemption",
                message=f"would give back {e.points} points, but redemption "
                        f"{e.redemption!r} spent {e.redeemed} and {e.restored_before} were "
                        "given back already", numbers=numbers))
