"""Test helpers for the hotel line: an engine on the real group policy with only the hotel
plugin, hotel event factories and receipt readers. Imported by conftest.py and the tests."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import loyaltycore_hotel.plugin as hotel_plugin

from loyaltycore.engine import Engine

# plugins/hotel/tests -> the repository root, whose group policy sets the hotel caps.
GROUP_POLICY = Path(__file__).resolve().parents[3] / "rulesets" / "group.yaml"


class HotelEvents:
    """Raw hotel event dicts, as a property-management system would send them."""

    def __init__(self, member: str = "M1"):
        self.member = member
        self._count = 0

    def _envelope(self, type_: str, at: str, amount: Any, data: dict[str, Any],
                  member: str | None, id_: str | None) -> dict[str, Any]:
        self._count += 1
        event = {"id": id_ or f"h-{self._count:04d}", "line": "hotel", "type": type_,
                 "member": member or self.member,
                 "occurred_at": at if "T" in at else f"{at}T12:00:00+08:00", "data": data}
        if amount is not None:
            event["amount"] = str(amount)
            event["currency"] = "CNY"
        return event

    def checkout(self, *, nights: int, room: str, fnb: str = "0", taxes: str = "0",
                 service: str = "0", channel: str = "direct", amount: str | None = None,
                 at: str = "2026-03-02", member: str | None = None,
                 id: str | None = None) -> dict[str, Any]:
        """A checkout; the amount defaults to the whole folio (room + F&B + taxes + service)."""
        if amount is None:
            amount = str(sum(Decimal(x) for x in (room, fnb, taxes, service)))
        return self._envelope("checkout", at, amount, {
            "hotel": "SH-BUND", "nights": nights, "room_revenue": room, "fnb_revenue": fnb,
            "taxes": taxes, "service_charge": service, "booking_channel": channel},
            member, id)

    def refund(self, checkout_id: str, amount: str, *, eligible: str, nights: int = 0,
               channel: str = "direct", at: str = "2026-03-05",
               member: str | None = None) -> dict[str, Any]:
        return self._envelope("refund", at, amount, {
            "related_event": checkout_id, "booking_channel": channel,
            "eligible_refunded": eligible, "nights_refunded": nights}, member, None)

    def use(self, right: str, quantity: int = 1, *, at: str = "2026-03-02",
            member: str | None = None) -> dict[str, Any]:
        return self._envelope("use_right", at, None, {"right": right, "quantity": quantity},
                              member, None)


def open_engine() -> Engine:
    # Loaded CI machines can stall any call; these tests are not about the time budget.
    return Engine.open([GROUP_POLICY], plugins=[hotel_plugin], load_entrypoints=False,
                       time_budget=2.0)


def by_rule(receipt: Any, kind: str = "earn") -> dict[str, Any]:
    """``{rule: points}`` for point effects, ``{rule: value}`` for credit effects."""
    out: dict[str, Any] = {}
    for effect in receipt.effects:
        if effect.kind == kind:
            out[effect.rule] = effect.value if kind == "credit" else effect.points
    return out


def reasons(receipt: Any) -> str:
    return " | ".join(str(v) for v in receipt.violations)
