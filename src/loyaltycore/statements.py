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

from .ledger import MEMBER_ACCOUNTS, Entry
from .store import ENTRIES, MEMBERS, MERGES, MOVES, POSTINGS


class StatementLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    kind: str
    entry: str
    event_id: str | None
    available: int  # change to the available balance
    pending: int
    reserved: int = 0  # change to the points on hold at a till
    balance: int  # available balance after this entry
    memo: str = ""


class Statement(BaseModel):
    model_config = ConfigDict(frozen=True)

    member: str
    since: datetime | None
    opening_available: int
    opening_pending: int
    opening_reserved: int = 0
    lines: tuple[StatementLine, ...]
    closing_available: int
    closing_pending: int
    closing_reserved: int = 0




def build_statement(member: str, since: datetime | None,
                    rows: Iterable[tuple[datetime, str, str, str | None, list[int], str]],
                    opening: list[int]) -> Statement:
    """``rows``: (at, kind, entry, event id, [Δavailable, Δpending, Δreserved], memo)."""
    balances = list(opening)
    lines = []
    for at, kind, entry, event_id, delta, memo in rows:
        balances = [b + d for b, d in zip(balances, delta, strict=True)]
        lines.append(StatementLine(at=at, kind=kind, entry=entry, event_id=event_id,
                                   available=delta[0], pending=delta[1], reserved=delta[2],
                                   balance=balances[0], memo=memo))
    return Statement(member=member, since=since, opening_available=opening[0],
                     opening_pending=opening[1], opening_reserved=opening[2],
                     lines=tuple(lines), closing_available=balances[0],
                     closing_pending=balances[1], closing_reserved=balances[2])


def statement_from_journal(member: str, ids: set[str], journal: Iterable[Entry],
                           since: datetime | None) -> Statement:
    opening = [0, 0, 0]
    rows = []
    for e in sorted(journal, key=lambda e: (e.at, e.seq, e.id)):
        d = [0, 0, 0]
        for p in e.postings:
            if p.member in ids and p.account in MEMBER_ACCOUNTS:
                d[MEMBER_ACCOUNTS[p.account]] += p.points
        if not any(d) and not any(p.member in ids for p in e.postings) \
                and e.member not in ids:
            continue
        if since is not None and e.at < since:
            opening = [o + x for o, x in zip(opening, d, strict=True)]
        else:
            rows.append((e.at, e.kind, e.id, e.event_id, d, e.memo))
    return build_statement(member, since, rows, opening)


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
    mine = and_(POSTINGS.c.member_id.in_(ids), POSTINGS.c.account.in_(tuple(MEMBER_ACCOUNTS)))
    opening = [0, 0, 0]
    if since is not None:
        q = select(POSTINGS.c.account, func.sum(POSTINGS.c.points)) \
            .select_from(ENTRIES.join(POSTINGS, POSTINGS.c.entry_id == ENTRIES.c.id)) \
            .where(theirs, mine, ENTRIES.c.at < since).group_by(POSTINGS.c.account)
        for account, total in conn.execute(q):
            opening[MEMBER_ACCOUNTS[account]] = int(total)
    q = select(ENTRIES.c.id, ENTRIES.c.at, ENTRIES.c.kind, ENTRIES.c.event_id, ENTRIES.c.memo,
               ENTRIES.c.seq, POSTINGS.c.account, POSTINGS.c.points) \
        .select_from(ENTRIES.outerjoin(POSTINGS, and_(POSTINGS.c.entry_id == ENTRIES.c.id,
                                                      mine))) \
        .where(theirs, or_(ENTRIES.c.member_id.in_(ids), POSTINGS.c.member_id.in_(ids)))
    if since is not None:
        q = q.where(ENTRIES.c.at >= since)
    grouped: dict[str, list] = {}
    for r in conn.execute(q):
        g = grouped.setdefault(r.id, [r.at, r.kind, r.id, r.event_id, [0, 0, 0], r.memo,
                                      r.seq])
        if r.account in MEMBER_ACCOUNTS:
            g[4][MEMBER_ACCOUNTS[r.account]] += r.points
    rows = sorted(grouped.values(), key=lambda g: (g[0], g[6], g[2]))
    return build_statement(member, since, [tuple(g[:6]) for g in rows], opening)


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
    # A point is owed when it is spent: redeemed, or captured from a hold (a hold alone
    # owes nothing yet). A cancelled redemption (restore moves) gives back what it owed, in
    # the period of the cancellation: a period can owe a negative amount (a credit note).
    signed = case((MOVES.c.kind == "restore", -MOVES.c.points), else_=MOVES.c.points)
    q = select(MOVES.c.issuer, MOVES.c.to_line, func.sum(signed)) \
        .where(MOVES.c.kind.in_(("redeem", "capture", "restore"))) \
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
