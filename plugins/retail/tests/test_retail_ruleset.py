"""Retail's rules live in the group's rulesets/ (not in the package), and `loyalty validate`
proves them within the retail caps of group.yaml."""

from __future__ import annotations

import loyaltycore_retail.plugin as retail_plugin
from click.testing import CliRunner
from retail_support import GROUP_POLICY, RETAIL_RULES

from loyaltycore.cli import cli


def test_the_plugin_ships_no_ruleset():
    # no loyalty_rulesets hook: the rules are rulesets/retail.yaml in the repository
    assert not hasattr(retail_plugin, "loyalty_rulesets")
    assert RETAIL_RULES.is_file() and RETAIL_RULES.parent == GROUP_POLICY.parent


def test_validate_proves_the_retail_rules_within_the_group_caps():
    # Through the installed entry point, as an operator would run it; --strict turns the
    # worst-case cap warnings (multiplier, cost ratio, bonus) into failures.
    # Worst case: 1 + 1 (beauty) + 1 (member day) + 1 (birthday) + 0.5 (diamond) = 4.5 <= 5;
    # 4.5 x 0.01 = 0.045 <= 0.08; bonuses 200 (first purchase) + 300 (cross-sell) <= 500.
    result = CliRunner().invoke(cli, ["validate", "--strict", str(GROUP_POLICY),
                                      str(RETAIL_RULES)], env={"LOYALTY_PLUGINS": "retail"})

    assert result.exit_code == 0, result.output
    assert "12 rules (retail); 0 warning(s)" in result.output
