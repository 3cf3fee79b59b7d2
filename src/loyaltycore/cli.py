"""The ``loyalty`` command: a thin shell over the Python API.

Each command calls the API function of the same name (``dry-run`` -> ``dry_run``,
``validate`` -> ``check_rulesets``). Errors are converted to messages and exit codes in
exactly one place, :class:`_Group`:

    0  success (every event accepted; rulesets valid)
    1  some events rejected or unreadable; rulesets have errors (validate)
    2  unusable input: rules that do not load, a missing file, a refused expression
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import click
from rich.console import Console

from .context import json_value
from .engine import Engine, default_rulesets
from .errors import ExpressionError, LoyaltyError, RulesetError
from .functions import BUILTIN_FUNCTIONS
from .sandbox import Field, Namespace, evaluate_once

EXIT_REJECTED = 1
EXIT_UNUSABLE = 2


class _Group(click.Group):
    """Turns every LoyaltyError into a one-line message and exit code 2 (or 1)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RulesetError as exc:
            for d in exc.diagnostics:
                click.echo(str(d), err=True)
            click.echo(f"error: rulesets cannot be loaded ({len(exc.diagnostics)} problem(s))",
                       err=True)
            ctx.exit(EXIT_UNUSABLE)
        except ExpressionError as exc:
            click.echo(f"error: {exc.reason}: {exc}", err=True)
            ctx.exit(EXIT_UNUSABLE)
        except LoyaltyError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_UNUSABLE)


@click.group(cls=_Group)
@click.version_option(package_name="loyaltycore")
def cli() -> None:
    """loyaltycore: one group-wide loyalty program across business lines."""


def _rulesets_option(f):
    return click.option("--rulesets", "rulesets", multiple=True,
                        type=click.Path(path_type=Path),
                        help="Ruleset directory or file (repeatable; default: $LOYALTY_RULESETS "
                             "or ./rulesets).")(f)


def _open(rulesets: tuple[Path, ...]) -> Engine:
    return Engine.open(list(rulesets) or None)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def validate(paths: tuple[Path, ...], strict: bool, fmt: str) -> None:
    """Check every ruleset in PATHS (default ./rulesets) and print ALL problems."""
    from .plugins import PluginHost, make_plugin_manager
    from .rulebook import check_rulesets

    host = PluginHost(make_plugin_manager())
    targets = list(paths) or default_rulesets()
    book, diagnostics = check_rulesets(targets, event_types=host.event_types(),
                                       functions=host.functions,
                                       plugin_paths=[p for _, p in host.ruleset_paths])
    errors = [d for d in diagnostics if d.severity == "error"]
    warnings = [d for d in diagnostics if d.severity != "error"]
    if fmt == "json":
        click.echo(json.dumps({"ok": not errors and not (strict and warnings),
                               "diagnostics": [d.__dict__ for d in diagnostics]}, indent=2))
    else:
        for d in diagnostics:
            click.echo(str(d), err=d.severity == "error")
        if book is not None and strict and warnings:
            click.echo(f"{len(warnings)} warning(s), treated as errors (--strict)", err=True)
        elif book is not None:
            rules = sum(1 for _ in book.all_rules())
            lines = ", ".join(sorted(book.lines)) or "no lines"
            click.echo(f"ok: {len(book.groups)} group polic(ies), {rules} rules ({lines}); "
                       f"{len(warnings)} warning(s)")
        else:
            click.echo(f"{len(errors)} error(s), {len(warnings)} warning(s)", err=True)
    if errors or (strict and warnings):
        sys.exit(EXIT_REJECTED)


@cli.command(name="eval")
@click.argument("expression")
@click.option("--context", "context_file", type=click.Path(exists=True, path_type=Path),
              help="JSON object of sample values: {\"event\": {...}, \"member\": {...}, "
                   "\"qualification\": {...}, \"line\": {...}, \"group\": {...}}.")
@click.option("--timeout", default=0.5, show_default=True, help="Seconds before giving up.")
@click.option("--for", "for_type", metavar="LINE:TYPE",
              help="Check names against what a rule judging LINE:TYPE events may read (with "
                   "the installed plugins' payloads and functions and the rulesets' credits "
                   "and tiers), exactly as `validate` would.")
@_rulesets_option
def eval_(expression: str, context_file: Path | None, timeout: float, for_type: str | None,
          rulesets: tuple[Path, ...]) -> None:
    """Evaluate one rule EXPRESSION in the sandbox and print its value (as JSON)."""
    context: dict[str, Any] = {}
    if context_file is not None:
        try:
            context = json.loads(context_file.read_text(encoding="utf-8"),
                                 parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise click.ClickException(f"{context_file}:{exc.lineno}: not valid JSON: "
                                       f"{exc.msg}") from None
        if not isinstance(context, dict) or not all(isinstance(v, dict)
                                                    for v in context.values()):
            raise click.ClickException(f"{context_file}: must be an object of objects, e.g. "
                                       '{"event": {"amount": 120}}')
    if for_type:
        namespace, scope = rule_namespace(_open(rulesets), for_type, context)
    else:
        namespace, scope = eval_namespace(context)
    value = evaluate_once(expression, namespace, scope, seconds=timeout)
    click.echo(json.dumps(json_value(value)))


def eval_namespace(context: dict[str, dict[str, Any]]) -> tuple[Namespace, dict[str, Any]]:
    """A namespace and scope from sample values: every key of every object is a name."""
    sources = tuple(context)
    names = {f"{root}.{key}": Field(root, key) for root, values in context.items()
             for key in values}
    scope = {root: {k: _frozen(v) for k, v in values.items()} for root, values in context.items()}
    return Namespace(sources=sources, names=names, functions=dict(BUILTIN_FUNCTIONS)), scope


def rule_namespace(engine: Engine, for_type: str, context: dict[str, dict[str, Any]]
                   ) -> tuple[Namespace, dict[str, Any]]:
    """The namespace a rule for ``line:type`` compiles against, and a scope from samples.

    Sample values are placed where the engine would put them (``event.weekday`` in the
    calendar mapping, payload fields in the payload mapping ...); ISO strings given for
    date fields become dates.
    """
    from datetime import date, datetime

    from .context import build_namespace

    line, _, etype = for_type.partition(":")
    types = engine.rulebook.event_types.get(line)
    if types is None or etype not in types:
        known = ", ".join(f"{ln}:{t}" for ln, ts in sorted(engine.rulebook.event_types.items())
                          for t in sorted(ts))
        raise click.BadParameter(f"unknown LINE:TYPE {for_type!r} (known: {known})",
                                 param_hint="--for")
    policy = engine.rulebook.groups[-1].policy
    namespace = build_namespace(payload_fields=types[etype].model_fields,
                                credits=policy.qualification.credits,
                                tiers=[t.id for t in policy.tiers],
                                functions=engine.rulebook.functions, with_original=True)
    decimals = {"amount"} | {name for name, f in types[etype].model_fields.items()
                             if "Decimal" in str(f.annotation)}
    scope: dict[str, dict[str, Any]] = {src: {} for src in namespace.sources}
    scope["pol"].update(engine.rulebook.groups[-1].policy_scope.get(line, {}))
    for root, values in context.items():
        for key, value in values.items():
            target = namespace.names.get(f"{root}.{key}")
            if target is None:
                raise click.BadParameter(f"{root}.{key} is not a name rules for {for_type} "
                                         "can read", param_hint="--context")
            value = _frozen(value)
            if isinstance(value, str) and root == "event" and key in decimals:
                value = Decimal(value)  # money as JSON strings, the way events carry it
            elif isinstance(value, str) and (key.endswith(("_at", "_on", "_date"))):
                try:
                    value = (datetime if key.endswith("_at") else date).fromisoformat(value)
                except ValueError:
                    pass
            scope[target.source][target.key] = value
    return namespace, scope


def _frozen(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, float):
        return Decimal(str(value))
    return value


@cli.command(name="dry-run")
@click.argument("events", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_rulesets_option
@click.option("--members", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Member profiles (JSONL: id, birth_month, enrolled_on, tier).")
@click.option("--explain", is_flag=True, help="Print each effect's trace and why rules "
                                              "did not fire.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--summary-only", is_flag=True, help="Print only the summary.")
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write rejected and unreadable lines (default: "
                   "EVENTS.rejects.jsonl, only if there are any).")
@click.option("--db", help="Start from the members in this database (URL or SQLite file); "
                           "it is only read, never written.")
def dry_run(events: Path, rulesets: tuple[Path, ...], members: Path | None, explain: bool,
            fmt: str, summary_only: bool, rejects: Path | None, db: str | None) -> None:
    """Run EVENTS (JSONL) through the rules without committing anything.

    Exit 0 if every event is accepted, 1 if any is rejected or unreadable, 2 if the
    rules or the input cannot be used at all.
    """
    from . import dryrun, report
    from .schema import database_url

    if db is not None and members is not None:
        raise click.UsageError("--members and --db do not mix: with --db, member profiles "
                               "come from the database (enrol them there)")
    engine = _open(rulesets) if db is None else Engine.open(list(rulesets) or None,
                                                            db=database_url(db))
    if members is not None:
        for profile in dryrun.read_members(members):
            engine.enrol(profile)
    valid, problems = dryrun.read_events(events, engine)
    result = dryrun.dry_run(engine, valid, explain=explain, problems=problems)
    rejects_path = rejects or events.with_name(events.name + ".rejects.jsonl")
    written = report.write_rejects(result, events, rejects_path)
    if fmt == "json":
        click.echo(json.dumps(report.dry_run_json(result, explain=explain,
                                                  summary_only=summary_only), indent=1))
    else:
        console = Console(highlight=False, soft_wrap=True,
                          width=None if sys.stdout.isatty() else 160)
        err = Console(stderr=True, highlight=False, soft_wrap=True)
        report.print_problems(err, result.problems, str(events))
        if not summary_only:
            for o in result.outcomes:
                report.print_outcome(console, o, explain=explain)
        report.print_summary(console, result)
    if written:
        click.echo(f"{written} rejected or invalid line(s) written to {rejects_path}", err=True)
    sys.exit(result.exit_code)


@cli.command()
def schema() -> None:
    """Print the JSON Schema of ruleset files (for editor autocompletion)."""
    from .rulesets import json_schema_text

    click.echo(json_schema_text())


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def plugins(fmt: str) -> None:
    """List installed plugins, their lines and the hooks each implements."""
    from rich.table import Table

    from .plugins import PluginHost, make_plugin_manager

    host = PluginHost(make_plugin_manager())
    infos = host.info()
    if fmt == "json":
        click.echo(json.dumps([i.__dict__ for i in infos], indent=2))
        return
    table = Table(title="Installed plugins")
    for col in ("plugin", "version", "lines", "event types", "hooks"):
        table.add_column(col)
    for i in infos:
        types = ", ".join(f"{ln}:{t}" for ln in i.lines for t in host.lines[ln].event_types)
        table.add_row(i.name, i.version or "-", ", ".join(i.lines) or "-", types or "-",
                      ", ".join(i.hooks))
    Console().print(table)


from .cli_ledger import register  # noqa: E402 - the ledger commands join the same group

register(cli, _rulesets_option)
from .cli_plugin import register as register_plugin  # noqa: E402

register_plugin(cli, _rulesets_option)
from .cli_demo import register as register_demo  # noqa: E402, I001
register_demo(cli, _rulesets_option)
from .cli_members import register as register_members  # noqa: E402, I001
register_members(cli, _rulesets_option)
from .cli_points import register as register_points  # noqa: E402, I001
register_points(cli, _rulesets_option)


def main() -> None:  # pragma: no cover
    cli()
