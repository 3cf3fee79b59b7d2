"""The fast decide path agrees with the rule-by-rule one.

Without ``explain``, deciding runs each ``(line, type)`` ruleset through one fused
function (sandbox.compile_program: conditions, values and effects); with ``explain`` it
runs rule by rule, recording why rules did not fire. Both must propose exactly the same
effects, counters and violations; these tests hold them to it.
"""

from __future__ import annotations

import importlib.util
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from loyaltycore import Engine
from loyaltycore.effects import Trace, trusted
from loyaltycore.sandbox import (
    Field,
    Namespace,
    compile_expression,
    compile_program,
    compile_selector,
)

BENCH = Path(__file__).resolve().parent.parent / "bench"

SOURCES = ("event", "member")
NS = Namespace(sources=SOURCES, names={
    "event.amount": Field("event", "amount"), "event.channel": Field("event", "channel"),
    "member.tier": Field("member", "tier")})


def cond(text: str):
    return compile_expression(text, NS)


def test_selector_first_group_stops_at_the_first_condition_that_holds():
    select = compile_selector([("first", [(cond("event.amount > 100"), "a"),
                                          (cond("event.amount > 10"), "b"),
                                          (None, "c")])], SOURCES)
    assert select({"amount": 500}, {}) == ["a"]
    assert select({"amount": 50}, {}) == ["b"]
    assert select({"amount": 5}, {}) == ["c"]
    # A condition after the one that held is never evaluated (here it would fail).
    select = compile_selector([("first", [(cond("event.amount > 1"), "a"),
                                          (cond("event.amount / 0 > 1"), "b")])], SOURCES)
    assert select({"amount": 5}, {}) == ["a"]


def test_selector_all_group_keeps_order_and_unconditional_items():
    select = compile_selector([
        ("all", [(cond("event.channel == 'app'"), 1), (None, 2),
                 (cond("member.tier == 'gold' and event.amount >= 1.5"), 3)]),
        ("all", [(cond("event.amount * 2 >= 3"), 4)]),
    ], SOURCES)
    assert select({"amount": Decimal("1.5"), "channel": "app"}, {"tier": "gold"}) == [1, 2, 3, 4]
    assert select({"amount": Decimal("1"), "channel": "web"}, {"tier": "gold"}) == [2]


def test_selector_agrees_with_each_expression_and_raises_what_it_raises():
    texts = ["event.amount > 100", "event.channel in ('app', 'web')", "1.1 * event.amount > 5",
             "member.tier == 'gold' or event.amount // 3 == 1"]
    exprs = [cond(t) for t in texts]
    select = compile_selector([("all", [(e, i) for i, e in enumerate(exprs)])], SOURCES)
    for amount in (Decimal(0), Decimal("4.6"), Decimal(3), 101, Decimal("1e3")):
        for channel in ("app", "store"):
            for tier in ("gold", "member"):
                scope = ({"amount": amount, "channel": channel}, {"tier": tier})
                assert select(*scope) == [i for i, e in enumerate(exprs) if e.fn(*scope)]
    broken = compile_selector([("all", [(cond("event.amount / 0 > 1"), 0)])], SOURCES)
    with pytest.raises(ZeroDivisionError):
        broken({"amount": 1}, {})


def test_program_splices_checked_expressions_and_literal_constants_only():
    text = ("def run(_s0, _s1):\n"
            "    out = []\n"
            "    if x_when:\n"
            "        out.append((c_id, x_value))\n"
            "    return k_wrap(out)\n")
    run = compile_program(text, "run", SOURCES,
                          slots={"x_when": cond("event.amount * 2 >= 3"),
                                 "x_value": cond("event.amount - 1.5")},
                          constants={"c_id": "rule-1"}, env={"k_wrap": tuple})
    assert run({"amount": Decimal("1.5")}, {}) == (("rule-1", Decimal(0)),)
    assert run({"amount": 1}, {}) == ()
    with pytest.raises(ValueError, match="not a literal"):
        compile_program(text, "run", SOURCES, slots={"x_when": cond("event.amount > 1"),
                                                     "x_value": cond("event.amount")},
                        constants={"c_id": object()}, env={"k_wrap": tuple})
    # The program runs without builtins, like every expression.
    bare = compile_program("def run(_s0, _s1):\n    return open\n", "run", SOURCES,
                           slots={}, constants={}, env={})
    with pytest.raises(NameError):
        bare({}, {})


def test_trusted_models_equal_validated_ones():
    fields = {"rule": "r", "version": "1", "file": "f.yaml", "detail": "d",
              "values": {"event.amount": Decimal("1.5")}}
    built = trusted(Trace, dict(fields))
    assert built == Trace(**fields)
    assert built.model_dump() == Trace(**fields).model_dump()
    # Given out of field order or partly, trusted() still sets exactly what it is given.
    partial = trusted(Trace, {"detail": "d", "rule": "r"})
    assert partial.rule == "r" and partial.detail == "d"


def _bench_module(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_fast_and_explained_paths_give_the_same_receipts_and_state():
    lines, synth = _bench_module("lines"), _bench_module("synth")
    members = synth.make_members(120)
    raws = synth.make_events(1500, members=120, seed=7)
    engines = []
    for _ in range(2):
        engine = Engine.open([BENCH / "rulesets"], plugins=lines.PLUGINS,
                             load_entrypoints=False)
        for profile in members:
            engine.enrol(profile)
        engines.append(engine)
    fast, explained = engines
    accepted = 0
    for raw in raws:
        a = fast.process(raw)
        b = explained.process(raw, explain=True)
        assert a.model_dump(exclude={"not_fired"}) == b.model_dump(exclude={"not_fired"})
        assert a.not_fired == ()
        accepted += a.accepted
    assert accepted > 1000
    for member_id, m in fast.state.members.items():
        n = explained.state.members[member_id]
        assert (m.tier, m.available, m.pending, m.counters, m.grants, m.lots) == \
               (n.tier, n.available, n.pending, n.counters, n.grants, n.lots)
