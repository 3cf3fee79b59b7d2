"""Test helpers for the retail line: an engine on the real group policy with only the retail
plugin (which ships the retail ruleset), retail event factories and receipt readers.
Imported by conftest.py and the tests."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import loyaltycore_retail.plugin as retail_plugin

from loyaltycore.engine import Engine

# plugins/retail/tests -> the repository root, whose group policy sets the retail caps.
ROOT = Path(__file__).resolve().parents[3]
GROUP_POLICY = ROOT / "rulesets" / "group.yaml"
# The retail rules, shipped in the package and handed to the core by loyalty_rulesets.
RETAIL_RULES = retail_plugin.RULESETS / "retail.yaml"

CN = timezone(timedelta(hours=8))  # the group timezone (Asia/Shanghai), no DST


def at(day: str, hour: int = 12) -> datetime:
    """A date in the group timezone, at ``hour`` o'clock."""
    return datetime.combine(datetime.fromisoformat(day).date(), time(hour), CN)


class RetailEvents:
    """Raw retail event dicts, as a till, the mall app or the web shop would send them."""

    def __init__(self, member: str = "M1"):
        self.member = member
        self._count = 0

    def _envelope(self, type_: str, at_: str, amount: Any, data: dict[str, Any],
                  member: str | None, id_: str | None) -> dict[str, Any]:
        self._count += 1
        event = {"id": id_ or f"r-{self._count:04d}", "line": "retail", "type": type_,
                 "member": member or self.member,
                 "occurred_at": at_ if "T" in at_ else f"{at_}T12:00:00+08:00", "data": data}
        if amount is not None:
            event["amount"] = str(amount)
            event["currency"] = "CNY"
        return event

    def purchase(self, amount: str, *, category: str = "fashion", channel: str = "store",
                 giftcard_paid: str = "0", parking_fee: str = "0",
                 giftcard_purchase: bool = False, store: str = "SH-MALL-01",
                 at: str = "2026-03-02", member: str | None = None,
                 id: str | None = None) -> dict[str, Any]:
        # 2026-03-02 is a Monday: no member day unless a test asks for a Wednesday.
        return self._envelope("purchase", at, amount, {
            "store": store, "category": category, "channel": channel,
            "giftcard_paid": giftcard_paid, "parking_fee": parking_fee,
            "giftcard_purchase": giftcard_purchase}, member, id)

    def refund(self, purchase_id: str, amount: str, *, at: str = "2026-03-05",
               reason: str = "returned", member: str | None = None,
               id: str | None = None, giftcard_refunded: str = "0",
               parking_refunded: str = "0") -> dict[str, Any]:
        return self._envelope("refund", at, amount, {
            "related_event": purchase_id, "reason": reason,
            "giftcard_refunded": giftcard_refunded, "parking_refunded": parking_refunded},
            member, id)

    def use(self, right: str, quantity: int = 1, *, at: str = "2026-03-02",
            member: str | None = None) -> dict[str, Any]:
        return self._envelope("use_right", at, None, {"right": right, "quantity": quantity},
                              member, None)

    def redeem(self, points: int, *, at: str = "2026-03-20", reference: str = "till",
               member: str | None = None, id: str | None = None) -> dict[str, Any]:
        return self._envelope("redeem", at, None, {"points": points, "reference": reference},
                              member, id)


def open_engine(**kwargs: Any) -> Engine:
    # Loaded CI machines can stall any call; these tests are not about the time budget.
    kwargs.setdefault("time_budget", 2.0)
    return Engine.open(GROUP_POLICY, plugins=[retail_plugin], load_entrypoints=False,
                       **kwargs)


def by_rule(receipt: Any, kind: str = "hold") -> dict[str, Any]:
    """``{rule: points}`` for point effects (retail points are ``hold`` until the return
    window ends), ``{rule: value}`` for credit effects, ``{rule: right}`` for grants."""
    out: dict[str, Any] = {}
    for effect in receipt.effects:
        if effect.kind == kind:
            if kind == "credit":
                out[effect.rule] = effect.value
            elif kind == "grant_right":
                out[effect.rule] = effect.right
            else:
                out[effect.rule] = effect.points
    return out


def reasons(receipt: Any) -> str:
    return " | ".join(str(v) for v in receipt.violations)
