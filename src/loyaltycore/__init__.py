"""loyaltycore: one group-wide loyalty program across business lines.

The embedding API: ``Engine.open(rulesets)`` and ``engine.process(event)``. Plugin
authors import from :mod:`loyaltycore.plugin`.
"""

from .effects import (
    EarnPoints,
    GrantRight,
    HoldPoints,
    QualifyingCredit,
    ReversePoints,
    TierChange,
    Trace,
    UseRight,
)
from .engine import Engine
from .errors import (
    ConfigurationError,
    Diagnostic,
    EvaluationError,
    EventInputError,
    ExpressionError,
    ExpressionRefused,
    IdempotencyConflict,
    LoyaltyError,
    PluginError,
    RulesetError,
)
from .events import Event, EventPayload
from .hookspecs import hookimpl
from .members import MemberProfile, MemberSnapshot, Qualification
from .plugins import LineSpec, make_plugin_manager
from .receipts import Receipt, RuleMiss, Violation

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError", "Diagnostic", "EarnPoints", "Engine", "EvaluationError", "Event",
    "EventInputError", "EventPayload", "ExpressionError", "ExpressionRefused", "GrantRight",
    "HoldPoints", "IdempotencyConflict", "LineSpec", "LoyaltyError", "MemberProfile",
    "MemberSnapshot", "PluginError", "Qualification", "QualifyingCredit", "Receipt",
    "ReversePoints", "RuleMiss", "RulesetError", "TierChange", "Trace", "UseRight",
    "Violation", "hookimpl", "make_plugin_manager",
]
