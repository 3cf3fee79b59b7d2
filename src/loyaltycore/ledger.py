"""The points ledger's records: lots, journal entries with their postings, and lot moves.

Double entry, integer points. Every journal entry's postings sum to zero. The accounts:

- ``available``, ``pending`` and ``reserved`` of a member (the posting names the member);
  ``reserved`` holds points a till has put on hold (a reservation) until it is captured,
  released or lapses;
- ``issued:<line>``: what a line issued (its balance is minus the points it funded);
- ``redeemed:<line>``: points spent at a line;
- ``expired:<line>``: breakage of points a line issued;
- ``reversed:<line>``: points clawed back (refunds, cancellations, voided pending points).

Earned points live in :class:`Lot` s. What happens to a lot later is a :class:`Move` of
some of its points (vested, redeemed at a line, expired, reversed, moved by a merge),
always recorded with the entry that did it, so settlement ("retail-issued points spent at
the hotel") and ``ledger check`` can be re-derived from entries and moves alone. Nothing
here is updated in place except a lot's ``remaining`` and ``status`` and the member's
balances, which are projections that ``ledger check`` re-derives.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime, time, tzinfo

from .rulesets import Expiry

AVAILABLE = "available"
PENDING = "pending"
RESERVED = "reserved"
# The member accounts, each with its place in a member's balances (statements, the check).
MEMBER_ACCOUNTS = {AVAILABLE: 0, PENDING: 1, RESERVED: 2}

# Moves that take points out of a lot for good (the per-line identity counts these). A
# ``reserve`` move takes them into a reservation; its ``capture`` moves (spent) and
# ``release`` moves (given back, as new lots) do not touch the lot again.
CONSUMING = ("redeem", "expire", "reverse", "void", "repay", "reserve")


def issued(line: str) -> str:
    return f"issued:{line}"


def redeemed(line: str) -> str:
    return f"redeemed:{line}"


def expired(line: str) -> str:
    return f"expired:{line}"


def reversed_(line: str) -> str:
    return f"reversed:{line}"


@dataclass(slots=True)
class Lot:
    """Points earned together: by one rule on one event, from one issuing line.

    ``status`` is ``pending`` until it vests (at ``available_from``, or when an event of type
    ``vests_on`` about ``source_event`` arrives), then ``available``; ``closed`` once
    nothing remains. ``origin`` is the lot a merge moved these points from."""

    id: str
    member: str
    line: str
    points: int
    remaining: int
    status: str
    earned_at: datetime
    available_from: datetime | None
    vests_on: str | None
    expires_at: datetime | None
    source_event: str
    rule: str | None
    origin: str | None = None
    entry: str = ""  # the journal entry that created the lot

    def spend_order(self) -> tuple:
        """Soonest expiry first (never-expiring last), then oldest, then id."""
        exp = self.expires_at
        return (exp is None, exp or self.earned_at, self.earned_at, self.id)


@dataclass(slots=True, frozen=True)
class Move:
    """``points`` taken from (or, for ``vest``, released in) lot ``lot``."""

    lot: str
    kind: str  # vest | redeem | expire | reverse | void | repay | merge | restore
    #            reserve | capture | release
    points: int
    issuer: str  # the line that issued the lot
    to_line: str | None = None  # redeem: the line where the points were spent


@dataclass(slots=True, frozen=True)
class Posting:
    account: str
    member: str | None  # set for the member accounts (available, pending)
    points: int


@dataclass(slots=True, frozen=True)
class Entry:
    """One balanced journal entry. ``corrects`` links a correction to what it corrects."""

    id: str
    member: str
    kind: str  # earn | vest | reverse | redeem | expire | repay | shortfall | merge
    #            restore | reserve | capture | release
    at: datetime
    event_id: str | None
    postings: tuple[Posting, ...]
    moves: tuple[Move, ...] = ()
    corrects: str | None = None
    memo: str = ""
    seq: int = 0  # the member's entry counter: order among entries of the same instant

    def balance(self) -> int:
        return sum(p.points for p in self.postings)


@dataclass(frozen=True, slots=True)
class Spent:
    """Points a redemption or a reservation took from one lot, with that lot's dates."""

    lot: str
    issuer: str
    points: int
    earned_at: datetime
    expires_at: datetime | None


@dataclass(slots=True)
class Reservation:
    """Points put on hold at a till (the built-in ``reserve_points`` event): taken from the
    member's lots at once, so no other checkout can spend them, then captured (spent at
    ``line``), released (given back) or, when ``expires_at`` passes first, released by
    time. ``pieces`` are the lots it took, in the order it took them."""

    id: str  # the reserve_points event's id
    member: str
    line: str
    points: int
    at: datetime
    expires_at: datetime
    reference: str = ""
    pieces: tuple[Spent, ...] = ()
    status: str = "open"  # open | captured | released | expired
    captured: int = 0
    closed_at: datetime | None = None
    closed_by: str | None = None  # the event that captured or released it


@dataclass(slots=True)
class Grant:
    """A voucher granted to a member: one use each, until ``valid_until``."""

    id: str
    member: str
    right: str
    line: str
    granted_at: datetime
    valid_until: datetime | None
    remaining: int = 1
    status: str = "open"  # open | used | expired
    source_event: str | None = None


@dataclass(slots=True, frozen=True)
class RightUse:
    member: str
    event_id: str
    right: str
    line: str
    quantity: int
    at: datetime
    grant: str | None = None  # the voucher used, None for an entitlement


@dataclass(slots=True, frozen=True)
class TierMove:
    """A line of a member's tier history."""

    member: str
    at: datetime
    from_tier: str
    to_tier: str
    reason: str  # upgrade | review | manual | manual-expired | merge
    event_id: str | None = None
    detail: str = ""
    valid_until: datetime | None = None


@dataclass(slots=True)
class Changes:
    """What a member's state gained since it was last written: the store's unit of work."""

    entries: list[Entry] = field(default_factory=list)
    new_lots: dict[str, Lot] = field(default_factory=dict)
    lots: dict[str, Lot] = field(default_factory=dict)  # existing lots whose remaining changed
    buckets: set[tuple[tuple[int, int], str]] = field(default_factory=set)
    active: set[tuple[tuple[int, int], str]] = field(default_factory=set)
    counters: set[str] = field(default_factory=set)
    retired_counters: dict[str, int] = field(default_factory=dict)  # changed, then dropped
    new_grants: dict[str, Grant] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    uses: list[RightUse] = field(default_factory=list)
    tier_moves: list[TierMove] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)  # (event, fingerprint, receipt)
    facts: set[str] = field(default_factory=set)  # event ids whose refund facts changed
    reservations: dict[str, Reservation] = field(default_factory=dict)  # new or changed

    @property
    def empty(self) -> bool:
        """Nothing to write (a batch that only replayed the member's events, say)."""
        return not (self.entries or self.new_lots or self.lots or self.buckets or self.active
                    or self.counters or self.retired_counters or self.new_grants
                    or self.grants or self.uses or self.tier_moves or self.events
                    or self.facts or self.reservations)

    def touch_lot(self, lot: Lot) -> None:
        if lot.id not in self.new_lots:
            self.lots[lot.id] = lot

    def touch_grant(self, grant: Grant) -> None:
        if grant.id not in self.new_grants:
            self.grants[grant.id] = grant


def add_months(at: datetime, months: int, tz: tzinfo) -> datetime:
    """``at`` plus calendar months in the group timezone (day clamped to the month's end)."""
    local = at.astimezone(tz)
    index = local.year * 12 + local.month - 1 + months
    year, month = divmod(index, 12)
    day = min(local.day, calendar.monthrange(year, month + 1)[1])
    return local.replace(year=year, month=month + 1, day=day)


def expiry_of(policy: Expiry, earned_at: datetime, tz: tzinfo) -> datetime | None:
    """When a lot earned at ``earned_at`` expires (None: it does not, by itself)."""
    if policy.mode == "rolling":
        return add_months(earned_at, policy.months or 0, tz)
    if policy.mode == "year_end":
        year = earned_at.astimezone(tz).year + (policy.years or 0) + 1
        return datetime.combine(datetime(year, 1, 1).date(), time(0), tz)
    return None


def earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    """The earlier of two times, either of which may be None (nothing due)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if a <= b else b
