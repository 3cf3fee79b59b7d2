"""Test helpers for the entertainment line: an engine on the real group policy with only
the entertainment plugin, event factories and receipt readers."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import loyaltycore_entertainment.plugin as entertainment_plugin

from loyaltycore.engine import Engine

# plugins/entertainment/tests -> the repository root, whose group policy sets the caps.
GROUP_POLICY = Path(__file__).resolve().parents[3] / "rulesets" / "group.yaml"


def at(day: str) -> str:
    return day if "T" in day else f"{day}T10:00:00+08:00"


class EntertainmentEvents:
    """Raw entertainment event dicts, as box offices, gates and the app would send them."""

    def __init__(self, member: str = "M1"):
        self.member = member
        self._count = 0

    def _envelope(self, type_: str, day: str, amount: str | None, data: dict[str, Any],
                  member: str | None, id_: str | None) -> dict[str, Any]:
        self._count += 1
        event = {"id": id_ or f"x-{self._count:04d}", "line": "entertainment",
                 "type": type_, "member": member or self.member, "occurred_at": at(day),
                 "data": data}
        if amount is not None:
            event["amount"] = amount
            event["currency"] = "CNY"
        return event

    def ticket(self, amount: str, *, kind: str = "cinema", bought: str = "2026-03-07",
               show: str | None = None, fee: str = "0", tickets: int = 1,
               id: str | None = None, member: str | None = None) -> dict[str, Any]:
        """Tickets bought on ``bought`` for ``show`` (default: the same day)."""
        return self._envelope("ticket", bought, amount, {
            "venue_kind": kind, "venue": "SH-IMAX-01" if kind == "cinema" else "SH-PARK",
            "admission_date": show or bought[:10], "tickets": tickets, "booking_fee": fee},
            member, id)

    def pass_(self, amount: str, *, day: str = "2026-03-02", kind: str = "annual",
              id: str | None = None, member: str | None = None) -> dict[str, Any]:
        return self._envelope("pass", day, amount, {
            "venue_kind": "park", "venue": "SH-PARK", "pass_kind": kind}, member, id)

    def entry(self, *, day: str = "2026-03-07", member: str | None = None) -> dict[str, Any]:
        return self._envelope("entry", day, None, {"venue_kind": "park", "venue": "SH-PARK"},
                              member, None)

    def refund(self, original: str, amount: str, *, fee: str = "0", day: str = "2026-03-08",
               member: str | None = None) -> dict[str, Any]:
        return self._envelope("refund", day, amount, {"related_event": original,
                                                      "booking_fee_refunded": fee},
                              member, None)

    def birthday_claim(self, *, day: str, member: str | None = None) -> dict[str, Any]:
        return self._envelope("birthday_claim", day, None, {}, member, None)

    def use(self, right: str, quantity: int = 1, *, day: str = "2026-03-07",
            member: str | None = None) -> dict[str, Any]:
        return self._envelope("use_right", day, None, {"right": right, "quantity": quantity},
                              member, None)


def open_engine() -> Engine:
    # Loaded CI machines can stall any call; these tests are not about the time budget.
    return Engine.open([GROUP_POLICY], plugins=[entertainment_plugin],
                       load_entrypoints=False, time_budget=2.0)


def by_rule(receipt: Any, kind: str = "earn") -> dict[str, Any]:
    """``{rule: points}`` for point effects, ``{rule: value}`` for credit effects."""
    return {e.rule: (e.value if kind == "credit" else e.points)
            for e in receipt.effects if e.kind == kind}


def balances(engine: Engine, day: str, member: str = "M1") -> tuple[int, int]:
    """``(available, pending)`` points of ``member`` at ``day`` (10:00 if no time)."""
    snapshot = engine.member(member, datetime.fromisoformat(at(day)))
    return snapshot.available, snapshot.pending


def grants(receipt: Any) -> list[str]:
    return [e.right for e in receipt.effects if e.kind == "grant_right"]


def reasons(receipt: Any) -> str:
    return " | ".join(str(v) for v in receipt.violations)
