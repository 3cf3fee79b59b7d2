"""Property's event types and its ruleset.

Everything this line decides is expressible in the ruleset shipped with this package
(rulesets/property.yaml): points held from contract to handover, voided on cancellation,
capped per contract; tier credit capped per contract; the referral bonus. So the plugin
declares payloads and ships that file, and needs no Python decision hooks.

Referrals: the core applies effects only to the member an event belongs to, so the
referee's handover cannot pay the referrer. The sales CRM, on the referee's handover, sends
a ``referral_reward`` event for the referrer, and the ruleset pays the bonus on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from loyaltycore.plugin import EventPayload, LineSpec, hookimpl

LINE = "property"
RULESETS = Path(__file__).resolve().parent / "rulesets"

EventId = Annotated[str, Field(min_length=1, max_length=128)]


class Contract(EventPayload):
    """A signed sales contract. The envelope ``amount`` is the contract value."""

    project: str = Field(min_length=1, max_length=64)
    unit: str = Field(min_length=1, max_length=64)
    # Kept for the CRM's referral job (it sends ``referral_reward`` at handover); no rule
    # reads it, because the referrer is another member.
    referred_by: str | None = Field(default=None, min_length=1, max_length=128)


class Handover(EventPayload):
    """Keys handed over: ``related_event`` is the contract's event id. Vests its points."""

    related_event: EventId


class Cancellation(EventPayload):
    """A contract cancelled before (or, as a buy-back, after) handover: ``related_event`` is
    the contract's event id and the envelope ``amount`` the contract value cancelled."""

    related_event: EventId
    reason: str = Field(default="", max_length=500)


class ReferralReward(EventPayload):
    """Sent for the referrer when a member they referred takes handover of a home.

    ``referee`` is the referred member's id and ``referee_contract`` their contract's event
    id; send it with an event id derived from that contract (e.g. ``ref-<contract id>``) so a
    resend is an idempotent duplicate rather than a second bonus."""

    referee: str = Field(min_length=1, max_length=128)
    referee_contract: EventId
    project: str = Field(min_length=1, max_length=64)


@hookimpl
def loyalty_lines():
    return [LineSpec(name=LINE, description="Property: home sales, handovers and referrals",
                     event_types={"contract": Contract, "handover": Handover,
                                  "cancellation": Cancellation,
                                  "referral_reward": ReferralReward})]


@hookimpl
def loyalty_rulesets():
    return [RULESETS]
