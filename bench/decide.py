#!/usr/bin/env python3
"""Decide-path benchmark: the sandboxed rulebook against the same rules in plain Python.

    .venv/bin/python bench/decide.py [--events N] [--members N] [--reps 3] [--json]
    .venv/bin/python bench/decide.py --profile      # cProfile of path A -> bench/PROFILE.txt

Rule load: bench/rulesets/ (a group policy with caps for 4 lines, a 4-rung ladder and two
cross-sell bonuses, plus one ruleset per line: 50 rules of every kind - base, multiply with
caps, bonus, credit, grant, reverse - and rights with tiers and quotas), payload models from
the in-process plugins in bench/lines.py (the installed retail plugin is not loaded).

Events: bench/synth.py, seeded; dicts prepared before any timing.

Timed, per event, median of --reps repetitions, each on a fresh engine / fresh state:

  A "sandbox"      engine.schema.parse(dict) -> engine._decide(event, explain=False)
                   (rules + tiers + invariant check) -> engine.state.apply(decision,
                   receipt_of(decision)). This is Engine.process minus its idempotency lookup.
  B "plain Python" the same engine.schema.parse(dict), then the same rules hand-written as
                   Python functions over a simple member-dict state (caps, counters, tier
                   upgrades, refunds, quotas and the group's point caps included), so both
                   sides must end with identical totals; the script fails if they do not.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import inspect
import io
import json
import math
import pstats
import statistics
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lines import LINES, PLUGINS  # noqa: E402
from synth import make_events, make_members  # noqa: E402

from loyaltycore.effects import GrantRight  # noqa: E402
from loyaltycore.engine import Engine, receipt_of  # noqa: E402

try:  # added to the core while this bench was written; absent in older versions
    from loyaltycore.engine import batch_gc  # noqa: E402
except ImportError:  # pragma: no cover
    batch_gc = None

RULESETS = HERE / "rulesets"

# ======================================================================================
# Path B: the rules of bench/rulesets/*.yaml, written by hand.
# ======================================================================================

TZ = ZoneInfo("Asia/Shanghai")
D0 = Decimal(0)
RATE = Decimal(1)  # group base_rate
POINT_VALUE = Decimal("0.01")
X01, X02, X025, X05 = Decimal("0.1"), Decimal("0.2"), Decimal("0.25"), Decimal("0.5")
D10 = Decimal(10)
D100 = Decimal(100)
#            max_multiplier, max_cost_ratio, max_bonus_points
CAPS = {"retail": (Decimal(6), Decimal("0.08"), 600),
        "hotel": (Decimal(4), Decimal("0.05"), 1500),
        "property": (Decimal(2), Decimal("0.02"), 20000),
        "entertainment": (Decimal(4), Decimal("0.06"), 300)}
# tiers above the first, highest first: (id, rank, thresholds); reaching ANY one qualifies
LADDER = [("diamond", 3, {"spend": Decimal(250000), "nights": Decimal(60),
                          "visits": Decimal(100)}),
          ("gold", 2, {"spend": Decimal(80000), "nights": Decimal(30), "visits": Decimal(40)}),
          ("silver", 1, {"spend": Decimal(20000), "nights": Decimal(10), "visits": Decimal(12)})]
UPGRADE_GRANTS = {"silver": 0, "gold": 1, "diamond": 1}  # the group's on_upgrade vouchers
# entitlements used with use_right: (eligible tiers, uses per month)
ENTITLEMENTS = {
    "retail": {"retail-parking-2h": (("silver",), 2), "retail-parking-4h": (("gold",), 4),
               "retail-parking-8h": (("diamond",), 8)},
    "hotel": {"hotel-late-checkout": (("gold", "diamond"), 4)},
    "entertainment": {"ent-fast-pass": (("gold", "diamond"), 2)},
    "property": {},
}


class Member:
    __slots__ = ("tier", "birth", "c", "cred", "lines", "facts")

    def __init__(self, birth: int | None = None):
        self.tier = "member"
        self.birth = birth
        self.c: dict = {}  # cap / quota counters by (rule or right, period)
        self.cred = {"spend": D0, "nights": D0, "visits": D0}
        self.lines: set[str] = set()
        # accepted event id -> [points, amount, refunded, reversed]; is_new == (not facts)
        self.facts: dict[str, list] = {}


class Out:
    """What one event proposes: counter increments, points, credits, grants, reversal."""

    __slots__ = ("inc", "spend", "bonus", "credits", "grants", "rev")

    def __init__(self):
        self.inc: dict = {}
        self.spend = 0  # base + multiply points
        self.bonus = 0
        self.credits: list[tuple[str, Decimal]] = []
        self.grants = 0
        self.rev = None


def cap_points(c: dict, inc: dict, key, limit: int, pts: int) -> int:
    used = c.get(key, 0) + inc.get(key, 0)
    room = limit - used if limit > used else 0
    if pts > room:
        pts = room
    if pts:
        inc[key] = inc.get(key, 0) + pts
    return pts


def fire(c: dict, inc: dict, key, times: int) -> bool:
    if c.get(key, 0) + inc.get(key, 0) >= times:
        return False
    inc[key] = inc.get(key, 0) + 1
    return True


def grant(c: dict, o: Out, key, count: int) -> None:
    if c.get(key, 0) + o.inc.get(key, 0) < count:
        o.inc[key] = o.inc.get(key, 0) + 1
        o.grants += 1


def cross_sell(m: Member, o: Out, line: str, amount: Decimal, local, ym) -> None:
    if amount >= 200:
        n = len(m.lines)
        if line not in m.lines and n >= 1 and fire(m.c, o.inc, "group-new-line-bonus", 1):
            o.bonus += 100
        if n >= 3 and local.weekday() >= 5 and fire(m.c, o.inc, ("group-weekend-explorer", ym), 2):
            o.bonus += 50


def retail_purchase(ev, d, m: Member, local, is_new: bool) -> Out | None:
    o = Out()
    c, inc = m.c, o.inc
    amount = ev.amount
    ym = (local.year, local.month)
    wd = local.weekday()
    base = 0
    if not d.giftcard_purchase:
        spend = amount - d.giftcard_paid - d.parking_fee
        if spend < 0:
            return None
        base = int(spend * RATE)
        o.spend = base
    if base:
        if d.category == "beauty":
            o.spend += cap_points(c, inc, ("retail-beauty-x2", ym), 3000, base)
        if d.category == "electronics" and d.channel == "app":
            o.spend += cap_points(c, inc, ("retail-electronics-app", ym), 2000, int(base * X05))
        if wd == 2 and d.channel == "app":
            o.spend += cap_points(c, inc, ("retail-member-day", ym), 2000, base)
        if m.birth == local.month:
            o.spend += cap_points(c, inc, ("retail-birthday-x2", ym), 5000, base)
        tier = m.tier
        if tier == "silver":
            o.spend += int(base * X01)
        elif tier == "gold":
            o.spend += int(base * X025)
        elif tier == "diamond":
            o.spend += int(base * X05)
    if is_new and amount >= 100 and fire(c, inc, "retail-first-purchase", 1):
        o.bonus += 200
    if amount >= 2000 and d.category in ("fashion", "home"):
        iso = local.isocalendar()
        if fire(c, inc, ("retail-big-basket", iso.year, iso.week), 1):
            o.bonus += 100
    if d.channel == "web" and wd >= 5:
        o.bonus += min(math.floor(amount / D100), 50)
    cross_sell(m, o, "retail", amount, local, ym)
    if not d.giftcard_purchase:
        value = amount - d.giftcard_paid - d.parking_fee
        if value:
            o.credits.append(("spend", value))
    if m.birth == local.month:
        grant(c, o, ("retail-birthday-gift", local.year), 1)
    return o


def retail_refund(ev, d, m: Member, local, is_new: bool) -> Out | None:
    f = m.facts.get(d.related_event)
    if f is None:
        return None  # refund-bounds: never had that event
    refunded = ev.amount
    amount = f[1] or D0
    total = f[2] + refunded
    if refunded <= 0 or total > amount:
        return None  # refund-bounds
    due = int(Decimal(f[0]) * total / amount) if amount else f[0]
    o = Out()
    o.rev = (f, max(0, min(f[0], due) - f[3]), refunded)
    return o


def hotel_stay(ev, d, m: Member, local, is_new: bool) -> Out | None:
    o = Out()
    c, inc = m.c, o.inc
    amount = ev.amount
    ym = (local.year, local.month)
    ota = d.rate_code == "OTA"
    base = 0 if ota else int(amount * RATE)
    o.spend = base
    if base:
        if d.room_type == "suite" and local.weekday() >= 4:
            o.spend += int(base * X05)
        if d.nights >= 5:
            o.spend += cap_points(c, inc, ("hotel-long-stay", ym), 5000, int(base * X025))
        if d.channel in ("app", "web"):
            o.spend += int(base * X02)
        tier = m.tier
        if tier == "silver":
            o.spend += int(base * X025)
        elif tier == "gold":
            o.spend += int(base * X05)
        elif tier == "diamond":
            o.spend += base
    if not ota:
        o.bonus += min(d.nights * 100, 1000)  # per-event cap 1000 is the same bound
    cross_sell(m, o, "hotel", amount, local, ym)
    o.credits.append(("nights", Decimal(d.nights)))
    if amount:
        o.credits.append(("spend", amount))
    if d.nights >= 3:
        grant(c, o, ("hotel-welcome-drink", ym), 2)
    return o


def hotel_dining(ev, d, m: Member, local, is_new: bool) -> Out | None:
    o = Out()
    c, inc = m.c, o.inc
    amount = ev.amount
    base = int(amount * RATE)
    o.spend = base
    if base:
        tier = m.tier
        if tier == "silver":
            o.spend += int(base * X025)
        elif tier == "gold":
            o.spend += int(base * X05)
        elif tier == "diamond":
            o.spend += base
    if d.covers >= 4 and fire(c, inc, ("hotel-big-table", local.date()), 1):
        o.bonus += 80
    cross_sell(m, o, "hotel", amount, local, (local.year, local.month))
    if amount:
        o.credits.append(("spend", amount))
    return o


def property_contract(ev, d, m: Member, local, is_new: bool) -> Out | None:
    o = Out()
    c, inc = m.c, o.inc
    amount = ev.amount
    base = int(amount / D10 * RATE)
    o.spend = base
    if base and m.tier == "diamond":
        o.spend += cap_points(c, inc, ("property-tier-diamond", local.year), 50000,
                              int(base * X05))
    if d.referral and fire(c, inc, ("property-referral", local.year), 2):
        o.bonus += 5000
    if d.first_home and amount >= 500000 and fire(c, inc, "property-first-home", 1):
        o.bonus += 10000
    value = min(amount, 200000)
    if value:
        o.credits.append(("spend", Decimal(value)))
    grant(c, o, ("property-concierge", local.year), 1)
    return o


def property_service_fee(ev, d, m: Member, local, is_new: bool) -> Out | None:
    o = Out()
    c, inc = m.c, o.inc
    amount = ev.amount
    base = int(amount * RATE)
    o.spend = base
    if base:
        if d.autopay:
            o.spend += cap_points(c, inc, ("property-autopay", local.year, local.month), 500,
                                  int(base * X02))
        if m.tier == "diamond":
            o.spend += cap_points(c, inc, ("property-tier-diamond", local.year), 50000,
                                  int(base * X05))
    if d.months >= 12 and fire(c, inc, ("property-annual-prepay", local.year), 1):
        o.bonus += 300
    value = min(amount, 200000)
    if value:
        o.credits.append(("spend", Decimal(value)))
    return o


def ent_ticket(ev, d, m: Member, local, is_new: bool) -> Out | None:
    o = Out()
    c, inc = m.c, o.inc
    amount = ev.amount
    ym = (local.year, local.month)
    base = int(amount * RATE)
    o.spend = base
    if base:
        if d.kind == "concert":
            o.spend += cap_points(c, inc, ("ent-concert-x2", ym), 1500, base)
        if d.kind == "cinema" and local.weekday() <= 3:
            o.spend += int(base * X05)
        if d.channel == "app":
            o.spend += int(base * X02)
        tier = m.tier
        if tier == "gold":
            o.spend += int(base * X025)
        elif tier == "diamond":
            o.spend += int(base * X05)
    if d.tickets >= 4 and amount >= 200:
        iso = local.isocalendar()
        if fire(c, inc, ("ent-group-booking", iso.year, iso.week), 2):
            o.bonus += 50
    birthday = m.birth == local.month
    if birthday and amount >= 100 and fire(c, inc, ("ent-birthday-treat", local.year), 1):
        o.bonus += 100
    cross_sell(m, o, "entertainment", amount, local, ym)
    o.credits.append(("visits", Decimal(1)))
    if amount:
        o.credits.append(("spend", amount))
    if birthday:
        grant(c, o, ("ent-popcorn", local.year), 1)
    return o


def ent_fnb(ev, d, m: Member, local, is_new: bool) -> Out | None:
    o = Out()
    amount = ev.amount
    base = int(amount * RATE)
    o.spend = base
    if base:
        if m.tier == "gold":
            o.spend += int(base * X025)
        elif m.tier == "diamond":
            o.spend += int(base * X05)
    if amount:
        o.credits.append(("spend", amount))
    return o


def use_right(ev, d, m: Member, local, is_new: bool) -> Out | None:
    spec = ENTITLEMENTS[ev.line].get(d.right)
    if spec is None:
        return None  # rights: does not exist for this line
    tiers, per_month = spec
    if m.tier not in tiers:
        return None  # rights: not eligible
    key = ("use", d.right, local.year, local.month)
    if d.quantity > per_month - m.c.get(key, 0):
        return None  # rights: quota used up
    o = Out()
    o.inc[key] = d.quantity
    return o


HANDLERS = {
    ("retail", "purchase"): retail_purchase, ("retail", "refund"): retail_refund,
    ("hotel", "stay"): hotel_stay, ("hotel", "dining"): hotel_dining,
    ("property", "contract"): property_contract,
    ("property", "service_fee"): property_service_fee,
    ("entertainment", "ticket"): ent_ticket, ("entertainment", "fnb"): ent_fnb,
    **{(line, "use_right"): use_right for line in LINES},
}


class PlainProgram:
    """The same program as bench/rulesets, as plain Python over a dict of members."""

    def __init__(self, profiles: list[dict]):
        self.members = {p["id"]: Member(p["birth_month"]) for p in profiles}
        self.earned = self.reversed = self.accepted = self.rejected = self.grants = 0

    def process(self, ev) -> None:
        m, o = self.decide(ev)
        self.apply(ev, m, o)

    def decide(self, ev) -> tuple[Member, Out | None]:
        """The rules and the group's caps: what the event earns (None: rejected)."""
        local = ev.occurred_at.astimezone(TZ)
        m = self.members.get(ev.member)
        if m is None:
            m = self.members[ev.member] = Member()
        is_new = not m.facts  # the core: "new until the member has an accepted event"
        line = ev.line
        o = HANDLERS[(line, ev.type)](ev, ev.data, m, local, is_new)
        if o is None:
            return m, None
        points = o.spend + o.bonus
        if points:  # the group's caps for the line (invariants)
            max_mult, max_cost, max_bonus = CAPS[line]
            amount = ev.amount or D0
            if (o.spend > int(amount * RATE * max_mult) or o.bonus > max_bonus
                    or (amount > 0 and points * POINT_VALUE > max_cost * amount)):
                return m, None
        return m, o

    def apply(self, ev, m: Member, o: Out | None) -> None:
        """The member's state after the event: counters, credits, tier."""
        if o is None:
            self.rejected += 1
            return
        points = o.spend + o.bonus
        line = ev.line
        self.accepted += 1
        c = m.c
        for k, v in o.inc.items():
            c[k] = c.get(k, 0) + v
        self.earned += points
        m.facts[ev.id] = [points, ev.amount, D0, 0]
        if o.rev is not None:
            f, pts, refunded = o.rev
            f[3] += pts
            f[2] += refunded
            self.reversed += pts
        self.grants += o.grants
        if o.credits:
            cred = m.cred
            for k, v in o.credits:
                cred[k] += v
            m.lines.add(line)
            here = {"member": 0, "silver": 1, "gold": 2, "diamond": 3}[m.tier]
            for tier, rank, need in LADDER:
                if rank <= here:
                    break
                if any(cred[k] >= v for k, v in need.items()):
                    m.tier = tier
                    self.grants += UPGRADE_GRANTS[tier]
                    break

    def totals(self) -> dict:
        return {"earned": self.earned, "reversed": self.reversed,
                "net": self.earned - self.reversed, "accepted": self.accepted,
                "rejected": self.rejected, "grants": self.grants,
                "tiers": dict(sorted(Counter(m.tier for m in self.members.values()).items()))}


# ======================================================================================
# Path A: the engine.
# ======================================================================================


def open_engine(profiles: list[dict]) -> Engine:
    engine = Engine.open([RULESETS], plugins=PLUGINS, load_entrypoints=False)
    for p in profiles:
        engine.enrol(p)
    return engine


# Engine.process = idempotency lookup + (state.advance: vest holds, expire vouchers) +
# _decide + receipt_of + state.apply. The core has moved ``advance`` between _decide and
# process; path A calls it itself only when _decide does not, so the per-event work timed
# is always the whole pipeline minus the idempotency lookup.
ADVANCE_IN_DECIDE = "advance(" in inspect.getsource(Engine._decide)
A_STEPS = ("parse -> " + ("" if ADVANCE_IN_DECIDE else "state.advance -> ")
           + "_decide (rules, tiers, invariant check) -> receipt_of -> state.apply")


def run_a(engine: Engine, raws: list[dict]) -> None:
    parse, decide, state = engine.schema.parse, engine._decide, engine.state
    apply = state.apply
    if ADVANCE_IN_DECIDE:
        for raw in raws:
            ev = parse(raw)
            decision = decide(ev, False)
            apply(decision, receipt_of(decision))
    else:
        advance = state.advance
        for raw in raws:
            ev = parse(raw)
            advance(ev.member, ev.occurred_at)
            decision = decide(ev, False)
            apply(decision, receipt_of(decision))


def run_a_batch_gc(engine: Engine, raws: list[dict]) -> None:
    """Path A inside the core's batch_gc() (what process_many / dry-run use), if it has one."""
    with batch_gc():
        run_a(engine, raws)


def run_a_split(engine: Engine, raws: list[dict]) -> tuple[float, float]:
    """Path A with the decide path (parse -> _decide: context, rules, tiers, invariant
    check) timed apart from what follows it (advance, receipt_of, apply): seconds of each."""
    parse, decide, state = engine.schema.parse, engine._decide, engine.state
    apply, advance = state.apply, state.advance
    clock = time.perf_counter
    deciding = applying = 0.0
    for raw in raws:
        t0 = clock()
        ev = parse(raw)
        t1 = clock()
        if not ADVANCE_IN_DECIDE:
            advance(ev.member, ev.occurred_at)
        t2 = clock()
        decision = decide(ev, False)
        t3 = clock()
        apply(decision, receipt_of(decision))
        t4 = clock()
        deciding += (t1 - t0) + (t3 - t2)
        applying += (t2 - t1) + (t4 - t3)
    return deciding, applying


def run_b_split(program: PlainProgram, parse, raws: list[dict]) -> tuple[float, float]:
    """Path B the same way: parse + rules + caps, apart from its state update."""
    decide, apply = program.decide, program.apply
    clock = time.perf_counter
    deciding = applying = 0.0
    for raw in raws:
        t0 = clock()
        ev = parse(raw)
        m, o = decide(ev)
        t1 = clock()
        apply(ev, m, o)
        applying += clock() - t1
        deciding += t1 - t0
    return deciding, applying


def run_b(program: PlainProgram, parse, raws: list[dict]) -> None:
    process = program.process
    for raw in raws:
        process(parse(raw))


def run_parse(parse, raws: list[dict]) -> None:
    for raw in raws:
        parse(raw)


def totals_a(engine: Engine) -> tuple[dict, Counter]:
    earned = reversed_ = net = accepted = rejected = grants = 0
    reasons: Counter[str] = Counter()
    tiers: Counter[str] = Counter()
    state = engine.state
    for m in state.members.values():
        tiers[m.tier] += 1
        net += m.available + m.pending
        for f in m.facts.values():
            earned += f.points
            reversed_ += f.reversed
        for event_id, seen in m.seen.items():
            receipt = state.receipt_of_seen(m, event_id, seen)
            if receipt.accepted:
                accepted += 1
                grants += sum(1 for e in receipt.effects if isinstance(e, GrantRight))
            else:
                rejected += 1
                reasons.update(v.invariant for v in receipt.violations)
    assert net == earned - reversed_, (net, earned, reversed_)
    return ({"earned": earned, "reversed": reversed_, "net": net, "accepted": accepted,
             "rejected": rejected, "grants": grants, "tiers": dict(sorted(tiers.items()))},
            reasons)


def count_rules(engine: Engine) -> int:
    line_rules = {rule.id for _, rule in engine.rulebook.all_rules()}
    cross = {r.id for g in engine.rulebook.groups for r in g.policy.cross_sell}
    return len(line_rules | cross)


class GcClock:
    """Wall time spent in the cyclic garbage collector while a run is timed."""

    def __init__(self):
        self.total = 0.0
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._t0


def timed(fn, *args) -> tuple[float, float]:
    """(seconds, of which in the garbage collector)."""
    gc.collect()
    clock = GcClock()
    gc.callbacks.append(clock)
    try:
        t0 = time.perf_counter()
        fn(*args)
        return time.perf_counter() - t0, clock.total
    finally:
        gc.callbacks.remove(clock)


def profile_a(profiles: list[dict], raws: list[dict], out: Path) -> None:
    """Two cProfile runs of path A: default GC (collector pauses land in whatever function
    allocated), then GC disabled (the per-function cost of the pipeline itself)."""
    buf = io.StringIO()
    buf.write(f"cProfile of path A ({A_STEPS}), {len(raws):,} events, bench/rulesets, "
              f"python {sys.version.split()[0]}\n"
              "Generated by: .venv/bin/python bench/decide.py --profile [--events N]\n\n")
    for label, collect in (("default GC", True), ("GC disabled", False)):
        engine = open_engine(profiles)
        gc.collect()
        clock = GcClock()
        gc.callbacks.append(clock)
        if not collect:
            gc.disable()
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        run_a(engine, raws)
        prof.disable()
        wall = time.perf_counter() - t0
        gc.enable()
        gc.callbacks.remove(clock)
        buf.write(f"######## {label}: {wall:.2f} s under the profiler, "
                  f"{clock.total:.2f} s in the garbage collector ########\n")
        for key in ("cumulative", "tottime"):
            buf.write(f"===== {label}: top 25 by {key} =====\n")
            pstats.Stats(prof, stream=buf).sort_stats(key).print_stats(25)
        del engine
    text = buf.getvalue().replace(str(HERE.parent) + "/", "")
    out.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=40_000)
    ap.add_argument("--members", type=int, default=5_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=20260101)
    ap.add_argument("--json", action="store_true", help="print one JSON object only")
    ap.add_argument("--no-batch-gc", action="store_true",
                    help="skip the extra path-A run inside engine.batch_gc()")
    ap.add_argument("--profile", action="store_true",
                    help="profile path A with cProfile into bench/PROFILE.txt and exit")
    args = ap.parse_args(argv)

    profiles = make_members(args.members)
    raws = make_events(args.events, members=args.members, seed=args.seed)
    log = (lambda *a: None) if args.json else print

    if args.profile:
        profile_a(profiles, raws, HERE / "PROFILE.txt")
        print(f"wrote {HERE / 'PROFILE.txt'}")
        return 0

    rules = count_rules(open_engine([]))
    mix = Counter(r["line"] + ":" + r["type"] for r in raws)
    log(f"python {sys.version.split()[0]}; {len(raws):,} events, {args.members:,} members, "
        f"{rules} rules over {len(LINES)} lines ({', '.join(LINES)})")
    log(f"mix: {dict(mix.most_common())}")

    runs: dict[str, list[tuple[float, float]]] = {"A": [], "B": [], "P": [], "Agc": [],
                                                  "Ad": [], "Bd": []}
    a_totals = b_totals = None
    same = True
    for rep in range(args.reps):
        engine = open_engine(profiles)          # setup, untimed
        program = PlainProgram(profiles)
        parse = engine.schema.parse
        order = ["A", "B", "P"] if rep % 2 == 0 else ["P", "B", "A"]
        for which in order:
            if which == "A":
                runs["A"].append(timed(run_a, engine, raws))
            elif which == "B":
                runs["B"].append(timed(run_b, program, parse, raws))
            else:
                runs["P"].append(timed(run_parse, parse, raws))
        # Correctness (untimed): after each repetition both states must give the same totals.
        got_a, reasons = totals_a(engine)
        got_b = program.totals()
        if a_totals is None:
            a_totals, b_totals = got_a, got_b
            log(f"A totals: {a_totals}")
            log(f"B totals: {b_totals}")
            log(f"A rejections by invariant: {dict(reasons)}")
        same = same and got_a == got_b == a_totals
        del engine, program
        # The decide path as the issue defines it (validate -> decide -> check), timed
        # apart from applying, for both: fresh states, same stream, same totals.
        engine, program = open_engine(profiles), PlainProgram(profiles)
        gc.collect()
        runs["Ad"].append(run_a_split(engine, raws))
        gc.collect()
        runs["Bd"].append(run_b_split(program, engine.schema.parse, raws))
        same = same and totals_a(engine)[0] == program.totals() == a_totals
        del engine, program
        if batch_gc is not None and not args.no_batch_gc:
            engine = open_engine(profiles)
            runs["Agc"].append(timed(run_a_batch_gc, engine, raws))
            same = same and totals_a(engine)[0] == a_totals
            del engine
        log(f"  rep {rep + 1}: A {len(raws) / runs['A'][-1][0]:>8,.0f} ev/s "
            f"(gc {runs['A'][-1][1] / runs['A'][-1][0]:.0%})"
            + (f"   A in batch_gc {len(raws) / runs['Agc'][-1][0]:>8,.0f} ev/s"
               if runs["Agc"] else "")
            + f"   B {len(raws) / runs['B'][-1][0]:>8,.0f} ev/s   parse only "
            f"{len(raws) / runs['P'][-1][0]:>8,.0f} ev/s   totals identical: "
            f"{'yes' if got_a == got_b else 'NO'}")

    def rate(key: str) -> float:
        return len(raws) / statistics.median(t for t, _ in runs[key])

    a_rate, b_rate, p_rate = rate("A"), rate("B"), rate("P")
    ad_rate, bd_rate = rate("Ad"), rate("Bd")  # (deciding, applying): rate of the first
    a_gc = statistics.median(g / t for t, g in runs["A"])
    result = {
        "events_per_s": round(a_rate),
        "python_events_per_s": round(b_rate),
        "ratio": round(a_rate / b_rate, 4),
        "slowdown": round(b_rate / a_rate, 3),
        "events_per_s_batch_gc": round(rate("Agc")) if runs["Agc"] else None,
        "decide_path": {
            "timed": "parse -> _decide (context, rules, tiers, invariant check); apply, "
                     "advance and receipt_of timed apart; B: parse -> rules + caps, its "
                     "state update apart",
            "events_per_s": round(ad_rate), "python_events_per_s": round(bd_rate),
            "ratio": round(ad_rate / bd_rate, 4), "slowdown": round(bd_rate / ad_rate, 3),
            "apply_us_per_event": round(statistics.median(a for _, a in runs["Ad"])
                                        / len(raws) * 1e6, 1),
            "python_apply_us_per_event": round(statistics.median(a for _, a in runs["Bd"])
                                               / len(raws) * 1e6, 1)},
        "gc_share_a": round(a_gc, 3),
        "parse_events_per_s": round(p_rate),
        "rules": rules,
        "lines": len(LINES),
        "line_names": LINES,
        "events": len(raws),
        "members": args.members,
        "reps": args.reps,
        "timed_a": A_STEPS + " (per-event loop, default GC)",
        "timed_b": "parse -> hand-written rules + caps + tiers over a member dict",
        "totals_identical": same,
        "total_points": a_totals["net"],
        "totals": a_totals,
        "python": sys.version.split()[0],
        "targets": {"events_per_s>=100000": a_rate >= 100_000,
                    "within_2.5x_of_python": b_rate / a_rate <= 2.5},
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"\nA timed: {A_STEPS}")
        print(f"A sandbox engine, per-event loop:  {a_rate:>10,.0f} events/s "
              f"({1e6 / a_rate:.1f} us/event; {a_gc:.0%} of it in the garbage collector)")
        if runs["Agc"]:
            print(f"A inside engine.batch_gc():        {rate('Agc'):>10,.0f} events/s "
                  f"({1e6 / rate('Agc'):.1f} us/event)")
        print(f"A decide path only (parse, _decide): {ad_rate:>8,.0f} events/s "
              f"({1e6 / ad_rate:.1f} us/event; then apply etc. "
              f"{result['decide_path']['apply_us_per_event']} us)")
        print(f"B decide path only (parse, rules):   {bd_rate:>8,.0f} events/s "
              f"({1e6 / bd_rate:.1f} us/event; then its state update "
              f"{result['decide_path']['python_apply_us_per_event']} us)   "
              f"ratio {ad_rate / bd_rate:.3f} ({bd_rate / ad_rate:.2f}x slower)")
        print(f"B plain Python (same parse):       {b_rate:>10,.0f} events/s "
              f"({1e6 / b_rate:.1f} us/event)")
        print(f"parse only (pydantic, in A and B): {p_rate:>10,.0f} events/s "
              f"({1e6 / p_rate:.1f} us/event)")
        print(f"ratio A/B = {a_rate / b_rate:.3f}  (A is {b_rate / a_rate:.2f}x slower than B; "
              f"medians of {args.reps})")
        print(f"total points A = B = {a_totals['net']:,}" if same else
              f"MISMATCH: A {a_totals} != B {b_totals}")
        print(f"targets: A >= 100,000 ev/s: {'met' if a_rate >= 100_000 else 'NOT met'}; "
              f"A within 2.5x of B: {'met' if b_rate / a_rate <= 2.5 else 'NOT met'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
