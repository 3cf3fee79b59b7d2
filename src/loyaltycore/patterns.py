"""Regular expressions in rules: which patterns the sandbox accepts, and matching them.

Python's ``re`` backtracks and has no time limit, so a pattern such as ``(a+)+$`` can take
exponential time on a short input. Rule patterns are short codes and prefixes; they need
none of the constructs that backtrack badly, so those are refused when the rule loads, and
inputs are capped in length. Kept apart from the expression compiler because it is a
different analysis (of the pattern's own syntax tree) with its own limits.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import EvaluationError, ExpressionRefused

MAX_REGEX_INPUT = 1_000  # one allowed open-ended repeat stays ~ms, not ~s, on hostile input
# How many ways a pattern may try to match at one position: repeats multiply by the number
# of counts they allow (an open-ended one by MAX_REGEX_INPUT), alternations add. Matching
# costs about (input length) x (ways) steps, so this allows one `.*` and no more.
MAX_REGEX_WAYS = MAX_REGEX_INPUT + 1


def regex_prepare(pattern: Any) -> Callable[[str], bool]:
    """Compile a literal pattern for ``matches``, refusing ones that can backtrack badly."""
    if not isinstance(pattern, str):
        raise ExpressionRefused("the pattern of matches() must be a string literal",
                                reason="regex")
    if len(pattern) > 200:
        raise ExpressionRefused("regular expression longer than 200 characters", reason="regex")
    check_regex(pattern)
    try:
        compiled = re.compile(pattern)
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        raise ExpressionRefused(f"invalid regular expression: {exc}", reason="regex") from None

    def matches(text: Any) -> bool:
        if not isinstance(text, str):
            raise EvaluationError("matches() takes a string", reason="type")
        if len(text) > MAX_REGEX_INPUT:
            raise EvaluationError(f"matches() input longer than {MAX_REGEX_INPUT}",
                                  reason="size")
        return compiled.search(text) is not None

    return matches


def check_regex(pattern: str) -> None:
    """Refuse patterns whose matching time can explode (catastrophic backtracking).

    Conservative: a repeat inside a repeat (also ``(a?){25}``), a repeat over an
    alternation, backreferences and lookarounds are refused, and so is a pattern that can
    match in more than ``MAX_REGEX_WAYS`` ways at one position: ``.*.*x`` or ``a?`` thirty
    times backtrack polynomially or exponentially without nesting anything. Atomic groups
    are checked like any group. Rule patterns are short codes and prefixes; none need more.
    """
    try:
        import re._parser as sre_parse  # Python 3.11+
        from re._constants import (
            ASSERT,
            ASSERT_NOT,
            ATOMIC_GROUP,
            BRANCH,
            GROUPREF,
            GROUPREF_EXISTS,
            MAX_REPEAT,
            MIN_REPEAT,
            POSSESSIVE_REPEAT,
            SUBPATTERN,
        )
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        raise ExpressionRefused(f"invalid regular expression: {exc}", reason="regex") from None
    repeats = (MAX_REPEAT, MIN_REPEAT, POSSESSIVE_REPEAT)

    def walk(items, inside_repeat: bool) -> int:
        """Check ``items``; return how many ways they can match at one position."""
        ways = 1
        for op, arg in items:
            if op in (GROUPREF, GROUPREF_EXISTS):
                raise ExpressionRefused("backreferences are not allowed in patterns",
                                        reason="regex")
            if op in (ASSERT, ASSERT_NOT):
                raise ExpressionRefused("lookarounds are not allowed in patterns",
                                        reason="regex")
            if op in repeats:
                low, high, sub = arg
                if high > 1000 and high != sre_parse.MAXREPEAT or low > 1000:
                    raise ExpressionRefused("repeat count above 1000 in pattern",
                                            reason="regex")
                # Why low != high too: (a?){25}a{25} nests an optional inside a fixed
                # count and backtracks 2**25 times.
                if inside_repeat and (high > 1 or low != high):
                    raise ExpressionRefused(
                        "nested repeats such as (a+)+ can take exponential time",
                        reason="regex")
                inner = walk(sub, inside_repeat or high > 1)
                top = MAX_REGEX_INPUT if high == sre_parse.MAXREPEAT else high
                ways *= (max(top - low, 0) + 1) * inner
            elif op == SUBPATTERN:
                ways *= walk(arg[-1], inside_repeat)
            elif op == ATOMIC_GROUP:
                # Why: (?>(a+)+b) backtracks exponentially inside the group; the old walk
                # did not look inside atomic groups at all.
                ways *= walk(arg, inside_repeat)
            elif op == BRANCH:
                if inside_repeat:
                    raise ExpressionRefused(
                        "alternation inside a repeat such as (a|aa)* can take exponential "
                        "time", reason="regex")
                ways *= sum(walk(branch, inside_repeat) for branch in arg[1])
            ways = min(ways, MAX_REGEX_WAYS + 1)
        return ways

    if walk(parsed, False) > MAX_REGEX_WAYS:
        raise ExpressionRefused(
            "pattern can match in too many ways (like .*.* or many a? in a row), which takes "
            "polynomial or exponential time: use at most one open-ended repeat (*, +, {n,}) "
            "and bound the others, e.g. [0-9]{1,12}", reason="regex")
