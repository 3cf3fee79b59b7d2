"""The durable store: member state and the ledger in SQLite or PostgreSQL.

A unit of work is a batch of events (or a job's batch of members). In one database
transaction the store locks the members the batch touches (PostgreSQL: ``SELECT ... FOR
UPDATE`` in member-id order, so two workers never deadlock; SQLite: the immediate write
transaction), loads exactly what deciding and applying need into the same structures a
dry-run uses (:class:`~loyaltycore.memory.MemoryState`), lets the engine run the pipeline
on them, and writes what they recorded. Each event's idempotency claim and all of its
writes commit together with the batch's, or not at all; a batch that fails is retried and,
if it still fails, run one event per transaction, so one bad event cannot hold back others.

What is loaded is bounded by the batch, never by the size of the program or a member's
history: balances from the member row, live lots, the qualification buckets of the
window, the counters of the events' current periods, open vouchers, and the refund facts
of the events a refund names. Members written by this state and not written by anyone
since (``members.version``) are kept in memory between units of work instead of being
read again.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError

from . import sqlrows
from .checkpoints import Checkpointer
from .errors import ConfigurationError
from .events import Event
from .ledger import Changes, Grant, Lot, Reservation, Spent
from .memory import Facts, Member, MemoryState
from .periods import recent_periods
from .receipts import Receipt
from .reviews import review_dates
from .rulesets import GroupPolicy
from .schema import background_checkpoints, connect, database_url, sqlite_path, upgrade
from .tables import (
    ActivityRow,
    BucketRow,
    CounterRow,
    EntryRow,
    EventRow,
    GrantRow,
    IdentityRow,
    LotMoveRow,
    LotRow,
    MemberRow,
    MergeRow,
    PostingRow,
    RejectRow,
    ReservationRow,
    RightUseRow,
    TierHistoryRow,
)

MEMBERS = MemberRow.__table__
EVENTS = EventRow.__table__
ENTRIES = EntryRow.__table__
POSTINGS = PostingRow.__table__
LOTS = LotRow.__table__
MOVES = LotMoveRow.__table__
BUCKETS = BucketRow.__table__
ACTIVITY = ActivityRow.__table__
COUNTERS = CounterRow.__table__
GRANTS = GrantRow.__table__
USES = RightUseRow.__table__
TIERS = TierHistoryRow.__table__
REJECTS = RejectRow.__table__
IDENTITIES = IdentityRow.__table__
MERGES = MergeRow.__table__
RESERVATIONS = ReservationRow.__table__

PERIODS = ("day", "week", "month", "year", "lifetime")

# Members a writing state keeps in memory between units of work (see SqlState.kept).
KEEP_MEMBERS = 10_000


def month_index(month: tuple[int, int]) -> int:
    return month[0] * 12 + month[1] - 1


def _month_of(index: int) -> tuple[int, int]:
    return index // 12, index % 12 + 1


def digest(event: Event) -> str:
    """A stable fingerprint of the event (the same in every process and machine); like
    :func:`loyaltycore.memory.fingerprint`, it leaves out the member, and it sees values,
    not spellings: ``120.0`` and ``120.00``, or one instant in two UTC offsets, are the
    same event resent."""
    parts = [event.id, event.line, event.type,
             event.occurred_at.astimezone(UTC).isoformat(), _canonical(event.amount),
             event.currency or ""]
    parts += [f"{k}={_canonical(v)}" for k, v in sorted(event.data.__dict__.items())]
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


_PLAIN = frozenset({str, int, bool, type(None)})


def _canonical(value: Any) -> str:
    if type(value) in _PLAIN:  # most payload fields: no further questions
        return repr(value)
    if isinstance(value, Decimal):
        return str(value.normalize()) if value else "0"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return "{" + ",".join(f"{k!r}:{_canonical(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list | tuple | frozenset | set):
        items = [_canonical(v) for v in value]
        return "[" + ",".join(sorted(items) if isinstance(value, frozenset | set)
                              else items) + "]"
    if hasattr(value, "__dict__") and hasattr(value, "model_fields"):
        return _canonical(dict(value.__dict__))
    return repr(value)


class Store:
    """A database holding the program's members and ledger (``Store.open(url)``)."""

    def __init__(self, url: str):
        self.url = url
        path = sqlite_path(url)
        self.checkpointer = Checkpointer(path) \
            if path is not None and background_checkpoints() else None
        self.engine = connect(url, background_checkpoints=self.checkpointer is not None)
        self.dialect = self.engine.dialect.name

    @classmethod
    def open(cls, db: str | None = None, *, migrate: bool = True,
             must_exist: bool = False) -> Store:
        """Open ``db`` (URL or SQLite path; default ``LOYALTY_DB`` or ./loyalty.db) and
        bring its schema to the latest migration. ``must_exist``: refuse a SQLite file that
        is not there (a reader with a mistyped path must not get an empty, "clean" ledger).
        """
        url = database_url(db)
        path = sqlite_path(url)
        if must_exist and path is not None and not Path(path).is_file():
            raise ConfigurationError(f"no database at {path} (check --db / LOYALTY_DB)")
        store = cls(url)
        try:
            if migrate:
                upgrade(store.engine)
            else:
                store.engine.connect().close()
        except OperationalError as exc:
            store.close()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise ConfigurationError(f"cannot open the database {store.safe_url}: "
                                     f"{reason}") from None
        return store

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.close()
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction (SQLite: BEGIN IMMEDIATE), committed on success."""
        with self.engine.begin() as conn:
            yield conn
        if self.checkpointer is not None:
            self.checkpointer.committed()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only transaction, always rolled back (SQLite: takes no write lock). On
        PostgreSQL it reads one snapshot, so a report spanning several queries (``ledger
        check``) never mixes before and after a concurrent commit."""
        with self.engine.connect() as conn:
            conn.execution_options(loyalty_read=True)
            if self.dialect == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ")
            try:
                yield conn
            finally:
                conn.rollback()

    def record_rejects(self, conn: Connection, source: str, problems: Sequence[Any]) -> None:
        """Unreadable input lines (``InputProblem``), once per source, line and text."""
        known = {(r.line_no, r.raw) for r in conn.execute(
            select(REJECTS.c.line_no, REJECTS.c.raw).where(REJECTS.c.source == source))}
        rows = [dict(source=source, line_no=p.line_no, member_id=None, event_id=None,
                     reason=f"{p.field}: {p.message}" if p.field else p.message, raw=p.text,
                     at=datetime.now(UTC))
                for p in problems if (p.line_no, p.text) not in known]
        if rows:
            conn.execute(REJECTS.insert(), rows)


@dataclass(slots=True)
class _Kept:
    """A member left in memory after its unit of work committed."""

    member: Member
    version: int  # members.version as this state last wrote it
    floor: int  # its buckets and activity are complete from this month index on


class SqlState(MemoryState):
    """The state the engine runs on when it has a store: a working set of members loaded
    per unit of work from the database and written back at its end.

    With ``write=False`` (a dry-run against a database) nothing is ever written: members
    loaded once stay in memory for the rest of the run, and the transaction only reads.

    A writing state keeps up to ``keep`` members it wrote (least recently used go first)
    in :attr:`kept`, so that the next unit of work that touches one need not read its
    lots, buckets, activity, vouchers and holds again. Whether a kept member can be used
    is decided by ``members.version``, which every write of a member row increments: the
    row is read (and on PostgreSQL locked) anyway, and a version other than the one this
    state wrote means another process or engine changed the member, so it is loaded
    afresh. A unit of work that does not commit puts nothing back.
    """

    def __init__(self, store: Store, lowest_tier: str, window_months: int, *,
                 write: bool = True, keep: int = KEEP_MEMBERS):
        super().__init__(lowest_tier, window_months)
        self.store = store
        self.write = write
        self.keep = keep if write else 0
        self.kept: OrderedDict[str, _Kept] = OrderedDict()
        self.versions: dict[str, int] = {}  # members.version of the unit's members
        self.rows: dict[str, Any] = {}  # their member rows as read
        self.floors: dict[str, int] = {}  # month index each member's buckets start at
        self.conn: Connection | None = None
        self.tz: tzinfo = UTC  # the group's, for the local dates of a unit of work
        self.policy: GroupPolicy | None = None
        self.rejects: list[dict] = []
        self.facts_tried: set[tuple[str, str]] = set()

    # --- identity of an event --------------------------------------------------------

    def fingerprint(self, event: Event) -> str:
        return digest(event)

    def receipt_of_seen(self, m: Member, event_id: str, seen: tuple[Any, Any]) -> Receipt:
        receipt = seen[1]
        if isinstance(receipt, str):
            receipt = Receipt.model_validate_json(receipt)
            m.seen[event_id] = (seen[0], receipt)
        return receipt

    def resolve_all(self, conn: Connection, ids: Iterable[str]) -> dict[str, str]:
        """Member ids as sent → surviving member ids (a merged-away id maps to its survivor)."""
        ids = sorted(set(ids))
        out = {i: self.aliases.get(i, i) for i in ids}
        unknown = [i for i in ids if i not in self.aliases and i not in self.members]
        for mid, into in sqlrows.select_in(conn, MEMBERS, "id", unknown,
                                           columns=("id", "merged_into"),
                                           where="merged_into IS NOT NULL"):
            self.aliases[mid] = into
            out[mid] = into
        return out

    # --- loading a unit of work ------------------------------------------------------

    def begin(self, conn: Connection, members: dict[str, datetime], local_dates: set[date],
              related: dict[str, set[str]], event_keys: dict[str, set[str]], *,
              full: bool = False, until: datetime | None = None) -> None:
        """Lock and load ``members`` (id → time of its first event in the batch).

        ``local_dates``: the events' dates in the group timezone (which counter periods to
        load); ``related``: member → event ids its events refer to (refund facts to load);
        ``event_keys``: member → event ids of the batch (earlier receipts to load)."""
        self.conn = conn
        self.rejects = []  # a retried unit of work must not keep the failed attempt's
        self.facts_tried = set()
        ids = sorted(i for i in members if i not in self.members or self.write)
        if not ids:
            self._load_events(conn, related, event_keys)
            return
        if self.write:
            self.members = {}
            self.versions = {}
            self.floors = {}
            self.rows = {}
        rows = self._lock(conn, ids)
        missing = [i for i in ids if i not in rows]
        if missing and self.write:
            sqlrows.insert(conn, MEMBERS, [dict(
                id=i, tier=self.lowest_tier, enrolled_on=members[i].date(), available=0,
                pending=0, debt=0, has_events=False, entry_seq=0, version=0)
                for i in missing], conflict=("id",))
            rows.update(self._lock(conn, missing))
        full = full or not self.write
        floor = -1 if full else min(
            [month_index((d.year, d.month)) for d in local_dates]
            + [month_index((r.reviewed_to.year, r.reviewed_to.month))
               for r in rows.values() if r.reviewed_to is not None])
        floor -= self.window_months + 1
        fresh: list[str] = []
        counting: list[str] = []  # members whose counters are read
        first_day = min(local_dates) if local_dates else None
        for i in ids:
            row = rows.get(i)
            kept = self.kept.pop(i, None)
            if (kept is not None and row is not None and kept.version == row.version
                    and kept.floor <= floor):
                m = self.members[i] = kept.member
                self.floors[i] = kept.floor
                # Its counters are those of the periods recent on its counters day, as
                # written; a fresh load, narrowed at the member's first event of this
                # batch, gives the same unless the batch goes back before that day.
                # The store may hold counters of later periods only if an event after
                # that day was applied (a batch that went back set the day back).
                day = m.counters_day
                if (full or day is None or first_day is None or first_day < day
                        or (m.last_activity is not None
                            and m.last_activity.astimezone(self.tz).date() > day)):
                    m.counters = {}
                    m.counters_day = None
                    counting.append(i)
            else:
                m = self.members[i] = (self._member(row) if row is not None
                                       else self._new(i, members[i]))
                m.lots_complete = False
                fresh.append(i)
                counting.append(i)
                self.floors[i] = floor
            if row is not None:
                self.versions[i] = row.version
                self.rows[i] = row
            if self.write:
                m.changes = Changes()
        self._load_details(conn, fresh, floor)
        self._load_counters(conn, counting, None if full else sorted(
            {k for d in local_dates for k in recent_periods(d)}))
        if until is not None:
            # Members with something falling due in the batch need their lots: one query
            # for all of them rather than one each when their event comes.
            due = [i for i in ids if not (m := self.members[i]).lots_complete
                   and m.next_due is not None and m.next_due <= until]
            self._preload_lots(conn, due)
        self._load_events(conn, related, event_keys)

    def _preload_lots(self, conn: Connection, ids: Sequence[str]) -> None:
        """Every live lot of the members ``ids``, in one query."""
        members = self.members
        for r in sqlrows.select_in(conn, LOTS, "member_id", ids, where="status <> {}",
                                   params=("closed",)):
            members[r.member_id].lots.setdefault(r.id, _lot(r))
        for i in ids:
            members[i].lots_complete = True

    def _load_events(self, conn: Connection, related: dict[str, set[str]],
                     event_keys: dict[str, set[str]]) -> None:
        """Earlier receipts of the batch's event ids (idempotency) and the refund facts of
        the events the batch refers to, unless already in memory."""
        members = self.members
        pairs = [(mid, eid) for mid, eids in event_keys.items() for eid in eids
                 if eid not in members[mid].seen]
        for r in _by_member_and_id(conn, pairs, "fingerprint", "receipt"):
            members[r.member_id].seen[r.event_id] = (r.fingerprint, r.receipt)
        wanted = [(mid, eid) for mid, eids in related.items() for eid in eids
                  if eid not in members[mid].facts]
        self._load_facts(conn, wanted)

    def _lock(self, conn: Connection, ids: Sequence[str]) -> dict[str, Any]:
        # Locked in id order, chunk after chunk, so that two workers never deadlock.
        return {row.id: row for row in sqlrows.select_in(
            conn, MEMBERS, "id", ids, order_by="id",
            for_update=self.write and self.store.dialect == "postgresql")}

    def exists(self, conn: Connection, member_id: str) -> bool:
        return conn.execute(select(MEMBERS.c.id).where(MEMBERS.c.id == member_id)).first() \
            is not None

    def _member(self, row: Any) -> Member:
        return Member(
            id=row.id, tier=row.tier, birth_month=row.birth_month, enrolled_on=row.enrolled_on,
            tier_since=row.tier_since, manual_until=row.manual_until,
            manual_reason=row.manual_reason, available=row.available, pending=row.pending,
            reserved=row.reserved, debt=row.debt, has_events=row.has_events, entry_seq=row.entry_seq,
            last_activity=row.last_activity,
            inactive_at=row.inactive_at, next_due=row.next_due, reviewed_to=row.reviewed_to,
            merged_into=row.merged_into)

    def _load_details(self, conn: Connection, ids: Sequence[str], floor: int) -> None:
        """Buckets and activity from month index ``floor`` on (-1: all; a merge moves them
        all), open vouchers and open holds of ``ids``."""
        if not ids:
            return
        members = self.members
        for r in sqlrows.select_in(conn, BUCKETS, "member_id", ids, where="month >= {}",
                                   params=(floor,)):
            members[r.member_id].buckets.setdefault(_month_of(r.month), {})[r.credit] = r.value
        for r in sqlrows.select_in(conn, ACTIVITY, "member_id", ids, where="month >= {}",
                                   params=(floor,)):
            members[r.member_id].active.setdefault(_month_of(r.month), set()).add(r.line)
        for r in sqlrows.select_in(conn, GRANTS, "member_id", ids, where="status = {}",
                                   params=("open",)):
            members[r.member_id].grants.setdefault(r.right, []).append(Grant(
                id=r.id, member=r.member_id, right=r.right, line=r.line,
                granted_at=r.granted_at, valid_until=r.valid_until, remaining=r.remaining,
                status=r.status, source_event=r.source_event))
        holding = [i for i in ids if members[i].reserved]
        if holding:
            for r in sqlrows.select_in(conn, RESERVATIONS, "member_id", holding,
                                       where="status = {}", params=("open",)):
                members[r.member_id].reservations[r.event_id] = _reservation(conn, r)

    def _load_counters(self, conn: Connection, ids: Sequence[str],
                       periods: Sequence[str] | None) -> None:
        """The counters of ``periods`` (None: all) of the members ``ids``: those loaded
        afresh, and kept ones whose counters do not reach back to the batch's first day
        (which periods a member carries follows the dates of its events,
        :meth:`~loyaltycore.memory.MemoryState.start_reviews`)."""
        members = self.members
        if periods is None:
            counters = sqlrows.select_in(conn, COUNTERS, "member_id", ids)
        else:
            counters = sqlrows.select_in(
                conn, COUNTERS, "member_id", ids, params=periods,
                where=f"period IN ({', '.join(['{}'] * len(periods))})")
        for r in counters:
            members[r.member_id].counters[f"{r.name}:{r.period}"] = r.value

    def load_lots(self, m: Member) -> None:
        assert self.conn is not None, "lots are loaded inside a unit of work"
        self._preload_lots(self.conn, (m.id,))

    def _load_facts(self, conn: Connection, pairs: Sequence[tuple[str, str]]) -> None:
        self.facts_tried.update(pairs)  # an event the store does not have is asked once
        for r in _by_member_and_id(conn, pairs, "status", "type", "line", "amount", "points",
                                   "refunded", "reversed", "refundable"):
            if r.status == "accepted":
                self.members[r.member_id].facts[r.event_id] = Facts(
                    line=r.line, amount=r.amount, points=r.points, refunded=r.refunded,
                    reversed=r.reversed, refundable=r.refundable,
                    spent=_spent(conn, r.member_id, r.event_id, _SPENDING[r.type])
                    if r.type in _SPENDING else ())

    def record_conflict(self, event: Event, reason: str) -> None:
        """Keep a resubmission that conflicts with its id's first payload among the rejects,
        once (a re-run file must not add it again)."""
        assert self.conn is not None
        known = self.conn.execute(select(REJECTS.c.id).where(
            REJECTS.c.member_id == event.member, REJECTS.c.event_id == event.id,
            REJECTS.c.raw == (raw := event.model_dump_json()))).first()
        if known is None and not any(r["event_id"] == event.id and r["raw"] == raw
                                     and r["member_id"] == event.member for r in self.rejects):
            self.rejects.append(dict(source=None, line_no=None, member_id=event.member,
                                     event_id=event.id, reason=reason, raw=raw,
                                     at=datetime.now(UTC)))

    def original(self, member_id: str, event_id: str) -> Any:
        self._facts_of(member_id, event_id)
        return super().original(member_id, event_id)

    def redemption(self, member_id: str, event_id: str) -> Any:
        self._facts_of(member_id, event_id)
        return super().redemption(member_id, event_id)

    def reservation(self, member_id: str, event_id: str) -> Any:
        m = self.members.get(member_id)
        if m is not None and event_id not in m.reservations and self.conn is not None:
            row = self.conn.execute(select(RESERVATIONS).where(
                RESERVATIONS.c.member_id.in_(_and_merged(member_id)),
                RESERVATIONS.c.event_id == event_id)).first()
            if row is not None:  # settled already, or still open under a merged-away id
                m.reservations[event_id] = _reservation(self.conn, row)
        return super().reservation(member_id, event_id)

    def _facts_of(self, member_id: str, event_id: str) -> None:
        m = self.members.get(member_id)
        key = (member_id, event_id)
        if m is not None and event_id not in m.facts and self.conn is not None \
                and key not in self.facts_tried:
            self._load_facts(self.conn, [key])

    # --- writing a unit of work ------------------------------------------------------

    def flush(self, conn: Connection) -> None:
        """Write everything the loaded members recorded since :meth:`begin`."""
        if not self.write:
            return
        w = _Writes()
        now = datetime.now(UTC)
        for m in self.members.values():
            ch = m.changes
            if ch is None:
                continue
            w.member(m, self._next_review(m), self.rows.get(m.id), ch.empty, self.versions)
            new_events = set()
            for event, fp, receipt in ch.events:
                new_events.add(event.id)
                f = m.facts.get(event.id)
                w.events.append((
                    m.id, event.id, fp, receipt.status, event.line, event.type,
                    event.occurred_at, now, event.amount, f.points if f else 0,
                    f.refunded if f else _NOTHING, f.reversed if f else 0,
                    f.refundable if f else False, receipt.model_dump_json()))
            for eid in ch.facts - new_events:
                f = m.facts[eid]
                w.facts.append((f.points, f.refunded, f.reversed, f.refundable, m.id, eid))
            w.ledger(ch)
            buckets, mid = m.buckets, m.id
            w.buckets += [(mid, month_index(month), credit, buckets[month][credit])
                          for month, credit in ch.buckets]
            w.active += [(mid, month_index(month), line) for month, line in ch.active]
            for key in ch.counters:
                name, _, period = key.rpartition(":")
                value = m.counters.get(key)
                w.counters.append((mid, name, period, ch.retired_counters[key] if value is None
                                   else value))
            w.grants_of(ch)
            for r in ch.reservations.values():
                w.reservations.append(dict(
                    member_id=r.member, event_id=r.id, line=r.line, points=r.points, at=r.at,
                    expires_at=r.expires_at, reference=r.reference, status=r.status,
                    captured=r.captured, closed_at=r.closed_at, closed_by=r.closed_by))
            for u in ch.uses:
                w.uses.append(dict(member_id=u.member, event_id=u.event_id, right=u.right,
                                   line=u.line, quantity=u.quantity, at=u.at, grant_id=u.grant))
            for t in ch.tier_moves:
                w.tiers.append(dict(member_id=t.member, at=t.at, from_tier=t.from_tier,
                                    to_tier=t.to_tier, reason=t.reason, event_id=t.event_id,
                                    detail=t.detail, valid_until=t.valid_until))
            m.changes = Changes()
        w.write(conn, self.rejects)
        self.rejects = []

    def _next_review(self, m: Member) -> date | None:
        if self.policy is None or m.reviewed_to is None:
            return None
        dates = review_dates(self.policy, m.enrolled_on, m.reviewed_to,
                             m.reviewed_to + timedelta(days=400))
        return dates[0] if dates else None

    def end(self, committed: bool = False) -> None:
        """Close the unit of work; ``committed``: its transaction committed, so its
        members, as written, may be kept for the next one."""
        self.conn = None
        if not self.write:
            return
        if committed and self.keep:
            kept = self.kept
            for mid, m in self.members.items():
                version = self.versions.get(mid)
                if version is not None and m.changes is not None and not m.merged_into:
                    kept[mid] = _Kept(_trimmed(m), version, self.floors[mid])
            while len(kept) > self.keep:
                kept.popitem(last=False)
        self.members = {}
        self.rows = {}
        self.aliases = {}


def _trimmed(m: Member) -> Member:
    """A member to keep, made to look as it would loaded afresh: what is loaded per unit
    of work (receipts, refund facts) is dropped, and so is what is derived from it (the
    qualification cache), so the two never differ; nor does a kept member hold its last
    batch's receipts. Its counters stay: :meth:`SqlState.begin` reads them again only for
    a batch that goes back before the member's counters day."""
    m.changes = None
    m.seen = {}
    m.facts = {}
    m.qual_cache = None
    if m.reservations:
        m.reservations = {k: r for k, r in m.reservations.items() if r.status == "open"}
    return m


def _by_member_and_id(conn: Connection, pairs: Sequence[tuple[str, str]], *columns: str
                      ) -> list[Any]:
    """Rows of ``events`` for (member, event id) pairs, through the primary key."""
    return sqlrows.select_pairs(conn, EVENTS, ("member_id", "event_id"), pairs,
                                ("member_id", "event_id", *columns))


def _and_merged(member_id: str) -> Any:
    """The ids ``member_id`` answers for: itself and those merged into it (a subquery)."""
    return select(MEMBERS.c.id).where(or_(MEMBERS.c.id == member_id,
                                          MEMBERS.c.merged_into == member_id))


# Event type -> the entry and move kind that record the lots it spent.
_SPENDING = {"redeem": "redeem", "capture_reservation": "capture"}


def _spent(conn: Connection, member_id: str, event_id: str, kind: str) -> tuple[Spent, ...]:
    """The pieces of lots a redemption (``kind`` redeem), a hold (reserve) or a captured
    hold (capture) took, in the order it took them (its entry may be under an id since
    merged into ``member_id``)."""
    q = select(MOVES.c.lot_id, MOVES.c.issuer, MOVES.c.points, LOTS.c.earned_at,
               LOTS.c.expires_at) \
        .select_from(ENTRIES.join(MOVES, MOVES.c.entry_id == ENTRIES.c.id)
                     .join(LOTS, LOTS.c.id == MOVES.c.lot_id)) \
        .where(ENTRIES.c.member_id.in_(_and_merged(member_id)), ENTRIES.c.event_id == event_id,
               # ``|| ''`` keeps the planner off ix_lot_moves_kind_at: without statistics
               # SQLite started from it, reading every move of that kind in the ledger
               # (184 ms a call on a 10,000-member demo, against 0.2 ms from the entry).
               ENTRIES.c.kind == kind, MOVES.c.kind.concat("") == kind) \
        .order_by(ENTRIES.c.id, MOVES.c.seq)
    return tuple(Spent(r.lot_id, r.issuer, r.points, r.earned_at, r.expires_at)
                 for r in conn.execute(q))


def _reservation(conn: Connection, r: Any) -> Reservation:
    """A reservation row; an open one with the pieces of lots it holds."""
    pieces = _spent(conn, r.member_id, r.event_id, "reserve") if r.status == "open" else ()
    return Reservation(id=r.event_id, member=r.member_id, line=r.line, points=r.points,
                       at=r.at, expires_at=r.expires_at, reference=r.reference,
                       pieces=pieces, status=r.status, captured=r.captured,
                       closed_at=r.closed_at, closed_by=r.closed_by)


def _lot(r: Any) -> Lot:
    return Lot(id=r.id, member=r.member_id, line=r.line, points=r.points,
               remaining=r.remaining, status=r.status, earned_at=r.earned_at,
               available_from=r.available_from, vests_on=r.vests_on, expires_at=r.expires_at,
               source_event=r.source_event, rule=r.rule, origin=r.origin, entry=r.entry_id)


_NOTHING = Decimal(0)
# Column orders of the tuples _Writes collects (an update's ends with its key).
_MEMBER_SET = ("tier", "tier_since", "manual_until", "manual_reason", "birth_month",
               "enrolled_on", "available", "pending", "reserved", "debt", "has_events",
               "entry_seq", "last_activity", "inactive_at", "next_due", "reviewed_to",
               "next_review", "merged_into")
_MEMBER_COLUMNS = (*_MEMBER_SET, "version", "id")
_EVENT_COLUMNS = ("member_id", "event_id", "fingerprint", "status", "line", "type",
                  "occurred_at", "processed_at", "amount", "points", "refunded", "reversed",
                  "refundable", "receipt")
_FACT_COLUMNS = ("points", "refunded", "reversed", "refundable", "member_id", "event_id")
_ENTRY_COLUMNS = ("id", "member_id", "kind", "at", "seq", "event_id", "corrects", "memo")
_POSTING_COLUMNS = ("entry_id", "seq", "account", "member_id", "points")
_MOVE_COLUMNS = ("entry_id", "seq", "lot_id", "kind", "points", "issuer", "to_line", "at")
_LOT_COLUMNS = ("id", "member_id", "line", "points", "remaining", "status", "earned_at",
                "available_from", "vests_on", "expires_at", "source_event", "rule", "origin",
                "entry_id")
_LOT_UPDATE_COLUMNS = ("remaining", "status", "member_id", "available_from", "id")
_BUCKET_COLUMNS = ("member_id", "month", "credit", "value")
_ACTIVITY_COLUMNS = ("member_id", "month", "line")
_COUNTER_COLUMNS = ("member_id", "name", "period", "value")


class _Writes:
    """Rows to write for one unit of work, grouped per table for executemany: tuples in
    the column orders above for the tables every batch writes, dicts for the rest."""

    def __init__(self) -> None:
        self.members: list[tuple] = []
        self.events: list[tuple] = []
        self.facts: list[tuple] = []
        self.entries: list[tuple] = []
        self.postings: list[tuple] = []
        self.moves: list[tuple] = []
        self.new_lots: list[tuple] = []
        self.lots: list[tuple] = []
        self.buckets: list[tuple] = []
        self.active: list[tuple] = []
        self.counters: list[tuple] = []
        self.new_grants: list[dict] = []
        self.grants: list[dict] = []
        self.uses: list[dict] = []
        self.tiers: list[dict] = []
        self.reservations: list[dict] = []

    def member(self, m: Member, next_review: date | None, row: Any, untouched: bool,
               versions: dict[str, int]) -> None:
        """The member's row, unless it is the row read and nothing else of the member
        changed: its version then stays, so a process that kept the member keeps using it
        (and a replayed batch writes nothing)."""
        values = (m.tier, m.tier_since, m.manual_until, m.manual_reason, m.birth_month,
                  m.enrolled_on, m.available, m.pending, m.reserved, m.debt, m.has_events,
                  m.entry_seq, m.last_activity, m.inactive_at, m.next_due, m.reviewed_to,
                  next_review, m.merged_into)
        if untouched and row is not None and all(
                getattr(row, k) == v for k, v in zip(_MEMBER_SET, values, strict=True)):
            return
        versions[m.id] = version = versions.get(m.id, 0) + 1
        self.members.append((*values, version, m.id))

    def ledger(self, ch: Changes) -> None:
        entries, postings, moves = self.entries, self.postings, self.moves
        for e in ch.entries:
            eid = e.id
            entries.append((eid, e.member, e.kind, e.at, e.seq, e.event_id, e.corrects,
                            e.memo))
            for i, p in enumerate(e.postings):
                postings.append((eid, i, p.account, p.member, p.points))
            for i, mv in enumerate(e.moves):
                moves.append((eid, i, mv.lot, mv.kind, mv.points, mv.issuer, mv.to_line,
                              e.at))
        self.new_lots += [
            (lot.id, lot.member, lot.line, lot.points, lot.remaining, lot.status,
             lot.earned_at, lot.available_from, lot.vests_on, lot.expires_at,
             lot.source_event, lot.rule, lot.origin, lot.entry)
            for lot in ch.new_lots.values()]
        self.lots += [(lot.remaining, lot.status, lot.member, lot.available_from, lot.id)
                      for lot in ch.lots.values()]

    def grants_of(self, ch: Changes) -> None:
        for g in ch.new_grants.values():
            self.new_grants.append(dict(
                id=g.id, member_id=g.member, right=g.right, line=g.line,
                granted_at=g.granted_at, valid_until=g.valid_until, remaining=g.remaining,
                status=g.status, source_event=g.source_event))
        for g in ch.grants.values():
            self.grants.append(dict(id=g.id, remaining=g.remaining, status=g.status,
                                    member_id=g.member))

    def write(self, conn: Connection, rejects: list[dict]) -> None:
        sqlrows.update(conn, MEMBERS, self.members, where=("id",), columns=_MEMBER_COLUMNS)
        for table, rows, columns in (
                (EVENTS, self.events, _EVENT_COLUMNS), (ENTRIES, self.entries, _ENTRY_COLUMNS),
                (POSTINGS, self.postings, _POSTING_COLUMNS), (MOVES, self.moves, _MOVE_COLUMNS),
                (LOTS, self.new_lots, _LOT_COLUMNS)):
            sqlrows.insert(conn, table, rows, columns=columns)
        for table, dicts in ((GRANTS, self.new_grants), (USES, self.uses), (TIERS, self.tiers),
                             (REJECTS, rejects)):
            sqlrows.insert(conn, table, dicts)
        sqlrows.update(conn, EVENTS, self.facts, where=("member_id", "event_id"),
                       columns=_FACT_COLUMNS)
        sqlrows.update(conn, LOTS, self.lots, where=("id",), columns=_LOT_UPDATE_COLUMNS)
        sqlrows.update(conn, GRANTS, self.grants, where=("id",))
        sqlrows.insert(conn, BUCKETS, self.buckets, columns=_BUCKET_COLUMNS,
                       conflict=("member_id", "month", "credit"), update=("value",))
        sqlrows.insert(conn, ACTIVITY, self.active, columns=_ACTIVITY_COLUMNS,
                       conflict=("member_id", "month", "line"))
        sqlrows.insert(conn, COUNTERS, self.counters, columns=_COUNTER_COLUMNS,
                       conflict=("member_id", "name", "period"), update=("value",))
        sqlrows.insert(conn, RESERVATIONS, self.reservations,
                       conflict=("member_id", "event_id"),
                       update=("status", "captured", "closed_at", "closed_by"))


def merge_rows(conn: Connection, survivor: str, absorbed: str, at: datetime, reason: str,
               available: int, pending: int) -> None:
    """The merge's bookkeeping outside the members' state: receipts and refund facts,
    identities and earlier aliases now belong to the survivor, and the audit row."""
    mine = select(EVENTS.c.event_id).where(EVENTS.c.member_id == survivor).scalar_subquery()
    conn.execute(update(EVENTS).where(EVENTS.c.member_id == absorbed,
                                      EVENTS.c.event_id.not_in(mine))
                 .values(member_id=survivor))
    held = select(RESERVATIONS.c.event_id).where(RESERVATIONS.c.member_id == survivor) \
        .scalar_subquery()
    conn.execute(update(RESERVATIONS).where(RESERVATIONS.c.member_id == absorbed,
                                            RESERVATIONS.c.event_id.not_in(held))
                 .values(member_id=survivor))
    conn.execute(update(IDENTITIES).where(IDENTITIES.c.member_id == absorbed)
                 .values(member_id=survivor))
    conn.execute(update(MEMBERS).where(MEMBERS.c.merged_into == absorbed)
                 .values(merged_into=survivor, version=MEMBERS.c.version + 1))
    conn.execute(MERGES.insert(), [dict(absorbed=absorbed, survivor=survivor, at=at,
                                        reason=reason, available=available, pending=pending)])


def surviving_id(conn: Connection, member_id: str) -> str:
    """``member_id``, or the member it was merged into (merges repoint older aliases, so
    one hop is enough)."""
    into = conn.execute(select(MEMBERS.c.merged_into).where(MEMBERS.c.id == member_id)
                        ).scalar_one_or_none()
    return into or member_id


def link_identity(conn: Connection, kind: str, digest_: str, member_id: str) -> str:
    """Link an identity; returns the member it belongs to (an existing link wins)."""
    row = conn.execute(select(IDENTITIES.c.member_id).where(
        IDENTITIES.c.kind == kind, IDENTITIES.c.digest == digest_)).first()
    if row is not None:
        return row.member_id
    conn.execute(IDENTITIES.insert(), [dict(kind=kind, digest=digest_, member_id=member_id,
                                            linked_at=datetime.now(UTC))])
    return member_id


def find_identity(conn: Connection, kind: str, digest_: str) -> str | None:
    row = conn.execute(select(IDENTITIES.c.member_id).where(
        IDENTITIES.c.kind == kind, IDENTITIES.c.digest == digest_)).first()
    return row.member_id if row is not None else None


def due_members(conn: Connection, as_of: datetime, local: date) -> list[str]:
    """Members with something due by ``as_of``: vesting, expiry, a lapsing voucher, an
    inactivity deadline, a tier review or the end of a manual tier."""
    q = select(MEMBERS.c.id).where(MEMBERS.c.merged_into.is_(None), (
        (MEMBERS.c.next_due <= as_of) | (MEMBERS.c.next_review <= local)
        | (MEMBERS.c.manual_until <= as_of))).order_by(MEMBERS.c.id)
    return [r.id for r in conn.execute(q)]


def tier_rows(conn: Connection, member_id: str) -> list[tuple]:
    ids = [member_id] + [r.id for r in conn.execute(
        select(MEMBERS.c.id).where(MEMBERS.c.merged_into == member_id))]
    q = select(TIERS.c.at, TIERS.c.from_tier, TIERS.c.to_tier, TIERS.c.reason,
               TIERS.c.event_id, TIERS.c.detail, TIERS.c.valid_until, TIERS.c.member_id) \
        .where(TIERS.c.member_id.in_(ids)).order_by(TIERS.c.at, TIERS.c.id)
    return [tuple(r) for r in conn.execute(q)]


def member_count(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(MEMBERS)).scalar_one()
