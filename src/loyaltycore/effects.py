"""Effects: what a decision proposes, as data. The core is the only writer.

Rules and plugin hooks never change state; they return effects. Each effect names the
line that funds or owns it, the rule (or plugin) that proposed it and a :class:`Trace`
that answers "why". Effects are frozen pydantic models, validated again whenever a plugin
hands one back, because a plugin's output is input like any other.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

Basis = Literal["base", "multiply", "bonus"]
_ALL_FIELDS: dict[type, set[str]] = {}


def _all_fields(cls: type[BaseModel]) -> set[str]:
    _ALL_FIELDS[cls] = set(cls.model_fields)
    return _ALL_FIELDS[cls]


_new = object.__new__
_set = object.__setattr__
_BUILDERS: dict[type, Any] = {}
_KEPT: set[type] = set()


def kept(cls: type[BaseModel]) -> type[BaseModel]:
    """Class decorator: receipts keep instances of this model for the life of the state,
    so :func:`trusted` builds them with inline fields (see there)."""
    _KEPT.add(cls)
    return cls


def trusted(cls: type[BaseModel], fields: dict[str, Any]) -> Any:
    """Build a model from fields the core itself computed, without validation.

    Only for data the core derived from validated input with every field given; anything
    from a plugin is validated instead.

    Models marked :func:`kept` (effects, traces, receipts) are built attribute by
    attribute: CPython (3.11+) then keeps the values inline in the object, one object for
    the garbage collector instead of two (object and ``__dict__``). Receipts keep their
    effects and traces for the life of the state and every full collection walks all of
    them, so that halves most of the collector's work (bench/PROFILE.txt). A ``__dict__``
    is still made on demand (dumps, ``==``, copies). Other models (per-event snapshots)
    get ``fields`` as their ``__dict__``, which is quicker to build.
    """
    if cls in _KEPT:
        build = _BUILDERS.get(cls) or _builder(cls)
        if len(fields) == build.size:
            try:
                return build(fields)
            except KeyError:
                pass
        obj = _new(cls)
        for name, value in fields.items():
            _set(obj, name, value)
    else:
        obj = _new(cls)
        _set(obj, "__dict__", fields)
    # One shared set per class: every field is set, and frozen models never change it.
    _set(obj, "__pydantic_fields_set__", _ALL_FIELDS.get(cls) or _all_fields(cls))
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


def _builder(cls: type[BaseModel]) -> Any:
    """``fields -> model`` for ``cls``, unrolled over its fields (a loop costs ~40% more)."""
    names = tuple(cls.model_fields)
    build = _generate(cls, "f", [f"f[{n!r}]" for n in names])
    build.size = len(names)
    _BUILDERS[cls] = build
    return build


def maker(cls: type[BaseModel]) -> Any:
    """A positional :func:`trusted` for ``cls``: ``make(*values)``, one value per field in
    the model's field order. For the hot path, where building a dict first costs ~30%."""
    params = [f"v{i}" for i in range(len(cls.model_fields))]
    return _generate(cls, ", ".join(params), params)


def _generate(cls: type[BaseModel], params: str, values: list[str]) -> Any:
    # object.__setattr__ bound to the object once: each call then skips the slicing of
    # its arguments that calling the unbound slot wrapper costs.
    lines = [f"def build({params}):", "    obj = _new(_cls)", "    put = _bind(obj)"]
    lines += [f"    put({n!r}, {v})" for n, v in zip(cls.model_fields, values, strict=True)]
    lines += ["    put('__pydantic_fields_set__', _fields_set)",
              "    put('__pydantic_extra__', None)",
              "    put('__pydantic_private__', None)",
              "    return obj"]
    env = {"_new": _new, "_bind": _set.__get__, "_cls": cls, "_fields_set": _all_fields(cls)}
    exec("\n".join(lines), env)  # noqa: S102 - generated from the model's own field names
    return env["build"]


@kept
class Trace(BaseModel):
    """Why an effect exists: the rule and version, the values it read, the arithmetic."""

    model_config = ConfigDict(frozen=True)

    rule: str
    version: str | None = None
    file: str | None = None
    detail: str = ""
    values: dict[str, Any] = Field(default_factory=dict)


class _Effect(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    line: str = Field(min_length=1)
    rule: str | None = None
    source: str = "rules"
    trace: Trace | None = None


@kept
class EarnPoints(_Effect):
    """Points credited to the member's available balance now, funded by ``line``."""

    kind: Literal["earn"] = "earn"
    points: int = Field(ge=0)
    basis: Basis = "base"


@kept
class HoldPoints(_Effect):
    """Points earned but pending: they vest at ``vests_at`` or when an event of type
    ``vests_on`` arrives for the same source event, or are voided."""

    kind: Literal["hold"] = "hold"
    points: int = Field(ge=0)
    basis: Basis = "base"
    vests_at: AwareDatetime | None = None
    vests_on: str | None = None


@kept
class ReversePoints(_Effect):
    """Points clawed back from what event ``reverses`` earned (a refund or cancellation)."""

    kind: Literal["reverse"] = "reverse"
    points: int = Field(ge=0)
    reverses: str = Field(min_length=1)
    refunded: Decimal | None = Field(default=None, description="Amount refunded, if a refund.")
    reason: str = ""


@kept
class QualifyingCredit(_Effect):
    """Qualifying credit (spend, nights, visits ...) towards tiers, in the rolling window."""

    kind: Literal["credit"] = "credit"
    credit: str = Field(min_length=1)
    value: Decimal


@kept
class GrantRight(_Effect):
    """A right (benefit) granted to the member, valid until ``valid_until``."""

    kind: Literal["grant_right"] = "grant_right"
    right: str = Field(min_length=1)
    valid_until: AwareDatetime | None = None
    description: str = ""


@kept
class UseRight(_Effect):
    """The member used ``quantity`` of a right."""

    kind: Literal["use_right"] = "use_right"
    right: str = Field(min_length=1)
    quantity: int = Field(default=1, ge=1)


@kept
class TierChange(_Effect):
    """The member moves on the group ladder (``line`` is ``group``)."""

    kind: Literal["tier_change"] = "tier_change"
    from_tier: str
    to_tier: str
    reason: Literal["upgrade", "review", "manual"] = "upgrade"





class RedeemPoints(_Effect):
    """The member spends ``points`` at ``line`` (the built-in ``redeem`` event). The ledger
    takes them from the member's lots, soonest expiry first, and records which lots paid."""

    kind: Literal["redeem"] = "redeem"
    points: int = Field(ge=1)
    reference: str = ""


class RestorePoints(_Effect):
    """Points of the earlier redemption ``redemption`` given back to the member (the
    built-in ``cancel_redemption`` event), into lots with the expiry of those it spent.
    ``redeemed_at``, ``redeemed`` and ``restored_before``: where that redemption was made,
    what it spent and what earlier cancellations gave back, as the ledger recorded them."""

    kind: Literal["restore"] = "restore"
    points: int = Field(ge=1)
    redemption: str = Field(min_length=1)
    redeemed_at: str
    redeemed: int = Field(ge=0)
    restored_before: int = Field(ge=0)
    reason: str = ""


class ReservePoints(_Effect):
    """Points put on hold at ``line`` (the built-in ``reserve_points`` event): taken from the
    member's lots now, soonest expiry first, until captured, released or ``expires_at``."""

    kind: Literal["reserve"] = "reserve"
    points: int = Field(ge=1)
    expires_at: AwareDatetime
    reference: str = ""


class CaptureReservation(_Effect):
    """``points`` of the open reservation ``reservation`` are spent at ``line`` (the built-in
    ``capture_reservation`` event); ``released`` (the rest of its ``reserved`` points) go
    back to the member with their expiry dates."""

    kind: Literal["capture"] = "capture"
    points: int = Field(ge=1)
    reservation: str = Field(min_length=1)
    reserved: int = Field(ge=1)
    released: int = Field(ge=0)
    reference: str = ""


class ReleaseReservation(_Effect):
    """The open reservation ``reservation`` ends unspent (the built-in
    ``release_reservation`` event): its ``points`` go back to the member with their
    expiry dates."""

    kind: Literal["release"] = "release"
    points: int = Field(ge=1)
    reservation: str = Field(min_length=1)
    reason: str = ""


Effect = Annotated[
    EarnPoints | HoldPoints | ReversePoints | QualifyingCredit | GrantRight | UseRight
    | TierChange | RedeemPoints | RestorePoints | ReservePoints | CaptureReservation
    | ReleaseReservation,
    Field(discriminator="kind"),
]
EFFECT_ADAPTER: TypeAdapter[Effect] = TypeAdapter(Effect)
EFFECT_TYPES = (EarnPoints, HoldPoints, ReversePoints, QualifyingCredit, GrantRight, UseRight,
                TierChange, RedeemPoints, RestorePoints, ReservePoints, CaptureReservation,
                ReleaseReservation)
# Effects only the core proposes, from the built-in events: a plugin cannot spend points,
# give them back or put them on hold.
CORE_ONLY_EFFECTS = (RedeemPoints, RestorePoints, ReservePoints, CaptureReservation,
                     ReleaseReservation)
POINT_EFFECTS = (EarnPoints, HoldPoints)
