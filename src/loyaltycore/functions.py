"""The functions every rule expression may call (the sandbox's whitelist).

Each function is pure, bounded in time by its bounded inputs, and returns only immutable
values. Plugins add their own pure functions through the ``loyalty_functions`` hook;
those are wrapped by :func:`guarded` so that what they return is checked the same way.
The docstrings here are published in docs/rule-authoring.md (a test keeps them in sync).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from .errors import EvaluationError
from .sandbox import (
    MAX_STRING_LENGTH,
    Function,
    decimal_to_int,
    regex_prepare,
    safe_value,
    value_size,
)


def _num(x: Any, fn: str) -> Any:
    if isinstance(x, bool) or not isinstance(x, int | Decimal):
        raise EvaluationError(f"{fn}() takes a number, got {type(x).__name__}", reason="type")
    return x


def _text(x: Any, fn: str) -> str:
    if not isinstance(x, str):
        raise EvaluationError(f"{fn}() takes a string, got {type(x).__name__}", reason="type")
    return x


def _items(args: tuple[Any, ...], fn: str) -> tuple[Any, ...]:
    if len(args) == 1 and isinstance(args[0], tuple | frozenset):
        args = tuple(args[0])
    if not args:
        raise EvaluationError(f"{fn}() of nothing", reason="type")
    return args


def f_min(*args: Any) -> Any:
    """Smallest of its arguments (or of one list): ``min(event.amount, 5000)``."""
    return min(_items(args, "min"))


def f_max(*args: Any) -> Any:
    """Largest of its arguments (or of one list): ``max(0, event.amount - 100)``."""
    return max(_items(args, "max"))


def f_abs(x: Any) -> Any:
    """Absolute value: ``abs(event.amount)``."""
    return abs(_num(x, "abs"))


def f_floor(x: Any) -> int:
    """Round down to a whole number: ``floor(event.amount / 10)``."""
    # decimal_to_int, not math.floor: floor(decimal('9e999999')) would build a
    # million-digit integer (seconds of CPU) before any limit is checked.
    x = _num(x, "floor")
    return decimal_to_int(x.to_integral_value(ROUND_FLOOR) if isinstance(x, Decimal) else x)


def f_ceil(x: Any) -> int:
    """Round up to a whole number: ``ceil(event.nights / 2)``."""
    x = _num(x, "ceil")
    return decimal_to_int(x.to_integral_value(ROUND_CEILING) if isinstance(x, Decimal) else x)


def f_round(x: Any, places: Any = 0) -> Any:
    """Round half up to ``places`` decimals (0: a whole number): ``round(event.amount * 0.05, 2)``."""
    value = Decimal(_num(x, "round"))
    places = _num(places, "round")
    if not 0 <= places <= 12:
        raise EvaluationError("round() places must be between 0 and 12", reason="type")
    result = value.quantize(Decimal(1).scaleb(-int(places)), rounding=ROUND_HALF_UP)
    return int(result) if places == 0 else result


def f_clamp(x: Any, low: Any, high: Any) -> Any:
    """``x`` limited to the range [low, high]: ``clamp(event.nights, 0, 30)``."""
    return max(_num(low, "clamp"), min(_num(x, "clamp"), _num(high, "clamp")))


def f_len(x: Any) -> int:
    """Length of a string or list: ``len(event.items) >= 3``."""
    if not isinstance(x, str | tuple | frozenset):
        raise EvaluationError(f"len() takes a string or list, got {type(x).__name__}",
                              reason="type")
    return len(x)


def f_lower(x: Any) -> str:
    """Lower-case a string: ``lower(event.channel) == 'app'``."""
    return _text(x, "lower").lower()


def f_upper(x: Any) -> str:
    """Upper-case a string: ``upper(event.store_code)``."""
    return _text(x, "upper").upper()


def f_startswith(x: Any, prefix: Any) -> bool:
    """True if ``x`` starts with ``prefix``: ``startswith(event.store_code, 'SH-')``."""
    return _text(x, "startswith").startswith(_text(prefix, "startswith"))


def f_endswith(x: Any, suffix: Any) -> bool:
    """True if ``x`` ends with ``suffix``: ``endswith(event.sku, '-GIFT')``."""
    return _text(x, "endswith").endswith(_text(suffix, "endswith"))


def f_matches(x: Any) -> bool:  # pragma: no cover - replaced per call site by regex_prepare
    """True if the literal regular expression matches anywhere in ``x``:
    ``matches(event.sku, '^BTY-[0-9]{4}$')``. The pattern must be a literal; patterns that
    can backtrack exponentially (nested repeats, alternation inside a repeat,
    backreferences, lookarounds) are refused at load."""
    raise AssertionError


def f_str(x: Any) -> str:
    """The text form of a value: ``str(member.birth_month)``."""
    if not isinstance(x, str) and value_size(x) > MAX_STRING_LENGTH:
        # Checked before str(): str(('a' * 100000,) * 100000) would build 10**10 characters.
        raise EvaluationError("str() result too long", reason="size")
    if not safe_value(x):
        raise EvaluationError("str() of an unsupported value", reason="type")
    text = str(x)
    if len(text) > MAX_STRING_LENGTH:
        raise EvaluationError("str() result too long", reason="size")
    return text


def f_int(x: Any) -> int:
    """A whole number from a number or numeric string, truncating: ``int(event.nights)``."""
    if isinstance(x, str):
        if len(x) > 40:
            raise EvaluationError("int() of a string longer than 40 characters", reason="size")
        try:
            value = Decimal(x)
        except ArithmeticError:
            raise EvaluationError(f"int() of non-numeric text {x!r}", reason="type") from None
        # int('9e999999') took 23 s and built a million-digit integer: check the size first.
        return decimal_to_int(value)
    return decimal_to_int(_num(x, "int"))


def f_decimal(x: Any) -> Decimal:
    """An exact decimal from a number or numeric string: ``decimal('0.05')``."""
    if isinstance(x, str):
        if len(x) > 40:
            raise EvaluationError("decimal() of a string longer than 40 characters",
                                  reason="size")
        try:
            value = Decimal(x)
        except ArithmeticError:
            raise EvaluationError(f"decimal() of non-numeric text {x!r}", reason="type") from None
        if not value.is_finite():
            raise EvaluationError("decimal() of a non-finite value", reason="type")
        return value
    return Decimal(_num(x, "decimal"))


def f_coalesce(*args: Any) -> Any:
    """The first argument that is not None: ``coalesce(event.coupon, '')``."""
    for a in args:
        if a is not None:
            return a
    return None


def _day(x: Any, fn: str) -> date:
    if isinstance(x, datetime):
        return x.date()
    if isinstance(x, date):
        return x
    raise EvaluationError(f"{fn}() takes dates, got {type(x).__name__}", reason="type")


def f_days_between(a: Any, b: Any) -> int:
    """Whole days from ``a`` to ``b`` (negative if b is earlier):
    ``days_between(member.enrolled_on, event.local_date) < 30``."""
    return (_day(b, "days_between") - _day(a, "days_between")).days


def f_months_between(a: Any, b: Any) -> int:
    """Whole calendar months from ``a`` to ``b``, counting only completed months:
    ``months_between(member.enrolled_on, event.local_date) >= 12``."""
    da, db = _day(a, "months_between"), _day(b, "months_between")
    months = (db.year - da.year) * 12 + (db.month - da.month)
    if months > 0 and db.day < da.day:
        months -= 1
    elif months < 0 and db.day > da.day:
        months += 1
    return months


def f_percent(x: Any, pct: Any) -> Decimal:
    """``pct`` percent of ``x``, exactly: ``percent(event.amount, 10)``."""
    return Decimal(_num(x, "percent")) * Decimal(_num(pct, "percent")) / 100


BUILTIN_FUNCTIONS: dict[str, Function] = {
    "min": Function(f_min, 1, 16, f_min.__doc__ or ""),
    "max": Function(f_max, 1, 16, f_max.__doc__ or ""),
    "abs": Function(f_abs, 1, 1, f_abs.__doc__ or ""),
    "floor": Function(f_floor, 1, 1, f_floor.__doc__ or ""),
    "ceil": Function(f_ceil, 1, 1, f_ceil.__doc__ or ""),
    "round": Function(f_round, 1, 2, f_round.__doc__ or ""),
    "clamp": Function(f_clamp, 3, 3, f_clamp.__doc__ or ""),
    "percent": Function(f_percent, 2, 2, f_percent.__doc__ or ""),
    "len": Function(f_len, 1, 1, f_len.__doc__ or ""),
    "lower": Function(f_lower, 1, 1, f_lower.__doc__ or ""),
    "upper": Function(f_upper, 1, 1, f_upper.__doc__ or ""),
    "startswith": Function(f_startswith, 2, 2, f_startswith.__doc__ or ""),
    "endswith": Function(f_endswith, 2, 2, f_endswith.__doc__ or ""),
    "matches": Function(f_matches, 2, 2, f_matches.__doc__ or "", literal_args=(1,),
                        prepare=regex_prepare),
    "str": Function(f_str, 1, 1, f_str.__doc__ or ""),
    "int": Function(f_int, 1, 1, f_int.__doc__ or ""),
    "decimal": Function(f_decimal, 1, 1, f_decimal.__doc__ or ""),
    "coalesce": Function(f_coalesce, 1, 16, f_coalesce.__doc__ or ""),
    "days_between": Function(f_days_between, 2, 2, f_days_between.__doc__ or ""),
    "months_between": Function(f_months_between, 2, 2, f_months_between.__doc__ or ""),
}


def guarded(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a plugin-registered function so it can only return safe, immutable values."""

    def call(*args: Any) -> Any:
        result = fn(*args)
        if not safe_value(result):
            raise EvaluationError(
                f"function {name}() returned a {type(result).__name__}; plugin functions may "
                "return only numbers, strings, booleans, dates, None or tuples of them",
                reason="function")
        return result

    call.__name__ = name
    call.__doc__ = fn.__doc__
    return call
