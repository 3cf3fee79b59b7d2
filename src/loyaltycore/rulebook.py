"""The rulebook: every ruleset compiled, cross-checked and indexed for the hot path.

Loading does all the expensive work once: expressions are compiled (per event type, so a
rule can only name fields its event types have), references are resolved (event types,
rights, tiers, credit kinds), the group's static invariants are checked (the ladder
rises, higher tiers keep lower tiers' rights, every line has caps, rules provably fit
their caps) and rules are indexed by ``(line, event type)`` so an event meets only the
rules that can fire for it. Every problem becomes a :class:`Diagnostic`; a rulebook with
errors is never built.
"""

from __future__ import annotations

import ast
import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .context import SOURCES, build_namespace, clashing_payload_fields
from .errors import Diagnostic, ExpressionError, RulesetError, suggest
from .events import BUILTIN_EVENT_TYPES, EventPayload
from .functions import BUILTIN_FUNCTIONS, guarded
from .policy_checks import check_caps, check_ladder
from .rulefiles import RulesetFile, read_ruleset_files
from .rulesets import GroupPolicy, LineRuleset, Right
from .sandbox import Expression, Function, Namespace, compile_expression


@dataclass(frozen=True)
class CompiledRule:
    """One rule ready to run for one event type."""

    id: str
    section: str  # earn | reverse | credit | grant | cross_sell
    kind: str  # base | multiply | bonus | reverse | credit | grant
    version: str
    file: str
    line_no: int | None
    spec: Any
    when: Expression | None = None
    value: Expression | None = None  # spend / points / refunded / credit value
    original: Expression | None = None
    fixed_points: int | None = None
    extra_factor: Decimal | None = None
    names: tuple[str, ...] = ()
    reads: tuple[tuple[str, int, str], ...] = ()  # (name, source index, key) for traces


@dataclass
class TypeRules:
    """The rules of one line version that can fire for one event type, in file order."""

    base: list[CompiledRule] = field(default_factory=list)
    multiply: list[CompiledRule] = field(default_factory=list)
    bonus: list[CompiledRule] = field(default_factory=list)
    reverse: list[CompiledRule] = field(default_factory=list)
    credit: list[CompiledRule] = field(default_factory=list)
    grant: list[CompiledRule] = field(default_factory=list)

    def all(self) -> list[CompiledRule]:
        return [*self.base, *self.multiply, *self.bonus, *self.reverse, *self.credit,
                *self.grant]


class Step:
    """What to do for one rule once its condition held: the fast path's view of a rule."""

    __slots__ = ("rule", "id", "version", "file", "kind", "source", "value", "values", "cap",
                 "fire_prefix", "earn_prefix", "pending", "detail", "factor_text", "credit")

    def __init__(self, rule: CompiledRule, source: str):
        self.rule = rule
        self.id = rule.id
        self.version = rule.version
        self.file = rule.file
        self.kind = rule.kind
        self.source = source
        self.value = rule.value.fn if rule.value is not None else None
        self.values = _values_reader(rule.reads)
        spec = rule.spec
        self.cap = getattr(spec, "cap", None)
        self.fire_prefix = f"fire:{rule.id}:"
        self.earn_prefix = f"earn:{rule.id}:"
        self.pending = getattr(spec, "pending", None)
        self.detail = f"x{spec.factor}: base " if rule.kind == "multiply" else ""
        self.factor_text = f" x {rule.extra_factor} extra = "
        self.credit = getattr(spec, "credit", None)


class RulePlan:
    """The rules of one ``(line, event type)`` under one group policy, prepared once.

    ``first`` (base rules: only the first whose condition holds fires) and ``all`` (then
    multiply, bonus, cross-sell bonus, credit and grant rules) list ``(condition, Step)``
    in the order deciding runs them; deciding compiles them into one function on first
    use and keeps it in ``program``. Reversal rules read ``original.*``, which is looked
    up per rule, so they keep their own evaluation (``reverse``).
    """

    def __init__(self, rules: TypeRules, cross: TypeRules):
        self.rules = rules
        self.cross = cross
        self.reverse = rules.reverse
        self.has_grants = bool(rules.grant)

        def items(group: list[CompiledRule], source: str = "rules"):
            return [(r.when, Step(r, source)) for r in group]

        self.first = items(rules.base)
        self.all = (items(rules.multiply) + items(rules.bonus) + items(cross.bonus, "group")
                    + items(rules.credit) + items(rules.grant))
        self.program: Any = None


def _values_reader(reads: tuple[tuple[str, int, str], ...]):
    """``args -> {name: value}`` of the names a rule read, for its trace; names a mapping
    lacks (a credit another policy version declares, say) are left out.

    Generated as one dict display (a third of the comprehension's cost); a missing key
    falls back to the comprehension, which skips it.
    """

    def slow(args: tuple) -> dict[str, Any]:
        return {name: args[i][key] for name, i, key in reads if key in args[i]}

    if not reads:
        return lambda args: {}
    display = ast.Dict(
        keys=[ast.Constant(name) for name, _, _ in reads],
        values=[ast.Subscript(ast.Subscript(ast.Name("args", ast.Load()), ast.Constant(i),
                                            ast.Load()), ast.Constant(key), ast.Load())
                for _, i, key in reads])
    tree = ast.Expression(ast.Lambda(
        ast.arguments(posonlyargs=[], args=[ast.arg("args")], kwonlyargs=[], kw_defaults=[],
                      defaults=[]), display))
    fast = eval(compile(ast.fix_missing_locations(tree), "<trace values>", "eval"),  # noqa: S307
                {"__builtins__": {}})

    def values(args: tuple) -> dict[str, Any]:
        try:
            return fast(args)
        except KeyError:
            return slow(args)

    return values


@dataclass(frozen=True)
class RightDef:
    right: Right
    line: str  # owning line, or "group"
    file: str
    when: Expression | None
    line_no: int | None = None


@dataclass
class LineBook:
    ruleset: LineRuleset
    file: str
    by_type: dict[str, TypeRules]
    rights: dict[str, RightDef]

    @property
    def version(self) -> str:
        return self.ruleset.version


@dataclass
class GroupBook:
    policy: GroupPolicy
    file: str
    tz: ZoneInfo
    tier_rank: dict[str, int]
    rights: dict[str, RightDef]
    cross_sell: dict[str, TypeRules]  # "line:type" -> bonus rules
    policy_scope: dict[str, dict[str, Any]]  # line -> the pol mapping
    _floors: dict[int, tuple[tuple[str, Any], ...]] = field(
        default_factory=dict, repr=False, compare=False)
    _caps: dict[str, LineLimits | None] = field(default_factory=dict, repr=False, compare=False)

    @property
    def version(self) -> str:
        return self.policy.version

    def upgrade_floor(self, rank: int) -> tuple[tuple[str, Any], ...]:
        """``(metric, lowest threshold on it of any tier above rank)``: a member reaching
        none of these cannot be upgraded from that rank."""
        floor = self._floors.get(rank)
        if floor is None:
            lowest: dict[str, Any] = {}
            for tier in self.policy.tiers[rank + 1:]:
                for name, need in tier.upgrade.items():
                    if name not in lowest or need < lowest[name]:
                        lowest[name] = need
            floor = self._floors[rank] = tuple(lowest.items())
        return floor

    def caps(self, line: str) -> LineLimits | None:
        """``line``'s caps in this policy (None if it has none)."""
        try:
            return self._caps[line]
        except KeyError:
            caps = self.policy.lines.get(line)
            limits = self._caps[line] = None if caps is None else LineLimits(self.policy, caps)
            return limits


class LineLimits:
    """A line's caps with the group figures the invariants combine them with, read once
    from the (frozen) policy models: their attribute reads cost several times a plain
    object's, and the invariants read them on every event."""

    __slots__ = ("base_rate", "max_bonus_points", "max_cost_ratio", "max_multiplier",
                 "point_value")

    def __init__(self, policy: GroupPolicy, caps: Any):
        self.base_rate = policy.base_rate
        self.point_value = policy.point_value
        self.max_multiplier = caps.max_multiplier
        self.max_cost_ratio = caps.max_cost_ratio
        self.max_bonus_points = caps.max_bonus_points


class RuleBook:
    """All rulesets in force over time, compiled. Look up by event time with ``*_at``."""

    def __init__(self, groups: list[GroupBook], lines: dict[str, list[LineBook]],
                 warnings: list[Diagnostic], functions: Mapping[str, Function],
                 event_types: Mapping[str, Mapping[str, type[EventPayload]]]):
        self.groups = sorted(groups, key=lambda g: g.policy.effective_from)
        self._group_starts = [g.policy.effective_from for g in self.groups]
        self.lines = {k: sorted(v, key=lambda b: b.ruleset.effective_from)
                      for k, v in lines.items()}
        self._line_starts = {k: [b.ruleset.effective_from for b in v]
                             for k, v in self.lines.items()}
        self.warnings = warnings
        self.functions = dict(functions)
        self.event_types = event_types
        # (group book, line book or None, line, event type) -> RulePlan, built on first
        # use; the books are kept with it so that an id() is never mistaken for another.
        self._plans: dict[tuple[int, int, str, str], tuple[Any, Any, RulePlan]] = {}
        self._current: dict[tuple[str, str], tuple[Any, ...]] = {}

    def plan(self, gb: GroupBook, lb: LineBook | None, line: str, etype: str) -> RulePlan:
        """The compiled plan for ``line:etype`` events under ``gb`` and ``lb``."""
        entry = self._plans.get((id(gb), id(lb), line, etype))
        if entry is not None and entry[0] is gb and entry[1] is lb:
            return entry[2]
        rules = lb.by_type.get(etype) if lb is not None else None
        plan = RulePlan(rules or TypeRules(), gb.cross_sell.get(f"{line}:{etype}") or TypeRules())
        self._plans[id(gb), id(lb), line, etype] = (gb, lb, plan)
        return plan

    def plan_at(self, gb: GroupBook, line: str, etype: str, at: datetime
                ) -> tuple[LineBook | None, RulePlan]:
        """``(line_at(line, at), plan(gb, that line book, line, etype))``.

        Remembered per ``(line, etype)`` with the span in which that line book is in
        force: consecutive events almost never cross a version, so most events pay two
        comparisons instead of a bisect and a dict lookup keyed on ids.
        """
        hit = self._current.get((line, etype))
        if hit is not None and hit[0] is gb and hit[1] <= at and (hit[2] is None or at < hit[2]):
            return hit[3], hit[4]
        lb = self.line_at(line, at)
        plan = self.plan(gb, lb, line, etype)
        if lb is not None:
            books = self.lines[line]
            i = books.index(lb)
            end = lb.ruleset.effective_to
            if i + 1 < len(books):
                start_next = books[i + 1].ruleset.effective_from
                end = start_next if end is None or start_next < end else end
            self._current[(line, etype)] = (gb, lb.ruleset.effective_from, end, lb, plan)
        return lb, plan

    def group_at(self, at: datetime) -> GroupBook | None:
        i = bisect.bisect_right(self._group_starts, at) - 1
        if i < 0:
            return None
        g = self.groups[i]
        end = g.policy.effective_to
        return g if end is None or at < end else None

    def line_at(self, line: str, at: datetime) -> LineBook | None:
        starts = self._line_starts.get(line)
        if not starts:
            return None
        i = bisect.bisect_right(starts, at) - 1
        if i < 0:
            return None
        b = self.lines[line][i]
        end = b.ruleset.effective_to
        return b if end is None or at < end else None

    def all_rules(self) -> Iterable[tuple[LineBook, CompiledRule]]:
        for books in self.lines.values():
            for book in books:
                seen = set()
                for rules in book.by_type.values():
                    for rule in rules.all():
                        if rule.id not in seen:
                            seen.add(rule.id)
                            yield book, rule


def load_rulebook(paths: Iterable[Path | str], *,
                  event_types: Mapping[str, Mapping[str, type[EventPayload]]],
                  functions: Mapping[str, Any] | None = None,
                  plugin_paths: Iterable[Path] = ()) -> RuleBook:
    """Read, check and compile rulesets; raise RulesetError listing every problem."""
    book, diagnostics = check_rulesets(paths, event_types=event_types, functions=functions,
                                       plugin_paths=plugin_paths)
    if book is None:
        raise RulesetError(diagnostics)
    return book


def check_rulesets(paths: Iterable[Path | str], *,
                   event_types: Mapping[str, Mapping[str, type[EventPayload]]],
                   functions: Mapping[str, Any] | None = None,
                   plugin_paths: Iterable[Path] = ()
                   ) -> tuple[RuleBook | None, list[Diagnostic]]:
    """Like :func:`load_rulebook` but returns ``(rulebook or None, all diagnostics)``."""
    given = [Path(p) for p in paths]
    files, problems = read_ruleset_files(given)
    plugin_files, plugin_problems = read_ruleset_files(list(plugin_paths))
    problems.extend(plugin_problems)
    files.extend(_not_overridden(plugin_files, files))
    compiler = _BookCompiler(files, event_types, functions or {}, problems)
    book = compiler.build()
    diagnostics = compiler.problems
    has_errors = any(d.severity == "error" for d in diagnostics)
    return (None if has_errors else book), diagnostics


def _not_overridden(plugin_files: list[RulesetFile], files: list[RulesetFile]):
    own = {(f.ruleset.kind, getattr(f.ruleset, "line", None), f.ruleset.version) for f in files}
    return [f for f in plugin_files
            if (f.ruleset.kind, getattr(f.ruleset, "line", None), f.ruleset.version) not in own]


class _BookCompiler:
    def __init__(self, files: list[RulesetFile],
                 event_types: Mapping[str, Mapping[str, type[EventPayload]]],
                 plugin_functions: Mapping[str, Any], problems: list[Diagnostic]):
        self.files = files
        self.event_types = {line: {**BUILTIN_EVENT_TYPES, **types}
                            for line, types in event_types.items()}
        self.problems = problems
        self.functions: dict[str, Function] = dict(BUILTIN_FUNCTIONS)
        for name, fn in plugin_functions.items():
            if name in self.functions:
                self.problems.append(Diagnostic("<plugins>", f"plugin function {name!r} clashes "
                                                              "with a built-in function"))
                continue
            self.functions[name] = Function(guarded(name, fn), 0, 16, fn.__doc__ or "")
        self.groups = [f for f in files if isinstance(f.ruleset, GroupPolicy)]
        self.line_files = [f for f in files if isinstance(f.ruleset, LineRuleset)]
        self.credits: set[str] = set()
        self.tiers: set[str] = set()
        self._ns_cache: dict[tuple, Namespace] = {}

    def error(self, f: RulesetFile | str, message: str, *, line: int | None = None,
              rule: str | None = None, field: str | None = None, severity: str = "error"):
        path = f.path if isinstance(f, RulesetFile) else f
        self.problems.append(Diagnostic(path, message, line=line, rule=rule, field=field,
                                        severity=severity))

    # --- top level -----------------------------------------------------------------------

    def build(self) -> RuleBook | None:
        for line, types in self.event_types.items():
            for etype, model in types.items():
                for f in clashing_payload_fields(model.model_fields):
                    self.error("<plugins>", f"payload field {f!r} of {line}:{etype} clashes "
                                            "with an envelope or calendar name; rename it")
        if not self.groups:
            if self.files or not self.problems:
                self.error("<rulesets>", "no group policy found (a file with 'kind: group')")
            return None
        self._check_periods([(g, "group") for g in self.groups], "group policy")
        by_line: dict[str, list[RulesetFile]] = {}
        for f in self.line_files:
            by_line.setdefault(f.ruleset.line, []).append(f)
        for line, fs in by_line.items():
            self._check_periods([(f, line) for f in fs], f"line {line!r} ruleset")
        for g in self.groups:
            self.credits.update(g.ruleset.qualification.credits)
            self.tiers.update(t.id for t in g.ruleset.tiers)
        group_rights: dict[str, RightDef] = {}
        for g in self.groups:
            for i, right in enumerate(g.ruleset.rights):
                group_rights[right.id] = self._right(g, i, right, "group")
        lines: dict[str, list[LineBook]] = {}
        all_line_rights: dict[str, RightDef] = {}
        for f in self.line_files:
            book = self._line_book(f, group_rights)
            if book is not None:
                lines.setdefault(f.ruleset.line, []).append(book)
                all_line_rights.update(book.rights)
        groups = [gb for g in self.groups
                  if (gb := self._group_book(g, group_rights, all_line_rights, by_line))]
        check_caps(lines, groups, self.error)
        if any(d.severity == "error" for d in self.problems):
            return None
        warnings = [d for d in self.problems if d.severity != "error"]
        return RuleBook(groups, lines, warnings, self.functions, self.event_types)

    def _check_periods(self, items: list[tuple[RulesetFile, str]], what: str) -> None:
        ordered = sorted(items, key=lambda x: x[0].ruleset.effective_from)
        for (a, _), (b, _) in zip(ordered, ordered[1:], strict=False):
            end = a.ruleset.effective_to
            if end is None or end > b.ruleset.effective_from:
                self.error(b, f"{what} version {b.ruleset.version} starts "
                              f"{b.ruleset.effective_from.isoformat()} while version "
                              f"{a.ruleset.version} ({a.path}) is still in force; set "
                              f"effective_to on the earlier one",
                           line=b.line_of("effective_from"), field="effective_from")

    # --- namespaces and expressions ------------------------------------------------------

    def namespace(self, line: str, etype: str, with_original: bool) -> Namespace:
        key = (line, etype, with_original)
        ns = self._ns_cache.get(key)
        if ns is None:
            model = self.event_types.get(line, {}).get(etype)
            fields = tuple(model.model_fields) if model else ()
            ns = build_namespace(payload_fields=fields, credits=sorted(self.credits),
                                 tiers=sorted(self.tiers), functions=self.functions,
                                 with_original=with_original)
            self._ns_cache[key] = ns
        return ns

    def compile(self, f: RulesetFile, text: str | None, ns: Namespace, *, rule: str | None,
                field: str, line: int | None, etype: str | None = None) -> Expression | None:
        if text is None:
            return None
        try:
            return compile_expression(text, ns)
        except ExpressionError as exc:
            where = f" (for event type {etype})" if etype else ""
            self.error(f, f"{exc}{where}", line=line, rule=rule, field=field)
            return None

    # --- rights ----------------------------------------------------------------------------

    def _right(self, f: RulesetFile, index: int, right: Right, owner: str) -> RightDef:
        ns = self.namespace(owner if owner != "group" else "", "", False)
        when = self.compile(f, right.when, ns, rule=right.id, field="when",
                            line=f.rule_line("rights", index, "when"))
        for tier in right.tiers or []:
            if tier not in self.tiers:
                self.error(f, f"unknown tier {tier!r}", rule=right.id, field="tiers",
                           line=f.rule_line("rights", index, "tiers"))
        return RightDef(right=right, line=owner, file=f.path, when=when,
                        line_no=f.rule_line("rights", index, "tiers") or f.rule_line("rights",
                                                                                      index))

    # --- line rulesets ---------------------------------------------------------------------

    def _line_book(self, f: RulesetFile, group_rights: dict[str, RightDef]) -> LineBook | None:
        rs: LineRuleset = f.ruleset  # type: ignore[assignment]
        line = rs.line
        types = self.event_types.get(line)
        if types is None:
            hint = suggest(line, self.event_types)
            self.error(f, f"no installed plugin declares line {line!r} (installed lines: "
                          f"{', '.join(sorted(self.event_types)) or 'none'})"
                          + (f"; did you mean {hint!r}?" if hint else ""),
                       line=f.line_of("line"), field="line")
            return None
        ids: dict[str, int] = {}
        rights: dict[str, RightDef] = {}
        for i, right in enumerate(rs.rights):
            if right.id in group_rights:
                self.error(f, f"right {right.id!r} is already a group right", rule=right.id,
                           line=f.rule_line("rights", i))
            rights[right.id] = self._right(f, i, right, line)
        visible = {**group_rights, **rights}
        for i, right in enumerate(rs.rights):
            if right.supersedes and right.supersedes not in visible:
                self.error(f, f"supersedes unknown right {right.supersedes!r}", rule=right.id,
                           field="supersedes", line=f.rule_line("rights", i, "supersedes"))
        by_type: dict[str, TypeRules] = {t: TypeRules() for t in types}
        for section in ("earn", "reverse", "credit", "grant"):
            for i, spec in enumerate(getattr(rs, section)):
                if spec.id in ids:
                    self.error(f, f"duplicate rule id (also at line {ids[spec.id]})",
                               rule=spec.id, line=f.rule_line(section, i, "id"))
                ids[spec.id] = f.rule_line(section, i, "id") or 0
                self._rule(f, section, i, spec, line, types, by_type, rights)
        for i, up in enumerate(rs.on_upgrade):
            if up.to not in self.tiers:
                hint = suggest(up.to, self.tiers)
                self.error(f, f"unknown tier {up.to!r}"
                              + (f"; did you mean {hint!r}?" if hint else ""),
                           rule=up.id, field="to", line=f.rule_line("on_upgrade", i, "to"))
            if up.right not in rights:
                self.error(f, f"on_upgrade may grant only this line's rights; unknown right "
                              f"{up.right!r}", rule=up.id, field="right",
                           line=f.rule_line("on_upgrade", i, "right"))
        return LineBook(ruleset=rs, file=f.path, by_type=by_type, rights=rights)

    def _rule(self, f: RulesetFile, section: str, index: int, spec: Any, line: str,
              types: Mapping[str, type[EventPayload]], by_type: dict[str, TypeRules],
              rights: dict[str, RightDef]) -> None:
        rl = lambda fld=None: f.rule_line(section, index, fld)  # noqa: E731
        ok = True
        for etype in spec.on:
            if etype not in types:
                hint = suggest(etype, types)
                self.error(f, f"unknown event type {etype!r} for line {line!r} (known: "
                              f"{', '.join(sorted(types))})"
                              + (f"; did you mean {hint!r}?" if hint else ""),
                           rule=spec.id, field="on", line=rl("on"))
                ok = False
        if section == "credit" and spec.credit not in self.credits:
            hint = suggest(spec.credit, self.credits)
            self.error(f, f"unknown qualifying credit {spec.credit!r}; the group policy "
                          f"declares {sorted(self.credits)}"
                          + (f"; did you mean {hint!r}?" if hint else ""),
                       rule=spec.id, field="credit", line=rl("credit"))
            ok = False
        if section == "grant" and spec.right not in rights:
            self.error(f, f"grant rules may grant only this line's rights; unknown right "
                          f"{spec.right!r}", rule=spec.id, field="right", line=rl("right"))
            ok = False
        if section == "earn" and spec.pending and spec.pending.until \
                and spec.pending.until not in types:
            self.error(f, f"pending.until names unknown event type {spec.pending.until!r}",
                       rule=spec.id, field="pending.until", line=rl("pending"))
            ok = False
        if not ok:
            return
        for etype in spec.on:
            compiled = self._compile_rule(f, section, index, spec, line, etype)
            if compiled is not None:
                getattr(by_type[etype], compiled.kind).append(compiled)

    def _compile_rule(self, f: RulesetFile, section: str, index: int, spec: Any, line: str,
                      etype: str, version: str | None = None) -> CompiledRule | None:
        rl = lambda fld=None: f.rule_line(section, index, fld)  # noqa: E731
        ns = self.namespace(line, etype, with_original=(section == "reverse"))
        when = self.compile(f, spec.when, ns, rule=spec.id, field="when", line=rl("when"),
                            etype=etype)
        value = original = None
        fixed = extra = None
        kind = section
        if section in ("earn", "cross_sell"):
            kind = spec.kind
            if spec.kind == "base":
                value = self.compile(f, spec.spend or "event.amount", ns, rule=spec.id,
                                     field="spend", line=rl("spend"), etype=etype)
            elif spec.kind == "multiply":
                extra = spec.factor - 1
            elif isinstance(spec.points, int):
                fixed = spec.points
            else:
                value = self.compile(f, spec.points, ns, rule=spec.id, field="points",
                                     line=rl("points"), etype=etype)
        elif section == "reverse":
            original = self.compile(f, spec.original, ns, rule=spec.id, field="original",
                                    line=rl("original"), etype=etype)
            value = self.compile(f, spec.refunded, ns, rule=spec.id, field="refunded",
                                 line=rl("refunded"), etype=etype)
        elif section == "credit":
            value = self.compile(f, spec.value, ns, rule=spec.id, field="value",
                                 line=rl("value"), etype=etype)
        names = set()
        for e in (when, value, original):
            if e is not None:
                names.update(e.names)
        failed = (spec.when is not None and when is None) or (
            kind in ("base", "reverse", "credit") and value is None) or (
            kind == "reverse" and original is None) or (
            kind == "bonus" and fixed is None and value is None)
        if failed:
            return None
        return CompiledRule(id=spec.id, section=section, kind=kind,
                            version=version or f.ruleset.version, file=f.path,
                            line_no=rl("id"), spec=spec, when=when, value=value,
                            original=original, fixed_points=fixed, extra_factor=extra,
                            names=tuple(sorted(names)),
                            reads=tuple((n, SOURCES.index(ns.names[n].source), ns.names[n].key)
                                        for n in sorted(names)))

    # --- the group policy ------------------------------------------------------------------

    def _group_book(self, f: RulesetFile, group_rights: dict[str, RightDef],
                    line_rights: dict[str, RightDef],
                    by_line: dict[str, list[RulesetFile]]) -> GroupBook | None:
        p: GroupPolicy = f.ruleset  # type: ignore[assignment]
        try:
            tz = ZoneInfo(p.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.error(f, f"unknown timezone {p.timezone!r} (use an IANA name such as "
                          "Asia/Shanghai)", field="timezone", line=f.line_of("timezone"))
            return None
        check_ladder(f, p, {**group_rights, **line_rights}, self.error)
        needing_caps = set(self.event_types) | set(by_line)
        for line in sorted(needing_caps - set(p.lines)):
            self.error(f, f"line {line!r} has no caps in the group policy (lines.{line}: "
                          "max_multiplier, max_cost_ratio)", field="lines",
                       line=f.line_of("lines"))
        cross: dict[str, TypeRules] = {}
        for i, rule in enumerate(p.cross_sell):
            if rule.kind != "bonus":
                self.error(f, "cross_sell rules must be bonus rules", rule=rule.id,
                           field="kind", line=f.rule_line("cross_sell", i, "kind"))
                continue
            for target in rule.on:
                matched = [(ln, t) for ln, ts in self.event_types.items() for t in ts
                           if target == "*" or target in (ln, f"{ln}:{t}")]
                # A line of the program (it has caps) whose plugin is not installed here
                # simply has no events yet; anything else is a typo.
                planned = target.split(":", 1)[0] in p.lines and target.split(":", 1)[0] \
                    not in self.event_types
                if not matched and not planned:
                    self.error(f, f"'on' entry {target!r} matches no line or line:type",
                               rule=rule.id, field="on", line=f.rule_line("cross_sell", i, "on"))
                for ln, t in matched:
                    compiled = self._compile_rule(f, "cross_sell", i, rule, ln, t)
                    if compiled is not None:
                        cross.setdefault(f"{ln}:{t}", TypeRules()).bonus.append(compiled)
        rank = {t.id: i for i, t in enumerate(p.tiers)}
        scope = {}
        for line, caps in p.lines.items():
            pol: dict[str, Any] = {
                "line.name": line, "line.max_multiplier": caps.max_multiplier,
                "line.max_cost_ratio": caps.max_cost_ratio,
                "line.max_bonus_points": caps.max_bonus_points,
                "group.currency": p.currency, "group.base_rate": p.base_rate,
                "group.point_value": p.point_value, "group.timezone": p.timezone}
            pol.update({f"tier.{t}": r for t, r in rank.items()})
            scope[line] = pol
        return GroupBook(policy=p, file=f.path, tz=tz, tier_rank=rank, rights=group_rights,
                         cross_sell=cross, policy_scope=scope)
