"""The group program in rulesets/ with all four lines: cross-selling and the caps proof."""

import loyaltycore_entertainment.plugin as entertainment
import loyaltycore_hotel.plugin as hotel
import loyaltycore_property.plugin as property_
import pytest
from click.testing import CliRunner

from loyaltycore.cli import cli
from loyaltycore.engine import Engine
from plugins import support

ALL_LINES = "retail,hotel,property,entertainment"


@pytest.fixture
def group():
    return Engine.open(support.RULESETS, plugins=[support.RETAIL, hotel, entertainment,
                                                  property_], load_entrypoints=False)


def points(receipt):
    return {e.rule: e.points for e in receipt.effects if hasattr(e, "points")}


def stay(ev, at):
    # Eligible revenue: room 1000 + F&B 100 = 1100 (taxes and service charge earn nothing).
    return ev.make(line="hotel", type="checkout", amount="1200", at=at, hotel="SH1", nights=2,
                   room_revenue="1000", fnb_revenue="100", taxes="60", service_charge="40")


def test_a_hotel_guest_shopping_for_the_first_time_earns_both_cross_sell_bonuses(group, ev):
    assert points(group.process(stay(ev, "2026-03-02"))) == {"hotel-base": 1100}
    first = group.process(ev.purchase("400", at="2026-03-05", category="fashion"))
    # 400 CNY x 1 = 400 base; new to retail while active in hotel: +200 welcome (funded by
    # retail); a hotel guest in the window: +100. Not retail's first-purchase bonus: the
    # member is not new to the group. Two lines active -> silver at once.
    assert points(first) == {"retail-base": 400, "group-welcome-to-retail": 200,
                             "group-hotel-guest-shops": 100}
    assert first.tier_after == "silver"
    assert all(e.line == "retail" for e in first.effects if hasattr(e, "points"))
    second = group.process(ev.purchase("400", at="2026-03-06", category="fashion"))
    # Now active in retail (no welcome) and the hotel-guest bonus is once a month;
    # silver earns 10% more: 400 x 0.1 = 40.
    assert points(second) == {"retail-base": 400, "retail-tier-silver": 40}
    next_month = group.process(ev.purchase("400", at="2026-04-06", category="fashion"))
    assert points(next_month) == {"retail-base": 400, "retail-tier-silver": 40,
                                  "group-hotel-guest-shops": 100}


def test_small_purchases_and_members_new_to_the_group_get_no_welcome(group, ev):
    first = group.process(ev.purchase("400", at="2026-03-05", category="fashion"))
    assert "group-welcome-to-retail" not in points(first)  # active in no other line
    group.process(stay(ev, "2026-03-06"))
    small = group.process(ev.purchase("250", member="M2", at="2026-03-07"))
    assert "group-welcome-to-retail" not in points(small)


def test_the_group_rulesets_are_clean_and_every_line_within_its_caps(monkeypatch):
    monkeypatch.setenv("LOYALTY_PLUGINS", ALL_LINES)
    done = CliRunner().invoke(cli, ["validate", str(support.RULESETS), "--strict"])
    assert done.exit_code == 0, done.output
    assert "(entertainment, hotel, property, retail); 0 warning(s)" in done.output
