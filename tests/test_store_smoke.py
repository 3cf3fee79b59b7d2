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
