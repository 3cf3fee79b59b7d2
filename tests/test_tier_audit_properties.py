"""A member's tier never changes without a line in its tier history.

A hypothesis state machine drives one engine through the public API (in memory, on SQLite
and on PostgreSQL) with time only moving forward:

- enrolments, one at a time (``enrol``: a refusal raises ConfigurationError) or several
  (``enrol_many(..., refused=[])``: a refusal is listed), with or without a starting tier,
  on the ladder or not, for new members, members with events or a tier, again with the
  same or another tier;
- retail purchases, some large enough for silver, gold or diamond at once;
- the jobs (``run_jobs``), after steps of up to 400 days, so anniversary reviews and the
  ends of manual tiers fall due;
- manual tiers (``assign_tier``), some refused (a tier not on the ladder, no reason, an
  end not after now);
- merges, some refused (into itself, no reason, an id already merged away).

After every step, for every member id the machine uses:

- ``member(id, now)`` answers for the survivor if the id was merged away, and then with
  the survivor's tier and tier history;
- every line's reason is enrolment, upgrade, review, manual, manual-expired or merge, and
  the lines are oldest first;
- the member's own lines chain from the lowest tier (each from_tier is the previous
  to_tier) and the last one's to_tier is the member's tier (the lowest tier if there is
  none). A survivor's history also lists the lines of the ids merged into it
  (``Engine.tier_history``: "including those of ids merged into it"); those are the
  absorbed ids' histories as they were at the merge, plus the absorbed id's own "merged
  into" line (from its tier to the same; the store writes one, the in-memory engine
  does not), and the machine knows them: they must all still be there, and they are set
  aside before the chain is checked. (The whole list cannot chain: a gold survivor that
  absorbed a silver id has the silver id's lines, and on a database its last line is the
  silver id's "merged into" line.)
- a history only grows, and each step adds only the lines it can explain: an accepted
  enrolment its ``enrolment`` line, ``assign_tier`` its ``manual`` line, an upgrade a line
  naming its event (and only if the receipt shows the tier change), the jobs as many
  ``review``/``manual-expired`` lines as their report has moves, a merge at most the
  survivor's line up to the absorbed id's higher tier; a refused enrolment, assignment or
  merge changes nothing;
- ``check_ledger()`` is clean (on a database).

Merges, manual tiers and enrolments run the reviews due by their time first (so a tier
they give is never judged by a review dated before it); a starting tier is only for a
member who has no tier history and no events; a merged-away id's profile is refused. Each
of the situations where this once went wrong has a small regression test at the end of
this module, run on memory and on a database.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlmodel import SQLModel

from loyaltycore import Engine
from loyaltycore.errors import ConfigurationError
from plugins import support

LADDER = ("member", "silver", "gold", "diamond")  # rulesets/group.yaml
LOWEST = LADDER[0]
RANK = {tier: i for i, tier in enumerate(LADDER)}
NOT_ON_LADDER = ("platinum", "Gold", "bronze")
REASONS = frozenset({"enrolment", "upgrade", "review", "manual", "manual-expired", "merge"})
MEMBERS = ("M1", "M2", "M3", "M4")
START = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, the group's timezone
# Silver at 20,000 CNY of spend in the window, gold at 80,000, diamond at 200,000.
AMOUNTS = ("120", "800", "2500", "6000", "12000", "20000", "60000", "90000", "250000")

MEMORY, SQLITE, POSTGRESQL = "memory", "sqlite", "postgresql"



class Row(NamedTuple):
    """One line of ``Engine.tier_history`` (hashable, so histories compare as multisets)."""

    at: str
    member: str  # the id the line was recorded for (an absorbed id's, in a survivor's)
    from_tier: str
    to_tier: str
    reason: str
    event_id: str | None
    detail: str
    valid_until: str | None

    @classmethod
    def of(cls, line: dict[str, Any]) -> Row:
        return cls(**line)

    @property
    def when(self) -> datetime:
        return datetime.fromisoformat(self.at)

    @property
    def move(self) -> tuple[str, str, str]:
        return self.from_tier, self.to_tier, self.reason


@dataclass(frozen=True)
class Seen:
    """What the API says about one member id."""

    id: str  # the id ``member`` answered for (the survivor of a merged-away id)
    tier: str
    birth_month: int | None
    enrolled_on: date | None
    history: tuple[Row, ...]


@dataclass
class Expect:
    """What a step may change."""

    reasons: frozenset[str] = frozenset()  # reasons of the lines it may add
    moves: dict[str, list[tuple[str, str, str]]] | None = None  # exactly these, per member
    unchanged: frozenset[str] = frozenset()  # ids that must look exactly as before
    merge: tuple[str, str, str] | None = None  # (survivor, absorbed, absorbed's tier)


def own_line(history: tuple[Row, ...], inherited: Counter) -> tuple[list[Row], Counter]:
    """The member's own lines (``history`` without those ``inherited`` from merged ids),
    and the inherited lines that are missing."""
    left = Counter(inherited)
    own = []
    for row in history:
        if left[row] > 0:
            left[row] -= 1
        else:
            own.append(row)
    return own, +left


def audit(tier: str, history: tuple[Row, ...], inherited: Counter, *,
          whole_in_order: bool = True) -> list[str]:
    """Why ``history`` does not explain ``tier`` (nothing if it does)."""
    problems = [f"reason {r.reason!r} in {r}" for r in history if r.reason not in REASONS]
    own, missing = own_line(history, inherited)
    if missing:
        problems.append(f"lines of merged ids are gone: {sorted(missing)}")
    ordered = history if whole_in_order else own
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.when < a.when:
            problems.append(f"not oldest first: {a.move} at {a.at}, then {b.move} at {b.at}")
    if own and own[0].from_tier != LOWEST:
        problems.append(f"the first own line starts from {own[0].from_tier}")
    for a, b in zip(own, own[1:], strict=False):
        if b.from_tier != a.to_tier:
            problems.append(f"chain broken: {a.move} at {a.at}, then {b.move} at {b.at}")
    last = own[-1].to_tier if own else LOWEST
    if last != tier:
        problems.append(f"tier {tier}, but the history ends on {last}")
    return problems


def purchase(event_id: str, member: str, amount: str, at: datetime) -> dict[str, Any]:
    return {"id": event_id, "line": "retail", "type": "purchase", "member": member,
            "occurred_at": at.isoformat(), "amount": amount, "currency": "CNY",
            "data": {"store": "SH-01", "category": "fashion"}}


def open_engine(db: str | None = None) -> Engine:
    return Engine.open([support.RULESETS], plugins=[support.RETAIL], load_entrypoints=False,
                       db=db)


_MEMORY: list[Engine] = []


def memory_engine() -> Engine:
    """A new in-memory engine: a fork of one opened once (compiling the rulesets for every
    example would be most of an example's time, and of shrinking's)."""
    if not _MEMORY:
        _MEMORY.append(open_engine())
    return _MEMORY[0].fork()


def emptied(engine: Engine) -> Engine:
    """The engine's database without any rows (its schema stays), as a new one would be."""
    assert engine.store is not None
    with engine.store.transaction() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            conn.execute(table.delete())
    return engine


# mostly on the ladder; sometimes not (refused)
tiers = st.sampled_from(LADDER * 4 + NOT_ON_LADDER)
reasons = st.sampled_from(["same person, CRM ticket 42"] * 10 + [" "])
profiles = st.lists(st.tuples(st.sampled_from(MEMBERS), st.one_of(st.none(), tiers),
                              st.one_of(st.none(), st.integers(1, 12)),
                              st.booleans()),
                    min_size=1, max_size=3)


class TierAudit(RuleBasedStateMachine):
    def __init__(self, db: str | None = None, backend: str = MEMORY) -> None:
        super().__init__()
        self.backend = backend
        self.engine = memory_engine() if db is None else emptied(open_engine(db))
        self.now = START
        self.n = 0
        self.alias: dict[str, str] = {}  # merged-away id -> survivor
        self.seen_by_engine: set[str] = set()  # ids the engine has a member for
        self.has_events: set[str] = set()  # members with an accepted event
        self.reviewed: set[str] = set()  # members whose reviews have started
        self.manual: dict[str, datetime] = {}  # member -> end of its manual tier
        self.inherited: dict[str, Counter] = {m: Counter() for m in MEMBERS}
        self.seen = self._observe()

    def teardown(self) -> None:
        self.engine.close()

    # --- helpers ---------------------------------------------------------------------

    def resolve(self, member: str) -> str:
        return self.alias.get(member, member)

    def live(self) -> list[str]:
        return [m for m in MEMBERS if m not in self.alias]

    def _id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n:03d}"

    def _observe(self) -> dict[str, Seen]:
        out = {}
        for mid in MEMBERS:
            snap = self.engine.member(mid, self.now)
            history = tuple(Row.of(line) for line in self.engine.tier_history(mid))
            out[mid] = Seen(snap.id, snap.tier, snap.birth_month, snap.enrolled_on, history)
        return out

    def _settle(self, expect: Expect) -> dict[str, list[Row]]:
        """Read every member again, check what the step changed against ``expect``, and
        return the lines it added per live member."""
        before, after = self.seen, self._observe()
        for mid in expect.unchanged:
            assert after[mid] == before[mid], (mid, before[mid], after[mid])
        added: dict[str, list[Row]] = {}
        for mid in self.live():
            old = Counter(before[mid].history)
            if expect.merge is not None and expect.merge[0] == mid:
                old += Counter(before[expect.merge[1]].history)
            now = Counter(after[mid].history)
            assert not old - now, f"{mid}: lines vanished: {sorted(old - now)}"
            extra, new = now - old, []
            for r in after[mid].history:
                if extra[r] > 0:
                    extra[r] -= 1
                    new.append(r)
            if expect.merge is not None and expect.merge[0] == mid:
                # the store also closes the absorbed id's line ("merged into ...")
                closing = [r for r in new if r.reason == "merge"
                           and r.from_tier == r.to_tier == expect.merge[2]]
                if closing:
                    new.remove(closing[0])
                    self.inherited[mid][closing[0]] += 1
            for r in new:
                assert r.reason in expect.reasons, (mid, r, expect.reasons)
            if expect.moves is not None:
                assert sorted(r.move for r in new) == sorted(expect.moves.get(mid, [])), \
                    (mid, new, expect.moves.get(mid))
            if new:
                added[mid] = new
        self.seen = after
        return added

    def _jobs(self, as_of: datetime) -> int:
        """``run_jobs(as_of)``: adds only review lines, as many as the report has moves,
        and a second run finds nothing due."""
        self.now = as_of
        report = self.engine.run_jobs(as_of)
        added = self._settle(Expect(reasons=frozenset({"review", "manual-expired"})))
        assert sum(len(rows) for rows in added.values()) == len(report.moves), \
            (added, report.moves)
        again = self.engine.run_jobs(as_of)
        assert again.moves == [], again.moves
        self.manual = {m: until for m, until in self.manual.items() if until > as_of}
        return len(report.moves)

    def _reviews_up_to_now(self, members: list[str]) -> None:
        """Run the reviews due by now of those ``members`` whose reviews have started: an
        event does that first, and this one (a redemption far beyond any balance) is then
        rejected, changing nothing else."""
        started = [m for m in members if m in self.reviewed]
        for mid in started:
            receipt = self.engine.redeem(mid, 10**8, line="retail", event_id=self._id("x"),
                                         at=self.now)
            assert not receipt.accepted, receipt
        if started:
            self._settle(Expect(reasons=frozenset({"review", "manual-expired"})))

    def _advance(self, to: datetime) -> None:
        assert to >= self.now
        self.manual = {m: until for m, until in self.manual.items() if until > to}
        self.now = to

    # --- rules -----------------------------------------------------------------------

    @rule(batch=profiles, many=st.booleans())
    def enrol(self, batch: list[tuple[str, str | None, int | None, bool]], many: bool) -> None:
        """Enrol profiles; a starting tier is for a member still on the lowest tier without
        events, and a tier not on the ladder is refused."""
        if not batch:
            return
        if not many:
            batch = batch[:1]
        if any(dated or tier is not None for _, tier, _, dated in batch):
            # An enrolment line is dated at midnight UTC on the enrolment date (without
            # one, at the wall clock's now, which is not the machine's time: so a starting
            # tier always comes with a date). Time moves on to the next midnight.
            nxt = datetime.combine(self.now.date() + timedelta(days=1), time(0), UTC)
            self._advance(nxt)
        on = self.now.date()
        sent = [{"id": mid, "tier": tier, "birth_month": month,
                 "enrolled_on": on if dated or tier is not None else None}
                for mid, tier, month, dated in batch]
        # what the engine should do, profile after profile
        tiers = {m: self.seen[m].tier for m in MEMBERS}
        moves: dict[str, list[tuple[str, str, str]]] = {}
        accepted, refused, applied = 0, [], {}
        in_order: list[dict] = []  # the accepted profiles, in the order sent
        known = {m: (self.seen[m].birth_month, self.seen[m].enrolled_on) for m in MEMBERS}
        for p in sent:
            mid, tier = p["id"], p["tier"]
            here = tiers[mid]
            own, _ = own_line(self.seen[mid].history, self.inherited[mid])
            if mid in self.alias or (tier is not None and tier not in RANK):
                refused.append((mid, tier))
            elif tier is None or tier == here:
                accepted += 1
                applied[mid] = p
                in_order.append(p)
            elif self.resolve(mid) in self.has_events or here != LOWEST or own \
                    or mid in moves:
                refused.append((mid, tier))
            else:
                accepted += 1
                applied[mid] = p
                in_order.append(p)
                moves.setdefault(mid, []).append((here, tier, "enrolment"))
                tiers[mid] = tier
        # a merged-away id answers for its survivor, which its profile does not change
        changed = {m for m in applied if m not in self.alias}
        untouched = frozenset(m for m in MEMBERS if self.resolve(m) not in changed)
        expect = Expect(reasons=frozenset({"enrolment"}), moves=moves, unchanged=untouched)
        if many:
            got: list = []
            done = self.engine.enrol_many([{k: v for k, v in p.items() if v is not None}
                                           for p in sent], refused=got)
            assert done == accepted, (done, accepted, got)
            assert sorted(((p.id, p.tier) for p, _ in got), key=repr) \
                == sorted(refused, key=repr), got
            assert all(reason for _, reason in got)
        elif refused:
            with pytest.raises(ConfigurationError):
                self.engine.enrol({k: v for k, v in sent[0].items() if v is not None})
        else:
            self.engine.enrol({k: v for k, v in sent[0].items() if v is not None})
        event(f"enrol: {accepted} accepted, {len(refused)} refused")
        self.seen_by_engine |= {self.resolve(m) for m in applied}
        self._settle(expect)
        # a birth month a profile leaves out keeps what was known, and so does the
        # enrolment date of a member with events
        for p in in_order:
            month, on = known[p["id"]]
            keep_on = p["enrolled_on"] is None and self.resolve(p["id"]) in self.has_events
            known[p["id"]] = (p["birth_month"] if p["birth_month"] is not None else month,
                              on if keep_on else p["enrolled_on"])
        for mid in applied:
            if mid not in self.alias:
                seen = self.seen[mid]
                assert (seen.birth_month, seen.enrolled_on) == known[mid], (mid, known[mid])

    @rule(member=st.sampled_from(MEMBERS), amount=st.sampled_from(AMOUNTS),
          hours=st.integers(0, 3000))
    def buy(self, member: str, amount: str, hours: int) -> None:
        """A retail purchase: reviews due by then, then maybe an upgrade, which names the
        event and is on the receipt."""
        self._advance(self.now + timedelta(hours=hours))
        eid = self._id("p")
        receipt = self.engine.process(purchase(eid, member, amount, self.now))
        mid = self.resolve(member)
        assert receipt.member == mid
        self.seen_by_engine.add(mid)
        self.reviewed.add(mid)
        if receipt.accepted:
            self.has_events.add(mid)
        event(f"purchase {receipt.status}"
              + (" with a tier change" if receipt.tier_after != receipt.tier_before else ""))
        added = self._settle(Expect(reasons=frozenset({"review", "manual-expired",
                                                       "upgrade"})))
        mine = [r for r in added.get(mid, []) if r.event_id == eid]
        if receipt.accepted and receipt.tier_after != receipt.tier_before:
            assert [r.move for r in mine] == [(receipt.tier_before, receipt.tier_after,
                                               "upgrade")], (mine, receipt)
            assert self.seen[mid].tier == receipt.tier_after
        else:
            assert mine == [], (mine, receipt)
        others = [r for rows in added.values() for r in rows if r.reason == "upgrade"]
        assert others == mine, others

    @rule(days=st.sampled_from([1, 30, 90, 200, 366, 400]))
    def jobs(self, days: int) -> None:
        self._advance(self.now + timedelta(days=days))
        moves = self._jobs(self.now)
        event("jobs with tier moves" if moves else "jobs without tier moves")

    @rule(member=st.sampled_from(MEMBERS),
          tier=tiers, reason=reasons,
          days=st.sampled_from([1, 45, 200, 500] * 3 + [0, -1]), hours=st.integers(0, 500))
    def assign(self, member: str, tier: str, reason: str, days: int, hours: int) -> None:
        """A manual tier with a reason and an end; refused without either, or for a tier
        not on the ladder."""
        self._advance(self.now + timedelta(hours=hours))
        mid = self.resolve(member)  # assign_tier of a merged-away id is its survivor's
        until = self.now + timedelta(days=days)
        if tier not in RANK or not reason.strip() or until <= self.now:
            with pytest.raises(ConfigurationError):
                self.engine.assign_tier(member, tier, reason=reason, until=until, at=self.now)
            event("assign_tier refused")
            self._settle(Expect(unchanged=frozenset(MEMBERS)))
            return
        here = self.seen[mid].tier
        self.engine.assign_tier(member, tier, reason=reason, until=until, at=self.now)
        event("assign_tier")
        self.seen_by_engine.add(mid)
        self.reviewed.add(mid)
        self.manual[mid] = until
        # the reviews due by now first (dated before it), then the manual line, last
        added = self._settle(Expect(
            reasons=frozenset({"manual", "review", "manual-expired"}),
            unchanged=frozenset(m for m in MEMBERS if self.resolve(m) != mid)))
        rows = added[mid]
        assert [r.reason for r in rows[:-1]] == [r.reason for r in rows[:-1]
                                                 if r.reason != "manual"], rows
        before = rows[-2].to_tier if len(rows) > 1 else here
        assert rows[-1].move == (before, tier, "manual"), (rows, here, tier)
        assert all(r.when <= rows[-1].when for r in rows), rows
        assert rows[-1].valid_until is not None, rows
        assert self.seen[mid].tier == tier, (member, mid, tier, self.seen[mid])

    @rule(survivor=st.sampled_from(MEMBERS), other=st.sampled_from([1, 2, 3] * 4 + [0]),
          reason=reasons, hours=st.integers(0, 500))
    def merge(self, survivor: str, other: int, reason: str, hours: int) -> None:
        """Two ids are one person: the higher tier wins, with a merge line if the survivor
        moves; refused into itself, without a reason, or for an id already merged."""
        absorbed = MEMBERS[(MEMBERS.index(survivor) + other) % len(MEMBERS)]
        into = self.resolve(survivor)
        refused = survivor == absorbed or not reason.strip() or absorbed in self.alias \
            or into == absorbed
        self._advance(self.now + timedelta(hours=hours))
        if refused:
            with pytest.raises(ConfigurationError):
                self.engine.merge(survivor, absorbed, reason=reason, at=self.now)
            event("merge refused: " + ("into itself" if survivor == absorbed else
                                       "no reason" if not reason.strip() else
                                       "already merged"))
            self._settle(Expect(unchanged=frozenset(MEMBERS)))
            return
        # The merge runs the reviews due by now itself; running them here first lets the
        # merge's own lines be told apart (tests below check the merge alone does it).
        self._reviews_up_to_now([into, absorbed])
        s_tier, a_tier = self.seen[into].tier, self.seen[absorbed].tier
        self.engine.merge(survivor, absorbed, reason=reason, at=self.now)
        event("merge, the survivor moves up" if RANK[a_tier] > RANK[s_tier] else "merge")
        moves = {into: [(s_tier, a_tier, "merge")]} if RANK[a_tier] > RANK[s_tier] else {}
        inherited = Counter(self.seen[absorbed].history)
        self.alias = {k: (into if v == absorbed else v) for k, v in self.alias.items()}
        self.alias[absorbed] = into
        self.inherited[into] += inherited
        self.inherited[absorbed] = Counter()
        for facts in (self.has_events, self.reviewed, self.seen_by_engine):
            if absorbed in facts or into in facts:
                facts.add(into)
        self.seen_by_engine.add(absorbed)
        self.manual.pop(absorbed, None)
        self._settle(Expect(reasons=frozenset({"merge"}), moves=moves,
                            merge=(into, absorbed, a_tier)))
        assert self.seen[into].tier == max(s_tier, a_tier, key=RANK.__getitem__), \
            (into, s_tier, absorbed, a_tier, self.seen[into])

    # --- the property ----------------------------------------------------------------

    @invariant()
    def every_tier_is_explained_by_its_history(self) -> None:
        whole = True
        for mid in MEMBERS:
            seen, live = self.seen[mid], self.resolve(mid)
            assert seen.id == live, (mid, seen.id, live)
            if mid != live:
                # a merged-away id answers for its survivor, history included
                assert (seen.tier, seen.history) == (self.seen[live].tier,
                                                     self.seen[live].history), mid
                continue
            problems = audit(seen.tier, seen.history, self.inherited[mid],
                             whole_in_order=whole)
            assert not problems, (mid, seen.tier, problems, seen.history)
            # each line says whose it is: the member's own are those recorded for it
            own, _ = own_line(seen.history, self.inherited[mid])
            assert own == [r for r in seen.history if r.member == mid], (mid, seen.history)

    @invariant()
    def ledger_is_clean(self) -> None:
        if self.engine.store is not None:
            report = self.engine.check_ledger()
            assert report.clean, report.problems


# A database example costs about a second, and shrinking one would take minutes: a failing
# run on a database prints its steps unshrunk (as tests/test_ledger_stateful.py does).
DB_SETTINGS = dict(deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
                   suppress_health_check=[HealthCheck.too_slow,
                                          HealthCheck.filter_too_much])
# The profile's budget (tests/conftest.py: ci 40, dev 150) scales the runs: under ``ci`` the
# module takes some 30 s.
BUDGET = settings.default.max_examples


def test_tier_history_explains_every_tier_in_memory():
    run_state_machine_as_test(TierAudit, settings=settings(
        max_examples=2 * BUDGET, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


def test_tier_history_explains_every_tier_on_a_database(db_url):
    backend = POSTGRESQL if db_url.startswith("postgresql") else SQLITE
    examples = max(8, BUDGET // 5) if backend == SQLITE else max(4, BUDGET // 10)
    run_state_machine_as_test(lambda: TierAudit(db_url, backend), settings=settings(
        max_examples=examples, stateful_step_count=20, **DB_SETTINGS))


# --- regressions: each once went wrong; one small reproduction each ---------------------------
# Each runs the same calls on an in-memory engine and on a database (SQLite, PostgreSQL) and
# lists what goes wrong where.


def at(day: str, hour: int = 0) -> datetime:
    return datetime.combine(date.fromisoformat(day), time(hour), UTC)


def history(engine: Engine, member: str) -> list[tuple[str, str, str]]:
    return [Row.of(line).move for line in engine.tier_history(member)]


def audit_of(engine: Engine, member: str, when: datetime) -> list[str]:
    """``audit`` of a member that never absorbed anyone."""
    rows = tuple(Row.of(line) for line in engine.tier_history(member))
    return audit(engine.member(member, when).tier, rows, Counter())


@pytest.fixture
def engines(db_url):
    """An in-memory engine and one on the database, to run the same calls on."""
    db = open_engine(db_url)
    yield {MEMORY: open_engine(), POSTGRESQL if db_url.startswith("postgresql") else SQLITE: db}
    db.close()


def problems_on(engines: dict[str, Engine], scenario) -> dict[str, list[str]]:
    out = {}
    for name, engine in engines.items():
        try:
            found = scenario(engine)
        except Exception as exc:  # an unexpected error is a finding too
            found = [f"{type(exc).__name__}: {exc}"]
        if found:
            out[name] = found
    return out


def test_a_manual_tier_ends_before_the_next_review_judges_the_member(engines):
    """Once (manual-end-judged-after-later-reviews): MemoryState.review judges the
    anniversaries after a manual tier's end before it ends the manual tier, so the
    review judges the manual tier and is written before the manual-expired line dated
    earlier"""
    def scenario(e: Engine) -> list[str]:
        e.enrol({"id": "M", "enrolled_on": "2026-02-01"})
        e.process(purchase("p1", "M", "100", at("2026-03-01", 2)))
        e.assign_tier("M", "gold", reason="VIP guest", until=at("2027-01-15"),
                      at=at("2026-03-02"))
        # the manual tier ends on 15 January, the anniversary review is on 1 February
        e.run_jobs(at("2027-03-01"))
        found = audit_of(e, "M", at("2027-03-01"))
        expected = [("member", "gold", "manual"), ("gold", "silver", "manual-expired"),
                    ("silver", "member", "review")]
        if history(e, "M") != expected:
            found.append(f"history {history(e, 'M')}, expected {expected}")
        return found

    found = problems_on(engines, scenario)
    assert not found, found


def test_a_merge_comes_after_the_reviews_due_before_it(engines):
    """Once (tier-set-before-due-reviews): Engine.merge (merges.merge_members) sets the
    survivor's tier without first running the reviews due by then; MemoryState.review
    later judges the review of 1 February against the tier the merge of 1 March gave,
    and dates it before the merge"""
    def scenario(e: Engine) -> list[str]:
        e.enrol({"id": "S", "enrolled_on": "2026-02-01"})
        e.process(purchase("p1", "S", "20000", at("2026-03-01", 2)))  # silver
        e.enrol({"id": "A", "tier": "gold", "enrolled_on": "2026-03-02"})
        # S's review of 2027-02-01 keeps silver (20,000 >= 15,000 in Feb 2026 - Jan 2027);
        # on 1 March the merge lifts S to A's gold, whose first review is a year later
        e.merge("S", "A", reason="same person", at=at("2027-03-01"))
        e.run_jobs(at("2027-03-02"))
        tier, moves = e.member("S", at("2027-03-02")).tier, history(e, "S")
        if tier != "gold" or ("gold", "silver", "review") in moves:
            return [f"S is {tier}, history {moves}"]
        return []

    found = problems_on(engines, scenario)
    assert not found, found


def test_a_starting_tier_is_not_reviewed_on_its_enrolment_day(engines):
    """Once (tier-set-before-due-reviews): Engine.enrol_many (MemoryState.enrol) sets a
    starting tier, and moves the review schedule to the new enrolment date, without
    first running the reviews due by then: for a member whose reviews had started,
    MemoryState.review judges the starting tier on its own enrolment date, dated before
    the enrolment line"""
    def scenario(e: Engine) -> list[str]:
        # a manual tier (here the lowest one) starts the member's reviews, then ends
        e.assign_tier("M", "member", reason="VIP guest", until=at("2026-01-06", 1),
                      at=at("2026-01-05", 1))
        e.run_jobs(at("2026-01-06", 1))
        # still on the lowest tier, without events, but with a tier history: a starting
        # tier is refused (the manual line and its end are history); if it were accepted,
        # it must not be lost to a review dated before it
        try:
            e.enrol({"id": "M", "tier": "silver", "enrolled_on": "2026-01-07"})
        except ConfigurationError as exc:
            assert "has a tier history" in str(exc), exc
            kept = "member"
        else:
            kept = "silver"
        e.run_jobs(at("2026-01-08", 1))
        found = audit_of(e, "M", at("2026-01-08", 1))
        if e.member("M", at("2026-01-08", 1)).tier != kept:
            found.append(f"{kept} lost the day after enrolment: {history(e, 'M')}")
        return found

    found = problems_on(engines, scenario)
    assert not found, found


def test_a_member_cannot_be_merged_into_itself_through_an_alias(engines):
    """Once (merge-into-itself-through-an-alias): Engine.merge checks survivor == absorbed
    before resolving the survivor: after merge(B, A), merge(A, B) merges B into itself
    (in memory its balance is zeroed; on a database a KeyError) instead of
    ConfigurationError"""
    def scenario(e: Engine) -> list[str]:
        e.process(purchase("p1", "B", "20000", at("2026-03-02", 2)))
        e.process(purchase("p2", "A", "500", at("2026-03-02", 3)))
        e.merge("B", "A", reason="same person", at=at("2026-03-03"))
        before = e.member("B", at("2026-03-04"))
        try:
            e.merge("A", "B", reason="same person again", at=at("2026-03-04"))
        except ConfigurationError:
            pass
        else:
            return ["merge(A, B) accepted, with A merged into B: B merged into itself"]
        after = e.member("B", at("2026-03-04"))
        return [] if after == before else [f"{before} became {after}"]

    found = problems_on(engines, scenario)
    assert not found, found


def test_a_starting_tier_for_a_merged_away_id_leaves_no_unexplained_line(engines):
    """Once (enrolment-of-a-merged-away-id): Engine.enrol_many / MemoryState.enrol do not
    resolve a merged-away id: a starting tier is set on the absorbed record and its
    enrolment line shows in the survivor's history, while no one's tier changes"""
    def scenario(e: Engine) -> list[str]:
        e.enrol({"id": "S", "enrolled_on": "2026-02-01"})
        e.enrol({"id": "A", "enrolled_on": "2026-02-01"})
        e.merge("S", "A", reason="same person", at=at("2026-02-02"))
        try:  # refused, or the survivor's starting tier: either way explained
            e.enrol({"id": "A", "tier": "gold", "enrolled_on": "2026-02-03"})
        except ConfigurationError:
            pass
        return audit_of(e, "S", at("2026-02-04"))

    found = problems_on(engines, scenario)
    assert not found, found


def test_a_manual_tier_for_a_merged_away_id_goes_to_the_survivor(engines):
    """Once (assign-tier-on-a-merged-away-id): Engine.assign_tier resolves the id with
    state.resolve, which on a database only knows the aliases of the current unit of
    work: the tier goes onto the absorbed record, its manual line into the survivor's
    history, and the survivor keeps its tier (in memory the survivor gets it)"""
    def scenario(e: Engine) -> list[str]:
        e.enrol({"id": "S", "enrolled_on": "2026-02-01"})
        e.enrol({"id": "A", "enrolled_on": "2026-02-01"})
        e.merge("S", "A", reason="same person", at=at("2026-02-02"))
        e.assign_tier("A", "silver", reason="VIP guest", until=at("2026-06-01"),
                      at=at("2026-02-03"))
        tier = e.member("S", at("2026-02-04")).tier
        return [] if tier == "silver" else [f"S is {tier}, history {history(e, 'S')}"]

    found = problems_on(engines, scenario)
    assert not found, found


def test_the_history_of_a_merged_away_id_is_its_survivors(engines):
    """Once (tier-history-of-a-merged-away-id): Engine.tier_history on a database reads
    store.tier_rows for the id as given (its own lines), where member(), statement() and
    the in-memory engine answer for the survivor"""
    def scenario(e: Engine) -> list[str]:
        e.enrol({"id": "S", "tier": "gold", "enrolled_on": "2026-02-01"})
        e.enrol({"id": "A", "tier": "silver", "enrolled_on": "2026-02-02"})
        e.merge("S", "A", reason="same person", at=at("2026-02-03"))
        mine, survivor = e.tier_history("A"), e.tier_history("S")
        return [] if mine == survivor else [f"A: {mine}", f"S: {survivor}"]

    found = problems_on(engines, scenario)
    assert not found, found


def test_the_jobs_do_not_review_a_merged_away_id(engines):
    """Once (jobs-review-merged-away-ids): Engine.run_jobs in memory runs the reviews of every
    member in the state, merged-away ones included (the store's due_members leaves them
    out): the absorbed record is downgraded, and that line ends the survivor's history"""
    def scenario(e: Engine) -> list[str]:
        e.process(purchase("p1", "A", "20000", at("2026-03-01", 2)))  # A silver
        e.process(purchase("p2", "S", "100", at("2026-03-02", 2)))
        e.merge("S", "A", reason="same person", at=at("2026-03-03"))  # S silver
        # A's anniversary (1 March) must not be judged any more; S's (2 March) keeps
        # silver on the merged 20,100 of spend
        report = e.run_jobs(at("2027-03-05"))
        found = [f"a review move {m}" for m in report.moves]
        found += [f"a review line {row}" for row in history(e, "S") if row[2] == "review"]
        tier = e.member("S", at("2027-03-05")).tier
        return found + ([] if tier == "silver" else [f"S is {tier}"])

    found = problems_on(engines, scenario)
    assert not found, found


def test_a_survivors_history_is_oldest_first(engines):
    """Once (history-not-oldest-first): Engine.tier_history in memory lists a survivor's lines
    in the order they were written, not by date: a review written late (dated at its
    anniversary) follows a later line of the merged id"""
    def scenario(e: Engine) -> list[str]:
        e.process(purchase("p1", "S", "20000", at("2026-03-01", 2)))  # silver
        e.assign_tier("A", "member", reason="VIP guest", until=at("2028-06-01"),
                      at=at("2028-03-05"))
        e.run_jobs(at("2028-03-06"))  # writes S's review of 2028-03-01: silver is lost
        e.merge("S", "A", reason="same person", at=at("2028-03-07"))
        rows = [Row.of(line) for line in e.tier_history("S")]
        return [f"{a.move} at {a.at} before {b.move} at {b.at}"
                for a, b in zip(rows, rows[1:], strict=False) if b.when < a.when]

    found = problems_on(engines, scenario)
    assert not found, found


def test_a_merge_of_ids_never_seen_is_not_a_key_error(engines):
    """Once (merge-of-an-unseen-id): Engine.merge in memory indexes state.members with ids it
    has never seen: KeyError (a database merges them)"""
    def scenario(e: Engine) -> list[str]:
        try:
            e.merge("S", "A", reason="same person", at=at("2026-02-02"))
        except ConfigurationError:
            pass
        return []

    found = problems_on(engines, scenario)
    assert not found, found
