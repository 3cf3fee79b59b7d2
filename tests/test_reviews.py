"""Tier reviews: downgrades only at a review, retain thresholds, soft landing."""

from __future__ import annotations

from datetime import date

from loyaltycore.dryrun import dry_run
from loyaltycore.reviews import ReviewMove, month_before, review_dates
from tests.plugins import support


def test_review_dates_anniversary_and_calendar():
    engine = support.open_real()
    policy = engine.rulebook.groups[0].policy
    assert review_dates(policy, date(2025, 6, 15), date(2026, 2, 1), date(2027, 7, 1)) == [
        date(2026, 6, 15), date(2027, 6, 15)]
    assert review_dates(policy, date(2024, 2, 29), date(2025, 1, 1), date(2025, 12, 31)) == [
        date(2025, 2, 28)]
    assert review_dates(policy, None, date(2025, 1, 1), date(2026, 1, 1)) == []
    calendar = policy.model_copy(update={"review": policy.review.model_copy(
        update={"schedule": "calendar", "month": 4})})
    assert review_dates(calendar, None, date(2025, 4, 1), date(2027, 4, 1)) == [
        date(2026, 4, 1), date(2027, 4, 1)]
    assert month_before(date(2026, 1, 15)) == (2025, 12)


def test_a_silver_member_keeps_the_tier_while_retained_then_drops(ev):
    engine = support.open_real()
    engine.enrol({"id": "M1", "enrolled_on": "2025-06-15"})
    assert engine.process(ev.purchase("20000", at="2026-02-10")).tier_after == "silver"
    # Review on 2026-06-15 judges Jun 2025 - May 2026: 20,000 spend >= retain 15,000.
    r = engine.process(ev.purchase("100", at="2026-07-01"))
    assert r.tier_before == "silver"
    # Review on 2027-06-15 judges Jun 2026 - May 2027: 100 spend; silver is lost.
    r = engine.process(ev.purchase("100", at="2027-06-20"))
    assert r.tier_before == "member"
    assert engine.state.review_log == [ReviewMove("M1", date(2027, 6, 15), "silver", "member")]


def test_soft_landing_drops_one_tier_per_review(ev):
    engine = support.open_real()
    engine.enrol({"id": "M1", "enrolled_on": "2023-09-09", "tier": "gold"})
    engine.process(ev.purchase("3000", at="2026-03-10"))
    assert engine.process(ev.purchase("10", at="2026-09-10")).tier_before == "silver"
    assert engine.process(ev.purchase("10", at="2027-09-10")).tier_before == "member"
    assert [(m.on, m.from_tier, m.to_tier) for m in engine.state.review_log] == [
        (date(2026, 9, 9), "gold", "silver"), (date(2027, 9, 9), "silver", "member")]


def test_no_review_for_history_the_engine_never_saw(ev):
    engine = support.open_real()
    engine.enrol({"id": "M1", "enrolled_on": "2020-01-05", "tier": "gold"})
    # Anniversaries 2021 .. 2026-01-05 all precede the member's first event here.
    assert engine.process(ev.purchase("10", at="2026-03-01")).tier_before == "gold"
    assert engine.state.review_log == []


def test_dry_run_reports_review_moves_at_the_end_of_the_stream(ev):
    engine = support.open_real()
    engine.enrol({"id": "M1", "enrolled_on": "2025-06-15"})
    engine.enrol({"id": "M2", "enrolled_on": "2025-01-10"})
    raw = [ev.purchase("20000", at="2026-02-10", member="M1"),
           ev.purchase("50", at="2027-08-01", member="M2")]
    parsed = [engine.parse_event(e) for e in raw]
    result = dry_run(engine, list(enumerate(parsed, 1)))
    # M1 was reviewed at 2026-06-15 (kept silver) and 2027-06-15 (dropped): it has no event
    # after that, so the end-of-stream pass ran the reviews.
    assert {"from": "silver", "to": "member", "count": 1, "reason": "review"} in \
        result.summary["tier_moves"]
    assert engine.state.review_log == []  # the dry-run ran on a fork
