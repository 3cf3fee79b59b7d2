"""``loyalty plugin new``: the command over :func:`loyaltycore.scaffold.scaffold`.

A bad name or an existing target is a :class:`~loyaltycore.scaffold.ScaffoldError`, which
the CLI's one error handler prints as ``error: ...`` with exit code 2.
"""

from __future__ import annotations

from pathlib import Path

import click


def register(cli: click.Group, rulesets_option) -> None:  # noqa: ARG001 - same shape as the others
    @cli.group(name="plugin")
    def plugin_group() -> None:
        """Tools for plugin authors (`loyalty plugin new NAME` scaffolds a line package)."""

    @plugin_group.command(name="new")
    @click.argument("name")
    @click.option("--dir", "target", type=click.Path(path_type=Path),
                  help="Directory to create (must not exist; default ./loyaltycore-NAME).")
    @click.option("--line", help="The line the plugin declares (default: NAME).")
    def new(name: str, target: Path | None, line: str | None) -> None:
        """Scaffold a working line package loyaltycore-NAME: entry point NAME, a payload
        model, a ruleset, a group-caps snippet and a passing test.

        NAME must be a lowercase line name: a letter, then up to 63 letters, digits or
        underscores (it names the package loyaltycore_NAME and the line).
        """
        from .scaffold import scaffold

        made = scaffold(name, target, line=line)
        click.echo(f"created {made.path} ({made.distribution}, package {made.package}, "
                   f"entry point {made.name!r}, line {made.line!r}):")
        for rel in made.files:
            click.echo(f"  {made.path / rel}")
        click.echo("next:")
        click.echo(f"  1. add the caps in {made.path / 'group-caps.yaml'} under `lines:` in "
                   "the group policy (rulesets/group.yaml)")
        click.echo(f"  2. python -m pytest {made.path}")
        click.echo(f"  3. pip install -e {made.path} && LOYALTY_PLUGINS={made.name} "
                   "loyalty validate rulesets/group.yaml")
        click.echo("  the tutorial: docs/plugins/tutorial.md")
