"""Receipts: the answer to one event, accepted or rejected, with effects and reasons."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from itertools import chain
from operator import attrgetter
from typing import Any, Literal, get_origin

from pydantic import BaseModel, ConfigDict, Field

from .effects import EFFECT_TYPES, EarnPoints, Effect, HoldPoints, Trace, kept, maker


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


# --- receipts kept for idempotency --------------------------------------------------------
#
# A state keeps every receipt it gave, to answer a resubmitted event with it. As models
# (receipt, effects, traces, their tuples) that is ~10 objects per event that every full
# garbage collection walks. ``pack`` writes a receipt as one flat tuple of its field values
# (strings, numbers, Decimals, datetimes: nested models and dicts are laid out inline, after
# their lengths), which CPython stops tracking at its first collection: a kept receipt then
# costs the collector nothing. (Nested tuples would be untracked one level per collection
# of their generation, and full collections are rare.) ``unpack`` rebuilds an equal
# receipt, field by field. A receipt ``pack`` could not rebuild exactly (a model subclass,
# fields left unset) is not packed.


class _Unpackable(Exception):
    pass


def _codecs() -> tuple[Any, Any]:
    """Generate the packing and unpacking functions, unrolled over each model's fields (as
    effects.maker does). Layout, each model in field order, then what it holds:

    - a dict field: its length n; its n keys and values follow the model's own fields;
    - ``trace``: None, or the length of its values; the trace follows the effect;
    - ``effects``, ``violations``, ``not_fired``: their lengths; the models follow the
      receipt in that order, each effect preceded by its index in ``EFFECT_TYPES``.
    """
    env: dict[str, Any] = {"_Unpackable": _Unpackable, "_type": type, "_len": len,
                           "_tuple": tuple, "_dict": dict, "_zip": zip,
                           "_flat": chain.from_iterable}
    lines: list[str] = []
    kinds = {"effects": "effect", "violations": "violation", "not_fired": "miss"}

    def pair(cls: type[BaseModel], name: str, tag: int | None = None) -> None:
        fields = list(cls.model_fields.items())
        env[f"_{name}_cls"] = cls
        env[f"_{name}_make"] = maker(cls)
        # All fields in one C call: each read of a model's attribute from Python code
        # misses CPython's attribute cache (the model class has a __getattr__).
        env[f"_{name}_get"] = attrgetter("__pydantic_fields_set__", *(f for f, _ in fields))
        out, tail, back, after = [] if tag is None else [str(tag)], [], [], []
        for f, info in fields:
            v = f"v_{f}"
            back.append(v)
            if f == "trace":
                out.append(f"None if {v} is None else _len({v}.values)")
                tail += [f"    if {v} is not None:", f"        _pack_trace({v}, out)"]
                after += [f"    if {v} is not None:", f"        {v}, i = _unpack_trace(t, i)"]
            elif f in kinds:
                out.append(f"_len({v})")
                tail += [f"    for x in {v}:", f"        _pack_{kinds[f]}(x, out)"]
                after += [f"    if {v}:",
                          "        xs = []",
                          f"        for _ in range({v}):",
                          f"            x, i = _unpack_{kinds[f]}(t, i)",
                          "            xs.append(x)",
                          f"        {v} = _tuple(xs)",
                          "    else:",
                          f"        {v} = ()"]
            elif get_origin(info.annotation) is dict:
                out.append(f"_len({v})")
                tail.append(f"    out += _flat({v}.items())")
                after += [f"    j = i + 2 * {v}",
                          f"    {v} = _dict(_zip(t[i:j:2], t[i + 1:j:2]))",
                          "    i = j"]
            else:
                out.append(v)
        n, skip = len(fields), 0 if tag is None else 1
        lines.extend([
            f"def _pack_{name}(o, out):",
            f"    if _type(o) is not _{name}_cls:",
            "        raise _Unpackable",
            "    try:",
            f"        fields_set, {', '.join(back)}, = _{name}_get(o)",
            # A field never set: unpackable if the model says so (checked first before),
            # else the read's own error, as before.
            "    except AttributeError:",
            f"        if _len(o.__pydantic_fields_set__) != {n}:",
            "            raise _Unpackable from None",
            "        raise",
            f"    if _len(fields_set) != {n}:",
            "        raise _Unpackable",
            f"    out += ({', '.join(out)},)",
            *tail,
            f"def _unpack_{name}(t, i):",
            f"    {', '.join(back)}, = t[i + {skip}:i + {skip + n}]",
            f"    i += {skip + n}",
            *after,
            f"    return _{name}_make({', '.join(back)}), i",
        ])

    pair(Trace, "trace")
    pair(Violation, "violation")
    pair(RuleMiss, "miss")
    pair(Receipt, "receipt")
    for tag, cls in enumerate(EFFECT_TYPES):
        pair(cls, f"effect{tag}", tag)
    packs = ", ".join(f"_effect{t}_cls: _pack_effect{t}" for t in range(len(EFFECT_TYPES)))
    unpacks = ", ".join(f"_unpack_effect{t}" for t in range(len(EFFECT_TYPES)))
    lines += [
        f"_EFFECT_PACK = {{{packs}}}",
        f"_EFFECT_UNPACK = ({unpacks},)",
        "def _pack_effect(o, out):",
        "    pack = _EFFECT_PACK.get(_type(o))",
        "    if pack is None:",
        "        raise _Unpackable",
        "    pack(o, out)",
        "def _unpack_effect(t, i):",
        "    return _EFFECT_UNPACK[t[i]](t, i)",
    ]
    exec("\n".join(lines), env)  # noqa: S102 - generated from the models' own field names
    return env["_pack_receipt"], env["_unpack_receipt"]


_pack_receipt, _unpack_receipt = _codecs()


def pack(receipt: Receipt, head: tuple = ()) -> tuple | None:
    """``head`` followed by ``receipt`` as one flat tuple (see above), or None if the
    receipt cannot be packed exactly."""
    out = list(head)
    try:
        _pack_receipt(receipt, out)
    except _Unpackable:
        return None
    return tuple(out)


def unpack(packed: tuple, start: int = 0) -> Receipt:
    """The receipt :func:`pack` wrote into ``packed`` from ``start`` on (an equal one)."""
    return _unpack_receipt(packed, start)[0]
