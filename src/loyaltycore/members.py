"""The read-only member snapshot that rules and plugins decide on.

A snapshot is what the program knows about a member just before an event: tier,
balances, qualification over the rolling window, and the usage counters caps and quotas
need. It is frozen and rebuilt per event by whoever owns member state (the in-memory
state of a dry-run, or the store), so deciding can never write.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Qualification(BaseModel):
    """Qualifying credits summed over the group's rolling window, and the lines active in it."""

    model_config = ConfigDict(frozen=True)

    credits: dict[str, Decimal] = Field(default_factory=dict)
    lines_active: frozenset[str] = frozenset()

    def value(self, credit: str) -> Decimal:
        return self.credits.get(credit, Decimal(0))


class MemberProfile(BaseModel):
    """What enrolment tells us about a member (from the CRM, or ``--members`` in a dry-run)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=128)
    birth_month: int | None = Field(default=None, ge=1, le=12)
    enrolled_on: date | None = None
    tier: str | None = None


class Hold(BaseModel):
    """An open hold at a till: ``points`` reserved at ``line`` by event ``id`` until
    ``expires_at``."""

    model_config = ConfigDict(frozen=True)

    id: str
    line: str
    points: int
    at: AwareDatetime
    expires_at: AwareDatetime
    reference: str = ""


class MemberSnapshot(BaseModel):
    """A member as of one event. ``counters`` holds usage by period for caps and quotas:
    ``earn:<rule>:<period>`` (points), ``grant:<right>:<period>`` and ``use:<right>:<period>``
    (counts), for the periods of :func:`loyaltycore.periods.recent_periods` (the last 31 days,
    5 weeks, 12 months, 2 years, and lifetime); ``vouchers`` the number of unused, unexpired
    grants per right."""

    model_config = ConfigDict(frozen=True)

    id: str
    tier: str
    tier_since: AwareDatetime | None = None
    birth_month: int | None = None
    enrolled_on: date | None = None
    available: int = 0
    pending: int = 0
    reserved: int = Field(default=0, description="Points on hold at a till (reserve_points), "
                                                 "until captured, released or lapsed.")
    qualification: Qualification = Field(default_factory=Qualification)
    counters: dict[str, int] = Field(default_factory=dict)
    vouchers: dict[str, int] = Field(default_factory=dict)
    last_review: datetime | None = None
    tier_valid_until: date | None = Field(
        default=None, description="The next date the tier can be lost: the next review (or "
                                  "the end of a manual tier); None on the lowest tier. Set "
                                  "in member views (Engine.member), not on the hot path.")

    holds: tuple[Hold, ...] = Field(
        default=(), description="The open holds making up ``reserved``, soonest to lapse "
                                "first. Set in member views (Engine.member), not on the "
                                "hot path.")

    def counter(self, key: str) -> int:
        return self.counters.get(key, 0)
