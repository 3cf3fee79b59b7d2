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

At a till, spending can be a hold first (the built-in ``reserve_points`` event): the
points leave the available balance at once, so two checkouts can never spend the same
points, and wait in the member's ``reserved`` account. ``capture_reservation`` spends them
(all, or fewer: the rest go back), ``release_reservation`` gives them all back, and a hold
nobody settles lapses by itself when its time is up (the member's next event or the
time-driven jobs release it). Only the line that made a hold can settle it; settlement
between lines counts a captured hold when it is captured.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .effects import (
    CaptureReservation,
    RedeemPoints,
    ReleaseReservation,
    ReservePoints,
    RestorePoints,
    Trace,
    trusted,
)
from .receipts import Violation

if TYPE_CHECKING:
    from .decide import Decision, History


def _core(cls: type, decision: Decision, detail: str, **fields: Any) -> Any:
    """An effect the core proposes for the event's own line, traced to the event type."""
    event = decision.event
    return trusted(cls, dict(
        line=event.line, rule=None, source="core",
        trace=trusted(Trace, dict(rule=event.type, version=None, file=None, detail=detail,
                                  values={})),
        kind=cls.model_fields["kind"].default, **fields))


def redeem_effect(decision: Decision) -> RedeemPoints:
    event = decision.event
    points = event.data.points
    return _core(RedeemPoints, decision, f"member spends {points} points at {event.line}",
                 points=points, reference=event.data.reference)


def core_effect(decision: Decision, history: History) -> Any:
    """The one effect of a built-in points event (redeem, cancel_redemption, reserve_points,
    capture_reservation, release_reservation); None, with a violation on the decision, when
    the event refers to something it may not settle."""
    kind = decision.event.type
    if kind == "redeem":
        return redeem_effect(decision)
    if kind == "cancel_redemption":
        return restore_effect(decision, history)
    if kind == "reserve_points":
        return reserve_effect(decision)
    return settle_effect(decision, history)


CORE_EVENT_TYPES = frozenset({"redeem", "cancel_redemption", "reserve_points",
                              "capture_reservation", "release_reservation"})


def check_core(decision: Decision, out: list[Violation]) -> None:
    """The invariants of a built-in points event (see :func:`core_effect`)."""
    kind = decision.event.type
    if kind in ("redeem", "reserve_points"):
        check_redemption(decision, out)
    elif kind == "cancel_redemption":
        check_restore(decision, out)
    else:
        check_settle(decision, out)


def check_redemption(decision: Decision, out: list[Violation]) -> None:
    """No overdraft, and the group's redemption policy (minimum, step, maximum, blocks);
    a hold is spending that may still be undone, so it meets the same policy."""
    policy = decision.group.policy.redemption
    available = decision.member.available
    for e in decision.effects:
        if isinstance(e, ReservePoints):
            minutes = (e.expires_at - decision.event.occurred_at) // timedelta(minutes=1)
            if minutes > policy.max_reservation_minutes:
                out.append(Violation(
                    invariant="redemption", rule="reserve_points",
                    message=f"a hold of {minutes} minutes is longer than the group's "
                            f"maximum of {policy.max_reservation_minutes}",
                    numbers={"minutes": minutes,
                             "max_reservation_minutes": policy.max_reservation_minutes}))
        elif not isinstance(e, RedeemPoints):
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
    return _core(
        RestorePoints, decision,
        f"gives back {points} of the {spent['points']} points redeemed at {spent['line']} by "
        f"{data.related_event}"
        + (f" ({spent['restored']} given back before)" if spent["restored"] else ""),
        points=points, redemption=data.related_event,
        redeemed=spent["points"], restored_before=spent["restored"], reason=data.reason,
        redeemed_at=spent["line"])


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


def reserve_effect(decision: Decision) -> ReservePoints:
    event = decision.event
    data = event.data
    minutes = data.minutes or decision.group.policy.redemption.reservation_minutes
    expires = event.occurred_at + timedelta(minutes=minutes)
    return _core(ReservePoints, decision,
                 f"member puts {data.points} points on hold at {event.line} for {minutes} "
                 "minutes", points=data.points, expires_at=expires, reference=data.reference)


def settle_effect(decision: Decision, history: History
                  ) -> CaptureReservation | ReleaseReservation | None:
    """The capture or release a ``capture_reservation`` / ``release_reservation`` event
    asks for, or None (with a violation) when there is no open hold it may settle."""
    event = decision.event
    data = event.data
    rule = event.type
    held = history.reservation(event.member, data.related_event)
    problem = _not_open(held, data.related_event, event.occurred_at)
    if problem is not None:
        decision.violations.append(Violation(invariant="reservation", rule=rule,
                                             message=problem))
        return None
    if held["line"] != event.line:
        decision.violations.append(Violation(
            invariant="line-isolation", rule=rule,
            message=f"reservation {data.related_event!r} was made at {held['line']!r}; only "
                    f"that line can settle it, not {event.line!r}"))
        return None
    reserved = held["points"]
    if rule == "release_reservation":
        return _core(ReleaseReservation, decision,
                     f"gives back the {reserved} points on hold by {data.related_event}",
                     points=reserved, reservation=data.related_event, reason=data.reason)
    points = data.points if data.points is not None else reserved
    return _core(CaptureReservation, decision,
                 f"spends {points} of the {reserved} points on hold by {data.related_event} "
                 f"at {event.line}" + (f"; {reserved - points} go back"
                                       if points < reserved else ""),
                 points=points, reservation=data.related_event, reserved=reserved,
                 released=max(reserved - points, 0), reference=data.reference)


def _not_open(held: Mapping[str, Any] | None, ref: str, at: datetime) -> str | None:
    if held is None:
        return f"refers to {ref!r}, which is not a reservation of this member"
    status, closed = held["status"], held["closed_at"]
    if status == "open":
        if held["expires_at"] > at:
            return None
        status, closed = "expired", held["expires_at"]  # due, not yet written back
    # in UTC: the same words whichever store the time was read back from
    when = closed.astimezone(UTC).isoformat()
    if status == "expired":
        return f"reservation {ref!r} lapsed unsettled at {when}; its points went back"
    return f"reservation {ref!r} was already {status} at {when}"


def check_settle(decision: Decision, out: list[Violation]) -> None:
    """A capture spends at most what its hold reserved, in the policy's steps."""
    policy = decision.group.policy.redemption
    for e in decision.effects:
        if not isinstance(e, CaptureReservation):
            continue
        numbers = {"points": e.points, "reserved": e.reserved,
                   "min_points": policy.min_points, "multiple_of": policy.multiple_of}
        problem = None
        if e.points > e.reserved:
            problem = (f"would spend {e.points} points, but reservation {e.reservation!r} "
                       f"holds {e.reserved}")
        elif e.points < e.reserved and e.points < policy.min_points:
            problem = f"{e.points} points is below the minimum of {policy.min_points}"
        elif e.points < e.reserved and e.points % policy.multiple_of:
            problem = f"{e.points} points is not a multiple of {policy.multiple_of}"
        if problem:
            out.append(Violation(invariant="reservation", rule="capture_reservation",
                                 message=problem, numbers=numbers))
