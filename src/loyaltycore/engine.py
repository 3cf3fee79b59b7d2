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
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError

from .audit import CheckReport, check_ledger
from .context import calendar_scope
from .decide import Decision, decide
from .effects import maker, trusted
from .errors import ConfigurationError, EventInputError, IdempotencyConflict
from .events import Event, EventSchema
from .identities import group_secret, identity_digest
from .invariants import check
from .jobs import JobsReport
from .members import Hold, MemberProfile, MemberSnapshot
from .memory import MemoryState
from .merges import merge_members
from .plugins import PluginHost, make_plugin_manager
from .receipts import Receipt, Violation
from .rulebook import GroupBook, RuleBook, load_rulebook
from .statements import Settlement, Statement, settlement, statement_from_db, statement_from_journal
from .store import (
    SqlState,
    Store,
    due_members,
    find_identity,
    link_identity,
    merge_rows,
    surviving_id,
    tier_rows,
)

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
                 state: MemoryState | None = None, store: Store | None = None):
        self.rulebook = rulebook
        self.plugins = plugins
        self.schema = EventSchema(plugins.event_types())
        self.store = store
        self.secret: str | None = group_secret(None)
        self.duplicates = 0  # resubmissions answered with their original receipt
        self.replayed: list[str] = []  # their ids, for callers that report per event
        first = rulebook.groups[0].policy
        lowest, window = first.tiers[0].id, first.qualification.window_months
        if state is None:
            state = (SqlState(store, lowest, window) if store is not None
                     else MemoryState(lowest, window, keep_journal=True))
        self.state = state
        self._plugin_lines: dict[str, frozenset[str]] = {}
        for line, owner in plugins.line_owner.items():
            self._plugin_lines[owner] = self._plugin_lines.get(owner, frozenset()) | {line}

    @classmethod
    def open(cls, rulesets: Iterable[str | Path] | str | Path | None = None, *,
             plugins: Iterable[Any] = (), load_entrypoints: bool | None = None,
             time_budget: float | None = None, verify_determinism: bool = True,
             db: str | Path | Store | None = None, secret: str | None = None,
             keep_members: int | None = None) -> Engine:
        """Load plugins (entry points and/or ``plugins``) and compile ``rulesets``.

        ``secret``: the group secret that keys identity hashes (default
        ``LOYALTY_SECRET``). ``db``: a database URL, a SQLite file path or an open :class:`Store`; the engine
        then keeps members and the ledger there. Without it, everything stays in memory
        (what a dry-run or a test wants). ``keep_members``: how many members the engine
        keeps in memory between transactions, so that their lots, buckets and vouchers
        are not read again (default 10,000, 10 to 17 KB each; 0 reads every member
        afresh). Another process writing a kept member is noticed and the member reloaded.

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
        store = db if isinstance(db, Store) or db is None else Store.open(str(db))
        engine = cls(book, host, store=store)
        if keep_members is not None and isinstance(engine.state, SqlState):
            engine.state.keep = max(0, keep_members)
        engine.secret = group_secret(secret)
        return engine

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    # --- the pipeline --------------------------------------------------------------------

    def parse_event(self, raw: Mapping[str, Any] | str | bytes | Event, *,
                    source: str | None = None, line: int | None = None) -> Event:
        """Validate raw input into a frozen event (raises EventInputError naming the field).

        Instead of ``member``, an event may carry ``identity: {kind, value}`` (a card or
        phone number a till knows); it is resolved to the member id it is linked to."""
        if isinstance(raw, Event):
            return raw
        if isinstance(raw, str | bytes) and (b'"identity"' in raw if isinstance(raw, bytes)
                                             else '"identity"' in raw):
            try:
                raw = json.loads(raw)
            except ValueError:
                pass  # the schema reports the broken JSON with its position
        if isinstance(raw, Mapping) and "identity" in raw:
            raw = self._with_member(raw, source, line)
        return self.schema.parse(raw, source=source, line=line)

    def _with_member(self, raw: Mapping[str, Any], source: str | None, line: int | None
                     ) -> dict[str, Any]:
        ident = raw["identity"]
        if not isinstance(ident, Mapping) or not {"kind", "value"} <= set(ident):
            raise EventInputError("identity must be {kind: ..., value: ...}", source=source,
                                  line=line, field="identity")
        kind = str(ident["kind"])
        member = self.find_member(kind, str(ident["value"]))
        if member is None:  # never echo the value: it may be a phone number
            raise EventInputError(f"no member is linked to this {kind} identity",
                                  source=source, line=line, field="identity")
        if raw.get("member") not in (None, member):
            raise EventInputError(f"member {raw.get('member')!r} does not match the member "
                                  f"its {kind} identity is linked to", source=source,
                                  line=line, field="identity")
        out = {k: v for k, v in raw.items() if k != "identity"}
        out["member"] = member
        return out

    def enrol(self, profile: MemberProfile | Mapping[str, Any]) -> None:
        """Register a member's profile (birth month, enrolment date, starting tier).

        Enrolling again with the same profile changes nothing, so a CRM export can be sent
        twice. A starting tier must be on the ladder, is recorded in the tier history
        (reason ``enrolment``) and is only for a member who has none yet: a member with
        events, a tier above the lowest or a tier history changes tier through
        :meth:`assign_tier`, which is audited. A field the profile leaves out keeps what is
        known (the birth month; the enrolment date of a member with events)."""
        self.enrol_many([profile])

    def enrol_many(self, profiles: Iterable[MemberProfile | Mapping[str, Any]], *,
                   batch_size: int = 1000,
                   refused: list[tuple[MemberProfile, str]] | None = None) -> int:
        """:meth:`enrol` for many members, a transaction per ``batch_size`` of them; returns
        how many were enrolled.

        Without ``refused``, the first profile that cannot be enrolled (a tier not on the
        ladder, a tier change for a member who has one, an id merged into another) raises
        :class:`ConfigurationError`. A tier off the ladder or a merged-away id is found
        before anything is written, and nobody is enrolled; a tier change is found against
        the member's state, and rolls back its transaction of ``batch_size`` profiles (in
        memory, the profiles before it stay enrolled). With a list as ``refused``, such a
        profile is appended to it with the reason, and all the others are enrolled."""
        items = [p if isinstance(p, MemberProfile) else MemberProfile.model_validate(p)
                 for p in profiles]
        survivors = self._survivors([p.id for p in items]) if items else {}
        ready = []
        for p in items:
            try:
                if survivors[p.id] != p.id:
                    raise ConfigurationError(
                        f"member {p.id} was merged into {survivors[p.id]}: enrol the "
                        f"surviving member {survivors[p.id]} instead")
                self._check_starting_tier(p)
            except ConfigurationError as exc:
                if refused is None:
                    raise
                refused.append((p, str(exc)))
                continue
            ready.append(p)
        if not isinstance(self.state, SqlState) or not self.state.write:
            done = 0
            for p in ready:
                try:
                    self.state.enrol(p, _enrolled_at(p))
                    done += 1
                except ConfigurationError as exc:  # checked before anything changed
                    if refused is None:
                        raise
                    refused.append((p, str(exc)))
            return done
        return sum(self._enrol_batch(ready[i:i + batch_size], refused)
                   for i in range(0, len(ready), batch_size))

    def _enrol_batch(self, batch: list[MemberProfile],
                     refused: list[tuple[MemberProfile, str]] | None) -> int:
        try:
            with self._members_at([p.id for p in batch], datetime.now(UTC)) as state:
                for p in batch:
                    state.enrol(p, _enrolled_at(p))
            return len(batch)
        except ConfigurationError as exc:
            if refused is None:
                raise
            if len(batch) == 1:
                refused.append((batch[0], str(exc)))
                return 0
        # One profile spoilt the transaction: enrol the others one by one.
        return sum(self._enrol_batch([p], refused) for p in batch)

    def _check_starting_tier(self, profile: MemberProfile) -> None:
        if profile.tier is None:
            return
        gb = self.rulebook.group_at(_enrolled_at(profile)) or self.rulebook.groups[-1]
        if profile.tier not in gb.tier_rank:
            raise ConfigurationError(
                f"member {profile.id}: tier {profile.tier!r} is not on the ladder "
                f"{[t.id for t in gb.policy.tiers]} (group policy {gb.policy.version})")

    def decide(self, event: Mapping[str, Any] | Event, *, explain: bool = False) -> Decision:
        """The full decision for ``event`` against current state, checked, not applied."""
        ev = self._resolved(self.parse_event(event))
        if self.store is None:
            return self._decide(ev, explain)
        with self._unit_of_work([ev], write=False):
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
        id with a different payload raises :class:`IdempotencyConflict`. With a store, the
        event's idempotency claim and all its writes commit in one transaction.
        """
        ev = self.parse_event(event)
        if self.store is None:
            return self._process(ev, explain, strict=True)
        return self._process_batch([ev], explain, strict=True)[0]

    def process_many(self, events: Iterable[Mapping[str, Any] | Event], *,
                     explain: bool = False, batch_size: int = 500) -> list[Receipt]:
        """Process events in the order given; same result as :meth:`process` on each.

        With a store, ``batch_size`` events share a database transaction (each event still
        all-or-nothing and idempotent: a batch commits whole or not at all, and a retried
        batch finds what it already wrote). A resubmitted id with a different payload is
        rejected (``idempotency``) and recorded among the rejects rather than raised, so it
        cannot hold back the rest of the batch.
        """
        with batch_gc():
            if self.store is None:
                return [self._process(self.parse_event(e), explain, strict=False)
                        for e in events]
            out: list[Receipt] = []
            batch: list[Event] = []
            for e in events:
                batch.append(self.parse_event(e))
                if len(batch) >= batch_size:
                    out += self._process_batch(batch, explain, strict=False)
                    batch = []
            if batch:
                out += self._process_batch(batch, explain, strict=False)
            return out

    def _process(self, ev: Event, explain: bool, *, strict: bool) -> Receipt:
        state = self.state
        ev = self._resolved(ev)
        previous = state.previous(ev)
        if previous is not None:
            same, receipt = previous
            if same:
                self.duplicates += 1
                self.replayed.append(ev.id)
                return receipt
            if strict:
                raise IdempotencyConflict(ev.id, ev.member)
            conflict = IdempotencyConflict(ev.id, ev.member)
            if isinstance(state, SqlState):
                state.record_conflict(ev, str(conflict))
            return rejected_receipt(ev, Violation(invariant="idempotency",
                                                  message=str(conflict)))
        state.advance(ev.member, ev.occurred_at)
        gb = self.rulebook.group_at(ev.occurred_at)
        cal = None
        if gb is not None:
            cal = calendar_scope(ev, gb.tz)
            state.start_reviews(ev.member, ev.occurred_at, cal["local_date"])
            state.review(ev.member, gb.policy, gb.tz, cal["local_date"], ev.occurred_at)
        decision = self._decide_in(ev, explain, gb, cal)
        receipt = receipt_of(decision)
        state.apply(decision, receipt)
        return receipt

    def _resolved(self, ev: Event) -> Event:
        survivor = self.state.resolve(ev.member)
        return ev if survivor == ev.member else ev.model_copy(update={"member": survivor})

    def _process_batch(self, evs: list[Event], explain: bool, *, strict: bool) -> list[Receipt]:
        store = self.store
        assert store is not None
        for attempt in range(4):
            try:
                with self._unit_of_work(evs) as state:
                    out = [self._process(ev, explain, strict=strict) for ev in evs]
                    state.flush(state.conn)
                return out
            except OperationalError:
                if attempt == 3:
                    raise
            except DBAPIError:
                if len(evs) == 1:
                    raise
                # Something in the batch cannot be written: find it, keep the rest.
                return [r for ev in evs for r in self._process_batch([ev], explain,
                                                                     strict=strict)]
        raise AssertionError("unreachable")

    @contextmanager
    def _unit_of_work(self, evs: list[Event], *, write: bool = True) -> Iterator[SqlState]:
        """A transaction with the members of ``evs`` locked and loaded into the state."""
        state = self.state
        assert isinstance(state, SqlState) and self.store is not None
        tx = self.store.transaction() if state.write and write else self.store.reading()
        committed = False
        try:
            with tx as conn:
                aliases = state.resolve_all(conn, (ev.member for ev in evs))
                first: dict[str, datetime] = {}
                local_dates: set[date] = set()
                related: dict[str, set[str]] = {}
                keys: dict[str, set[str]] = {}
                gb = None
                for ev in evs:
                    mid = aliases.get(ev.member, ev.member)
                    first.setdefault(mid, ev.occurred_at)
                    gb = self.rulebook.group_at(ev.occurred_at) or gb
                    tz = gb.tz if gb is not None else UTC
                    local_dates.add(ev.occurred_at.astimezone(tz).date())
                    keys.setdefault(mid, set()).add(ev.id)
                    rel = ev.data.__dict__.get("related_event")
                    if rel:
                        related.setdefault(mid, set()).add(rel)
                state.policy = gb.policy if gb is not None else None
                state.tz = gb.tz if gb is not None else UTC
                state.begin(conn, first, local_dates, related, keys,
                            until=max(ev.occurred_at for ev in evs))
                yield state
            committed = state.write and write
        finally:
            state.end(committed)

    @contextmanager
    def _members_at(self, ids: Iterable[str], at: datetime, *, full: bool = False
                    ) -> Iterator[MemoryState]:
        """The state with ``ids`` loaded and locked as of ``at``; written back on success.
        (In memory this is just the state.)"""
        state = self.state
        if not isinstance(state, SqlState):
            yield state
            return
        assert self.store is not None
        gb = self.rulebook.group_at(at) or self.rulebook.groups[-1]
        committed = False
        try:
            with self.store.transaction() as conn:
                state.policy = gb.policy
                state.begin(conn, {i: at for i in ids}, {at.astimezone(gb.tz).date()}, {}, {},
                            full=full, until=at)
                yield state
                state.flush(conn)
            committed = True
        finally:
            state.end(committed)

    # --- the time-driven jobs ------------------------------------------------------------

    def run_jobs(self, as_of: datetime, *, batch_size: int = 500) -> JobsReport:
        """Let time pass for everyone up to ``as_of``: vest pending points that are due,
        expire lots, lapse vouchers, run tier reviews and end manual tiers. Idempotent for a
        given ``as_of``: a second run finds nothing due. Each entry is dated when the thing
        fell due, not when the job ran."""
        if as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")
        gb = self.rulebook.group_at(as_of) or self.rulebook.groups[-1]
        local = as_of.astimezone(gb.tz).date()
        if self.store is None:  # a merged-away id lives on in its survivor
            ids = sorted(i for i, m in self.state.members.items() if m.merged_into is None)
        else:
            with self.store.reading() as conn:
                ids = due_members(conn, as_of, local)
        report = JobsReport(as_of=as_of, members=len(ids))
        for i in range(0, len(ids), batch_size):
            chunk = ids[i:i + batch_size]
            with self._members_at(chunk, as_of) as state:
                start = len(state.journal)
                for mid in chunk:
                    m = state.members.get(mid)
                    changes_before = len(m.changes.entries) if m and m.changes else 0
                    state.advance(mid, as_of)
                    report.moves += state.review(mid, gb.policy, gb.tz, local, as_of)
                    if m is not None and m.changes is not None:
                        report.tally(m.changes.entries[changes_before:])
                        report.lapsed += sum(1 for g in m.changes.grants.values()
                                             if g.status == "expired")
                if not isinstance(state, SqlState):
                    report.tally(state.journal[start:])
        return report

    # --- reading the ledger --------------------------------------------------------------

    def statement(self, member_id: str, since: datetime | None = None) -> Statement:
        """The member's journal entries (since ``since``) with the running balance."""
        if self.store is None:
            mid = self.state.resolve(member_id)
            ids = {mid} | {a for a, s in self.state.aliases.items() if s == mid}
            return statement_from_journal(mid, ids, self.state.journal.of(ids), since)
        with self.store.reading() as conn:
            return statement_from_db(conn, surviving_id(conn, member_id), since)

    def settlement(self, since: datetime | None = None, until: datetime | None = None
                   ) -> list[Settlement]:
        """Who owes whom for points spent in [since, until): issuing line -> redeeming line,
        in points and at the group's point value."""
        store = self._need_store("settlement")
        gb = self.rulebook.group_at(since or until or datetime.now(UTC)) \
            or self.rulebook.groups[-1]
        with store.reading() as conn:
            return settlement(conn, since, until, gb.policy.point_value, gb.policy.currency)

    def check_ledger(self) -> CheckReport:
        """Re-derive every balance from entries, postings and lots; report differences."""
        store = self._need_store("ledger check")
        with store.reading() as conn:
            return check_ledger(conn)

    # --- identities and merges ----------------------------------------------------------

    def link_identity(self, member_id: str, kind: str, value: str) -> None:
        """Map a card number, phone number or app id (``kind``) to the member. Only a keyed
        hash is kept. An identity already linked to someone else is an error: if they are
        the same person, :meth:`merge` them."""
        digest = identity_digest(self.secret, kind, value)
        member_id = self.state.resolve(member_id)
        if self.store is None:
            owner = self.state.identities.setdefault((kind, digest), member_id)
        else:
            with self.store.transaction() as conn:
                member_id = self.state.resolve_all(conn, [member_id])[member_id] \
                    if isinstance(self.state, SqlState) else member_id
                owner = link_identity(conn, kind, digest, member_id)
        if owner != member_id:
            raise ConfigurationError(f"this {kind} identity already belongs to member "
                                     f"{owner}; merge the two members if they are one person")

    def find_member(self, kind: str, value: str) -> str | None:
        """The member id a card, phone or app id belongs to (None if unknown)."""
        digest = identity_digest(self.secret, kind, value)
        if self.store is None:
            owner = self.state.identities.get((kind, digest))
            return self.state.resolve(owner) if owner else None
        with self.store.reading() as conn:
            owner = find_identity(conn, kind, digest)
            if owner is None:
                return None
            return surviving_id(conn, owner)

    def merge(self, survivor: str, absorbed: str, *, reason: str,
              at: datetime | None = None) -> None:
        """Two member ids turned out to be one person: balances, lots, qualification,
        vouchers, history and identities move to ``survivor`` (the higher tier wins), with
        an audit entry; events sent later under either id land on the survivor."""
        at = at or datetime.now(UTC)
        if not reason.strip():
            raise ConfigurationError("a merge needs a reason (it is audited)")
        if survivor == absorbed:
            raise ConfigurationError("cannot merge a member into itself")
        gb = self.rulebook.group_at(at) or self.rulebook.groups[-1]
        resolved = self._survivors([survivor, absorbed])
        if resolved[absorbed] != absorbed:
            raise ConfigurationError(f"member {absorbed} was already merged into "
                                     f"{resolved[absorbed]}")
        if resolved[survivor] == absorbed:
            raise ConfigurationError(f"member {survivor} was merged into {absorbed}: they "
                                     "are one member already")
        survivor = resolved[survivor]
        local = at.astimezone(gb.tz).date()
        with self._members_at([survivor, absorbed], at, full=True) as st:
            # (An id never seen is a new member, in memory as in a database.)
            for mid in (survivor, absorbed):
                _not_before_history(st._get(mid, at), at, "a merge")
            for mid in (survivor, absorbed):
                st.catch_up(mid, gb.policy, gb.tz, local, at)
            s, a = st.members[survivor], st.members[absorbed]
            available, pending = a.available, a.pending
            merge_members(st, s, a, at, reason, gb.tier_rank)
            if isinstance(st, SqlState):
                merge_rows(st.conn, survivor, absorbed, at, reason, available, pending)
            else:
                st.aliases = {k: (survivor if v == absorbed else v)
                              for k, v in st.aliases.items()}
                st.aliases[absorbed] = survivor
                st.identities = {k: (survivor if v == absorbed else v)
                                 for k, v in st.identities.items()}

    def tier_history(self, member_id: str) -> list[dict[str, Any]]:
        """Every tier move of the member (upgrades, reviews, manual assignments), oldest
        first, including those of ids merged into it."""
        if self.store is None:
            mid = self.state.resolve(member_id)
            moves = sorted((t for t in self.state.tier_history
                            if self.state.resolve(t.member) == mid), key=lambda t: t.at)
            return [_tier_row(t.at, t.from_tier, t.to_tier, t.reason, t.event_id, t.detail,
                              t.valid_until, t.member) for t in moves]
        member_id = self._survivors([member_id])[member_id]
        with self.store.reading() as conn:
            return [_tier_row(*row) for row in tier_rows(conn, member_id)]

    def _survivors(self, ids: list[str]) -> dict[str, str]:
        """Each id's surviving member id (itself unless it was merged away)."""
        state = self.state
        if self.store is not None and isinstance(state, SqlState):
            with self.store.reading() as conn:
                resolved = state.resolve_all(conn, ids)
            state.aliases = {}
            return {i: resolved.get(i, i) for i in ids}
        return {i: state.resolve(i) for i in ids}

    def record_input_problems(self, source: str, problems: Iterable[Any]) -> None:
        """Keep input lines that could not be read as events, with their reasons, in the
        store's rejects (once per source and line, however often the file is re-run)."""
        problems = list(problems)
        if self.store is None or not problems:
            return
        with self.store.transaction() as conn:
            self.store.record_rejects(conn, source, problems)

    def _need_store(self, what: str) -> Store:
        if self.store is None:
            raise ConfigurationError(f"{what} reads the durable ledger: open the engine with "
                                     "a database (Engine.open(..., db=URL); the CLI reads "
                                     "--db or LOYALTY_DB)")
        return self.store

    # --- administration ------------------------------------------------------------------

    def redeem(self, member_id: str, points: int, *, line: str, event_id: str,
               at: datetime, reference: str = "") -> Receipt:
        """Spend ``points`` of the member's at ``line`` (the built-in ``redeem`` event):
        rejected, with the reason, if it would overdraw or breaks the redemption policy.
        ``at`` is required: a retry must resend the same time to be recognised as one."""
        return self._builtin("redeem", member_id, line, event_id, at,
                             points=points, reference=reference)

    def cancel_redemption(self, member_id: str, redemption_id: str, *, line: str,
                          event_id: str, at: datetime, points: int | None = None,
                          reason: str = "") -> Receipt:
        """Give back the points of the member's redemption ``redemption_id`` (the built-in
        ``cancel_redemption`` event), all of them or ``points`` of them, at the ``line``
        where they were spent. They return with their original expiry dates, and the
        settlement between lines is reversed. Rejected, with the reason, for an unknown
        redemption, another line, or more than is left to give back."""
        return self._builtin("cancel_redemption", member_id, line, event_id, at,
                             related_event=redemption_id, reason=reason, points=points)

    def reserve_points(self, member_id: str, points: int, *, line: str, event_id: str,
                       at: datetime, reference: str = "",
                       minutes: int | None = None) -> Receipt:
        """Put ``points`` on hold at a till (the built-in ``reserve_points`` event): they
        leave the available balance now, so no other checkout can spend them, until
        :meth:`capture_reservation` spends them, :meth:`release_reservation` gives them
        back, or ``minutes`` pass (default: the group's ``reservation_minutes``) and they
        come back by themselves. Rejected like a redemption: overdraft, policy."""
        return self._builtin("reserve_points", member_id, line, event_id, at, points=points,
                             reference=reference, minutes=minutes)

    def capture_reservation(self, member_id: str, reservation_id: str, *, line: str,
                            event_id: str, at: datetime, points: int | None = None,
                            reference: str = "") -> Receipt:
        """Spend the points of the open hold ``reservation_id`` at ``line`` (the built-in
        ``capture_reservation`` event): all of them, or ``points`` of them and the rest go
        back. Settlement between lines counts them now. Rejected for a hold that is
        unknown, settled, lapsed or made at another line. The capture can be cancelled
        later with :meth:`cancel_redemption`, naming ``event_id``."""
        return self._builtin("capture_reservation", member_id, line, event_id, at,
                             related_event=reservation_id, reference=reference, points=points)

    def release_reservation(self, member_id: str, reservation_id: str, *, line: str,
                            event_id: str, at: datetime, reason: str = "") -> Receipt:
        """End the open hold ``reservation_id`` unspent (the built-in
        ``release_reservation`` event): its points go back with their expiry dates."""
        return self._builtin("release_reservation", member_id, line, event_id, at,
                             related_event=reservation_id, reason=reason)

    def _builtin(self, etype: str, member_id: str, line: str, event_id: str, at: datetime,
                 **data: Any) -> Receipt:
        """Process a built-in event; payload fields given as None are left to their
        defaults (so a retry sends the same payload as the first try)."""
        return self.process({"id": event_id, "line": line, "type": etype, "member": member_id,
                             "occurred_at": at.isoformat(),
                             "data": {k: v for k, v in data.items() if v is not None}})

    def assign_tier(self, member_id: str, tier: str, *, reason: str, until: datetime,
                    at: datetime | None = None) -> None:
        """Put a member on ``tier`` by hand until ``until`` (then reviews judge them again,
        soft landing included); recorded in the tier history with ``reason``."""
        at = at or datetime.now(UTC)
        gb = self.rulebook.group_at(at) or self.rulebook.groups[-1]
        if tier not in gb.tier_rank:
            raise ConfigurationError(f"unknown tier {tier!r}; the ladder is "
                                     f"{[t.id for t in gb.policy.tiers]}")
        if not reason.strip():
            raise ConfigurationError("a manual tier needs a reason (it is audited)")
        if until.tzinfo is None or until <= at:
            raise ConfigurationError("a manual tier needs an aware end time after now: it "
                                     "is never a permanent floor")
        mid = self._survivors([member_id])[member_id]
        local = at.astimezone(gb.tz).date()
        with self._members_at([mid], at) as state:
            _not_before_history(state._get(mid, at), at, "a manual tier")
            state.catch_up(mid, gb.policy, gb.tz, local, at)
            state.start_reviews(mid, at, local)
            state.set_tier(mid, tier, at, reason=reason, until=until)

    def member(self, member_id: str, at: datetime | None = None) -> MemberSnapshot:
        """The member as of ``at`` (default now; never before the member's last event), with
        what falls due by then applied; a new member if never seen. A merged-away id answers
        with its survivor."""
        at = at or datetime.now(UTC)
        gb = self.rulebook.group_at(at) or self.rulebook.groups[-1]
        local = at.astimezone(gb.tz).date()
        if self.store is None:
            member_id = self.state.resolve(member_id)
            if member_id not in self.state.members:
                return MemberSnapshot(id=member_id, tier=gb.policy.tiers[0].id)
            _not_before_last_activity(self.state.members[member_id], at)
            return _with_validity(self.state, member_id, at, local, gb)
        with self.store.reading() as conn:
            reader = SqlState(self.store, self.state.lowest_tier, self.state.window_months,
                              write=False)
            member_id = reader.resolve_all(conn, [member_id])[member_id]
            reader.begin(conn, {member_id: at}, {local}, {}, {})
            if not reader.members[member_id].has_events and not reader.exists(conn, member_id):
                return MemberSnapshot(id=member_id, tier=gb.policy.tiers[0].id)
            _not_before_last_activity(reader.members[member_id], at)
            return _with_validity(reader, member_id, at, local, gb)

    def dry_run(self, events: Iterable[Mapping[str, Any] | Event], *,
                explain: bool = False) -> Any:
        """The same pipeline as :meth:`process_many` on a fork that is never committed (with
        a store: read from the database, never written), in time order; returns a
        :class:`loyaltycore.dryrun.DryRun` with each event's receipt and the summary."""
        from .dryrun import dry_run

        parsed = [(i, self.parse_event(e)) for i, e in enumerate(events, 1)]
        return dry_run(self, parsed, explain=explain)

    def fork(self) -> Engine:
        """An engine on a private copy of the state: what a dry-run runs against. With a
        store, the copy reads members from the database and never writes."""
        if isinstance(self.state, SqlState):
            state = self.state
            twin = Engine(self.rulebook, self.plugins,
                          SqlState(state.store, state.lowest_tier, state.window_months,
                                   write=False), store=self.store)
            twin.secret = self.secret
            return twin
        twin = Engine(self.rulebook, self.plugins, copy.deepcopy(self.state))
        twin.secret = self.secret
        return twin


def _with_validity(state: MemoryState, member_id: str, at: datetime, local: date,
                   gb: GroupBook) -> MemberSnapshot:
    snap = state.snapshot(member_id, at, local)[0]
    until = state.tier_valid_until(member_id, gb.policy, gb.tz, local)
    m = state.members[member_id]
    holds = tuple(Hold(id=r.id, line=r.line, points=r.points, at=r.at.astimezone(gb.tz),
                       expires_at=r.expires_at.astimezone(gb.tz), reference=r.reference)
                  for r in sorted(m.reservations.values(), key=lambda r: (r.expires_at, r.id))
                  if r.status == "open" and r.expires_at > at)
    return snap.model_copy(update={"tier_valid_until": until, "holds": holds})


def _enrolled_at(profile: MemberProfile) -> datetime:
    """When an enrolment happened, for its tier history: the enrolment date (midnight UTC)
    if the profile has one, else now."""
    if profile.enrolled_on is None:
        return datetime.now(UTC)
    return datetime.combine(profile.enrolled_on, datetime.min.time(), UTC)


def _not_before_history(m: Any, at: datetime, what: str) -> None:
    """A tier is judged in date order: nothing that sets one may be dated before the
    member's latest event or tier move."""
    latest = max((t for t in (m.last_activity, m.tier_since) if t is not None), default=None)
    if latest is not None and at < latest:
        raise ConfigurationError(
            f"member {m.id} has activity or a tier move at {latest.isoformat()}, after "
            f"{at.isoformat()}: {what} takes effect at that time or later")


def _not_before_last_activity(m: Any, at: datetime) -> None:
    """``member(at)`` is the member now plus what falls due by ``at``; it cannot undo what
    happened after ``at``. For the past, read the statement."""
    if m.last_activity is not None and at < m.last_activity:
        raise ConfigurationError(
            f"member {m.id} has activity after {at.isoformat()}: a member view is for now "
            "or later (what will have vested or expired by then); for an earlier date use "
            "the statement (statement(member, since=...))")


def _tier_row(at: datetime, from_tier: str, to_tier: str, reason: str, event_id: str | None,
              detail: str, valid_until: datetime | None, member: str) -> dict[str, Any]:
    """A line of a tier history; ``member`` is the id it was recorded for, which differs
    from the one asked for on the lines of ids merged into it."""
    return {"at": at.isoformat(), "member": member, "from_tier": from_tier,
            "to_tier": to_tier, "reason": reason, "event_id": event_id, "detail": detail,
            "valid_until": valid_until.isoformat() if valid_until else None}


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


_receipt = maker(Receipt)


# (id(group book), id(line book), line) -> (group book, line book, ruleset versions): the
# books are kept with it so that an id() is never mistaken for another.
_versions: dict[tuple[int, int, str], tuple[Any, Any, dict[str, str]]] = {}


def receipt_of(decision: Decision) -> Receipt:
    ev = decision.event.__dict__
    line = ev["line"]
    gb, lb = decision.group, decision.line_book
    hit = _versions.get((id(gb), id(lb), line))
    if hit is None or hit[0] is not gb or hit[1] is not lb:
        if len(_versions) > 256:
            _versions.clear()
        known = {}
        if gb is not None:
            known["group"] = gb.policy.version
        if lb is not None:
            known[line] = lb.ruleset.version
        hit = _versions[id(gb), id(lb), line] = (gb, lb, known)
    versions = hit[2].copy()  # each receipt its own dict, as before
    tier_before = decision.member.tier
    if decision.violations:
        return _receipt(ev["id"], ev["member"], line, ev["type"], ev["occurred_at"],
                        ev["amount"], "rejected", (), tuple(decision.violations),
                        tuple(decision.misses), tier_before, tier_before, versions)
    return _receipt(ev["id"], ev["member"], line, ev["type"], ev["occurred_at"], ev["amount"],
                    "accepted", tuple(decision.effects), (), tuple(decision.misses),
                    tier_before, decision.tier_after, versions)


def rejected_receipt(event: Event, violation: Violation) -> Receipt:
    return trusted(Receipt, dict(
        event_id=event.id, member=event.member, line=event.line, type=event.type,
        occurred_at=event.occurred_at, amount=event.amount, status="rejected", effects=(), violations=(violation,),
        not_fired=(), tier_before=None, tier_after=None, ruleset_versions={}))
