"""The store opens, migrates and round-trips an event on both databases."""

from datetime import UTC, date, datetime

from plugins import support


def test_process_twice_on_both_databases(db_url, ev):
    engine = support.open_db(db_url)
    first = engine.process(ev.purchase("1000", at="2026-03-02"))
    again = engine.process(ev.purchase("1000", id=first.event_id, at="2026-03-02"))
    assert again.model_dump(mode="json") == first.model_dump(mode="json")
    assert engine.member("M1", at=datetime(2026, 3, 5, tzinfo=UTC)).pending == 1200
    assert engine.member("M1").available == first.pending_points == 1200  # vested since
    assert engine.check_ledger().clean
    engine.close()


def test_dry_run_api_reads_the_database_and_writes_nothing(db_url, ev):
    engine = support.open_db(db_url)
    first = engine.process(ev.purchase("1000", at="2026-03-02"))
    before = engine.statement("M1")
    result = engine.dry_run([ev.purchase("1000", id=first.event_id, at="2026-03-02"),
                             ev.purchase("500", at="2026-03-20")])
    # the resubmission is recognised from the database; the new purchase earns without
    # the first-purchase bonus (the member is not new there): 500 base, vested by then
    assert [o.duplicate for o in result.outcomes] == [True, False]
    assert result.outcomes[1].receipt.pending_points == 500
    assert engine.statement("M1") == before
    engine.close()


def test_member_view_says_until_when_the_tier_holds(db_url, ev):
    engine = support.open_db(db_url)
    engine.enrol({"id": "M1", "enrolled_on": "2025-06-10"})
    engine.process(ev.purchase("25000", at="2026-03-02"))  # spend 25000 >= 20000: silver
    april = datetime(2026, 4, 1, tzinfo=UTC)
    view = engine.member("M1", at=april)
    # anniversary reviews: the next one is on 10 June, the enrolment anniversary
    assert (view.tier, view.tier_valid_until) == ("silver", date(2026, 6, 10))
    engine.assign_tier("M1", "gold", reason="VIP guest", at=datetime(2026, 4, 2, tzinfo=UTC),
                       until=datetime(2026, 9, 1, tzinfo=UTC))
    view = engine.member("M1", at=datetime(2026, 4, 3, tzinfo=UTC))
    assert (view.tier, view.tier_valid_until) == ("gold", date(2026, 9, 1))
    assert engine.member("nobody", at=april).tier_valid_until is None
    assert [h["reason"] for h in engine.tier_history("M1")] == ["upgrade", "manual"]
    engine.close()


def test_the_migrations_build_exactly_the_tables_the_code_declares(db_url):
    """A database brought to the latest migration has every table, column and index of
    ``loyaltycore.tables`` and nothing else (a model change without its migration, or the
    reverse, fails here before it fails a user's upgrade)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from loyaltycore.store import Store
    from loyaltycore.tables import METADATA

    store = Store.open(db_url)
    try:
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            assert compare_metadata(context, METADATA) == []
    finally:
        store.close()


def test_text_that_needs_quoting_round_trips_through_the_batch_writes(db_url, ev):
    """Ids, references and reasons with quotes, backslashes, commas, braces, NULL-like
    words and non-ASCII go through the per-batch writes (PostgreSQL: array parameters)
    and come back as sent."""
    engine = support.open_db(db_url)
    odd = 'ev "1", {a}\\b NULL 积分'
    first = engine.process(ev.purchase("1000", id=odd, at="2026-03-02"))
    assert first.accepted and first.event_id == odd
    march_20 = datetime(2026, 3, 20, tzinfo=UTC)
    spent = engine.redeem("M1", 100, line="retail", event_id="r{1}", at=march_20,
                          reference="till 'A', \\ {B}")
    assert spent.accepted, spent.violations
    again = engine.process(ev.purchase("1000", id=odd, at="2026-03-02"))
    assert again.model_dump(mode="json") == first.model_dump(mode="json")
    spent_again = engine.redeem("M1", 100, line="retail", event_id="r{1}", at=march_20,
                                reference="till 'A', \\ {B}")
    assert spent_again.model_dump(mode="json") == spent.model_dump(mode="json")
    lines = engine.statement("M1").lines
    assert [(ln.kind, ln.event_id) for ln in lines] == [
        ("earn", odd), ("vest", None), ("vest", None), ("redeem", "r{1}")]  # 1000 + 200
    assert engine.member("M1", at=datetime(2026, 3, 21, tzinfo=UTC)).available == 1200 - 100
    assert engine.check_ledger().clean
    engine.close()
