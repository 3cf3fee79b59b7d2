"""Reading ruleset files: YAML (or JSON) text into validated models, with line numbers.

Kept apart from compiling because its job is only to say, for any problem, *where* in the
file it is: every pydantic error is mapped back to the YAML line of the offending key, and
rules are named by their ``id``. All problems of all files are collected, never just the
first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from .errors import Diagnostic
from .rulesets import GroupPolicy, LineRuleset, Ruleset

RULESET_SUFFIXES = (".yaml", ".yml", ".json")
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Ruleset)


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads decimals exactly (0.1 is Decimal('0.1'), never a float)."""


def _decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    text = loader.construct_scalar(node).replace("_", "")
    try:
        return Decimal(text)
    except InvalidOperation:
        return float(text)


_Loader.add_constructor("tag:yaml.org,2002:float", _decimal)

# YAML 1.1 reads on/off/yes/no as booleans: `on: [purchase]` would become `True: [...]`.
# Only true/false are booleans in a ruleset.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(frozen=True)
class RulesetFile:
    """One validated ruleset and where it came from."""

    path: str
    ruleset: GroupPolicy | LineRuleset
    node: Any  # the YAML node tree, to find the line of anything inside

    def line_of(self, *path: Any) -> int | None:
        return line_of(self.node, path)

    def rule_line(self, section: str, index: int, field: str | None = None) -> int | None:
        parts: list[Any] = [section, index]
        if field:
            parts.append(field)
        return line_of(self.node, parts)


def read_ruleset_files(paths: list[Path]) -> tuple[list[RulesetFile], list[Diagnostic]]:
    """Read and validate every ruleset file under ``paths`` (files or directories)."""
    files: list[RulesetFile] = []
    problems: list[Diagnostic] = []
    for path in _expand(paths, problems):
        result = read_ruleset_file(path)
        if isinstance(result, RulesetFile):
            files.append(result)
        else:
            problems.extend(result)
    return files, problems


def _expand(paths: list[Path], problems: list[Diagnostic]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(
                f
                for f in p.rglob("*")
                if f.suffix in RULESET_SUFFIXES
                and f.is_file()
                and not any(part.startswith(".") for part in f.parts)
            )
            if not found:
                problems.append(Diagnostic(str(p), "no ruleset files (*.yaml, *.yml, *.json)"))
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            problems.append(Diagnostic(str(p), "no such file or directory"))
    return out


def read_ruleset_file(path: Path) -> RulesetFile | list[Diagnostic]:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Diagnostic(name, f"cannot read: {exc}")]
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return [
            Diagnostic(
                name,
                f"not valid YAML: {getattr(exc, 'problem', exc)}",
                line=mark.line + 1 if mark else None,
            )
        ]
    if not isinstance(data, dict):
        return [
            Diagnostic(
                name,
                "a ruleset file must be a mapping with 'kind: group' or 'kind: line' at the top",
            )
        ]
    if data.get("kind") not in ("group", "line"):
        return [
            Diagnostic(
                name,
                "missing or unknown 'kind' (expected 'group' or 'line')",
                line=line_of(node, ["kind"]) or 1,
                field="kind",
            )
        ]
    try:
        ruleset = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        return [_diagnostic(name, node, data, err) for err in exc.errors(include_url=False)]
    return RulesetFile(path=name, ruleset=ruleset, node=node)


def _diagnostic(name: str, node: Any, data: dict, err: dict) -> Diagnostic:
    loc = list(err["loc"])
    if loc and loc[0] in ("group", "line"):
        loc = loc[1:]  # the union tag
    rule = None
    if len(loc) >= 2 and isinstance(loc[1], int) and isinstance(data.get(loc[0]), list):
        item = data[loc[0]][loc[1]]
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            rule = item["id"]
    field = ".".join(str(p) for p in loc if not isinstance(p, int) or rule is None) or None
    if rule is not None:
        field = ".".join(str(p) for p in loc[2:]) or None
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        message = "unknown field (check the spelling; `loyalty schema` lists every field)"
    if err["type"] == "timezone_aware":
        message = "timestamp needs a UTC offset, e.g. 2026-01-01T00:00:00+08:00"
    return Diagnostic(name, message, line=_closest_line(node, loc), rule=rule, field=field)


def _closest_line(node: Any, loc: list[Any]) -> int | None:
    for cut in range(len(loc), -1, -1):
        line = line_of(node, loc[:cut])
        if line is not None:
            return line
    return None


def line_of(node: Any, path: list[Any] | tuple[Any, ...]) -> int | None:
    """1-based line of the value at ``path`` (keys and list indexes) in a YAML node tree."""
    if node is None:
        return None
    current = node
    key_line = None
    for part in path:
        if isinstance(current, yaml.MappingNode):
            for k, v in current.value:
                if k.value == str(part):
                    key_line = k.start_mark.line + 1
                    current = v
                    break
            else:
                return None
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(current.value):
                return None
            current = current.value[part]
            key_line = current.start_mark.line + 1
        else:
            return None
    return key_line if path else current.start_mark.line + 1
