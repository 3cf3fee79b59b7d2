"""Hotel's event types and its ruleset.

Earning, refunds, qualifying credit, rights and the diamond welcome amenity are all
expressible in the ruleset shipped with this package (rulesets/hotel.yaml), so the
plugin declares payloads and ships that file; it needs no Python decision hooks.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field

from loyaltycore.plugin import EventPayload, LineSpec, hookimpl

LINE = "hotel"
RULESETS = Path(__file__).resolve().parent / "rulesets"

# Where the booking was made. 'ota' and 'wholesale' are third-party bookings: the hotel
# sells those rooms at a net rate and pays a commission, so the program does not fund points
# or tier credit on them (the ruleset names these two values).
BookingChannel = Literal["direct", "app", "web", "call_centre", "corporate", "ota", "wholesale"]


class Checkout(EventPayload):
    """A settled folio at checkout: the stay's figures.

    The envelope ``amount`` is the money paid on the folio (room, F&B, taxes and service
    charge). Only ``room_revenue`` and ``fnb_revenue`` earn; ``taxes`` and
    ``service_charge`` are sent so that the folio adds up for audit, and earn nothing.
    """

    hotel: str = Field(min_length=1, max_length=64)
    nights: int = Field(ge=1, le=365)
    room_revenue: Decimal = Field(ge=0, allow_inf_nan=False)
    fnb_revenue: Decimal = Field(default=Decimal(0), ge=0, allow_inf_nan=False)
    taxes: Decimal = Field(default=Decimal(0), ge=0, allow_inf_nan=False)
    service_charge: Decimal = Field(default=Decimal(0), ge=0, allow_inf_nan=False)
    booking_channel: BookingChannel = "direct"


class FolioRefund(EventPayload):
    """Money given back on a settled folio: ``related_event`` is the checkout's event id and
    the envelope ``amount`` the money refunded (taxes included).

    ``eligible_refunded`` is the room and F&B part of that money and ``nights_refunded`` the
    nights cancelled, so tier credit comes off exactly as it went on. ``booking_channel``
    repeats the stay's channel: a third-party stay earned no credit, so none is taken back.
    """

    related_event: str = Field(min_length=1, max_length=128)
    booking_channel: BookingChannel
    eligible_refunded: Decimal = Field(ge=0, allow_inf_nan=False)
    nights_refunded: int = Field(default=0, ge=0, le=365)
    reason: str = Field(default="", max_length=500)


@hookimpl
def loyalty_lines():
    return [LineSpec(name=LINE, description="Hotels: stays, room and F&B revenue",
                     event_types={"checkout": Checkout, "refund": FolioRefund})]


@hookimpl
def loyalty_rulesets():
    return [RULESETS]
