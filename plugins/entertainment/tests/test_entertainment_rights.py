"""The birthday ticket voucher and fast-track entry with monthly quotas by tier."""

from __future__ import annotations

import pytest
from entertainment_support import grants, reasons

BIRTHDAY_TICKET = "entertainment-birthday-ticket"


@pytest.fixture
def march_baby(engine):
    engine.enrol({"id": "M1", "birth_month": 3})
    return engine


def test_birthday_ticket_granted_once_and_used_once(march_baby, ent):
    engine = march_baby
    claim = engine.process(ent.birthday_claim(day="2026-03-02"))
    assert claim.accepted, reasons(claim)
    assert grants(claim) == [BIRTHDAY_TICKET]

    # the quota is one a year: a second claim or a ticket in March grants nothing more
    assert grants(engine.process(ent.birthday_claim(day="2026-03-03"))) == []
    assert grants(engine.process(ent.ticket("45.00", bought="2026-03-07"))) == []

    used = engine.process(ent.use(BIRTHDAY_TICKET, day="2026-03-21"))
    assert used.accepted, reasons(used)

    again = engine.process(ent.use(BIRTHDAY_TICKET, day="2026-03-22"))
    assert not again.accepted
    assert "no valid entertainment-birthday-ticket" in reasons(again)


def test_first_ticket_of_the_birth_month_brings_the_birthday_ticket(march_baby, ent):
    receipt = march_baby.process(ent.ticket("45.00", bought="2026-03-07"))

    assert grants(receipt) == [BIRTHDAY_TICKET]
    assert receipt.points == 45


def test_no_birthday_ticket_outside_the_birth_month(march_baby, ent):
    assert grants(march_baby.process(ent.birthday_claim(day="2026-04-01"))) == []
    assert grants(march_baby.process(ent.birthday_claim(day="2026-02-28"))) == []
    assert not march_baby.process(ent.use(BIRTHDAY_TICKET, day="2026-04-02")).accepted


def test_no_birthday_ticket_without_a_known_birth_month(engine, ent):
    assert grants(engine.process(ent.birthday_claim(day="2026-03-02"))) == []


def test_birthday_ticket_is_valid_30_days(march_baby, ent):
    march_baby.enrol({"id": "M2", "birth_month": 3})
    for member in ("M1", "M2"):
        march_baby.process(ent.birthday_claim(day="2026-03-30", member=member))

    # 2026-03-30 10:00 + 30 days = 2026-04-29 10:00: a minute before is in time ...
    assert march_baby.process(
        ent.use(BIRTHDAY_TICKET, day="2026-04-29T09:59:00+08:00", member="M1")).accepted
    # ... and at 10:00 it has expired
    late = march_baby.process(
        ent.use(BIRTHDAY_TICKET, day="2026-04-29T10:00:00+08:00", member="M2"))
    assert not late.accepted
    assert "0 unused and unexpired" in reasons(late)


def test_birthday_ticket_again_next_year(march_baby, ent):
    assert grants(march_baby.process(ent.birthday_claim(day="2026-03-02"))) == \
        [BIRTHDAY_TICKET]
    assert grants(march_baby.process(ent.birthday_claim(day="2027-03-01"))) == \
        [BIRTHDAY_TICKET]


@pytest.mark.parametrize(("tier", "right", "quota"), [
    ("silver", "entertainment-fast-track-silver", 2),
    ("gold", "entertainment-fast-track-gold", 4),
    ("diamond", "entertainment-fast-track-diamond", 8),
])
def test_fast_track_monthly_quota_by_tier(engine, ent, tier, right, quota):
    engine.enrol({"id": "M1", "tier": tier})

    # a party using all but one of the month's places, then one more person
    if quota > 1:
        assert engine.process(ent.use(right, quota - 1, day="2026-03-07")).accepted
    assert engine.process(ent.use(right, 1, day="2026-03-14")).accepted

    over = engine.process(ent.use(right, 1, day="2026-03-28"))
    assert not over.accepted
    assert f"{right} allows {quota} per month; {quota} used, 1 more requested" \
        in reasons(over)

    # April: the quota is back
    assert engine.process(ent.use(right, quota, day="2026-04-04")).accepted


@pytest.mark.parametrize(("tier", "right"), [
    ("member", "entertainment-fast-track-silver"),
    ("silver", "entertainment-fast-track-gold"),
    ("gold", "entertainment-fast-track-diamond"),
])
def test_fast_track_of_a_higher_tier_is_refused(engine, ent, tier, right):
    engine.enrol({"id": "M1", "tier": tier})

    receipt = engine.process(ent.use(right))

    assert not receipt.accepted
    assert receipt.violations[0].invariant == "rights"
    assert f"the member is {tier}" in reasons(receipt)
