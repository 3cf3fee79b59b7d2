"""The engine: the public entry point that runs validate -> decide -> tiers -> check -> apply.

An :class:`Engine` owns a compiled :class:`~loyaltycore.rulebook.RuleBook`, the guarded
plugins and the member state. ``process`` is the whole pipeline for one event;
``decide`` is the same pipeline without the write; ``dry_run`` runs a stream against a
throwaway copy of the state, so a dry-run and a real run of the same events produce the
same effects by construction.
"""

from __future__ import annotations

import copy
import gc
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .context import calendar_scope
from .decide import Decision, decide
from .effects import trusted
from .errors import IdempotencyConflict
from .events import Event, EventSchema
from .invariants import check
from .members import MemberProfile, MemberSnapshot
from .memory import MemoryState
from .plugins import PluginHost, make_plugin_manager
from .receipts import Receipt, Violation
from .rulebook import GroupBook, RuleBook, load_rulebook

DEFAULT_RULESETS = "rulesets"


def default_rulesets() -> list[Path]:
    """``LOYALTY_RULESETS`` (paths separated by the OS path separator) or ./rulesets."""
    env = os.environ.get("LOYALTY_RULESETS")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return [Path(DEFAULT_RULESETS)]


class Engine:
    """Embed this: ``Engine.open("rulesets")`` then ``engine.process(event_dict)``."""

    def __init__(self, rulebook: RuleBook, plugins: PluginHost,
                 state: MemoryState | None = None):
        self.rulebook = rulebook
        self.plugins = plugins
        self.schema = EventSchema(plugins.event_types())
        first = rulebook.groups[0].policy
        self.state = state or MemoryState(lowest_tier=first.tiers[0].id,
                                          window_months=first.qualification.window_months)
        self._plugin_lines: dict[str, frozenset[str]] = {}
        for line, owner in plugins.line_owner.items():
            self._plugin_lines[owner] = self._plugin_lines.get(owner, frozenset()) | {line}

    @classmethod
    def open(cls, rulesets: Iterable[str | Path] | str | Path | None = None, *,
             plugins: Iterable[Any] = (), load_entrypoints: bool | None = None,
             time_budget: float | None = None, verify_determinism: bool = True) -> Engine:
        """Load plugins (entry points and/or ``plugins``) and compile ``rulesets``.

        Raises :class:`~loyaltycore.errors.RulesetError` listing every problem in the
        rulesets, or :class:`~loyaltycore.errors.ConfigurationError` for plugin problems.
        """
        pm = make_plugin_manager(plugins, load_entrypoints=load_entrypoints)
        kwargs = {} if time_budget is None else {"time_budget": time_budget}
        host = PluginHost(pm, verify_determinism=verify_determinism, **kwargs)
        if rulesets is None:
            paths = default_rulesets()
        elif isinstance(rulesets, str | Path):
            paths = [Path(rulesets)]
        else:
            paths = [Path(p) for p in rulesets]
        book = load_rulebook(paths, event_types=host.event_types(), functions=host.functions,
                             plugin_paths=[p for _, p in host.ruleset_paths])
        return cls(book, host)

    # --- the pipeline --------------------------------------------------------------------

    def parse_event(self, raw: Mapping[str, Any] | str | bytes | Event, *,
                    source: str | None = None, line: int | None = None) -> Event:
        """Validate raw input into a frozen event (raises EventInputError naming the field)."""
        if isinstance(raw, Event):
            return raw
        return self.schema.parse(raw, source=source, line=line)

    def enrol(self, profile: MemberProfile | Mapping[str, Any]) -> None:
        """Register a member's profile (birth month, enrolment date, starting tier)."""
        if not isinstance(profile, MemberProfile):
            profile = MemberProfile.model_validate(profile)
        self.state.enrol(profile)

    def decide(self, event: Mapping[str, Any] | Event, *, explain: bool = False) -> Decision:
        """The full decision for ``event`` against current state, checked, not applied."""
        ev = self.parse_event(event)
        return self._decide(ev, explain)

    def _decide(self, ev: Event, explain: bool) -> Decision:
        gb = self.rulebook.group_at(ev.occurred_at)
        return self._decide_in(ev, explain, gb, calendar_scope(ev, gb.tz) if gb else None)

    def _decide_in(self, ev: Event, explain: bool, gb: GroupBook | None,
                   cal: dict[str, Any] | None) -> Decision:
        """Decide and check ``ev`` under the group policy ``gb`` already looked up, with the
        event's calendar ``cal`` (both computed once per event by the caller)."""
        state = self.state
        local = cal["local_date"] if cal else ev.occurred_at.date()
        snapshot, is_new = state.snapshot(ev.member, ev.occurred_at, local)
        decision = decide(ev, snapshot, self.rulebook, history=state, plugins=self.plugins,
                          explain=explain, is_new=is_new, calendar=cal, group=gb)
        decision.violations = check(decision, plugin_lines=self._plugin_lines)
        return decision

    def process(self, event: Mapping[str, Any] | Event, *, explain: bool = False) -> Receipt:
        """Decide, check and apply one event; idempotent on (member, event id).

        The same event again returns the original receipt and changes nothing; the same
        id with a different payload raises :class:`IdempotencyConflict`.
        """
        ev = self.parse_event(event)
        previous = self.state.previous(ev)
        if previous is not None:
            same, receipt = previous
            if not same:
                raise IdempotencyConflict(ev.id, ev.member)
            return receipt
        state = self.state
        state.advance(ev.member, ev.occurred_at)
        gb = self.rulebook.group_at(ev.occurred_at)
        cal = None
        if gb is not None:
            cal = calendar_scope(ev, gb.tz)
            state.start_reviews(ev.member, ev.occurred_at, cal["local_date"])
            state.review(ev.member, gb.policy, gb.tz, cal["local_date"])
        decision = self._decide_in(ev, explain, gb, cal)
        receipt = receipt_of(decision)
        self.state.apply(decision, receipt)
        return receipt

    def process_many(self, events: Iterable[Mapping[str, Any] | Event], *,
                     explain: bool = False) -> list[Receipt]:
        """Process events in the order given (see :func:`batch_gc` for why it is faster)."""
        with batch_gc():
            return [self.process(e, explain=explain) for e in events]

    def member(self, member_id: str, at: datetime | None = None) -> MemberSnapshot:
        """The member as of ``at`` (default now); a new member if never seen."""
        at = at or datetime.now(UTC)
        gb = self.rulebook.group_at(at) or self.rulebook.groups[-1]
        if member_id not in self.state.members:
            return MemberSnapshot(id=member_id, tier=gb.policy.tiers[0].id)
        return self.state.snapshot(member_id, at, at.astimezone(gb.tz).date())[0]

    def fork(self) -> Engine:
        """An engine on a private copy of the state: what a dry-run runs against."""
        return Engine(self.rulebook, self.plugins, copy.deepcopy(self.state))


@contextmanager
def batch_gc() -> Iterator[None]:
    """Collect garbage less often while a batch runs.

    Member state is a large, long-lived heap; CPython's default thresholds rescan it every
    few thousand allocations, which measured at more than half the per-event time on a
    50,000-event dry-run. Existing objects are frozen out of collection and the youngest
    generation's threshold is raised for the batch, then everything is restored.
    """
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


def receipt_of(decision: Decision) -> Receipt:
    event = decision.event
    versions = {}
    if decision.group is not None:
        versions["group"] = decision.group.version
    if decision.line_book is not None:
        versions[event.line] = decision.line_book.version
    accepted = not decision.violations
    return trusted(Receipt, dict(
        event_id=event.id, member=event.member, line=event.line, type=event.type,
        occurred_at=event.occurred_at, amount=event.amount, status="accepted" if accepted else "rejected",
        effects=tuple(decision.effects) if accepted else (),
        violations=tuple(decision.violations), not_fired=tuple(decision.misses),
        tier_before=decision.member.tier,
        tier_after=decision.tier_after if accepted else decision.member.tier,
        ruleset_versions=versions))


def rejected_receipt(event: Event, violation: Violation) -> Receipt:
    return trusted(Receipt, dict(
        event_id=event.id, member=event.member, line=event.line, type=event.type,
        occurred_at=event.occurred_at, amount=event.amount, status="rejected", effects=(), violations=(violation,),
        not_fired=(), tier_before=None, tier_after=None, ruleset_versions={}))
