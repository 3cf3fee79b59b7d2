"""Retail's event types and its ruleset.

Earning, refunds, qualifying credit and rights are all expressible in the ruleset shipped
with this package (rulesets/retail.yaml), so the plugin declares payloads and ships that
file; it needs no Python decision hooks.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field

from loyaltycore.plugin import EventPayload, LineSpec, hookimpl

LINE = "retail"
RULESETS = Path(__file__).resolve().parent / "rulesets"


class Purchase(EventPayload):
    """A till or online purchase. ``giftcard_paid`` and ``parking_fee`` are parts of the
    amount that earn nothing; a ``giftcard_purchase`` (buying a gift card) earns nothing."""

    store: str = Field(min_length=1, max_length=64)
    category: str = Field(min_length=1, max_length=64)
    channel: Literal["store", "app", "web"] = "store"
    giftcard_paid: Decimal = Field(default=Decimal(0), ge=0)
    parking_fee: Decimal = Field(default=Decimal(0), ge=0)
    giftcard_purchase: bool = False


class Refund(EventPayload):
    """Goods returned: ``related_event`` is the purchase's event id; the event's amount is
    the money refunded. As on the purchase, ``giftcard_refunded`` and ``parking_refunded``
    are the parts of it that never counted as spend (paid back to a gift card, a parking
    fee), and ``giftcard_purchase`` marks the return of a gift card bought."""

    related_event: str = Field(min_length=1, max_length=128)
    reason: str = ""
    giftcard_refunded: Decimal = Field(default=Decimal(0), ge=0)
    parking_refunded: Decimal = Field(default=Decimal(0), ge=0)
    giftcard_purchase: bool = False


@hookimpl
def loyalty_lines():
    return [LineSpec(name=LINE, description="Shopping malls and stores",
                     event_types={"purchase": Purchase, "refund": Refund})]


@hookimpl
def loyalty_rulesets():
    return [RULESETS]
