"""``loyalty demo``: generate a synthetic group, run it through the durable ledger month by
month (a month of events in memory at a time), and print the program's figures
(:mod:`loyaltycore.demo`)."""

from __future__ import annotations

import json
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from .demo import LINES, DemoReport, SyntheticGroup, run_synthetic, write_jsonl
from .engine import Engine
from .errors import ConfigurationError
from .schema import database_url
from .store import KEEP_MEMBERS

# About 20 s of one idle core of the development machine (~31,600 events at ~2,000
# events/s into SQLite); shares and ratios hardly move with size, only the time does.
DEFAULT_MEMBERS = 1000
DEFAULT_DB = "demo.db"
DEFAULT_EVENTS = "demo-events.jsonl"


def members_path(events_out: Path) -> Path:
    """Where the member profiles go, next to the events (``--members`` of a dry-run)."""
    name = events_out.name
    if name.endswith("-events.jsonl"):
        return events_out.with_name(name[:-len("-events.jsonl")] + "-members.jsonl")
    return events_out.with_name(events_out.stem + ".members.jsonl")


def fresh_database(db: str) -> str:
    """The database URL, emptied: a SQLite file is deleted (with its WAL files) so that the
    same seed always gives the same ledger; any other database must already be empty.

    Only a file that is empty or holds nothing but demo events is deleted: a mistyped
    ``--db loyalty.db`` must not cost anyone their ledger."""
    url = database_url(db)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ConfigurationError("the demo needs a SQLite file or a database URL, not an "
                                     "in-memory database (the ledger commands read it after)")
        path = Path(parsed.database)
        if path.exists() and path.stat().st_size and not _holds_only_demo_events(path):
            raise ConfigurationError(f"{path} is not a demo database (it holds events the "
                                     "demo did not make, or is not a ledger); the demo "
                                     "deletes its --db, so give it another file")
        for extra in ("", "-wal", "-shm", "-journal"):
            path.with_name(path.name + extra).unlink(missing_ok=True)
    return url


def _holds_only_demo_events(path: Path) -> bool:
    import sqlite3

    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            # Demo event ids are <member>-<letter><number> and ref-<contract id>.
            (foreign,) = conn.execute(
                "SELECT count(*) FROM events WHERE event_id NOT GLOB 'M[0-9]*-[A-Z][0-9]*' "
                "AND event_id NOT GLOB 'ref-M[0-9]*-C[0-9]*'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return foreign == 0


def register(cli: click.Group, rulesets_option) -> None:
    @cli.command()
    @click.option("--members", default=DEFAULT_MEMBERS, show_default=True,
                  type=click.IntRange(1, 10_000_000), help="Members in the synthetic group.")
    @click.option("--months", default=12, show_default=True, type=click.IntRange(1, 120),
                  help="Calendar months to simulate, from January 2026.")
    @click.option("--seed", default=7, show_default=True, type=int,
                  help="Random seed: the same seed gives the same events and figures.")
    @click.option("--db", default=DEFAULT_DB, show_default=True,
                  help="SQLite file, DELETED and recreated at the start so the demo is "
                       "reproducible (refused if it holds other events than a demo's); or "
                       "a database URL, which must be empty. $LOYALTY_DB is never used.")
    @click.option("--events-out", default=DEFAULT_EVENTS, show_default=True,
                  type=click.Path(dir_okay=False, path_type=Path),
                  help="Where to write the generated events (JSONL; the member profiles go "
                       "next to it as *-members.jsonl), for `loyalty dry-run` later. It is "
                       "written a month at a time; until then the months wait in a hidden "
                       ".synthetic-* directory beside it, removed at the end.")
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
    @rulesets_option
    def demo(members: int, months: int, seed: int, db: str, events_out: Path, fmt: str,
             rulesets: tuple[Path, ...]) -> None:
        """Simulate a group of members across the four lines and report on the program.

        Generates shoppers, business travellers, families and home buyers with seasonal
        spending, refunds, redemptions at other lines and uses of rights; enrols them,
        processes every month's events into the ledger at --db and runs the jobs at each
        month's end; then prints cost per line, liability, settlement between lines, tiers,
        cross-line activity, rights, top rules, rejections and the ledger check. Exit 0 if
        the ledger check is clean, 1 if not.

        A SQLite --db is deleted and recreated first, so the same seed always gives the same
        ledger and figures.
        """
        err = Console(stderr=True, highlight=False, soft_wrap=True)
        started = time.perf_counter()
        url = fresh_database(db)
        # The demo is the only writer and meets every member every month, in time order:
        # a kept set smaller than the group would never hold the member the next event
        # needs, so it keeps them all (10 to 17 KB each; see docs/operations.md).
        engine = Engine.open(list(rulesets) or None, db=url,
                             keep_members=max(KEEP_MEMBERS, members))
        try:
            _must_have_lines(engine)
            _must_be_empty(engine, url)
            group = SyntheticGroup(members, months, seed, workdir=events_out.parent)
            profiles_out = members_path(events_out)
            write_jsonl(group.profiles, profiles_out)
            show = err.is_terminal  # on stderr, so --format json stays clean on stdout
            with group, Progress(TextColumn("{task.description:<16}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                                 disable=not show) as bar:
                task = bar.add_task("generating", total=members)
                names = {"generate": "generating", "enrol": "enrolling"}

                def progress(stage: str, done: int, total: int | None) -> None:
                    bar.update(task, description=names.get(stage, stage), completed=done,
                               total=total)

                report = run_synthetic(engine, group, events_out, progress=progress)
        finally:
            engine.close()
        wall = time.perf_counter() - started
        data = report.as_dict()
        data["run"].update(seed=seed, wall_seconds=round(wall, 3),
                           files={"db": _safe(url), "events": str(events_out),
                                  "members": str(profiles_out)})
        if fmt == "json":
            click.echo(json.dumps(data, indent=1))
        else:
            _print(Console(highlight=False, soft_wrap=True,
                           width=None if sys.stdout.isatty() else 160), report, data)
        sys.exit(0 if report.ledger_clean else 1)


def _must_have_lines(engine: Engine) -> None:
    missing = sorted(set(LINES) - set(engine.plugins.event_types()))
    if missing:
        raise ConfigurationError(
            f"the demo runs all four lines; no plugin provides {', '.join(missing)} (install "
            "them, and leave LOYALTY_PLUGINS unset or name them all)")


def _must_be_empty(engine: Engine, url: str) -> None:
    from .store import EVENTS

    assert engine.store is not None
    with engine.store.reading() as conn:
        if conn.execute(select(func.count()).select_from(EVENTS)).scalar_one():
            raise ConfigurationError(f"{_safe(url)} already holds events; the demo needs an "
                                     "empty database (a SQLite file is recreated for it)")


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _pct(value: Decimal | str | None) -> str:
    return "-" if value is None else f"{Decimal(value) * 100:.1f}%"


def _print(console: Console, report: DemoReport, data: dict[str, Any]) -> None:
    run = data["run"]
    pv, cur = report.point_value, report.currency
    console.print(f"[bold]loyalty demo[/]: {report.members} members, {report.months} months "
                  f"from {report.start:%Y-%m}, seed {run['seed']}; {report.events} events "
                  f"({report.accepted} accepted, {report.rejected} rejected) in "
                  f"{run['wall_seconds']:.1f} s, {report.events_per_s} events/s processing")
    console.print(f"database {run['files']['db']} (recreated for this run); events in "
                  f"{run['files']['events']}, members in {run['files']['members']} "
                  f"(try: loyalty dry-run {run['files']['events']} --members "
                  f"{run['files']['members']} --summary-only)")

    table = Table(title=f"Points by line (1 point = {pv} {cur})",
                  caption="cost = (issued - reversed) x point value; cost ratio = cost / "
                          "revenue net of refunds; cap = the group's max_cost_ratio")
    for col in ("line", "issued", "redeemed", "spent here", "expired", "reversed",
                "outstanding", "of which pending", f"revenue {cur}", f"cost {cur}",
                "cost ratio", "cap"):
        table.add_column(col, justify="left" if col == "line" else "right")
    for name, b in sorted(report.lines.items()):
        table.add_row(name, f"{b.issued:,}", f"{b.redeemed:,}", f"{b.redeemed_here:,}",
                      f"{b.expired:,}", f"{b.reversed:,}", f"{b.outstanding:,}",
                      f"{b.pending:,}", f"{b.revenue:,.2f}", f"{b.cost(pv):,.2f}",
                      _pct(b.cost_ratio(pv)), _pct(b.max_cost_ratio))
    console.print(table)
    pending = sum(b.pending for b in report.lines.values())
    console.print(f"Outstanding liability: {report.liability_points:,} points "
                  f"({pending:,} of them pending) = [bold]{report.liability:,.2f} {cur}[/]")

    lines = sorted(report.lines)
    table = Table(title="Sales by month (events; seasonality)")
    table.add_column("month")
    for name in lines:
        table.add_column(name, justify="right")
    table.add_column(f"revenue {cur}", justify="right")
    for month, row in report.monthly.items():
        amount = sum((Decimal(c["amount"]) for c in row.values()), Decimal(0))
        table.add_row(month, *(f"{row[n]['sales']:,}" if n in row else "0" for n in lines),
                      f"{amount:,.2f}")
    console.print(table)

    matrix = report.settlement_matrix()
    table = Table(title="Settlement: the issuing line (row) owes the redeeming line (column), "
                        "points")
    table.add_column("issuer \\ redeemer")
    for name in lines:
        table.add_column(name, justify="right")
    table.add_column(f"owed to others {cur}", justify="right")
    for issuer in lines:
        row = matrix.get(issuer, {})
        owed = sum((s.amount for s in report.settlement
                    if s.issuer == issuer and s.redeemer != issuer), Decimal("0.00"))
        table.add_row(issuer, *(f"{row.get(r, 0):,}" for r in lines), f"{owed:,.2f}")
    console.print(table)
    inter = data["settlement"]
    console.print(f"{inter['points']:,} points redeemed, {inter['inter_line_points']:,} of them "
                  f"at another line than the one that issued them "
                  f"({Decimal(inter['inter_line_amount']):,.2f} {cur} to settle)")
    red = report.redemptions
    if red:
        console.print(f"{red['events']:,} redemptions of {red['points']:,} points; "
                      f"{red['cancelled']:,} cancellations (voided sales, cancelled "
                      f"bookings) gave {red['points_back']:,} points back")
        if red.get("holds"):
            console.print(f"{red['holds']:,} holds at a till of {red['held_points']:,} "
                          f"points: {red['captured_points']:,} captured, "
                          f"{red['released_points']:,} released by the till, "
                          f"{red['lapsed_points']:,} lapsed and came back by themselves"
                          + (f", {red['open_points']:,} still on hold" if red["open_points"]
                             else ""))

    table = Table(title="Tiers at the end")
    table.add_column("tier")
    table.add_column("members", justify="right")
    table.add_column("share", justify="right")
    for tier, n in report.tiers.items():
        table.add_row(tier, f"{n:,}", _pct(Decimal(n) / report.members if report.members
                                          else None))
    moves = Table(title="Tier moves")
    for col in ("from", "to", "why", "count"):
        moves.add_column(col, justify="right" if col == "count" else "left")
    for m in report.tier_moves:
        moves.add_row(m["from"], m["to"], m["reason"], f"{m['count']:,}")
    console.print(table)
    console.print(moves)

    cross = data["cross_line"]
    console.print(f"Cross-line: {cross['members_active']:,} members earned qualifying credit; "
                  f"[bold]{_pct(cross['multi_line_share'])}[/] of them in 2 lines or more "
                  f"(by number of lines: {cross['by_lines_active']})")
    table = Table(title="Of the members active in a line (row), the share also active in "
                        "another (column)")
    table.add_column("active in")
    table.add_column("members", justify="right")
    for name in lines:
        table.add_column(name, justify="right")
    for x in lines:
        row = report.conversion.get(x, {})
        table.add_row(x, f"{report.active_in.get(x, 0):,}",
                      *("" if y == x else _pct(row.get(y)) for y in lines))
    console.print(table)

    table = Table(title="Rights")
    for col in ("right", "granted", "uses", "quantity used"):
        table.add_column(col, justify="left" if col == "right" else "right")
    for right in sorted(set(report.rights_granted) | set(report.rights_used)):
        used = report.rights_used.get(right, {})
        granted = report.rights_granted.get(right)
        table.add_row(right, "-" if granted is None else f"{granted:,}",
                      f"{used.get('uses', 0):,}", f"{used.get('quantity', 0):,}")
    console.print(table)

    table = Table(title="Top rules fired")
    for col in ("rule", "effect", "events", "net points"):
        table.add_column(col, justify="right" if col in ("events", "net points") else "left")
    for rule, stats in list(report.rules.items())[:12]:
        moves_points = stats["effect"] in ("earn", "hold", "reverse")
        table.add_row(rule, stats["effect"], f"{stats['fired']:,}",
                      f"{stats['points']:,}" if moves_points else "")
    console.print(table)

    if report.rejections:
        table = Table(title="Rejections by reason")
        for col in ("invariant", "events", "for example"):
            table.add_column(col, justify="right" if col == "events" else "left")
        for reason, n in report.rejections.items():
            table.add_row(reason, f"{n:,}", report.rejection_examples.get(reason, ""))
        console.print(table)

    jobs, seconds = report.jobs, report.seconds
    console.print(f"Jobs at each month's end: {jobs['vested']:,} points vested, "
                  f"{jobs['expired']:,} expired, {jobs['lapsed']:,} vouchers lapsed, "
                  f"{jobs['reviews']:,} tier move(s) at reviews")
    console.print("Seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
    if report.ledger_clean:
        console.print("[green]ledger check: clean[/] (every balance re-derived from entries "
                      "and lots; per line issued = outstanding + redeemed + expired + reversed)")
    else:
        console.print(f"[red]ledger check: {len(report.ledger_problems)} difference(s)[/]")
        for p in report.ledger_problems:
            console.print(f"[red]  {p}[/]")
