"""`loyalty validate` and `loyalty schema`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from loyaltycore.cli import cli
from plugins import support


def run(*args, **kw):
    result = CliRunner().invoke(cli, [str(a) for a in args], **kw)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception,
                                                                    SystemExit), result.output
    return result


@pytest.fixture
def broken(tmp_path):
    return support.write_broken_rulesets(tmp_path / "broken")


def test_broken_rulesets_fail_and_every_problem_is_printed(broken):
    result = run("validate", broken)
    assert result.exit_code == 1
    out = result.output
    for name, marker, rule, fragment in support.BROKEN_EXPECTED:
        where = str(broken / name)
        if marker is not None:
            where += f":{support.line_containing(broken / name, marker)}"
        lines = [ln for ln in out.splitlines() if ln.startswith(where + ":") and fragment in ln]
        assert lines, f"missing {where}: {fragment!r} in\n{out}"
        if rule is not None:
            assert f": rule {rule}: " in lines[0]
        assert ": error: " in lines[0]
    assert "12 error(s), 0 warning(s)" in out


def test_broken_rulesets_as_json(broken):
    result = run("validate", broken, "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    diags = data["diagnostics"]
    assert len(diags) == 12
    assert all(set(d) == {"file", "message", "line", "rule", "field", "severity"} for d in diags)
    hit = [d for d in diags if d["rule"] == "base-typo-type"][0]
    assert Path(hit["file"]).name == "retail-a.yaml"
    assert hit["line"] == support.line_containing(broken / "retail-a.yaml", "on: [purchse]")
    assert hit["field"] == "on" and "did you mean 'purchase'?" in hit["message"]


def test_several_paths_are_checked_together(broken, tmp_path):
    # The two halves of the broken directory, given separately, report the same problems.
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for f in broken.iterdir():
        shutil.copy(f, (a if f.name.startswith(("group", "retail")) else b) / f.name)
    result = run("validate", a, b, "--format", "json")
    assert result.exit_code == 1
    assert len(json.loads(result.stdout)["diagnostics"]) == 12


def test_clean_rulesets_validate():
    result = run("validate", support.RULESETS)
    assert result.exit_code == 0, result.output
    # the group policy in rulesets/ plus the rules the retail plugin ships
    assert "ok: 1 group polic(ies), 12 rules (retail); 0 warning(s)" in result.output
    data = json.loads(run("validate", support.RULESETS, "--format", "json").stdout)
    assert data == {"ok": True, "diagnostics": []}


def test_default_is_the_rulesets_dir_or_the_environment(monkeypatch, broken):
    monkeypatch.chdir(support.ROOT)
    monkeypatch.delenv("LOYALTY_RULESETS", raising=False)
    assert run("validate").exit_code == 0
    monkeypatch.setenv("LOYALTY_RULESETS", str(broken))
    assert run("validate").exit_code == 1


def test_strict_makes_warnings_fail(tmp_path):
    d = tmp_path / "rules"
    d.mkdir()
    shutil.copy(support.RULESETS / "group.yaml", d)
    # Version 2026.1 replaces the retail plugin's own ruleset (same line and version).
    (d / "retail.yaml").write_text(
        "kind: line\nline: retail\nversion: '2026.1'\neffective_from: 2026-01-01T00:00:00+08:00\n"
        "earn:\n  - id: b\n    kind: base\n    on: [purchase]\n  - id: x9\n"
        "    kind: multiply\n    on: [purchase]\n    factor: 9\n", encoding="utf-8")
    relaxed = run("validate", d)
    assert relaxed.exit_code == 0
    assert "warning: purchase: when every multiply rule that can fire together fires (x9;" in relaxed.output
    assert "2 warning(s)" in relaxed.output
    strict = run("validate", d, "--strict")
    assert strict.exit_code == 1
    assert json.loads(run("validate", d, "--strict", "--format", "json").stdout)["ok"] is False


def test_missing_directory_is_reported(tmp_path):
    result = run("validate", tmp_path / "nope")
    assert result.exit_code == 1
    assert "no such file or directory" in result.output


def test_schema_is_json_with_both_kinds():
    result = run("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "loyaltycore ruleset"
    assert {"GroupPolicy", "LineRuleset"} <= set(schema["$defs"])
    mapping = schema["discriminator"]["mapping"]
    assert set(mapping) == {"group", "line"}
    group = schema["$defs"]["GroupPolicy"]
    assert {"currency", "timezone", "base_rate", "lines", "tiers"} <= set(group["required"])
    line = schema["$defs"]["LineRuleset"]
    assert {"earn", "reverse", "credit", "grant", "rights"} <= set(line["properties"])
    assert line["additionalProperties"] is False
