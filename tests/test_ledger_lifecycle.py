"""A point's life on the durable ledger: refunds, expiry, redemption order, tiers.

Each test runs on SQLite and PostgreSQL (``db_url``) through the public API. Group
policies: tests/rulesets/ledger/<name>/group.yaml (``plain``: never expire, refunds of spent
points make the balance negative; ``shortfall``; ``rolling``: 6 months; ``year_end``: end
of the earning year; ``inactivity``: 3 months without an accepted event). Lines: the real
retail rules (purchase points pending 7 days, 200 bonus on a first purchase >= 100 CNY,
silver +10%) and the test arcade (1 point per CNY + 5 for a day's first play, at once).

Times: a bare date is 10:00 Shanghai = 02:00 UTC (``support.ts``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loyaltycore.effects import ReversePoints, TierChange
from loyaltycore.engine import Engine
from loyaltycore.errors import ConfigurationError
from plugins import support

LEDGER = support.TEST_RULESETS / "ledger"


def open_engine(db: str | None, policy: str = "plain", *, arcade: bool = True) -> Engine:
    paths = [LEDGER / policy]  # the retail rules come with the retail plugin
    plugins = [support.RETAIL]
    if arcade:
        paths.append(support.ARCADE_RULES)
        plugins.append(support.ARCADE)
    return Engine.open(paths, plugins=plugins, load_entrypoints=False, db=db, time_budget=2.0)


def when(day: str) -> datetime:
    return datetime.fromisoformat(support.ts(day))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.fixture
def ledger(db_url):
    opened: list[Engine] = []

    def make(policy: str = "plain", *, arcade: bool = True) -> Engine:
        engine = open_engine(db_url, policy, arcade=arcade)
        opened.append(engine)
        return engine

    yield make
    for engine in opened:
        engine.close()


def reversed_points(receipt) -> int:
    return sum(e.points for e in receipt.effects if isinstance(e, ReversePoints))


def balances(engine: Engine, member: str, day: str) -> tuple[int, int]:
    m = engine.member(member, at=when(day))
    return m.available, m.pending


def statement_rows(engine: Engine, member: str) -> list[tuple]:
    return [(ln.kind, ln.event_id, ln.available, ln.pending, ln.balance)
            for ln in engine.statement(member).lines]


# --- refunds -----------------------------------------------------------------------------


def test_partial_refunds_claw_back_in_proportion_and_never_more_than_earned(ledger, ev):
    engine = ledger(arcade=False)
    # 333 CNY as a new member: 333 + 200 bonus = 533 pending.
    assert engine.process(ev.purchase("333", id="p1", at="2026-03-02")).pending_points == 533
    # Refunds claw back the proportion of ALL refunds so far minus what was taken already:
    #   100: floor(533 x 100/333) = floor(160.06) = 160
    #   100: floor(533 x 200/333) = floor(320.12) = 320, minus 160 = 160
    #   133: floor(533 x 333/333) = 533, minus 320 = 213  -> 160 + 160 + 213 = 533
    got = [reversed_points(engine.process(ev.refund("p1", amount, id=f"f{i}",
                                                    at="2026-03-03")))
           for i, amount in enumerate(("100", "100", "133"))]
    assert got == [160, 160, 213]
    assert sum(got) == 533
    # Nothing is left to refund: even a cent more is out of bounds.
    over = engine.process(ev.refund("p1", "0.01", id="f3", at="2026-03-04"))
    assert over.status == "rejected"
    assert [v.invariant for v in over.violations] == ["refund-bounds"]
    assert balances(engine, "M1", "2026-03-20") == (0, 0)
    report = engine.check_ledger()
    assert report.clean, report.problems
    retail = report.lines["retail"]
    assert (retail.issued, retail.reversed, retail.available, retail.pending) == (533, 533, 0, 0)


def test_a_refund_larger_than_the_rest_of_the_purchase_is_rejected(ledger, ev):
    engine = ledger(arcade=False)
    engine.process(ev.purchase("1000", id="p1", at="2026-03-02"))  # 1200 pending
    assert reversed_points(engine.process(ev.refund("p1", "600", id="f1",
                                                    at="2026-03-03"))) == 720
    # 600 + 401 > 1000
    r = engine.process(ev.refund("p1", "401", id="f2", at="2026-03-03"))
    assert r.status == "rejected"
    assert r.violations[0].invariant == "refund-bounds"
    assert r.violations[0].numbers["refunded"] == "401"
    # a refund of a refund, and of an event never seen, are refused too
    assert engine.process(ev.refund("f1", "1", id="f3", at="2026-03-03")).status == "rejected"
    assert engine.process(ev.refund("nope", "1", id="f4", at="2026-03-03")).status == \
        "rejected"
    assert balances(engine, "M1", "2026-03-03") == (0, 480)  # 1200 - 720
    assert engine.check_ledger().lines["retail"].reversed == 720


def test_a_refund_out_of_bounds_says_the_amounts_as_they_were_sent(ledger, ev, db_url,
                                                                     request):
    engine = ledger(arcade=False)
    engine.process(ev.purchase("1000", id="p1", at="2026-03-02"))  # 1200 pending
    f1 = engine.process(ev.refund("p1", "250", id="f1", at="2026-03-03"))
    assert [e.trace.detail for e in f1.effects if isinstance(e, ReversePoints)] == [
        "p1 earned 1200 on 1000; refunds now 250 -> claw back 300 (0 already)"]
    r = engine.process(ev.refund("p1", "800", id="f2", at="2026-03-03"))
    assert r.violations[0].message == \
        "refund of 800 takes refunds of p1 to 1050, more than its amount 1000"
    assert r.violations[0].numbers == {"refunded": "800", "already": "250", "amount": "1000"}


def test_a_refund_voids_the_purchases_pending_points_before_touching_available_ones(ledger, ev):
    engine = ledger(arcade=False)
    engine.process(ev.purchase("1000", id="p1", at="2026-03-02"))  # 1200, vests 03-09
    engine.process(ev.purchase("500", id="p2", at="2026-03-12"))   # 500, vests 03-19
    assert balances(engine, "M1", "2026-03-13") == (1200, 500)
    # Refund 200 of p2: floor(500 x 200/500) = 200, voided from p2's pending lot; the 1200
    # available points are not touched.
    f1 = engine.process(ev.refund("p2", "200", id="f1", at="2026-03-13"))
    assert reversed_points(f1) == 200
    assert balances(engine, "M1", "2026-03-13") == (1200, 300)
    # Refund 500 of p1 (vested): floor(1200 x 500/1000) = 600 from available.
    f2 = engine.process(ev.refund("p1", "500", id="f2", at="2026-03-14"))
    assert reversed_points(f2) == 600
    assert balances(engine, "M1", "2026-03-14") == (600, 300)
    rows = statement_rows(engine, "M1")
    assert ("reverse", "f1", 0, -200, 1200) in rows
    assert ("reverse", "f2", -600, 0, 600) in rows
    assert balances(engine, "M1", "2026-03-20") == (900, 0)  # p2's 300 vested on 03-19
    report = engine.check_ledger()
    assert report.clean
    assert report.lines["retail"].reversed == 800


def test_refunding_spent_points_makes_the_balance_negative_and_later_earnings_repay(ledger, ev):
    engine = ledger("plain", arcade=False)
    engine.process(ev.purchase("1000", id="p1", at="2026-03-02"))  # 1200, vests 03-09
    assert engine.redeem("M1", 1000, line="retail", event_id="x1",
                         at=when("2026-03-10")).accepted  # 200 left
    # Full refund: 1200 to claw back; 200 are there, 1000 were spent -> -1000 (a debt).
    f1 = engine.process(ev.refund("p1", "1000", id="f1", at="2026-03-12"))
    assert reversed_points(f1) == 1200
    assert balances(engine, "M1", "2026-03-12") == (-1000, 0)
    report = engine.check_ledger()
    assert report.clean and report.debt == 1000
    # In debt nothing can be spent.
    broke = engine.redeem("M1", 1, line="retail", event_id="x2", at=when("2026-03-13"))
    assert broke.violations[0].message == "would overdraw: 1 points asked, -1000 available"
    # Later earnings repay the debt first: 500 (vests 03-21) -> -500; 600 (03-30) -> +100.
    engine.process(ev.purchase("500", id="p2", at="2026-03-14"))
    assert balances(engine, "M1", "2026-03-15") == (-1000, 500)
    assert balances(engine, "M1", "2026-03-22") == (-500, 0)
    engine.process(ev.purchase("600", id="p3", at="2026-03-23"))
    assert engine.run_jobs(when("2026-04-01")).vested == 600
    assert balances(engine, "M1", "2026-04-01") == (100, 0)
    assert statement_rows(engine, "M1") == [
        ("earn", "p1", 0, 1200, 0),
        ("vest", None, 1000, -1000, 1000),
        ("vest", None, 200, -200, 1200),
        ("redeem", "x1", -1000, 0, 200),
        ("reverse", "f1", -1200, 0, -1000),  # the rejected x2 wrote nothing
        ("earn", "p2", 0, 500, -1000),
        ("vest", None, 500, -500, -500),
        ("earn", "p3", 0, 600, -500),
        ("vest", None, 600, -600, 100),
    ]
    assert engine.statement("M1").lines[4].memo == \
        "refund of 1000; 1000 points already spent: balance goes negative"
    report = engine.check_ledger()
    assert report.clean and report.debt == 0
    retail = report.lines["retail"]
    # issued 1200 + 500 + 600 = 2300 = 100 available + 1000 redeemed + 1200 reversed
    # (200 from p1's lot, 1000 repaid by p2's 500 and 500 of p3's 600)
    assert (retail.issued, retail.available, retail.redeemed_from, retail.reversed) == \
        (2300, 100, 1000, 1200)


def test_refunding_spent_points_under_shortfall_floors_the_balance_at_zero(ledger, ev):
    engine = ledger("shortfall", arcade=False)
    engine.process(ev.purchase("1000", id="p1", at="2026-03-02"))  # 1200, vests 03-09
    engine.redeem("M1", 1000, line="retail", event_id="x1", at=when("2026-03-10"))
    # 1200 to claw back, 200 there: takes 200, the other 1000 are a shortfall of retail.
    f1 = engine.process(ev.refund("p1", "1000", id="f1", at="2026-03-12"))
    assert reversed_points(f1) == 1200
    assert balances(engine, "M1", "2026-03-12") == (0, 0)
    lines = engine.statement("M1").lines
    assert [(ln.kind, ln.available, ln.balance) for ln in lines[-2:]] == [
        ("reverse", -200, 0), ("shortfall", 0, 0)]
    assert lines[-1].memo == \
        "1000 points of p1 were already spent; recorded as a shortfall of line retail"
    # Later earnings are the member's own: nothing is repaid.
    engine.process(ev.purchase("500", id="p2", at="2026-03-14"))
    assert balances(engine, "M1", "2026-03-22") == (500, 0)
    assert engine.redeem("M1", 500, line="retail", event_id="x2",
                         at=when("2026-03-22")).accepted
    report = engine.check_ledger()
    assert report.clean and report.debt == 0
    retail = report.lines["retail"]
    # issued 1200 + 500 = 1700 = 0 available + 1500 redeemed + 200 reversed
    assert (retail.issued, retail.available, retail.redeemed_from, retail.reversed) == \
        (1700, 0, 1500, 200)


# --- expiry and redemption order ---------------------------------------------------------


def test_redemption_spends_the_soonest_expiring_points_first(ledger, ev):
    engine = ledger("rolling")  # points expire 6 months after they were earned
    engine.process(ev.play("100", id="a1", at="2026-01-10"))  # 105 arcade, expire 07-10
    # not new any more (a1): no bonus; 2 lines active -> silver, but the multiplier needs
    # silver before the event: 500 retail, pending to 02-17, expire 08-10
    engine.process(ev.purchase("500", id="p1", at="2026-02-10"))
    engine.process(ev.play("300", id="a2", at="2026-03-10"))  # 305 arcade, expire 09-10
    # 400 at the arcade: a1's 100 + 5 (soonest), then 295 of p1's 500; a2 untouched.
    assert engine.redeem("M1", 400, line="arcade", event_id="x1",
                         at=when("2026-03-20")).accepted
    assert balances(engine, "M1", "2026-03-20") == (510, 0)  # 105 + 500 + 305 - 400
    assert [(s.issuer, s.redeemer, s.points) for s in engine.settlement()] == [
        ("arcade", "arcade", 105), ("retail", "arcade", 295)]
    report = engine.check_ledger()
    a, r = report.lines["arcade"], report.lines["retail"]
    assert (a.issued, a.available, a.redeemed_from, a.redeemed_at) == (410, 305, 105, 400)
    assert (r.issued, r.available, r.redeemed_from, r.redeemed_at) == (500, 205, 295, 0)

    # By 09-01 the 205 left of p1 expired (on 08-10); a2's 305 have not yet.
    jobs = engine.run_jobs(when("2026-09-01"))
    assert (jobs.members, jobs.expired) == (1, 205)
    assert balances(engine, "M1", "2026-09-01") == (305, 0)
    last = engine.statement("M1").lines[-1]
    assert (last.kind, last.at, last.available, last.balance, last.memo) == \
        ("expire", when("2026-08-10"), -205, 305, "expiry date")
    report = engine.check_ledger()
    assert report.clean
    assert (report.lines["retail"].expired, report.lines["arcade"].expired) == (205, 0)
    # the same as_of again finds nothing
    again = engine.run_jobs(when("2026-09-01"))
    assert (again.members, again.vested, again.expired) == (0, 0, 0)
    assert engine.check_ledger().entries == report.entries
    # settlement of a period counts the points spent in it
    assert engine.settlement(since=when("2026-04-01")) == []
    assert [s.points for s in engine.settlement(until=when("2026-03-21"))] == [105, 295]


# Three members: J has time passed by the jobs, L lazily by its next event (the ledger has
# no job run before it). Both end the same, and as computed by hand:
#   e1 2026-01-10 arcade 100 -> 105; e2 2026-02-10 arcade 200 -> 205; e3 2026-05-09
#   arcade 50 -> 55 (each with the day's 5-point bonus): 365 in all.
#   e4 2027-03-02 arcade 10 -> 15.
#   rolling (6 months): 105 expire 07-10, 205 on 08-10, 55 on 11-09 (lots of 100+5, ...).
#   year_end (0 years): all 365 at 2027-01-01 00:00 Shanghai (2026-12-31 16:00 UTC).
#   inactivity (3 months): all 365 three months after e3, on 2026-08-09 10:00 Shanghai.
EXPIRIES = {
    "rolling": [("2026-01-10", -100), ("2026-01-10", -5), ("2026-02-10", -200),
                ("2026-02-10", -5), ("2026-05-09", -50), ("2026-05-09", -5)],
    "year_end": [("2026-12-31T16:00:00+00:00", n) for n in (-100, -5, -200, -5, -50, -5)],
    "inactivity": [("2026-08-09", -365)],
}


def _expiry_dates(policy: str) -> list[tuple[datetime, int]]:
    out = []
    for day, points in EXPIRIES[policy]:
        if policy == "rolling":  # six months after the day it was earned
            d = when(day)
            at = d.replace(month=d.month + 6)
        else:
            at = datetime.fromisoformat(support.ts(day))
        out.append((at.astimezone(UTC), points))
    return out


@pytest.mark.parametrize("policy", ["rolling", "year_end", "inactivity"])
def test_expiry_by_the_jobs_and_lazily_before_the_next_event_agree(ledger, policy):
    engine = ledger(policy)
    memory = open_engine(None, policy)
    days = ("2026-01-10", "2026-02-10", "2026-05-09")
    amounts = ("100", "200", "50")

    def earn(eng: Engine, member: str) -> None:
        ev = support.Events(member=member)
        for i, (day, amount) in enumerate(zip(days, amounts, strict=True)):
            assert eng.process(ev.play(amount, id=f"{member}-e{i}", at=day)).points == \
                int(amount) + 5

    def last(eng: Engine, member: str):
        return eng.process(support.Events(member=member).play("10", id=f"{member}-e4",
                                                               at="2027-03-02"))

    # L first, entirely: its last event is after the jobs' as_of, so they leave it alone.
    earn(engine, "L")
    assert last(engine, "L").points == 15
    earn(memory, "L")
    last(memory, "L")
    earn(engine, "J")
    as_of = when("2027-03-01")
    jobs = engine.run_jobs(as_of)
    assert (jobs.members, jobs.vested, jobs.expired) == (1, 0, 365)
    entries = engine.check_ledger().entries
    again = engine.run_jobs(as_of)
    assert (again.members, again.vested, again.expired) == (0, 0, 0)
    assert engine.check_ledger().entries == entries
    assert balances(engine, "J", "2027-03-01") == (0, 0)
    last(engine, "J")

    for eng, member in ((engine, "L"), (engine, "J"), (memory, "L")):
        assert balances(eng, member, "2027-03-03") == (15, 0), (member, eng.store)
        st = eng.statement(member)
        expired = [(ln.at, ln.available) for ln in st.lines if ln.kind == "expire"]
        assert expired == _expiry_dates(policy), member
        assert [ln.balance for ln in st.lines][-1] == 15
        assert all(ln.balance >= 0 for ln in st.lines)
    assert [(ln.kind, ln.at, ln.available) for ln in engine.statement("J").lines] == \
        [(ln.kind, ln.at, ln.available) for ln in engine.statement("L").lines]
    report = engine.check_ledger()
    assert report.clean
    # arcade issued 2 x (365 + 15) = 760: 2 x 365 expired, 2 x 15 available
    arcade = report.lines["arcade"]
    assert (arcade.issued, arcade.expired, arcade.available) == (760, 730, 30)


def test_inactivity_is_reset_by_any_accepted_event_but_not_by_a_rejected_one(ledger, ev):
    engine = ledger("inactivity")
    engine.process(ev.play("100", id="a1", at="2026-01-10"))  # 105, inactive from 04-10
    # a rejected redemption on 03-01 is no activity; an accepted one on 04-01 is
    assert engine.redeem("M1", 500, line="arcade", event_id="x1",
                         at=when("2026-03-01")).status == "rejected"
    assert engine.redeem("M1", 5, line="arcade", event_id="x2", at=when("2026-04-01")).accepted
    # 100 left (x2 took 5 of a1's 100-point lot), all of it expiring at 07-01 10:00
    assert balances(engine, "M1", "2026-06-30") == (100, 0)
    assert balances(engine, "M1", "2026-07-01") == (0, 0)
    assert engine.run_jobs(when("2026-07-02")).expired == 100
    last = engine.statement("M1").lines[-1]
    assert (last.kind, last.at, last.available, last.memo) == \
        ("expire", when("2026-07-01"), -100, "inactivity")


def test_points_pending_over_the_year_end_never_show_a_negative_balance(ledger, ev):
    engine = ledger("year_end", arcade=False)
    # 1000 + 200 pending from 12-28 until 2027-01-04, but they expire at 2027-01-01.
    engine.process(ev.purchase("1000", id="p1", at="2026-12-28"))
    assert balances(engine, "M1", "2027-01-02") == (0, 1200)
    engine.run_jobs(when("2027-01-10"))
    assert balances(engine, "M1", "2027-01-10") == (0, 0)
    assert engine.check_ledger().clean
    st = engine.statement("M1", since=when("2027-01-02"))
    # the statement agrees with the member as of the same time ...
    assert (st.opening_available, st.opening_pending) == (0, 1200)
    # ... and never shows a balance below 0 for a member who owes nothing
    assert all(ln.balance >= 0 for ln in engine.statement("M1").lines)


# --- tiers -------------------------------------------------------------------------------


def test_an_anniversary_review_drops_one_tier_at_most(ledger, ev):
    engine = ledger(arcade=False)
    engine.enrol({"id": "G1", "enrolled_on": "2025-06-15"})
    engine.enrol({"id": "G2", "enrolled_on": "2025-06-15"})
    for member in ("G2", "G1"):
        r = engine.process(ev.purchase("80000", id=f"{member}-p1", member=member,
                                       at="2026-03-02"))
        assert (r.tier_before, r.tier_after) == ("member", "gold")
        assert any(isinstance(e, TierChange) and e.to_tier == "gold" for e in r.effects)
    # G2, lazily: its next event after the 2027-06-15 review finds it already silver (no
    # spend in Jun 2026 - May 2027: gold would fall to member, the soft landing stops it
    # one rung down).
    r = engine.process(ev.purchase("100", id="G2-p2", member="G2", at="2027-07-01"))
    assert (r.tier_before, r.tier_after) == ("silver", "silver")

    # G1, by the jobs. 2026-06-15: the window Jun 2025 - May 2026 holds the 80000 -> kept.
    assert engine.run_jobs(when("2026-07-01")).moves == []
    assert engine.member("G1", at=when("2026-07-01")).tier == "gold"
    jobs = engine.run_jobs(when("2027-07-01"))
    assert [(m.member, m.on.isoformat(), m.from_tier, m.to_tier) for m in jobs.moves] == [
        ("G1", "2027-06-15", "gold", "silver")]
    assert engine.member("G1", at=when("2027-07-01")).tier == "silver"
    assert engine.run_jobs(when("2027-07-01")).moves == []  # idempotent
    # 2028-06-15: silver falls to member for both (G2's 100 is far below silver's retain)
    jobs = engine.run_jobs(when("2028-07-01"))
    assert sorted((m.member, m.from_tier, m.to_tier) for m in jobs.moves) == [
        ("G1", "silver", "member"), ("G2", "silver", "member")]

    for member in ("G1", "G2"):
        history = engine.tier_history(member)
        assert [(h["from_tier"], h["to_tier"], h["reason"]) for h in history] == [
            ("member", "gold", "upgrade"), ("gold", "silver", "review"),
            ("silver", "member", "review")], member
        assert history[0]["event_id"] == f"{member}-p1"
        # reviews are dated at midnight Shanghai of the anniversary
        assert [h["at"] for h in history[1:]] == ["2027-06-14T16:00:00+00:00",
                                                  "2028-06-14T16:00:00+00:00"]
    assert engine.check_ledger().clean


def test_a_manual_tier_holds_through_reviews_until_it_ends_then_is_judged_again(ledger, ev):
    engine = ledger(arcade=False)
    engine.enrol({"id": "H1", "enrolled_on": "2025-06-15"})
    engine.process(ev.purchase("100", id="h1", member="H1", at="2026-03-02"))
    until = datetime.fromisoformat("2026-09-01T12:00:00+08:00")
    engine.assign_tier("H1", "gold", reason="VIP guest of the hotel", until=until,
                       at=when("2026-03-10"))
    assert engine.member("H1", at=when("2026-03-11")).tier == "gold"
    # the 2026-06-15 review would drop H1 (100 spent), but the manual tier holds
    assert engine.run_jobs(when("2026-07-01")).moves == []
    r = engine.process(ev.purchase("100", id="h2", member="H1", at="2026-08-01"))
    assert (r.tier_before, r.tier_after) == ("gold", "gold")
    # gold earns 25% more: 100 + 25
    assert r.pending_points == 125
    # the manual tier is over: judged like everyone else, soft landing included
    jobs = engine.run_jobs(when("2026-09-02"))
    assert [(m.from_tier, m.to_tier) for m in jobs.moves] == [("gold", "silver")]
    assert engine.member("H1", at=when("2026-09-02")).tier == "silver"
    assert engine.run_jobs(when("2026-09-02")).moves == []
    jobs = engine.run_jobs(when("2027-07-01"))  # anniversary 2027-06-15
    assert [(m.from_tier, m.to_tier) for m in jobs.moves] == [("silver", "member")]

    history = engine.tier_history("H1")
    assert [(h["from_tier"], h["to_tier"], h["reason"]) for h in history] == [
        ("member", "gold", "manual"), ("gold", "silver", "manual-expired"),
        ("silver", "member", "review")]
    assert history[0]["detail"] == "VIP guest of the hotel"
    assert utc(history[0]["valid_until"]) == until
    assert utc(history[0]["at"]) == when("2026-03-10")
    assert utc(history[1]["at"]).astimezone(until.tzinfo).date() == until.date()


def test_a_manual_tier_holds_until_its_end_time_not_until_the_start_of_that_day(ledger, ev):
    engine = ledger(arcade=False)
    engine.process(ev.purchase("100", id="h1", member="H1", at="2026-03-02"))
    until = datetime.fromisoformat("2026-09-01T12:00:00+08:00")
    engine.assign_tier("H1", "gold", reason="VIP", until=until, at=when("2026-03-10"))
    r = engine.process(ev.purchase("100", id="h2", member="H1",
                                   at="2026-09-01T09:00:00+08:00"))
    assert r.tier_before == "gold"  # three hours before the manual tier ends
    history = engine.tier_history("H1")
    assert all(utc(h["at"]) >= until for h in history if h["reason"] == "manual-expired")


def test_a_manual_tier_needs_a_known_tier_a_reason_and_an_end(ledger):
    engine = ledger(arcade=False)
    at = when("2026-03-10")
    with pytest.raises(ConfigurationError, match="unknown tier"):
        engine.assign_tier("H1", "platinum", reason="x", until=when("2026-09-01"), at=at)
    with pytest.raises(ConfigurationError, match="reason"):
        engine.assign_tier("H1", "gold", reason="  ", until=when("2026-09-01"), at=at)
    with pytest.raises(ConfigurationError, match="end time"):
        engine.assign_tier("H1", "gold", reason="x", until=when("2026-03-01"), at=at)
    with pytest.raises(ConfigurationError, match="end time"):
        engine.assign_tier("H1", "gold", reason="x", until=datetime(2026, 9, 1), at=at)
    assert engine.tier_history("H1") == []
