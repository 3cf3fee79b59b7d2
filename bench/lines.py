"""The bench's four business lines: payload models and in-process plugins.

Registered with ``Engine.open(..., plugins=PLUGINS, load_entrypoints=False)`` so the real
retail plugin (an installed entry point) is never loaded. Each plugin object only declares
its line (``loyalty_lines``); all earning is in bench/rulesets/*.yaml, as for retail.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field

from loyaltycore.plugin import EventPayload, LineSpec, hookimpl

# --- retail ---------------------------------------------------------------------------


class RetailPurchase(EventPayload):
    store: str = Field(min_length=1, max_length=64)
    category: str = Field(min_length=1, max_length=64)
    channel: Literal["store", "app", "web"] = "store"
    giftcard_paid: Decimal = Field(default=Decimal(0), ge=0)
    parking_fee: Decimal = Field(default=Decimal(0), ge=0)
    giftcard_purchase: bool = False


class RetailRefund(EventPayload):
    related_event: str = Field(min_length=1, max_length=128)
    reason: str = ""


# --- hotel ----------------------------------------------------------------------------


class HotelStay(EventPayload):
    hotel: str = Field(min_length=1, max_length=64)
    room_type: Literal["standard", "deluxe", "suite"]
    nights: int = Field(ge=1, le=60)
    channel: Literal["app", "web", "ota", "front_desk"] = "front_desk"
    rate_code: Literal["BAR", "CORP", "PKG", "OTA"] = "BAR"


class HotelDining(EventPayload):
    hotel: str = Field(min_length=1, max_length=64)
    outlet: str = Field(min_length=1, max_length=64)
    covers: int = Field(default=1, ge=1, le=50)


# --- property -------------------------------------------------------------------------


class PropertyContract(EventPayload):
    project: str = Field(min_length=1, max_length=64)
    unit_type: Literal["apartment", "villa", "office", "parking_space"]
    referral: bool = False
    first_home: bool = False


class PropertyServiceFee(EventPayload):
    project: str = Field(min_length=1, max_length=64)
    service: Literal["management", "parking", "utilities"]
    months: int = Field(default=1, ge=1, le=36)
    autopay: bool = False


# --- entertainment --------------------------------------------------------------------


class EntTicket(EventPayload):
    venue: str = Field(min_length=1, max_length=64)
    kind: Literal["cinema", "concert", "theme_park", "karaoke"]
    tickets: int = Field(default=1, ge=1, le=50)
    channel: Literal["box_office", "app", "web"] = "box_office"


class EntFnb(EventPayload):
    venue: str = Field(min_length=1, max_length=64)
    outlet: str = Field(min_length=1, max_length=64)


class _Line:
    """One in-process line plugin (pluggy registers it under ``__name__``)."""

    def __init__(self, name: str, description: str, event_types: dict):
        self.__name__ = f"bench_{name}"
        self._spec = LineSpec(name=name, description=description, event_types=event_types)

    @hookimpl
    def loyalty_lines(self):
        return [self._spec]


RETAIL = _Line("retail", "Malls and stores (bench)",
               {"purchase": RetailPurchase, "refund": RetailRefund})
HOTEL = _Line("hotel", "Hotels (bench)", {"stay": HotelStay, "dining": HotelDining})
PROPERTY = _Line("property", "Residential property (bench)",
                 {"contract": PropertyContract, "service_fee": PropertyServiceFee})
ENTERTAINMENT = _Line("entertainment", "Cinemas, concerts, parks (bench)",
                      {"ticket": EntTicket, "fnb": EntFnb})

PLUGINS = [RETAIL, HOTEL, PROPERTY, ENTERTAINMENT]
LINES = [p._spec.name for p in PLUGINS]
# For the CLI (entry points): name -> "module:attribute".
ENTRY_POINTS = {p.__name__: f"lines:{p._spec.name.upper()}" for p in PLUGINS}
