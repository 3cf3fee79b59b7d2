"""Rendering results for people (rich text) and for programs (stable JSON).

The JSON shapes here are a published contract (docs/json-output.md): fields are only
ever added, never renamed or removed, within a format version.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .context import json_value
from .dryrun import FORMAT, DryRun, Outcome
from .effects import (
    CaptureReservation,
    EarnPoints,
    GrantRight,
    HoldPoints,
    QualifyingCredit,
    RedeemPoints,
    ReleaseReservation,
    ReservePoints,
    RestorePoints,
    ReversePoints,
    TierChange,
    UseRight,
)
from .errors import Diagnostic
from .receipts import Receipt


def effect_json(effect: Any, *, explain: bool) -> dict[str, Any]:
    data = effect.model_dump(mode="json", exclude={"trace"})
    if explain and effect.trace is not None:
        t = effect.trace
        data["trace"] = {"rule": t.rule, "version": t.version, "file": t.file,
                         "detail": t.detail,
                         "values": {k: json_value(v) for k, v in t.values.items()}}
    return data


def receipt_json(receipt: Receipt, *, explain: bool = False) -> dict[str, Any]:
    out = {
        "event_id": receipt.event_id, "member": receipt.member, "line": receipt.line,
        "type": receipt.type, "occurred_at": receipt.occurred_at.isoformat(),
        "status": receipt.status, "points": receipt.points,
        "pending_points": receipt.pending_points,
        "tier_before": receipt.tier_before, "tier_after": receipt.tier_after,
        "ruleset_versions": receipt.ruleset_versions,
        "effects": [effect_json(e, explain=explain) for e in receipt.effects],
        "violations": [{"invariant": v.invariant, "rule": v.rule, "message": v.message,
                        "numbers": json_value_deep(v.numbers)} for v in receipt.violations],
    }
    if explain:
        out["not_fired"] = [{"rule": m.rule, "version": m.version, "reason": m.reason,
                             "values": {k: json_value(v) for k, v in m.values.items()}}
                            for m in receipt.not_fired]
    return out


def json_value_deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: json_value_deep(v) for k, v in value.items()}
    return json_value(value)


def dry_run_json(result: DryRun, *, explain: bool, summary_only: bool = False) -> dict:
    events = [] if summary_only else [
        {"line_no": o.line_no, "duplicate": o.duplicate, **receipt_json(o.receipt,
                                                                         explain=explain)}
        for o in result.outcomes]
    return {
        "format": FORMAT,
        "events": events,
        "input_errors": [{"line_no": p.line_no, "field": p.field, "message": p.message}
                         for p in result.problems],
        "summary": result.summary,
    }


def write_rejects(result: DryRun, events_path: Path, rejects_path: Path) -> int:
    """Write every unreadable or rejected input line, verbatim, with its reason."""
    wanted: dict[int, dict[str, Any]] = {}
    for p in result.problems:
        wanted[p.line_no] = {"line_no": p.line_no, "kind": "invalid", "field": p.field,
                             "reason": p.message}
    for o in result.outcomes:
        if not o.receipt.accepted:
            wanted[o.line_no] = {
                "line_no": o.line_no, "kind": "rejected", "field": None,
                "reason": "; ".join(str(v) for v in o.receipt.violations)}
    if not wanted:
        return 0
    with open(events_path, "rb") as src, open(rejects_path, "w", encoding="utf-8") as out:
        for line_no, raw in enumerate(src, start=1):
            if line_no in wanted:
                row = wanted[line_no]
                row["input"] = raw.decode("utf-8", "replace").rstrip("\n")
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(wanted)


# --- text ----------------------------------------------------------------------------------


def _effect_text(e: Any) -> str:
    if isinstance(e, EarnPoints):
        return f"+{e.points} pts ({e.rule})"
    if isinstance(e, HoldPoints):
        until = e.vests_at.date().isoformat() if e.vests_at else f"on {e.vests_on}"
        return f"+{e.points} pending until {until} ({e.rule})"
    if isinstance(e, ReversePoints):
        return f"-{e.points} pts reversing {e.reverses} ({e.rule})"
    if isinstance(e, QualifyingCredit):
        return f"{e.credit} +{e.value}"
    if isinstance(e, GrantRight):
        return f"grant {e.right}"
    if isinstance(e, UseRight):
        return f"use {e.quantity} x {e.right}"
    if isinstance(e, TierChange):
        return f"tier {e.from_tier} -> {e.to_tier}"
    if isinstance(e, RedeemPoints):
        return f"-{e.points} pts redeemed"
    if isinstance(e, RestorePoints):
        return f"+{e.points} pts given back from {e.redemption}"
    if isinstance(e, ReservePoints):
        return f"{e.points} pts on hold until {e.expires_at.isoformat(timespec='minutes')}"
    if isinstance(e, CaptureReservation):
        back = f", {e.released} pts back" if e.released else ""
        return f"-{e.points} pts redeemed from hold {e.reservation}{back}"
    if isinstance(e, ReleaseReservation):
        return f"+{e.points} pts back from hold {e.reservation}"
    return e.kind


def print_outcome(console: Console, o: Outcome, *, explain: bool) -> None:
    r = o.receipt
    when = r.occurred_at.strftime("%Y-%m-%d %H:%M")
    head = Text(f"{o.line_no:>5}  {r.event_id}  {r.member}  {r.line}/{r.type}  {when}  ")
    if o.duplicate:
        head.append("duplicate (same as before; nothing applied)", style="yellow")
        console.print(head)
        return
    if r.accepted:
        head.append("accepted", style="green")
        summary = ", ".join(_effect_text(e) for e in r.effects) or "no effects"
        head.append(f"  {summary}")
    else:
        head.append("rejected", style="bold red")
        head.append("  " + "; ".join(str(v) for v in r.violations))
    console.print(head)
    if explain and r.accepted:
        for e in r.effects:
            if e.trace is None:
                continue
            line = Text(f"         {_effect_text(e)}: ", style="cyan")
            line.append(e.trace.detail)
            if e.trace.values:
                vals = ", ".join(f"{k}={json_value(v)!r}" for k, v in e.trace.values.items())
                line.append(f"  [{vals}]", style="dim")
            if e.trace.file:
                line.append(f"  ({e.trace.file} v{e.trace.version})", style="dim")
            console.print(line)
        for m in r.not_fired:
            line = Text(f"         not fired {m.rule}: {m.reason}", style="dim")
            if m.values:
                vals = ", ".join(f"{k}={json_value(v)!r}" for k, v in m.values.items())
                line.append(f"  [{vals}]")
            console.print(line)


def print_problems(console: Console, problems: Iterable[Any], source: str) -> None:
    for p in problems:
        where = f"{source}:{p.line_no}" + (f": field {p.field}" if p.field else "")
        console.print(Text(f"{where}: invalid event: {p.message}", style="red"))


def print_summary(console: Console, result: DryRun) -> None:
    s = result.summary
    ev = s["events"]
    console.print(Text(f"\n{ev['read']} events: {ev['accepted']} accepted, {ev['rejected']} "
                       f"rejected, {ev['invalid']} invalid, {ev['duplicates']} duplicates",
                       style="bold"))
    if s["lines"]:
        t = Table(title="Points by line")
        for col in ("line", "events", "spend", "points", "pending", "reversed", "cost",
                    "cost ratio", "cap"):
            t.add_column(col, justify="left" if col == "line" else "right")
        for line, row in s["lines"].items():
            t.add_row(line, str(row["events"]), row["spend"], str(row["points"]),
                      str(row["pending"]), str(row["reversed"]), row["cost"],
                      row["cost_ratio"] or "-", row["max_cost_ratio"] or "-")
        console.print(t)
    if s["rules"]:
        t = Table(title="Points by rule")
        t.add_column("rule")
        t.add_column("fired", justify="right")
        t.add_column("points", justify="right")
        for rule, row in s["rules"].items():
            t.add_row(rule, str(row["fired"]), str(row["points"]))
        console.print(t)
    if s["tier_moves"]:
        t = Table(title="Tier moves")
        t.add_column("from")
        t.add_column("to")
        t.add_column("members", justify="right")
        t.add_column("reason")
        for m in s["tier_moves"]:
            t.add_row(m["from"], m["to"], str(m["count"]), m["reason"])
        console.print(t)
    rights = s["rights"]
    if rights["granted"] or rights["used"]:
        t = Table(title="Rights")
        t.add_column("right")
        t.add_column("granted", justify="right")
        t.add_column("used", justify="right")
        for right in sorted(set(rights["granted"]) | set(rights["used"])):
            t.add_row(right, str(rights["granted"].get(right, 0)),
                      str(rights["used"].get(right, 0)))
        console.print(t)
    if s["rejections"]:
        t = Table(title="Rejections by reason")
        t.add_column("reason")
        t.add_column("events", justify="right")
        for reason, n in s["rejections"].items():
            t.add_row(reason, str(n))
        console.print(t)


def print_diagnostics(out: TextIO, diagnostics: Iterable[Diagnostic]) -> None:
    for d in diagnostics:
        out.write(str(d) + "\n")
