"""The ``loyalty`` commands that look after members: each a thin wrapper over the API call
of the same name (``enrol`` -> ``Engine.enrol_many``, ``link-identity`` ->
``Engine.link_identity``, ``find-member`` -> ``Engine.find_member``, ``merge`` ->
``Engine.merge``, ``assign-tier`` -> ``Engine.assign_tier``).

Identity values (card and phone numbers, app ids) are personal data: they are read from
standard input when not given, so that they need not stand in a shell's history, and no
command ever prints one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from .cli_ledger import db_option, format_option, open_engine, parse_when
from .errors import ConfigurationError, EventInputError
from .members import MemberProfile

EXIT_REFUSED = 1


def read_profiles(path: Path) -> tuple[list[tuple[int, MemberProfile]],
                                       list[tuple[int, str, str]], str]:
    """Member profiles of a JSONL file (or a JSON list), each with its line number (its
    position in a list); the lines that are not profiles, as (line, text, reason); and
    what the numbers count, "line" or "item"."""
    text = path.read_text(encoding="utf-8")
    unit = "item" if text.lstrip().startswith("[") else "line"
    if unit == "item":
        try:
            rows = list(enumerate(json.loads(text), 1))
        except json.JSONDecodeError as exc:
            raise EventInputError(f"not a JSON list: {exc.msg}", source=str(path),
                                  line=exc.lineno) from None
    else:
        rows = [(i, line) for i, line in enumerate(text.splitlines(), 1)
                if line.strip() and not line.lstrip().startswith("#")]
    good: list[tuple[int, MemberProfile]] = []
    bad: list[tuple[int, str, str]] = []
    for line_no, row in rows:
        raw = row if isinstance(row, str) else json.dumps(row)
        try:
            data = json.loads(row) if isinstance(row, str) else row
            good.append((line_no, MemberProfile.model_validate(data)))
        except json.JSONDecodeError as exc:
            bad.append((line_no, raw, f"not JSON: {exc.msg}"))
        except ValueError as exc:  # pydantic's ValidationError: name the fields
            errors = getattr(exc, "errors", None)
            reason = "; ".join(f"field {'.'.join(str(p) for p in e['loc']) or '(row)'}: "
                               f"{e['msg']}" for e in errors()) if errors else str(exc)
            bad.append((line_no, raw, reason))
    return good, bad, unit


def _identity_value(value: str | None, kind: str) -> str:
    if value in (None, "-"):
        if sys.stdin.isatty():
            click.echo(f"{kind} value (not echoed to the screen): ", err=True, nl=False)
            value = click.prompt("", prompt_suffix="", hide_input=True, err=True)
        else:
            value = sys.stdin.readline()
    value = (value or "").strip()
    if not value:
        raise ConfigurationError(f"no {kind} value given (pass it on standard input)")
    return value


def register(cli: click.Group, rulesets_option) -> None:
    @cli.command()
    @click.argument("members", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @rulesets_option
    @db_option
    @click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
                  help="Where to write the profiles that were refused (default: "
                       "MEMBERS.rejects.jsonl, only if there are any).")
    @format_option
    def enrol(members: Path, rulesets: tuple[Path, ...], db: str | None,
              rejects: Path | None, fmt: str) -> None:
        """Enrol the member profiles of MEMBERS (JSONL, or a JSON list): id, birth_month,
        enrolled_on, and a starting tier.

        Enrolling the same profile again changes nothing, so a CRM export can be loaded
        twice. A profile that cannot be read, names a tier that is not on the ladder, or
        would change the tier of a member who has one is refused with its line and reason,
        written to the rejects file, and the others are enrolled. Exit 0 if every profile
        was enrolled, 1 if any was refused.
        """
        good, bad, unit = read_profiles(members)
        engine = open_engine(rulesets, db)
        refused: list[tuple[MemberProfile, str]] = []
        try:
            done = engine.enrol_many([p for _, p in good], refused=refused)
        finally:
            engine.close()
        line_of = {id(p): n for n, p in good}
        problems = sorted(bad + [(line_of[id(p)], p.model_dump_json(exclude_none=True), why)
                                 for p, why in refused])
        for line_no, _, reason in problems:
            where = f"{members}:{line_no}" if unit == "line" else f"{members}, item {line_no}"
            click.echo(f"{where}: {reason}", err=True)
        rejects_path = rejects or members.with_name(members.name + ".rejects.jsonl")
        if problems:
            with open(rejects_path, "w", encoding="utf-8") as out:
                for line_no, raw, reason in problems:
                    out.write(json.dumps({unit: line_no, "input": raw, "reason": reason},
                                         ensure_ascii=False) + "\n")
        summary = {"profiles": len(good) + len(bad), "enrolled": done,
                   "refused": len(problems),
                   "rejects_file": str(rejects_path) if problems else None}
        if fmt == "json":
            click.echo(json.dumps(summary, indent=1))
        else:
            click.echo(f"{done} member(s) enrolled, {len(problems)} refused"
                       + (f" (written to {rejects_path})" if problems else ""))
        sys.exit(EXIT_REFUSED if problems else 0)

    @cli.command("link-identity")
    @click.argument("member_id")
    @click.argument("kind")
    @click.argument("value", required=False)
    @rulesets_option
    @db_option
    def link_identity(member_id: str, kind: str, value: str | None,
                      rulesets: tuple[Path, ...], db: str | None) -> None:
        """Link an identity of KIND (card, phone, app...) to MEMBER_ID. Only a keyed hash of
        VALUE is stored; leave VALUE out (or give -) to read it from standard input, so it
        stays out of the shell's history. An identity linked to another member is an error:
        if they are one person, merge them."""
        secret = _identity_value(value, kind)
        engine = open_engine(rulesets, db)
        try:
            engine.link_identity(member_id, kind, secret)
        finally:
            engine.close()
        click.echo(f"{kind} identity linked to member {member_id}")

    @cli.command("find-member")
    @click.argument("kind")
    @click.argument("value", required=False)
    @rulesets_option
    @db_option
    def find_member(kind: str, value: str | None, rulesets: tuple[Path, ...],
                    db: str | None) -> None:
        """Print the member id an identity of KIND belongs to (its survivor, if merged).
        VALUE is read from standard input when left out. Exit 1 if no member has it."""
        secret = _identity_value(value, kind)
        engine = open_engine(rulesets, db, reading=True)
        try:
            found = engine.find_member(kind, secret)
        finally:
            engine.close()
        if found is None:
            click.echo(f"no member is linked to this {kind} identity", err=True)
            sys.exit(EXIT_REFUSED)
        click.echo(found)

    @cli.command()
    @click.argument("survivor")
    @click.argument("absorbed")
    @click.option("--reason", required=True, help="Why they are one person (audited).")
    @click.option("--at", "at", help="When the merge takes effect (default: now).")
    @rulesets_option
    @db_option
    def merge(survivor: str, absorbed: str, reason: str, at: str | None,
              rulesets: tuple[Path, ...], db: str | None) -> None:
        """Merge member ABSORBED into SURVIVOR: balances, lots, qualification, vouchers,
        history and identities move over (the higher tier stays), with an audit entry;
        events sent later under either id land on SURVIVOR."""
        engine = open_engine(rulesets, db)
        try:
            engine.merge(survivor, absorbed, reason=reason, at=parse_when(at))
            try:
                snap = engine.member(survivor)
            except ConfigurationError:  # activity dated after now: no view of "now"
                snap = None
        finally:
            engine.close()
        click.echo(f"{absorbed} merged into {survivor}" if snap is None else
                   f"{absorbed} merged into {snap.id}: tier {snap.tier}, available "
                   f"{snap.available}, pending {snap.pending}")

    @cli.command("assign-tier")
    @click.argument("member_id")
    @click.argument("tier")
    @click.option("--reason", required=True, help="Why (kept in the tier history).")
    @click.option("--until", "until", required=True,
                  help="When the manual tier ends (a date, or an ISO datetime with offset); "
                       "reviews judge the member again from then.")
    @click.option("--at", "at", help="When it starts (default: now).")
    @rulesets_option
    @db_option
    @format_option
    def assign_tier(member_id: str, tier: str, reason: str, until: str, at: str | None,
                    rulesets: tuple[Path, ...], db: str | None, fmt: str) -> None:
        """Put MEMBER_ID on TIER by hand until --until, with a reason that the tier history
        keeps. It is never a permanent floor: when it ends, reviews (soft landing included)
        judge the member as everyone else."""
        end = parse_when(until, end_of_day=True)
        assert end is not None  # required option
        engine = open_engine(rulesets, db)
        try:
            engine.assign_tier(member_id, tier, reason=reason, until=end, at=parse_when(at))
            history = engine.tier_history(member_id)
        finally:
            engine.close()
        # the line just written: the latest manual one (for a merged-away id, on the
        # survivor, whose id the line carries)
        last: dict[str, Any] = next((h for h in reversed(history) if h["reason"] == "manual"),
                                    {})
        if fmt == "json":
            click.echo(json.dumps(last, indent=1))
            return
        click.echo(f"{last.get('member', member_id)}: {last.get('from_tier')} -> "
                   f"{last.get('to_tier')} (manual, until {end.isoformat()}): {reason}")
