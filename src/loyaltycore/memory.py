"""Member state held in memory: what a dry-run evolves across a stream of events.

It keeps, per member, exactly what deciding needs and nothing it would have to rescan:
balances, pending holds, qualifying credit in per-month buckets (the rolling window is a
sum of at most ``window_months`` buckets, cached per month), usage counters for caps and
quotas, unexpired vouchers, and the facts of each earlier event that a refund may need.
The durable ledger (issue 4) keeps the same facts in the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from decimal import Decimal
from typing import Any

from .decide import Decision
from .effects import (
    EarnPoints,
    GrantRight,
    HoldPoints,
    QualifyingCredit,
    ReversePoints,
    TierChange,
    UseRight,
    trusted,
)
from .events import Event
from .members import MemberProfile, MemberSnapshot, Qualification
from .receipts import Receipt
from .reviews import ReviewMove, month_before, review_dates
from .rulesets import GroupPolicy
from .tiers import review_target


@dataclass
class _Hold:
    source: str
    line: str
    points: int
    vests_at: datetime | None
    vests_on: str | None


@dataclass
class _Facts:
    line: str
    amount: Decimal | None
    points: int = 0
    refunded: Decimal = Decimal(0)
    reversed: int = 0
    refundable: bool = True


@dataclass
class _Member:
    id: str
    tier: str
    birth_month: int | None = None
    enrolled_on: date | None = None
    tier_since: datetime | None = None
    available: int = 0
    pending: int = 0
    buckets: dict[tuple[int, int], dict[str, Decimal]] = field(default_factory=dict)
    active: dict[tuple[int, int], set[str]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    vouchers: dict[str, list[datetime | None]] = field(default_factory=dict)
    holds: list[_Hold] = field(default_factory=list)
    facts: dict[str, _Facts] = field(default_factory=dict)
    seen: dict[str, tuple[int, Receipt]] = field(default_factory=dict)
    qual_cache: tuple[tuple[int, int], Qualification] | None = None
    reviewed_to: date | None = None  # reviews have been run for dates up to this one


def fingerprint(event: Event) -> int:
    """A hash of the whole event, payload included (JSON form if a field is unhashable)."""
    try:
        return hash(event)
    except TypeError:
        return hash(event.model_dump_json())


def _month(d: date) -> tuple[int, int]:
    return d.year, d.month


class MemoryState:
    """In-memory member state with the same reading and writing steps as the store."""

    def __init__(self, lowest_tier: str = "member", window_months: int = 12):
        self.lowest_tier = lowest_tier
        self.window_months = window_months
        self.members: dict[str, _Member] = {}
        self.review_log: list[ReviewMove] = []

    # --- enrolment ---------------------------------------------------------------------------

    def enrol(self, profile: MemberProfile) -> None:
        m = self.members.get(profile.id)
        if m is None:
            m = self.members[profile.id] = _Member(id=profile.id,
                                                   tier=profile.tier or self.lowest_tier)
        m.birth_month = profile.birth_month
        m.enrolled_on = profile.enrolled_on
        if profile.tier:
            m.tier = profile.tier

    def _get(self, member_id: str, at: datetime) -> _Member:
        m = self.members.get(member_id)
        if m is None:
            m = self.members[member_id] = self._new(member_id, at)
        return m

    def _new(self, member_id: str, at: datetime) -> _Member:
        return _Member(id=member_id, tier=self.lowest_tier, enrolled_on=at.date())

    def start_reviews(self, member_id: str, at: datetime, local: date) -> None:
        """Reviews for this member count from ``local`` (its first event here) onwards."""
        m = self._get(member_id, at)
        if m.reviewed_to is None:
            m.reviewed_to = local

    # --- reading -----------------------------------------------------------------------------

    def previous(self, event: Event) -> tuple[bool, Receipt] | None:
        """``(same payload?, receipt)`` if this member already sent ``event.id``, else None.

        A hash of the frozen event stands for the payload, so the state does not keep every
        event alive (it measured as a large share of garbage-collection time)."""
        m = self.members.get(event.member)
        seen = m.seen.get(event.id) if m is not None else None
        if seen is None:
            return None
        return seen[0] == fingerprint(event), seen[1]

    def advance(self, member_id: str, at: datetime) -> None:
        """Let time pass for a member: vest holds that are due, drop expired vouchers."""
        m = self.members.get(member_id)
        if m is None:
            return
        if m.holds:
            keep = []
            for h in m.holds:
                if h.vests_at is not None and h.vests_at <= at:
                    m.pending -= h.points
                    m.available += h.points
                else:
                    keep.append(h)
            m.holds = keep
        for right, untils in m.vouchers.items():
            if any(u is not None and u <= at for u in untils):
                m.vouchers[right] = [u for u in untils if u is None or u > at]

    def snapshot(self, member_id: str, at: datetime, local: date) -> tuple[MemberSnapshot, bool]:
        """The member as of ``at``, without changing anything: holds due by ``at`` count as
        available and expired vouchers as gone, exactly as :meth:`advance` would make them.
        ``is_new`` is true until the member has an accepted event."""
        m = self.members.get(member_id) or self._new(member_id, at)
        available, pending = m.available, m.pending
        for h in m.holds:
            if h.vests_at is not None and h.vests_at <= at:
                available += h.points
                pending -= h.points
        vouchers = {}
        for right, untils in m.vouchers.items():
            n = sum(1 for u in untils if u is None or u > at)
            if n:
                vouchers[right] = n
        return trusted(MemberSnapshot, dict(
            id=m.id, tier=m.tier, tier_since=m.tier_since, birth_month=m.birth_month,
            enrolled_on=m.enrolled_on, available=available, pending=pending,
            qualification=self._qualification(m, _month(local)), counters=m.counters,
            vouchers=vouchers, last_review=None)), not m.facts

    def _qualification(self, m: _Member, month: tuple[int, int]) -> Qualification:
        cached = m.qual_cache
        if cached is not None and cached[0] == month:
            return cached[1]
        last = month[0] * 12 + month[1] - 1
        window = {(i // 12, i % 12 + 1) for i in range(last - self.window_months + 1, last + 1)}
        credits: dict[str, Decimal] = {}
        lines: set[str] = set()
        for key, bucket in m.buckets.items():
            if key in window:
                for k, v in bucket.items():
                    credits[k] = credits.get(k, Decimal(0)) + v
        for key, active in m.active.items():
            if key in window:
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

    # --- writing -----------------------------------------------------------------------------

    def apply(self, decision: Decision, receipt: Receipt) -> None:
        """Write an accepted decision (and remember the receipt for idempotency)."""
        event = decision.event
        m = self._get(event.member, event.occurred_at)
        m.seen[event.id] = (fingerprint(event), receipt)
        if not receipt.accepted:
            return
        facts = m.facts.setdefault(event.id, _Facts(line=event.line, amount=event.amount))
        month = _month(decision.local_date)
        for e in decision.effects:
            if isinstance(e, EarnPoints):
                m.available += e.points
                facts.points += e.points
            elif isinstance(e, HoldPoints):
                m.pending += e.points
                facts.points += e.points
                m.holds.append(_Hold(event.id, e.line, e.points, e.vests_at, e.vests_on))
            elif isinstance(e, ReversePoints):
                facts.refundable = False  # a refund itself cannot be refunded
                self._reverse(m, e)
            elif isinstance(e, QualifyingCredit):
                bucket = m.buckets.setdefault(month, {})
                bucket[e.credit] = bucket.get(e.credit, Decimal(0)) + e.value
                m.active.setdefault(month, set()).add(e.line)
                cached = m.qual_cache
                if cached is not None and cached[0] == month:
                    q = cached[1]
                    credits = dict(q.credits)
                    credits[e.credit] = credits.get(e.credit, Decimal(0)) + e.value
                    m.qual_cache = (month, trusted(Qualification, dict(
                        credits=credits, lines_active=q.lines_active | {e.line})))
                else:
                    m.qual_cache = None
            elif isinstance(e, GrantRight):
                m.vouchers.setdefault(e.right, []).append(e.valid_until)
            elif isinstance(e, UseRight):
                untils = m.vouchers.get(e.right)
                if untils:
                    untils.sort(key=lambda u: (u is None, u))
                    del untils[:e.quantity]
            elif isinstance(e, TierChange):
                m.tier = e.to_tier
                m.tier_since = event.occurred_at
        for key, delta in decision.counters.items():
            m.counters[key] = m.counters.get(key, 0) + delta
        related = event.data.__dict__.get("related_event")
        if related and m.holds:
            self._vest_on(m, event.type, related)

    def _reverse(self, m: _Member, e: ReversePoints) -> None:
        f = m.facts.get(e.reverses)
        if f is None:
            return
        f.reversed += e.points
        if e.refunded:
            f.refunded += e.refunded
        left = e.points
        for h in m.holds:  # void pending points of that event first
            if h.source == e.reverses and left and h.points:
                take = min(h.points, left)
                h.points -= take
                m.pending -= take
                left -= take
        m.holds = [h for h in m.holds if h.points]
        m.available -= left

    def _vest_on(self, m: _Member, event_type: str, source: str) -> None:
        keep = []
        for h in m.holds:
            if h.source == source and h.vests_on == event_type:
                m.pending -= h.points
                m.available += h.points
            else:
                keep.append(h)
        m.holds = keep

    def review(self, member_id: str, policy: GroupPolicy, tz: tzinfo, up_to: date
               ) -> list[ReviewMove]:
        """Run the tier reviews due for a member up to ``up_to`` (a local date).

        Only reviews after the member's first event here are run: the state knows nothing of
        the qualification before it, and must not downgrade anyone for history it never saw.
        """
        m = self.members.get(member_id)
        if m is None or m.reviewed_to is None or up_to <= m.reviewed_to:
            return []
        moves = []
        for day in review_dates(policy, m.enrolled_on, m.reviewed_to, up_to):
            q = self._qualification(m, month_before(day))
            target = review_target(policy, m.tier, q)
            if target != m.tier:
                moves.append(ReviewMove(m.id, day, m.tier, target))
                m.tier = target
                m.tier_since = datetime.combine(day, time(0), tz)
        m.reviewed_to = up_to
        m.qual_cache = None
        self.review_log.extend(moves)
        return moves

    def review_all(self, policy: GroupPolicy, tz: tzinfo, up_to: date) -> list[ReviewMove]:
        """Run the reviews due for every member up to ``up_to`` (end of a dry-run)."""
        return [move for member_id in list(self.members)
                for move in self.review(member_id, policy, tz, up_to)]

    def set_tier(self, member_id: str, tier: str, at: datetime) -> None:
        m = self._get(member_id, at)
        m.tier = tier
        m.tier_since = at
