"""Ruleset files: the group policy and each line's rules, as validated pydantic models.

These models are the schema of the YAML files in rulesets/ (``loyalty schema`` prints
them as JSON Schema for editors). They check shape only; cross-references, expressions
and the group's static invariants are checked when the files are loaded into a rulebook
(:mod:`loyaltycore.rulebook`), where every problem is reported with file, line and rule.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,79}$",
                              description="Unique id: lower case, digits, '-', '_', '.'")]
Expr = Annotated[str, Field(min_length=1, max_length=4000,
                            description="A sandboxed rule expression, e.g. "
                                        "\"event.amount >= 500 and member.tier == 'gold'\"")]
Period = Literal["event", "day", "week", "month", "year", "lifetime"]
Rounding = Literal["floor", "half_up", "half_even", "ceiling"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Cap(_Model):
    """Upper bound on what one rule gives a member per period (points and/or times fired)."""

    per: Period = Field(description="The period the cap counts over, in the group timezone.")
    points: int | None = Field(default=None, ge=0, description="Most points per period.")
    times: int | None = Field(default=None, ge=1, description="Most firings per period.")

    @model_validator(mode="after")
    def _one_limit(self) -> Cap:
        if self.points is None and self.times is None:
            raise ValueError("a cap needs 'points' or 'times' (or both)")
        if self.per == "event" and self.times is not None:
            raise ValueError("'times' per event means nothing (a rule fires at most once per "
                             "event); use a longer period or 'points'")
        return self


class Pending(_Model):
    """Points stay pending until ``days`` after the event, or until an event of type ``until``
    arrives that refers to this one (``vests_on`` in the hold effect)."""

    days: int | None = Field(default=None, ge=0, le=3650)
    until: str | None = Field(default=None, description="Event type that vests the points.")

    @model_validator(mode="after")
    def _one_of(self) -> Pending:
        if (self.days is None) == (self.until is None):
            raise ValueError("pending needs exactly one of 'days' or 'until'")
        return self


class _Rule(_Model):
    id: RuleId
    on: list[str] = Field(min_length=1, description="Event types of the line this rule judges.")
    when: Expr | None = Field(default=None, description="Condition; the rule fires when true.")
    description: str = Field(default="", max_length=500)


class EarnRule(_Rule):
    """An earning rule.

    - ``base``: points = spend x group base rate (``spend`` defaults to ``event.amount``);
      the first base rule that fires is the event's base, later ones are shadowed.
    - ``multiply``: adds base points x (factor - 1): a factor of 2 doubles the base.
    - ``bonus``: adds a fixed number of points (``points``, a number or an expression).
    """

    kind: Literal["base", "multiply", "bonus"]
    spend: Expr | None = Field(default=None, description="base: qualifying spend expression.")
    factor: Decimal | None = Field(default=None, gt=0, le=100,
                                   description="multiply: total multiplier on base points.")
    points: int | Expr | None = Field(default=None, description="bonus: points to add.")
    cap: Cap | None = None
    pending: Pending | None = None

    @model_validator(mode="after")
    def _fields_for_kind(self) -> EarnRule:
        need = {"base": (), "multiply": ("factor",), "bonus": ("points",)}[self.kind]
        for name in need:
            if getattr(self, name) is None:
                raise ValueError(f"a {self.kind} rule needs '{name}'")
        wrong = {"base": ("factor", "points"), "multiply": ("spend", "points"),
                 "bonus": ("spend", "factor")}[self.kind]
        for name in wrong:
            if getattr(self, name) is not None:
                raise ValueError(f"'{name}' does not apply to a {self.kind} rule")
        return self


class ReverseRule(_Rule):
    """Claws back points of an earlier event in proportion to the refunded amount."""

    original: Expr = Field(description="Expression giving the id of the event being refunded.")
    refunded: Expr = Field(default="event.amount",
                           description="Expression giving the amount refunded.")


class CreditRule(_Rule):
    """Emits qualifying credit of kind ``credit`` (declared in the group policy)."""

    credit: str
    value: Expr = Field(default="event.amount")


class GrantRule(_Rule):
    """Grants a right (by id) when the rule fires and the right's quota allows."""

    right: str


class Quota(_Model):
    """How often a right may be granted (vouchers) or used (entitlements) per period."""

    count: int = Field(ge=1)
    per: Period


class Right(_Model):
    """A benefit. ``entitlement``: usable while eligible, uses counted against the quota.
    ``voucher``: must be granted first (by a rule or a tier move); each grant is one use
    within ``valid_days``. ``supersedes`` names the lower-tier right this one replaces (a
    gold 20% discount supersedes the silver 10%), for the ladder's inclusion check."""

    id: RuleId
    description: str = Field(min_length=1, max_length=500,
                             description="What the member gets, in words a member understands.")
    mode: Literal["entitlement", "voucher"] = "entitlement"
    tiers: list[str] | None = Field(default=None, description="Eligible tiers (None: all).")
    when: Expr | None = Field(default=None, description="Extra eligibility condition.")
    quota: Quota | None = None
    valid_days: int | None = Field(default=None, ge=1, le=3660)
    estimated_cost: Decimal = Field(default=Decimal(0), ge=0)
    supersedes: str | None = None


class TierUpgrade(_Model):
    """React to a member being upgraded to tier ``to`` by granting the line's right ``right``."""

    id: RuleId
    to: str
    right: str
    description: str = ""


class _Ruleset(_Model):
    version: str = Field(min_length=1, max_length=40)
    effective_from: AwareDatetime
    effective_to: AwareDatetime | None = None
    description: str = ""

    @model_validator(mode="after")
    def _period(self):
        if self.effective_to is not None and self.effective_to <= self.effective_from:
            raise ValueError("effective_to must be after effective_from")
        return self


class LineRuleset(_Ruleset):
    """One business line's rules for one effective period."""

    kind: Literal["line"]
    line: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    earn: list[EarnRule] = Field(default_factory=list)
    reverse: list[ReverseRule] = Field(default_factory=list)
    credit: list[CreditRule] = Field(default_factory=list)
    grant: list[GrantRule] = Field(default_factory=list)
    on_upgrade: list[TierUpgrade] = Field(default_factory=list)
    rights: list[Right] = Field(default_factory=list)


class LineCaps(_Model):
    """The group's limits for one line; the invariants enforce them on every event."""

    max_multiplier: Decimal = Field(gt=0, le=100,
                                    description="Spend-based points <= spend x base rate x this.")
    max_cost_ratio: Decimal = Field(gt=0, le=1,
                                    description="Points x point value <= this x spend.")
    max_bonus_points: int = Field(default=0, ge=0,
                                  description="Most fixed (bonus) points on one event.")


class TierSpec(_Model):
    """One rung of the ladder. ``upgrade``/``retain`` map a metric (a qualifying credit or
    ``lines_active``) to a threshold; reaching ANY one threshold qualifies."""

    id: RuleId
    name: str = ""
    upgrade: dict[str, Decimal] = Field(default_factory=dict)
    retain: dict[str, Decimal] | None = None
    on_upgrade: list[str] = Field(default_factory=list,
                                  description="Rights (vouchers) granted on reaching this tier.")


class Review(_Model):
    """When downgrades may happen, and how far."""

    schedule: Literal["anniversary", "calendar"] = "anniversary"
    month: int = Field(default=1, ge=1, le=12, description="calendar: month of the review.")
    soft_landing: int = Field(default=1, ge=1, description="Most tiers one review can drop.")


class QualificationPolicy(_Model):
    window_months: int = Field(default=12, ge=1, le=60)
    credits: list[str] = Field(min_length=1, description="Qualifying credit kinds, e.g. spend.")


class Expiry(_Model):
    """When earned points expire (breakage).

    ``never``; ``rolling``: ``months`` after each lot was earned; ``year_end``: at the end
    of the calendar year ``years`` after the year of earning (group timezone); ``inactivity``:
    every point expires once the member has had no accepted event for ``months``.
    """

    mode: Literal["never", "rolling", "year_end", "inactivity"] = "never"
    months: int | None = Field(default=None, ge=1, le=240)
    years: int | None = Field(default=None, ge=0, le=20)

    @model_validator(mode="after")
    def _figures(self) -> Expiry:
        need = {"never": None, "rolling": "months", "year_end": "years",
                "inactivity": "months"}[self.mode]
        if need and getattr(self, need) is None:
            raise ValueError(f"expiry mode {self.mode!r} needs {need!r}")
        return self


class RedemptionPolicy(_Model):
    """Where and how points may be spent (the built-in ``redeem`` event of every line)."""

    min_points: int = Field(default=1, ge=1, description="Fewest points one redemption spends.")
    multiple_of: int = Field(default=1, ge=1, description="Points are spent in steps of this.")
    max_points: int | None = Field(default=None, ge=1, description="Most points per redemption.")
    blocked_lines: list[str] = Field(default_factory=list,
                                     description="Lines where points cannot be redeemed.")
    reservation_minutes: int = Field(
        default=30, ge=1, description="How long points put on hold at a till "
        "(reserve_points) stay reserved when the event does not say; then they go back.")
    max_reservation_minutes: int = Field(
        default=1440, ge=1, description="The longest hold a reserve_points event may ask for.")


class RefundPolicy(_Model):
    """What a refund does when the points it claws back were already spent:
    ``negative_balance`` lets the balance go below zero (repaid from later earnings);
    ``shortfall`` takes what the balance holds and records the rest as a shortfall."""

    spent_points: Literal["negative_balance", "shortfall"] = "negative_balance"


class GroupPolicy(_Ruleset):
    """The group-wide program: currency and points economics, caps per line, the ladder."""

    kind: Literal["group"]
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    timezone: str = Field(description="IANA zone for calendar rules, e.g. Asia/Shanghai.")
    base_rate: Decimal = Field(gt=0, description="Points per currency unit of qualifying spend.")
    point_value: Decimal = Field(gt=0, description="Currency value of one point when redeemed.")
    rounding: Rounding = "floor"
    lines: dict[str, LineCaps] = Field(min_length=1)
    qualification: QualificationPolicy
    tiers: list[TierSpec] = Field(min_length=1)
    review: Review = Field(default_factory=Review)
    rights: list[Right] = Field(default_factory=list)
    expiry: Expiry = Field(default_factory=Expiry)
    redemption: RedemptionPolicy = Field(default_factory=RedemptionPolicy)
    refunds: RefundPolicy = Field(default_factory=RefundPolicy)
    cross_sell: list[EarnRule] = Field(
        default_factory=list,
        description="Group bonus rules run on every line's events (on: 'line:type' or "
                    "'*'), funded by the line the event belongs to.")


Ruleset = Annotated[GroupPolicy | LineRuleset, Field(discriminator="kind")]


def json_schema() -> dict:
    """JSON Schema of a ruleset file (either kind), for editors."""
    from pydantic import TypeAdapter

    schema = TypeAdapter(Ruleset).json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "loyaltycore ruleset"
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True)


def in_force(ruleset: _Ruleset, at: datetime) -> bool:
    return ruleset.effective_from <= at and (ruleset.effective_to is None
                                             or at < ruleset.effective_to)
