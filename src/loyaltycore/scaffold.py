"""``loyalty plugin new``: scaffold a working line package for a new business line.

:func:`scaffold` writes a package that installs, loads, validates and passes its own test
before the author has changed a line of it::

    loyaltycore-NAME/
        pyproject.toml                      entry point NAME in the ``loyaltycore`` group
        README.md                           what to edit next, and how to check it
        group-caps.yaml                     the caps to ask the group for (lines.LINE)
        src/loyaltycore_NAME/__init__.py
        src/loyaltycore_NAME/plugin.py      a ``purchase`` payload, loyalty_lines, loyalty_rulesets
        src/loyaltycore_NAME/rulesets/LINE.yaml   a base earn rule, a credit rule, a right
        tests/test_NAME.py                  uses the ``loyaltycore.testing`` pytest fixtures

The line name defaults to NAME (``--line`` chooses another). **Group caps:** a line needs
``lines.LINE`` caps in the group policy before any event of it can be judged. The package
carries the caps it asks for in ``group-caps.yaml``; its tests run under exactly those caps
(the ``loyalty_engine_factory`` fixture writes a test group policy that includes them), and
the README tells the author to add the same entry to the group's ``rulesets/group.yaml``.

The templates are plain strings with ``__PLACEHOLDER__`` markers, so the YAML and Python
braces in them need no escaping. The tutorial (docs/plugins/tutorial.md) starts here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LoyaltyError

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # the LineRuleset ``line`` pattern
RESERVED = {"group": "'group' names the group policy itself (tier changes and group rights "
                     "are recorded under line 'group')"}


class ScaffoldError(LoyaltyError):
    """The plugin cannot be scaffolded as asked (bad name, target already exists)."""


def check_name(name: str, what: str = "plugin name") -> str:
    """``name`` if it can name a plugin package and a line, else a :class:`ScaffoldError`
    that says why and, when one is obvious, suggests a name that would do."""
    if NAME_RE.fullmatch(name or "") and name not in RESERVED:
        return name
    if name in RESERVED:
        raise ScaffoldError(f"invalid {what} {name!r}: {RESERVED[name]}; choose another")
    hint = ""
    guess = re.sub(r"[^a-z0-9_]+", "_", (name or "").strip().lower()).strip("_")
    guess = guess[:64]
    if guess and guess != name and NAME_RE.fullmatch(guess) and guess not in RESERVED:
        hint = f" (did you mean {guess!r}?)"
    raise ScaffoldError(
        f"invalid {what} {name!r}: it must be a lowercase line name, a letter followed by up "
        f"to 63 letters, digits or underscores (^[a-z][a-z0-9_]{{0,63}}$), because it names "
        f"the Python package loyaltycore_<name> and the line in rulesets{hint}")


@dataclass
class Scaffold:
    """What :func:`scaffold` wrote: the package directory and its files (relative paths)."""

    name: str
    line: str
    path: Path
    files: list[str] = field(default_factory=list)

    @property
    def distribution(self) -> str:
        return f"loyaltycore-{self.name}"

    @property
    def package(self) -> str:
        return f"loyaltycore_{self.name}"


def render(name: str, line: str | None = None) -> dict[str, str]:
    """The files of a new line package, ``{relative path: text}``, nothing written."""
    name = check_name(name)
    line = check_name(line or name, "line name")
    values = {
        "__NAME__": name,
        "__LINE__": line,
        "__PKG__": f"loyaltycore_{name}",
        "__DIST__": f"loyaltycore-{name}",
        "__TITLE__": line.replace("_", " ").capitalize(),
    }

    def fill(text: str) -> str:
        for key, value in values.items():
            text = text.replace(key, value)
        return text

    pkg = values["__PKG__"]
    return {
        "pyproject.toml": fill(PYPROJECT),
        "README.md": fill(README),
        "group-caps.yaml": fill(GROUP_CAPS),
        f"src/{pkg}/__init__.py": fill(INIT),
        f"src/{pkg}/plugin.py": fill(PLUGIN),
        f"src/{pkg}/rulesets/{line}.yaml": fill(RULESET),
        f"tests/test_{name}.py": fill(TEST),
    }


def scaffold(name: str, target: str | Path | None = None, *, line: str | None = None
             ) -> Scaffold:
    """Write a new line package for plugin ``name`` (line ``line``, default ``name``) into
    ``target`` (default ``./loyaltycore-NAME``), which must not exist yet."""
    files = render(name, line)
    path = Path(target) if target is not None else Path(f"loyaltycore-{name}")
    if path.exists():
        kind = "directory" if path.is_dir() else "file"
        raise ScaffoldError(f"{path} already exists (a {kind}); the scaffold never writes "
                            "over anything: choose a new directory with --dir, or remove it")
    path.mkdir(parents=True)
    for rel, text in files.items():
        out = path / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    return Scaffold(name=name, line=line or name, path=path, files=list(files))


# --- templates ------------------------------------------------------------------------------

PYPROJECT = '''\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "__DIST__"
version = "0.1.0"
description = "loyaltycore line plugin: __LINE__."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["loyaltycore"]

[project.optional-dependencies]
test = ["pytest>=8"]

# How the core finds the plugin: `pip install -e .` registers this entry point, and
# `loyalty plugins` lists it. LOYALTY_PLUGINS=__NAME__ selects it by this name.
[project.entry-points.loyaltycore]
__NAME__ = "__PKG__.plugin"

[tool.setuptools.packages.find]
where = ["src"]

[tool.setuptools.package-data]
__PKG__ = ["rulesets/*.yaml"]

[tool.pytest.ini_options]
testpaths = ["tests"]
# The tests import the package from src/, so they also run before it is installed.
pythonpath = ["src"]
'''

INIT = '''\
"""The __LINE__ line for loyaltycore."""
'''

PLUGIN = '''\
"""__TITLE__'s event types and its ruleset.

Scaffolded by `loyalty plugin new __NAME__`. The plugin declares the line's event types
with their payload models (`loyalty_lines`) and ships the line's rules
(`loyalty_rulesets`, the YAML files in rulesets/). Everything a ruleset can express
belongs there; add a `loyalty_decide` hook only for what it cannot (see
docs/plugin-hooks.md in the loyaltycore repository).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import Field

from loyaltycore.plugin import EventPayload, LineSpec, hookimpl

LINE = "__LINE__"
RULESETS = Path(__file__).resolve().parent / "rulesets"


class Purchase(EventPayload):
    """A purchase at one of the line's outlets. The envelope ``amount`` is the money paid;
    ``service_charge`` is the part of it that is a service charge, which earns nothing.

    Every field is readable in rule expressions as ``event.<field>``. Use Decimal for
    money, int for counts, str for codes, and give optional fields a default.
    """

    outlet: str = Field(min_length=1, max_length=64)
    service_charge: Decimal = Field(default=Decimal(0), ge=0, allow_inf_nan=False)


@hookimpl
def loyalty_lines():
    return [LineSpec(name=LINE, description="__TITLE__",
                     event_types={"purchase": Purchase})]


@hookimpl
def loyalty_rulesets():
    return [RULESETS]
'''

RULESET = '''\
# __TITLE__: earning, qualifying credit and rights.
# Field reference: docs/rule-authoring.md in the loyaltycore repository.
# Group caps asked for in group-caps.yaml: max_multiplier 2, max_cost_ratio 0.05,
# max_bonus_points 0. Worst case here: base 1x (cost 1 x 0.01 = 0.01); no bonus rules.
kind: line
line: __LINE__
version: "0.1"
effective_from: 2026-01-01T00:00:00+08:00
description: __TITLE__ rules, first version

earn:
  - id: __LINE__-purchase
    kind: base
    on: [purchase]
    description: 1 point per currency unit paid; the service charge earns nothing
    spend: "event.amount - event.service_charge"

credit:
  - id: __LINE__-spend
    on: [purchase]
    credit: spend
    description: Purchases, without the service charge, count towards tiers
    value: "event.amount - event.service_charge"

rights:
  - id: __LINE__-monthly-treat
    description: One treat a month at any __TITLE__ outlet, for Silver members and above
    tiers: [silver, gold, diamond]
    quota: {count: 1, per: month}
    estimated_cost: 10
'''

GROUP_CAPS = '''\
# The caps this line asks the group for. Every line needs `lines.<line>` caps in the group
# policy: until rulesets/group.yaml has the entry below (under `lines:`), `loyalty validate`
# refuses the line. The package's tests run under exactly these caps (see tests/).
# What they mean: docs/rule-authoring.md#linecaps.
lines:
  __LINE__: {max_multiplier: 2, max_cost_ratio: 0.05, max_bonus_points: 0}
'''

TEST = '''\
"""Tests for the __LINE__ line, with the fixtures of `loyaltycore.testing`: a pytest plugin
installed with loyaltycore, so the `loyalty_*` fixtures need no import or conftest.py.

The engine holds only this plugin, under a test group policy whose caps for the line are
read from group-caps.yaml: what the tests pass is what the group will be asked to accept.
"""

from pathlib import Path

import pytest
from __PKG__ import plugin

from loyaltycore.testing import caps_from, points_of, reasons

CAPS = caps_from(Path(__file__).resolve().parents[1] / "group-caps.yaml")


@pytest.fixture
def engine(loyalty_engine_factory):
    return loyalty_engine_factory(plugins=[plugin], caps=CAPS)


def test_purchase_earns_a_point_per_unit_paid_without_the_service_charge(
        engine, loyalty_events):
    receipt = engine.process(loyalty_events("purchase", "120.50",
                                            data={"outlet": "O-1", "service_charge": "10.00"}))
    assert receipt.status == "accepted", reasons(receipt)
    # (120.50 - 10.00) x base rate 1 = 110.50, rounded down: 110 points
    assert points_of(receipt) == 110


def test_monthly_treat_is_for_silver_and_above(engine, loyalty_events):
    engine.enrol({"id": "S1", "tier": "silver"})
    use = loyalty_events.use_right("__LINE__-monthly-treat", member="S1")
    assert engine.process(use).status == "accepted"
    again = engine.process(loyalty_events.use_right("__LINE__-monthly-treat", member="S1"))
    assert again.status == "rejected"
    assert "allows 1 per month" in reasons(again)
    newcomer = engine.process(loyalty_events.use_right("__LINE__-monthly-treat", member="N1"))
    assert newcomer.status == "rejected", "a new member is on the lowest tier, member"
'''

README = '''\
# __DIST__

The __LINE__ line of the group loyalty program: a loyaltycore plugin, scaffolded by
`loyalty plugin new __NAME__`.

- Package `__PKG__`, entry point `__NAME__` in the `loyaltycore` group (pyproject.toml).
- `src/__PKG__/plugin.py`: the event types and their payload models (`loyalty_lines`),
  and the rulesets this package ships (`loyalty_rulesets`).
- `src/__PKG__/rulesets/__LINE__.yaml`: the line's rules (earning, qualifying credit,
  rights). Field reference: docs/rule-authoring.md in the loyaltycore repository.
- `group-caps.yaml`: the caps this line asks the group for.
- `tests/`: pytest tests using the `loyaltycore.testing` fixtures.

## Next steps

1. Replace the `purchase` payload in `plugin.py` with your line's event types.
2. Write your rules in `rulesets/__LINE__.yaml`.
3. Choose your caps in `group-caps.yaml`, then **add the same entry under `lines:` in the
   group policy** (`rulesets/group.yaml`). Without it `loyalty validate` refuses the line.
4. Test: `python -m pytest` here (the tests import from `src/`, nothing to install first).
5. Install and check against the real group policy:

   ```sh
   pip install -e .
   LOYALTY_PLUGINS=__NAME__ loyalty validate rulesets/group.yaml
   LOYALTY_PLUGINS=__NAME__ loyalty dry-run events.jsonl --rulesets rulesets/group.yaml --explain
   ```

The step-by-step guide is docs/plugins/tutorial.md in the loyaltycore repository.
'''
