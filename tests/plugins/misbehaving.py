"""Plugins that break the rules, one way each, for the plugin guard tests.

Each is a class instance with its own line (a decide hook only runs for the plugin's own
lines) and an explicit plugin name (``__name__``), so a violation can be matched to it.
"""

from __future__ import annotations

import random
import time

from loyaltycore.plugin import EarnPoints, EventPayload, LineSpec, TierChange, hookimpl


class Visit(EventPayload):
    """An event with no particular payload."""

    note: str = ""


class _Base:
    line = "bad"

    def __init__(self, name: str | None = None, line: str | None = None):
        self.__name__ = name or self.plugin_name
        if line is not None:
            self.line = line

    @hookimpl
    def loyalty_lines(self):
        return [LineSpec(name=self.line, event_types={"visit": Visit})]


class Raises(_Base):
    plugin_name = "bad-raise"
    line = "bad_raise"

    @hookimpl
    def loyalty_decide(self, event, member, policy):
        raise RuntimeError("boom from the raising plugin")


class Sleeps(_Base):
    plugin_name = "bad-slow"
    line = "bad_slow"
    seconds = 0.2

    @hookimpl
    def loyalty_decide(self, event, member, policy):
        time.sleep(self.seconds)
        return []


class SlowButFinishes(_Base):
    """Overruns the budget without being interrupted (busy for just over it)."""

    plugin_name = "bad-late"
    line = "bad_late"
    seconds = 0.015

    @hookimpl
    def loyalty_decide(self, event, member, policy):
        end = time.perf_counter() + self.seconds
        while time.perf_counter() < end:
            pass
        return []


class OtherLine(_Base):
    plugin_name = "bad-isolation"
    line = "bad_iso"
    target = "arcade"

    @hookimpl
    def loyalty_decide(self, event, member, policy):
        return [EarnPoints(line=self.target, rule="steal", points=10, basis="bonus")]


class Garbage(_Base):
    """Returns whatever ``payload`` is: not a list, a list of junk, or an invalid effect."""

    plugin_name = "bad-garbage"
    line = "bad_garbage"

    def __init__(self, payload, name: str | None = None, line: str | None = None):
        super().__init__(name, line)
        self.payload = payload

    @hookimpl
    def loyalty_decide(self, event, member, policy):
        return self.payload


class Random(_Base):
    plugin_name = "bad-random"
    line = "bad_random"

    def __init__(self, name: str | None = None, line: str | None = None):
        super().__init__(name, line)
        self.rng = random.Random(1234)

    @hookimpl
    def loyalty_decide(self, event, member, policy):
        return [EarnPoints(line=self.line, rule="lucky", points=self.rng.randint(1, 10**6),
                           basis="bonus")]


class MovesTier(_Base):
    plugin_name = "bad-tier"
    line = "bad_tier"

    @hookimpl
    def loyalty_decide(self, event, member, policy):
        return [TierChange(line="group", rule="promote", from_tier=member.tier,
                           to_tier="gold", reason="upgrade")]


class TooGenerous(_Base):
    """Well-formed, own line, deterministic, but its bonus breaks the group's bonus cap."""

    plugin_name = "bad-generous"
    line = "bad_generous"
    points = 10_000

    @hookimpl
    def loyalty_decide(self, event, member, policy):
        return [EarnPoints(line=self.line, rule="jackpot", points=self.points, basis="bonus")]


class WellBehaved(_Base):
    """A control: a small, valid bonus for its own line."""

    plugin_name = "good"
    line = "good"

    @hookimpl
    def loyalty_decide(self, event, member, policy):
        if event.amount is None:
            return None
        return [EarnPoints(line=self.line, rule="good-bonus", points=7, basis="bonus")]


BAD_LINES = ("bad_raise", "bad_slow", "bad_late", "bad_iso", "bad_garbage", "bad_random",
             "bad_tier", "bad_generous", "good")
