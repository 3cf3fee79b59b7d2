"""``loyalty demo``: a synthetic group run through the real engine, then the program's figures.

The group comes from :mod:`loyaltycore.synthetic`. :func:`run_demo` enrols the members,
processes the events month by month into the durable ledger and runs the time-driven jobs
at the end of each month, reading the events as it goes (:func:`run_synthetic` feeds it a
synthetic group one month at a time, so memory does not grow with the period);
:class:`DemoReport` then reads what a programme manager asks first: cost per line, liability, who owes whom, tiers, cross-line behaviour, rights, the
rules that paid, rejections and the ledger check.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from .effects import (
    CaptureReservation,
    EarnPoints,
    HoldPoints,
    QualifyingCredit,
    RedeemPoints,
    ReleaseReservation,
    ReservePoints,
    RestorePoints,
    ReversePoints,
)
from .engine import Engine
from .receipts import Receipt
from .statements import Settlement
from .store import GRANTS, RESERVATIONS, TIERS, USES
from .synthetic import (  # noqa: F401 - generate and write_jsonl: the demo's public names
    CENT,
    DEFAULT_START,
    LINES,
    REFUND_TYPES,
    SyntheticGroup,
    add_months,
    generate,
    write_jsonl,
)

# --- running and reporting ---------------------------------------------------------------------


@dataclass
class LineFigures:
    """One line's points (from the ledger check) against its revenue (from the receipts)."""

    line: str
    issued: int = 0
    available: int = 0
    pending: int = 0
    redeemed: int = 0  # this line's points spent anywhere
    redeemed_here: int = 0  # any line's points spent at this line
    expired: int = 0
    reversed: int = 0
    sales: Decimal = Decimal(0)
    refunds: Decimal = Decimal(0)
    max_cost_ratio: Decimal | None = None

    @property
    def outstanding(self) -> int:
        return self.available + self.pending

    @property
    def revenue(self) -> Decimal:
        return self.sales - self.refunds

    def cost(self, point_value: Decimal) -> Decimal:
        """What the points this line funded and did not take back are worth."""
        return (Decimal(self.issued - self.reversed) * point_value).quantize(CENT)

    def cost_ratio(self, point_value: Decimal) -> Decimal | None:
        if self.revenue <= 0:
            return None
        return (self.cost(point_value) / self.revenue).quantize(Decimal("0.0001"))


@dataclass
class DemoReport:
    members: int
    months: int
    start: date
    currency: str
    point_value: Decimal
    events: int = 0
    accepted: int = 0
    rejected: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    lines: dict[str, LineFigures] = field(default_factory=dict)
    settlement: list[Settlement] = field(default_factory=list)
    tiers: dict[str, int] = field(default_factory=dict)
    tier_moves: list[dict[str, Any]] = field(default_factory=list)
    active_lines: Counter[int] = field(default_factory=Counter)  # members by lines active
    conversion: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    active_in: dict[str, int] = field(default_factory=dict)
    rights_granted: dict[str, int] = field(default_factory=dict)
    rights_used: dict[str, dict[str, int]] = field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejections: dict[str, int] = field(default_factory=dict)
    rejection_examples: dict[str, str] = field(default_factory=dict)
    redemptions: dict[str, int] = field(default_factory=dict)  # accepted, and cancelled
    monthly: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    jobs: dict[str, int] = field(default_factory=dict)
    ledger_clean: bool = False
    ledger_problems: list[str] = field(default_factory=list)

    @property
    def events_per_s(self) -> float | None:
        spent = self.seconds.get("processing", 0.0)
        return round(self.events / spent, 1) if spent > 0 else None

    @property
    def liability_points(self) -> int:
        return sum(b.outstanding for b in self.lines.values())

    @property
    def liability(self) -> Decimal:
        return (Decimal(self.liability_points) * self.point_value).quantize(CENT)

    @property
    def multi_line_share(self) -> Decimal | None:
        active = sum(self.active_lines.values())
        if not active:
            return None
        multi = sum(n for k, n in self.active_lines.items() if k >= 2)
        return (Decimal(multi) / active).quantize(Decimal("0.0001"))

    def settlement_matrix(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for s in self.settlement:
            out.setdefault(s.issuer, {})[s.redeemer] = s.points
        return out

    def as_dict(self) -> dict[str, Any]:
        pv = self.point_value
        inter = [s for s in self.settlement if s.issuer != s.redeemer]
        return {
            "run": {"members": self.members, "months": self.months,
                    "start": self.start.isoformat(), "events": self.events,
                    "accepted": self.accepted, "rejected": self.rejected,
                    "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
                    "events_per_s": self.events_per_s},
            "lines": {name: {
                "issued": b.issued, "redeemed": b.redeemed, "redeemed_here": b.redeemed_here,
                "expired": b.expired, "reversed": b.reversed, "available": b.available,
                "pending": b.pending, "outstanding": b.outstanding, "sales": str(b.sales),
                "refunds": str(b.refunds), "revenue": str(b.revenue), "cost": str(b.cost(pv)),
                "cost_ratio": _str(b.cost_ratio(pv)), "max_cost_ratio": _str(b.max_cost_ratio),
                "liability": str((Decimal(b.outstanding) * pv).quantize(CENT)),
            } for name, b in sorted(self.lines.items())},
            "redemptions": self.redemptions,
            "liability": {"points": self.liability_points, "amount": str(self.liability),
                          "currency": self.currency, "point_value": str(pv)},
            "settlement": {
                "rows": [{"issuer": s.issuer, "redeemer": s.redeemer, "points": s.points,
                          "amount": str(s.amount)} for s in self.settlement],
                "matrix": self.settlement_matrix(),
                "points": sum(s.points for s in self.settlement),
                "inter_line_points": sum(s.points for s in inter),
                "inter_line_amount": str(sum((s.amount for s in inter), Decimal("0.00"))),
                "currency": self.currency},
            "tiers": {"distribution": self.tiers, "moves": self.tier_moves},
            "cross_line": {"members_active": sum(self.active_lines.values()),
                           "by_lines_active": {str(k): v for k, v in
                                               sorted(self.active_lines.items())},
                           "multi_line_share": _str(self.multi_line_share),
                           "active_in": self.active_in,
                           "conversion": {x: {y: str(v) for y, v in row.items()}
                                          for x, row in self.conversion.items()}},
            "rights": {"granted": self.rights_granted, "used": self.rights_used},
            "rules": self.rules,
            "rejections": {"by_reason": self.rejections, "examples": self.rejection_examples},
            "months": self.monthly,
            "jobs": self.jobs,
            "ledger": {"clean": self.ledger_clean, "problems": self.ledger_problems},
        }


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


Progress = Callable[[str, int, int | None], None]  # (stage, done, total if known)

# Events per transaction. A bulk load commits less often than a till system would: at 10^4
# members and more each event's rows sit on B-tree pages of their own, and a page written
# by several events of one commit goes to the log once (bench/wal_pages.py, 10^4 members:
# 13.0 page images logged per event in batches of 500, 7.4 in batches of 2,500).
DEMO_BATCH = 2000


def run_demo(engine: Engine, profiles: Sequence[Mapping[str, Any]],
             events: Iterable[Mapping[str, Any]], months: int,
             progress: Progress | None = None, *, start: date = DEFAULT_START,
             batch_size: int = DEMO_BATCH, total: int | None = None) -> DemoReport:
    """Enrol ``profiles``, then process ``events`` month by month into the engine's durable
    ledger, running the jobs at the end of every month; report.

    ``events`` must come in time order; it is read as it is processed, so an iterator
    (:meth:`SyntheticGroup.months`, a file read line by line) is never held whole. A month's
    jobs run before any event of the next month is processed. ``start`` is the first month,
    as given to :func:`generate`. Events outside the months are processed with the first or
    last month. ``total`` (the number of events, if ``events`` has no length) only feeds
    ``progress``. Meant for an empty ledger: the figures read from the database (points,
    settlement, tiers, rights) cover all of it, those read from the receipts (revenue,
    rules, rejections, activity) only this run."""
    if engine.store is None:
        raise ValueError("the demo reads the durable ledger: open the engine with db=...")
    gb = engine.rulebook.groups[-1]
    tz = gb.tz
    first = date(start.year, start.month, 1)
    report = DemoReport(members=len(profiles), months=months, start=first,
                        currency=gb.policy.currency, point_value=gb.policy.point_value)
    tally = _Tally()
    if total is None and isinstance(events, Sized):
        total = len(events)

    started = time.perf_counter()
    for i in range(0, len(profiles), 1000):
        engine.enrol_many(profiles[i:i + 1000])
        if progress:
            progress("enrol", min(i + 1000, len(profiles)), len(profiles))
    report.seconds["enrol"] = time.perf_counter() - started

    base = first.year * 12 + first.month - 1
    processing = jobs_time = 0.0
    jobs: Counter[str] = Counter()
    done = 0
    month = 0
    batch: list[Mapping[str, Any]] = []
    last: datetime | None = None

    def flush() -> None:
        nonlocal processing, done
        if not batch:
            return
        t0 = time.perf_counter()
        receipts = engine.process_many(batch, batch_size=batch_size)
        processing += time.perf_counter() - t0
        label = add_months(first, month).strftime("%Y-%m")
        tally.add(receipts, label)
        done += len(batch)
        batch.clear()
        if progress:
            progress(label, done, total)

    def month_end() -> None:
        nonlocal jobs_time
        flush()
        t0 = time.perf_counter()
        end_of_month = datetime.combine(add_months(first, month + 1), datetime.min.time(),
                                        tz) - timedelta(microseconds=1)
        result = engine.run_jobs(end_of_month)
        jobs_time += time.perf_counter() - t0
        jobs.update(vested=result.vested, expired=result.expired, lapsed=result.lapsed,
                    reviews=len(result.moves), members_due=result.members)
        if progress:
            progress(f"{add_months(first, month):%Y-%m} jobs", done, total)

    for ev in events:
        when = datetime.fromisoformat(str(ev["occurred_at"]))
        if last is not None and when < last:
            raise ValueError(f"events must come in time order: {ev.get('id')} at "
                             f"{ev['occurred_at']} follows an event at {last.isoformat()}")
        last = when
        local = when.astimezone(tz)
        k = min(max(local.year * 12 + local.month - 1 - base, 0), months - 1)
        while month < k:
            month_end()
            month += 1
        batch.append(ev)
        if len(batch) >= batch_size:
            flush()
    while month < months:
        month_end()
        month += 1
    report.seconds["processing"] = processing
    report.seconds["jobs"] = jobs_time
    report.jobs = {k: jobs[k] for k in ("vested", "expired", "lapsed", "reviews",
                                        "members_due")}

    t0 = time.perf_counter()
    tally.fill(report, gb)
    _from_ledger(engine, report, profiles, gb)
    report.seconds["report"] = time.perf_counter() - t0
    report.seconds["total"] = time.perf_counter() - started
    return report


def run_synthetic(engine: Engine, group: SyntheticGroup, events_out: str | Path | None = None,
                  progress: Progress | None = None, *, batch_size: int = DEMO_BATCH
                  ) -> DemoReport:
    """:func:`run_demo` on a synthetic group, a month at a time: simulate the group, then
    for each month write its events to ``events_out`` (JSONL, if given), process them and
    run the month's jobs, and let the month go before the next one is read.

    ``report.seconds["generate"]`` is the simulation; reading the months back is part of
    the total."""
    t0 = time.perf_counter()
    total = group.simulate(
        None if progress is None else lambda done, of: progress("generate", done, of))
    generated = time.perf_counter() - t0
    with ExitStack() as stack:
        out = None if events_out is None else stack.enter_context(
            open(events_out, "w", encoding="utf-8"))

        def events() -> Iterator[dict[str, Any]]:
            for month in group.months():
                if out is not None:
                    out.writelines(month.lines)
                yield from month.events()
                del month  # or it would live on while the next month is read

        report = run_demo(engine, group.profiles, events(), group.months_in_period,
                          progress, start=group.first, batch_size=batch_size, total=total)
    report.seconds = {"generate": generated, **report.seconds}
    return report


class _Tally:
    """What the receipts say, added up batch by batch (receipts are not kept: a large
    demo would otherwise hold every one of them)."""

    def __init__(self) -> None:
        self.events = self.accepted = 0
        self.sales: Counter[str] = Counter()
        self.refunds: Counter[str] = Counter()
        self.rules: dict[str, list[Any]] = {}  # rule -> [events, net points, effect kind]
        self.rejections: Counter[str] = Counter()
        self.examples: dict[str, str] = {}
        self.active: dict[str, int] = {}  # member -> bit set of lines with credit
        self.monthly: dict[str, dict[str, list[Any]]] = {}  # month -> line -> [sales, CNY]
        # redeem events, points; cancellations, points back; holds at a till, points held,
        # captured, given back by the till (the rest lapsed)
        self.redemptions = [0] * 8

    def add(self, receipts: Iterable[Receipt], month: str) -> None:
        bits = {line: 1 << i for i, line in enumerate(LINES)}
        monthly = self.monthly.setdefault(month, {})
        for r in receipts:
            self.events += 1
            if not r.accepted:
                for v in r.violations:
                    self.rejections[v.invariant] += 1
                    self.examples.setdefault(v.invariant, f"{r.line}:{r.type} {r.event_id}: "
                                                          f"{v.message}")
                continue
            self.accepted += 1
            if r.amount is not None:
                (self.refunds if r.type in REFUND_TYPES else self.sales)[r.line] += r.amount
                if r.type not in REFUND_TYPES:
                    row = monthly.setdefault(r.line, [0, Decimal(0)])
                    row[0] += 1
                    row[1] += r.amount
            fired: set[str] = set()
            for e in r.effects:
                if isinstance(e, RedeemPoints):
                    self.redemptions[0] += 1
                    self.redemptions[1] += e.points
                elif isinstance(e, RestorePoints):
                    self.redemptions[2] += 1
                    self.redemptions[3] += e.points
                elif isinstance(e, ReservePoints):
                    self.redemptions[4] += 1
                    self.redemptions[5] += e.points
                elif isinstance(e, CaptureReservation):
                    self.redemptions[6] += e.points
                    self.redemptions[7] += e.released
                elif isinstance(e, ReleaseReservation):
                    self.redemptions[7] += e.points
                if e.rule is None or e.rule.startswith("tier:"):
                    continue  # core effects (redeem, use) and ladder moves are not rules
                stats = self.rules.setdefault(e.rule, [0, 0, e.kind])
                if e.rule not in fired:
                    fired.add(e.rule)
                    stats[0] += 1
                if isinstance(e, EarnPoints | HoldPoints):
                    stats[1] += e.points
                elif isinstance(e, ReversePoints):
                    stats[1] -= e.points
                elif isinstance(e, QualifyingCredit) and e.value > 0 and r.type not in \
                        REFUND_TYPES:
                    # The line counts as active the way the ladder's lines_active does.
                    self.active[r.member] = self.active.get(r.member, 0) | bits.get(r.line, 0)

    def fill(self, report: DemoReport, gb: Any) -> None:
        report.events = self.events
        report.accepted = self.accepted
        report.rejected = self.events - self.accepted
        report.rules = {rule: {"fired": n, "points": pts, "effect": kind}
                        for rule, (n, pts, kind) in
                        sorted(self.rules.items(), key=lambda kv: (-kv[1][0], kv[0]))}
        report.rejections = dict(sorted(self.rejections.items(), key=lambda kv: (-kv[1], kv[0])))
        report.rejection_examples = dict(sorted(self.examples.items()))
        report.redemptions = dict(zip(("events", "points", "cancelled", "points_back",
                                       "holds", "held_points", "captured_points",
                                       "released_points"), self.redemptions, strict=True))

        report.monthly = {month: {line: {"sales": n, "amount": str(amount)}
                                  for line, (n, amount) in sorted(lines.items())}
                          for month, lines in self.monthly.items()}
        for line in LINES:
            b = report.lines.setdefault(line, LineFigures(line))
            b.sales = Decimal(self.sales.get(line, 0))
            b.refunds = Decimal(self.refunds.get(line, 0))
            caps = gb.policy.lines.get(line)
            b.max_cost_ratio = caps.max_cost_ratio if caps else None
        masks = list(self.active.values())
        report.active_lines = Counter(bin(m).count("1") for m in masks)
        report.active_in = {line: sum(1 for m in masks if m & (1 << i))
                            for i, line in enumerate(LINES)}
        for i, x in enumerate(LINES):
            in_x = [m for m in masks if m & (1 << i)]
            if not in_x:
                continue
            report.conversion[x] = {
                y: (Decimal(sum(1 for m in in_x if m & (1 << j))) / len(in_x))
                .quantize(Decimal("0.0001")) for j, y in enumerate(LINES) if j != i}


def _from_ledger(engine: Engine, report: DemoReport, profiles: Sequence[Mapping[str, Any]],
                 gb: Any) -> None:
    check = engine.check_ledger()
    report.ledger_clean = check.clean
    report.ledger_problems = list(check.problems)
    for name, lb in check.lines.items():
        b = report.lines.setdefault(name, LineFigures(name))
        b.issued, b.available, b.pending = lb.issued, lb.available, lb.pending
        b.redeemed, b.redeemed_here = lb.redeemed_from, lb.redeemed_at
        b.expired, b.reversed = lb.expired, lb.reversed
    report.settlement = engine.settlement()
    store = engine.store
    assert store is not None
    lowest = gb.policy.tiers[0].id
    tier_now = {str(p["id"]): str(p.get("tier") or lowest) for p in profiles}
    moves: Counter[tuple[str, str, str]] = Counter()
    with store.reading() as conn:
        # Oldest first, so the last move of each member is their tier at the end.
        for member, from_tier, to_tier, reason in conn.execute(
                select(TIERS.c.member_id, TIERS.c.from_tier, TIERS.c.to_tier, TIERS.c.reason)
                .order_by(TIERS.c.at, TIERS.c.id)):
            tier_now[member] = to_tier
            if reason != "enrolment":  # a starting tier is where a member begins, not a move
                moves[(from_tier, to_tier, reason)] += 1
        report.rights_granted = {right: n for right, n in conn.execute(
            select(GRANTS.c.right, func.count()).group_by(GRANTS.c.right)
            .order_by(GRANTS.c.right))}
        report.rights_used = {right: {"uses": n, "quantity": int(q)} for right, n, q in
                              conn.execute(select(USES.c.right, func.count(),
                                                  func.sum(USES.c.quantity))
                                           .group_by(USES.c.right).order_by(USES.c.right))}
        holds = dict(conn.execute(select(RESERVATIONS.c.status, func.sum(RESERVATIONS.c.points))
                                  .group_by(RESERVATIONS.c.status)).all())
        # holds nobody settled: lapsed (the points came back), or still open at the end
        report.redemptions["lapsed_points"] = int(holds.get("expired") or 0)
        report.redemptions["open_points"] = int(holds.get("open") or 0)
    ranks = {t.id: i for i, t in enumerate(gb.policy.tiers)}
    counts = Counter(tier_now.values())
    report.tiers = {t.id: counts.get(t.id, 0) for t in gb.policy.tiers}
    report.tier_moves = [{"from": a, "to": b, "reason": why, "count": n}
                         for (a, b, why), n in sorted(moves.items(), key=lambda kv: (
                             kv[0][2], ranks.get(kv[0][0], 0), ranks.get(kv[0][1], 0)))]
