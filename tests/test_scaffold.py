"""`loyalty plugin new` (loyaltycore.scaffold) and the loyaltycore.testing fixtures.

The scaffold must refuse what cannot become a line package (a bad name, an existing
directory) with a message that says why, and what it writes must work untouched: valid
TOML with the entry point, a ruleset that loads, and a test that passes when pytest runs
it in-process on the generated directory (the fixtures reach it through the ``pytest11``
entry point, as they reach any installed line package).

The helpers at the top (running pytest in-process, forgetting modules imported from a tmp
directory) are shared with test_plugin_tutorial.py.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from loyaltycore.cli import cli
from loyaltycore.engine import Engine
from loyaltycore.scaffold import NAME_RE, ScaffoldError, render, scaffold
from loyaltycore.testing import (
    LoyaltyEvents,
    caps_from,
    group_policy_yaml,
    lines_of,
    points_of,
    reasons,
)

ROOT = Path(__file__).resolve().parents[1]


# --- shared helpers ---------------------------------------------------------------------------


class Outcomes:
    """A pytest plugin for an inner run: which tests passed, and what failed, with why."""

    def __init__(self) -> None:
        self.passed: list[str] = []
        self.failed: list[str] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" and report.passed:
            self.passed.append(report.nodeid)
        elif report.failed:
            self.failed.append(f"{report.nodeid}\n{report.longreprtext}")

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.failed.append(f"{report.nodeid}\n{report.longreprtext}")


def forget_modules_under(directory: Path) -> None:
    """Drop modules imported from ``directory`` so a rewritten file is imported afresh
    (and the next test's package of the same name is not shadowed by this one's)."""
    root = str(directory.resolve())
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and str(Path(path).resolve()).startswith(root):
            del sys.modules[name]
    importlib.invalidate_caches()


def run_pytest(directory: Path, *args: str) -> Outcomes:
    """``python -m pytest DIRECTORY`` in-process; sys.path and the test modules it
    imported are put back afterwards."""
    outcomes = Outcomes()
    saved_path = list(sys.path)
    try:
        code = pytest.main([str(directory), "-q", "-p", "no:cacheprovider", *args],
                           plugins=[outcomes])
    finally:
        sys.path[:] = saved_path
        forget_modules_under(directory)
    assert code == 0 and not outcomes.failed, (
        f"pytest {directory} exited {code}:\n" + "\n".join(outcomes.failed))
    return outcomes


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Run in tmp_path, write no bytecode (files are rewritten within a second), and
    forget every module imported from tmp_path at the end."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    yield tmp_path
    forget_modules_under(tmp_path)


def new(*args: str) -> Any:
    return CliRunner().invoke(cli, ["plugin", "new", *args])


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Car-Park", "CarPark", "car park", "9lives", "_carpark",
                                  "car-park", "", "x" * 65, "café", "group"])
def test_bad_names_are_refused_with_a_clear_message(isolated, name):
    result = new(name)
    assert result.exit_code == 2, result.output
    assert f"invalid plugin name {name!r}" in result.output
    if name != "group":
        assert "^[a-z][a-z0-9_]{0,63}$" in result.output
        assert "letter followed by up to 63 letters, digits or underscores" in result.output
    assert list(isolated.iterdir()) == [], "nothing may be written for a refused name"


def test_a_fixable_name_gets_a_suggestion(isolated):
    assert "(did you mean 'car_park'?)" in new("Car-Park").output
    assert "did you mean" not in new("9lives").output


def test_reserved_group_is_refused():
    with pytest.raises(ScaffoldError, match="names the group policy itself"):
        render("group")


def test_a_bad_line_name_is_refused(isolated):
    result = new("carpark", "--line", "Car Park")
    assert result.exit_code == 2
    assert "invalid line name 'Car Park'" in result.output
    assert not (isolated / "loyaltycore-carpark").exists()


def test_the_name_rule_is_the_rulesets_line_pattern():
    from loyaltycore.rulesets import LineRuleset

    pattern = LineRuleset.model_fields["line"].metadata[0].pattern
    assert NAME_RE.pattern == pattern


@pytest.mark.parametrize("existing", ["empty dir", "dir with files", "file"])
def test_an_existing_target_is_refused_and_left_alone(isolated, existing):
    target = isolated / "plugins" / "kiosk"
    if existing == "file":
        target.parent.mkdir()
        target.write_text("mine")
    else:
        target.mkdir(parents=True)
        if existing == "dir with files":
            (target / "notes.txt").write_text("mine")
    result = new("kiosk", "--dir", "plugins/kiosk")
    assert result.exit_code == 2
    assert "plugins/kiosk already exists" in result.output
    assert "never writes over anything" in result.output
    if existing == "file":
        assert target.read_text() == "mine"
    else:
        assert [p.name for p in target.iterdir()] == (
            ["notes.txt"] if existing == "dir with files" else [])


# --- what it writes -------------------------------------------------------------------------


def test_default_directory_layout_and_pyproject(isolated):
    result = new("kiosk")
    assert result.exit_code == 0, result.output
    pkg = isolated / "loyaltycore-kiosk"
    files = sorted(str(p.relative_to(pkg)) for p in pkg.rglob("*") if p.is_file())
    assert files == sorted(["pyproject.toml", "README.md", "group-caps.yaml",
                            "src/loyaltycore_kiosk/__init__.py",
                            "src/loyaltycore_kiosk/plugin.py",
                            "src/loyaltycore_kiosk/rulesets/kiosk.yaml",
                            "tests/test_kiosk.py"])
    meta = tomllib.loads((pkg / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "loyaltycore-kiosk"
    assert meta["project"]["entry-points"]["loyaltycore"] == {
        "kiosk": "loyaltycore_kiosk.plugin"}
    assert meta["tool"]["setuptools"]["package-data"] == {
        "loyaltycore_kiosk": ["rulesets/*.yaml"]}
    assert caps_from(pkg / "group-caps.yaml") == {
        "kiosk": {"max_multiplier": 2, "max_cost_ratio": 0.05, "max_bonus_points": 0}}
    assert "lines.<line>" in (pkg / "group-caps.yaml").read_text()
    readme = (pkg / "README.md").read_text()
    assert "add the same entry under `lines:`" in readme
    assert "docs/plugins/tutorial.md" in readme
    assert "loyaltycore-kiosk/group-caps.yaml" in result.output


def test_line_option_names_the_line_not_the_package(isolated, monkeypatch):
    made = scaffold("kiosk_ops", isolated / "ops", line="kiosk")
    assert made.package == "loyaltycore_kiosk_ops"
    assert (made.path / "src/loyaltycore_kiosk_ops/rulesets/kiosk.yaml").is_file()
    assert "kiosk_ops = \"loyaltycore_kiosk_ops.plugin\"" in (
        made.path / "pyproject.toml").read_text()
    monkeypatch.syspath_prepend(str(made.path / "src"))
    plugin = importlib.import_module("loyaltycore_kiosk_ops.plugin")
    assert lines_of([plugin]) == ["kiosk"]
    run_pytest(made.path)


@pytest.mark.parametrize("name", ["minigolf", "m2"])
def test_the_generated_package_test_passes(isolated, name):
    assert new(name, "--dir", f"plugins/{name}").exit_code == 0
    outcomes = run_pytest(isolated / "plugins" / name)
    assert len(outcomes.passed) == 2, outcomes.passed


def test_the_generated_plugin_loads_and_earns_as_its_test_says(isolated, monkeypatch):
    made = scaffold("minigolf", isolated / "mg")
    monkeypatch.syspath_prepend(str(made.path / "src"))
    plugin = importlib.import_module("loyaltycore_minigolf.plugin")
    (isolated / "group.yaml").write_text(group_policy_yaml(
        caps_from(made.path / "group-caps.yaml")))
    engine = Engine.open(isolated / "group.yaml", plugins=[plugin], load_entrypoints=False,
                         time_budget=2.0)
    assert sorted(r.id for _, r in engine.rulebook.all_rules()) == [
        "minigolf-purchase", "minigolf-spend"]
    receipt = engine.process(LoyaltyEvents(line="minigolf")(
        "purchase", "10.99", data={"outlet": "O-2"}))
    assert receipt.status == "accepted", reasons(receipt)
    assert points_of(receipt) == 10  # 10.99 floored


def test_generated_python_is_ruff_clean_in_the_repository_layout():
    """Linted as if it were plugins/<name>/ of this repository, with its ruff settings."""
    pytest.importorskip("ruff")
    for rel, text in render("kiosk").items():
        if not rel.endswith(".py"):
            continue
        done = subprocess.run(
            [sys.executable, "-m", "ruff", "check", "--no-cache", "--stdin-filename",
             str(ROOT / "plugins" / "kiosk" / rel), "-"],
            input=text, capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, f"{rel}:\n{done.stdout}{done.stderr}"


# --- the loyaltycore.testing fixtures -------------------------------------------------------


def test_the_fixtures_come_from_the_pytest11_entry_point(pytestconfig):
    from importlib.metadata import entry_points

    eps = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert eps.get("loyaltycore") == "loyaltycore.testing"
    assert pytestconfig.pluginmanager.get_plugin("loyaltycore") is not None


def test_loyalty_events_clock_ids_and_times():
    events = LoyaltyEvents(line="kiosk")
    first, second = events("purchase", 12), events("purchase")
    assert (first["id"], second["id"]) == ("ev-0001", "ev-0002")
    assert first["occurred_at"] == "2026-03-02T10:00:00+08:00"
    assert second["occurred_at"] == "2026-03-02T10:05:00+08:00"
    assert first["amount"] == "12" and first["currency"] == "CNY"
    assert "amount" not in second and "currency" not in second
    assert events("x", at="2026-04-01")["occurred_at"] == "2026-04-01T10:00:00+08:00"
    assert events("x", at=timedelta(days=1))["occurred_at"] == "2026-03-03T10:00:00+08:00"
    assert events("x")["occurred_at"] == "2026-03-02T10:10:00+08:00"  # at= does not tick
    use = events.use_right("r", 2, member="M9")
    assert use["type"] == "use_right" and use["data"] == {"right": "r", "quantity": 2}
    assert use["member"] == "M9"
    with pytest.raises(ValueError, match="which line"):
        LoyaltyEvents()("purchase")


def test_engine_factory_has_only_the_given_plugin(loyalty_engine_factory, loyalty_events,
                                                  tmp_path, monkeypatch):
    made = scaffold("minigolf", tmp_path / "mg")
    monkeypatch.syspath_prepend(str(made.path / "src"))
    monkeypatch.setenv("LOYALTY_PLUGINS", "all")  # would load every entry point
    try:
        plugin = importlib.import_module("loyaltycore_minigolf.plugin")
        engine = loyalty_engine_factory(plugins=[plugin], caps={"minigolf": {
            "max_multiplier": "0.5"}})
        assert sorted(engine.plugins.lines) == ["minigolf"]
        assert loyalty_events.line == "minigolf"  # set from the plugin's one line
        receipt = engine.process(loyalty_events("purchase", "100", data={"outlet": "O"}))
        # 100 points on 100.00 breaks the test caps' 0.5 multiplier: the caps are applied
        assert receipt.status == "rejected"
        assert "max multiplier 0.5" in reasons(receipt)
    finally:
        forget_modules_under(tmp_path)


def test_group_policy_fixture_writes_a_loadable_policy(loyalty_group_policy):
    path = loyalty_group_policy(["kiosk", "minigolf"], caps={"kiosk": {
        "max_bonus_points": 100}})
    caps = caps_from(path)
    assert caps["kiosk"]["max_bonus_points"] == 100
    assert caps["minigolf"]["max_bonus_points"] == 0
    from loyaltycore.rulebook import check_rulesets

    book, problems = check_rulesets([path], event_types={}, functions={}, plugin_paths=[])
    assert book is not None and not [p for p in problems if p.severity == "error"], problems
