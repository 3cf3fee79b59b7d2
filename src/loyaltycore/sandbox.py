"""The expression sandbox: rule expressions are checked once and compiled once.

Rule authors write small Python-syntax expressions (``event.amount >= 500 and
member.tier == 'gold'``). This module is the single security boundary for them:

1. **Parse and check (at load).** The text is parsed with the same grammar simpleeval
   uses and every node is checked against an allow-list modelled on simpleeval's
   hardened evaluator, but stricter: no attribute access at all (``event.amount`` is a
   *name* with a dot, resolved here against the declared fields), no method calls, no
   comprehensions, lambdas, f-strings or assignments, bounded size, depth, collection
   literals and numeric literals. Unknown names and functions are refused here, with a
   "did you mean".
2. **Compile (at load).** The checked tree is rewritten into a Python expression in
   which every user name has become a dictionary lookup or an inlined constant, and every
   operator that could blow up (``* + ** %`` and division) has become a call to a bounded
   helper. That tree is compiled once, with no builtins. Nothing the author wrote
   survives as a Python identifier, so no code path can reach an object's internals.
3. **Evaluate (per event).** A plain call of the compiled function: no per-node
   interpretation: it runs at the speed of hand-written lambdas (docs/design.md).

Why not interpret with simpleeval at run time: it walks the tree per evaluation (about
20k events/s for 12 rules on our hardware) and its power limit allows ``4000000 **
4000000``. simpleeval remains the reference: the property tests check that this
compiler agrees with simpleeval's evaluator on every expression both accept.
"""

from __future__ import annotations

import ast
import copy
import decimal
import signal
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import simpleeval

from .bounded import (  # noqa: F401 - re-exported: part of the sandbox's API
    MAX_DECIMAL_DIGITS,
    MAX_EXPONENT,
    MAX_INT_BITS,
    MAX_STRING_LENGTH,
    SAFE_SCALARS,
    decimal_to_int,
    op_add,
    op_div,
    op_floordiv,
    op_item,
    op_mod,
    op_mul,
    op_pow,
    op_sub,
    safe_value,
    value_size,
)
from .errors import EvaluationError, ExpressionRefused, suggest
from .patterns import (  # noqa: F401 - re-exported: part of the sandbox's API
    MAX_REGEX_INPUT,
    MAX_REGEX_WAYS,
    check_regex,
    regex_prepare,
)

MAX_EXPRESSION_LENGTH = 4000
MAX_DEPTH = 32
MAX_NODES = 400
MAX_COLLECTION = 256
MAX_LITERAL = 10**30
DEFAULT_TIME_LIMIT = 0.5  # seconds; for one-off evaluations such as `loyalty eval`



@dataclass(frozen=True)
class Constant:
    """A name whose value is known at load (group and line policy): inlined when compiled."""

    value: Any


@dataclass(frozen=True)
class Field:
    """A name read at evaluation time: ``source`` is the mapping it lives in, ``key`` its key."""

    source: str
    key: str


@dataclass(frozen=True)
class Function:
    """A function expressions may call.

    ``literal_args`` names argument positions that must be literals; ``prepare`` turns
    those literals into whatever the call needs (a compiled regex, say) once, at load,
    and may refuse them.
    """

    fn: Callable[..., Any]
    min_args: int
    max_args: int
    doc: str = ""
    literal_args: tuple[int, ...] = ()
    prepare: Callable[..., Callable[..., Any]] | None = None


@dataclass
class Namespace:
    """Everything an expression may read and call.

    ``names`` maps dotted names (``event.amount``) to a :class:`Field` or a
    :class:`Constant`; ``sources`` fixes the order of the mappings the compiled
    function takes as positional arguments.
    """

    sources: tuple[str, ...]
    names: dict[str, Field | Constant] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)

    def roots(self) -> set[str]:
        return {n.split(".", 1)[0] for n in self.names}


@dataclass(frozen=True)
class Expression:
    """A checked, compiled expression. Call ``fn(*mappings)`` in ``namespace.sources`` order."""

    text: str
    fn: Callable[..., Any]
    names: tuple[str, ...]
    sources: tuple[str, ...]
    # The checked, rewritten body and the names it is closed over: what
    # compile_selector fuses into one function per ruleset.
    body: ast.expr | None = field(default=None, compare=False, repr=False)
    env: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def evaluate(self, scope: Mapping[str, Mapping[str, Any]]) -> Any:
        """Evaluate against ``scope`` (source name -> mapping); errors become EvaluationError."""
        args = [scope.get(s, _EMPTY) for s in self.sources]
        try:
            return self.fn(*args)
        except EvaluationError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure inside an expression is its fault
            raise as_evaluation_error(exc, self.text) from None


_EMPTY: Mapping[str, Any] = {}


def as_evaluation_error(exc: BaseException, text: str) -> EvaluationError:
    """Turn whatever an expression raised into one EvaluationError that says why."""
    if isinstance(exc, EvaluationError):
        return exc
    if isinstance(exc, KeyError):
        # KeyError() may come without args (from a plugin function): do not fail here.
        key = exc.args[0] if exc.args else ""
        return EvaluationError(f"no value for {key!r} in this context",
                               reason="missing", expression=text)
    if isinstance(exc, ZeroDivisionError | decimal.DivisionByZero):
        return EvaluationError("division by zero", reason="arithmetic", expression=text)
    if isinstance(exc, decimal.DecimalException | OverflowError):
        return EvaluationError(f"arithmetic out of range ({type(exc).__name__})",
                               reason="arithmetic", expression=text)
    if isinstance(exc, TypeError):
        detail = " ".join(str(exc).split())[:500]
        return EvaluationError(f"wrong type of value: {detail}", reason="type", expression=text)
    if isinstance(exc, RecursionError | MemoryError):
        return EvaluationError("expression too large to evaluate", reason="size", expression=text)
    # One line: the CLI prints "error: <reason>: <message>" and nothing else.
    detail = " ".join(str(exc).split())[:500]
    return EvaluationError(f"{type(exc).__name__}: {detail}", reason="error", expression=text)


_BINOPS: dict[type[ast.operator], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("_add", op_add),
    ast.Sub: ("_sub", op_sub),
    ast.Mult: ("_mul", op_mul),
    ast.Div: ("_div", op_div),
    ast.FloorDiv: ("_floordiv", op_floordiv),
    ast.Mod: ("_mod", op_mod),
    ast.Pow: ("_pow", op_pow),
}
_COMPARE_OPS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
                ast.Is, ast.IsNot)

# Node families refused with a reason an author can act on.
_REFUSED: dict[type[ast.AST], tuple[str, str]] = {
    ast.ListComp: ("comprehension", "comprehensions are not allowed"),
    ast.SetComp: ("comprehension", "comprehensions are not allowed"),
    ast.DictComp: ("comprehension", "comprehensions are not allowed"),
    ast.GeneratorExp: ("comprehension", "generator expressions are not allowed"),
    ast.Lambda: ("lambda", "lambda is not allowed"),
    ast.NamedExpr: ("assignment", "assignment (:=) is not allowed; expressions cannot change "
                                  "anything"),
    ast.JoinedStr: ("format-string", "f-strings are not allowed"),
    ast.FormattedValue: ("format-string", "f-strings are not allowed"),
    ast.Starred: ("syntax", "* unpacking is not allowed"),
    ast.Dict: ("syntax", "dict literals are not allowed"),
    ast.Slice: ("syntax", "slices are not allowed"),
    ast.Await: ("syntax", "await is not allowed"),
    ast.Yield: ("syntax", "yield is not allowed"),
    ast.YieldFrom: ("syntax", "yield is not allowed"),
}


# --- compilation ------------------------------------------------------------------------


def compile_expression(text: str, namespace: Namespace) -> Expression:
    """Check ``text`` against the allow-list and ``namespace``; compile it once.

    Raises :class:`ExpressionRefused` (with a ``reason`` and, for unknown names and
    functions, a suggestion) for anything the sandbox will not run.
    """
    if not isinstance(text, str):
        raise ExpressionRefused("an expression must be a string", reason="syntax")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionRefused(
            f"expression is {len(text)} characters long; the limit is {MAX_EXPRESSION_LENGTH}",
            reason="size", expression=text)
    source = text.strip()
    if not source:
        raise ExpressionRefused("empty expression", reason="syntax", expression=text)
    try:
        with _quiet_compiler():
            tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExpressionRefused(f"syntax error: {exc.msg} at column {exc.offset}",
                                reason="syntax", expression=text) from None
    except (RecursionError, MemoryError, ValueError) as exc:
        reason = "depth" if isinstance(exc, RecursionError | MemoryError) else "syntax"
        raise ExpressionRefused("expression is nested too deeply to parse" if reason == "depth"
                                else f"cannot parse: {exc}", reason=reason,
                                expression=text) from None
    compiler = _Compiler(namespace, text)
    body = compiler.visit_root(tree.body)
    args = ast.arguments(posonlyargs=[], args=[ast.arg(a) for a in compiler.source_args],
                         kwonlyargs=[], kw_defaults=[], defaults=[])
    lam = ast.Expression(ast.Lambda(args=args, body=body))
    ast.fix_missing_locations(lam)
    _assert_generated_is_closed(lam, set(compiler.globals) | set(compiler.source_args))
    with _quiet_compiler():
        code = compile(lam, "<rule expression>", "eval")
    fn = eval(code, {"__builtins__": {}, **compiler.globals})  # noqa: S307 - checked tree
    return Expression(text=text, fn=fn, names=tuple(sorted(compiler.names_read)),
                      sources=namespace.sources, body=body, env=dict(compiler.globals))


def compile_selector(groups: list[tuple[str, list[tuple[Expression | None, Any]]]],
                     sources: tuple[str, ...]) -> Callable[..., list[Any]]:
    """One function that evaluates many checked conditions and returns the selected items.

    ``groups`` is a sequence of ``(mode, [(condition or None, item), ...])``. In an
    ``"all"`` group every condition is evaluated and each item whose condition holds (or
    that has none) is selected; in a ``"first"`` group conditions are evaluated in order
    only until one holds, exactly like an ``if/elif`` chain. The result is the list of
    selected items, in order. It runs the same checked trees as each expression's own
    ``fn`` (renamed apart, nothing else added), so it raises whatever they raise.

    Why: one call per event for a whole ruleset, instead of one Python call per rule.
    """
    env: dict[str, Any] = {}
    args = [f"_s{i}" for i in range(len(sources))]
    body: list[ast.stmt] = [ast.Assign([ast.Name("_o", ast.Store())], ast.List([], ast.Load()))]
    n = 0

    def select(item: Any) -> ast.stmt:
        name = f"_i{len(env)}"
        env[name] = (item,)
        return ast.AugAssign(ast.Name("_o", ast.Store()), ast.Add(), ast.Name(name, ast.Load()))

    def test(expr: Expression) -> ast.expr:
        nonlocal n
        n += 1
        return _renamed_apart(expr, sources, f"_e{n - 1}", env)

    for mode, items in groups:
        if mode == "all":
            for cond, item in items:
                body.append(select(item) if cond is None else ast.If(test(cond), [select(item)], []))
        elif mode == "first":
            chain: list[ast.stmt] = body
            for cond, item in items:
                if cond is None:
                    chain.append(select(item))
                    break
                branch = ast.If(test(cond), [select(item)], [])
                chain.append(branch)
                chain = branch.orelse
        else:
            raise ValueError(f"unknown selector mode {mode!r}")
    body.append(ast.Return(ast.Name("_o", ast.Load())))
    fn_def = ast.FunctionDef(
        name="_selector", body=body, decorator_list=[], returns=None, type_comment=None,
        args=ast.arguments(posonlyargs=[], args=[ast.arg(a) for a in args], kwonlyargs=[],
                           kw_defaults=[], defaults=[]))
    module = ast.Module([fn_def], type_ignores=[])
    ast.fix_missing_locations(module)
    _assert_generated_is_closed(module, set(env) | set(args) | {"_o", "_selector"})
    with _quiet_compiler():
        code = compile(module, "<ruleset conditions>", "exec")
    namespace: dict[str, Any] = {"__builtins__": {}, **env}
    exec(code, namespace)  # noqa: S102 - built only from checked trees
    return namespace["_selector"]


def compile_program(text: str, name: str, sources: tuple[str, ...], *,
                    slots: Mapping[str, Expression], constants: Mapping[str, Any],
                    env: Mapping[str, Any]) -> Callable[..., Any]:
    """Compile the core-written function ``name`` in ``text``, with checked expressions in it.

    ``text`` is Python source the core generates (never text a rule author wrote); it
    reads the source mappings as ``_s0``, ``_s1`` ... in ``sources`` order. Each name in
    ``slots`` stands for one checked expression and is replaced by that expression's
    tree (renamed apart, nothing else added), each name in ``constants`` by its value as
    a literal; ``env`` holds everything else the core's code calls. So rule text only
    ever enters compiled code through the allow-list of :func:`compile_expression`.

    Why: a ruleset's conditions, values and what its rules do, fused into one call per
    event, instead of a Python call and a dispatch per rule.
    """
    tree = ast.parse(text, mode="exec")
    merged: dict[str, Any] = dict(env)
    n = 0

    def splice(expr: Expression) -> ast.expr:
        nonlocal n
        n += 1
        body = _renamed_apart(expr, sources, f"_e{n - 1}", merged)
        _assert_generated_is_closed(body, {f"_e{n - 1}{k}" for k in expr.env}
                                    | {f"_s{i}" for i in range(len(sources))})
        return body

    class Splicer(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.expr:
            if isinstance(node.ctx, ast.Load):
                if node.id in slots:
                    return splice(slots[node.id])
                if node.id in constants:
                    value = constants[node.id]
                    if not (value is None or isinstance(value, str | int | bool)):
                        raise ValueError(f"constant {node.id!r} is not a literal")
                    return ast.Constant(value)
            return node

    tree = ast.fix_missing_locations(Splicer().visit(tree))
    with _quiet_compiler():
        code = compile(tree, "<ruleset program>", "exec")
    namespace: dict[str, Any] = {"__builtins__": {}, **merged}
    exec(code, namespace)  # noqa: S102 - core code around checked expression trees
    return namespace[name]


def _renamed_apart(expr: Expression, sources: tuple[str, ...], prefix: str,
                   env: dict[str, Any]) -> ast.expr:
    """A copy of ``expr``'s checked tree whose bound names carry ``prefix``; their values
    are added to ``env``. So many expressions can share one compiled function."""
    if expr.body is None or tuple(expr.sources) != tuple(sources):
        raise ValueError("expression was not compiled for these sources")
    renamed = {k: f"{prefix}{k}" for k in expr.env}
    for k, v in expr.env.items():
        if renamed[k] in env:
            raise ValueError(f"name {renamed[k]!r} is already bound")
        env[renamed[k]] = v
    tree = copy.deepcopy(expr.body)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in renamed:
            node.id = renamed[node.id]
    return tree


@contextmanager
def _quiet_compiler() -> Iterator[None]:
    """Silence CPython's compile-time warnings while parsing and compiling a rule.

    Why: ``0 is None`` makes compile() warn ('"is" with a literal') and ``'\\d'`` makes
    the parser warn (invalid escape). Under ``-W error`` those warnings became a raw
    SyntaxError escaping compile_expression, and otherwise an extra stderr line in
    ``loyalty eval``: whether a rule loads must not depend on the warning filters.
    (catch_warnings swaps process-wide filters; rules are compiled at load, not per event.)
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


class _Compiler:
    """Checks one parsed expression and rewrites it into a closed Python tree."""

    def __init__(self, namespace: Namespace, text: str):
        self.ns = namespace
        self.text = text
        self.source_args = [f"_s{i}" for i in range(len(namespace.sources))]
        self.globals: dict[str, Any] = {}
        self.names_read: set[str] = set()
        self.nodes = 0

    def refuse(self, message: str, reason: str, suggestion: str | None = None):
        raise ExpressionRefused(message, reason=reason, expression=self.text,
                                suggestion=suggestion)

    def bind(self, prefix: str, value: Any) -> ast.Name:
        name = f"_{prefix}{len(self.globals)}"
        self.globals[name] = value
        return ast.Name(name, ast.Load())

    def visit_root(self, node: ast.AST) -> ast.expr:
        return self.visit(node, 0)

    def visit(self, node: ast.AST, depth: int) -> ast.expr:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self.refuse(f"expression has more than {MAX_NODES} parts", "size")
        if depth > MAX_DEPTH:
            self.refuse(f"expression is nested more than {MAX_DEPTH} levels deep", "depth")
        refused = _REFUSED.get(type(node))
        if refused:
            self.refuse(refused[1], refused[0])
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            self.refuse(f"{type(node).__name__} is not allowed in a rule expression", "syntax")
        return method(node, depth + 1)

    # literals
    def visit_Constant(self, node: ast.Constant, depth: int) -> ast.expr:
        value = node.value
        if isinstance(value, bool) or value is None:
            return ast.Constant(value)
        if isinstance(value, int):
            if abs(value) > MAX_LITERAL:
                self.refuse(f"number literal larger than {MAX_LITERAL:.0e}", "size")
            return ast.Constant(value)
        if isinstance(value, float):
            # Money is Decimal; 1.5 in a rule means exactly 1.5, not a binary float.
            text = ast.get_source_segment(self.text.strip(), node) or repr(value)
            try:
                dec = Decimal(text.replace("_", ""))
            except decimal.InvalidOperation:
                dec = Decimal(repr(value))
            if not dec.is_finite() or abs(dec) > MAX_LITERAL:
                self.refuse("number literal out of range", "size")
            return self.bind("c", dec)
        if isinstance(value, str):
            if len(value) > MAX_STRING_LENGTH:
                self.refuse(f"string literal longer than {MAX_STRING_LENGTH}", "size")
            return ast.Constant(value)
        self.refuse(f"literal of type {type(value).__name__} is not allowed", "syntax")

    def visit_Tuple(self, node: ast.Tuple | ast.List | ast.Set, depth: int) -> ast.expr:
        if len(node.elts) > MAX_COLLECTION:
            self.refuse(f"list literal with more than {MAX_COLLECTION} items", "size")
        elts = [self.visit(e, depth) for e in node.elts]
        tup = ast.Tuple(elts, ast.Load())
        if isinstance(node, ast.Set):
            return ast.Call(self.bind("f", frozenset), [tup], [])
        return tup

    visit_List = visit_Tuple
    visit_Set = visit_Tuple

    # names
    def visit_Name(self, node: ast.Name, depth: int) -> ast.expr:
        return self.resolve(node.id)

    def visit_Attribute(self, node: ast.Attribute, depth: int) -> ast.expr:
        parts: list[str] = []
        cur: ast.AST = node
        while isinstance(cur, ast.Attribute):
            parts.append(cur.attr)
            cur = cur.value
        if not isinstance(cur, ast.Name):
            bad = next((p for p in parts if p.startswith("_")), parts[-1])
            self.refuse(f"attribute access ({'.'.join(reversed(parts))}) is not allowed; "
                        f"only declared names such as event.amount can be read"
                        + (f" (and never '{bad}')" if bad.startswith("_") else ""),
                        "attribute")
        parts.append(cur.id)
        return self.resolve(".".join(reversed(parts)))

    def resolve(self, dotted: str) -> ast.expr:
        for part in dotted.split("."):
            for prefix in simpleeval.DISALLOW_PREFIXES:
                if part.startswith(prefix):
                    self.refuse(f"'{part}' is not allowed: names starting with '{prefix}' are "
                                "internal", "attribute" if "." in dotted else "forbidden-name")
        target = self.ns.names.get(dotted)
        if target is None:
            roots = self.ns.roots()
            root = dotted.split(".", 1)[0]
            if root in roots:
                hint = suggest(dotted, self.ns.names)
                self.refuse(f"unknown field '{dotted}'", "unknown-name", hint)
            if dotted in self.ns.functions:
                self.refuse(f"'{dotted}' is a function; call it as {dotted}(...)",
                            "unknown-name")
            hint = suggest(dotted, list(self.ns.names) + sorted(roots))
            known = (f"names start with one of: {', '.join(sorted(roots))}" if roots
                     else "no names are defined here")
            self.refuse(f"unknown name '{dotted}' ({known})", "forbidden-name", hint)
        self.names_read.add(dotted)
        if isinstance(target, Constant):
            return self.bind("c", target.value)
        index = self.ns.sources.index(target.source)
        return ast.Subscript(ast.Name(self.source_args[index], ast.Load()),
                             ast.Constant(target.key), ast.Load())

    # operators
    def visit_BoolOp(self, node: ast.BoolOp, depth: int) -> ast.expr:
        return ast.BoolOp(type(node.op)(), [self.visit(v, depth) for v in node.values])

    def visit_UnaryOp(self, node: ast.UnaryOp, depth: int) -> ast.expr:
        if not isinstance(node.op, ast.Not | ast.USub | ast.UAdd):
            self.refuse(f"operator {type(node.op).__name__} is not allowed", "operator")
        return ast.UnaryOp(type(node.op)(), self.visit(node.operand, depth))

    def visit_BinOp(self, node: ast.BinOp, depth: int) -> ast.expr:
        spec = _BINOPS.get(type(node.op))
        if spec is None:
            self.refuse(f"operator {type(node.op).__name__} is not allowed", "operator")
        name, fn = spec
        self.globals[name] = fn
        return ast.Call(ast.Name(name, ast.Load()),
                        [self.visit(node.left, depth), self.visit(node.right, depth)], [])

    def visit_Compare(self, node: ast.Compare, depth: int) -> ast.expr:
        for op, right in zip(node.ops, node.comparators, strict=True):
            if not isinstance(op, _COMPARE_OPS):
                self.refuse(f"comparison {type(op).__name__} is not allowed", "operator")
            if isinstance(op, ast.Is | ast.IsNot) and not (
                    isinstance(right, ast.Constant) and right.value is None):
                self.refuse("'is' may only compare with None; use == for values", "operator")
        return ast.Compare(self.visit(node.left, depth), [type(o)() for o in node.ops],
                           [self.visit(c, depth) for c in node.comparators])

    def visit_IfExp(self, node: ast.IfExp, depth: int) -> ast.expr:
        return ast.IfExp(self.visit(node.test, depth), self.visit(node.body, depth),
                         self.visit(node.orelse, depth))

    def visit_Subscript(self, node: ast.Subscript, depth: int) -> ast.expr:
        self.globals["_item"] = op_item
        return ast.Call(ast.Name("_item", ast.Load()),
                        [self.visit(node.value, depth), self.visit(node.slice, depth)], [])

    def visit_Call(self, node: ast.Call, depth: int) -> ast.expr:
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, ast.Attribute):
                self.refuse(f"methods cannot be called ('.{node.func.attr}(...)'); use a "
                            "function such as lower(x)", "attribute")
            self.refuse("only named functions can be called", "function")
        name = node.func.id
        spec = self.ns.functions.get(name)
        if spec is None:
            if name in simpleeval.DISALLOW_FUNCTIONS or name in {
                    "eval", "exec", "open", "getattr", "__import__", "compile", "globals",
                    "vars", "type", "setattr", "delattr", "locals", "input", "help"}:
                self.refuse(f"function '{name}' is forbidden", "function")
            self.refuse(f"unknown function '{name}'", "function",
                        suggest(name, self.ns.functions))
        if node.keywords:
            self.refuse(f"{name}() takes positional arguments only", "function")
        nargs = len(node.args)
        if not spec.min_args <= nargs <= spec.max_args:
            want = (str(spec.min_args) if spec.min_args == spec.max_args
                    else f"{spec.min_args} to {spec.max_args}")
            self.refuse(f"{name}() takes {want} argument(s), got {nargs}", "function")
        if spec.literal_args:
            literals = []
            for pos in spec.literal_args:
                arg = node.args[pos] if pos < nargs else None
                if arg is not None and not isinstance(arg, ast.Constant):
                    self.refuse(f"argument {pos + 1} of {name}() must be a literal", "function")
                literals.append(arg.value if arg is not None else None)
            try:
                bound = spec.prepare(*literals)  # type: ignore[misc]
            except ExpressionRefused as exc:
                self.refuse(str(exc), exc.reason)
            except Exception as exc:  # noqa: BLE001 - a plugin's prepare must not crash a load
                self.refuse(f"{name}() refused its literal argument ({type(exc).__name__})",
                            "function")
            rest = [self.visit(a, depth) for i, a in enumerate(node.args)
                    if i not in spec.literal_args]
            return ast.Call(self.bind("f", bound), rest, [])
        return ast.Call(self.bind("f", spec.fn), [self.visit(a, depth) for a in node.args], [])


def _assert_generated_is_closed(tree: ast.AST, allowed: set[str]) -> None:
    """Defence in depth: the generated tree reads only names we bound, never attributes."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):  # pragma: no cover - compiler bug guard
            raise AssertionError("sandbox compiler emitted an attribute access")
        if isinstance(node, ast.Name) and node.id not in allowed:  # pragma: no cover
            raise AssertionError(f"sandbox compiler emitted an unbound name {node.id!r}")


# --- one-off evaluation with a wall-clock limit ------------------------------------------


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the body after ``seconds`` (main thread only; elsewhere it just runs)."""
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def on_alarm(signum, frame):
        raise EvaluationError(f"evaluation took longer than {seconds}s", reason="time")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def evaluate_once(text: str, namespace: Namespace, scope: Mapping[str, Mapping[str, Any]],
                  *, seconds: float = DEFAULT_TIME_LIMIT) -> Any:
    """Compile and evaluate ``text`` once, under a time limit: for tools, not the hot path."""
    expression = compile_expression(text, namespace)
    with time_limit(seconds):
        return expression.evaluate(scope)
