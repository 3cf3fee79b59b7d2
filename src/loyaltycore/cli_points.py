"""The ``loyalty`` commands that spend and hold points at a line: each a thin wrapper over
the API call of the same name (``redeem`` -> ``Engine.redeem``, ``cancel-redemption``,
``reserve-points``, ``capture-reservation``, ``release-reservation``).

Each is one built-in event, processed like any other: idempotent on ``--event-id``, so a
command that timed out is simply run again with the same arguments (``--at`` included:
the same id with another payload is refused, not applied twice). Exit 0 if the event was
accepted, 1 if it was rejected (the reason is printed).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from .cli_ledger import db_option, format_option, open_engine, parse_when
from .dryrun import Outcome
from .engine import Engine
from .errors import ConfigurationError
from .receipts import Receipt
from .report import print_outcome, receipt_json

EXIT_REJECTED = 1


def _event_options(f: Callable) -> Callable:
    """What every built-in event needs: where, which event, when."""
    f = click.option("--at", "at", required=True,
                     help="When it happened, an ISO datetime with offset (a retry must "
                          "send the same time).")(f)
    f = click.option("--event-id", required=True,
                     help="The idempotency key: unique per event, reused only to retry.")(f)
    f = click.option("--line", required=True, help="The line where it happens.")(f)
    return f


def _when(at: str) -> datetime:
    when = parse_when(at)
    assert when is not None  # a required option
    return when


def _run(rulesets: tuple[Path, ...], db: str | None, fmt: str, explain: bool,
         call: Callable[[Engine], Receipt]) -> None:
    engine = open_engine(rulesets, db)
    try:
        receipt = call(engine)
        duplicate = receipt.event_id in engine.replayed
        balance = _balance_after(engine, receipt)
    finally:
        engine.close()
    if fmt == "json":
        out: dict[str, Any] = receipt_json(receipt, explain=explain)
        out["duplicate"] = duplicate
        out["balance"] = None if balance is None else {
            "at": balance[0].isoformat(), "available": balance[1].available,
            "pending": balance[1].pending, "reserved": balance[1].reserved}
        click.echo(json.dumps(out, indent=1))
    else:
        console = Console(highlight=False, soft_wrap=True)
        print_outcome(console, Outcome(1, receipt, duplicate=duplicate), explain=explain)
        if balance is not None:
            as_of, snap = balance
            console.print(f"{snap.id} at {as_of.isoformat(timespec='minutes')}: available "
                          f"{snap.available}, pending {snap.pending}, on hold {snap.reserved}")
    sys.exit(0 if receipt.accepted else EXIT_REJECTED)


def _balance_after(engine: Engine, receipt: Receipt) -> tuple[datetime, Any] | None:
    """The member right after the event, or now for a retry older than the member's latest
    activity; None if the member has activity dated after now as well (the event is
    committed either way: its receipt is what counts)."""
    for as_of in (receipt.occurred_at, datetime.now(UTC)):
        try:
            return as_of, engine.member(receipt.member, as_of)
        except ConfigurationError:
            continue
    return None


def _points(value: int | None) -> int | None:
    if value is not None and value <= 0:
        raise ConfigurationError(f"--points must be a positive number of points, not {value}")
    return value


def register(cli: click.Group, rulesets_option) -> None:
    def engine_and_output_options(f: Callable) -> Callable:
        f = click.option("--explain", is_flag=True, help="Print each effect's trace.")(f)
        return rulesets_option(db_option(format_option(f)))

    @cli.command()
    @click.argument("member_id")
    @click.argument("points", type=int)
    @_event_options
    @click.option("--reference", default="", help="The till's or order's reference.")
    @engine_and_output_options
    def redeem(member_id: str, points: int, line: str, event_id: str, at: str, reference: str,
               rulesets: tuple[Path, ...], db: str | None, fmt: str, explain: bool) -> None:
        """Spend POINTS of MEMBER_ID's at --line. Rejected, with the reason, if it would
        overdraw or breaks the group's redemption policy (minimum, step, blocked line)."""
        _run(rulesets, db, fmt, explain, lambda e: e.redeem(
            member_id, points, line=line, event_id=event_id, at=_when(at),
            reference=reference))

    @cli.command("cancel-redemption")
    @click.argument("member_id")
    @click.argument("redemption_id")
    @_event_options
    @click.option("--points", type=int, help="Give back only this many (default: all left).")
    @click.option("--reason", default="", help="Why, for the statement.")
    @engine_and_output_options
    def cancel_redemption(member_id: str, redemption_id: str, line: str, event_id: str,
                          at: str, points: int | None, reason: str,
                          rulesets: tuple[Path, ...], db: str | None, fmt: str,
                          explain: bool) -> None:
        """Give back the points of MEMBER_ID's redemption REDEMPTION_ID (or of a captured
        hold, by its capture's id), at the line where they were spent. They come back with
        their original expiry dates, and the settlement between lines is reversed."""
        _run(rulesets, db, fmt, explain, lambda e: e.cancel_redemption(
            member_id, redemption_id, line=line, event_id=event_id, at=_when(at),
            points=_points(points), reason=reason))

    @cli.command("reserve-points")
    @click.argument("member_id")
    @click.argument("points", type=int)
    @_event_options
    @click.option("--reference", default="", help="The till's or order's reference.")
    @click.option("--minutes", type=int,
                  help="How long the hold lasts (default: the group's reservation_minutes).")
    @engine_and_output_options
    def reserve_points(member_id: str, points: int, line: str, event_id: str, at: str,
                       reference: str, minutes: int | None, rulesets: tuple[Path, ...],
                       db: str | None, fmt: str, explain: bool) -> None:
        """Put POINTS of MEMBER_ID's on hold at a till: they leave the available balance at
        once, so no other checkout can spend them, until capture-reservation spends them,
        release-reservation gives them back, or the hold's time is up."""
        _run(rulesets, db, fmt, explain, lambda e: e.reserve_points(
            member_id, points, line=line, event_id=event_id, at=_when(at),
            reference=reference, minutes=minutes))

    @cli.command("capture-reservation")
    @click.argument("member_id")
    @click.argument("reservation_id")
    @_event_options
    @click.option("--points", type=int,
                  help="Spend only this many; the rest go back (default: all of the hold).")
    @click.option("--reference", default="", help="The till's or order's reference.")
    @engine_and_output_options
    def capture_reservation(member_id: str, reservation_id: str, line: str, event_id: str,
                            at: str, points: int | None, reference: str,
                            rulesets: tuple[Path, ...], db: str | None, fmt: str,
                            explain: bool) -> None:
        """Spend the open hold RESERVATION_ID (the id of the reserve-points event) of
        MEMBER_ID's at --line, all of it or --points of it."""
        _run(rulesets, db, fmt, explain, lambda e: e.capture_reservation(
            member_id, reservation_id, line=line, event_id=event_id, at=_when(at),
            points=_points(points), reference=reference))

    @cli.command("release-reservation")
    @click.argument("member_id")
    @click.argument("reservation_id")
    @_event_options
    @click.option("--reason", default="", help="Why, for the statement.")
    @engine_and_output_options
    def release_reservation(member_id: str, reservation_id: str, line: str, event_id: str,
                            at: str, reason: str, rulesets: tuple[Path, ...],
                            db: str | None, fmt: str, explain: bool) -> None:
        """End MEMBER_ID's open hold RESERVATION_ID unspent: its points go back with their
        expiry dates."""
        _run(rulesets, db, fmt, explain, lambda e: e.release_reservation(
            member_id, reservation_id, line=line, event_id=event_id, at=_when(at),
            reason=reason))
