"""The ruleset ships inside the package and `loyalty validate` proves it within the caps."""

from __future__ import annotations

import loyaltycore_entertainment.plugin as entertainment_plugin
from click.testing import CliRunner
from entertainment_support import GROUP_POLICY

from loyaltycore.cli import cli


def test_the_ruleset_ships_inside_the_package():
    (rulesets,) = entertainment_plugin.loyalty_rulesets()

    assert rulesets.is_relative_to(entertainment_plugin.RULESETS.parent)
    assert (rulesets / "entertainment.yaml").is_file()


def test_validate_proves_the_entertainment_rules_within_the_group_caps():
    # Through the installed entry point, as an operator would run it; --strict turns the
    # worst-case cap warnings (multiplier, cost ratio, bonus) into failures.
    result = CliRunner().invoke(cli, ["validate", "--strict", str(GROUP_POLICY)],
                                env={"LOYALTY_PLUGINS": "entertainment"})

    assert result.exit_code == 0, result.output
    assert "(entertainment); 0 warning(s)" in result.output
