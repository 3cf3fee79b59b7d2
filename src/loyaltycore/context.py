"""The names a rule expression can read, and the per-event mappings behind them.

Every expression is compiled against a :class:`~loyaltycore.sandbox.Namespace` built
here: the event envelope and the line's payload fields (``event.*``), calendar fields in
the group's timezone (``event.weekday`` ...), the member snapshot (``member.*``),
qualification over the rolling window (``qualification.*``), the line's caps and the
group policy (``line.*``, ``group.*``, ``tier.*``), and for refund rules the event being
refunded (``original.*``). :data:`NAME_DOCS` documents each for rule authors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from itertools import repeat
from typing import Any
from zoneinfo import ZoneInfo

from .events import ENVELOPE_FIELDS, Event
from .members import MemberSnapshot
from .sandbox import Field, Function, Namespace

_ZERO = Decimal(0)
SOURCES = ("event", "data", "cal", "member", "qual", "orig", "pol")

NAME_DOCS: dict[str, str] = {
    "event.id": "the event's unique id",
    "event.line": "the business line the event belongs to",
    "event.type": "the event type (purchase, refund, stay ...)",
    "event.member": "the member id",
    "event.occurred_at": "when it happened (timezone-aware datetime)",
    "event.amount": "money that changed hands (Decimal) or None",
    "event.currency": "ISO currency code of amount",
    "event.<field>": "a field of the line's payload for this event type",
    "event.weekday": "day of week in the group timezone, 0 = Monday ... 6 = Sunday",
    "event.day": "day of month in the group timezone",
    "event.month": "month 1-12 in the group timezone",
    "event.year": "year in the group timezone",
    "event.hour": "hour 0-23 in the group timezone",
    "event.local_date": "the calendar date in the group timezone",
    "member.id": "the member id",
    "member.tier": "current tier id",
    "member.tier_rank": "position of the tier on the ladder, 0 = lowest",
    "member.birth_month": "birth month 1-12, or None if unknown",
    "member.is_birthday_month": "true in the member's birth month (group timezone)",
    "member.enrolled_on": "enrolment date, or None",
    "member.months_enrolled": "whole months since enrolment (0 if unknown)",
    "member.is_anniversary_month": "true in the month of the enrolment anniversary",
    "member.available": "available points balance before this event",
    "member.pending": "pending points before this event",
    "member.is_new": "true if this is the member's first event",
    "qualification.<credit>": "qualifying credit of that kind in the rolling window",
    "qualification.lines_active": "number of lines the member was active in, in the window",
    "qualification.lines": "the lines the member was active in (use: 'hotel' in ...)",
    "qualification.active_in_line": "true if the member was active in this event's line",
    "original.points": "refund rules: points the refunded event earned (incl. pending)",
    "original.amount": "refund rules: amount of the refunded event",
    "original.refunded": "refund rules: amount refunded before this refund",
    "original.reversed": "refund rules: points already clawed back",
    "original.line": "refund rules: line of the refunded event",
    "line.name": "the line's name",
    "line.max_multiplier": "the group's cap on this line's multiplier",
    "line.max_cost_ratio": "the group's cap on this line's cost ratio",
    "line.max_bonus_points": "the group's cap on fixed bonus points per event",
    "group.currency": "the group currency",
    "group.base_rate": "points per currency unit of qualifying spend",
    "group.point_value": "currency value of one point",
    "group.timezone": "the group timezone",
    "tier.<id>": "the rank of a tier, for comparisons: member.tier_rank >= tier.gold",
}

CALENDAR_FIELDS = ("weekday", "day", "month", "year", "hour", "local_date")
MEMBER_FIELDS = ("id", "tier", "tier_rank", "birth_month", "is_birthday_month", "enrolled_on",
                 "months_enrolled", "is_anniversary_month", "available", "pending", "is_new")
ORIGINAL_FIELDS = ("points", "amount", "refunded", "reversed", "line")
POLICY_FIELDS = ("line.name", "line.max_multiplier", "line.max_cost_ratio",
                 "line.max_bonus_points", "group.currency", "group.base_rate",
                 "group.point_value", "group.timezone")


def build_namespace(*, payload_fields: Iterable[str], credits: Iterable[str],
                    tiers: Iterable[str], functions: Mapping[str, Function],
                    with_original: bool = False) -> Namespace:
    """The namespace of a rule judging events with ``payload_fields``."""
    names: dict[str, Any] = {}
    for f in ENVELOPE_FIELDS:
        names[f"event.{f}"] = Field("event", f)
    for f in CALENDAR_FIELDS:
        names[f"event.{f}"] = Field("cal", f)
    for f in payload_fields:
        # Envelope and calendar names win; plugins are told at load when a field clashes.
        names.setdefault(f"event.{f}", Field("data", f))
    for f in MEMBER_FIELDS:
        names[f"member.{f}"] = Field("member", f)
    for c in credits:
        names[f"qualification.{c}"] = Field("qual", c)
    for f in ("lines_active", "lines", "active_in_line"):
        names[f"qualification.{f}"] = Field("qual", f)
    if with_original:
        for f in ORIGINAL_FIELDS:
            names[f"original.{f}"] = Field("orig", f)
    for f in POLICY_FIELDS:
        names[f] = Field("pol", f)
    for t in tiers:
        names[f"tier.{t}"] = Field("pol", f"tier.{t}")
    return Namespace(sources=SOURCES, names=names, functions=dict(functions))


def clashing_payload_fields(payload_fields: Iterable[str]) -> list[str]:
    reserved = set(ENVELOPE_FIELDS) | set(CALENDAR_FIELDS)
    return [f for f in payload_fields if f in reserved]


def calendar_scope(event: Event, tz: ZoneInfo) -> dict[str, Any]:
    local = event.occurred_at.astimezone(tz)
    return {"weekday": local.weekday(), "day": local.day, "month": local.month,
            "year": local.year, "hour": local.hour, "local_date": local.date()}


def member_scope(member: MemberSnapshot, local_date: date, rank: int,
                 is_new: bool) -> dict[str, Any]:
    m = member.__dict__  # one read of the model instead of one per field
    enrolled = m["enrolled_on"]
    birth = m["birth_month"]
    month = local_date.month
    months = 0
    if enrolled is not None:
        months = max(0, (local_date.year - enrolled.year) * 12 + month
                     - enrolled.month - (1 if local_date.day < enrolled.day else 0))
    return {
        "id": m["id"], "tier": m["tier"], "tier_rank": rank,
        "birth_month": birth,
        "is_birthday_month": birth == month,
        "enrolled_on": enrolled, "months_enrolled": months,
        "is_anniversary_month": (enrolled is not None and enrolled.month == month
                                 and enrolled.year < local_date.year),
        "available": m["available"], "pending": m["pending"], "is_new": is_new,
    }


def qualification_scope(member: MemberSnapshot, credits: Sequence[str],
                        line: str) -> dict[str, Any]:
    q = member.__dict__["qualification"].__dict__
    have = q["credits"]
    lines = q["lines_active"]
    # One C loop (a comprehension is a frame of its own); the same keys, order and values.
    scope: dict[str, Any] = dict(zip(credits, map(have.get, credits, repeat(_ZERO)),
                                     strict=True))
    scope["lines_active"] = len(lines)
    scope["lines"] = lines
    scope["active_in_line"] = line in lines
    return scope


def json_value(value: Any) -> Any:
    """A JSON-friendly form of a value read by an expression (for traces and output)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, frozenset):
        return sorted((json_value(v) for v in value), key=lambda v: (type(v).__name__, str(v)))
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [json_value(v) for v in value]
    return value
