"""The ruleset ships inside the package and `loyalty validate` proves it within the caps."""

from __future__ import annotations

import shutil

import loyaltycore_retail.plugin as retail_plugin
from click.testing import CliRunner
from retail_support import GROUP_POLICY, RETAIL_RULES

from loyaltycore.cli import cli


def test_the_ruleset_ships_inside_the_package():
    (rulesets,) = retail_plugin.loyalty_rulesets()

    assert rulesets.is_relative_to(retail_plugin.RULESETS.parent)
    assert (rulesets / "retail.yaml").is_file()
    assert RETAIL_RULES.parent == rulesets
    # and not in the group's rulesets/ as well, where a copy would replace it
    assert not list(GROUP_POLICY.parent.glob("retail*"))


def test_validate_proves_the_retail_rules_within_the_group_caps():
    # Through the installed entry point, as an operator would run it; --strict turns the
    # worst-case cap warnings (multiplier, cost ratio, bonus) into failures.
    # Worst case: 1 + 1 (beauty) + 1 (member day) + 1 (birthday) + 0.5 (diamond) = 4.5 <= 5;
    # 4.5 x 0.01 = 0.045 <= 0.08; bonuses 200 (first purchase) + 300 (cross-sell) <= 500.
    result = CliRunner().invoke(cli, ["validate", "--strict", str(GROUP_POLICY.parent)],
                                env={"LOYALTY_PLUGINS": "retail"})

    assert result.exit_code == 0, result.output
    assert "12 rules (retail); 0 warning(s)" in result.output


def test_validate_of_the_group_dir_names_a_typo_in_the_plugin_ruleset(tmp_path, monkeypatch):
    # What a rule author sees after misspelling a field in the shipped ruleset: validating
    # rulesets/ checks the installed plugins' rulesets too, and names the file and line.
    edited = tmp_path / "retail.yaml"
    shutil.copy(RETAIL_RULES, edited)
    text = edited.read_text(encoding="utf-8")
    good = "when: \"event.category == 'beauty'\""
    assert text.count(good) == 1
    edited.write_text(text.replace(good, "when: \"event.categroy == 'beauty'\""),
                      encoding="utf-8")
    line = next(no for no, row in enumerate(edited.read_text(encoding="utf-8").splitlines(), 1)
                if "event.categroy" in row)
    monkeypatch.setattr(retail_plugin, "RULESETS", tmp_path)

    result = CliRunner().invoke(cli, ["validate", str(GROUP_POLICY.parent)],
                                env={"LOYALTY_PLUGINS": "retail"})

    assert result.exit_code == 1, result.output
    assert (f"{edited}:{line}: rule retail-beauty-x2: field when: error: unknown field "
            "'event.categroy' (did you mean 'event.category'?)") in result.output
    assert "1 error(s), 0 warning(s)" in result.output
