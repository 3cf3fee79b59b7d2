"""Loading rulesets: every problem is found and placed (file, line, rule), none hidden
behind the first; a clean rulebook is indexed by line, type and time."""

from __future__ import annotations

import shutil
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from loyaltycore import RulesetError
from loyaltycore.engine import Engine
from loyaltycore.hookspecs import hookimpl
from loyaltycore.rulebook import check_rulesets, load_rulebook
from plugins import support

RETAIL_TYPES = support.open_real().plugins.event_types()


def check(*paths, event_types=None, plugin_paths=()):
    return check_rulesets(paths, event_types=event_types or RETAIL_TYPES,
                          plugin_paths=plugin_paths)


def errors(diagnostics):
    return [d for d in diagnostics if d.severity == "error"]


def find(diagnostics, fragment, rule=None):
    hits = [d for d in diagnostics if fragment in d.message and (rule is None or d.rule == rule)]
    assert hits, f"no diagnostic with {fragment!r} (rule {rule}) in:\n" + "\n".join(
        str(d) for d in diagnostics)
    return hits[0]


def with_group(tmp_path: Path, **files: str) -> Path:
    """A rules dir: the real group policy plus ``files`` (name -> YAML text)."""
    d = tmp_path / "rules"
    d.mkdir()
    shutil.copy(support.RULESETS / "group.yaml", d / "group.yaml")
    for name, text in files.items():
        (d / name).write_text(text, encoding="utf-8")
    return d


LINE_HEAD = """\
kind: line
line: retail
version: "t"
effective_from: 2026-01-01T00:00:00+08:00
"""


# --- every problem, placed --------------------------------------------------------------------


def test_broken_dir_reports_every_problem_with_file_line_and_rule(tmp_path):
    d = support.write_broken_rulesets(tmp_path / "broken")
    book, diagnostics = check(d)
    assert book is None
    for name, marker, rule, fragment in support.BROKEN_EXPECTED:
        hits = [x for x in diagnostics if Path(x.file).name == name and fragment in x.message]
        assert hits, f"{name}: {fragment!r} not reported"
        hit = hits[0]
        assert hit.severity == "error"
        assert hit.rule == rule
        if marker is not None:
            assert hit.line == support.line_containing(d / name, marker), str(hit)
    assert len(errors(diagnostics)) == 12


# Regression test (this was a product bug, fixed in src/ while the tests were being written):
# the 'tier X loses right Y' diagnostic (rulebook._check_rights_inclusion) carries no line
# number
def test_rights_inclusion_problem_has_a_line_number(tmp_path):
    d = support.write_broken_rulesets(tmp_path / "broken")
    _, diagnostics = check(d)
    hit = find(diagnostics, "loses right 'group-lounge'")
    assert hit.line == support.line_containing(d / "group.yaml", "tiers: [silver]")


def test_load_rulebook_raises_with_all_problems(tmp_path):
    d = support.write_broken_rulesets(tmp_path / "broken")
    with pytest.raises(RulesetError) as info:
        load_rulebook([d], event_types=RETAIL_TYPES)
    assert len(errors(info.value.diagnostics)) == 12
    text = str(info.value)
    assert text.startswith("12 error(s) in rulesets")
    for _, _, _, fragment in support.BROKEN_EXPECTED:
        assert fragment in text
    with pytest.raises(RulesetError):
        Engine.open(d, plugins=[support.RETAIL], load_entrypoints=False)


def test_diagnostic_text_names_file_line_rule_and_field(tmp_path):
    d = support.write_broken_rulesets(tmp_path / "broken")
    _, diagnostics = check(d)
    hit = find(diagnostics, "unknown field 'event.amout'")
    line = support.line_containing(d / "retail-a.yaml", "event.amout")
    assert str(hit).startswith(f"{d / 'retail-a.yaml'}:{line}: rule bad-field: field when: "
                               "error: ")
    assert "did you mean 'event.amount'?" in hit.message


# --- the clean rulesets ------------------------------------------------------------------------


def test_real_rulesets_are_clean_and_indexed():
    book, diagnostics = check(support.RULESETS,
                              plugin_paths=support.RETAIL.loyalty_rulesets())
    assert book is not None and diagnostics == []
    (lb,) = book.lines["retail"]
    purchase = lb.by_type["purchase"]
    assert [r.id for r in purchase.base] == ["retail-base"]
    assert [r.id for r in purchase.multiply] == [
        "retail-beauty-x2", "retail-member-day", "retail-birthday-x2", "retail-tier-silver",
        "retail-tier-gold", "retail-tier-diamond"]
    assert [r.id for r in purchase.bonus] == ["retail-first-purchase"]
    assert [r.id for r in lb.by_type["refund"].reverse] == ["retail-refund"]
    assert lb.by_type["use_right"].all() == []
    assert purchase.multiply[3].extra_factor == Decimal("0.1")  # decimals are exact
    assert book.groups[0].policy.point_value == Decimal("0.01")
    assert set(lb.rights) >= {"retail-vip-lane", "retail-parking-2h"}
    assert set(book.groups[0].rights) == {"group-birthday-gift", "group-welcome-gold"}


def test_lookup_by_time():
    book, _ = check(support.TEST_GROUP, support.ARCADE_VERSIONS,
                    event_types=support.open_test().plugins.event_types())
    at = datetime.fromisoformat
    assert book.group_at(at("2025-12-31T23:59:59+08:00")) is None
    assert book.group_at(at("2026-01-01T00:00:00+08:00")).version == "test.1"
    assert book.line_at("arcade", at("2026-03-31T23:59:59+08:00")).version == "2026.Q1"
    assert book.line_at("arcade", at("2026-04-01T00:00:00+08:00")).version == "2026.Q2"
    assert book.line_at("arcade", at("2025-06-01T00:00:00+08:00")) is None
    assert book.line_at("nope", at("2026-06-01T00:00:00+08:00")) is None


# --- more mistakes, one at a time ------------------------------------------------------------


@pytest.mark.parametrize(("body", "rule", "fragment"), [
    ("credit:\n  - id: c1\n    on: [purchase]\n    credit: spnd\n", "c1",
     "unknown qualifying credit 'spnd'; the group policy declares ['nights', 'spend', "
     "'visits']; did you mean 'spend'?"),
    ("grant:\n  - id: g1\n    on: [purchase]\n    right: group-welcome-gold\n", "g1",
     "grant rules may grant only this line's rights; unknown right 'group-welcome-gold'"),
    ("earn:\n  - id: p1\n    kind: base\n    on: [purchase]\n    pending: {until: shiped}\n",
     "p1", "pending.until names unknown event type 'shiped'"),
    ("on_upgrade:\n  - id: u1\n    to: goldd\n    right: r1\nrights:\n  - id: r1\n"
     "    description: a thing\n", "u1", "unknown tier 'goldd'; did you mean 'gold'?"),
    ("earn:\n  - id: dup\n    kind: base\n    on: [purchase]\n  - id: dup\n    kind: bonus\n"
     "    on: [purchase]\n    points: 1\n", "dup", "duplicate rule id (also at line 6)"),
    ("rights:\n  - id: r1\n    description: x\n    tiers: [platinum]\n", "r1",
     "unknown tier 'platinum'"),
    ("rights:\n  - id: group-welcome-gold\n    description: x\n", "group-welcome-gold",
     "is already a group right"),
    ("rights:\n  - id: r1\n    description: x\n    supersedes: r0\n", "r1",
     "supersedes unknown right 'r0'"),
    ("earn:\n  - id: m1\n    kind: multiply\n    on: [purchase]\n    factor: 2\n"
     "    when: \"member.tier == gold\"\n", "m1", "unknown name 'gold'"),
    ("earn:\n  - id: b1\n    kind: bonus\n    on: [purchase]\n    points: 5\n"
     "    when: \"original.points > 0\"\n", "b1", "original.points"),
])
def test_line_ruleset_mistakes(tmp_path, body, rule, fragment):
    d = with_group(tmp_path, **{"line.yaml": LINE_HEAD + body})
    book, diagnostics = check(d)
    assert book is None
    hit = find(errors(diagnostics), fragment)
    assert hit.rule == rule and hit.line is not None and hit.file.endswith("line.yaml")


def test_line_without_a_plugin_suggests_the_installed_one(tmp_path):
    d = with_group(tmp_path, **{"line.yaml": LINE_HEAD.replace("line: retail", "line: retial")})
    _, diagnostics = check(d)
    hit = find(diagnostics, "no installed plugin declares line 'retial'")
    assert "did you mean 'retail'?" in hit.message and hit.line == 2 and hit.field == "line"


@pytest.mark.parametrize(("old", "new", "fragment"), [
    ("timezone: Asia/Shanghai", "timezone: Asia/Shanghia", "unknown timezone 'Asia/Shanghia'"),
    ("upgrade: {spend: 20000, nights: 10, lines_active: 2}",
     "upgrade: {spnd: 20000, nights: 10, lines_active: 2}", "did you mean 'spend'?"),
    ("on_upgrade: [group-welcome-gold]", "on_upgrade: [group-welcome-platinum]",
     "unknown right 'group-welcome-platinum'"),
    ("  - id: diamond\n", "  - id: gold\n", "duplicate tier id"),
    ("cross_sell:\n", "cross_sell:\n  - id: cs\n    kind: bonus\n    on: [spa:stay]\n"
                       "    points: 5\n", "'on' entry 'spa:stay' matches no line"),
    ("cross_sell:\n", "cross_sell:\n  - id: cs\n    kind: bonus\n    on: [retail:stay]\n"
                       "    points: 5\n", "'on' entry 'retail:stay' matches no line"),
    ("cross_sell:\n", "cross_sell:\n  - id: cs\n    kind: multiply\n    on: ['*']\n"
                       "    factor: 2\n", "cross_sell rules must be bonus rules"),
])
def test_group_policy_mistakes(tmp_path, old, new, fragment):
    d = with_group(tmp_path)
    text = (d / "group.yaml").read_text(encoding="utf-8")
    assert old in text
    (d / "group.yaml").write_text(text.replace(old, new, 1), encoding="utf-8")
    book, diagnostics = check(d)
    assert book is None
    hit = find(errors(diagnostics), fragment)
    assert hit.file.endswith("group.yaml") and hit.line is not None


def test_rules_that_can_break_the_caps_are_warned_about(tmp_path):
    body = ("earn:\n  - id: b\n    kind: base\n    on: [purchase]\n  - id: x10\n"
            "    kind: multiply\n    on: [purchase]\n    factor: 10\n  - id: big\n"
            "    kind: bonus\n    on: [purchase]\n    points: 900\n  - id: open\n"
            "    kind: bonus\n    on: [refund]\n    points: \"event.amount\"\n")
    book, diagnostics = check(with_group(tmp_path, **{"line.yaml": LINE_HEAD + body}))
    assert book is not None and errors(diagnostics) == []
    assert book.warnings == diagnostics
    find(diagnostics, "purchase: when every multiply rule that can fire together fires (x10; "
                      "rules on different tiers exclude one another) the multiplier is 10, "
                      "above the group cap 5")
    find(diagnostics, "purchase: worst-case cost ratio 0.10")
    # 900 here + the group's cross-sell bonuses on retail purchases (200 welcome + 100
    # hotel guests) = 1200.
    find(diagnostics, "purchase: bonus rules can add 1200 points to one event, above the "
                      "group cap of 500")
    find(diagnostics, "refund: bonus rules ['open'] compute points with no per-event cap")


def test_no_group_policy_and_missing_paths(tmp_path):
    (tmp_path / "only-line").mkdir()
    (tmp_path / "only-line" / "line.yaml").write_text(LINE_HEAD, encoding="utf-8")
    _, diagnostics = check(tmp_path / "only-line")
    find(diagnostics, "no group policy found")
    (tmp_path / "empty").mkdir()
    _, diagnostics = check(tmp_path / "empty")
    find(diagnostics, "no ruleset files")
    _, diagnostics = check(tmp_path / "missing")
    find(diagnostics, "no such file or directory")


def test_not_a_ruleset(tmp_path):
    d = with_group(tmp_path, **{"list.yaml": "- 1\n- 2\n", "kindless.yaml": "kind: shop\n"})
    _, diagnostics = check(d)
    find(diagnostics, "must be a mapping")
    assert find(diagnostics, "missing or unknown 'kind'").line == 1


# --- rulesets shipped by a plugin ---------------------------------------------------------------


class ShipsArcadeRules:
    """The arcade line, with its rulesets shipped by the plugin."""

    __name__ = "arcade-with-rules"

    def __init__(self, path: Path):
        self.path = path

    @hookimpl
    def loyalty_lines(self):
        return support.ARCADE.loyalty_lines()

    @hookimpl
    def loyalty_rulesets(self):
        return [self.path]


def test_plugin_ships_its_rulesets(ev):
    engine = Engine.open(support.TEST_GROUP, plugins=[ShipsArcadeRules(support.ARCADE_RULES)],
                         load_entrypoints=False)
    r = engine.process(ev.play("100", tokens=60))
    assert {e.rule for e in r.effects} >= {"arcade-base", "arcade-big-play"}


def test_given_rulesets_win_over_the_plugins_for_the_same_version(tmp_path, ev):
    override = tmp_path / "override"
    override.mkdir()
    text = (support.ARCADE_RULES / "arcade.yaml").read_text(encoding="utf-8")
    (override / "arcade.yaml").write_text(text.replace("factor: 2", "factor: 3"),
                                          encoding="utf-8")
    engine = Engine.open([support.TEST_GROUP, override],
                         plugins=[ShipsArcadeRules(support.ARCADE_RULES)],
                         load_entrypoints=False)
    r = engine.process(ev.play("100", tokens=60))
    (big,) = [e for e in r.effects if e.rule == "arcade-big-play"]
    assert big.points == 200 and big.trace.file == str(override / "arcade.yaml")


def test_yaml_on_key_is_not_a_boolean(tmp_path):
    # YAML 1.1 reads `on` (and yes/no) as booleans; ruleset files must not.
    body = "earn:\n  - id: b\n    kind: base\n    on: [purchase]\n    description: no\n"
    book, diagnostics = check(with_group(tmp_path, **{"line.yaml": LINE_HEAD + body}))
    assert book is not None, diagnostics
    (lb,) = book.lines["retail"]
    assert lb.by_type["purchase"].base[0].spec.description == "no"


def test_tier_only_multipliers_exclude_one_another_in_the_worst_case():
    from loyaltycore.policy_checks import worst_extra

    engine = support.open_real()
    purchase = engine.rulebook.lines["retail"][0].by_type["purchase"]
    # beauty +1, member day +1, birthday +1, and the best tier rule (+0.5), not all three
    assert worst_extra(purchase.multiply) == Decimal("3.5")
