"""A reproducible synthetic group for ``loyalty demo`` and the benchmarks.

:class:`SyntheticGroup` makes a group (``random.Random(seed)`` only, no clock): members with
birth months, enrolment dates and starting tiers, each following a persona over the months,
with seasonality, refunds of earlier purchases, redemptions at other lines than the one that
funded the points, and uses of rights the member probably has. Each member's timeline is
simulated in time order with a rough estimate of their balance, qualification and tier, so
redemptions and right uses are plausible; the estimate is deliberately rough (it ignores
most bonuses and caps), so a few are still rejected, as at a real till.

The events come out a calendar month at a time (:meth:`SyntheticGroup.months`), so a year
of a large group never has to fit in memory. The seeded stream of random numbers is drawn
member after member (a member's whole period, then the next member's), which is what makes
a seed's events what they are; to keep them, the simulation still runs member by member,
writes each event to a file per month (next to the output, ``workdir``) as it is made, and
the months are read back, put in time order and handed out one by one. Memory is one
member's timeline while simulating and one month's events while reading; disk is the
period's events once more, each month's file deleted when it has been read.
"""

from __future__ import annotations

import heapq
import json
import math
import random
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

DEFAULT_START = date(2026, 1, 1)
# The group's zone (rulesets/group.yaml: Asia/Shanghai, no daylight saving). The generator
# runs without an engine, so it stamps events with the fixed offset a till there would send.
GROUP_TZ = timezone(timedelta(hours=8))
LINES = ("retail", "hotel", "entertainment", "property")
REFUND_TYPES = frozenset({"refund", "cancellation"})  # amounts that are money given back
CENT = Decimal("0.01")
POINT_STEP = 100  # members redeem round amounts, as a till's redemption screen offers
HOLD_LINES = frozenset({"retail", "entertainment"})  # lines whose tills hold points first

# Month multipliers (January first): CNY (late January/February) and 11.11 / December for
# retail, the summer holidays and October's Golden Week for hotels and entertainment.
SEASON = {
    "retail": (1.15, 1.35, 0.90, 0.95, 1.00, 1.05, 0.95, 0.95, 1.00, 1.10, 1.45, 1.35),
    "hotel": (0.85, 0.80, 0.95, 1.00, 1.05, 1.25, 1.45, 1.50, 1.05, 1.20, 0.95, 0.90),
    "entertainment": (1.10, 1.40, 0.90, 0.95, 1.00, 1.10, 1.40, 1.45, 0.95, 1.25, 0.90, 1.05),
    "property": (0.80, 0.60, 1.20, 1.20, 1.10, 1.00, 0.90, 0.90, 1.25, 1.20, 1.00, 0.85),
}

# A copy of the group ladder (rulesets/group.yaml) that only steers the generator's guesses
# of a member's tier; a wrong guess makes a right use that the engine rejects, which is
# what happens when a member asks for a benefit they no longer have.
TIERS_LADDER = ("member", "silver", "gold", "diamond")
UPGRADE = {1: (20000, 10, 2), 2: (80000, 30, 3), 3: (200000, 60, 4)}  # spend, nights, lines
RETAIN = {1: (15000, 8, 2), 2: (60000, 24, 3), 3: (160000, 50, 4)}
TIER_EXTRA = {  # tier bonus share of base points, per line, as the line rulesets pay it
    "retail": (0, Decimal("0.1"), Decimal("0.25"), Decimal("0.5")),
    "hotel": (0, Decimal("0.25"), Decimal("0.5"), Decimal(1)),
    "entertainment": (0, Decimal("0.25"), Decimal("0.5"), Decimal(1)),
}

# (category, weight for a shopper, weight for a family, lowest and highest ticket in CNY)
CATEGORIES = (
    ("grocery", 22, 34, 30, 600), ("beauty", 20, 6, 150, 3000),
    ("fashion", 18, 14, 150, 4000), ("dining", 16, 14, 60, 900),
    ("electronics", 6, 6, 300, 12000), ("home", 10, 10, 100, 5000),
    ("kids", 2, 16, 60, 1500), ("sports", 6, 0, 100, 2500),
)


@dataclass(frozen=True)
class Persona:
    name: str
    share: float
    rates: Mapping[str, float]  # expected events a month, before season and activity
    redeem_rate: float  # redemption attempts a month
    redeem_at: Mapping[str, float]  # where they spend points (weights)


PERSONAS = (
    Persona("shopper", 0.42, {"retail": 2.2, "ticket": 0.08, "hotel": 0.02}, 0.22,
            {"hotel": 35, "entertainment": 40, "retail": 25}),
    Persona("business_traveller", 0.18, {"hotel": 0.9, "retail": 0.6, "ticket": 0.03},
            0.25, {"retail": 55, "entertainment": 25, "hotel": 20}),
    Persona("family", 0.32, {"retail": 1.1, "ticket": 0.7, "hotel": 0.04}, 0.2,
            {"retail": 40, "hotel": 35, "entertainment": 25}),
    Persona("home_buyer", 0.08, {"retail": 0.7, "ticket": 0.1, "hotel": 0.04}, 0.3,
            {"hotel": 40, "retail": 40, "entertainment": 15, "property": 5}),
)


# --- generating ----------------------------------------------------------------------------


def generate(members: int, months: int, seed: int, start: date = DEFAULT_START
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``members`` member profiles and their events over ``months`` calendar months from
    ``start`` (its month's first day), as dicts a POS/CRM would send, sorted by time.

    The whole period at once, for tests and small groups; the demo reads
    :meth:`SyntheticGroup.months` instead, one month at a time. The same arguments always
    give the same profiles and events (one seeded generator, no clock, no hash order)."""
    with SyntheticGroup(members, months, seed, start) as group:
        events = [ev for month in group.months() for ev in month.events()]
    return group.profiles, events


@dataclass(eq=False)
class Month:
    """One calendar month of a synthetic group's events, in time order."""

    index: int  # 0 for the first month of the period
    first: date  # its first day
    lines: list[str]  # each event as a JSONL line (newline included), as written to files

    def __len__(self) -> int:
        return len(self.lines)

    def events(self) -> Iterator[dict[str, Any]]:
        """The events as dicts, parsed one at a time as they are asked for."""
        return (json.loads(line) for line in self.lines)


class SyntheticGroup:
    """A group of ``members`` over ``months`` calendar months from ``start``'s month.

    ``profiles`` is there from the start (all members: enrolment needs them first). The
    events come from :meth:`months`, one :class:`Month` at a time; :meth:`simulate`
    (which :meth:`months` calls if need be) makes them all first, into temporary files
    under ``workdir`` (the system's temporary directory by default), removed by
    :meth:`close` or on leaving a ``with`` block. The same arguments always give the same
    profiles and events, and the months put together are :func:`generate`'s events."""

    def __init__(self, members: int, months: int, seed: int, start: date = DEFAULT_START, *,
                 workdir: str | Path | None = None):
        if members < 1 or months < 1:
            raise ValueError("a demo needs at least one member and one month")
        self.months_in_period = months
        self.first = date(start.year, start.month, 1)
        self.end = add_months(self.first, months)
        self.workdir = workdir
        self._rng = random.Random(seed)
        self._ids = [f"M{i:06d}" for i in range(members)]
        self.profiles: list[dict[str, Any]] = [_profile(self._rng, mid, self.first, self.end)
                                               for mid in self._ids]
        self.events: int | None = None  # how many, once simulated
        self.per_month: list[int] = []
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._read = False

    def __enter__(self) -> SyntheticGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def simulate(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Simulate every member's period (once); the number of events. ``progress`` is
        called with (members done, members) now and then."""
        if self.events is not None:
            return self.events
        self._dir = tempfile.TemporaryDirectory(prefix=".synthetic-", dir=self.workdir)
        rng = self._rng
        spill = _Spill(Path(self._dir.name), self.first, self.months_in_period)
        try:
            group = _Group(rng, self.first, self.end, self._ids,
                           [date.fromisoformat(p["enrolled_on"]) for p in self.profiles],
                           spill.write)
            for i, profile in enumerate(self.profiles, 1):
                persona = rng.choices(PERSONAS, weights=[p.share for p in PERSONAS])[0]
                # Most members are occasional, a few are heavy: the long tail every program has.
                activity = min(rng.lognormvariate(-0.35, 0.85), 6.0)
                _Timeline(group, profile, persona, activity).run()
                if progress and (i % 1000 == 0 or i == len(self.profiles)):
                    progress(i, len(self.profiles))
        finally:
            spill.close()
        self.per_month = spill.counts
        self.events = sum(spill.counts)
        return self.events

    def months(self) -> Iterator[Month]:
        """The months in order, each one's events in time order (by time, then the order
        the simulation made them: the same order as :func:`generate`'s). Only one month
        is held at a time: drop each before asking for the next. Can be read once."""
        if self._read:
            raise RuntimeError("a synthetic group's months can be read once")
        self.simulate()
        self._read = True
        assert self._dir is not None
        where = Path(self._dir.name)
        for k in range(self.months_in_period):
            path = where / _Spill.name(k)
            with open(path, encoding="utf-8") as fh:
                lines = fh.readlines()
            path.unlink()
            lines.sort(key=_spill_key)
            for i, line in enumerate(lines):
                lines[i] = line.split(" ", 2)[2]
            month = Month(k, add_months(self.first, k), lines)
            del lines
            yield month
            # The month just handed out must not outlive the consumer's use of it while
            # the next one is read.
            del month
        self.close()


class _Spill:
    """The simulation's output: a file per month; each line is an event's sort key (UTC
    microseconds, emission number) and its JSON. A month's file is in emission order
    (member by member); reading it back sorts it."""

    def __init__(self, where: Path, first: date, months: int):
        self.base = _month_index(datetime(first.year, first.month, 1, tzinfo=GROUP_TZ))
        self.months = months
        self.counts = [0] * months
        self.n = 0
        self.files = [open(where / self.name(k), "w", encoding="utf-8") for k in range(months)]

    @staticmethod
    def name(k: int) -> str:
        return f"month-{k:04d}.part"

    def write(self, at: datetime, event: dict[str, Any]) -> None:
        # Clamped: an event a few minutes past the period (a right used after a late
        # entry) is the last month's, as the demo processes it; it is still the latest.
        k = min(max(_month_index(at.astimezone(GROUP_TZ)) - self.base, 0), self.months - 1)
        key = (at - _EPOCH) // _MICROSECOND
        self.files[k].write(f"{key} {self.n} {json.dumps(event, separators=(',', ':'))}\n")
        self.counts[k] += 1
        self.n += 1

    def close(self) -> None:
        for fh in self.files:
            fh.close()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _spill_key(line: str) -> tuple[int, int]:
    at, n, _ = line.split(" ", 2)
    return int(at), int(n)


def write_jsonl(events: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """One event per line (what ``loyalty dry-run`` and ``loyalty process`` read)."""
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for ev in events:
            fh.write(json.dumps(ev, separators=(",", ":")))
            fh.write("\n")
            n += 1
    return n


def _profile(rng: random.Random, member_id: str, first: date, end: date) -> dict[str, Any]:
    if rng.random() < 0.2:  # joined during the demo: their activity starts then
        enrolled = first + timedelta(days=rng.randrange(max(1, (end - first).days - 20)))
        tier = "member"
    else:
        enrolled = first - timedelta(days=rng.randint(30, 8 * 365))
        tier = rng.choices(TIERS_LADDER, weights=(86, 9, 4, 1))[0]
    return {"id": member_id, "birth_month": None if rng.random() < 0.08 else rng.randint(1, 12),
            "enrolled_on": enrolled.isoformat(), "tier": tier}


class _Group:
    """What all timelines share: the generator, the period, where events go."""

    def __init__(self, rng: random.Random, first: date, end: date, ids: list[str],
                 enrolled: list[date], emit: Callable[[datetime, dict[str, Any]], None]):
        self.rng = rng
        self.emit = emit
        self.enrolled = enrolled
        self.first = first
        self.end = end
        self.end_at = datetime(end.year, end.month, end.day, tzinfo=GROUP_TZ)
        self.ids = ids


class _Timeline:
    """One member's months, simulated in time order: each action runs at its time, sees
    the member's estimated balance and tier as of then, and may schedule later actions."""

    def __init__(self, group: _Group, profile: dict[str, Any], persona: Persona,
                 activity: float):
        self.g = group
        self.rng = group.rng
        self.id = profile["id"]
        self.persona = persona
        self.activity = activity
        self.birth_month = profile["birth_month"]
        self.enrolled = date.fromisoformat(profile["enrolled_on"])
        self.tier = TIERS_LADDER.index(profile["tier"])
        self.queue: list[tuple[datetime, int, Callable[..., None], tuple]] = []
        self.seq = 0
        self.available = 0
        self.vesting: list[tuple[datetime, int]] = []
        self.held: dict[str, int] = {}  # contract id -> points pending until handover
        self.spend: Counter[int] = Counter()  # month index -> qualifying spend (CNY)
        self.nights: Counter[int] = Counter()
        self.lines: dict[int, set[str]] = {}
        self.uses: Counter[str] = Counter()  # right:period -> uses, for quotas
        self.gift_years: set[int] = set()

    # --- the simulation ---

    def at(self, when: datetime, action: Callable[..., None], *args: Any) -> None:
        if when < self.g.end_at:
            self.seq += 1
            heapq.heappush(self.queue, (when, self.seq, action, args))

    def run(self) -> None:
        self.plan()
        while self.queue:
            when, _, action, args = heapq.heappop(self.queue)
            self.vest(when)
            action(when, *args)

    def plan(self) -> None:
        rng = self.rng
        month = self.g.first
        opens = max(self.g.first, self.enrolled)
        while month < self.g.end:
            nxt = add_months(month, 1)
            in_month = _days(month, nxt)
            days = [d for d in in_month if d >= opens]
            if days:
                m = month.month - 1
                for kind, rate in self.persona.rates.items():
                    line = "entertainment" if kind == "ticket" else kind
                    lam = rate * self.activity * SEASON[line][m] * len(days) / len(in_month)
                    for _ in range(_poisson(rng, lam)):
                        day = rng.choice(days)
                        if kind == "retail":
                            self.at(_clock(rng, day, 10, 22), self.purchase)
                        elif kind == "hotel":
                            self.at(_clock(rng, day, 14, 23), self.check_in)
                        else:
                            self.at(_clock(rng, day, 9, 23), self.ticket)
                for _ in range(_poisson(rng, self.persona.redeem_rate * min(self.activity, 2.0))):
                    self.at(_clock(rng, rng.choice(days), 10, 22), self.redeem)
                if self.birth_month == month.month and self.persona.name == "family" \
                        and rng.random() < 0.7:
                    self.at(_clock(rng, rng.choice(days[:10]), 9, 21), self.birthday_claim)
                if self.enrolled.month == month.month and self.enrolled.year < month.year:
                    anniversary = min(days[-1], date(month.year, month.month,
                                                     min(self.enrolled.day, 28)))
                    self.at(datetime(anniversary.year, anniversary.month, anniversary.day,
                                     tzinfo=GROUP_TZ), self.review)
            month = nxt
        if self.persona.name == "home_buyer":
            self.plan_contract(opens)
        elif self.persona.name == "family" and rng.random() < 0.2:
            day = opens + timedelta(days=rng.randrange(max(1, (self.g.end - opens).days)))
            self.at(_clock(rng, day, 10, 18), self.season_pass)

    def plan_contract(self, opens: date) -> None:
        rng = self.rng
        span = (self.g.end - opens).days
        # Sales are signed early enough in the period that most handovers fall inside it.
        weights = [SEASON["property"][(opens + timedelta(days=d)).month - 1]
                   for d in range(0, max(1, span * 2 // 3))]
        day = opens + timedelta(days=rng.choices(range(len(weights)), weights=weights)[0])
        self.at(_clock(rng, day, 10, 18), self.contract)

    # --- estimates ---

    def vest(self, now: datetime) -> None:
        while self.vesting and self.vesting[0][0] <= now:
            self.available += heapq.heappop(self.vesting)[1]

    def earn(self, points: int, now: datetime, hold_days: int = 0) -> None:
        if hold_days:
            heapq.heappush(self.vesting, (now + timedelta(days=hold_days), points))
        else:
            self.available += points

    def credit(self, now: datetime, line: str, spend: Decimal = Decimal(0), nights: int = 0
               ) -> None:
        k = _month_index(now)
        self.spend[k] += spend
        self.nights[k] += nights
        active = self.lines.setdefault(k, set())
        if spend <= 0 and nights <= 0 and line in active:
            return  # nothing that could lift the member
        active.add(line)
        target = self.qualifies(now, UPGRADE)
        if target > self.tier:
            if target >= 2 > self.tier:  # group-welcome-gold comes with the upgrade
                self.at(now + timedelta(days=self.rng.randint(3, 60), hours=2),
                        self.use, self.rng.choice(("retail", "hotel", "entertainment")),
                        "group-welcome-gold", 1)
            if target == 3 and self.rng.random() < 0.5:  # hotel's amenity for diamonds
                self.at(now + timedelta(days=self.rng.randint(10, 150), hours=5), self.use,
                        "hotel", "hotel-welcome-amenity", 1)
            self.tier = target

    def qualifies(self, now: datetime, thresholds: Mapping[int, tuple[int, int, int]]) -> int:
        k = _month_index(now)
        window = range(k - 11, k + 1)
        spend = sum(self.spend[i] for i in window)
        nights = sum(self.nights[i] for i in window)
        lines = len(set().union(*(self.lines.get(i, ()) for i in window)))
        for rank in (3, 2, 1):
            need = thresholds[rank]
            if spend >= need[0] or nights >= need[1] or lines >= need[2]:
                return rank
        return 0

    def review(self, now: datetime) -> None:
        if self.tier and self.qualifies(now, RETAIN) < self.tier:
            self.tier -= 1  # the group's soft landing: one rung per review

    def points(self, line: str, base: int, extra: Decimal = Decimal(0)) -> int:
        return int(base * (1 + extra + TIER_EXTRA[line][self.tier]))

    def new_id(self, kind: str) -> str:
        self.seq += 1
        return f"{self.id}-{kind}{self.seq:04d}"

    def event(self, now: datetime, line: str, etype: str, data: dict[str, Any],
              amount: Decimal | None = None, event_id: str | None = None,
              member: str | None = None) -> str:
        ev: dict[str, Any] = {"id": event_id or self.new_id(etype[0].upper()), "line": line,
                              "type": etype, "member": member or self.id,
                              "occurred_at": now.isoformat()}
        if amount is not None:
            ev["amount"] = str(amount)
            ev["currency"] = "CNY"
        ev["data"] = data
        self.g.emit(now, ev)
        return ev["id"]

    # --- retail ---

    def purchase(self, now: datetime) -> None:
        rng = self.rng
        family = self.persona.name == "family"
        cat = rng.choices(CATEGORIES, weights=[c[2] if family else c[1] for c in CATEGORIES])[0]
        amount = _money(rng, cat[3], cat[4])
        data: dict[str, Any] = {"store": f"S{rng.randrange(1, 121):03d}", "category": cat[0],
                                "channel": rng.choices(("store", "app", "web"), (60, 28, 12))[0]}
        earning = amount
        if rng.random() < 0.015:
            data["giftcard_purchase"] = True  # buying a gift card earns nothing
            earning = Decimal(0)
        elif rng.random() < 0.05 and amount >= 200:
            paid = (amount * Decimal(rng.randint(10, 50)) / 100).quantize(CENT, ROUND_DOWN)
            data["giftcard_paid"] = str(paid)
            earning -= paid
        if rng.random() < 0.12 and earning >= 50 and data["channel"] == "store":
            fee = Decimal(rng.choice((5, 10, 15, 20)))
            data["parking_fee"] = str(fee)
            earning -= fee
        eid = self.event(now, "retail", "purchase", data, amount)
        birthday = self.birth_month == now.month
        extra = (Decimal(1) if cat[0] == "beauty" else Decimal(0)) + (1 if birthday else 0)
        pts = self.points("retail", int(earning), extra)
        self.earn(pts, now, hold_days=7)
        self.credit(now, "retail", earning)
        if rng.random() < 0.06 and earning > 0:
            self.at(now + timedelta(days=rng.randint(1, 25), hours=rng.randint(0, 5)),
                    self.retail_refund, eid, amount, earning, pts)
        if self.tier and data["channel"] == "store" and rng.random() < 0.2:
            self.use(now + timedelta(minutes=5), "retail",
                     f"retail-parking-{(2, 4, 8)[self.tier - 1]}h", rng.choice((1, 1, 2)),
                     quota=(2, 4, 8)[self.tier - 1], per="month")
        if birthday and now.year not in self.gift_years and rng.random() < 0.6:
            self.gift_years.add(now.year)
            self.at(now + timedelta(days=rng.randint(0, 12), hours=1), self.use, "retail",
                    "retail-birthday-gift", 1)

    def retail_refund(self, now: datetime, original: str, amount: Decimal, earning: Decimal,
                      pts: int) -> None:
        rng = self.rng
        refund = amount if rng.random() < 0.55 else _part(rng, amount)
        self.event(now, "retail", "refund", {"related_event": original, "reason": rng.choice(
            ("size", "damaged", "changed mind", ""))}, refund)
        self.available -= int(pts * refund / amount)
        self.credit(now, "retail", -min(refund, earning))

    # --- hotel ---

    def check_in(self, now: datetime) -> None:
        rng = self.rng
        traveller = self.persona.name == "business_traveller"
        nights = rng.choices((1, 2, 3, 4, 5, 6, 7), (30, 28, 18, 10, 7, 4, 3) if traveller
                             else (20, 30, 25, 12, 7, 4, 2))[0]
        if self.tier and rng.random() < 0.3:
            right = f"hotel-upgrade-{TIERS_LADDER[self.tier]}"
            self.use(now, "hotel", right, 1, quota=(2, 6, 12)[self.tier - 1], per="year")
        out = datetime(now.year, now.month, now.day, tzinfo=GROUP_TZ) \
            + timedelta(days=nights, hours=rng.randint(7, 13), minutes=rng.randrange(60))
        self.at(out, self.checkout, nights)

    def checkout(self, now: datetime, nights: int) -> None:
        rng = self.rng
        rate = _money(rng, 380, 1800)
        room = rate * nights
        fnb = (room * Decimal(rng.randint(0, 30)) / 100).quantize(CENT, ROUND_DOWN)
        taxes = ((room + fnb) * Decimal("0.06")).quantize(CENT)
        service = ((room + fnb) * Decimal("0.10")).quantize(CENT) if rng.random() < 0.5 \
            else Decimal(0)
        channel = rng.choices(("corporate", "app", "direct", "web", "call_centre", "ota",
                               "wholesale"), (30, 22, 14, 10, 4, 17, 3))[0]
        amount = room + fnb + taxes + service
        if self.tier and rng.random() < 0.35:
            late = "hotel-late-checkout-14" if self.tier == 1 else "hotel-late-checkout-16"
            self.use(now - timedelta(minutes=30), "hotel", late, 1)
        eid = self.event(now, "hotel", "checkout", {
            "hotel": f"H{rng.randrange(1, 41):02d}", "nights": nights,
            "room_revenue": str(room), "fnb_revenue": str(fnb), "taxes": str(taxes),
            "service_charge": str(service), "booking_channel": channel}, amount)
        if channel in ("ota", "wholesale"):
            return  # third-party rooms earn neither points nor tier credit
        pts = self.points("hotel", int(room + fnb))
        self.earn(pts, now)
        self.credit(now, "hotel", room + fnb, nights)
        if nights >= 2 and rng.random() < 0.04:  # a night taken off the bill afterwards
            self.at(now + timedelta(days=rng.randint(1, 20)), self.hotel_refund, eid, channel,
                    amount, rate, pts)

    def hotel_refund(self, now: datetime, original: str, channel: str, amount: Decimal,
                     rate: Decimal, pts: int) -> None:
        money = min(amount, (rate * Decimal("1.06")).quantize(CENT))
        self.event(now, "hotel", "refund", {
            "related_event": original, "booking_channel": channel,
            "eligible_refunded": str(min(rate, money)), "nights_refunded": 1,
            "reason": "billing correction"}, money)
        self.available -= int(pts * money / amount)
        self.credit(now, "hotel", -min(rate, money), -1)

    # --- entertainment ---

    def ticket(self, now: datetime) -> None:
        rng = self.rng
        family = self.persona.name == "family"
        kind = rng.choices(("cinema", "park", "venue"), (50, 35, 15) if family else (70, 10, 20))[0]
        count = rng.randint(2, 5) if family else rng.randint(1, 2)
        low, high = {"cinema": (35, 90), "park": (150, 360), "venue": (180, 880)}[kind]
        price = _money(rng, low, high)
        fee = Decimal(3 * count) if rng.random() < 0.5 else Decimal(0)
        amount = price * count + fee
        venue = {"cinema": f"CIN-{rng.randrange(1, 13):02d}", "park": f"PARK-{rng.randrange(1, 4)}",
                 "venue": f"VEN-{rng.randrange(1, 7):02d}"}[kind]
        show = now.date() + timedelta(days=rng.choice((0, 0, 1, 2, 3, 5, 7, 10)))
        eid = self.event(now, "entertainment", "ticket", {
            "venue_kind": kind, "venue": venue, "admission_date": show.isoformat(),
            "tickets": count, "booking_fee": str(fee)}, amount)
        pts = self.points("entertainment", int(price * count))
        self.earn(pts, now)
        self.credit(now, "entertainment", price * count)
        if rng.random() < 0.03:
            self.at(now + timedelta(hours=rng.randint(2, 40)), self.ticket_refund, eid,
                    price * count, pts)
        elif kind != "cinema":
            self.at(_clock(rng, show, 9, 15) if show > now.date()
                    else now + timedelta(hours=1), self.entry, kind, venue, "ticket", count)

    def ticket_refund(self, now: datetime, original: str, money: Decimal, pts: int) -> None:
        self.event(now, "entertainment", "refund", {"related_event": original,
                                                    "reason": "plans changed"}, money)
        self.available -= pts

    def entry(self, now: datetime, kind: str, venue: str, admitted_with: str, party: int
              ) -> None:
        self.event(now, "entertainment", "entry", {"venue_kind": kind, "venue": venue,
                                                   "admitted_with": admitted_with})
        self.credit(now, "entertainment")
        if self.tier and self.rng.random() < 0.35:
            quota = (2, 4, 8)[self.tier - 1]
            self.use(now + timedelta(minutes=2), "entertainment",
                     f"entertainment-fast-track-{TIERS_LADDER[self.tier]}", min(party, quota),
                     quota=quota, per="month")

    def season_pass(self, now: datetime) -> None:
        rng = self.rng
        price = Decimal(rng.choice((1280, 1680, 2280)))
        park = f"PARK-{rng.randrange(1, 4)}"
        eid = self.event(now, "entertainment", "pass", {"venue_kind": "park", "venue": park,
                                                        "pass_kind": "annual"}, price)
        if rng.random() < 0.06:  # returned in the cooling-off period
            self.at(now + timedelta(days=rng.randint(2, 12)), self.ticket_refund, eid, price,
                    0)
            return
        self.earn(self.points("entertainment", int(price)), now, hold_days=14)
        self.credit(now, "entertainment", price)
        day = now.date() + timedelta(days=rng.randint(3, 20))
        while day < self.g.end:
            self.at(_clock(rng, day, 9, 15), self.entry, "park", park, "pass", 1)
            day += timedelta(days=rng.randint(15, 45))

    def birthday_claim(self, now: datetime) -> None:
        self.event(now, "entertainment", "birthday_claim", {"channel": "app"})
        self.at(now + timedelta(days=self.rng.randint(1, 14), hours=3), self.use,
                "entertainment", "entertainment-birthday-ticket", 1)

    # --- property ---

    def contract(self, now: datetime) -> None:
        rng = self.rng
        amount = _money(rng, 450_000, 4_500_000)
        project = f"P{rng.randrange(1, 13):02d}"
        data: dict[str, Any] = {"project": project,
                                "unit": f"T{rng.randint(1, 9)}-{rng.randint(2, 33):02d}"
                                        f"{rng.randint(1, 8):02d}"}
        if rng.random() < 0.35:
            # Someone who was already a member when the buyer signed, and not the buyer.
            k = rng.randrange(len(self.g.ids))
            if self.g.ids[k] != self.id and self.g.enrolled[k] < now.date():
                data["referred_by"] = self.g.ids[k]
        eid = self.event(now, "property", "contract", data, amount)
        self.held[eid] = min(int(amount), 200_000)
        self.credit(now, "property", min(amount * Decimal("0.05"), Decimal(80_000)))
        if rng.random() < 0.08:
            self.at(now + timedelta(days=rng.randint(20, 90)), self.cancellation, eid, amount)
        else:
            self.at(_clock(rng, now.date() + timedelta(days=rng.randint(90, 270)), 10, 17),
                    self.handover, eid, project, data.get("referred_by"))

    def handover(self, now: datetime, contract: str, project: str, referrer: str | None
                 ) -> None:
        self.event(now, "property", "handover", {"related_event": contract})
        self.available += self.held.pop(contract, 0)
        if referrer:  # the sales CRM pays the referrer on the referee's handover
            later = now + timedelta(minutes=5)
            self.event(later, "property", "referral_reward", {
                "referee": self.id, "referee_contract": contract, "project": project},
                event_id=f"ref-{contract}", member=referrer)

    def cancellation(self, now: datetime, contract: str, amount: Decimal) -> None:
        self.event(now, "property", "cancellation", {"related_event": contract,
                                                     "reason": "buyer withdrew"}, amount)
        self.held.pop(contract, None)
        self.credit(now, "property", -min(amount * Decimal("0.05"), Decimal(80_000)))

    # --- spending points and using rights ---

    def redeem(self, now: datetime) -> None:
        rng = self.rng
        have = self.available
        if rng.random() < 0.03 and have > 0:
            # A member who remembers a bigger balance than they have: rejected at the till.
            points = (have // POINT_STEP + rng.randint(1, 20)) * POINT_STEP
            have = 0
        elif have >= 1000:
            points = int(have * rng.uniform(0.3, 0.85)) // POINT_STEP * POINT_STEP
        else:
            return
        line = rng.choices(list(self.persona.redeem_at),
                           weights=list(self.persona.redeem_at.values()))[0]
        reference = f"POS-{rng.randrange(10**6):06d}"
        eid = self.new_id("R")
        # Some tills put the points on hold while the basket is paid. Decided by an RNG of
        # the event's own, so the rest of the seed's events stay what they were.
        till = random.Random(eid)
        later = now + timedelta(hours=rng.randint(1, 72))
        voided = points <= have and rng.random() < 0.04 and later < self.g.end_at
        if line in HOLD_LINES and points <= have and till.random() < 0.3:
            self.till_hold(now, line, eid, points, reference, till)
            return
        redemption = self.event(now, line, "redeem", {"points": points, "reference": reference},
                                event_id=eid)
        self.available -= min(points, have)
        if voided:
            # The sale is voided or the booking cancelled: all of it, or half.
            back = points if rng.random() < 0.5 else points // 2
            self.event(later, line, "cancel_redemption",
                       {"related_event": redemption, "points": back,
                        "reason": "sale voided" if line == "retail" else "cancelled"})
            self.available += back

    def till_hold(self, now: datetime, line: str, eid: str, points: int, reference: str,
                  till: random.Random) -> None:
        """A hold at the till, then (mostly) its capture a few minutes later; sometimes the
        customer pays otherwise and the till releases it, sometimes nobody does and it
        lapses by itself."""
        self.event(now, line, "reserve_points", {"points": points, "reference": reference},
                   event_id=eid)
        then = now + timedelta(minutes=till.randint(1, 6), seconds=till.randint(0, 59))
        fate = till.random()
        if fate < 0.85 and then < self.g.end_at:
            self.event(then, line, "capture_reservation",
                       {"related_event": eid, "reference": reference},
                       event_id=f"{eid}-pay")
            self.available -= points
        elif fate < 0.95 and then < self.g.end_at:
            self.event(then, line, "release_reservation",
                       {"related_event": eid, "reason": "paid another way"},
                       event_id=f"{eid}-void")

    def use(self, now: datetime, line: str, right: str, quantity: int, *,
            quota: int | None = None, per: str | None = None) -> None:
        if quota is not None:
            period = f"{right}:{now.year}" + (f"-{now.month}" if per == "month" else "")
            quantity = min(quantity, quota - self.uses[period])
            if quantity < 1:
                return
            self.uses[period] += quantity
        self.event(now, line, "use_right", {"right": right, "quantity": quantity})


# --- small helpers ---------------------------------------------------------------------------


def add_months(d: date, n: int) -> date:
    k = d.year * 12 + d.month - 1 + n
    return date(k // 12, k % 12 + 1, 1)


def _month_index(at: datetime) -> int:
    return at.year * 12 + at.month - 1


def _days(month: date, nxt: date) -> list[date]:
    return [month + timedelta(days=i) for i in range((nxt - month).days)]


def _clock(rng: random.Random, day: date, opens: int, closes: int) -> datetime:
    return datetime(day.year, day.month, day.day, rng.randrange(opens, closes),
                    rng.randrange(60), rng.randrange(60), tzinfo=GROUP_TZ)


def _money(rng: random.Random, low: float, high: float) -> Decimal:
    """Log-uniform between ``low`` and ``high`` CNY, in whole cents (small tickets are
    common, big ones rare)."""
    cents = round(math.exp(rng.uniform(math.log(low * 100), math.log(high * 100))))
    return (Decimal(cents) / 100).quantize(CENT)


def _part(rng: random.Random, amount: Decimal) -> Decimal:
    return max(CENT, (amount * Decimal(rng.randint(10, 90)) / 100).quantize(CENT, ROUND_DOWN))


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
