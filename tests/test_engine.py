"""The pipeline on concrete events, with every expected number worked out by hand.

Real rulesets (rulesets/group.yaml + the retail plugin's retail.yaml): base rate 1 point per CNY,
rounding floor; retail caps: multiplier 5, cost ratio 0.08, bonus 500 points.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from loyaltycore import (
    EarnPoints,
    EventInputError,
    GrantRight,
    HoldPoints,
    IdempotencyConflict,
    LoyaltyError,
    QualifyingCredit,
    ReversePoints,
    TierChange,
    UseRight,
)
from plugins import support


def points_by_rule(receipt) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in receipt.effects:
        if isinstance(e, EarnPoints | HoldPoints):
            out[e.rule] = out.get(e.rule, 0) + e.points
    return out


def of(receipt, kind):
    return [e for e in receipt.effects if isinstance(e, kind)]


def seasoned(engine, ev, member="M1", **profile):
    """Enrol ``member`` and give them a first (tiny) purchase in January so later
    purchases are not first purchases."""
    engine.enrol({"id": member, **profile})
    r = engine.process(ev.purchase("1", member=member, at="2026-01-05"))
    assert r.accepted
    return r


def member_state(engine, member):
    m = engine.state.members[member]
    return (m.tier, m.available, m.pending, dict(m.counters), copy.deepcopy(m.buckets),
            {k: [(g.remaining, g.valid_until) for g in v] for k, v in m.grants.items()},
            sorted((lot.id, lot.remaining, lot.status) for lot in m.lots.values()), len(m.seen))


# --- earning -----------------------------------------------------------------------------


def test_first_purchase_earns_base_and_bonus_all_pending(engine, ev):
    # Mon 2026-02-02, fashion, in store: 268 CNY -> base 268; first purchase >= 100 -> 200.
    r = engine.process(ev.purchase("268.00", at="2026-02-02T11:20:00+08:00"))
    assert r.accepted
    assert points_by_rule(r) == {"retail-base": 268, "retail-first-purchase": 200}
    assert r.points == 0 and r.pending_points == 468
    (credit,) = of(r, QualifyingCredit)
    assert credit.credit == "spend" and credit.value == Decimal("268.00")
    assert r.ruleset_versions == {"group": "2026.1", "retail": "2026.1"}


def test_first_purchase_bonus_needs_100_and_fires_only_once(engine, ev):
    r1 = engine.process(ev.purchase("99.99"))
    assert points_by_rule(r1) == {"retail-base": 99}  # floor(99.99)
    r2 = engine.process(ev.purchase("500"))
    assert points_by_rule(r2) == {"retail-base": 500}  # no longer a new member
    other = engine.process(ev.purchase("100", member="M2"))
    assert points_by_rule(other)["retail-first-purchase"] == 200


def test_multipliers_stack_on_base_points(engine, ev):
    # Wed 2026-03-04 in the app, beauty, birthday month, silver:
    # base 1000 + beauty 1000 + member day 1000 + birthday 1000 + silver 10% = 100.
    seasoned(engine, ev, birth_month=3, tier="silver")
    r = engine.process(ev.purchase("1000", category="beauty", channel="app",
                                   at="2026-03-04T12:00:00+08:00"))
    assert r.accepted, r.violations
    assert points_by_rule(r) == {"retail-base": 1000, "retail-beauty-x2": 1000,
                                 "retail-member-day": 1000, "retail-birthday-x2": 1000,
                                 "retail-tier-silver": 100}
    assert r.pending_points == 4100  # 4.1 x spend, under the retail cap of 5


def test_tier_multiplier_rounds_down(engine, ev):
    seasoned(engine, ev, tier="silver")
    r = engine.process(ev.purchase("999"))
    assert points_by_rule(r) == {"retail-base": 999, "retail-tier-silver": 99}  # floor(99.9)


def test_monthly_cap_spans_events_and_resets_next_month(engine, ev):
    seasoned(engine, ev)
    # retail-beauty-x2: at most 3000 extra points per month (group timezone).
    r1 = engine.process(ev.purchase("2000", category="beauty", at="2026-05-04"))
    r2 = engine.process(ev.purchase("2000", category="beauty", at="2026-05-05"))
    r3 = engine.process(ev.purchase("2000", category="beauty", at="2026-05-06"), explain=True)
    assert points_by_rule(r1) == {"retail-base": 2000, "retail-beauty-x2": 2000}
    assert points_by_rule(r2) == {"retail-base": 2000, "retail-beauty-x2": 1000}
    (capped,) = [e for e in r2.effects if e.rule == "retail-beauty-x2"]
    assert "capped from 2000 to 1000" in capped.trace.detail
    assert points_by_rule(r3) == {"retail-base": 2000}
    (miss,) = [m for m in r3.not_fired if m.rule == "retail-beauty-x2"]
    assert "capped from 2000 to 0" in miss.reason
    # 16:30 UTC on 31 May is 00:30 on 1 June in Shanghai: a new month, a fresh cap.
    r4 = engine.process(ev.purchase("2000", category="beauty", at="2026-05-31T16:30:00Z"))
    assert points_by_rule(r4) == {"retail-base": 2000, "retail-beauty-x2": 2000}
    # ... while 15:30 UTC is still 31 May: capped.
    r5 = engine.process(ev.purchase("10", category="beauty", at="2026-05-31T15:30:00Z"))
    assert points_by_rule(r5) == {"retail-base": 10}


def test_gift_card_and_parking_do_not_earn(engine, ev):
    seasoned(engine, ev)
    r = engine.process(ev.purchase("1200.00", giftcard_paid="200.00", parking_fee="15.00"))
    assert points_by_rule(r) == {"retail-base": 985}
    assert of(r, QualifyingCredit)[0].value == Decimal("985.00")
    g = engine.process(ev.purchase("500", category="giftcards", giftcard_purchase=True),
                       explain=True)
    assert g.accepted and g.effects == ()
    assert {"retail-base", "retail-spend"} <= {m.rule for m in g.not_fired}


def test_points_pending_for_seven_days_then_vest(engine, ev):
    seasoned(engine, ev)
    at = datetime.fromisoformat("2026-03-02T10:00:00+08:00")
    r = engine.process(ev.purchase("300", at=at))
    holds = of(r, HoldPoints)
    assert holds and all(h.vests_at == at + timedelta(days=7) for h in holds)
    # A second before the holds vest: still pending.
    engine.process(ev.purchase("1", at=at + timedelta(days=7, seconds=-1)))
    m = engine.state.members["M1"]
    assert m.pending >= 300
    engine.process(ev.purchase("1", at=at + timedelta(days=7)))
    m = engine.state.members["M1"]
    # January's 1 point + March's 300 have vested; the two 1-CNY holds have not.
    assert m.available == 1 + 300
    assert m.pending == 2


# --- refunds -------------------------------------------------------------------------------


def test_partial_refunds_claw_back_proportionally_never_more_than_earned(engine, ev):
    seasoned(engine, ev)
    buy = engine.process(ev.purchase("100", category="beauty", id="buy-1", at="2026-03-02"))
    assert sum(points_by_rule(buy).values()) == 200  # base 100 + beauty 100
    clawed = []
    for i, amount in enumerate(["33.33", "33.33", "33.34"]):
        r = engine.process(ev.refund("buy-1", amount, at=f"2026-03-0{3 + i}"))
        assert r.accepted, r.violations
        (rev,) = of(r, ReversePoints)
        assert rev.reverses == "buy-1" and rev.refunded == Decimal(amount)
        clawed.append(rev.points)
    # floor(200 x 33.33/100) = 66; floor(200 x 66.66/100) = 133 -> 67; 200 - 133 = 67.
    assert clawed == [66, 67, 67]
    assert sum(clawed) == 200
    m = engine.state.members["M1"]
    assert m.facts["buy-1"].reversed == 200 and m.facts["buy-1"].refunded == Decimal("100")


def test_refund_claws_back_first_purchase_bonus_in_proportion(engine, ev):
    buy = engine.process(ev.purchase("400", id="first"))
    assert sum(points_by_rule(buy).values()) == 600  # 400 + 200 bonus
    r = engine.process(ev.refund("first", "100"))
    assert of(r, ReversePoints)[0].points == 150  # 600 x 100/400
    assert engine.state.members["M1"].pending == 450


def test_over_refund_is_rejected_with_numbers(engine, ev):
    seasoned(engine, ev)
    engine.process(ev.purchase("100", id="buy-1"))
    assert engine.process(ev.refund("buy-1", "60")).accepted
    before = member_state(engine, "M1")
    r = engine.process(ev.refund("buy-1", "40.01"))
    assert not r.accepted and r.effects == ()
    (v,) = r.violations
    assert v.invariant == "refund-bounds" and v.rule == "retail-refund"
    assert v.numbers == {"refunded": "40.01", "already": "60", "amount": "100"}
    assert "more than its amount 100" in v.message
    after = member_state(engine, "M1")
    assert after[:7] == before[:7]  # only the receipt was remembered
    assert engine.process(ev.refund("buy-1", "40")).accepted


def test_refund_of_unknown_event_is_rejected(engine, ev):
    seasoned(engine, ev)
    engine.process(ev.purchase("100", id="theirs", member="M2"))
    for original in ("nope", "theirs"):  # never seen / another member's event
        r = engine.process(ev.refund(original, "10"))
        assert not r.accepted
        (v,) = r.violations
        assert v.invariant == "refund-bounds" and v.rule == "retail-refund"
        assert repr(original) in v.message and "never had" in v.message


# Regression test (this was a product bug, fixed in src/ while the tests were being written):
# a refund event without an amount makes Engine.process raise a bare TypeError (decide.py
# reversals: facts['refunded'] + None) instead of rejecting the event
def test_refund_without_amount_is_rejected_not_a_crash(engine, ev):
    seasoned(engine, ev)
    engine.process(ev.purchase("100", id="buy-1"))
    raw = ev.make(line="retail", type="refund", related_event="buy-1")  # no amount
    try:
        r = engine.process(raw)
    except LoyaltyError:
        return  # refusing it as bad input would be fine too
    assert not r.accepted
    # The first refund rule that needs the amount names itself (credit runs before reverse).
    assert r.violations[0].rule == "retail-spend-refund"
    assert r.violations[0].invariant == "rule-evaluation"


def test_refund_across_lines_is_rejected(test_engine, ev):
    test_engine.process(ev.purchase("100", id="shop"))
    test_engine.process(ev.play("100", id="game"))
    for raw, line in ((ev.arcade_refund("shop", "10"), "arcade"),
                      (ev.refund("game", "10"), "retail")):
        r = test_engine.process(raw)
        assert not r.accepted
        assert {v.invariant for v in r.violations} == {"line-isolation"}
        assert any(f"a {line} event cannot reverse points" in v.message for v in r.violations)
    ok = test_engine.process(ev.arcade_refund("game", "50"))
    assert [(e.reverses, e.points) for e in of(ok, ReversePoints)] == [("game", 52)]


def test_refund_of_a_refund_is_rejected(engine, ev):
    seasoned(engine, ev)
    engine.process(ev.purchase("100", id="buy-1"))
    assert engine.process(ev.refund("buy-1", "50", id="refund-1")).accepted
    r = engine.process(ev.refund("refund-1", "50"))
    assert not r.accepted
    assert r.violations[0].invariant == "refund-bounds"


# --- tiers ---------------------------------------------------------------------------------


def test_tier_upgrade_when_spend_crosses_20000(engine, ev):
    seasoned(engine, ev)  # 1 CNY of spend in January
    r1 = engine.process(ev.purchase("19998.99", at="2026-03-02"))
    assert r1.tier_after == "member" and not of(r1, TierChange)  # 19999.99 in the window
    r2 = engine.process(ev.purchase("0.01", at="2026-03-03"))
    (change,) = of(r2, TierChange)
    assert (change.from_tier, change.to_tier, change.reason) == ("member", "silver", "upgrade")
    assert change.line == "group" and change.source == "tiers"
    assert change.trace.detail == "spend 20000.00 reaches the silver threshold 20000"
    assert change.trace.values == {"qualification.spend": "20000.00"}
    assert (r2.tier_before, r2.tier_after) == ("member", "silver")
    assert engine.state.members["M1"].tier == "silver"
    # The next purchase earns the silver multiplier.
    r3 = engine.process(ev.purchase("1000", at="2026-03-04"))
    assert points_by_rule(r3) == {"retail-base": 1000, "retail-tier-silver": 100}


def test_reaching_gold_grants_the_group_welcome_voucher(engine, ev):
    seasoned(engine, ev)
    at = datetime.fromisoformat("2026-03-04T10:00:00+08:00")
    r = engine.process(ev.purchase("80000", at=at))
    (change,) = of(r, TierChange)
    assert (change.from_tier, change.to_tier) == ("member", "gold")  # straight past silver
    (grant,) = of(r, GrantRight)
    assert grant.right == "group-welcome-gold" and grant.source == "tiers"
    assert grant.rule == "tier:gold" and grant.line == "retail"
    assert grant.valid_until == at + timedelta(days=90)
    use = engine.process(ev.use("group-welcome-gold", at="2026-03-05"))
    assert use.accepted, use.violations
    again = engine.process(ev.use("group-welcome-gold", at="2026-03-06"))
    assert not again.accepted
    assert again.violations[0].numbers == {"available": 0, "requested": 1}


# --- rights --------------------------------------------------------------------------------


def test_right_needs_an_eligible_tier(engine, ev):
    seasoned(engine, ev)
    r = engine.process(ev.use("retail-vip-lane"))
    assert not r.accepted
    (v,) = r.violations
    assert v.invariant == "rights" and v.rule == "retail-vip-lane"
    assert v.numbers == {"tier": "member"}
    engine.enrol({"id": "G", "tier": "gold"})
    ok = engine.process(ev.use("retail-vip-lane", member="G"))
    assert ok.accepted and of(ok, UseRight)[0].right == "retail-vip-lane"


def test_entitlement_quota_per_month(engine, ev):
    seasoned(engine, ev, tier="silver")
    assert engine.process(ev.use("retail-parking-2h", at="2026-03-02")).accepted
    assert engine.process(ev.use("retail-parking-2h", at="2026-03-15")).accepted
    third = engine.process(ev.use("retail-parking-2h", at="2026-03-31T23:59:00+08:00"))
    assert not third.accepted
    (v,) = third.violations
    assert v.invariant == "rights" and v.rule == "retail-parking-2h"
    assert v.numbers == {"quota": 2, "remaining": 0, "requested": 1}
    assert engine.process(ev.use("retail-parking-2h", at="2026-04-01")).accepted
    # Asking for more than the whole quota at once is refused too.
    big = engine.process(ev.use("retail-parking-2h", quantity=3, at="2026-05-02"))
    assert not big.accepted and big.violations[0].numbers["requested"] == 3


def test_voucher_use_needs_an_unexpired_grant(engine, ev):
    seasoned(engine, ev, birth_month=3)
    none_yet = engine.process(ev.use("retail-birthday-gift", at="2026-02-10"))
    assert not none_yet.accepted
    assert none_yet.violations[0].numbers == {"available": 0, "requested": 1}
    at = datetime.fromisoformat("2026-03-02T10:00:00+08:00")
    buy = engine.process(ev.purchase("100", at=at))
    (grant,) = of(buy, GrantRight)
    assert grant.right == "retail-birthday-gift"
    assert grant.valid_until == at + timedelta(days=30)
    late = engine.process(ev.use("retail-birthday-gift", at=at + timedelta(days=30)))
    assert not late.accepted  # expired exactly at valid_until


def test_voucher_within_validity_is_used_once(engine, ev):
    seasoned(engine, ev, birth_month=3)
    engine.process(ev.purchase("100", at="2026-03-02"))
    ok = engine.process(ev.use("retail-birthday-gift", at="2026-03-20"))
    assert ok.accepted
    again = engine.process(ev.use("retail-birthday-gift", at="2026-03-21"))
    assert not again.accepted


def test_unknown_right_is_rejected(engine, ev):
    r = engine.process(ev.use("free-lunch"))
    assert not r.accepted
    assert r.violations[0].invariant == "rights"
    assert "'free-lunch' does not exist" in r.violations[0].message


# --- idempotency ---------------------------------------------------------------------------


def test_same_event_twice_returns_same_receipt_and_changes_nothing(engine, ev):
    seasoned(engine, ev)
    raw = ev.purchase("250", id="once")
    first = engine.process(raw)
    before = member_state(engine, "M1")
    again = engine.process(dict(raw))
    assert again == first
    assert member_state(engine, "M1") == before


def test_same_rejected_event_twice_is_rejected_the_same(engine, ev):
    raw = ev.use("retail-vip-lane", id="vip")
    first = engine.process(raw)
    assert engine.process(raw) == first and not first.accepted


def _identical(a, b) -> bool:
    """Equal, with the same types inside (repr shows Decimal('1') against '1') and the same
    fields set, down to every effect and trace."""
    return (a == b and repr(a) == repr(b) and a.model_dump() == b.model_dump()
            and a.model_dump_json() == b.model_dump_json()
            and a.model_fields_set == b.model_fields_set
            and [e.model_fields_set for e in a.effects] == [e.model_fields_set for e in b.effects]
            and [e.trace and e.trace.model_fields_set for e in a.effects]
            == [e.trace and e.trace.model_fields_set for e in b.effects])


def test_resubmitted_events_get_back_exactly_their_receipts(engine, ev):
    """The state keeps receipts in a compact form: what a resubmission gets back must be
    the very receipt given the first time, accepted or rejected, in a run and in a dry-run."""
    engine.enrol({"id": "M2"})
    seasoned(engine, ev)
    raws = [ev.purchase("250", member="M2", id="first"),          # first purchase: pending
            ev.purchase("80000", at="2026-03-04T10:00:00+08:00", id="gold"),  # tier, voucher
            ev.purchase("1200.50", category="beauty", channel="app", id="multi"),
            ev.refund("multi", "200.25", id="back"),
            ev.refund("multi", "5000", id="over"),                  # rejected, with numbers
            ev.use("group-welcome-gold", at="2026-03-05", id="voucher"),
            ev.use("free-lunch", id="unknown")]                     # rejected
    dry = engine.dry_run(raws + [dict(raw) for raw in raws])
    first = [engine.process(raw) for raw in raws]
    assert [r.accepted for r in first] == [True, True, True, True, False, True, False]
    assert any(e.trace and e.trace.values for r in first for e in r.effects)
    rebuilt = 0
    for raw, receipt in zip(raws, first, strict=True):
        again = engine.process(dict(raw))
        assert _identical(again, receipt)
        rebuilt += again is not receipt
    assert engine.duplicates == len(raws)
    assert rebuilt >= 5  # the accepted ones at least were kept compact and rebuilt
    # The dry-run ran each event twice: the second time is a duplicate with the same receipt.
    outcomes = {}
    for o in dry.outcomes:
        outcomes.setdefault(o.receipt.event_id, []).append(o)
    assert len(outcomes) == len(raws)
    for original, duplicate in outcomes.values():
        assert not original.duplicate and duplicate.duplicate
        assert _identical(duplicate.receipt, original.receipt)


def test_the_journal_in_memory_reads_back_what_the_store_records(tmp_path, ev):
    """The in-memory journal keeps entries compact (journal.Journal); read back, they are
    the entries the store writes for the same events, postings and moves included."""
    mem = support.open_real()
    db = support.open_real(db=tmp_path / "ledger.db")
    raws = [ev.purchase("1", at="2026-01-05"), ev.purchase("500", id="p1", category="beauty"),
            ev.purchase("800", id="p2", at="2026-03-20"), ev.refund("p1", "200", id="r1"),
            ev.refund("p2", "800", at="2026-04-20", id="r2")]
    for engine in (mem, db):
        engine.enrol({"id": "M1"})
        for raw in raws:
            assert engine.process(dict(raw)).accepted
        engine.run_jobs(datetime.fromisoformat("2026-05-01T00:00:00+08:00"))
    entries = list(mem.state.journal)
    assert {e.kind for e in entries} >= {"earn", "vest", "reverse"}
    assert any(e.moves for e in entries) and all(e.seq for e in entries)
    assert entries[1:3] == mem.state.journal[1:3] and entries[-1] == mem.state.journal[-1]
    assert list(mem.state.journal.of({"M1"})) == entries
    for e in entries:
        if e.kind == "vest":
            (move,) = e.moves
            assert (move.kind, e.id, move.issuer) == ("vest", f"M1|vest|{move.lot}", "retail")
            assert move.points == e.postings[1].points > 0
    assert mem.statement("M1") == db.statement("M1")
    assert len(mem.statement("M1").lines) == len(entries)
    db.close()


def test_same_id_with_a_different_payload_raises(engine, ev):
    engine.process(ev.purchase("250", id="once"))
    before = member_state(engine, "M1")
    with pytest.raises(IdempotencyConflict) as info:
        engine.process(ev.purchase("251", id="once"))
    assert info.value.event_id == "once" and info.value.member_id == "M1"
    assert member_state(engine, "M1") == before


def test_event_ids_are_per_member(engine, ev):
    a = engine.process(ev.purchase("100", id="same", member="A"))
    b = engine.process(ev.purchase("100", id="same", member="B"))
    assert a.accepted and b.accepted and a.member == "A" and b.member == "B"


# --- rulesets over time --------------------------------------------------------------------


@pytest.fixture
def versioned():
    return support.open_test(paths=[support.TEST_GROUP, support.ARCADE_VERSIONS])


@pytest.mark.parametrize(("at", "version", "points"), [
    ("2026-03-31T23:59:59+08:00", "2026.Q1", 100),
    ("2026-04-01T00:00:00+08:00", "2026.Q2", 300),  # effective_to is exclusive
    ("2026-03-31T16:00:00Z", "2026.Q2", 300),  # = 1 April 00:00 in Shanghai
    ("2026-03-31T15:59:59Z", "2026.Q1", 100),
])
def test_event_is_judged_by_the_version_in_force_when_it_occurred(versioned, ev, at,
                                                                   version, points):
    r = versioned.process(ev.play("100", at=at))
    assert r.accepted, r.violations
    assert r.ruleset_versions["arcade"] == version
    assert sum(points_by_rule(r).values()) == points


def test_late_event_uses_old_version_even_after_newer_events(versioned, ev):
    april = versioned.process(ev.play("100", at="2026-04-02"))
    march = versioned.process(ev.play("100", at="2026-03-30"))
    assert april.ruleset_versions["arcade"] == "2026.Q2"
    assert march.ruleset_versions["arcade"] == "2026.Q1"
    assert points_by_rule(march) == {"arcade-base": 100}
    assert points_by_rule(april) == {"arcade-base": 100, "arcade-triple": 200}


def test_event_before_any_group_policy_is_rejected(engine, ev):
    r = engine.process(ev.purchase("100", at="2025-12-31T23:59:59+08:00"))
    assert not r.accepted
    assert r.violations[0].invariant == "rules-in-force"


# --- input -----------------------------------------------------------------------------------


def test_currency_mismatch_is_rejected(engine, ev):
    r = engine.process(ev.purchase("12.5", currency="USD"))
    assert not r.accepted and r.effects == ()
    (v,) = r.violations
    assert v.invariant == "currency"
    assert v.numbers == {"currency": "USD", "group_currency": "CNY"}
    assert engine.process(ev.purchase("12.5", currency=None)).accepted  # default currency


def test_naive_timestamp_is_refused_naming_occurred_at(engine, ev):
    raw = ev.purchase("99")
    raw["occurred_at"] = "2026-03-12T15:00:00"
    with pytest.raises(EventInputError) as info:
        engine.process(raw)
    assert info.value.field == "occurred_at"
    assert "UTC offset" in str(info.value)
    assert "M1" not in engine.state.members


def test_decide_does_not_apply(engine, ev):
    seasoned(engine, ev)
    before = member_state(engine, "M1")
    d = engine.decide(ev.purchase("500", at="2026-01-06"), explain=True)
    assert d.accepted and any(isinstance(e, HoldPoints) for e in d.effects)
    assert member_state(engine, "M1") == before


# Regression test (this was a product bug, fixed in src/ while the tests were being written):
# Engine.decide writes to member state: it creates unseen members (MemoryState._get) and vests
# holds (MemoryState.advance) although it is documented as 'not applied'
def test_decide_leaves_state_untouched(engine, ev):
    seasoned(engine, ev)
    engine.process(ev.purchase("300", at="2026-03-02"))
    before = member_state(engine, "M1")
    engine.decide(ev.purchase("1", at="2026-04-01"))  # after the March holds vest
    engine.decide(ev.purchase("1", member="NEW", at="2026-04-01"))
    assert member_state(engine, "M1") == before
    assert "NEW" not in engine.state.members


# Regression test (this was a product bug, fixed in src/ while the tests were being written):
# Engine.member(id, at) does not vest holds due by `at` (it snapshots without
# MemoryState.advance), so a member 'as of' a later date still shows vested points as pending
def test_member_as_of_a_date_shows_vested_points(engine, ev):
    engine.process(ev.purchase("300", at="2026-03-02"))  # 300 + 200 pending for 7 days
    later = engine.member("M1", datetime.fromisoformat("2026-04-01T00:00:00+08:00"))
    assert (later.available, later.pending) == (500, 0)


# Regression test (this was a product bug, fixed in src/ while the tests were being written):
# a rejected first event makes the member no longer 'new' (MemoryState._get counts rejected
# receipts in `seen`), so a rejected event changes what later events earn
def test_rejected_first_event_does_not_cost_the_first_purchase_bonus(engine, ev):
    assert not engine.process(ev.purchase("100", currency="USD")).accepted
    r = engine.process(ev.purchase("100"))
    assert points_by_rule(r) == {"retail-base": 100, "retail-first-purchase": 200}


# --- the arcade plugin (a decide hook) -------------------------------------------------------


def test_arcade_rules_and_streak_bonus_from_the_plugin(test_engine, ev):
    got = []
    for day in ("2026-03-01", "2026-03-02", "2026-03-03"):
        r = test_engine.process(ev.play("100", tokens=60, at=day))
        assert r.accepted, r.violations
        got.append(points_by_rule(r))
    base = {"arcade-base": 100, "arcade-big-play": 100, "arcade-daily-visit": 5}
    assert got == [base, {**base, "arcade-streak": 20}, {**base, "arcade-streak": 40}]
    (streak,) = [e for e in test_engine.process(ev.play("100", at="2026-03-04")).effects
                 if e.rule == "arcade-streak"]
    assert streak.source == f"plugin:{support.ARCADE_NAME}" and streak.points == 60


def test_arcade_streak_breaks_after_a_missed_day_and_is_capped(test_engine, ev):
    for i in range(8):
        test_engine.process(ev.play("100", at=f"2026-03-{1 + i:02d}"))
    r = test_engine.process(ev.play("100", at="2026-03-09"))
    assert points_by_rule(r)["arcade-streak"] == 100  # 5 days at most
    r = test_engine.process(ev.play("100", at="2026-03-11"))  # missed the 10th
    assert "arcade-streak" not in points_by_rule(r)
    # A second play the same day: no daily bonus, same streak.
    r = test_engine.process(ev.play("100", at="2026-03-11T20:00:00+08:00"))
    assert "arcade-daily-visit" not in points_by_rule(r)


def test_arcade_big_play_cap_and_visits_credit(test_engine, ev):
    rs = [test_engine.process(ev.play("300", tokens=50, at=f"2026-03-{d:02d}T10:00:00+08:00"))
          for d in (2, 2, 2)]
    assert [points_by_rule(r).get("arcade-big-play", 0) for r in rs] == [300, 200, 0]
    assert test_engine.state.members["M1"].buckets[(2026, 3)]["visits"] == 3


def test_tier_reaction_of_another_line_is_granted(tmp_path, ev):
    """A retail purchase lifts the member to silver; the arcade line's on_upgrade grants its
    own right on that retail event (line isolation allows a line's reaction to a tier move)."""
    import shutil

    from tests.plugins import support

    arcade = (support.ARCADE_RULES / "arcade.yaml").read_text(encoding="utf-8")
    arcade = arcade.replace("\nrights:\n", "\non_upgrade:\n  - id: arcade-welcome-silver\n"
                            "    to: silver\n    right: arcade-free-game\n\nrights:\n", 1)
    (tmp_path / "arcade.yaml").write_text(arcade, encoding="utf-8")
    shutil.copy(support.TEST_GROUP / "group.yaml", tmp_path / "group.yaml")
    engine = support.open_test(paths=[tmp_path])

    receipt = engine.process(ev.purchase("20000"))

    assert receipt.accepted, receipt.violations
    assert receipt.tier_after == "silver"
    grants = [e for e in receipt.effects if e.kind == "grant_right"]
    assert [(g.line, g.right, g.rule) for g in grants] == [
        ("arcade", "arcade-free-game", "arcade-welcome-silver")]


def test_refund_takes_back_qualifying_spend(engine, ev):
    engine.process(ev.purchase("20000", id="big"))
    assert engine.member("M1", at=_at("2026-03-03")).tier == "silver"
    receipt = engine.process(ev.refund("big", "20000", at="2026-03-05"))
    credits = [e for e in receipt.effects if e.kind == "credit"]
    assert [(c.credit, c.value) for c in credits] == [("spend", Decimal("-20000"))]
    snapshot = engine.member("M1", at=_at("2026-03-06"))
    assert snapshot.qualification.credits["spend"] == 0
    assert snapshot.tier == "silver"  # upgrades stand until a review; refunds never downgrade


def _at(day: str):
    from datetime import datetime

    return datetime.fromisoformat(f"{day}T12:00:00+08:00")
