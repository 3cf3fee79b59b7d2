"""The one error hierarchy of loyaltycore.

Every error the project raises on purpose derives from :class:`LoyaltyError`, so an
embedder can catch one class, and the CLI converts them to messages and exit codes in
one place. Errors that describe bad input carry where the input is (file, line, rule,
field) and, where we can guess it, a suggestion: the reader should be able to fix the
input from the message alone.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


class LoyaltyError(Exception):
    """Root of every error loyaltycore raises on purpose."""


# --- expressions (the sandbox) ------------------------------------------------------


class ExpressionError(LoyaltyError):
    """An expression the sandbox refuses or cannot evaluate.

    ``reason`` is a short machine-readable family (``syntax``, ``forbidden-name``,
    ``attribute``, ``function``, ``size``, ``depth``, ``power``, ``time`` ...), stable
    so tests and tools can branch on it; the message is for people.
    """

    def __init__(self, message: str, *, reason: str, expression: str | None = None,
                 suggestion: str | None = None):
        self.reason = reason
        self.expression = expression
        self.suggestion = suggestion
        text = message
        if suggestion:
            text += f" (did you mean {suggestion!r}?)"
        super().__init__(text)


class ExpressionRefused(ExpressionError):
    """Refused when the expression is compiled, before it ever runs (load time)."""


class EvaluationError(ExpressionError):
    """Raised while evaluating a compiled expression (a run-time limit or a bad value)."""


# --- rulesets ------------------------------------------------------------------------


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a ruleset file. Diagnostics are collected, not raised one by one."""

    file: str
    message: str
    line: int | None = None
    rule: str | None = None
    field: str | None = None
    severity: str = "error"

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        parts = [where]
        if self.rule:
            parts.append(f"rule {self.rule}")
        if self.field:
            parts.append(f"field {self.field}")
        return f"{': '.join(parts)}: {self.severity}: {self.message}"


class RulesetError(LoyaltyError):
    """The rulesets cannot be used; ``diagnostics`` lists every problem found."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = tuple(diagnostics)
        errors = [d for d in self.diagnostics if d.severity == "error"]
        head = f"{len(errors)} error(s) in rulesets"
        super().__init__(head + "\n" + "\n".join(str(d) for d in errors))


# --- events and plugins -----------------------------------------------------------------


class EventInputError(LoyaltyError):
    """An event that cannot be read or validated; names the input line and field."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None,
                 field: str | None = None):
        self.source = source
        self.line = line
        self.field = field
        where = []
        if source:
            where.append(source if line is None else f"{source}:{line}")
        elif line is not None:
            where.append(f"line {line}")
        if field:
            where.append(f"field {field}")
        self.detail = message
        super().__init__(": ".join([*where, message]))


class PluginError(LoyaltyError):
    """A plugin misbehaved (raised, overran its time budget, returned bad effects)."""

    def __init__(self, plugin: str, message: str):
        self.plugin = plugin
        super().__init__(f"plugin {plugin}: {message}")


class IdempotencyConflict(LoyaltyError):
    """An event id that was already processed arrived again with a different payload."""

    def __init__(self, event_id: str, member_id: str):
        self.event_id = event_id
        self.member_id = member_id
        super().__init__(
            f"event {event_id!r} of member {member_id!r} was already processed with a "
            "different payload; an event id must identify one event (send a new id for a "
            "new event, or the exact original payload to fetch its receipt)")


class ConfigurationError(LoyaltyError):
    """The engine was set up wrongly (missing plugin for a line, unknown timezone ...)."""


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to a misspelt ``word``, for 'did you mean' hints."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None
