"""Entertainment's event types and its ruleset.

Earning, the weekday cinema promotion, refunds, visits credit and the rights are all
expressible in the ruleset shipped with this package (rulesets/entertainment.yaml), so the
plugin declares payloads and ships that file; it needs no Python decision hooks.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from loyaltycore.plugin import EventPayload, LineSpec, hookimpl

LINE = "entertainment"
RULESETS = Path(__file__).resolve().parent / "rulesets"

VenueKind = Literal["cinema", "park", "venue"]
VenueCode = Annotated[str, Field(min_length=1, max_length=64)]


class Ticket(EventPayload):
    """Tickets bought for one show or day. The envelope ``amount`` is the money paid.

    ``admission_date`` is the day the tickets are for (the weekday promotion looks at it,
    not at the day of purchase). ``booking_fee`` is the ticketing platform's fee inside the
    amount: it is not ticket revenue and earns nothing.
    """

    venue_kind: VenueKind
    venue: VenueCode
    admission_date: date
    tickets: int = Field(default=1, ge=1, le=50)
    booking_fee: Decimal = Field(default=Decimal(0), ge=0, allow_inf_nan=False)


class PassPurchase(EventPayload):
    """An annual, season or multi-visit pass bought. The envelope ``amount`` is its price."""

    venue_kind: VenueKind
    venue: VenueCode
    pass_kind: Literal["annual", "season", "multi_visit"]


class Entry(EventPayload):
    """The member admitted at a gate or door (one event per member, venue and day): the
    qualifying ``visits`` credit. Carries no amount."""

    venue_kind: VenueKind
    venue: VenueCode
    admitted_with: Literal["ticket", "pass", "voucher"] = "ticket"


class Refund(EventPayload):
    """Money back on a ticket or pass: ``related_event`` is the purchase's event id and the
    envelope ``amount`` the money refunded, of which ``booking_fee_refunded`` is fee."""

    related_event: str = Field(min_length=1, max_length=128)
    booking_fee_refunded: Decimal = Field(default=Decimal(0), ge=0, allow_inf_nan=False)
    reason: str = Field(default="", max_length=500)


class BirthdayClaim(EventPayload):
    """The member asks for the birthday ticket (app button, or the box office on their
    behalf); granted only in the birth month."""

    channel: Literal["app", "box_office"] = "app"


@hookimpl
def loyalty_lines():
    return [LineSpec(name=LINE, description="Entertainment: cinemas, parks and venues",
                     event_types={"ticket": Ticket, "pass": PassPurchase, "entry": Entry,
                                  "refund": Refund, "birthday_claim": BirthdayClaim})]


@hookimpl
def loyalty_rulesets():
    return [RULESETS]
