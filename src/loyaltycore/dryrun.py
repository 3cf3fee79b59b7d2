"""Dry-run: a stream of events through the real pipeline, against state never committed.

Reads a JSONL file (one event per line), keeps every malformed line with its reason and
goes on, runs the valid events in time order through :meth:`Engine.process` on a forked
engine, and summarises: points by line and rule, cost ratio against each line's cap, tier
moves, rights, rejections by reason.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from .effects import EarnPoints, GrantRight, HoldPoints, ReversePoints, TierChange, UseRight
from .engine import Engine, batch_gc, rejected_receipt
from .errors import EventInputError, IdempotencyConflict
from .events import Event
from .members import MemberProfile
from .receipts import Receipt, Violation
from .reviews import ReviewMove

FORMAT = "loyaltycore.dry-run/1"


@dataclass(frozen=True)
class InputProblem:
    """A line of input that could not be read as an event: kept, with why."""

    line_no: int
    text: str
    message: str
    field: str | None = None


@dataclass
class Outcome:
    line_no: int
    receipt: Receipt
    duplicate: bool = False


@dataclass
class DryRun:
    """The result of a dry-run: one outcome per valid event, the input problems, a summary."""

    outcomes: list[Outcome] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)
    reviews: list[ReviewMove] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        return sum(1 for o in self.outcomes if not o.receipt.accepted)

    @property
    def exit_code(self) -> int:
        """0 every event accepted, 1 some rejected or unreadable."""
        return 1 if self.rejected or self.problems else 0


def read_events(path: Path | str, engine: Engine) -> tuple[list[tuple[int, Event]],
                                                            list[InputProblem]]:
    """Parse a JSONL file; returns the valid events with line numbers, and the problems."""
    events: list[tuple[int, Event]] = []
    problems: list[InputProblem] = []
    source = str(path)
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            text = raw.strip()
            if not text or text.startswith(b"#"):
                continue
            try:
                events.append((line_no, engine.schema.parse(text, source=source, line=line_no)))
            except EventInputError as exc:
                problems.append(InputProblem(line_no, text.decode("utf-8", "replace"),
                                             exc.detail, exc.field))
    return events, problems


def read_members(path: Path | str) -> list[MemberProfile]:
    """Member profiles from JSONL (or a JSON list); errors name the line."""
    text = Path(path).read_text(encoding="utf-8")
    stripped = text.lstrip()
    rows = json.loads(text) if stripped.startswith("[") else [
        (i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    profiles = []
    for i, row in enumerate(rows, 1):
        line_no, data = (row if isinstance(row, tuple) else (i, row))
        try:
            obj = json.loads(data) if isinstance(data, str) else data
            profiles.append(MemberProfile.model_validate(obj))
        except Exception as exc:  # noqa: BLE001 - reported with its line
            raise EventInputError(f"invalid member: {exc}", source=str(path),
                                  line=line_no) from None
    return profiles


def dry_run(engine: Engine, events: Iterable[tuple[int, Event]], *, explain: bool = False,
            problems: Iterable[InputProblem] = ()) -> DryRun:
    """Run ``events`` (with their line numbers) in time order on a fork of ``engine``."""
    fork = engine.fork()
    # The outcomes keep every receipt model anyway: packing the state's copy for
    # idempotency (MemoryState.pack_receipts) would only add work and a tuple per event.
    # Receipts are frozen, so a resubmission may get the very receipt kept.
    fork.state.pack_receipts = False
    result = DryRun(problems=list(problems))
    ordered = sorted(events, key=lambda pair: pair[1].occurred_at)
    with batch_gc():
        _run(fork, ordered, explain, result)
    if ordered:
        # Reviews that fell due before the end of the stream, for members with no later event.
        last = ordered[-1][1].occurred_at
        gb = fork.rulebook.group_at(last)
        if gb is not None:
            fork.state.review_all(gb.policy, gb.tz, last.astimezone(gb.tz).date())
    result.reviews = list(fork.state.review_log)
    result.summary = summarize(result, engine)
    return result


def _run(fork: Engine, ordered: list[tuple[int, Event]], explain: bool, result: DryRun) -> None:
    for line_no, event in ordered:
        seen = fork.duplicates
        try:
            receipt = fork.process(event, explain=explain)
        except IdempotencyConflict as exc:
            receipt = rejected_receipt(event, Violation(invariant="idempotency",
                                                        message=str(exc)))
        result.outcomes.append(Outcome(line_no, receipt, duplicate=fork.duplicates > seen))


def summarize(result: DryRun, engine: Engine) -> dict[str, Any]:
    lines: dict[str, dict[str, Any]] = {}
    rules: dict[str, dict[str, int]] = {}
    tier_moves: Counter[tuple[str, str]] = Counter()
    rejections: Counter[str] = Counter()
    granted: Counter[str] = Counter()
    used: Counter[str] = Counter()
    spend: Counter[str] = Counter()
    accepted = rejected = duplicates = 0
    for o in result.outcomes:
        r = o.receipt
        if o.duplicate:
            duplicates += 1
            continue
        if not r.accepted:
            rejected += 1
            for v in r.violations:
                rejections[v.invariant] += 1
            continue
        accepted += 1
        row = lines.setdefault(r.line, _line_row())
        row["events"] += 1
        if r.amount and r.type != "refund":
            spend[r.line] += r.amount
        for e in r.effects:
            if isinstance(e, EarnPoints | HoldPoints):
                key = "points" if isinstance(e, EarnPoints) else "pending"
                lines.setdefault(e.line, _line_row())[key] += e.points
                stats = rules.setdefault(e.rule or e.source, {"fired": 0, "points": 0})
                stats["fired"] += 1
                stats["points"] += e.points
            elif isinstance(e, ReversePoints):
                lines.setdefault(e.line, _line_row())["reversed"] += e.points
            elif isinstance(e, TierChange):
                tier_moves[(e.from_tier, e.to_tier)] += 1
            elif isinstance(e, GrantRight):
                granted[e.right] += 1
            elif isinstance(e, UseRight):
                used[e.right] += e.quantity
    for p in result.problems:
        rejections[f"input:{p.field or 'line'}"] += 1
    out_lines = {}
    policy = engine.rulebook.groups[-1].policy
    for line, row in sorted(lines.items()):
        value = policy.point_value
        caps = policy.lines.get(line)
        issued = row["points"] + row["pending"] - row["reversed"]
        cost = Decimal(issued) * value
        line_spend = spend.get(line, Decimal(0))
        out_lines[line] = {
            **row, "spend": str(line_spend), "cost": str(cost),
            "cost_ratio": str(round(cost / line_spend, 4)) if line_spend else None,
            "max_cost_ratio": str(caps.max_cost_ratio) if caps else None,
        }
    return {
        "events": {"read": len(result.outcomes) + len(result.problems), "accepted": accepted,
                   "rejected": rejected,
                   "invalid": len(result.problems), "duplicates": duplicates},
        "lines": out_lines,
        "rules": dict(sorted(rules.items(), key=lambda kv: (-kv[1]["points"], kv[0]))),
        "tier_moves": [{"from": a, "to": b, "count": n, "reason": "upgrade"}
                       for (a, b), n in sorted(tier_moves.items())]
        + [{"from": a, "to": b, "count": n, "reason": "review"}
           for (a, b), n in sorted(Counter((m.from_tier, m.to_tier)
                                           for m in result.reviews).items())],
        "rights": {"granted": dict(sorted(granted.items())), "used": dict(sorted(used.items()))},
        "rejections": dict(sorted(rejections.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def _line_row() -> dict[str, Any]:
    return {"events": 0, "points": 0, "pending": 0, "reversed": 0}
