"""A long randomized run of the four-line bench program through the engine.

Marked ``stress``: the suite runs it in a short form (``LOYALTY_STRESS_EVENTS``, default
3,000 events); a long run is ``LOYALTY_STRESS_EVENTS=200000 pytest -m stress``. It checks
what must hold over any stream: caps on every accepted receipt, member balances equal to
what the receipts say, dry-run equal to processing, and idempotent resubmission.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from loyaltycore import Engine
from loyaltycore.dryrun import dry_run
from loyaltycore.effects import EarnPoints, HoldPoints, ReversePoints

BENCH = Path(__file__).resolve().parent.parent / "bench"
EVENTS = int(os.environ.get("LOYALTY_STRESS_EVENTS", "3000"))


def _bench_module(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def program():
    lines = _bench_module("lines")
    synth = _bench_module("synth")
    members = max(50, EVENTS // 10)

    def open_engine() -> Engine:
        engine = Engine.open([BENCH / "rulesets"], plugins=lines.PLUGINS,
                             load_entrypoints=False, time_budget=2.0)
        for profile in synth.make_members(members):
            engine.enrol(profile)
        return engine

    return open_engine, synth.make_events(EVENTS, members=members)


@pytest.mark.stress
def test_long_stream_keeps_the_invariants(program):
    open_engine, raw = program
    engine = open_engine()
    baseline = engine.fork()
    receipts = engine.process_many(raw)
    assert len(receipts) == len(raw)
    accepted = [r for r in receipts if r.accepted]
    assert len(accepted) > len(raw) * 0.9

    policy = engine.rulebook.groups[0].policy
    net: dict[str, int] = defaultdict(int)
    for r in accepted:
        caps = policy.lines[r.line]
        spend_points = sum(e.points for e in r.effects if isinstance(e, EarnPoints | HoldPoints)
                           and e.basis != "bonus")
        bonus = sum(e.points for e in r.effects if isinstance(e, EarnPoints | HoldPoints)
                    and e.basis == "bonus")
        amount = r.amount or Decimal(0)
        assert spend_points <= amount * policy.base_rate * caps.max_multiplier
        assert bonus <= caps.max_bonus_points
        if amount > 0:
            assert (spend_points + bonus) * policy.point_value <= caps.max_cost_ratio * amount
        for e in r.effects:
            if isinstance(e, EarnPoints | HoldPoints):
                net[r.member] += e.points
            elif isinstance(e, ReversePoints):
                net[r.member] -= e.points
    for member_id, m in engine.state.members.items():
        assert m.available + m.pending == net.get(member_id, 0), member_id

    # The same stream as a dry-run on the untouched engine gives the same receipts.
    parsed = [baseline.parse_event(e) for e in raw]
    result = dry_run(baseline, list(enumerate(parsed, 1)))
    assert [o.receipt for o in result.outcomes] == receipts
    assert baseline.state.members.keys() == open_engine().state.members.keys()

    # Sending everything again changes nothing and returns the original receipts.
    balances = {k: (m.available, m.pending) for k, m in engine.state.members.items()}
    assert engine.process_many(raw) == receipts
    assert {k: (m.available, m.pending) for k, m in engine.state.members.items()} == balances
