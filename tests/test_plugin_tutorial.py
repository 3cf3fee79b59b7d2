"""Keep docs/plugins/tutorial.md honest: execute it, step by step, in a tmp directory.

The tutorial marks what is executable with an HTML comment on the line before a fenced
block:

- ``<!-- file: PATH -->``: the block is the whole content of PATH (written as shown);
- ``<!-- insert: PATH after: TEXT -->``: the block is inserted after the line TEXT of PATH;
- ``<!-- excerpt: PATH -->``: every line of the block appears in PATH;
- ``<!-- run -->`` / ``<!-- run: exit N -->``: each line is a command, run in order from the
  repository root, that must exit 0 (or N);
- ``<!-- output -->``: every line of the block (but ``...``) appears, whitespace collapsed,
  in the output of the commands of the ``run`` block just before it.

tmp_path stands in for the repository root, with a copy of its rulesets/. Commands are
run the way the tutorial's reader runs them, except for what must not touch the shared
virtualenv:

- ``.venv/bin/loyalty ARGS`` runs the CLI in-process (click's CliRunner), with the
  ``VAR=value`` prefixes of the line as its environment;
- ``.venv/bin/pip install -e DIR`` is emulated: DIR/pyproject.toml is read (so it must be
  valid TOML), its ``where`` directories go on sys.path and a ``.dist-info`` with its entry
  points is written to a directory on sys.path, which is all that importlib.metadata, and
  so ``LOYALTY_PLUGINS``, needs to find the plugin;
- ``.venv/bin/python -m pytest DIR`` runs pytest in-process on DIR, where the
  ``loyaltycore.testing`` fixtures arrive through its pytest11 entry point.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_scaffold import forget_modules_under, run_pytest

from loyaltycore.cli import cli
from loyaltycore.engine import Engine
from loyaltycore.scaffold import render
from loyaltycore.testing import LoyaltyEvents, caps_from, points_of, reasons

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "plugins" / "tutorial.md"
MARKER = re.compile(r"^<!-- (file|insert|excerpt|run|output)(?::\s*(.*?))?\s*-->$")


@dataclass
class Step:
    kind: str
    arg: str
    body: str
    line: int  # of the marker in tutorial.md


def parse(text: str) -> list[Step]:
    """The marked blocks of the tutorial, in order."""
    lines = text.splitlines()
    steps = []
    i = 0
    while i < len(lines):
        m = MARKER.match(lines[i].strip())
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        assert j < len(lines) and lines[j].startswith("```"), (
            f"tutorial.md:{i + 1}: a marker must be followed by a fenced block")
        k = j + 1
        while k < len(lines) and not lines[k].startswith("```"):
            k += 1
        assert k < len(lines), f"tutorial.md:{j + 1}: unclosed fenced block"
        steps.append(Step(m.group(1), (m.group(2) or "").strip(), "\n".join(lines[j + 1:k]),
                          i + 1))
        i = k + 1
    return steps


def squeeze(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


class Reader:
    """Does what the tutorial says, in ``root``."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch):
        self.root = root
        self.site = root.parent / f"{root.name}-site"
        self.monkeypatch = monkeypatch
        self.output = ""
        self.ran: list[str] = []

    def step(self, step: Step) -> None:
        where = f"tutorial.md:{step.line}"
        if step.kind == "file":
            path = self.root / step.arg
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(step.body + "\n", encoding="utf-8")
        elif step.kind == "insert":
            rel, _, after = step.arg.partition(" after: ")
            path = self.root / rel
            lines = path.read_text(encoding="utf-8").splitlines()
            hits = [n for n, line in enumerate(lines) if line.strip() == after.strip()]
            assert hits, f"{where}: {rel} has no line {after!r} to insert after"
            lines[hits[0] + 1:hits[0] + 1] = step.body.splitlines()
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        elif step.kind == "excerpt":
            text = squeeze((self.root / step.arg).read_text(encoding="utf-8"))
            for line in step.body.splitlines():
                assert squeeze(line) in text, f"{where}: {step.arg} lacks {line!r}"
        elif step.kind == "run":
            expected = int(step.arg.removeprefix("exit").strip()) if step.arg else 0
            self.output = ""
            for command in step.body.splitlines():
                if command.strip() and not command.lstrip().startswith("#"):
                    self.run(command, expected, where)
        elif step.kind == "output":
            shown = squeeze(self.output)
            for line in step.body.splitlines():
                if line.strip() and line.strip() != "...":
                    assert squeeze(line) in shown, (
                        f"{where}: the output lacks {line!r}; it was:\n{self.output}")
        forget_modules_under(self.root)

    def run(self, command: str, expected: int, where: str) -> None:
        words = shlex.split(command)
        env = {}
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        program, args = words[0], words[1:]
        self.ran.append(" ".join([program, *args]))
        if program == ".venv/bin/loyalty":
            result = CliRunner().invoke(cli, args, env=env)
            self.output += result.output
            assert result.exit_code == expected, (
                f"{where}: `{command}` exited {result.exit_code}, not {expected}:\n"
                f"{result.output}{result.exception!r}")
        elif program == ".venv/bin/pip" and args[:2] == ["install", "-e"] and len(args) == 3:
            assert not env and expected == 0
            self.install(self.root / args[2])
        elif program == ".venv/bin/python" and args[:2] == ["-m", "pytest"] and len(args) == 3:
            assert not env and expected == 0
            run_pytest(self.root / args[2])
        else:
            pytest.fail(f"{where}: the test does not know how to run `{command}`")

    def install(self, directory: Path) -> None:
        """What ``pip install -e`` leaves behind that the core looks at."""
        meta = tomllib.loads((directory / "pyproject.toml").read_text(encoding="utf-8"))
        project = meta["project"]
        dist = f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
        info = self.site / dist
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                       f"Version: {project['version']}\n")
        groups = [f"[{group}]\n" + "".join(f"{name} = {value}\n"
                                           for name, value in entries.items())
                  for group, entries in project.get("entry-points", {}).items()]
        (info / "entry_points.txt").write_text("\n".join(groups))
        for where in meta["tool"]["setuptools"]["packages"]["find"]["where"]:
            self.monkeypatch.syspath_prepend(str(directory / where))
        self.monkeypatch.syspath_prepend(str(self.site))


@pytest.fixture(scope="module")
def steps() -> list[Step]:
    return parse(TUTORIAL.read_text(encoding="utf-8"))


def test_the_tutorial_covers_every_stage(steps):
    """The markers must not silently disappear: each stage of the tutorial is executed."""
    runs = "\n".join(s.body for s in steps if s.kind == "run")
    files = {s.arg for s in steps if s.kind == "file"}
    for command in ("loyalty plugin new carpark --dir plugins/carpark",
                    "pip install -e plugins/carpark", "python -m pytest plugins/carpark",
                    "loyalty validate rulesets/group.yaml", "loyalty dry-run "):
        assert command in runs, f"no run step with `{command}`"
    assert {"plugins/carpark/src/loyaltycore_carpark/plugin.py",
            "plugins/carpark/src/loyaltycore_carpark/rulesets/carpark.yaml",
            "plugins/carpark/tests/test_carpark.py", "plugins/carpark/group-caps.yaml",
            "plugins/carpark/examples/events.jsonl"} <= files
    assert any(s.kind == "insert" and s.arg.startswith("rulesets/group.yaml") for s in steps)
    assert [s.arg for s in steps if s.kind == "run"].count("exit 1") == 1
    assert sum(1 for s in steps if s.kind == "output") >= 3


def test_the_tree_shown_is_what_the_scaffold_writes():
    text = TUTORIAL.read_text(encoding="utf-8")
    for rel in render("carpark"):
        assert rel in text, f"the tutorial's file tree lacks {rel}"


def test_the_tutorial_runs(steps, tmp_path, monkeypatch):
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copytree(ROOT / "rulesets", root / "rulesets")
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    reader = Reader(root, monkeypatch)
    try:
        for step in steps:
            reader.step(step)
        check_the_result(root)
    finally:
        forget_modules_under(tmp_path)


def check_the_result(root: Path) -> None:
    """What the reader ends up with: a package that is valid as a distribution, caps that
    agree, and a plugin the Python API loads without installing anything."""
    pkg = root / "plugins" / "carpark"
    meta = tomllib.loads((pkg / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["name"] == "loyaltycore-carpark"
    assert meta["project"]["entry-points"]["loyaltycore"] == {
        "carpark": "loyaltycore_carpark.plugin"}
    # The caps the package asks for are the ones the tutorial adds to the group policy.
    asked = caps_from(pkg / "group-caps.yaml")["carpark"]
    assert caps_from(root / "rulesets" / "group.yaml")["carpark"] == asked

    import loyaltycore_carpark.plugin as carpark

    assert Path(carpark.__file__).resolve().is_relative_to(root.resolve())
    engine = Engine.open(root / "rulesets" / "group.yaml", plugins=[carpark],
                         load_entrypoints=False, time_budget=2.0)
    receipt = engine.process(LoyaltyEvents(line="carpark")(
        "session", "35.00", data={"car_park": "P1", "hours": "3.5"}))
    assert receipt.status == "accepted", reasons(receipt)
    assert points_of(receipt) == 15
    cheap = engine.process(LoyaltyEvents(line="carpark", member="M2")(
        "session", "8.00", data={"car_park": "P1", "hours": "4"}))
    assert points_of(cheap) == 8, reasons(cheap)


def test_a_marker_needs_a_block():
    with pytest.raises(AssertionError, match="must be followed by a fenced block"):
        parse("<!-- run -->\n\ntext\n")
    assert [s.kind for s in parse("<!-- file: a.txt -->\n```\nx\n```\n")] == ["file"]


def test_the_tutorials_python_is_ruff_clean_where_it_goes(steps):
    """Linted as the files the reader writes, at their paths in this repository."""
    pytest.importorskip("ruff")
    for step in steps:
        if step.kind == "file" and step.arg.endswith(".py"):
            done = subprocess.run(
                [sys.executable, "-m", "ruff", "check", "--no-cache", "--stdin-filename",
                 str(ROOT / step.arg), "-"],
                input=step.body + "\n", capture_output=True, text=True, cwd=ROOT)
            assert done.returncode == 0, f"tutorial.md:{step.line}:\n{done.stdout}"
