"""The database schema (SQLModel): members, events, the journal, lots, qualification.

The ledger proper is append-only: ``entries``, ``postings`` and ``lot_moves`` are only ever
inserted. ``members`` (balances, tier), ``lots.remaining``, ``buckets``, ``counters`` and
``grants`` are projections kept next to it for speed; ``loyalty ledger check`` re-derives
them from the append-only tables. Schema changes go through alembic migrations
(``loyaltycore/migrations``); the store upgrades a database to the latest on open.

Timestamps are timezone-aware: ``timestamptz`` on PostgreSQL, UTC ISO-8601 text on SQLite
(fixed width, so text order is time order). Money and qualifying credit are exact decimals.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Column, DateTime, Index, Numeric, String, Text, text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class Timestamp(TypeDecorator):
    """An aware datetime: timestamptz on PostgreSQL, fixed-width UTC text elsewhere."""

    impl = String(32)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(DateTime(timezone=True))
        return dialect.type_descriptor(String(32))

    def process_bind_param(self, value, dialect):
        if value is None or dialect.name == "postgresql":
            return value
        return value.astimezone(UTC).isoformat(timespec="microseconds")

    def process_result_value(self, value, dialect):
        if value is None or isinstance(value, datetime):
            return value
        return datetime.fromisoformat(value)


class Exact(TypeDecorator):
    """An exact decimal: NUMERIC on PostgreSQL, text on SQLite (which has no decimal type)."""

    impl = String(64)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            # Unconstrained NUMERIC keeps the scale it was given: 1000.00 stays 1000.00.
            return dialect.type_descriptor(Numeric(asdecimal=True))
        return dialect.type_descriptor(String(64))

    def process_bind_param(self, value, dialect):
        if value is None or dialect.name == "postgresql":
            return value
        return str(value)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(value)


def _ts(nullable: bool = True, index: bool = False) -> Column:
    return Column(Timestamp(), nullable=nullable, index=index)


def _points() -> Column:
    return Column(BigInteger, nullable=False, default=0)


class MemberRow(SQLModel, table=True):
    __tablename__ = "members"
    # Who was merged into a member (statements, tier history, a redemption's pieces):
    # without it each of those read every member. Partial, so the update of a member that
    # was never merged (every event) leaves it alone.
    __table_args__ = (Index("ix_members_merged_into", "merged_into",
                            sqlite_where=text("merged_into IS NOT NULL"),
                            postgresql_where=text("merged_into IS NOT NULL")),)

    id: str = Field(primary_key=True, max_length=128)
    tier: str = Field(max_length=80)
    tier_since: datetime | None = Field(default=None, sa_column=_ts())
    manual_until: datetime | None = Field(default=None, sa_column=_ts())
    manual_reason: str | None = Field(default=None, max_length=500)
    birth_month: int | None = None
    enrolled_on: date | None = None
    available: int = Field(default=0, sa_column=_points())
    pending: int = Field(default=0, sa_column=_points())
    reserved: int = Field(default=0, sa_column=_points())
    debt: int = Field(default=0, sa_column=_points())
    has_events: bool = False
    entry_seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    last_activity: datetime | None = Field(default=None, sa_column=_ts())
    inactive_at: datetime | None = Field(default=None, sa_column=_ts())
    # next_due and next_review are not indexed: the jobs' selection ORs them with
    # manual_until, which no index can answer, so it reads the table anyway, and each
    # index cost a page written per event on a large program (migration 0003).
    next_due: datetime | None = Field(default=None, sa_column=_ts())
    reviewed_to: date | None = None
    next_review: date | None = None
    merged_into: str | None = Field(default=None, max_length=128)
    # Incremented by every write of the row: a process that kept the member in memory
    # since it last wrote it knows from this whether anyone else has changed it since.
    version: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class IdentityRow(SQLModel, table=True):
    """A POS/CRM identifier (card, phone, app id) as a keyed hash: never the raw value."""

    __tablename__ = "identities"

    kind: str = Field(primary_key=True, max_length=40)
    digest: str = Field(primary_key=True, max_length=64)
    member_id: str = Field(max_length=128, index=True)
    linked_at: datetime = Field(sa_column=_ts(nullable=False))


class EventRow(SQLModel, table=True):
    """Every event processed, accepted or rejected: the idempotency claim, the receipt,
    and the refund facts of an accepted one."""

    __tablename__ = "events"

    member_id: str = Field(primary_key=True, max_length=128)
    event_id: str = Field(primary_key=True, max_length=128)
    fingerprint: str = Field(max_length=64)
    status: str = Field(max_length=10)
    line: str = Field(max_length=64)
    type: str = Field(max_length=64)
    occurred_at: datetime = Field(sa_column=_ts(nullable=False))
    processed_at: datetime = Field(sa_column=_ts(nullable=False))
    amount: Decimal | None = Field(default=None, sa_column=Column(Exact()))
    points: int = Field(default=0, sa_column=_points())
    refunded: Decimal = Field(default=Decimal(0), sa_column=Column(Exact(), nullable=False))
    reversed: int = Field(default=0, sa_column=_points())
    refundable: bool = True
    receipt: str = Field(sa_column=Column(Text, nullable=False))


class RejectRow(SQLModel, table=True):
    """Input that never became an event (unparseable, or a conflicting resubmission)."""

    __tablename__ = "rejects"

    id: int | None = Field(default=None, primary_key=True)
    source: str | None = Field(default=None, max_length=500)
    line_no: int | None = None
    member_id: str | None = Field(default=None, max_length=128)
    event_id: str | None = Field(default=None, max_length=128)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    raw: str | None = Field(default=None, sa_column=Column(Text))
    at: datetime = Field(sa_column=_ts(nullable=False))


class EntryRow(SQLModel, table=True):
    __tablename__ = "entries"
    __table_args__ = (Index("ix_entries_member_at", "member_id", "at"),)

    id: str = Field(primary_key=True, max_length=400)
    member_id: str = Field(max_length=128)
    kind: str = Field(max_length=20)
    at: datetime = Field(sa_column=_ts(nullable=False))
    seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0),
                     description="order of the member's entries (several can share an instant)")
    event_id: str | None = Field(default=None, max_length=128)
    corrects: str | None = Field(default=None, max_length=400)
    memo: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class PostingRow(SQLModel, table=True):
    """Found through their entry (the primary key starts with the entry id), which a
    statement finds by member: no index by member or account, each of which cost a page
    written per event on a large program (migration 0003); ``ledger check`` reads all."""

    __tablename__ = "postings"

    entry_id: str = Field(primary_key=True, max_length=400)
    seq: int = Field(primary_key=True)
    account: str = Field(max_length=80)
    member_id: str | None = Field(default=None, max_length=128)
    points: int = Field(sa_column=Column(BigInteger, nullable=False))


class LotRow(SQLModel, table=True):
    __tablename__ = "lots"
    __table_args__ = (Index("ix_lots_member_status", "member_id", "status"),)

    id: str = Field(primary_key=True, max_length=400)
    member_id: str = Field(max_length=128)
    line: str = Field(max_length=64)
    points: int = Field(sa_column=Column(BigInteger, nullable=False))
    remaining: int = Field(sa_column=Column(BigInteger, nullable=False))
    status: str = Field(max_length=10)
    earned_at: datetime = Field(sa_column=_ts(nullable=False))
    available_from: datetime | None = Field(default=None, sa_column=_ts())
    vests_on: str | None = Field(default=None, max_length=64)
    expires_at: datetime | None = Field(default=None, sa_column=_ts())
    source_event: str = Field(max_length=128)
    rule: str | None = Field(default=None, max_length=120)
    origin: str | None = Field(default=None, max_length=400)
    entry_id: str = Field(max_length=400)


class LotMoveRow(SQLModel, table=True):
    """Points taken from a lot, by which entry: the basis of settlement and of the check.

    Read by entry (a redemption's pieces), by kind and time (settlement) and all at once
    (``ledger check``), never by lot: no index on ``lot_id`` (migration 0003)."""

    __tablename__ = "lot_moves"
    __table_args__ = (Index("ix_lot_moves_kind_at", "kind", "at"),)

    entry_id: str = Field(primary_key=True, max_length=400)
    seq: int = Field(primary_key=True)
    lot_id: str = Field(max_length=400)
    kind: str = Field(max_length=10)
    points: int = Field(sa_column=Column(BigInteger, nullable=False))
    issuer: str = Field(max_length=64)
    to_line: str | None = Field(default=None, max_length=64)
    at: datetime = Field(sa_column=_ts(nullable=False))


class BucketRow(SQLModel, table=True):
    """Qualifying credit of one kind in one calendar month (group timezone)."""

    __tablename__ = "buckets"

    member_id: str = Field(primary_key=True, max_length=128)
    month: int = Field(primary_key=True, description="year * 12 + month - 1")
    credit: str = Field(primary_key=True, max_length=64)
    value: Decimal = Field(sa_column=Column(Exact(), nullable=False))


class ActivityRow(SQLModel, table=True):
    """A line the member was active in during a month (breadth)."""

    __tablename__ = "activity"

    member_id: str = Field(primary_key=True, max_length=128)
    month: int = Field(primary_key=True)
    line: str = Field(primary_key=True, max_length=64)


class CounterRow(SQLModel, table=True):
    """Usage in one period for caps and quotas (``earn:<rule>`` in ``m2026-05`` ...)."""

    __tablename__ = "counters"

    member_id: str = Field(primary_key=True, max_length=128)
    name: str = Field(primary_key=True, max_length=200)
    period: str = Field(primary_key=True, max_length=16)
    value: int = Field(sa_column=Column(BigInteger, nullable=False))


class GrantRow(SQLModel, table=True):
    __tablename__ = "grants"
    __table_args__ = (Index("ix_grants_member_status", "member_id", "status"),)

    id: str = Field(primary_key=True, max_length=400)
    member_id: str = Field(max_length=128)
    right: str = Field(max_length=80)
    line: str = Field(max_length=64)
    granted_at: datetime = Field(sa_column=_ts(nullable=False))
    valid_until: datetime | None = Field(default=None, sa_column=_ts())
    remaining: int = 1
    status: str = Field(max_length=10)
    source_event: str | None = Field(default=None, max_length=128)


class ReservationRow(SQLModel, table=True):
    """Points on hold at a till (``reserve_points``) and how the hold ended; the moves of
    its entries say which lots it took, captured and gave back."""

    __tablename__ = "reservations"
    __table_args__ = (Index("ix_reservations_member_status", "member_id", "status"),)

    member_id: str = Field(primary_key=True, max_length=128)
    event_id: str = Field(primary_key=True, max_length=128)
    line: str = Field(max_length=64)
    points: int = Field(sa_column=Column(BigInteger, nullable=False))
    at: datetime = Field(sa_column=_ts(nullable=False))
    expires_at: datetime = Field(sa_column=_ts(nullable=False))
    reference: str = Field(default="", max_length=128)
    status: str = Field(max_length=10, description="open | captured | released | expired")
    captured: int = Field(default=0, sa_column=_points())
    closed_at: datetime | None = Field(default=None, sa_column=_ts())
    closed_by: str | None = Field(default=None, max_length=128)


class RightUseRow(SQLModel, table=True):
    __tablename__ = "right_uses"

    id: int | None = Field(default=None, primary_key=True)
    member_id: str = Field(max_length=128, index=True)
    event_id: str = Field(max_length=128)
    right: str = Field(max_length=80)
    line: str = Field(max_length=64)
    quantity: int
    at: datetime = Field(sa_column=_ts(nullable=False))
    grant_id: str | None = Field(default=None, max_length=400)


class TierHistoryRow(SQLModel, table=True):
    __tablename__ = "tier_history"

    id: int | None = Field(default=None, primary_key=True)
    member_id: str = Field(max_length=128, index=True)
    at: datetime = Field(sa_column=_ts(nullable=False))
    from_tier: str = Field(max_length=80)
    to_tier: str = Field(max_length=80)
    reason: str = Field(max_length=20)
    event_id: str | None = Field(default=None, max_length=128)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    valid_until: datetime | None = Field(default=None, sa_column=_ts())


class MergeRow(SQLModel, table=True):
    """Audit of a merge: ``absorbed`` turned out to be the same person as ``survivor``."""

    __tablename__ = "merges"

    absorbed: str = Field(primary_key=True, max_length=128)
    survivor: str = Field(max_length=128, index=True)
    at: datetime = Field(sa_column=_ts(nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    available: int = Field(sa_column=Column(BigInteger, nullable=False))
    pending: int = Field(sa_column=Column(BigInteger, nullable=False))


METADATA = SQLModel.metadata
