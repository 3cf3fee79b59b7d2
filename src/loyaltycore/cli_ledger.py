"""The ``loyalty`` commands over the durable ledger: each a thin wrapper over the API call
of the same name (``process`` -> ``Engine.process_many``, ``member`` -> ``Engine.member``,
``statement``, ``jobs run`` -> ``Engine.run_jobs``, ``ledger check`` ->
``Engine.check_ledger``, ``settlement``, ``db upgrade``)."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .context import json_value
from .engine import Engine
from .errors import ConfigurationError
from .schema import database_url


def db_option(f):
    return click.option("--db", help="Database URL or SQLite file (default: $LOYALTY_DB or "
                                     "./loyalty.db).")(f)


def format_option(f):
    return click.option("--format", "fmt", type=click.Choice(["table", "json"]),
                        default="table")(f)


def open_engine(rulesets: tuple[Path, ...], db: str | None, *, reading: bool = False
                ) -> Engine:
    """``reading``: the command only reads, so a SQLite file that is not there is an error
    rather than a new, empty database."""
    from .store import Store

    store = Store.open(database_url(db), must_exist=reading)
    try:
        return Engine.open(list(rulesets) or None, db=store)
    except BaseException:  # rules that do not load: no connection or thread left behind
        store.close()
        raise


def parse_when(value: str | None, *, end_of_day: bool = False) -> datetime | None:
    """A date or an ISO datetime; a bare date is midnight UTC (23:59:59 UTC that day with
    ``end_of_day``); a datetime without offset is refused (be explicit about time zones)."""
    if value is None:
        return None
    try:
        if "T" not in value and len(value) == 10:
            day = datetime.fromisoformat(value).replace(tzinfo=UTC)
            return day.replace(hour=23, minute=59, second=59) if end_of_day else day
        at = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigurationError(f"{value!r} is not a date (YYYY-MM-DD) or an ISO datetime") \
            from None
    if at.tzinfo is None:
        raise ConfigurationError(f"{value!r} has no UTC offset; add one, e.g. +08:00")
    return at


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)


def register(cli: click.Group, rulesets_option) -> None:
    @cli.command()
    @click.argument("events", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @rulesets_option
    @db_option
    @click.option("--batch-size", default=500, show_default=True,
                  help="Events per database transaction.")
    @click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
                  help="Where to write rejected and unreadable lines (default: "
                       "EVENTS.rejects.jsonl, only if there are any).")
    @format_option
    def process(events: Path, rulesets: tuple[Path, ...], db: str | None, batch_size: int,
                rejects: Path | None, fmt: str) -> None:
        """Apply EVENTS (JSONL) to the ledger, in time order, idempotently.

        Running the same file again changes nothing (each event id is claimed once), so a
        run that was interrupted is finished by running it again. Exit 0 if every event
        was accepted, 1 if any was rejected or unreadable.
        """
        from . import dryrun, report

        engine = open_engine(rulesets, db)
        valid, problems = dryrun.read_events(events, engine)
        ordered = sorted(valid, key=lambda pair: pair[1].occurred_at)
        engine.record_input_problems(str(events), problems)
        result = dryrun.DryRun(problems=list(problems))
        started = time.perf_counter()
        show = sys.stderr.isatty() and len(ordered) > batch_size
        with Progress(TextColumn("processing"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), disable=not show, console=Console(stderr=True)) \
                as bar:
            task = bar.add_task("events", total=len(ordered))
            for i in range(0, len(ordered), batch_size):
                chunk = ordered[i:i + batch_size]
                engine.replayed.clear()
                receipts = engine.process_many([ev for _, ev in chunk], batch_size=batch_size)
                replayed = set(engine.replayed)
                for (line_no, ev), receipt in zip(chunk, receipts, strict=True):
                    result.outcomes.append(dryrun.Outcome(line_no, receipt,
                                                          duplicate=ev.id in replayed))
                bar.advance(task, len(chunk))
        elapsed = time.perf_counter() - started
        result.summary = dryrun.summarize(result, engine)
        rejects_path = rejects or events.with_name(events.name + ".rejects.jsonl")
        written = report.write_rejects(result, events, rejects_path)
        summary = {"events": len(ordered) + len(problems), "accepted": sum(
            1 for o in result.outcomes if o.receipt.accepted),
            "rejected": sum(1 for o in result.outcomes if not o.receipt.accepted),
            "invalid": len(problems), "seconds": round(elapsed, 3),
            "events_per_s": round(len(ordered) / elapsed) if elapsed > 0 else None,
            "database": _safe_url(engine), "summary": result.summary}
        if fmt == "json":
            click.echo(json.dumps(summary, indent=1, default=json_value))
        else:
            console = _console()
            report.print_problems(Console(stderr=True), result.problems, str(events))
            report.print_summary(console, result)
            console.print(f"{summary['accepted']} accepted, {summary['rejected']} rejected, "
                          f"{summary['invalid']} unreadable in {elapsed:.2f} s "
                          f"({summary['events_per_s']} events/s) into {summary['database']}")
        if written:
            click.echo(f"{written} rejected or invalid line(s) written to {rejects_path}",
                       err=True)
        engine.close()
        sys.exit(result.exit_code)

    @cli.command()
    @click.argument("member_id")
    @rulesets_option
    @db_option
    @click.option("--at", "at", help="As of this date or datetime (default: now).")
    @format_option
    def member(member_id: str, rulesets: tuple[Path, ...], db: str | None, at: str | None,
               fmt: str) -> None:
        """Show a member: tier, balances, qualification, vouchers, counters."""
        engine = open_engine(rulesets, db, reading=True)
        snap = engine.member(member_id, parse_when(at))
        history = engine.tier_history(snap.id)
        engine.close()
        data = snap.model_dump(mode="json")
        data["tier_history"] = history
        if fmt == "json":
            click.echo(json.dumps(data, indent=1))
            return
        console = _console()
        console.print(f"[bold]{snap.id}[/]  tier {snap.tier}  available {snap.available}  "
                      f"pending {snap.pending}"
                      + (f"  on hold {snap.reserved}" if snap.reserved else ""))
        if snap.tier_valid_until:
            console.print(f"tier held until at least {snap.tier_valid_until.isoformat()} "
                          "(its next review)")
        q = snap.qualification
        console.print("qualification: " + (", ".join(f"{k} {v}" for k, v in
                                                     sorted(q.credits.items())) or "none")
                      + f"; lines active: {', '.join(sorted(q.lines_active)) or 'none'}")
        for h in snap.holds:
            console.print(f"on hold: {h.points} points at {h.line} by {h.id}"
                          + (f" ({h.reference})" if h.reference else "")
                          + f", until {h.expires_at.isoformat(timespec='minutes')}")
        if snap.vouchers:
            console.print("vouchers: " + ", ".join(f"{k} x{v}" for k, v in
                                                   sorted(snap.vouchers.items())))
        for move in history:
            console.print(f"  {move['at']}  {move['from_tier']} -> {move['to_tier']}  "
                          f"({move['reason']}) {move['detail']}")

    @cli.command()
    @click.argument("member_id")
    @rulesets_option
    @db_option
    @click.option("--since", help="Only entries from this date or datetime on.")
    @format_option
    def statement(member_id: str, rulesets: tuple[Path, ...], db: str | None,
                  since: str | None, fmt: str) -> None:
        """A member's ledger entries with the running balance."""
        engine = open_engine(rulesets, db, reading=True)
        st = engine.statement(member_id, parse_when(since))
        engine.close()
        if fmt == "json":
            click.echo(st.model_dump_json(indent=1))
            return
        table = Table(title=f"Statement of {st.member}"
                      + (f" since {st.since.isoformat()}" if st.since else ""))
        holds = st.opening_reserved or any(ln.reserved for ln in st.lines)
        cols = ["at", "entry", "event", "available", "pending"] + (["on hold"] if holds else [])
        for col in (*cols, "balance", "memo"):
            table.add_column(col)

        def signed(n: int) -> str:
            return f"{n:+d}" if n else ""

        def row(*cells: str, reserved: str) -> None:
            table.add_row(*cells[:5], *([reserved] if holds else []), *cells[5:])

        row("", "opening", "", "", str(st.opening_pending), str(st.opening_available), "",
            reserved=str(st.opening_reserved))
        for ln in st.lines:
            row(ln.at.isoformat(timespec="seconds"), ln.kind, ln.event_id or "",
                signed(ln.available), signed(ln.pending), str(ln.balance), ln.memo,
                reserved=signed(ln.reserved))
        row("", "closing", "", "", str(st.closing_pending), str(st.closing_available), "",
            reserved=str(st.closing_reserved))
        _console().print(table)

    @cli.group()
    def jobs() -> None:
        """Time-driven jobs: vesting, expiry, voucher lapses, tier reviews."""

    @jobs.command(name="run")
    @rulesets_option
    @db_option
    @click.option("--as-of", "as_of", required=True,
                  help="Run everything due up to this date (end of that day, UTC) or "
                       "datetime.")
    @format_option
    def jobs_run(rulesets: tuple[Path, ...], db: str | None, as_of: str, fmt: str) -> None:
        """Run the jobs due up to --as-of; running it again for the same time does nothing."""
        engine = open_engine(rulesets, db)
        result = engine.run_jobs(parse_when(as_of, end_of_day=True))
        engine.close()
        data = result.as_dict()
        if fmt == "json":
            click.echo(json.dumps(data, indent=1))
            return
        console = _console()
        console.print(f"as of {data['as_of']}: {data['members']} member(s) with something "
                      f"due; {data['vested_points']} points vested, {data['expired_points']} "
                      f"expired, {data['vouchers_lapsed']} voucher(s) lapsed, "
                      f"{data['hold_points_released']} points back from lapsed holds, "
                      f"{len(data['tier_moves'])} tier move(s)")
        for move in data["tier_moves"]:
            console.print(f"  {move['member']}: {move['from']} -> {move['to']} on {move['on']}")

    @cli.group()
    def ledger() -> None:
        """Inspect the points ledger."""

    @ledger.command(name="check")
    @rulesets_option
    @db_option
    @format_option
    def ledger_check(rulesets: tuple[Path, ...], db: str | None, fmt: str) -> None:
        """Re-derive every balance from entries and lots; exit 1 on any difference."""
        engine = open_engine(rulesets, db, reading=True)
        result = engine.check_ledger()
        engine.close()
        if fmt == "json":
            click.echo(json.dumps(result.as_dict(), indent=1))
        else:
            console = _console()
            table = Table(title="Trial balance per line (points)")
            for col in ("line", "issued", "available", "pending", "on hold", "redeemed",
                        "expired", "reversed", "spent here"):
                table.add_column(col, justify="right")
            for b in sorted(result.lines.values(), key=lambda b: b.line):
                table.add_row(b.line, str(b.issued), str(b.available), str(b.pending),
                              str(b.reserved), str(b.redeemed_from), str(b.expired),
                              str(b.reversed), str(b.redeemed_at))
            console.print(table)
            console.print(f"{result.entries} entries, {result.lots} lots, {result.members} "
                          f"members, {result.debt} points of refund debt")
            for p in result.problems:
                console.print(f"[red]{p}[/]")
            more = sum(result.counts.values()) - len(result.problems)
            if more > 0:
                console.print(f"... and {more} more")
            console.print("ledger is clean" if result.clean else
                          f"[red]{sum(result.counts.values())} difference(s)[/]")
        sys.exit(0 if result.clean else 1)

    @cli.command()
    @rulesets_option
    @db_option
    @click.option("--since", help="Period start (date or datetime, inclusive).")
    @click.option("--until", help="Period end (date or datetime, exclusive).")
    @format_option
    def settlement(rulesets: tuple[Path, ...], db: str | None, since: str | None,
                   until: str | None, fmt: str) -> None:
        """What each line owes each other line for points spent in the period."""
        engine = open_engine(rulesets, db, reading=True)
        rows = engine.settlement(parse_when(since), parse_when(until))
        engine.close()
        if fmt == "json":
            click.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=1))
            return
        table = Table(title="Settlement: issuing line owes redeeming line")
        for col in ("issuer", "redeemer", "points", "amount"):
            table.add_column(col)
        for r in rows:
            table.add_row(r.issuer, r.redeemer, str(r.points), f"{r.amount} {r.currency}")
        _console().print(table)

    @cli.group()
    def db() -> None:
        """The database schema."""

    @db.command(name="upgrade")
    @click.option("--db", "url", help="Database URL or SQLite file.")
    def db_upgrade(url: str | None) -> None:
        """Migrate the database to the latest schema (alembic)."""
        from .schema import connect, current_revision, head_revision, upgrade

        engine = connect(database_url(url))
        before = current_revision(engine)
        upgrade(engine)
        click.echo(f"schema {before or 'empty'} -> {head_revision()}")
        engine.dispose()


def _safe_url(engine: Engine) -> str:
    """The database URL without its password (it is printed)."""
    from sqlalchemy.engine import make_url

    if engine.store is None:
        return "memory"
    return make_url(engine.store.url).render_as_string(hide_password=True)


__all__: list[Any] = ["register"]
