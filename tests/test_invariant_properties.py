"""Property tests: the invariants against hand-written predicates, and the engine on
random event streams (caps hold, balances add up, runs are deterministic, a dry-run is the
same as processing).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from loyaltycore import dryrun
from loyaltycore.effects import (
    EarnPoints,
    GrantRight,
    HoldPoints,
    ReversePoints,
    TierChange,
    UseRight,
)
from loyaltycore.invariants import check
from loyaltycore.members import MemberSnapshot, Qualification
from loyaltycore.tiers import meets
from plugins import support

REAL = support.open_real()
TEST = support.open_test()
POLICY = REAL.rulebook.groups[0].policy
RETAIL_CAPS = POLICY.lines["retail"]
TZ = ZoneInfo(POLICY.timezone)
TIERS = [t.id for t in POLICY.tiers]

money = st.decimals(min_value=Decimal("0"), max_value=Decimal("5000"), places=2,
                    allow_nan=False, allow_infinity=False)


def floor_int(value: Decimal) -> int:
    return int(value)  # value >= 0


# --- check() against the predicate -------------------------------------------------------------

point_effect = st.builds(
    lambda cls, line, basis, points, rule: cls(line=line, rule=rule, points=points, basis=basis),
    st.sampled_from([EarnPoints, HoldPoints]),
    st.sampled_from(["retail", "retail", "retail", "hotel"]),
    st.sampled_from(["base", "multiply", "bonus"]),
    st.integers(min_value=0, max_value=3000),
    st.sampled_from(["r1", "r2", None]),
)


@given(effects=st.lists(point_effect, max_size=6), amount=money)
def test_point_caps_flagged_exactly_when_broken(effects, amount):
    d = support.make_decision(REAL, effects, raw=support.Events().purchase(str(amount)))
    got = {v.invariant for v in check(d)}
    own = [e for e in effects if e.line == "retail"]
    spend = sum(e.points for e in own if e.basis != "bonus")
    bonus = sum(e.points for e in own if e.basis == "bonus")
    expected = set()
    if any(e.line != "retail" for e in effects):
        expected.add("line-isolation")
    if spend or bonus:
        if spend > floor_int(amount * POLICY.base_rate * RETAIL_CAPS.max_multiplier):
            expected.add("multiplier-cap")
        if bonus > RETAIL_CAPS.max_bonus_points:
            expected.add("bonus-cap")
        if amount > 0 and (spend + bonus) * POLICY.point_value > \
                RETAIL_CAPS.max_cost_ratio * amount:
            expected.add("cost-ceiling")
    assert got == expected


@given(frm=st.sampled_from(TIERS), to=st.sampled_from([*TIERS, "platinum"]),
       member_tier=st.sampled_from(TIERS),
       reason=st.sampled_from(["upgrade", "upgrade", "review", "manual"]),
       spend=st.integers(min_value=0, max_value=250_000), nights=st.integers(0, 80),
       lines=st.sets(st.sampled_from(["retail", "hotel", "property", "entertainment"])))
def test_tier_moves_flagged_exactly_when_off_the_ladder(frm, to, member_tier, reason, spend,
                                                        nights, lines):
    q = Qualification(credits={"spend": Decimal(spend), "nights": Decimal(nights)},
                      lines_active=frozenset(lines))
    change = TierChange(line="group", rule=f"tier:{to}", source="tiers", from_tier=frm,
                        to_tier=to, reason=reason)
    d = support.make_decision(REAL, [change], member=MemberSnapshot(id="M1", tier=member_tier),
                              qualification_after=q)
    rank = {t: i for i, t in enumerate(TIERS)}
    ok = (frm == member_tier and to in rank and reason == "upgrade" and rank[to] > rank[frm]
          and meets(POLICY.tiers[rank[to]].upgrade, q) is not None)
    assert ({v.invariant for v in check(d)} == set()) == ok


@given(tier=st.sampled_from(TIERS),
       uses=st.lists(st.tuples(st.sampled_from(["retail-parking-2h", "retail-vip-lane",
                                                "retail-discount-10", "retail-birthday-gift"]),
                               st.integers(1, 3)), min_size=1, max_size=3),
       used_before=st.integers(0, 3), vouchers=st.integers(0, 2))
def test_right_uses_flagged_exactly_when_not_allowed(tier, uses, used_before, vouchers):
    member = MemberSnapshot(id="M1", tier=tier,
                            counters={"use:retail-parking-2h:m2026-03": used_before},
                            vouchers={"retail-birthday-gift": vouchers})
    effects = [UseRight(line="retail", source="core", right=r, quantity=q) for r, q in uses]
    d = support.make_decision(REAL, effects, member=member)
    got = [v for v in check(d) if v.invariant == "rights"]
    tiers = {"retail-parking-2h": {"silver"}, "retail-vip-lane": {"gold", "diamond"},
             "retail-discount-10": {"silver"}, "retail-birthday-gift": None}
    expected = 0
    total: dict[str, int] = defaultdict(int)
    for right, qty in uses:
        if tiers[right] is not None and tier not in tiers[right]:
            expected += 1
            continue
        total[right] += qty
        if right == "retail-birthday-gift":
            if total[right] > vouchers or total[right] > 1:  # 1 use a year (its quota)
                expected += 1
        elif right == "retail-parking-2h" and total[right] > 2 - used_before:
            expected += 1
    assert len(got) == expected, (got, uses)


# --- random streams through the engine ---------------------------------------------------------

START = datetime(2026, 1, 1, tzinfo=TZ)
MEMBERS = ["A", "B", "C"]
RIGHTS = ["retail-parking-2h", "retail-vip-lane", "retail-birthday-gift", "group-welcome-gold",
          "arcade-free-game"]


@st.composite
def streams(draw, max_size=30):
    n = draw(st.integers(min_value=1, max_value=max_size))
    events: list[dict] = []
    for i in range(n):
        member = draw(st.sampled_from(MEMBERS))
        at = START + timedelta(days=draw(st.integers(0, 150)), hours=draw(st.integers(0, 23)))
        kind = draw(st.sampled_from(["purchase"] * 4 + ["refund", "use", "play", "play"]))
        f = support.Events(member=member)
        eid = f"x{i}"
        if kind == "purchase":
            amount = draw(st.decimals(min_value=Decimal("0"), max_value=Decimal("30000"),
                                      places=2))
            extra = {}
            if draw(st.booleans()):
                extra["giftcard_paid"] = str((amount * draw(st.sampled_from(
                    [Decimal("0.1"), Decimal("0.5")]))).quantize(Decimal("0.01")))
            raw = f.purchase(amount, id=eid, at=at, category=draw(st.sampled_from(
                ["fashion", "beauty"])), channel=draw(st.sampled_from(["store", "app"])),
                giftcard_purchase=draw(st.booleans()) and draw(st.booleans()), **extra)
        elif kind == "refund":
            same = [e for e in events if e["member"] == member]
            original = draw(st.sampled_from([e["id"] for e in same])) if same and \
                draw(st.booleans()) else "unknown"
            raw = f.refund(original, draw(money.filter(lambda a: a > 0)), id=eid, at=at)
        elif kind == "use":
            line = draw(st.sampled_from(["retail", "arcade"]))
            raw = f.use(draw(st.sampled_from(RIGHTS)), draw(st.integers(1, 2)), line=line,
                        id=eid, at=at)
        else:
            raw = f.play(draw(st.decimals(min_value=Decimal("1"), max_value=Decimal("800"),
                                          places=2)), draw(st.integers(0, 80)), id=eid, at=at)
        events.append(raw)
        if events and draw(st.integers(0, 9)) == 0:  # the POS sends something again
            events.append(dict(draw(st.sampled_from(events))))
    return events


def effect_sums(receipt):
    spend = bonus = 0
    for e in receipt.effects:
        if isinstance(e, EarnPoints | HoldPoints) and e.line == receipt.line:
            if e.basis == "bonus":
                bonus += e.points
            else:
                spend += e.points
    return spend, bonus


MONTHLY_CAPS = {"retail-beauty-x2": 3000, "retail-member-day": 2000,
                "retail-birthday-x2": 5000, "arcade-big-play": 500}


@given(stream=streams())
def test_stream_receipts_respect_caps_and_balances_add_up(stream):
    engine = TEST.fork()
    receipts = [engine.process(raw) for raw in stream]
    caps = TEST.rulebook.groups[0].policy.lines
    earned: dict[str, int] = defaultdict(int)
    monthly: dict[tuple, int] = defaultdict(int)
    first_purchase: dict[str, int] = defaultdict(int)
    reversed_of: dict[tuple[str, str], int] = defaultdict(int)
    points_of: dict[tuple[str, str], int] = {}
    seen = set()
    for r in receipts:
        if (r.member, r.event_id) in seen or not r.accepted:
            seen.add((r.member, r.event_id))
            continue
        seen.add((r.member, r.event_id))
        cap = caps[r.line]
        amount = r.amount or Decimal(0)
        spend, bonus = effect_sums(r)
        assert spend <= floor_int(amount * POLICY.base_rate * cap.max_multiplier)
        assert bonus <= cap.max_bonus_points
        if amount:
            assert (spend + bonus) * POLICY.point_value <= cap.max_cost_ratio * amount
        points_of[(r.member, r.event_id)] = spend + bonus
        for e in r.effects:
            assert e.line == ("group" if isinstance(e, TierChange) else r.line)
            if isinstance(e, EarnPoints | HoldPoints):
                earned[r.member] += e.points
                month = r.occurred_at.astimezone(TZ).strftime("%Y-%m")
                if e.rule in MONTHLY_CAPS:
                    monthly[(r.member, e.rule, month)] += e.points
                    assert monthly[(r.member, e.rule, month)] <= MONTHLY_CAPS[e.rule]
                if e.rule == "retail-first-purchase":
                    first_purchase[r.member] += 1
                    assert first_purchase[r.member] == 1 and e.points == 200
            elif isinstance(e, ReversePoints):
                earned[r.member] -= e.points
                key = (r.member, e.reverses)
                reversed_of[key] += e.points
                assert reversed_of[key] <= points_of[key]
            elif isinstance(e, GrantRight | UseRight):
                assert isinstance(e.right, str)
    for member, m in engine.state.members.items():
        assert m.available + m.pending == earned[member]
        assert m.available >= 0 and m.pending >= 0
        for facts in m.facts.values():
            assert facts.reversed <= facts.points
            if facts.amount is not None:
                assert facts.refunded <= facts.amount


@given(stream=streams(max_size=20))
def test_same_stream_on_two_fresh_engines_gives_identical_receipts(stream):
    a, b = support.open_test(), support.open_test()
    ra = [a.process(raw).model_dump() for raw in stream]
    rb = [b.process(raw).model_dump() for raw in stream]
    assert ra == rb


@given(stream=streams(max_size=20), explain=st.booleans())
def test_dry_run_equals_processing_in_time_order(stream, explain):
    parsed = [TEST.parse_event(raw) for raw in stream]
    result = dryrun.dry_run(TEST, list(enumerate(parsed, 1)), explain=explain)
    engine = TEST.fork()
    ordered = sorted(parsed, key=lambda e: e.occurred_at)
    expected = [engine.process(e, explain=explain) for e in ordered]
    assert [o.receipt for o in result.outcomes] == expected
    assert TEST.state.members == {}  # the dry-run never touched the engine it forked
    dupes = sum(o.duplicate for o in result.outcomes)
    assert dupes == len(stream) - len({(e.member, e.id) for e in parsed})
