"""Merging two member ids that turned out to be one person.

Everything of the absorbed member moves to the survivor inside the state, as ledger
records: one balanced ``merge`` entry, the lots as new lots that remember their origin, and
the qualification, counters, vouchers, receipts and refund facts; the higher tier wins.
The engine adds what lies outside a member's state (aliases, identities, the audit row).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from .ledger import AVAILABLE, PENDING, RESERVED, Entry, Lot, Move, Posting, TierMove
from .memory import Member, MemoryState


def merge_members(state: MemoryState, s: Member, a: Member, at: datetime, reason: str,
                  tier_rank: Mapping[str, int]) -> Entry:
    """Move everything of ``a`` to ``s``: lots (as new lots that remember their origin),
    balances and refund debt, open holds, qualification, counters, vouchers, refund facts
    and receipts;
    the higher tier wins. One balanced ``merge`` entry records the move."""
    ch = s.changes
    state.full_lots(s)
    state.full_lots(a)
    moves, postings = [], []
    for lot in sorted(a.lots.values(), key=lambda lot: lot.id):
        points = lot.remaining
        new = Lot(id=f"{s.id}|merge|{lot.id}", member=s.id, line=lot.line, points=points,
                  remaining=points, status=lot.status, earned_at=lot.earned_at,
                  available_from=lot.available_from, vests_on=lot.vests_on,
                  expires_at=lot.expires_at, source_event=lot.source_event, rule=lot.rule,
                  origin=lot.id, entry=f"{s.id}|merge|{a.id}")
        moves.append(Move(lot.id, "merge", points, lot.line))
        lot.remaining = 0
        state._close_if_empty(a, lot)
        s.lots[new.id] = new
        if ch is not None:
            ch.new_lots[new.id] = new
    for account, points in ((AVAILABLE, a.available), (PENDING, a.pending),
                            (RESERVED, a.reserved)):
        if points:
            postings += [Posting(account, a.id, -points), Posting(account, s.id, points)]
    s.available += a.available
    s.pending += a.pending
    s.reserved += a.reserved
    s.debt += a.debt
    a.available = a.pending = a.reserved = a.debt = 0
    for r in a.reservations.values():  # a hold on a till goes on under the survivor (the
        r.member = s.id                  # store moves its row with the receipts)
        s.reservations.setdefault(r.id, r)
    for month, bucket in a.buckets.items():
        mine = s.buckets.setdefault(month, {})
        for credit, value in bucket.items():
            mine[credit] = mine.get(credit, Decimal(0)) + value
            if ch is not None:
                ch.buckets.add((month, credit))
    for month, lines in a.active.items():
        s.active.setdefault(month, set()).update(lines)
        if ch is not None:
            ch.active.update((month, line) for line in lines)
    for key, value in a.counters.items():
        s.counters[key] = s.counters.get(key, 0) + value
        if ch is not None:
            ch.counters.add(key)
    for right, grants in a.grants.items():
        for g in grants:
            g.member = s.id
            s.grants.setdefault(right, []).append(g)
            if ch is not None:
                ch.touch_grant(g)
    for eid, f in a.facts.items():
        s.facts.setdefault(eid, f)
    for eid, seen in a.seen.items():
        s.seen.setdefault(eid, seen)
    a.lots, a.buckets, a.active, a.counters, a.grants = {}, {}, {}, {}, {}
    a.reservations = {}
    a.facts, a.seen = {}, {}
    s.has_events = s.has_events or a.has_events
    if a.last_activity and (s.last_activity is None or a.last_activity > s.last_activity):
        s.last_activity = a.last_activity
    s.inactive_at = max((d for d in (s.inactive_at, a.inactive_at) if d), default=None)
    if a.enrolled_on and (s.enrolled_on is None or a.enrolled_on < s.enrolled_on):
        s.enrolled_on = a.enrolled_on
    s.birth_month = s.birth_month or a.birth_month
    s.reviewed_to = s.reviewed_to or a.reviewed_to
    if tier_rank.get(a.tier, 0) > tier_rank.get(s.tier, 0):
        state._tier_move(s, TierMove(s.id, at, s.tier, a.tier, "merge", None,
                                     f"merged {a.id}: kept the higher tier"))
        s.tier, s.tier_since = a.tier, at
    s.qual_cache = None
    a.merged_into = s.id
    state._recompute_due(s)
    state._recompute_due(a)
    entry = Entry(id=f"{s.id}|merge|{a.id}", member=s.id, kind="merge", at=at, event_id=None,
                  postings=tuple(postings), moves=tuple(moves), memo=reason)
    state._post(s, entry)
    if a.changes is not None:
        a.changes.tier_moves.append(TierMove(a.id, at, a.tier, a.tier, "merge", None,
                                             f"merged into {s.id}: {reason}"))
    return entry
