"""Events at the door: validated once into frozen models; every error names the field."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from loyaltycore import EventInputError
from loyaltycore.events import EventSchema
from plugins import support

ENGINE = support.open_test()
SCHEMA = ENGINE.schema
ev = support.Events()


def refused(raw, **kw) -> EventInputError:
    with pytest.raises(EventInputError) as info:
        SCHEMA.parse(raw, **kw)
    return info.value


def test_valid_event_is_typed_and_frozen():
    e = SCHEMA.parse(ev.purchase("268.00", giftcard_paid="10.5"))
    assert e.amount == Decimal("268.00") and isinstance(e.amount, Decimal)
    assert e.data.giftcard_paid == Decimal("10.5") and e.data.channel == "store"
    assert e.occurred_at.utcoffset().total_seconds() == 8 * 3600
    assert e.key == "retail:purchase"
    with pytest.raises(ValidationError):
        e.amount = Decimal(1)
    with pytest.raises(ValidationError):
        e.data.store = "x"


def test_json_text_and_dict_parse_the_same():
    raw = ev.purchase("99.5", id="same")
    assert SCHEMA.parse(json.dumps(raw)) == SCHEMA.parse(raw) == SCHEMA.parse(
        json.dumps(raw).encode())


def test_numbers_become_exact_decimals():
    raw = ev.purchase("1")
    raw["amount"] = 0.1
    assert SCHEMA.parse(raw).amount == Decimal("0.1")


@pytest.mark.parametrize(("change", "field", "fragment"), [
    ({"occurred_at": "2026-03-12T15:00:00"}, "occurred_at", "UTC offset"),
    ({"occurred_at": "yesterday"}, "occurred_at", ""),
    ({"amount": "-1"}, "amount", "greater than or equal to 0"),
    ({"amount": "1.00001"}, "amount", "decimal places"),
    ({"amount": "NaN"}, "amount", ""),
    ({"currency": "CNYX"}, "currency", ""),
    ({"id": ""}, "id", ""),
    ({"colour": "red"}, "colour", "Extra inputs"),
    ({"data": {"store": "s", "category": "c", "colour": "red"}}, "data.colour", ""),
    ({"data": {"category": "c"}}, "data.store", "Field required"),
    ({"data": {"store": "s", "category": "c", "channel": "fax"}}, "data.channel", ""),
])
def test_bad_fields_are_named(change, field, fragment):
    err = refused({**ev.purchase("10"), **change})
    assert err.field == field
    assert fragment in err.detail


def test_several_problems_are_counted():
    err = refused({**ev.purchase("-1"), "occurred_at": "2026-03-12T15:00:00"})
    assert "(and 1 more problem(s))" in err.detail


@pytest.mark.parametrize("as_json", [False, True])
def test_unknown_line_or_type_is_named_with_the_known_ones(as_json):
    raw = {**ev.purchase("10"), "line": "hotel", "type": "stay"}
    err = refused(json.dumps(raw) if as_json else raw)
    assert err.field == "line/type"
    assert "unknown line or event type 'hotel:stay'" in err.detail
    assert "arcade:play" in err.detail and "retail:purchase" in err.detail


def test_not_json():
    err = refused("{nope", source="in.jsonl", line=3)
    assert err.detail.startswith("not valid JSON")
    assert str(err).startswith("in.jsonl:3: not valid JSON")


def test_error_text_has_source_line_and_field():
    err = refused({**ev.purchase("10"), "occurred_at": "2026-03-12T15:00:00"},
                  source="events.jsonl", line=10)
    assert (err.source, err.line, err.field) == ("events.jsonl", 10, "occurred_at")
    assert str(err) == ("events.jsonl:10: field occurred_at: timestamp needs a UTC offset "
                        "(e.g. 2026-05-01T10:00:00+08:00)")


def test_use_right_is_accepted_on_every_line():
    for line in ("retail", "arcade"):
        e = SCHEMA.parse(ev.use("x", 2, line=line))
        assert (e.data.right, e.data.quantity) == ("x", 2)
    assert refused(ev.use("x", 0)).field == "data.quantity"
    assert refused(ev.use("")).field == "data.right"


def test_payload_with_all_defaults_may_be_left_out():
    e = SCHEMA.parse({"id": "u", "line": "retail", "type": "use_right", "member": "M",
                      "occurred_at": "2026-03-01T10:00:00+08:00", "data": {"right": "r"}})
    assert e.amount is None and e.currency is None
    assert refused({**ev.play("10"), "data": {}}).field == "data.game"


def test_arcade_payload():
    e = SCHEMA.parse(ev.play("12", tokens=7, game="pong"))
    assert (e.data.game, e.data.tokens) == ("pong", 7)
    assert refused(ev.play("12", tokens=-1)).field == "data.tokens"


def test_without_line_plugins_no_event_can_be_read():
    with pytest.raises(EventInputError, match="no line plugins are installed"):
        EventSchema({}).parse(ev.purchase("1"))


def test_engine_parse_event_passes_events_through():
    e = ENGINE.parse_event(ev.purchase("1"))
    assert ENGINE.parse_event(e) is e
