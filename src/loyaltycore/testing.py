"""Test fixtures and helpers for line-plugin authors: a pytest plugin that ships with loyaltycore.

Installing loyaltycore registers this module with pytest (entry point ``loyaltycore`` in the
``pytest11`` group), so a line package's tests can use its fixtures with no import and no
conftest.py. Every fixture name starts with ``loyalty_``::

    import loyaltycore_carpark.plugin as plugin
    from loyaltycore.testing import points_of, reasons

    def test_a_session_earns(loyalty_engine_factory, loyalty_events):
        engine = loyalty_engine_factory(plugins=[plugin],
                                        caps={"carpark": {"max_multiplier": 2,
                                                          "max_cost_ratio": 0.05}})
        receipt = engine.process(loyalty_events("session", "35.00",
                                                data={"car_park": "P1", "hours": "3.5"}))
        assert receipt.status == "accepted", reasons(receipt)
        assert points_of(receipt) == 15

The fixtures:

``loyalty_engine_factory(plugins=[...], rulesets=(), group_policy=None, caps=None, db=None)``
    An :class:`~loyaltycore.Engine` with **only** the plugins given (installed entry points
    are never loaded, whatever ``LOYALTY_PLUGINS`` says), their shipped rulesets, any extra
    ``rulesets`` paths, and a group policy. Without ``group_policy`` a test group policy is
    written to the test's tmp directory: the program figures of the group's 2026 policy
    (CNY, Asia/Shanghai, 1 point per CNY, 1 point = 0.01 CNY, the member/silver/gold/diamond
    ladder) with caps for every line the plugins declare, from ``caps`` (see
    :func:`caps_from`) or :data:`DEFAULT_TEST_CAPS`. Pass the real group policy's path as
    ``group_policy`` once it has your line's caps.
``loyalty_events``
    A :class:`LoyaltyEvents` factory of raw event dicts, as a till or an app would send them.
``loyalty_group_policy(lines_or_plugins, caps=None)``
    Writes a test group policy to the tmp directory and returns its path, e.g. for
    ``loyalty validate`` through click's ``CliRunner``.

And plain helpers for reading receipts: :func:`points_of`, :func:`points_by_rule`,
:func:`credits_of`, :func:`rights_granted`, :func:`reasons`.

The step-by-step guide is docs/plugins/tutorial.md. The plugin only adds fixtures (no
hooks, nothing runs unless a test asks for a fixture); ``pytest -p no:loyaltycore`` turns
it off.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "DEFAULT_TEST_CAPS", "LoyaltyEvents", "caps_from", "credits_of", "group_policy_yaml",
    "lines_of", "points_by_rule", "points_of", "reasons", "rights_granted",
    "write_group_policy",
]

DEFAULT_TEST_CAPS: dict[str, Any] = {"max_multiplier": 3, "max_cost_ratio": "0.05",
                                     "max_bonus_points": 0}
"""Caps for a line the test gives none for. ``max_bonus_points`` is 0 as in the real
:class:`~loyaltycore.rulesets.LineCaps` default: a line with bonus rules must say how many
bonus points per event it asks for."""

START = "2026-03-02T10:00:00+08:00"  # a Monday, in the group's timezone


# --- receipts ---------------------------------------------------------------------------------


def points_of(receipt: Any) -> int:
    """All the points an event earned: available (``earn``) plus pending (``hold``), for
    every rule and plugin together. 0 for a rejected event."""
    return sum(e.points for e in receipt.effects if e.kind in ("earn", "hold"))


def points_by_rule(receipt: Any) -> dict[str, int]:
    """``{rule id: points}`` of the earn and hold effects: which rule gave what."""
    out: dict[str, int] = {}
    for e in receipt.effects:
        if e.kind in ("earn", "hold"):
            key = e.rule or e.source
            out[key] = out.get(key, 0) + e.points
    return out


def credits_of(receipt: Any) -> dict[str, Decimal]:
    """``{credit kind: value}`` of the qualifying credit the event added (``spend`` ...)."""
    out: dict[str, Decimal] = {}
    for e in receipt.effects:
        if e.kind == "credit":
            out[e.credit] = out.get(e.credit, Decimal(0)) + e.value
    return out


def rights_granted(receipt: Any) -> list[str]:
    """The ids of the rights (vouchers) the event granted."""
    return [e.right for e in receipt.effects if e.kind == "grant_right"]


def reasons(receipt: Any) -> str:
    """Why an event was rejected, one string (empty if accepted): use it as the message
    of ``assert receipt.status == "accepted", reasons(receipt)``."""
    return " | ".join(f"{v.invariant}: {v.message}" for v in receipt.violations)


# --- group policies ------------------------------------------------------------------------


def lines_of(plugins: Iterable[Any]) -> list[str]:
    """The line names the plugins declare with their ``loyalty_lines`` hook."""
    from .plugins import PluginHost, make_plugin_manager

    host = PluginHost(make_plugin_manager(list(plugins), load_entrypoints=False))
    return list(host.lines)


def caps_from(path: str | Path) -> dict[str, dict[str, Any]]:
    """The ``lines:`` caps of a YAML file: a line package's ``group-caps.yaml`` (what
    ``loyalty plugin new`` writes) or a whole group policy."""
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    lines = data.get("lines") if isinstance(data, Mapping) else None
    if not isinstance(lines, Mapping) or not lines:
        raise ValueError(f"{path}: no `lines:` mapping of line -> caps")
    return {str(k): dict(v) for k, v in lines.items()}


def group_policy_yaml(caps: Mapping[str, Mapping[str, Any]], *,
                      version: str = "test.1") -> str:
    """The text of a test group policy giving each line in ``caps`` those caps (missing
    fields of a line's caps come from :data:`DEFAULT_TEST_CAPS`)."""
    if not caps:
        raise ValueError("a group policy needs caps for at least one line")
    rows = []
    for line, given in caps.items():
        merged = {**DEFAULT_TEST_CAPS, **dict(given)}
        inner = ", ".join(f"{k}: {merged[k]}" for k in merged)
        rows.append(f"  {line}: {{{inner}}}")
    return _GROUP_TEMPLATE.replace("__VERSION__", version).replace("__LINES__",
                                                                   "\n".join(rows))


def write_group_policy(directory: str | Path, lines: Iterable[str] | Mapping[str, Any], *,
                       caps: Mapping[str, Mapping[str, Any]] | None = None,
                       name: str = "group.yaml") -> Path:
    """Write a test group policy for ``lines`` (names, or a ``{line: caps}`` mapping) into
    ``directory``; ``caps`` overrides per line. Returns the file's path."""
    if isinstance(lines, Mapping):
        table = {str(k): dict(v) for k, v in lines.items()}
    else:
        table = {str(line): {} for line in lines}
    for line, given in (caps or {}).items():
        table[line] = {**table.get(line, {}), **dict(given)}
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(group_policy_yaml(table), encoding="utf-8")
    return path


# The group's 2026 program figures and ladder (rulesets/group.yaml), no cross-sell rules.
_GROUP_TEMPLATE = """\
# A test group policy written by loyaltycore.testing: the group's program figures and tier
# ladder, with caps only for the lines under test.
kind: group
version: "__VERSION__"
effective_from: 2020-01-01T00:00:00+08:00
description: Test group policy (loyaltycore.testing)
currency: CNY
timezone: Asia/Shanghai
base_rate: 1
point_value: 0.01
rounding: floor

lines:
__LINES__

qualification:
  window_months: 12
  credits: [spend, nights, visits]

tiers:
  - id: member
    name: Member
  - id: silver
    name: Silver
    upgrade: {spend: 20000, nights: 10, lines_active: 2}
    retain:  {spend: 15000, nights: 8, lines_active: 2}
  - id: gold
    name: Gold
    upgrade: {spend: 80000, nights: 30, lines_active: 3}
    retain:  {spend: 60000, nights: 24, lines_active: 3}
    on_upgrade: [group-welcome-gold]
  - id: diamond
    name: Diamond
    upgrade: {spend: 200000, nights: 60, lines_active: 4}
    retain:  {spend: 160000, nights: 50, lines_active: 4}

review:
  schedule: anniversary
  soft_landing: 1

rights:
  - id: group-birthday-gift
    description: A birthday gift voucher, redeemable at any line within 30 days
    mode: voucher
    quota: {count: 1, per: year}
    valid_days: 30
    estimated_cost: 50
  - id: group-welcome-gold
    description: Welcome to Gold - a 200 CNY voucher usable at any line within 90 days
    mode: voucher
    tiers: [gold, diamond]
    valid_days: 90
    estimated_cost: 200
"""


# --- events ---------------------------------------------------------------------------------


class LoyaltyEvents:
    """Builds raw event dicts (what :meth:`Engine.process` takes), one call per event::

        loyalty_events("session", "35.00", data={"car_park": "P1", "hours": "3.5"})
        loyalty_events("purchase", 120, member="M2", at="2026-03-09")
        loyalty_events.use_right("carpark-free-hours", 2, member="S1")

    - ``id``: ``ev-0001``, ``ev-0002`` ... unless given (an id is unique per member; the
      same id twice is a resubmission and returns the first receipt).
    - ``line``: ``line=`` or the factory's :attr:`line`. The ``loyalty_events`` fixture
      sets it when ``loyalty_engine_factory`` opens an engine whose plugins declare exactly
      one line, so a one-line test never needs to say it.
    - ``member``: ``member=`` or :attr:`member` (``M1``).
    - ``occurred_at``: always with a UTC offset. By default a clock that starts at
      :attr:`start` (Monday 2026-03-02 10:00 +08:00) and moves :attr:`step` (5 minutes)
      forward with every event, so events are in order. ``at=`` sets it instead: an aware
      datetime, an ISO string, a date ``"2026-03-09"`` (10:00 at the start's offset) or a
      :class:`~datetime.timedelta` after the start.
    - ``amount``: the money that changed hands, sent as a string (``"120.50"``) so it
      arrives as an exact Decimal, with ``currency`` (``CNY``). Leave it out for events
      that carry no money.
    - ``data``: the payload, checked by your line's payload model.
    """

    def __init__(self, *, line: str | None = None, member: str = "M1", start: str = START,
                 step: timedelta = timedelta(minutes=5), currency: str = "CNY"):
        self.line = line
        self.member = member
        self.start = datetime.fromisoformat(start)
        if self.start.tzinfo is None:
            raise ValueError("start needs a UTC offset, e.g. 2026-03-02T10:00:00+08:00")
        self.step = step
        self.currency = currency
        self._ids = itertools.count(1)
        self._ticks = itertools.count(0)

    def __call__(self, type: str, amount: Any = None, *, data: Mapping[str, Any] | None = None,
                 line: str | None = None, member: str | None = None, at: Any = None,
                 id: str | None = None, currency: str | None = None) -> dict[str, Any]:
        line = line or self.line
        if not line:
            raise ValueError("which line? pass line=..., set loyalty_events.line, or open an "
                             "engine for a one-line plugin with loyalty_engine_factory first")
        event: dict[str, Any] = {"id": id or f"ev-{next(self._ids):04d}", "line": line,
                                 "type": type, "member": member or self.member,
                                 "occurred_at": self._when(at), "data": dict(data or {})}
        if amount is not None:
            event["amount"] = str(amount)
            event["currency"] = currency or self.currency
        return event

    def use_right(self, right: str, quantity: int = 1, **kwargs: Any) -> dict[str, Any]:
        """The built-in ``use_right`` event: the member uses ``quantity`` of ``right``."""
        return self("use_right", data={"right": right, "quantity": quantity}, **kwargs)

    def redeem(self, points: int, reference: str = "", **kwargs: Any) -> dict[str, Any]:
        """The built-in ``redeem`` event: the member spends ``points`` at the line."""
        return self("redeem", data={"points": points, "reference": reference}, **kwargs)

    def _when(self, at: Any) -> str:
        if at is None:
            return (self.start + self.step * next(self._ticks)).isoformat()
        if isinstance(at, timedelta):
            return (self.start + at).isoformat()
        if isinstance(at, datetime):
            return at.isoformat()
        text = str(at)
        if "T" not in text and len(text) == 10:
            day = datetime.fromisoformat(text)
            return datetime.combine(day.date(), self.start.timetz()).isoformat()
        return text


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def loyalty_events() -> LoyaltyEvents:
    """A :class:`LoyaltyEvents` factory of raw event dicts (ids, member ``M1``, a clock)."""
    return LoyaltyEvents()


@pytest.fixture
def loyalty_group_policy(tmp_path: Path) -> Callable[..., Path]:
    """``loyalty_group_policy(lines_or_plugins, caps=None) -> Path``: a test group policy
    file (in the test's tmp directory) with caps for the lines given, or for every line the
    given plugin modules declare."""
    counter = itertools.count(1)

    def make(lines_or_plugins: Iterable[Any] | Mapping[str, Any], *,
             caps: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
        if isinstance(lines_or_plugins, Mapping):
            lines: Iterable[str] | Mapping[str, Any] = lines_or_plugins
        else:
            items = list(lines_or_plugins)
            lines = [i for i in items if isinstance(i, str)]
            plugins = [i for i in items if not isinstance(i, str)]
            if plugins:
                lines = [*lines, *lines_of(plugins)]
        return write_group_policy(tmp_path / f"loyalty-group-{next(counter)}", lines,
                                  caps=caps)

    return make


@pytest.fixture
def loyalty_engine_factory(tmp_path: Path, loyalty_events: LoyaltyEvents
                           ) -> Iterator[Callable[..., Any]]:
    """``loyalty_engine_factory(plugins=[...], rulesets=(), group_policy=None, caps=None,
    db=None, **engine_options) -> Engine``.

    - ``plugins``: plugin modules or objects, the only ones the engine loads (installed
      entry points never are). Their ``loyalty_rulesets`` are loaded as in production.
    - ``rulesets``: more ruleset files or directories (e.g. a ruleset the test writes to
      ``tmp_path``; one with the same line and version replaces the plugin's).
    - ``group_policy``: the group policy file to use. Default: a test group policy with
      caps for every line the plugins declare, from ``caps`` (``{line: {max_multiplier:
      ..., max_cost_ratio: ..., max_bonus_points: ...}}``, e.g. :func:`caps_from` of your
      ``group-caps.yaml``) or :data:`DEFAULT_TEST_CAPS`.
    - ``db``: a database URL or SQLite path for a durable ledger; default in memory.
    - ``engine_options``: passed to :meth:`Engine.open`. ``time_budget`` defaults to 2 s
      rather than the 50 ms of production, so a busy CI machine cannot fail a test that
      is not about the budget (pass ``time_budget=0.05`` to test the budget).

    Engines are closed when the test ends.
    """
    from .engine import Engine

    opened: list[Any] = []
    counter = itertools.count(1)

    def make(plugins: Iterable[Any] = (), rulesets: Iterable[str | Path] = (), *,
             group_policy: str | Path | None = None,
             caps: Mapping[str, Mapping[str, Any]] | None = None,
             db: Any = None, **engine_options: Any) -> Any:
        plugins = list(plugins)
        lines = lines_of(plugins)
        if group_policy is None:
            if not lines and not caps:
                raise ValueError("no line to write a group policy for: pass plugins that "
                                 "declare lines, caps={line: {...}} or group_policy=PATH")
            group_policy = write_group_policy(tmp_path / f"loyalty-engine-{next(counter)}",
                                              lines, caps=caps)
        engine_options.setdefault("time_budget", 2.0)
        engine = Engine.open([Path(group_policy), *[Path(p) for p in rulesets]],
                             plugins=plugins, load_entrypoints=False, db=db,
                             **engine_options)
        opened.append(engine)
        if loyalty_events.line is None and len(lines) == 1:
            loyalty_events.line = lines[0]
        return engine

    yield make
    for engine in opened:
        engine.close()
