"""`loyalty eval`: values printed as JSON; every attack refused with exit 2 and one line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from loyaltycore.cli import cli


def make_runner() -> CliRunner:
    try:  # click < 8.2 mixes stderr into output unless told not to
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        return CliRunner()


@pytest.fixture
def context_file(tmp_path):
    path = tmp_path / "ctx.json"
    path.write_text(json.dumps({
        "event": {"amount": 120.5, "nights": 3, "channel": "App", "sku": "BTY-1234",
                  "tags": ["gift", "promo"], "meta": {"k": 1}, "coupon": None,
                  "long": "a" * 1_000, "x": 5},
        "member": {"tier": "gold", "birth_month": 3},
    }), encoding="utf-8")
    return str(path)


def run(expr: str, context: str | None = None, *extra: str):
    args = ["eval", *extra]
    if context:
        args += ["--context", context]
    # an expression that begins with '-' needs '--' before it
    args += ["--", expr] if expr.startswith("-") else [expr]
    return make_runner().invoke(cli, args)


def value(expr: str, context: str | None = None):
    result = run(expr, context)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def assert_refused(expr: str, context: str | None, reasons: set[str]) -> str:
    result = run(expr, context)
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    # no crash inside the command: the only exception is the exit
    assert result.exception is None or isinstance(result.exception, SystemExit)
    stderr = result.stderr
    assert "Traceback" not in stderr and "Traceback" not in result.stdout
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    reason = lines[0][len("error: "):].split(":", 1)[0]
    assert reason in reasons, lines[0]
    assert result.stdout == ""
    return lines[0]


# --- values --------------------------------------------------------------------------


@pytest.mark.parametrize("expr,expected", [
    ("1 + 2", 3),
    ("0.1 + 0.2", "0.3"),
    ("7 / 2", "3.5"),
    ("1 / 4 + 1 / 4", "0.50"),
    ("round(2.5)", 3),
    ("2 ** 10", 1024),
    ("-3", -3),
    ("3 > 2 and 'a' < 'b'", True),
    ("1 == 2 or 2 != 2", False),
    ("not 0", True),
    ("'yes' if 1 < 2 else 'no'", "yes"),
    ("lower('ABC')", "abc"),
    ("max(1, 5, 3)", 5),
    ("percent(200, 10)", "20"),
    ("[1, 2, 3]", [1, 2, 3]),
    ("{3, 1, 2}", [1, 2, 3]),
    ("None", None),
    ("'a' * 3", "aaa"),
])
def test_values_without_context(expr, expected):
    assert value(expr) == expected


@pytest.mark.parametrize("expr,expected", [
    ("event.amount", "120.5"),
    ("event.amount * 1.25", "150.625"),
    ("event.amount >= 100 and member.tier == 'gold'", True),
    ("event.nights * 2", 6),
    ("'gift' in event.tags", True),
    ("event.tags", ["gift", "promo"]),
    ("len(event.tags)", 2),
    ("event.meta['k']", 1),
    ("coalesce(event.coupon, 'none')", "none"),
    ("event.coupon is None", True),
    ("matches(event.sku, '^BTY-[0-9]{4}$')", True),
    ("upper(event.channel)", "APP"),
    ("str(member.birth_month)", "3"),
    ("clamp(event.nights, 0, 2)", 2),
])
def test_values_from_context(context_file, expr, expected):
    assert value(expr, context_file) == expected


def test_unknown_name_suggests_the_field(context_file):
    line = assert_refused("event.amout", context_file, {"unknown-name"})
    assert "did you mean 'event.amount'" in line


def test_evaluation_errors_are_one_line(context_file):
    assert_refused("1 / 0", None, {"arithmetic"})
    assert_refused("event.meta['nope']", context_file, {"missing"})
    assert_refused("lower(event.nights)", context_file, {"type"})


def test_bad_context_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope", encoding="utf-8")
    result = run("1", str(bad))
    assert result.exit_code != 0
    assert "Traceback" not in result.stderr
    bad.write_text('{"event": 1}', encoding="utf-8")
    assert run("1", str(bad)).exit_code != 0


# --- attacks -------------------------------------------------------------------------

ATTRIBUTE = {"attribute"}
ATTACKS = [
    # attribute walks to internals
    ("().__class__.__mro__", ATTRIBUTE),
    ("().__class__.__mro__[1].__subclasses__()", ATTRIBUTE),
    ("event.__class__", ATTRIBUTE),
    ("event.x.__class__.__base__", ATTRIBUTE),
    ("x.__globals__", ATTRIBUTE),
    ("lower.__globals__", ATTRIBUTE),
    ("(lambda: 0).__code__", {"attribute", "lambda"}),
    ("(i for i in ()).gi_frame", {"attribute", "comprehension"}),
    ("(i for i in ()).gi_frame.f_back.f_globals", {"attribute", "comprehension"}),
    ("event.tags[0].__class__", ATTRIBUTE),
    ("event.meta.__init__", ATTRIBUTE),
    ("event._s0", ATTRIBUTE),
    # builtins and modules through names
    ("__import__('os')", {"function"}),
    ("__import__('os').system('id')", ATTRIBUTE),
    ("open('/etc/passwd')", {"function"}),
    ("getattr(event, 'x')", {"function"}),
    ("type(1)", {"function"}),
    ("eval('1')", {"function"}),
    ("exec('1')", {"function"}),
    ("globals()", {"function"}),
    ("vars()", {"function"}),
    ("__builtins__", {"forbidden-name"}),
    ("__builtins__['open']", {"forbidden-name"}),
    ("_s0", {"forbidden-name"}),
    ("_add(1, 2)", {"function"}),
    ("os", {"forbidden-name"}),
    ("lower", {"unknown-name"}),
    # format-string tricks
    ("'{0.__class__}'.format(1)", ATTRIBUTE),
    ("'{0.__class__}'.format(event)", ATTRIBUTE),
    ("'%s' % event.x", {"format"}),
    ("'%*d' % (10 ** 8, 1)", {"format"}),
    ("'%s' % (event.meta,)", {"format"}),
    ("f'{event.x}'", {"format-string"}),
    ("f'{event.x!r:>{10**8}}'", {"format-string"}),
    # mutation of the context
    ("event.tags.append(1)", ATTRIBUTE),
    ("event.meta.update(k=2)", ATTRIBUTE),
    ("(x := 1)", {"assignment"}),
    ("[y := event.x]", {"assignment"}),
    ("event.x = 1", {"syntax"}),
    ("event.x += 1", {"syntax"}),
    ("del event.x", {"syntax"}),
    ("event.meta['k'] = 2", {"syntax"}),
    # huge powers
    ("9 ** 9 ** 9", {"power"}),
    ("2 ** 10 ** 6", {"power"}),
    ("2 ** 1000", {"power"}),
    ("(10 ** 100) ** 100", {"power"}),
    ("2 ** decimal('1e99999')", {"power"}),
    (" * ".join(["10 ** 100"] * 15), {"size"}),
    ("int('9e999999')", {"size"}),
    ("floor(decimal('9e99999'))", {"size"}),
    # huge strings and lists
    ("'a' * 10 ** 9", {"size"}),
    ("(1,) * 10 ** 9", {"size"}),
    ("'a' * 60000 + 'a' * 60000", {"size"}),
    ("('a' * 50000 + 'a' * 50000) + ('a' * 50000 + 'a' * 50000)", {"size"}),
    ("str(('a' * 100000,) * 100000)", {"size"}),
    ("len(str(('a' * 1000,) * 1000))", {"size"}),
    ("10 ** 31 + 12345678901234567890123456789012", {"size"}),
    # comprehensions
    ("[x for x in (1, 2)]", {"comprehension"}),
    ("{x for x in (1, 2)}", {"comprehension"}),
    ("{x: x for x in (1, 2)}", {"comprehension"}),
    ("(x for x in (1, 2))", {"comprehension"}),
    ("max(x for x in event.tags)", {"comprehension"}),
    ("[x for x in (1,) for y in (1,) * 10 ** 9]", {"comprehension"}),
    # nesting
    ("[" * 200 + "]" * 200, {"depth", "syntax"}),
    ("[" * 10000 + "]" * 10000, {"size", "depth", "syntax"}),
    ("(" * 10000 + "1" + ")" * 10000, {"size", "depth", "syntax"}),
    ("-" * 3990 + "1", {"depth"}),
    ("not " * 990 + "1", {"depth"}),
    ("min(" * 200 + "1" + ")" * 200, {"depth", "syntax"}),
    ("event.tags" + "[0]" * 100, {"depth"}),
    # long expressions
    ("1 + " * 1500 + "1", {"size"}),
    ("'" + "a" * 5000 + "'", {"size"}),
    # catastrophic regular expressions
    ("matches(event.long, '(a+)+$')", {"regex"}),
    ("matches(event.long, '(a|aa)*')", {"regex"}),
    ("matches(event.long, '(a|aa)*$')", {"regex"}),
    ("matches(event.long, '(a*)*b')", {"regex"}),
    (r"matches(event.long, '(a)\\1')", {"regex"}),
    ("matches(event.long, '(?P<x>a+)(?P=x)')", {"regex"}),
    ("matches(event.long, '(?=a)+')", {"regex"}),
    ("matches(event.long, '(?>(a+)+b)')", {"regex"}),
    ("matches(event.long, '^(a?){25}a{25}$')", {"regex"}),
    ("matches(event.long, '.*.*.*c')", {"regex"}),
    ("matches(event.long, '" + "a?" * 30 + "a" * 30 + "')", {"regex"}),
    ("matches(event.long, 'a{99999}')", {"regex"}),
    ("matches(event.long, event.sku)", {"function"}),
    # other escapes and oddities
    ("lambda: 0", {"lambda"}),
    ("[*event.tags]", {"syntax"}),
    ("event.x if 1 else (yield)", {"syntax"}),
    ("await event.x", {"syntax"}),
    ("event.x is 5", {"operator"}),
    ("1 << 100000", {"operator"}),
    ("~event.x", {"operator"}),
    ("event.tags[0:1]", {"syntax"}),
    ("{'a': 1}", {"syntax"}),
    ("1j", {"syntax"}),
    ("b'abc'", {"syntax"}),
    ("...", {"syntax"}),
    ("round(x=1)", {"function"}),
    ("round(1, 2, 3)", {"function"}),
    ("lowr(event.sku)", {"function"}),
    ("1 +", {"syntax"}),
    ("", {"syntax"}),
]


@pytest.mark.parametrize("expr,reasons", ATTACKS, ids=[a[0][:40] for a in ATTACKS])
def test_attacks_are_refused_on_one_line(context_file, expr, reasons):
    assert_refused(expr, context_file, reasons)


def test_nesting_within_the_parser_limit_is_fine():
    assert value("(" * 200 + "1" + ")" * 200) == 1


def run_timeout(expr: str, context: str, seconds: str):
    return run(expr, context, "--timeout", seconds)


def test_timeout_option(context_file):
    result = run_timeout(r"matches(event.long, '\\w*\\d')", context_file, "0.0005")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("error: time: ")
    assert "Traceback" not in result.stderr
    assert run_timeout("1 + 1", context_file, "0.02").stdout.strip() == "2"


@pytest.mark.parametrize("expr", ["event.meta", "{1, 'a'}"])
def test_mappings_and_mixed_sets_print_as_json(context_file, expr):
    result = run(expr, context_file)
    assert result.exit_code == 0, result.stderr
    assert isinstance(json.loads(result.stdout), dict | list)


# --- --for LINE:TYPE: the names a real rule may read ----------------------------------


@pytest.fixture
def purchase_context(tmp_path):
    path = tmp_path / "purchase.json"
    path.write_text(json.dumps({
        "event": {"amount": "560.00", "category": "beauty", "weekday": 2, "channel": "app",
                  "local_date": "2026-02-04"},
        "member": {"tier": "gold", "enrolled_on": "2025-06-15"}}), encoding="utf-8")
    return path


def test_for_uses_the_real_rule_namespace(purchase_context):
    ok = run("event.weekday == 2 and event.channel == 'app' and event.amount >= 500",
             purchase_context, "--for", "retail:purchase")
    assert ok.exit_code == 0, ok.stderr
    assert ok.stdout.strip() == "true"
    months = run("months_between(member.enrolled_on, event.local_date)", purchase_context,
                 "--for", "retail:purchase")
    assert months.stdout.strip() == "7"
    caps = run("line.max_multiplier", purchase_context, "--for", "retail:purchase")
    assert caps.stdout.strip() == '"5"'  # filled from the group policy, not the context


def test_for_refuses_a_misspelt_field_with_a_suggestion(purchase_context):
    result = run("event.categroy == 'beauty'", purchase_context, "--for", "retail:purchase")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: unknown-name: unknown field 'event.categroy' "
                                     "(did you mean 'event.category'?)")


def test_for_an_unknown_event_type_is_a_usage_error(purchase_context):
    result = run("1", purchase_context, "--for", "retail:stay")
    assert result.exit_code == 2
    assert "retail:purchase" in result.stderr
