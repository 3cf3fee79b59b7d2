"""The public plugin API: everything a line plugin imports, and nothing else.

A plugin imports from here (and :mod:`loyaltycore.effects` names re-exported here), never
from the ledger, the store or another line.
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
from .events import Event, EventPayload
from .hookspecs import hookimpl
from .members import MemberSnapshot, Qualification
from .plugins import LineSpec
from .rulesets import GroupPolicy

__all__ = [
    "EarnPoints", "Event", "EventPayload", "GrantRight", "GroupPolicy", "HoldPoints",
    "LineSpec", "MemberSnapshot", "Qualification", "QualifyingCredit", "ReversePoints",
    "TierChange", "Trace", "UseRight", "hookimpl",
]
