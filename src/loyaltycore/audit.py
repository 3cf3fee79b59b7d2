"""``ledger check``: re-derive every balance from the append-only records and compare.

The append-only tables (entries, postings, lot moves, and each lot's original points) are
the truth; member balances and each lot's ``remaining`` are projections kept for speed.
The check recomputes the projections and reports every difference, and proves the
conservation laws:

- every journal entry's postings sum to zero;
- each member's ``available``/``pending``/``reserved`` equal the sum of their postings;
  ``available`` and ``pending`` equal their live lots (``available`` = available lots -
  debt), and ``reserved`` their open holds;
- each lot's ``remaining`` = its points - what moved out of it;
- per line: issued = available + pending + on hold + redeemed + expired + reversed (from
  lots and moves), and the line's ``issued``/``redeemed``/``expired`` accounts agree with
  them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection

from .ledger import CONSUMING, MEMBER_ACCOUNTS
from .store import LOTS, MEMBERS, MOVES, POSTINGS, RESERVATIONS

LIMIT = 50  # differences listed per kind; the count is always exact


@dataclass
class LineBalance:
    line: str
    issued: int = 0
    available: int = 0
    pending: int = 0
    reserved: int = 0  # this line's points on hold at a till
    redeemed_from: int = 0  # this line's points spent anywhere
    redeemed_at: int = 0  # any line's points spent here
    expired: int = 0
    reversed: int = 0

    @property
    def outstanding(self) -> int:
        return self.available + self.pending + self.reserved


@dataclass
class CheckReport:
    entries: int = 0
    members: int = 0
    lots: int = 0
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    lines: dict[str, LineBalance] = field(default_factory=dict)
    debt: int = 0

    @property
    def clean(self) -> bool:
        return not self.problems

    def problem(self, kind: str, message: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.counts[kind] <= LIMIT:
            self.problems.append(f"{kind}: {message}")

    def as_dict(self) -> dict[str, Any]:
        return {"clean": self.clean, "entries": self.entries, "members": self.members,
                "lots": self.lots, "problems": self.problems, "problem_counts": self.counts,
                "debt": self.debt,
                "lines": {k: {**vars(v), "outstanding": v.outstanding}
                          for k, v in sorted(self.lines.items())}}


def check_ledger(conn: Connection) -> CheckReport:
    report = CheckReport()
    _entries_balance(conn, report)
    _member_balances(conn, report)
    _lots(conn, report)
    _lines(conn, report)
    return report


def _entries_balance(conn: Connection, report: CheckReport) -> None:
    sums = select(POSTINGS.c.entry_id, func.sum(POSTINGS.c.points).label("total")) \
        .group_by(POSTINGS.c.entry_id).subquery()
    report.entries = conn.execute(select(func.count()).select_from(sums)).scalar_one()
    for entry_id, total in conn.execute(select(sums.c.entry_id, sums.c.total)
                                        .where(sums.c.total != 0)):
        report.problem("unbalanced-entry", f"entry {entry_id} postings sum to {total}")


def _member_balances(conn: Connection, report: CheckReport) -> None:
    posted: dict[str, list[int]] = {}
    q = select(POSTINGS.c.member_id, POSTINGS.c.account, func.sum(POSTINGS.c.points)) \
        .where(POSTINGS.c.member_id.is_not(None)) \
        .group_by(POSTINGS.c.member_id, POSTINGS.c.account)
    for member_id, account, total in conn.execute(q):
        if account not in MEMBER_ACCOUNTS:
            report.problem("member-account", f"member {member_id} has postings to an "
                                             f"unknown account {account!r}")
            continue
        posted.setdefault(member_id, [0, 0, 0])[MEMBER_ACCOUNTS[account]] = int(total)
    holds = {member_id: int(total) for member_id, total in conn.execute(
        select(RESERVATIONS.c.member_id, func.sum(RESERVATIONS.c.points))
        .where(RESERVATIONS.c.status == "open").group_by(RESERVATIONS.c.member_id))}
    in_lots: dict[str, list[int]] = {}
    q = select(LOTS.c.member_id, LOTS.c.status, func.sum(LOTS.c.remaining)) \
        .where(LOTS.c.status != "closed").group_by(LOTS.c.member_id, LOTS.c.status)
    for member_id, status, total in conn.execute(q):
        in_lots.setdefault(member_id, [0, 0])[0 if status == "available" else 1] = int(total)
    for row in conn.execute(select(MEMBERS.c.id, MEMBERS.c.available, MEMBERS.c.pending,
                                   MEMBERS.c.reserved, MEMBERS.c.debt)):
        report.members += 1
        report.debt += row.debt
        p = posted.get(row.id, [0, 0, 0])
        lots = in_lots.get(row.id, [0, 0])
        if row.available < 0 and row.debt == 0:
            report.problem("overdraft", f"member {row.id} available {row.available} "
                                        "with no refund debt")
        if (row.available, row.pending, row.reserved) != tuple(p):
            report.problem("member-vs-postings",
                           f"member {row.id} holds available {row.available} pending "
                           f"{row.pending} on hold {row.reserved}; postings say {p[0]}, "
                           f"{p[1]} and {p[2]}")
        if row.reserved != holds.get(row.id, 0):
            report.problem("member-vs-holds",
                           f"member {row.id} holds {row.reserved} points on hold; its open "
                           f"reservations hold {holds.get(row.id, 0)}")
        if (row.available + row.debt, row.pending) != (lots[0], lots[1]):
            report.problem("member-vs-lots",
                           f"member {row.id} holds available {row.available} (+ debt "
                           f"{row.debt}) pending {row.pending}; live lots hold {lots[0]} "
                           f"and {lots[1]}")


def _lots(conn: Connection, report: CheckReport) -> None:
    moved = select(MOVES.c.lot_id, func.sum(MOVES.c.points).label("out")) \
        .where(MOVES.c.kind.in_((*CONSUMING, "merge"))).group_by(MOVES.c.lot_id).subquery()
    q = select(LOTS.c.id, LOTS.c.points, LOTS.c.remaining, LOTS.c.status,
               func.coalesce(moved.c.out, 0)).outerjoin(moved, moved.c.lot_id == LOTS.c.id)
    for lot_id, points, remaining, status, out in conn.execute(q):
        report.lots += 1
        if remaining != points - int(out):
            report.problem("lot-remaining", f"lot {lot_id}: remaining {remaining}, but "
                                            f"{points} earned - {out} moved out = "
                                            f"{points - int(out)}")
        if (remaining == 0) != (status == "closed") or remaining < 0:
            report.problem("lot-status", f"lot {lot_id}: status {status} with {remaining} "
                                         "remaining")


def _lines(conn: Connection, report: CheckReport) -> None:
    lines = report.lines

    def line(name: str) -> LineBalance:
        return lines.setdefault(name, LineBalance(name))

    q = select(LOTS.c.line,
               func.sum(case((LOTS.c.origin.is_(None), LOTS.c.points), else_=0)),
               func.sum(case((LOTS.c.status == "available", LOTS.c.remaining), else_=0)),
               func.sum(case((LOTS.c.status == "pending", LOTS.c.remaining), else_=0))
               ).group_by(LOTS.c.line)
    for name, issued, available, pending in conn.execute(q):
        b = line(name)
        b.issued, b.available, b.pending = int(issued or 0), int(available or 0), \
            int(pending or 0)
    q = select(MOVES.c.issuer, MOVES.c.kind, MOVES.c.to_line, func.sum(MOVES.c.points)) \
        .group_by(MOVES.c.issuer, MOVES.c.kind, MOVES.c.to_line)
    for issuer, kind, to_line, total in conn.execute(q):
        total = int(total)
        if kind in ("redeem", "capture", "restore"):  # restore: a cancellation gave back
            sign = -1 if kind == "restore" else 1
            line(issuer).redeemed_from += sign * total
            line(to_line).redeemed_at += sign * total
        if kind in ("reserve", "capture", "release"):  # on hold until captured or released
            line(issuer).reserved += total if kind == "reserve" else -total
        elif kind == "expire":
            line(issuer).expired += total
        elif kind in ("reverse", "void", "repay"):
            line(issuer).reversed += total
    accounts = {a: int(t) for a, t in conn.execute(
        select(POSTINGS.c.account, func.sum(POSTINGS.c.points))
        .where(POSTINGS.c.member_id.is_(None)).group_by(POSTINGS.c.account))}
    reversed_accounts = 0
    for account, total in accounts.items():
        kind, _, name = account.partition(":")
        if kind == "reversed":
            reversed_accounts += total
        line(name)
    for name, b in sorted(lines.items()):
        if b.issued != (b.available + b.pending + b.reserved + b.redeemed_from + b.expired
                        + b.reversed):
            report.problem("line-conservation",
                           f"line {name}: issued {b.issued} != available {b.available} + "
                           f"pending {b.pending} + on hold {b.reserved} + redeemed "
                           f"{b.redeemed_from} + expired {b.expired} + reversed "
                           f"{b.reversed}")
        for account, want in ((f"issued:{name}", -b.issued),
                              (f"redeemed:{name}", b.redeemed_at),
                              (f"expired:{name}", b.expired)):
            if accounts.get(account, 0) != want:
                report.problem("line-account", f"account {account} is "
                                               f"{accounts.get(account, 0)}, lots and moves "
                                               f"say {want}")
    lot_reversed = sum(b.reversed for b in lines.values())
    if reversed_accounts != lot_reversed + report.debt:
        report.problem("reversals", f"reversed accounts total {reversed_accounts}, but lots "
                                    f"gave back {lot_reversed} and members owe "
                                    f"{report.debt}")
