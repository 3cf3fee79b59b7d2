"""Receipts: the answer to one event, accepted or rejected, with effects and reasons."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .effects import EarnPoints, Effect, HoldPoints, kept


@kept
class Violation(BaseModel):
    """A broken group invariant: which one, the rule (or plugin) behind it and the numbers."""

    model_config = ConfigDict(frozen=True)

    invariant: str
    message: str
    rule: str | None = None
    numbers: dict[str, Any] = Field(default_factory=dict)

    def __str__(self) -> str:
        who = f" [{self.rule}]" if self.rule else ""
        return f"{self.invariant}{who}: {self.message}"


@kept
class RuleMiss(BaseModel):
    """A rule that was considered for the event and did not fire, and why."""

    model_config = ConfigDict(frozen=True)

    rule: str
    version: str | None = None
    reason: str
    values: dict[str, Any] = Field(default_factory=dict)


@kept
class Receipt(BaseModel):
    """What one event earned (or why it was rejected). Effects carry their traces."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    member: str
    line: str
    type: str
    occurred_at: datetime
    amount: Decimal | None = None
    status: Literal["accepted", "rejected"]
    effects: tuple[Effect, ...] = ()
    violations: tuple[Violation, ...] = ()
    not_fired: tuple[RuleMiss, ...] = ()
    tier_before: str | None = None
    tier_after: str | None = None
    ruleset_versions: dict[str, str] = Field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    @property
    def points(self) -> int:
        """Points credited now (available), summed over earn effects."""
        return sum(e.points for e in self.effects if isinstance(e, EarnPoints))

    @property
    def pending_points(self) -> int:
        return sum(e.points for e in self.effects if isinstance(e, HoldPoints))
