"""The plugin guard: misbehaving plugins are contained, named, and the run goes on."""

from __future__ import annotations

import time

import pytest

from loyaltycore import ConfigurationError, EarnPoints, EventPayload, LineSpec, hookimpl
from loyaltycore.plugins import make_plugin_manager
from plugins import misbehaving as bad
from plugins import support


def plugin_violation(receipt):
    assert not receipt.accepted, "expected a rejection"
    assert receipt.effects == ()
    (v,) = receipt.violations
    return v


def assert_named(receipt, name: str, *fragments: str):
    v = plugin_violation(receipt)
    assert v.invariant == "plugin"
    assert v.rule == f"plugin:{name}"
    assert f"plugin {name}:" in v.message
    for fragment in fragments:
        assert fragment in v.message, v.message
    return v


@pytest.fixture
def crowd():
    """Retail, arcade and one plugin for each kind of misbehaviour, in one engine."""
    return support.open_test(bad.Raises(), bad.OtherLine(), bad.Garbage("not a list"),
                             bad.Random(), bad.MovesTier(), bad.WellBehaved())


def test_one_run_rejects_each_bad_plugin_by_name_and_goes_on(crowd, ev):
    stream = [
        ("ok", ev.play("100", at="2026-03-01")),
        ("bad-raise", ev.visit("bad_raise")),
        ("ok", ev.purchase("100", at="2026-03-01")),
        ("bad-isolation", ev.visit("bad_iso")),
        ("bad-garbage", ev.visit("bad_garbage")),
        ("ok", ev.visit("good")),
        ("bad-random", ev.visit("bad_random")),
        ("bad-tier", ev.visit("bad_tier")),
        ("ok", ev.play("100", at="2026-03-02")),
    ]
    receipts = [(who, crowd.process(raw)) for who, raw in stream]
    for who, r in receipts:
        if who == "ok":
            assert r.accepted, (r.line, r.violations)
        else:
            assert_named(r, who)
    # The well-behaved plugin's effect went through, stamped with its source.
    good = dict(receipts)["ok"]
    assert good.line == "arcade"
    (bonus,) = [e for e in receipts[5][1].effects if e.rule == "good-bonus"]
    assert bonus.source == "plugin:good" and bonus.points == 7
    # The arcade's streak hook saw the first play although plugins failed in between.
    assert any(e.rule == "arcade-streak" for e in receipts[-1][1].effects)


def test_raising_plugin_is_named_with_the_exception(crowd, ev):
    assert_named(crowd.process(ev.visit("bad_raise")), "bad-raise",
                 "loyalty_decide raised RuntimeError: boom from the raising plugin")


def test_effect_for_another_line_breaks_line_isolation(crowd, ev):
    v = assert_named(crowd.process(ev.visit("bad_iso")), "bad-isolation", "line isolation",
                     "'arcade'", "['bad_iso']")
    assert v.invariant == "plugin"


def test_non_deterministic_plugin_is_caught(crowd, ev):
    assert_named(crowd.process(ev.visit("bad_random")), "bad-random", "not deterministic")


def test_plugin_cannot_move_tiers(crowd, ev):
    assert_named(crowd.process(ev.visit("bad_tier")), "bad-tier", "cannot move tiers")
    assert crowd.state.members["M1"].tier == "member"


@pytest.mark.parametrize("effect", [
    {"kind": "redeem", "line": "bad_garbage", "points": 100},
    {"kind": "restore", "line": "bad_garbage", "points": 100, "redemption": "x1",
     "redeemed_at": "bad_garbage", "redeemed": 100, "restored_before": 0},
    {"kind": "reserve", "line": "bad_garbage", "points": 100,
     "expires_at": "2026-05-01T12:00:00+08:00"},
    {"kind": "capture", "line": "bad_garbage", "points": 100, "reservation": "h1",
     "reserved": 100, "released": 0},
    {"kind": "release", "line": "bad_garbage", "points": 100, "reservation": "h1"},
])
def test_plugin_cannot_spend_or_give_back_points(ev, effect):
    engine = support.open_test(bad.Garbage([effect]))
    r = engine.process(ev.visit("bad_garbage"))
    assert_named(r, "bad-garbage", "cannot spend, hold or give back a member's points")
    assert engine.process(ev.play("100")).accepted


@pytest.mark.parametrize(("payload", "fragment"), [
    ("not a list", "must return a list of effects, got str"),
    ({"kind": "earn"}, "must return a list of effects, got dict"),
    ([42], "returned int, not an effect"),
    ([{"kind": "teleport", "line": "bad_garbage"}], "returned an invalid effect"),
    ([{"kind": "earn", "line": "bad_garbage", "points": -5}],
     "returned an invalid effect (earn.points:"),
    ([{"kind": "earn", "line": "bad_garbage", "points": 5, "mystery": 1}],
     "returned an invalid effect (earn.mystery"),
])
def test_garbage_output_is_rejected(ev, payload, fragment):
    engine = support.open_test(bad.Garbage(payload))
    r = engine.process(ev.visit("bad_garbage"))
    assert_named(r, "bad-garbage", fragment)
    assert engine.process(ev.play("100")).accepted


def test_plugin_may_return_none_or_an_empty_list(ev):
    for payload in (None, [], ()):
        engine = support.open_test(bad.Garbage(payload))
        assert engine.process(ev.visit("bad_garbage")).accepted


def test_effect_dicts_are_validated_into_effects(ev):
    engine = support.open_test(bad.Garbage([{"kind": "earn", "line": "bad_garbage",
                                              "points": 5, "basis": "bonus"}]))
    r = engine.process(ev.visit("bad_garbage"))
    assert r.accepted
    (e,) = r.effects
    assert isinstance(e, EarnPoints) and e.source == "plugin:bad-garbage"


def test_sleeping_plugin_is_stopped_at_the_time_budget(ev):
    engine = support.open_test(bad.Sleeps(), arcade=False, time_budget=0.01)
    started = time.perf_counter()
    r = engine.process(ev.visit("bad_slow"))
    elapsed = time.perf_counter() - started
    assert_named(r, "bad-slow", "time budget of 10 ms")
    assert elapsed < bad.Sleeps.seconds  # interrupted, not waited for
    assert engine.process(ev.purchase("100")).accepted


def test_plugin_that_overruns_but_finishes_is_rejected(ev):
    engine = support.open_test(bad.SlowButFinishes(), arcade=False, time_budget=0.01)
    assert_named(engine.process(ev.visit("bad_late")), "bad-late", "the budget is 10 ms")
    assert engine.process(ev.purchase("100")).accepted


def test_generous_plugin_breaks_the_bonus_cap(ev):
    engine = support.open_test(bad.TooGenerous())
    r = engine.process(ev.visit("bad_generous"))
    assert not r.accepted
    assert {v.invariant for v in r.violations} >= {"bonus-cap"}
    assert engine.process(ev.play("100")).accepted


# Regression test (this was a product bug, fixed in src/ while the tests were being written):
# when a plugin's well-formed effect breaks a cap, the violation names only the rule id the
# plugin chose (invariants._point_caps uses e.rule), never the plugin; a plugin with rule=None
# is not named at all
def test_cap_violation_by_a_plugin_names_the_plugin(ev):
    class Anonymous(bad.TooGenerous):
        plugin_name = "bad-anonymous"

        @hookimpl
        def loyalty_decide(self, event, member, policy):
            return [EarnPoints(line=self.line, points=self.points, basis="bonus")]

    for plugin, name in ((bad.TooGenerous(), "bad-generous"), (Anonymous(), "bad-anonymous")):
        r = support.open_test(plugin).process(ev.visit("bad_generous"))
        (v,) = [v for v in r.violations if v.invariant == "bonus-cap"]
        assert name in f"{v.rule} {v.message}"


def test_plugin_gets_a_private_copy_of_the_member(ev):
    class Mutator(bad._Base):
        plugin_name = "mutator"
        line = "good"

        @hookimpl
        def loyalty_decide(self, event, member, policy):
            member.counters["fire:arcade-daily-visit:d2026-03-01"] = 99
            member.vouchers["group-welcome-gold"] = 5
            return None

    engine = support.open_test(Mutator())
    assert engine.process(ev.visit("good")).accepted
    m = engine.state.members["M1"]
    assert "fire:arcade-daily-visit:d2026-03-01" not in m.counters
    assert "group-welcome-gold" not in m.grants


def test_failing_tier_changed_hook_rejects_the_upgrade(ev):
    class UpgradeHook(bad._Base):
        plugin_name = "bad-upgrade-hook"
        line = "bad_raise"

        @hookimpl
        def loyalty_tier_changed(self, member, change, event, policy):
            raise ValueError("no upgrades today")

    engine = support.open_test(UpgradeHook())
    assert engine.process(ev.purchase("1000")).accepted  # no tier move: hook not called
    r = engine.process(ev.purchase("20000"))
    assert_named(r, "bad-upgrade-hook", "loyalty_tier_changed raised ValueError")
    assert engine.state.members["M1"].tier == "member"


def test_tier_changed_hook_cannot_move_tiers_either(ev):
    class Promoter(bad._Base):
        plugin_name = "promoter"
        line = "bad_tier"

        @hookimpl
        def loyalty_tier_changed(self, member, change, event, policy):
            return [change.model_copy(update={"to_tier": "diamond"})]

    r = support.open_test(Promoter()).process(ev.purchase("20000"))
    assert_named(r, "promoter", "cannot move tiers")


# --- loading -----------------------------------------------------------------------------------


def test_two_plugins_cannot_declare_the_same_line():
    with pytest.raises(ConfigurationError, match="declared by both"):
        support.open_test(bad.Raises(), bad.Random(name="copycat", line="bad_raise"))


def test_plugin_failing_at_start_is_named():
    class Broken:
        __name__ = "broken"

        @hookimpl
        def loyalty_lines(self):
            raise RuntimeError("no config")

    with pytest.raises(ConfigurationError, match="plugin broken failed while starting"):
        support.open_test(Broken())


def test_line_spec_needs_payload_models():
    class NotAModel:
        __name__ = "not-a-model"

        @hookimpl
        def loyalty_lines(self):
            return [LineSpec(name="good", event_types={"visit": dict})]

    with pytest.raises(ConfigurationError, match="(?s)not-a-model failed while starting.*EventPayload"):
        support.open_test(NotAModel())


def test_payload_field_clashing_with_envelope_is_refused():
    from loyaltycore import RulesetError

    class Clash(EventPayload):
        amount: int = 0

    class Clasher:
        __name__ = "clasher"

        @hookimpl
        def loyalty_lines(self):
            return [LineSpec(name="good", event_types={"visit": Clash})]

    with pytest.raises(RulesetError, match="'amount' of good:visit clashes"):
        support.open_test(Clasher())


def test_entry_points_are_loaded_only_when_asked(monkeypatch):
    def names(**kw):
        return {n for n, _ in make_plugin_manager(**kw).list_name_plugin()}

    assert "retail" in names(load_entrypoints=True)
    assert "retail" not in names(load_entrypoints=False)
    monkeypatch.setenv("LOYALTY_PLUGINS", "none")
    assert "retail" not in names()
    monkeypatch.setenv("LOYALTY_PLUGINS", "retail")
    assert "retail" in names()
    monkeypatch.delenv("LOYALTY_PLUGINS")
    assert "retail" in names()


def test_plugin_info_lists_hooks_and_lines():
    engine = support.open_test(bad.Raises())
    info = {i.name: i for i in engine.plugins.info()}
    arcade = info[support.ARCADE_NAME]
    assert arcade.lines == ["arcade"]
    assert arcade.hooks == ["loyalty_decide", "loyalty_lines"]
    assert info["bad-raise"].lines == ["bad_raise"]
    assert info[support.RETAIL.__name__].hooks == ["loyalty_lines", "loyalty_rulesets"]
