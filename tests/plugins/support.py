"""Shared helpers for the tests: where things are, engines with chosen plugins, events.

Plain functions (not fixtures) so that hypothesis tests can build a fresh engine per
example; tests/conftest.py wraps them as fixtures for everything else.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import loyaltycore_retail.plugin as retail_plugin

from loyaltycore.engine import Engine

from . import arcade as arcade_plugin

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
RULESETS = ROOT / "rulesets"  # the group policy; each line's rules ship in its plugin
EXAMPLES = ROOT / "examples"
TEST_RULESETS = TESTS / "rulesets"
TEST_GROUP = TEST_RULESETS / "group"
ARCADE_RULES = TEST_RULESETS / "arcade"
ARCADE_VERSIONS = TEST_RULESETS / "arcade_versions"

RETAIL = retail_plugin
# The retail plugin's ruleset, which its loyalty_rulesets hook hands to the engine.
RETAIL_RULES = retail_plugin.RULESETS / "retail.yaml"
ARCADE = arcade_plugin
ARCADE_NAME = arcade_plugin.__name__  # the plugin's registered name


def open_real(**kwargs: Any) -> Engine:
    """The real group policy with only the retail plugin (no entry points), whose
    ``loyalty_rulesets`` hook adds the retail rules."""
    return Engine.open(RULESETS, plugins=[RETAIL], load_entrypoints=False, **kwargs)


def open_test(*extra: Any, paths: list[Path] | None = None, arcade: bool = True,
              **kwargs: Any) -> Engine:
    """The test group policy + arcade rules, retail + arcade plugins and ``extra`` plugins;
    the real retail rules come with the retail plugin."""
    plugins = [RETAIL, *([ARCADE] if arcade else []), *extra]
    # A loaded CI machine can stall a trivial hook past the 50 ms production budget; tests
    # that are not about the budget must not depend on timing.
    kwargs.setdefault("time_budget", 2.0)
    if paths is None:
        paths = [TEST_GROUP, *([ARCADE_RULES] if arcade else [])]
    return Engine.open(paths, plugins=plugins, load_entrypoints=False, **kwargs)


def ts(value: str | datetime) -> str:
    """An ISO timestamp; a bare date means 10:00 Shanghai time."""
    if isinstance(value, datetime):
        return value.isoformat()
    if "T" not in value:
        return f"{value}T10:00:00+08:00"
    return value


class Events:
    """Factory of raw event dicts (what a POS would send)."""

    def __init__(self, member: str = "M1", at: str = "2026-03-02"):
        self.member = member
        self.at = at
        self._n = 0

    def next_id(self, prefix: str = "e") -> str:
        self._n += 1
        return f"{prefix}-{self._n:05d}"

    def make(self, *, line: str, type: str, id: str | None = None, member: str | None = None,
             at: str | datetime | None = None, amount: Any = None,
             currency: str | None = "CNY", **data: Any) -> dict[str, Any]:
        ev: dict[str, Any] = {"id": id or self.next_id(line[0]), "line": line, "type": type,
                              "member": member or self.member,
                              "occurred_at": ts(at or self.at)}
        if amount is not None:
            ev["amount"] = str(amount) if isinstance(amount, Decimal | int | float) else amount
            if currency is not None:
                ev["currency"] = currency
        if data:
            ev["data"] = data
        return ev

    def purchase(self, amount: Any, *, category: str = "fashion", store: str = "SH-01",
                 **kw: Any) -> dict[str, Any]:
        data = {k: kw.pop(k) for k in ("channel", "giftcard_paid", "parking_fee",
                                       "giftcard_purchase") if k in kw}
        data = {k: str(v) if isinstance(v, Decimal) else v for k, v in data.items()}
        return self.make(line="retail", type="purchase", amount=amount, store=store,
                         category=category, **data, **kw)

    def refund(self, original: str, amount: Any, **kw: Any) -> dict[str, Any]:
        return self.make(line="retail", type="refund", amount=amount,
                         related_event=original, **kw)

    def use(self, right: str, quantity: int = 1, *, line: str = "retail",
            **kw: Any) -> dict[str, Any]:
        return self.make(line=line, type="use_right", right=right, quantity=quantity, **kw)

    def play(self, amount: Any, tokens: int = 10, *, game: str = "pinball",
             **kw: Any) -> dict[str, Any]:
        return self.make(line="arcade", type="play", amount=amount, game=game, tokens=tokens,
                         **kw)

    def arcade_refund(self, original: str, amount: Any, **kw: Any) -> dict[str, Any]:
        return self.make(line="arcade", type="refund", amount=amount, related_event=original,
                         **kw)

    def visit(self, line: str, amount: Any = "100", **kw: Any) -> dict[str, Any]:
        return self.make(line=line, type="visit", amount=amount, **kw)


def days_after(day: str, n: int) -> str:
    return (datetime.fromisoformat(ts(day)) + timedelta(days=n)).isoformat()


def make_decision(engine: Engine, effects: list[Any], *, raw: dict[str, Any] | None = None,
                  member: Any = None, qualification_after: Any = None,
                  tier_after: str | None = None):
    """A Decision for ``raw`` (default: a 100 CNY retail purchase by M1 on 2 March 2026)
    carrying ``effects`` as if deciding had proposed them, ready for invariants.check."""
    from loyaltycore.decide import Decision
    from loyaltycore.members import MemberSnapshot

    raw = raw or Events().purchase("100")
    event = engine.parse_event(raw)
    book = engine.rulebook
    gb = book.group_at(event.occurred_at)
    member = member or MemberSnapshot(id=event.member, tier=gb.policy.tiers[0].id)
    return Decision(event=event, member=member, group=gb,
                    line_book=book.line_at(event.line, event.occurred_at),
                    effects=list(effects),
                    local_date=event.occurred_at.astimezone(gb.tz).date(),
                    qualification_after=qualification_after or member.qualification,
                    tier_after=tier_after or member.tier)


# --- broken rulesets, for the validation tests ---------------------------------------------

# Version 2026.1, as the retail plugin's own ruleset: a file given to `loyalty validate` with
# the same line and version replaces the plugin's, so only this directory's problems show.
BROKEN_LINE_A = """\
kind: line
line: retail
version: "2026.1"
effective_from: 2026-01-01T00:00:00+08:00
earn:
  - id: base-typo-type
    kind: base
    on: [purchse]
  - id: bad-field
    kind: bonus
    on: [purchase]
    when: "event.amout > 100"
    points: 10
  - id: bad-syntax
    kind: bonus
    on: [purchase]
    when: "event.amount >="
    points: 10
"""

BROKEN_LINE_B = """\
kind: line
line: retail
version: "b"
effective_from: 2026-06-01T00:00:00+08:00
earn:
  - id: base-b
    kind: base
    on: [purchase]
"""

BROKEN_TYPO = """\
kind: line
line: retail
version: "c"
effective_from: 2027-01-01T00:00:00+08:00
earn:
  - id: typo-rule
    kind: base
    on: [purchase]
    wen: "event.amount > 1"
"""

BROKEN_NAIVE = """\
kind: line
line: retail
version: "d"
effective_from: 2028-01-01T00:00:00
"""

BROKEN_YAML = """\
kind: line
line: retail
earn: [
  - id: x
"""

# (file, a text on the offending line or None, rule id or None, part of the message)
BROKEN_EXPECTED = [
    ("group.yaml", "lines:", None, "line 'retail' has no caps in the group policy"),
    ("group.yaml", "upgrade: {spend: 15000", "gold",
     "upgrade threshold for spend (15000) must be above silver's (20000)"),
    ("group.yaml", "retain:  {spend: 25000", "silver",
     "retain threshold 25000 for spend is above the upgrade threshold 20000"),
    ("group.yaml", None, "group-lounge", "tier gold loses right 'group-lounge' that silver has"),
    ("retail-a.yaml", "on: [purchse]", "base-typo-type",
     "unknown event type 'purchse' for line 'retail'"),
    ("retail-a.yaml", "on: [purchse]", "base-typo-type", "did you mean 'purchase'?"),
    ("retail-a.yaml", "event.amout", "bad-field", "unknown field 'event.amout'"),
    ("retail-a.yaml", 'when: "event.amount >="', "bad-syntax", "syntax error"),
    ("retail-b.yaml", "effective_from", None, "is still in force"),
    ("typo.yaml", "wen:", "typo-rule", "unknown field (check the spelling"),
    ("naive.yaml", "effective_from", None, "timestamp needs a UTC offset"),
    ("broken-yaml.yaml", "  - id: x", None, "not valid YAML"),
]


def write_broken_rulesets(directory: Path) -> Path:
    """A directory holding one of each kind of ruleset mistake (see BROKEN_EXPECTED)."""
    directory.mkdir(parents=True, exist_ok=True)
    group = (RULESETS / "group.yaml").read_text(encoding="utf-8")
    edits = [
        ("  retail:        {max_multiplier: 5, max_cost_ratio: 0.08, max_bonus_points: 500}\n",
         ""),
        ("upgrade: {spend: 80000, nights: 30, lines_active: 3}",
         "upgrade: {spend: 15000, nights: 30, lines_active: 3}"),
        ("retain:  {spend: 15000, nights: 8, lines_active: 2}",
         "retain:  {spend: 25000, nights: 8, lines_active: 2}"),
        ("    valid_days: 30\n    estimated_cost: 50\n",
         "    valid_days: 30\n    estimated_cost: 50\n  - id: group-lounge\n"
         "    description: Lounge access, silver only\n    tiers: [silver]\n"),
    ]
    for old, new in edits:
        assert old in group, old
        group = group.replace(old, new, 1)
    files = {"group.yaml": group, "retail-a.yaml": BROKEN_LINE_A, "retail-b.yaml": BROKEN_LINE_B,
             "typo.yaml": BROKEN_TYPO, "naive.yaml": BROKEN_NAIVE,
             "broken-yaml.yaml": BROKEN_YAML}
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def line_containing(path: Path, text: str) -> int:
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if text in line:
            return no
    raise AssertionError(f"{text!r} not in {path}")


PG_URL = os.environ.get("LOYALTY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def pg_schema(base_url: str) -> tuple[str, Any]:
    """A fresh schema on the PostgreSQL at ``base_url``: (url using it, drop function)."""
    import uuid
    from urllib.parse import quote

    from sqlalchemy import create_engine, text

    from loyaltycore.schema import database_url

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(database_url(base_url))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    sep = "&" if "?" in base_url else "?"
    url = f"{base_url}{sep}options={quote(f'-csearch_path={name}')}"

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()

    return url, drop


def open_db(url: str, **kwargs: Any) -> Engine:
    """The real group policy with the retail plugin (and its rules), on the database at
    ``url``."""
    return Engine.open(RULESETS, plugins=[RETAIL], load_entrypoints=False, db=url, **kwargs)


def rolling_engines(kind: str, tmp_path: Path) -> Iterator[Engine]:
    """An engine on the ``rolling`` ledger policy (points expire 6 months after they were
    earned) with the retail and arcade lines, in memory (``kind`` "memory"), on a SQLite
    file under ``tmp_path`` or in a fresh PostgreSQL schema; closed and dropped after."""
    drop = None
    if kind == "memory":
        db = None
    elif kind == "sqlite":
        db = f"sqlite:///{tmp_path / 'loyalty.db'}"
    else:
        db, drop = pg_schema(PG_URL)
    e = Engine.open([TEST_RULESETS / "ledger" / "rolling", ARCADE_RULES],
                    plugins=[RETAIL, ARCADE], load_entrypoints=False, db=db)
    yield e
    e.close()
    if drop is not None:
        drop()
