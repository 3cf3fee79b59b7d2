"""Bounded values and operators: what compiled rule expressions call instead of Python's.

The sandbox compiler rewrites every operator that could allocate without bound or change
meaning (``+ * ** % /`` and indexing) into a call to one of these, and checks every value
crossing into or out of an expression with :func:`safe_value`. The limits are here, in one
place, so the compiler and the function library enforce the same ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import simpleeval

from .errors import EvaluationError

MAX_STRING_LENGTH = simpleeval.MAX_STRING_LENGTH
MAX_INT_BITS = 4096
MAX_EXPONENT = 100
MAX_DECIMAL_DIGITS = 1234  # a Decimal turned into an int may have ~MAX_INT_BITS, no more
SAFE_SCALARS = (bool, int, str, Decimal, datetime, date, type(None))


def value_size(value: Any, limit: int = MAX_STRING_LENGTH) -> int:
    """Characters and items in ``value``, nested tuples included; stops counting above ``limit``.

    Why not ``len``: ``('a' * 100000,) * 100000`` is a tuple of 100000 items whose
    ``str()``, hash, comparison or JSON form walks 10**10 characters. Every tuple an
    operator builds is bounded by this size, not by its own length.
    """
    total = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            total += max(len(v), 1)
        elif isinstance(v, tuple | frozenset) and v:
            if len(v) > limit:
                return len(v)
            stack.extend(v)
        else:
            total += 1
        if total > limit:
            break
    return total


def _size(obj: Any) -> int:
    if isinstance(obj, str):
        return len(obj)
    return value_size(obj) if isinstance(obj, tuple | frozenset) else 0


def _too_long() -> EvaluationError:
    return EvaluationError(f"result longer than {MAX_STRING_LENGTH} characters/items",
                           reason="size")


def _check_int(value: Any) -> Any:
    if type(value) is int and value.bit_length() > MAX_INT_BITS:
        raise EvaluationError(f"integer larger than {MAX_INT_BITS} bits", reason="size")
    return value


def op_add(a: Any, b: Any) -> Any:
    if _size(a) + _size(b) > MAX_STRING_LENGTH:
        raise _too_long()
    return _check_int(a + b)


def op_sub(a: Any, b: Any) -> Any:
    return _check_int(a - b)


def op_mul(a: Any, b: Any) -> Any:
    if isinstance(a, str | tuple) or isinstance(b, str | tuple):
        count = b if isinstance(a, str | tuple) else a
        seq = a if isinstance(a, str | tuple) else b
        if type(count) is not int and type(count) is not bool:
            raise EvaluationError("a string or list can only be repeated a whole number of times",
                                  reason="type")
        if count > 0 and count * _size(seq) > MAX_STRING_LENGTH:
            raise _too_long()
        return seq * count
    if type(a) is int and type(b) is int and a.bit_length() + b.bit_length() > MAX_INT_BITS:
        raise EvaluationError(f"integer larger than {MAX_INT_BITS} bits", reason="size")
    return a * b


def op_pow(a: Any, b: Any) -> Any:
    # Check the size of a Decimal exponent before int(): int(Decimal('1e999999')) alone
    # takes seconds and builds a million-digit integer.
    if isinstance(b, Decimal) and b.is_finite() and abs(b) > MAX_EXPONENT:
        raise EvaluationError(f"exponent {b} is above the limit of {MAX_EXPONENT}",
                              reason="power")
    if isinstance(b, Decimal) and b.is_finite() and b == b.to_integral_value():
        b = int(b)
    if type(b) is not int:
        raise EvaluationError("the exponent must be a whole number", reason="power")
    if abs(b) > MAX_EXPONENT:
        raise EvaluationError(f"exponent {b} is above the limit of {MAX_EXPONENT}",
                              reason="power")
    if type(a) is int and a.bit_length() * abs(b) > MAX_INT_BITS:
        raise EvaluationError(f"{a} ** {b} would exceed {MAX_INT_BITS} bits", reason="power")
    if type(a) is int and b < 0:
        return Decimal(a) ** b
    return a**b


def op_div(a: Any, b: Any) -> Any:
    # Money is Decimal: integer division must not silently turn into a float.
    if type(a) is int:
        a = Decimal(a)
    if type(b) is int:
        b = Decimal(b)
    return a / b


def op_floordiv(a: Any, b: Any) -> Any:
    return a // b


def op_mod(a: Any, b: Any) -> Any:
    if isinstance(a, str):
        raise EvaluationError("'%' formatting of strings is not allowed", reason="format")
    return a % b


def op_item(obj: Any, key: Any) -> Any:
    if not isinstance(obj, str | tuple | Mapping):
        raise EvaluationError(f"cannot index a {type(obj).__name__}", reason="type")
    if not isinstance(key, int | str) or isinstance(key, bool):
        raise EvaluationError("an index must be a whole number or a string", reason="type")
    return obj[key]


def safe_value(value: Any) -> bool:
    """True if ``value`` may enter or leave an expression (immutable, bounded).

    Bounded means the whole value, nested tuples included (see :func:`value_size`); the
    walk is iterative so a deeply nested value cannot overflow the stack.
    """
    total = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            total += max(len(v), 1)
        elif isinstance(v, SAFE_SCALARS):
            total += 1
        elif isinstance(v, tuple | frozenset):
            if len(v) > MAX_STRING_LENGTH:
                return False
            total += 0 if v else 1
            stack.extend(v)
        else:
            return False
        if total > MAX_STRING_LENGTH:
            return False
    return True


def decimal_to_int(value: Any) -> int:
    """``int(value)`` for an int or Decimal, refusing results above ``MAX_INT_BITS``.

    Why: ``int(Decimal('9e999999'))`` takes tens of seconds and returns a million-digit
    integer; the size is checked on the exponent first, before anything is converted.
    """
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise EvaluationError(f"cannot make a whole number of {value}", reason="arithmetic")
        if value.adjusted() >= MAX_DECIMAL_DIGITS:
            raise EvaluationError(f"number larger than {MAX_INT_BITS} bits", reason="size")
    return _check_int(int(value))
