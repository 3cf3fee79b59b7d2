"""The store opens, migrates and round-trips an event on both databases."""

from datetime import UTC, datetime

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
