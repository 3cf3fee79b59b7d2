"""Rights (benefits) as deciding and checking see them: lookup, quota room, grants.

A right is looked up as seen by a line: a group right, or one of that line's own rights in
the ruleset in force. Quotas count grants (vouchers) or uses (entitlements) per period in
the member's counters; these helpers are shared by deciding (which proposes grants and
counter increments) and the invariants (which re-check them).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from .effects import GrantRight, Trace, UseRight, trusted
from .events import Event
from .members import MemberSnapshot
from .periods import period_key
from .rulebook import GroupBook, LineBook, RightDef, RuleBook

if TYPE_CHECKING:
    from .decide import Decision


def grant_effect(rd: RightDef, event: Event, rule: str | None, version: str | None,
                 file: str | None, source: str, values: dict[str, Any]) -> GrantRight:
    right = rd.right
    until = (event.occurred_at + timedelta(days=right.valid_days)
             if right.valid_days is not None else None)
    line = rd.line if rd.line != "group" else event.line
    return trusted(GrantRight, dict(
        line=line, rule=rule, source=source,
        trace=trusted(Trace, dict(rule=rule or right.id, version=version, file=file,
                                    detail=f"grant {right.id}: {right.description}",
                                    values=values)),
        kind="grant_right", right=right.id, valid_until=until, description=right.description))


def quota_room(rd: RightDef, member: MemberSnapshot, pending: Mapping[str, int],
               day: date, *, counter: str) -> int | None:
    """How many more grants/uses the right's quota allows this period (None: no quota)."""
    quota = rd.right.quota
    if quota is None:
        return None
    key = period_key(quota.per, day)
    if key is None:
        return quota.count
    ckey = f"{counter}:{rd.right.id}:{key}"
    return quota.count - member.counters.get(ckey, 0) - pending.get(ckey, 0)


def right_counters(decision: Decision, gb: GroupBook, lb: LineBook | None) -> None:
    """Counter increments for the quota periods of the rights granted or used."""
    day = decision.local_date
    for e in decision.effects:
        if isinstance(e, GrantRight | UseRight):
            rd = find_right(e.right, gb, decision.line_book, e.line, decision.book,
                            decision.event.occurred_at)
            if rd is None or rd.right.quota is None:
                continue
            kind = "grant" if isinstance(e, GrantRight) else "use"
            key = period_key(rd.right.quota.per, day)
            if key is None:
                continue
            qty = e.quantity if isinstance(e, UseRight) else 1
            ckey = f"{kind}:{rd.right.id}:{key}"
            decision.counters[ckey] = decision.counters.get(ckey, 0) + qty


def find_right(right: str, gb: GroupBook, lb: LineBook | None, line: str,
               book: RuleBook | None = None, at: Any = None) -> RightDef | None:
    """The right ``right`` as seen by ``line``: a group right, or one of that line's own."""
    rd = gb.rights.get(right)
    if rd is not None:
        return rd
    if lb is not None and lb.ruleset.line == line:
        return lb.rights.get(right)
    if book is not None and at is not None:
        other = book.line_at(line, at)
        if other is not None:
            return other.rights.get(right)
    return None
