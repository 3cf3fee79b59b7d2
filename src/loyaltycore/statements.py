"""Reading the ledger: a member's statement, and settlement between lines.

A statement lists a member's journal entries with the running balance. Settlement answers
"what does each line owe each other line for a period": every point spent at line Y that
line X issued is a debt of X to Y at the group's point value (X funded the point, Y gave
the goods). Both read only the append-only records.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.engine import Connection

from .ledger import AVAILABLE, PENDING, Entry
from .store import ENTRIES, MEMBERS, MERGES, MOVES, POSTINGS


class StatementLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    kind: str
    entry: str
    event_id: str | None
    available: int  # change to the available balance
    pending: int
    balance: int  # available balance after this entry
    memo: str = ""


class Statement(BaseModel):
    model_config = ConfigDict(frozen=True)

    member: str
    since: datetime | None
    opening_available: int
    opening_pending: int
    lines: tuple[StatementLine, ...]
    closing_available: int
    closing_pending: int


def build_statement(member: str, since: datetime | None,
                    rows: Iterable[tuple[datetime, str, str, str | None, int, int, str]],
                    opening: tuple[int, int]) -> Statement:
    available, pending = opening
    lines = []
    for at, kind, entry, event_id, d_avail, d_pend, memo in rows:
        available += d_avail
        pending += d_pend
        lines.append(StatementLine(at=at, kind=kind, entry=entry, event_id=event_id,
                                   available=d_avail, pending=d_pend, balance=available,
                                   memo=memo))
    return Statement(member=member, since=since, opening_available=opening[0],
                     opening_pending=opening[1], lines=tuple(lines),
                     closing_available=available, closing_pending=pending)


def statement_from_journal(member: str, ids: set[str], journal: Iterable[Entry],
                           since: datetime | None) -> Statement:
    opening = [0, 0]
    rows = []
    for e in sorted(journal, key=lambda e: (e.at, e.seq, e.id)):
        d = [0, 0]
        for p in e.postings:
            if p.member in ids:
                d[0 if p.account == AVAILABLE else 1] += p.points
        if d == [0, 0] and not any(p.member in ids for p in e.postings) and e.member not in ids:
            continue
        if since is not None and e.at < since:
            opening[0] += d[0]
            opening[1] += d[1]
        else:
            rows.append((e.at, e.kind, e.id, e.event_id, d[0], d[1], e.memo))
    return build_statement(member, since, rows, (opening[0], opening[1]))


def statement_from_db(conn: Connection, member: str, since: datetime | None) -> Statement:
    """The member's statement; entries of ids merged into it are part of its history."""
    ids = [member] + [r.id for r in conn.execute(
        select(MEMBERS.c.id).where(MEMBERS.c.merged_into == member))]
    # A member's postings are on its own entries, but for a merge's, which are on the
    # survivor's entry: the entries to read are the members' and their survivors' (found
    # by member, then their postings by entry: postings have no index by member).
    owners = sorted(set(ids) | set(conn.execute(
        select(MERGES.c.survivor).where(MERGES.c.absorbed.in_(ids))).scalars()))
    theirs = ENTRIES.c.member_id.in_(owners)
    mine = and_(POSTINGS.c.member_id.in_(ids), POSTINGS.c.account.in_((AVAILABLE, PENDING)))
    opening = [0, 0]
    if since is not None:
        q = select(POSTINGS.c.account, func.sum(POSTINGS.c.points)) \
            .select_from(ENTRIES.join(POSTINGS, POSTINGS.c.entry_id == ENTRIES.c.id)) \
            .where(theirs, mine, ENTRIES.c.at < since).group_by(POSTINGS.c.account)
        for account, total in conn.execute(q):
            opening[0 if account == AVAILABLE else 1] = int(total)
    q = select(ENTRIES.c.id, ENTRIES.c.at, ENTRIES.c.kind, ENTRIES.c.event_id, ENTRIES.c.memo,
               ENTRIES.c.seq, POSTINGS.c.account, POSTINGS.c.points) \
        .select_from(ENTRIES.outerjoin(POSTINGS, and_(POSTINGS.c.entry_id == ENTRIES.c.id,
                                                      mine))) \
        .where(theirs, or_(ENTRIES.c.member_id.in_(ids), POSTINGS.c.member_id.in_(ids)))
    if since is not None:
        q = q.where(ENTRIES.c.at >= since)
    grouped: dict[str, list] = {}
    for r in conn.execute(q):
        g = grouped.setdefault(r.id, [r.at, r.kind, r.id, r.event_id, 0, 0, r.memo, r.seq])
        if r.account == AVAILABLE:
            g[4] += r.points
        elif r.account == PENDING:
            g[5] += r.points
    rows = sorted(grouped.values(), key=lambda g: (g[0], g[7], g[2]))
    return build_statement(member, since, [tuple(g[:7]) for g in rows],
                           (opening[0], opening[1]))


class Settlement(BaseModel):
    """Points issued by ``issuer`` and spent at ``redeemer`` in the period, and what the
    issuer owes the redeemer for them at ``point_value``."""

    model_config = ConfigDict(frozen=True)

    issuer: str
    redeemer: str
    points: int
    amount: Decimal
    currency: str


def settlement(conn: Connection, since: datetime | None, until: datetime | None,
               point_value: Decimal, currency: str) -> list[Settlement]:
    # A cancelled redemption (restore moves) gives back what it owed, in the period of the
    # cancellation: a period can owe a negative amount (a credit note).
    signed = case((MOVES.c.kind == "redeem", MOVES.c.points), else_=-MOVES.c.points)
    q = select(MOVES.c.issuer, MOVES.c.to_line, func.sum(signed)) \
        .where(MOVES.c.kind.in_(("redeem", "restore"))) \
        .group_by(MOVES.c.issuer, MOVES.c.to_line)
    if since is not None:
        q = q.where(MOVES.c.at >= since)
    if until is not None:
        q = q.where(MOVES.c.at < until)
    out = []
    for issuer, redeemer, points in sorted(conn.execute(q)):
        points = int(points)
        if not points:
            continue  # spent and given back within the period
        out.append(Settlement(issuer=issuer, redeemer=redeemer, points=points,
                              amount=(point_value * points).quantize(Decimal("0.01")),
                              currency=currency))
    return out
