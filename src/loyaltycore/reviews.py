"""Tier reviews: when they fall due, and what they decide.

Downgrades happen only at a review (DESIGN: tiers). A review falls on the member's
enrolment anniversary or on the 1st of the policy's review month, in the group timezone;
it keeps the tier if a retain threshold is met over the window ending the month before,
and otherwise drops the member, but by no more than the soft landing
(:func:`loyaltycore.tiers.review_target`). Reviews are run lazily by the state that owns
the member, for every review date passed since it last looked, before the member's next
event is decided (and for everyone at the end of a dry-run).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from .rulesets import GroupPolicy


@dataclass(frozen=True)
class ReviewMove:
    """A tier change made by a review."""

    member: str
    on: date
    from_tier: str
    to_tier: str


def review_dates(policy: GroupPolicy, enrolled_on: date | None, after: date,
                 until: date) -> list[date]:
    """Review dates in (after, until], oldest first."""
    out = []
    for year in range(after.year, until.year + 1):
        if policy.review.schedule == "calendar":
            day = date(year, policy.review.month, 1)
        elif enrolled_on is None:
            continue
        else:
            month, dom = enrolled_on.month, enrolled_on.day
            if month == 2 and dom == 29:
                dom = 28  # a leap-day member is reviewed on 28 February in other years
            day = date(year, month, dom)
        if after < day <= until:
            out.append(day)
    return out


def month_before(day: date) -> tuple[int, int]:
    """The last full month before ``day``: the window a review judges ends there."""
    return (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
