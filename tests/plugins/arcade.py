"""A small test line: an arcade. Payloads are declared here; most earning is in
tests/rulesets/arcade/arcade.yaml, and ``loyalty_decide`` adds what a ruleset cannot
express: a streak bonus read from the member snapshot's daily-visit counters.

Registered as a module: ``Engine.open(paths, plugins=[arcade], load_entrypoints=False)``.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from pydantic import Field

from loyaltycore.plugin import EarnPoints, EventPayload, LineSpec, Trace, hookimpl

LINE = "arcade"
STREAK_RULE = "arcade-streak"
STREAK_POINTS_PER_DAY = 20
STREAK_MAX_DAYS = 5
DAILY_VISIT_RULE = "arcade-daily-visit"


class Play(EventPayload):
    """A game played: ``tokens`` bought for it (the event amount is the money paid)."""

    game: str = Field(min_length=1, max_length=64)
    tokens: int = Field(ge=0)


class ArcadeRefund(EventPayload):
    """Tokens refunded: ``related_event`` is the play's event id."""

    related_event: str = Field(min_length=1, max_length=128)


@hookimpl
def loyalty_lines():
    return [LineSpec(name=LINE, description="Test arcade",
                     event_types={"play": Play, "refund": ArcadeRefund})]


def streak_days(member, day) -> int:
    """Consecutive days before ``day`` on which the daily-visit bonus fired."""
    streak = 0
    d = day - timedelta(days=1)
    while streak < STREAK_MAX_DAYS and \
            member.counters.get(f"fire:{DAILY_VISIT_RULE}:d{d.isoformat()}", 0):
        streak += 1
        d -= timedelta(days=1)
    return streak


@hookimpl
def loyalty_decide(event, member, policy):
    if event.type != "play":
        return None
    day = event.occurred_at.astimezone(ZoneInfo(policy.timezone)).date()
    streak = streak_days(member, day)
    if not streak:
        return None
    points = STREAK_POINTS_PER_DAY * streak
    return [EarnPoints(line=LINE, rule=STREAK_RULE, points=points, basis="bonus",
                       trace=Trace(rule=STREAK_RULE, detail=f"{streak}-day streak x "
                                                            f"{STREAK_POINTS_PER_DAY}"))]
