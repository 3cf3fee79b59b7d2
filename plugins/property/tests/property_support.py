"""Test helpers for the property line: an engine on the real group policy with only the
property plugin, property event factories and receipt readers."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import loyaltycore_property.plugin as property_plugin

from loyaltycore.engine import Engine

# plugins/property/tests -> the repository root, whose group policy sets the property caps.
GROUP_POLICY = Path(__file__).resolve().parents[3] / "rulesets" / "group.yaml"


def at(day: str) -> str:
    return day if "T" in day else f"{day}T10:00:00+08:00"


class PropertyEvents:
    """Raw property event dicts, as the sales CRM would send them."""

    def __init__(self, member: str = "M1"):
        self.member = member
        self._count = 0

    def _envelope(self, type_: str, day: str, amount: str | None, data: dict[str, Any],
                  member: str | None, id_: str | None) -> dict[str, Any]:
        self._count += 1
        event = {"id": id_ or f"p-{self._count:04d}", "line": "property", "type": type_,
                 "member": member or self.member, "occurred_at": at(day), "data": data}
        if amount is not None:
            event["amount"] = amount
            event["currency"] = "CNY"
        return event

    def contract(self, value: str, *, id: str, day: str = "2026-03-02", unit: str = "T1-1801",
                 member: str | None = None) -> dict[str, Any]:
        return self._envelope("contract", day, value, {"project": "HZ-LAKESIDE", "unit": unit},
                              member, id)

    def handover(self, contract_id: str, *, day: str = "2026-09-01",
                 member: str | None = None) -> dict[str, Any]:
        return self._envelope("handover", day, None, {"related_event": contract_id}, member,
                              None)

    def cancellation(self, contract_id: str, value: str, *, day: str = "2026-04-01",
                     member: str | None = None) -> dict[str, Any]:
        return self._envelope("cancellation", day, value,
                              {"related_event": contract_id, "reason": "buyer withdrew"},
                              member, None)

    def referral(self, referee: str, referee_contract: str, *, day: str = "2026-09-01",
                 member: str | None = None) -> dict[str, Any]:
        return self._envelope("referral_reward", day, None,
                              {"referee": referee, "referee_contract": referee_contract,
                               "project": "HZ-LAKESIDE"},
                              member, f"ref-{referee_contract}")

    def use(self, right: str, *, day: str = "2026-03-02",
            member: str | None = None) -> dict[str, Any]:
        return self._envelope("use_right", day, None, {"right": right}, member, None)


def open_engine() -> Engine:
    # Loaded CI machines can stall any call; these tests are not about the time budget.
    return Engine.open([GROUP_POLICY], plugins=[property_plugin], load_entrypoints=False,
                       time_budget=2.0)


def balances(engine: Engine, day: str, member: str = "M1") -> tuple[int, int]:
    """``(available, pending)`` points of ``member`` at 10:00 on ``day``."""
    snapshot = engine.member(member, datetime.fromisoformat(at(day)))
    return snapshot.available, snapshot.pending


def effects(receipt: Any, kind: str) -> list[Any]:
    return [e for e in receipt.effects if e.kind == kind]


def reasons(receipt: Any) -> str:
    return " | ".join(str(v) for v in receipt.violations)
