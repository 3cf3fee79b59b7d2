"""Keep the documentation honest: everything the code exposes to authors is documented.

These tests read the code (hook specs, sandbox functions, expression names, ruleset
models, CLI commands) and fail when docs/ or the README lacks one of them, so a new hook,
function, name, field or command cannot ship undocumented.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from loyaltycore import context, functions, hookspecs, rulesets
from loyaltycore.cli import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

RULESET_MODELS = (
    "GroupPolicy", "LineRuleset", "EarnRule", "ReverseRule", "CreditRule", "GrantRule",
    "Right", "Quota", "Cap", "Pending", "TierSpec", "TierUpgrade", "Review",
    "QualificationPolicy", "LineCaps", "Expiry", "RedemptionPolicy", "RefundPolicy",
)


def _read(path: Path) -> str:
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing"
    return path.read_text(encoding="utf-8")


def _hooks() -> list[str]:
    return sorted(name for name, obj in inspect.getmembers(hookspecs, inspect.isfunction)
                  if name.startswith("loyalty_"))


def _section(text: str, title: str) -> str:
    """The body of the Markdown section whose heading is exactly ``title`` (any level),
    up to the next heading of the same or a higher level."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(#+)\s+(.*?)\s*$", line)
        if m and m.group(2) == title:
            level = len(m.group(1))
            body = []
            for nxt in lines[i + 1:]:
                n = re.match(r"^(#+)\s", nxt)
                if n and len(n.group(1)) <= level:
                    break
                body.append(nxt)
            return "\n".join(body)
    raise AssertionError(f"no section titled {title!r}")


def test_there_are_hooks_to_document():
    assert _hooks(), "no loyalty_* hook specs found; has hookspecs.py moved?"


@pytest.mark.parametrize("hook", _hooks())
def test_every_hook_has_its_own_section(hook):
    text = _read(DOCS / "plugin-hooks.md")
    headings = {line.strip() for line in text.splitlines() if line.startswith("## ")}
    assert f"## {hook}" in headings, f"docs/plugin-hooks.md needs a '## {hook}' section"
    assert _section(text, hook).strip(), f"the {hook} section is empty"


def test_hook_sections_match_hookspecs():
    text = _read(DOCS / "plugin-hooks.md")
    documented = sorted(re.findall(r"^## (loyalty_\w+)\s*$", text, flags=re.M))
    assert documented == _hooks(), "plugin-hooks.md documents hooks that do not exist"


@pytest.mark.parametrize("name", sorted(functions.BUILTIN_FUNCTIONS))
def test_every_builtin_function_is_documented(name):
    text = _read(DOCS / "rule-authoring.md")
    assert f"`{name}(" in text, f"docs/rule-authoring.md does not document {name}()"


@pytest.mark.parametrize("name", sorted(context.NAME_DOCS))
def test_every_expression_name_is_documented(name):
    text = _read(DOCS / "rule-authoring.md")
    assert f"`{name}`" in text, f"docs/rule-authoring.md does not document `{name}`"


@pytest.mark.parametrize("model", RULESET_MODELS)
def test_every_ruleset_field_is_documented(model):
    cls = getattr(rulesets, model)
    assert isinstance(cls, type) and issubclass(cls, BaseModel)
    text = _read(DOCS / "rule-authoring.md")
    assert re.search(rf"`{model}`|\b{model}\b", text), f"{model} is not mentioned"
    section = _section(text, model)
    missing = [f for f in cls.model_fields if f"`{f}`" not in section]
    if cls.__mro__[1].__name__ == "_Rule":
        # The fields shared by all rules are documented once, in "Common rule fields".
        common = _section(text, "Common rule fields")
        missing = [f for f in missing if f"`{f}`" not in common]
    assert not missing, f"docs/rule-authoring.md section {model} lacks fields {missing}"


def test_every_ruleset_model_in_the_module_is_covered():
    """A new public model in rulesets.py must be added to RULESET_MODELS (and the docs)."""
    public = {name for name, obj in vars(rulesets).items()
              if isinstance(obj, type) and issubclass(obj, BaseModel)
              and obj.__module__ == rulesets.__name__ and not name.startswith("_")}
    assert public <= set(RULESET_MODELS), f"undocumented models: {public - set(RULESET_MODELS)}"


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_cli_command_is_in_the_readme(command):
    text = _read(ROOT / "README.md")
    assert f"loyalty {command}" in text, f"README.md does not mention `loyalty {command}`"


@pytest.mark.parametrize("doc", ["getting-started.md", "rule-authoring.md", "plugin-hooks.md",
                                 "json-output.md", "design.md"])
def test_readme_links_resolve(doc):
    assert f"docs/{doc}" in _read(ROOT / "README.md")
    assert (DOCS / doc).is_file()
