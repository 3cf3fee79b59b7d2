"""A hypothesis state machine drives the durable ledger and the in-memory engine side by side.

Rules: retail purchases, arcade plays, refunds (partial, full, too large), redemptions at
either line (many overdraw), a batch through ``process_many``, the time-driven jobs,
resubmissions of earlier events and conflicting resubmissions (same id, other payload).
Time only moves forward (events come at ``now``; the jobs move ``now`` on by days).

Invariants after every step:
- ``check_ledger`` is clean (every entry balances, balances = postings = live lots, per
  line issued = available + pending + redeemed + expired + reversed);
- no member's available balance is below 0 unless members owe refund debt;
- the database engine and the memory engine (``Engine.open`` without ``db``, what a
  dry-run runs on) agree on every receipt, every member's balances and tier, and every
  member's statement.

The database side is two engines on the same database, taking turns when the machine
says so (``switch_writer``), as two processes of a till system would: each keeps the
members it wrote in memory between transactions, so each must notice what the other
wrote since (``members.version``) and load those members afresh.

On SQLite under two group policies (rolling expiry with negative balances; inactivity
expiry with refund shortfalls), and a bounded run on PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from loyaltycore.engine import Engine
from loyaltycore.errors import IdempotencyConflict
from loyaltycore.plugin import LineSpec, hookimpl
from plugins import arcade, support

LEDGER = support.TEST_RULESETS / "ledger"
PG_URL = os.environ.get("LOYALTY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
SHANGHAI = timezone(timedelta(hours=8))
START = datetime(2026, 1, 5, 9, 0, tzinfo=SHANGHAI)
MEMBERS = ("S1", "S2", "S3")


class QuietArcade:
    """The test arcade line (its payloads and rulesets) without the plugin's streak hook,
    which reads earlier days' counters and so differs between the memory engine and the
    database (see the counters test at the end of this file)."""

    __name__ = "quiet_arcade"

    @hookimpl
    def loyalty_lines(self):
        return [LineSpec(name="arcade", description="Test arcade without streaks",
                         event_types={"play": arcade.Play, "refund": arcade.ArcadeRefund})]


def open_engine(db: str | None, policy: str, *, streaks: bool = False) -> Engine:
    line_plugin = support.ARCADE if streaks else QuietArcade()
    # The retail rules come with the retail plugin.
    return Engine.open([LEDGER / policy, support.ARCADE_RULES],
                       plugins=[support.RETAIL, line_plugin],
                       load_entrypoints=False, db=db, time_budget=5.0)


def comparable(receipt: Any) -> dict:
    """The receipt as JSON: what a database gives back must match it exactly."""
    return receipt.model_dump(mode="json")


class LedgerMachine(RuleBasedStateMachine):
    policy = "rolling"
    backend = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.tmp: str | None = None
        self.drop = None
        if self.backend == "sqlite":
            self.tmp = tempfile.mkdtemp(prefix="ledger-sm-")
            url = f"sqlite:///{self.tmp}/loyalty.db"
        else:
            url, self.drop = support.pg_schema(PG_URL)
        self.dbs = [open_engine(url, self.policy), open_engine(url, self.policy)]
        self.db = self.dbs[0]
        self.mem = open_engine(None, self.policy)
        self.now = START
        self.n = 0
        self.sent: list[dict] = []  # every event sent, as sent
        self.receipts: dict[tuple[str, str], dict] = {}  # first answer per (member, id)
        self.purchases: list[dict] = []  # accepted purchases and plays (refundable)
        self.redemptions: list[dict] = []  # accepted redemptions (cancellable)
        self.holds: list[dict] = []  # accepted holds at a till (to capture or release)

    def teardown(self) -> None:
        for db in self.dbs:
            db.close()
        if self.drop is not None:
            self.drop()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- helpers ---------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n:03d}"

    def _at(self, hours: int) -> str:
        self.now += timedelta(hours=hours)
        return self.now.isoformat()

    def _send(self, raws: list[dict], *, many: bool = False) -> list:
        if many:
            got = self.db.process_many(raws, batch_size=2)
        else:
            got = [self.db.process(raw) for raw in raws]
        mine = self.mem.process_many(raws)
        for raw, r_db, r_mem in zip(raws, got, mine, strict=True):
            assert comparable(r_db) == comparable(r_mem), raw
            key = (raw["member"], raw["id"])
            if key not in self.receipts:
                self.receipts[key] = comparable(r_db)
                self.sent.append(raw)
                if r_db.accepted and raw["type"] in ("purchase", "play"):
                    self.purchases.append(raw)
                if r_db.accepted and raw["type"] in ("redeem", "capture_reservation"):
                    self.redemptions.append(raw)
                if r_db.accepted and raw["type"] == "reserve_points":
                    self.holds.append(raw)
        return got

    # --- rules -----------------------------------------------------------------------

    @rule()
    def switch_writer(self) -> None:
        self.db = self.dbs[1] if self.db is self.dbs[0] else self.dbs[0]

    @initialize(member=st.sampled_from(MEMBERS), amount=st.sampled_from(["300", "1000"]))
    def first_purchase(self, member: str, amount: str) -> None:
        ev = support.Events(member=member)
        self._send([ev.purchase(amount, id=self._id("p"), at=self._at(0))])

    @rule(member=st.sampled_from(MEMBERS),
          amount=st.sampled_from(["35", "99.90", "120", "480", "1000", "2500.50"]),
          category=st.sampled_from(["fashion", "beauty"]), hours=st.integers(0, 240))
    def purchase(self, member: str, amount: str, category: str, hours: int) -> None:
        ev = support.Events(member=member)
        self._send([ev.purchase(amount, category=category, id=self._id("p"),
                                at=self._at(hours))])

    @rule(member=st.sampled_from(MEMBERS), amount=st.sampled_from(["20", "60", "150"]),
          tokens=st.sampled_from([10, 60]), hours=st.integers(0, 48))
    def play(self, member: str, amount: str, tokens: int, hours: int) -> None:
        ev = support.Events(member=member)
        self._send([ev.play(amount, tokens, id=self._id("a"), at=self._at(hours))])

    @precondition(lambda self: self.purchases)
    @rule(pick=st.integers(0, 10_000), share=st.sampled_from(["0.1", "0.5", "1", "1.5"]),
          hours=st.integers(0, 120))
    def refund(self, pick: int, share: str, hours: int) -> None:
        original = self.purchases[pick % len(self.purchases)]
        amount = str(round(float(original["amount"]) * float(share), 2))
        ev = support.Events(member=original["member"])
        if original["line"] == "retail":
            raw = ev.refund(original["id"], amount, id=self._id("f"), at=self._at(hours))
        else:
            raw = ev.arcade_refund(original["id"], amount, id=self._id("f"),
                                   at=self._at(hours))
        self._send([raw])

    @rule(member=st.sampled_from(MEMBERS), points=st.sampled_from([50, 100, 300, 1000, 5000]),
          line=st.sampled_from(["retail", "arcade"]), hours=st.integers(0, 240))
    def redeem(self, member: str, points: int, line: str, hours: int) -> None:
        ev = support.Events(member=member)
        self._send([ev.make(line=line, type="redeem", id=self._id("x"), at=self._at(hours),
                            points=points, reference="till")])

    @precondition(lambda self: self.redemptions)
    @rule(pick=st.integers(0, 10_000), points=st.sampled_from([None, 50, 100, 400]),
          other_line=st.booleans(), hours=st.integers(0, 240))
    def cancel_redemption(self, pick: int, points: int | None, other_line: bool,
                          hours: int) -> None:
        """A whole or partial cancellation (sometimes more than is left, or from the wrong
        line: rejected alike on both), possibly after the spent points' expiry."""
        original = self.redemptions[pick % len(self.redemptions)]
        line = original["line"]
        if other_line:
            line = "arcade" if line == "retail" else "retail"
        data = {"related_event": original["id"]}
        if points is not None:
            data["points"] = points
        ev = support.Events(member=original["member"])
        got = self._send([ev.make(line=line, type="cancel_redemption", id=self._id("c"),
                                  at=self._at(hours), **data)])[0]
        event(f"cancel_redemption {'accepted' if got.accepted else 'rejected'}")

    @rule(member=st.sampled_from(MEMBERS), points=st.sampled_from([50, 300, 1000, 5000]),
          line=st.sampled_from(["retail", "arcade"]), minutes=st.sampled_from([None, 90, 3000]),
          hours=st.integers(0, 48))
    def reserve(self, member: str, points: int, line: str, minutes: int | None,
                hours: int) -> None:
        """A hold at a till (sometimes too large, or longer than the policy allows)."""
        ev = support.Events(member=member)
        data = {"points": points, "reference": "till"}
        if minutes is not None:
            data["minutes"] = minutes
        got = self._send([ev.make(line=line, type="reserve_points", id=self._id("h"),
                                  at=self._at(hours), **data)])[0]
        event(f"reserve_points {'accepted' if got.accepted else 'rejected'}")

    @precondition(lambda self: self.holds)
    @rule(pick=st.integers(0, 10_000), capture=st.booleans(),
          points=st.sampled_from([None, 50, 200, 600]), other_line=st.booleans(),
          minutes=st.sampled_from([0, 20, 45, 200]))
    def settle(self, pick: int, capture: bool, points: int | None, other_line: bool,
               minutes: int) -> None:
        """Capture (all or part, sometimes more than held) or release a hold, maybe from the
        wrong line, maybe after it lapsed or was settled: rejected alike on both."""
        original = self.holds[pick % len(self.holds)]
        line = original["line"]
        if other_line:
            line = "arcade" if line == "retail" else "retail"
        data: dict = {"related_event": original["id"]}
        if capture and points is not None:
            data["points"] = points
        self.now += timedelta(minutes=minutes)
        ev = support.Events(member=original["member"])
        kind = "capture_reservation" if capture else "release_reservation"
        got = self._send([ev.make(line=line, type=kind, id=self._id("k"),
                                  at=self.now.isoformat(), **data)])[0]
        event(f"{kind} {'accepted' if got.accepted else 'rejected'}")

    @rule(members=st.lists(st.sampled_from(MEMBERS), min_size=2, max_size=4),
          points=st.sampled_from([100, 400]))
    def batch(self, members: list[str], points: int) -> None:
        """Several members' events in one transaction: each earns, then spends."""
        raws = []
        for member in members:
            ev = support.Events(member=member)
            raws.append(ev.play("80", id=self._id("a"), at=self._at(1)))
            raws.append(ev.make(line="arcade", type="redeem", id=self._id("x"),
                                at=self._at(0), points=points))
        self._send(raws, many=True)

    @rule(days=st.integers(1, 120))
    def jobs(self, days: int) -> None:
        self.now += timedelta(days=days)
        db, mem = self.db.run_jobs(self.now), self.mem.run_jobs(self.now)
        assert (db.vested, db.expired, db.lapsed, db.released) == \
            (mem.vested, mem.expired, mem.lapsed, mem.released)
        assert sorted(db.moves, key=repr) == sorted(mem.moves, key=repr)
        again = self.db.run_jobs(self.now)
        assert (again.members, again.vested, again.expired, again.moves) == (0, 0, 0, [])

    @precondition(lambda self: self.sent)
    @rule(pick=st.integers(0, 10_000), many=st.booleans())
    def resubmit(self, pick: int, many: bool) -> None:
        raw = self.sent[pick % len(self.sent)]
        before = self.db.check_ledger().entries
        for engine in (self.db, self.mem):
            got = engine.process_many([raw])[0] if many else engine.process(raw)
            assert comparable(got) == self.receipts[(raw["member"], raw["id"])]
        assert self.db.check_ledger().entries == before

    @precondition(lambda self: self.sent)
    @rule(pick=st.integers(0, 10_000))
    def conflict(self, pick: int) -> None:
        raw = dict(self.sent[pick % len(self.sent)])
        if "amount" in raw:
            raw["amount"] = str(float(raw["amount"]) + 1)
        elif raw["type"] in ("cancel_redemption", "release_reservation"):
            raw["data"] = {**raw["data"], "reason": "another payload"}
        elif raw["type"] == "capture_reservation":
            raw["data"] = {**raw["data"], "reference": "another payload"}
        else:
            raw["data"] = {**raw["data"], "points": raw["data"]["points"] + 1}
        before = self.db.check_ledger().as_dict()
        with pytest.raises(IdempotencyConflict):
            self.db.process(raw)
        for engine in (self.db, self.mem):
            got = engine.process_many([raw])[0]
            assert got.status == "rejected"
            assert [v.invariant for v in got.violations] == ["idempotency"]
        assert self.db.check_ledger().as_dict() == before

    # --- invariants ------------------------------------------------------------------

    @invariant()
    def ledger_is_clean_and_agrees_with_memory(self) -> None:
        report = self.db.check_ledger()
        assert report.clean, report.problems
        for member in MEMBERS:
            db = self.db.member(member, at=self.now)
            mem = self.mem.member(member, at=self.now)
            assert (db.available, db.pending, db.reserved, db.tier) == \
                (mem.available, mem.pending, mem.reserved, mem.tier), member
            assert db.pending >= 0 and db.reserved >= 0
            if db.available < 0:
                assert self.policy_allows_debt and report.debt > 0, member
            lines = [(ln.kind, ln.at, ln.available, ln.pending, ln.reserved, ln.memo)
                     for ln in self.db.statement(member).lines]
            assert lines == [(ln.kind, ln.at, ln.available, ln.pending, ln.reserved, ln.memo)
                             for ln in self.mem.statement(member).lines], member
        if not self.policy_allows_debt:
            assert report.debt == 0
        for b in report.lines.values():
            assert b.issued == b.available + b.pending + b.reserved + b.redeemed_from + \
                b.expired + b.reversed

    @property
    def policy_allows_debt(self) -> bool:
        return not self.policy.endswith("shortfall")


# Every example builds a database, so shrinking a failure would take minutes: a failing
# run prints its steps unshrunk instead.
SETTINGS = dict(deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


class RollingOnSqlite(LedgerMachine):
    policy, backend = "rolling", "sqlite"


class InactivityShortfallOnSqlite(LedgerMachine):
    policy, backend = "inactivity_shortfall", "sqlite"


class RollingOnPostgres(LedgerMachine):
    policy, backend = "rolling", "postgresql"


TestRollingOnSqlite = RollingOnSqlite.TestCase
TestRollingOnSqlite.settings = settings(max_examples=10, stateful_step_count=25, **SETTINGS)
TestShortfallOnSqlite = InactivityShortfallOnSqlite.TestCase
TestShortfallOnSqlite.settings = settings(max_examples=6, stateful_step_count=25, **SETTINGS)
TestRollingOnPostgres = RollingOnPostgres.TestCase
TestRollingOnPostgres.settings = settings(max_examples=3, stateful_step_count=15, **SETTINGS)


def test_a_plugin_sees_the_same_counters_on_the_database_as_in_a_dry_run(db_url):
    ev = support.Events()
    raws = [ev.play("20", id="a1", at="2026-01-05"), ev.play("20", id="a2", at="2026-01-06")]
    # in memory: a1 20 + 5 (day's first play); a2 20 + 5 + 20 (a 1-day streak)
    memory = open_engine(None, "plain", streaks=True)
    assert [memory.process(raw).points for raw in raws] == [25, 45]
    db = open_engine(db_url, "plain", streaks=True)
    try:
        assert [db.process(raw).points for raw in raws] == [25, 45]
    finally:
        db.close()
