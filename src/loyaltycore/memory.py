"""Member state and the points ledger in memory: the one model of "apply".

Both a dry-run and the durable store run this code. A dry-run keeps every member here;
the store (:mod:`loyaltycore.store`) loads the members a batch of events touches into the
same structures, lets this module apply the decisions, and writes what it recorded (the
member's :class:`~loyaltycore.ledger.Changes`) in one transaction. So a dry-run and a real
run of the same events produce the same effects and the same ledger by construction.

Per member it keeps exactly what deciding and applying need, never something that would
need a rescan: balances, live lots, qualifying credit in per-month buckets (the rolling
window is a sum of at most ``window_months`` buckets, cached per month), counters for caps
and quotas, open vouchers, the refund facts of earlier events, and the earliest time
anything falls due (vesting, expiry, a voucher lapsing), so letting time pass is O(1)
until something is actually due.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from .decide import Decision
from .effects import (
    CaptureReservation,
    EarnPoints,
    GrantRight,
    HoldPoints,
    QualifyingCredit,
    RedeemPoints,
    ReleaseReservation,
    ReservePoints,
    RestorePoints,
    ReversePoints,
    TierChange,
    UseRight,
    trusted,
)
from .errors import ConfigurationError
from .events import Event
from .journal import Journal
from .ledger import (
    AVAILABLE,
    PENDING,
    Changes,
    Entry,
    Grant,
    Lot,
    Move,
    Posting,
    Reservation,
    RightUse,
    Spent,
    TierMove,
    add_months,
    earliest,
    expired,
    expiry_of,
    reversed_,
)
from .members import MemberProfile, MemberSnapshot, Qualification
from .periods import recent_periods
from .receipts import Receipt, pack, unpack
from .reviews import ReviewMove, month_before, review_dates
from .rulesets import GroupPolicy
from .spending import Spending
from .tiers import review_target


@dataclass(slots=True)
class Facts:
    """What an accepted event earned, for the refunds that may follow it; for a
    redemption, the pieces of lots it spent, for the cancellations that may follow it
    (``reversed`` then counts the points given back)."""

    line: str
    amount: Decimal | None
    points: int = 0
    refunded: Decimal = Decimal(0)
    reversed: int = 0
    refundable: bool = True
    spent: tuple[Spent, ...] = ()


@dataclass
class Member:
    id: str
    tier: str
    birth_month: int | None = None
    enrolled_on: date | None = None
    tier_since: datetime | None = None
    manual_until: datetime | None = None
    manual_reason: str | None = None
    available: int = 0
    pending: int = 0
    reserved: int = 0
    debt: int = 0
    lots: dict[str, Lot] = field(default_factory=dict)  # live lots only
    # reservations by event id: the open ones (the store loads only those), and here in
    # memory the settled ones too
    reservations: dict[str, Reservation] = field(default_factory=dict)
    lots_complete: bool = True  # False: older live lots are still in the database
    buckets: dict[tuple[int, int], dict[str, Decimal]] = field(default_factory=dict)
    active: dict[tuple[int, int], set[str]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    grants: dict[str, list[Grant]] = field(default_factory=dict)  # open vouchers by right
    facts: dict[str, Facts] = field(default_factory=dict)
    # event id -> (fingerprint, receipt), or (fingerprint, *receipt packed): MemoryState
    # packs the receipts it keeps (receipts.pack), read back with receipt_of_seen
    seen: dict[str, tuple] = field(default_factory=dict)
    has_events: bool = False
    entry_seq: int = 0
    counters_day: date | None = None  # counters of periods before this day's are dropped
    last_activity: datetime | None = None
    inactive_at: datetime | None = None  # all points expire then (inactivity policy)
    next_due: datetime | None = None  # earliest vesting, expiry or lapse; None: nothing
    qual_cache: tuple[tuple[int, int], Qualification] | None = None
    reviewed_to: date | None = None  # reviews have been run for dates up to this one
    merged_into: str | None = None
    changes: Changes | None = None  # set while the store is recording a unit of work


_POINT_EFFECTS = (EarnPoints, HoldPoints)
_UNSET = object()
_ZERO = Decimal(0)


def fingerprint(event: Event) -> int:
    """A hash of the event, payload included, but not of its member: the key already has
    the member, and after a merge the same event may arrive under the other id."""
    ev = event.__dict__
    data = ev["data"]
    try:
        # The payload's class and field values, as its own (frozen) hash would take them.
        return hash((ev["id"], ev["line"], ev["type"], ev["occurred_at"], ev["amount"],
                     ev["currency"], type(data), *data.__dict__.values()))
    except TypeError:
        return hash(event.model_dump_json(exclude={"member"}))


def _falling_due(m: Member, at: datetime) -> tuple[list[Lot], list[Lot]]:
    """``m``'s pending lots that vest at or before ``at`` (by vesting date, then id), and
    its available lots that expire at or before ``at`` (by expiry, then id). One plain loop
    for both: a member has many lots."""
    vesting, expiring = [], []
    for lot in m.lots.values():
        status = lot.status
        if status == PENDING:
            when = lot.available_from
            if when is not None and when <= at:
                vesting.append(lot)
        elif status == AVAILABLE:
            when = lot.expires_at
            if when is not None and when <= at:
                expiring.append(lot)
    if len(vesting) > 1:
        vesting.sort(key=_vesting_order)
    return vesting, expiring


def _vesting_order(lot: Lot) -> tuple:
    return lot.available_from, lot.id


def _expiry_order(lot: Lot) -> tuple:
    return lot.expires_at, lot.id


def _month(d: date) -> tuple[int, int]:
    return d.year, d.month


class MemoryState(Spending):
    """Member state and ledger in memory, with the reading and writing steps the engine uses
    (spending and holding points: :class:`~loyaltycore.spending.Spending`).

    ``record`` keeps a :class:`~loyaltycore.ledger.Changes` per member (what the store
    writes) and ``keep_journal`` every journal entry (for statements in memory).
    """

    def __init__(self, lowest_tier: str = "member", window_months: int = 12, *,
                 keep_journal: bool = False):
        self.lowest_tier = lowest_tier
        self.window_months = window_months
        self.members: dict[str, Member] = {}
        self.aliases: dict[str, str] = {}
        self.review_log: list[ReviewMove] = []
        self.keep_journal = keep_journal
        self.journal = Journal()
        self.tier_history: list[TierMove] = []
        self.identities: dict[tuple[str, str], str] = {}  # (kind, keyed hash) -> member
        # Receipts kept for idempotency are packed (receipts.pack: the garbage collector
        # does not walk them), unless a subclass reads ``seen`` its own way.
        self.pack_receipts = type(self).receipt_of_seen is MemoryState.receipt_of_seen

    def full_lots(self, m: Member) -> None:
        """Make sure every live lot of ``m`` is at hand (the store loads them lazily: an
        ordinary earn never needs the older ones)."""
        if not m.lots_complete:
            self.load_lots(m)
            m.lots_complete = True

    def load_lots(self, m: Member) -> None:
        """Bring a member's older live lots into ``m.lots``. In memory they are all there
        already (``lots_complete`` is never false); the store reads them."""

    # --- enrolment and identity ----------------------------------------------------------

    def enrol(self, profile: MemberProfile, at: datetime | None = None) -> None:
        """Record a member's profile. A starting tier goes into the tier history (reason
        ``enrolment``) and only onto a member without one: a tier is never changed here
        for a member who has events, a tier above the lowest or a tier history (that is
        ``set_tier``'s, with a reason)."""
        m = self.members.get(profile.id)
        if m is None:
            m = self.members[profile.id] = self._new(profile.id, None)
        tier = profile.tier
        if tier and tier != m.tier:
            if m.has_events or m.tier != self.lowest_tier or m.tier_since is not None:
                raise ConfigurationError(
                    f"member {profile.id} is already enrolled on tier {m.tier}"
                    + (" and has events" if m.has_events else
                       " and has a tier history" if m.tier_since is not None else "")
                    + f"; enrolment does not change a tier (to move it to {tier}, assign "
                      "the tier with a reason: Engine.assign_tier / loyalty assign-tier)")
            when = at or datetime.now(UTC)
            self._tier_move(m, TierMove(m.id, when, m.tier, tier, "enrolment", None,
                                        "starting tier at enrolment"))
            m.tier = tier
            m.tier_since = when
        # A field the profile leaves out keeps what is known: a partial export (a tier
        # only, say) must not wipe a birth month, nor the enrolment date of a member with
        # events (their reviews count from it). Without events, the profile says it all.
        if profile.birth_month is not None:
            m.birth_month = profile.birth_month
        if profile.enrolled_on is not None or not m.has_events:
            m.enrolled_on = profile.enrolled_on

    def resolve(self, member_id: str) -> str:
        """The surviving member id for ``member_id`` (itself unless it was merged away)."""
        return self.aliases.get(member_id, member_id)

    def _get(self, member_id: str, at: datetime) -> Member:
        m = self.members.get(member_id)
        if m is None:
            m = self.members[member_id] = self._new(member_id, at)
        return m

    def _new(self, member_id: str, at: datetime | None) -> Member:
        return Member(id=member_id, tier=self.lowest_tier,
                      enrolled_on=at.date() if at is not None else None)

    def start_reviews(self, member_id: str, at: datetime, local: date) -> None:
        """Reviews for this member count from ``local`` (its first event here) onwards."""
        m = self._get(member_id, at)
        if m.reviewed_to is None:
            m.reviewed_to = local
        if m.counters_day is None or local > m.counters_day:
            self._keep_recent_counters(m, local)  # only moving forward: a late event must
            # not drop the counters of the days after it

    def _keep_recent_counters(self, m: Member, local: date) -> None:
        """A member carries the counters of :func:`recent_periods`; older ones are history,
        kept by the store but no longer part of the member a rule or a plugin sees (the same
        in a dry-run and in the store, whose loading reads exactly these periods)."""
        m.counters_day = local
        keep = recent_periods(local)
        stale = [k for k in m.counters if k.rpartition(":")[2] not in keep]
        ch = m.changes
        for k in stale:
            value = m.counters.pop(k)
            if ch is not None and k in ch.counters:
                ch.retired_counters[k] = value  # still to be written

    # --- reading -------------------------------------------------------------------------

    def previous(self, event: Event) -> tuple[bool, Receipt] | None:
        """``(same payload?, receipt)`` if this member already sent ``event.id``, else None.

        A fingerprint stands for the payload, so the state does not keep every event alive
        (it measured as a large share of garbage-collection time)."""
        m = self.members.get(event.member)
        seen = m.seen.get(event.id) if m is not None else None
        if seen is None:
            return None
        return seen[0] == self.fingerprint(event), self.receipt_of_seen(m, event.id, seen)

    def fingerprint(self, event: Event) -> Any:
        return fingerprint(event)

    def receipt_of_seen(self, m: Member, event_id: str, seen: tuple) -> Receipt:
        """The receipt kept in ``m.seen[event_id]`` (``seen``): equal to the one given."""
        if len(seen) > 2:
            return unpack(seen, 1)
        receipt = seen[1]
        assert receipt is not None
        return receipt

    def snapshot(self, member_id: str, at: datetime, local: date) -> tuple[MemberSnapshot, bool]:
        """The member as of ``at``, without changing anything: what is due by ``at`` (vesting,
        expiry, lapsed vouchers) counts exactly as :meth:`advance` would make it.
        ``is_new`` is true until the member has an accepted event."""
        m = self.members.get(member_id) or self._new(member_id, at)
        if m.next_due is not None and m.next_due <= at:
            self.full_lots(m)
            m = self._advanced_copy(m, at)
        vouchers = {}
        for right, grants in m.grants.items():
            n = sum(g.remaining for g in grants if g.valid_until is None or g.valid_until > at)
            if n:
                vouchers[right] = n
        return trusted(MemberSnapshot, dict(
            id=m.id, tier=m.tier, tier_since=m.tier_since, birth_month=m.birth_month,
            enrolled_on=m.enrolled_on, available=m.available, pending=m.pending,
            reserved=m.reserved, qualification=self._qualification(m, _month(local)), counters=m.counters,
            vouchers=vouchers, last_review=None, tier_valid_until=None)), not m.has_events

    def tier_valid_until(self, member_id: str, policy: GroupPolicy, tz: tzinfo,
                         today: date) -> date | None:
        """The next date the member's tier can be lost (None on the lowest tier)."""
        m = self.members.get(member_id)
        if m is None or m.tier == policy.tiers[0].id:
            return None
        if m.manual_until is not None:
            return m.manual_until.astimezone(tz).date()
        ref = max(today, m.reviewed_to or today)
        dates = review_dates(policy, m.enrolled_on, ref, ref + timedelta(days=400))
        return dates[0] if dates else None

    def _advanced_copy(self, m: Member, at: datetime) -> Member:
        twin = copy.copy(m)
        twin.lots = {k: copy.copy(v) for k, v in m.lots.items()}
        twin.grants = {k: [copy.copy(g) for g in v] for k, v in m.grants.items()}
        twin.reservations = {k: copy.copy(r) for k, r in m.reservations.items()}
        twin.changes = None
        keep, self.keep_journal = self.keep_journal, False
        try:
            self._advance(twin, at)
        finally:
            self.keep_journal = keep
        return twin

    def _qualification(self, m: Member, month: tuple[int, int]) -> Qualification:
        cached = m.qual_cache
        if cached is not None and cached[0] == month:
            return cached[1]
        last = month[0] * 12 + month[1] - 1
        first = last - self.window_months + 1  # the window: months first..last (y*12 + m-1)
        credits: dict[str, Decimal] = {}
        lines: set[str] = set()
        for (y, mo), bucket in m.buckets.items():
            if first <= y * 12 + mo - 1 <= last:
                for k, v in bucket.items():
                    credits[k] = credits.get(k, Decimal(0)) + v
        for (y, mo), active in m.active.items():
            if first <= y * 12 + mo - 1 <= last:
                lines |= active
        q = trusted(Qualification, dict(credits=credits, lines_active=frozenset(lines)))
        m.qual_cache = (month, q)
        return q

    def original(self, member_id: str, event_id: str) -> Mapping[str, Any] | None:
        m = self.members.get(member_id)
        f = m.facts.get(event_id) if m is not None else None
        if f is None or not f.refundable:
            return None
        return {"points": f.points, "amount": f.amount, "refunded": f.refunded,
                "reversed": f.reversed, "line": f.line}

    def redemption(self, member_id: str, event_id: str) -> Mapping[str, Any] | None:
        m = self.members.get(member_id)
        f = m.facts.get(event_id) if m is not None else None
        if f is None or not f.spent:
            return None
        return {"line": f.line, "points": sum(s.points for s in f.spent),
                "restored": f.reversed}

    def reservation(self, member_id: str, event_id: str) -> Mapping[str, Any] | None:
        m = self.members.get(member_id)
        r = m.reservations.get(event_id) if m is not None else None
        if r is None:
            return None
        return {"line": r.line, "points": r.points, "status": r.status,
                "expires_at": r.expires_at, "closed_at": r.closed_at}

    # --- letting time pass ---------------------------------------------------------------

    def advance(self, member_id: str, at: datetime) -> None:
        """Let time pass for a member up to ``at``: vest pending lots that are due, expire
        lots, lapse vouchers. Idempotent: running it again for the same ``at`` does nothing."""
        m = self.members.get(member_id)
        if m is None or m.next_due is None or m.next_due > at:
            return
        self._advance(m, at)

    def _advance(self, m: Member, at: datetime) -> None:
        self.full_lots(m)
        # Lapsed holds first: the points they give back may be past their own expiry.
        for r in sorted((r for r in m.reservations.values()
                         if r.status == "open" and r.expires_at <= at),
                        key=lambda r: (r.expires_at, r.id)):
            if r.status == "open":  # giving points back can advance time itself
                self._lapse(m, r)
        vesting, expiring = _falling_due(m, at)
        for lot in vesting:
            self._vest(m, lot, lot.available_from)
        for lot in vesting:  # vested now, and maybe past its expiry too
            if lot.status == AVAILABLE and lot.expires_at is not None and lot.expires_at <= at:
                expiring.append(lot)
        if len(expiring) > 1:
            expiring.sort(key=_expiry_order)
        for lot in expiring:
            # Points still pending when their expiry came expire once they vest, not before.
            when = max(lot.expires_at, lot.available_from or lot.expires_at)
            self._expire(m, [lot], when, f"{m.id}|expire|{lot.id}", "expiry date")
        if m.inactive_at is not None and m.inactive_at <= at:
            live = sorted((lot for lot in m.lots.values() if lot.status == AVAILABLE),
                          key=Lot.spend_order)
            if live:
                self._expire(m, live, m.inactive_at,
                             f"{m.id}|inactive|{m.inactive_at.isoformat()}", "inactivity")
            m.inactive_at = None
        for right, grants in list(m.grants.items()):
            lapsed = [g for g in grants if g.valid_until is not None and g.valid_until <= at]
            if lapsed:
                for g in lapsed:
                    g.status = "expired"
                    if m.changes is not None:
                        m.changes.touch_grant(g)
                keep = [g for g in grants if g.status == "open"]
                if keep:
                    m.grants[right] = keep
                else:
                    del m.grants[right]
        self._recompute_due(m)

    def _recompute_due(self, m: Member) -> None:
        due = m.inactive_at
        for lot in m.lots.values():  # _earliest, inlined: a member has many lots
            when = lot.available_from if lot.status == PENDING else lot.expires_at
            if when is not None and (due is None or when < due):
                due = when
        for grants in m.grants.values():
            for g in grants:
                due = earliest(due, g.valid_until)
        for r in m.reservations.values():
            if r.status == "open":
                due = earliest(due, r.expires_at)
        m.next_due = due

    # --- the ledger's moves --------------------------------------------------------------

    def _post(self, m: Member, entry: Entry) -> None:
        m.entry_seq += 1
        seq = m.entry_seq
        if m.changes is not None:
            m.changes.entries.append(Entry(entry.id, entry.member, entry.kind, entry.at,
                                           entry.event_id, entry.postings, entry.moves,
                                           entry.corrects, entry.memo, seq))
        if self.keep_journal:
            self.journal.add(entry, seq)

    def _close_if_empty(self, m: Member, lot: Lot) -> None:
        if lot.remaining == 0:
            lot.status = "closed"
            m.lots.pop(lot.id, None)
        if m.changes is not None:
            m.changes.touch_lot(lot)

    def _repay(self, m: Member, lot: Lot) -> Move | None:
        """Points vesting into a negative balance pay the debt first."""
        if not m.debt or lot.status != AVAILABLE:
            return None
        take = min(m.debt, lot.remaining)
        lot.remaining -= take
        m.debt -= take
        return Move(lot.id, "repay", take, lot.line)

    def _repay_entry(self, m: Member, lot: Lot, entry_id: str, at: datetime,
                     event_id: str) -> None:
        """A new available lot pays off a refund debt first, in an entry of its own."""
        repay = self._repay(m, lot)
        if repay is not None:
            self._close_if_empty(m, lot)
            self._post(m, Entry(id=entry_id, member=m.id, kind="repay", at=at,
                                event_id=event_id, postings=(), moves=(repay,),
                                memo="repays a negative balance"))

    def _vest(self, m: Member, lot: Lot, at: datetime, event_id: str | None = None) -> None:
        points = lot.remaining
        lot.status = AVAILABLE
        lot.available_from = at
        m.pending -= points
        m.available += points
        repay = self._repay(m, lot)
        self._close_if_empty(m, lot)
        if m.changes is None:  # in memory: straight into the journal, no Entry to build
            m.entry_seq += 1
            if self.keep_journal:
                row = (f"{m.id}|vest|{lot.id}", m.id, "vest", at, event_id, None, "",
                       m.entry_seq, 2, 1 if repay is None else 2, PENDING, m.id, -points,
                       AVAILABLE, m.id, points, lot.id, "vest", points, lot.line, None)
                if repay is not None:
                    row += (repay.lot, repay.kind, repay.points, repay.issuer, repay.to_line)
                self.journal.add_row(row)
            return
        moves = [Move(lot.id, "vest", points, lot.line)]
        if repay is not None:
            moves.append(repay)
        self._post(m, Entry(id=f"{m.id}|vest|{lot.id}", member=m.id, kind="vest", at=at,
                            event_id=event_id,
                            postings=(Posting(PENDING, m.id, -points),
                                      Posting(AVAILABLE, m.id, points)),
                            moves=tuple(moves)))

    def _expire(self, m: Member, lots: list[Lot], at: datetime, entry_id: str, why: str) -> None:
        moves, by_line, total = [], {}, 0
        for lot in lots:
            points = lot.remaining
            if not points:
                continue
            lot.remaining = 0
            moves.append(Move(lot.id, "expire", points, lot.line))
            by_line[lot.line] = by_line.get(lot.line, 0) + points
            total += points
            self._close_if_empty(m, lot)
        if not total:
            return
        m.available -= total
        postings = [Posting(AVAILABLE, m.id, -total)]
        postings += [Posting(expired(line), None, pts) for line, pts in sorted(by_line.items())]
        self._post(m, Entry(id=entry_id, member=m.id, kind="expire", at=at, event_id=None,
                            postings=tuple(postings), moves=tuple(moves), memo=why))

    def _take(self, m: Member, lots: list[Lot], points: int, kind: str,
              to_line: str | None = None) -> tuple[int, list[Move], dict[str, int]]:
        """Take up to ``points`` from ``lots`` in order: (taken, moves, taken per issuer)."""
        left, moves, per_line = points, [], {}
        for lot in lots:
            if not left:
                break
            take = min(lot.remaining, left)
            if not take:
                continue
            lot.remaining -= take
            left -= take
            moves.append(Move(lot.id, kind, take, lot.line, to_line))
            per_line[lot.line] = per_line.get(lot.line, 0) + take
            self._close_if_empty(m, lot)
        return points - left, moves, per_line

    # --- writing -------------------------------------------------------------------------

    def apply(self, decision: Decision, receipt: Receipt) -> None:
        """Write an accepted decision (and remember the receipt for idempotency)."""
        event = decision.event
        # Envelope fields read once: a model's attribute read is several times a local's.
        ev = event.__dict__
        event_id, line, at = ev["id"], ev["line"], ev["occurred_at"]
        m = self.members.get(ev["member"]) or self._get(ev["member"], at)
        fp = self.fingerprint(event)
        m.seen[event_id] = (self.pack_receipts and pack(receipt, (fp,))) or (fp, receipt)
        ch = m.changes
        if ch is not None:
            ch.events.append((event, fp, receipt))
        if not receipt.accepted:
            return
        m.has_events = True
        gb = decision.group
        policy, tz = gb.policy, gb.tz
        facts = m.facts.get(event_id)
        if facts is None:
            facts = m.facts[event_id] = Facts(line, ev["amount"])
        day = decision.local_date
        month = (day.year, day.month)
        expires: Any = _UNSET  # computed for the first lot
        mid = m.id
        prefix = f"{mid}|{event_id}|"
        earn_id = prefix + "earn"
        postings: dict[tuple[str, str | None], int] = {}
        n = 0
        credited: list[QualifyingCredit] = []
        for e in decision.effects:
            n += 1
            if type(e) is QualifyingCredit:  # the commonest effect, and never a point effect
                bucket = m.buckets.get(month)
                if bucket is None:
                    bucket = m.buckets[month] = {}
                credit, eline = e.credit, e.line
                bucket[credit] = bucket.get(credit, _ZERO) + e.value
                active = m.active.get(month)
                if active is None:
                    active = m.active[month] = set()
                active.add(eline)
                if ch is not None:
                    ch.buckets.add((month, credit))
                    ch.active.add((month, eline))
                credited.append(e)
            elif isinstance(e, _POINT_EFFECTS):
                points = e.points
                if not points:
                    continue
                facts.points += points
                pending = isinstance(e, HoldPoints)
                if expires is _UNSET:
                    expires = expiry_of(policy.expiry, at, tz)
                line = e.line
                if pending:
                    lot = Lot(f"{prefix}{n}", mid, line, points, points, PENDING, at,
                              e.vests_at, e.vests_on, expires, event_id, e.rule, None, earn_id)
                    account = PENDING
                else:
                    lot = Lot(f"{prefix}{n}", mid, line, points, points, AVAILABLE, at, at,
                              None, expires, event_id, e.rule, None, earn_id)
                    account = AVAILABLE
                key = (f"issued:{line}", None)  # ledger.issued(line)
                postings[key] = postings.get(key, 0) - points
                key = (account, mid)
                postings[key] = postings.get(key, 0) + points
                due = m.next_due
                if pending:
                    m.pending += points
                    vests = lot.available_from
                    if vests is not None and (due is None or vests < due):
                        m.next_due = vests
                else:
                    m.available += points
                    if expires is not None and (due is None or expires < due):
                        m.next_due = expires
                m.lots[lot.id] = lot
                if ch is not None:
                    ch.new_lots[lot.id] = lot
                if m.debt:
                    self._repay_entry(m, lot, f"{prefix}repay{n}", at, event_id)
            elif isinstance(e, QualifyingCredit):  # a subclass: as above
                self._credit(m, e, month)
                credited.append(e)
            elif isinstance(e, ReversePoints):
                facts.refundable = False  # a refund itself cannot be refunded
                self._reverse(m, e, event, n, policy)
            elif isinstance(e, RedeemPoints):
                self._redeem(m, e, event, n, facts)
            elif isinstance(e, RestorePoints):
                facts.refundable = False
                self._restore(m, e, event, n)
            elif isinstance(e, ReservePoints | CaptureReservation | ReleaseReservation):
                facts.refundable = False
                self._settle(m, e, event, n, facts)
            elif isinstance(e, GrantRight):
                g = Grant(id=f"{m.id}|{event.id}|{n}", member=m.id, right=e.right, line=e.line,
                          granted_at=at, valid_until=e.valid_until, source_event=event.id)
                m.grants.setdefault(e.right, []).append(g)
                m.next_due = earliest(m.next_due, e.valid_until)
                if ch is not None:
                    ch.new_grants[g.id] = g
            elif isinstance(e, UseRight):
                self._use(m, e, event)
            elif isinstance(e, TierChange):
                m.tier = e.to_tier
                m.tier_since = at
                self._tier_move(m, TierMove(m.id, at, e.from_tier, e.to_tier, e.reason,
                                            event.id, e.trace.detail if e.trace else ""))
        if credited:
            self._requalify(m, month, credited)
        if postings:
            if ch is None:  # in memory: straight into the journal, no Entry to build
                m.entry_seq += 1
                if self.keep_journal:
                    self.journal.add_earn(earn_id, mid, at, event_id, postings, m.entry_seq)
            else:
                self._post(m, Entry(id=earn_id, member=mid, kind="earn", at=at,
                                    event_id=event_id,
                                    postings=tuple(Posting(a, who, p)
                                                   for (a, who), p in postings.items())))
        counters = m.counters
        for key, delta in decision.counters.items():
            counters[key] = counters.get(key, 0) + delta
            if ch is not None:
                ch.counters.add(key)
        if m.last_activity is None or at > m.last_activity:
            m.last_activity = at
            expiry = policy.expiry
            if expiry.mode == "inactivity":
                m.inactive_at = add_months(at, expiry.months or 0, tz)
                m.next_due = earliest(m.next_due, m.inactive_at)
        if ch is not None:
            ch.facts.add(event_id)
        related = ev["data"].__dict__.get("related_event")
        if related:
            self._vest_on(m, event, related)

    def _credit(self, m: Member, e: QualifyingCredit, month: tuple[int, int]) -> None:
        bucket = m.buckets.setdefault(month, {})
        bucket[e.credit] = bucket.get(e.credit, Decimal(0)) + e.value
        m.active.setdefault(month, set()).add(e.line)
        if m.changes is not None:
            m.changes.buckets.add((month, e.credit))
            m.changes.active.add((month, e.line))

    def _requalify(self, m: Member, month: tuple[int, int],
                   credited: list[QualifyingCredit]) -> None:
        """Bring the cached qualification up to date with an event's credits (once per
        event, not once per credit)."""
        cached = m.qual_cache
        if cached is not None and cached[0] == month:
            q = cached[1]
            credits = dict(q.credits)
            lines = q.lines_active
            for e in credited:
                credits[e.credit] = credits.get(e.credit, Decimal(0)) + e.value
                lines = lines | {e.line}  # as many copies as before: same set layout
            m.qual_cache = (month, trusted(Qualification, dict(
                credits=credits, lines_active=lines)))
        else:
            m.qual_cache = None

    def _use(self, m: Member, e: UseRight, event: Event) -> None:
        grants = m.grants.get(e.right)
        ch = m.changes
        if not grants:  # an entitlement: the quota counters already hold the use
            use = RightUse(m.id, event.id, e.right, e.line, e.quantity, event.occurred_at)
            if ch is not None:
                ch.uses.append(use)
            return
        grants.sort(key=lambda g: (g.valid_until is None, g.valid_until or g.granted_at, g.id))
        left = e.quantity
        for g in grants:
            if not left:
                break
            take = min(g.remaining, left)
            g.remaining -= take
            left -= take
            if not g.remaining:
                g.status = "used"
            if ch is not None:
                ch.touch_grant(g)
                ch.uses.append(RightUse(m.id, event.id, e.right, e.line, take,
                                        event.occurred_at, g.id))
        keep = [g for g in grants if g.status == "open"]
        if keep:
            m.grants[e.right] = keep
        else:
            del m.grants[e.right]

    def _reverse(self, m: Member, e: ReversePoints, event: Event, n: int,
                 policy: GroupPolicy) -> None:
        f = m.facts.get(e.reverses)
        if f is None:
            return
        f.reversed += e.points
        if e.refunded:
            f.refunded += e.refunded
        if m.changes is not None:
            m.changes.facts.add(e.reverses)
        self.full_lots(m)
        own = sorted((lot for lot in m.lots.values() if lot.source_event == e.reverses),
                     key=lambda lot: (lot.status != PENDING, lot.id))
        own_pending = [lot for lot in own if lot.status == PENDING]
        own_available = [lot for lot in own if lot.status == AVAILABLE]
        voided, void_moves, void_lines = self._take(m, own_pending, e.points, "void")
        m.pending -= voided
        left = e.points - voided
        others = sorted((lot for lot in m.lots.values()
                         if lot.status == AVAILABLE and lot.source_event != e.reverses),
                        key=Lot.spend_order)
        taken, moves, lines = self._take(m, own_available + others, left, "reverse")
        m.available -= taken
        left -= taken
        postings = []
        if voided:
            postings.append(Posting(PENDING, m.id, -voided))
        if taken:
            postings.append(Posting(AVAILABLE, m.id, -taken))
        for line in sorted(set(void_lines) | set(lines)):
            postings.append(Posting(reversed_(line), None,
                                    void_lines.get(line, 0) + lines.get(line, 0)))
        memo = e.reason
        if left and policy.refunds.spent_points == "negative_balance":
            m.debt += left
            m.available -= left
            postings += [Posting(AVAILABLE, m.id, -left), Posting(reversed_(f.line), None, left)]
            memo = f"{memo}; {left} points already spent: balance goes negative".strip("; ")
        entry_id = f"{m.id}|{event.id}|reverse{n}"
        if postings:
            self._post(m, Entry(id=entry_id, member=m.id, kind="reverse",
                                at=event.occurred_at, event_id=event.id,
                                postings=tuple(_merge_postings(postings)),
                                moves=tuple(void_moves + moves), memo=memo))
        if left and policy.refunds.spent_points == "shortfall":
            self._post(m, Entry(id=f"{entry_id}|shortfall", member=m.id, kind="shortfall",
                                at=event.occurred_at, event_id=event.id, postings=(),
                                memo=f"{left} points of {e.reverses} were already spent; "
                                     f"recorded as a shortfall of line {f.line}"))

    def _vest_on(self, m: Member, event: Event, source: str) -> None:
        if not m.pending:
            return
        self.full_lots(m)
        for lot in sorted((lot for lot in m.lots.values()
                           if lot.status == PENDING and lot.source_event == source
                           and lot.vests_on == event.type), key=lambda lot: lot.id):
            self._vest(m, lot, event.occurred_at, event.id)
        self._recompute_due(m)

    def _tier_move(self, m: Member, move: TierMove) -> None:
        if m.changes is not None:
            m.changes.tier_moves.append(move)
        if self.keep_journal:
            self.tier_history.append(move)

    # --- tiers ---------------------------------------------------------------------------

    def catch_up(self, member_id: str, policy: GroupPolicy, tz: tzinfo, local: date,
                 at: datetime) -> None:
        """What falls due by ``at`` (vesting, expiry, lapses) and, once the member's
        reviews have started, the reviews due by then: before anything sets a tier at
        ``at``, so that no review dated earlier judges it."""
        self.advance(member_id, at)
        if self._get(member_id, at).reviewed_to is not None:
            self.review(member_id, policy, tz, local, at)

    def review(self, member_id: str, policy: GroupPolicy, tz: tzinfo, up_to: date,
               at: datetime | None = None) -> list[ReviewMove]:
        """Run the tier reviews due for a member up to ``up_to`` (a local date), and end a
        manual tier whose time is up.

        Only reviews after the member's first event here are run: the state knows nothing of
        the qualification before it, and must not downgrade anyone for history it never saw.
        A manual tier holds through reviews until it ends (at ``until``, to the second when
        ``at`` is given); then the member is judged like everyone else, soft landing
        included, from that moment.
        """
        m = self.members.get(member_id)
        if m is None or m.reviewed_to is None or (up_to <= m.reviewed_to
                                                  and m.manual_until is None):
            return []
        moves = []
        until = m.manual_until
        manual_end = until.astimezone(tz).date() if until else None
        ended = until is not None and (until <= at if at is not None else manual_end <= up_to)

        def end_manual() -> None:
            assert until is not None and manual_end is not None
            moves.extend(self._judge(m, policy, tz, manual_end, "manual-expired", at=until))
            m.manual_until = m.manual_reason = None

        if up_to > m.reviewed_to:
            for day in review_dates(policy, m.enrolled_on, m.reviewed_to, up_to):
                if manual_end is not None and day <= manual_end:
                    continue
                if ended and m.manual_until is not None:
                    end_manual()  # it ended before this review: judged in date order
                moves += self._judge(m, policy, tz, day, "review")
            m.reviewed_to = up_to
        if ended and m.manual_until is not None:
            end_manual()
        if moves:
            self.review_log.extend(moves)
        return moves

    def _judge(self, m: Member, policy: GroupPolicy, tz: tzinfo, day: date, reason: str, *,
               at: datetime | None = None) -> list[ReviewMove]:
        q = self._qualification(m, month_before(day))
        target = review_target(policy, m.tier, q)
        if target == m.tier:
            return []
        at = at or datetime.combine(day, time(0), tz)
        self._tier_move(m, TierMove(m.id, at, m.tier, target, reason))
        move = ReviewMove(m.id, day, m.tier, target)
        m.tier = target
        m.tier_since = at
        return [move]

    def review_all(self, policy: GroupPolicy, tz: tzinfo, up_to: date) -> list[ReviewMove]:
        """Run the reviews due for every member up to ``up_to`` (end of a dry-run)."""
        return [move for member_id in list(self.members)
                for move in self.review(member_id, policy, tz, up_to)]

    def set_tier(self, member_id: str, tier: str, at: datetime, *, reason: str = "",
                 until: datetime | None = None) -> None:
        """Assign a tier by hand: recorded in the tier history with its reason, and, with
        ``until``, ending then (reviews judge the member again from that day)."""
        m = self._get(member_id, at)
        if tier != m.tier or until is not None:
            self._tier_move(m, TierMove(m.id, at, m.tier, tier, "manual", None, reason,
                                        until))
        m.tier = tier
        m.tier_since = at
        m.manual_until = until
        m.manual_reason = reason or None


def _merge_postings(postings: list[Posting]) -> list[Posting]:
    out: dict[tuple[str, str | None], int] = {}
    for p in postings:
        out[(p.account, p.member)] = out.get((p.account, p.member), 0) + p.points
    return [Posting(a, who, pts) for (a, who), pts in out.items() if pts]
