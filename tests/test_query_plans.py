"""Processing an event reads the store by key, never by scanning a table: the cost of an
event must not grow with the size of the ledger.

SQLite plans a query without statistics (nobody runs ANALYZE on a loyalty file), so a
query that joins several tables can start from the wrong one. This records every statement
``process_many`` sends to a SQLite store while a synthetic group's months go through it
(earns, refunds, redemptions and their cancellations, holds and their captures), and asks
SQLite how it would run each one.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from sqlalchemy import event

from loyaltycore import Engine
from loyaltycore.synthetic import generate

RULESETS = Path(__file__).resolve().parent.parent / "rulesets"
ALL_LINES = "retail,hotel,property,entertainment"

# Indexes whose leading column is not a member or a key: a search through one reads rows
# of every member (ix_lot_moves_kind_at serves the settlement report, by kind and period).
NOT_PER_MEMBER = ("ix_lot_moves_kind_at",)


def _bad_steps(plan: list[str]) -> list[str]:
    bad = []
    for step in plan:
        scan = re.match(r"SCAN (\S+)", step)
        # Scanning the batch's own keys (a VALUES list or the CTE made of it) is the point.
        if scan and "CONSTANT ROW" not in step and scan.group(1) != "wanted":
            bad.append(step)
        elif any(name in step for name in NOT_PER_MEMBER):
            bad.append(step)
    return bad


def test_processing_reads_by_key_and_never_scans(tmp_path, monkeypatch):
    monkeypatch.setenv("LOYALTY_PLUGINS", ALL_LINES)
    profiles, events = generate(80, 6, seed=5)
    # Small batches and no members kept between them: each batch loads its members afresh,
    # with what their events refer to (a redemption a cancellation gives back, open holds).
    engine = Engine.open(RULESETS, db=tmp_path / "plans.db", keep_members=0)
    engine.enrol_many(profiles)
    statements: dict[str, tuple] = {}

    @event.listens_for(engine.store.engine, "before_cursor_execute")
    def _record(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "WITH", "UPDATE", "DELETE")):
            statements.setdefault(statement, params[0] if executemany else params)

    engine.process_many(events, batch_size=25)
    event.remove(engine.store.engine, "before_cursor_execute", _record)

    kinds = Counter(e["type"] for e in events)
    # the paths that load an earlier event's spending and open holds were exercised
    assert kinds["cancel_redemption"] and kinds["capture_reservation"], kinds
    assert any("JOIN lot_moves" in s for s in statements)

    problems = {}
    with engine.store.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        for statement, params in statements.items():
            plan = [row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + statement,
                                                  params or ())]
            bad = _bad_steps(plan)
            if bad:
                problems[" ".join(statement.split())[:200]] = bad
    engine.close()
    assert problems == {}


def test_the_check_finds_a_scan(tmp_path):
    """The check above can fail: the query that read every move of a kind is caught."""
    engine = Engine.open(RULESETS, db=tmp_path / "plans.db")
    with engine.store.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        plan = [row[3] for row in raw.execute(
            "EXPLAIN QUERY PLAN SELECT m.lot_id FROM entries e JOIN lot_moves m "
            "ON m.entry_id = e.id WHERE e.member_id = ? AND e.event_id = ? AND m.kind = ?",
            ("m", "e", "redeem"))]
        assert _bad_steps(plan), plan
        plan = [row[3] for row in raw.execute("EXPLAIN QUERY PLAN SELECT * FROM lots")]
        assert _bad_steps(plan) == ["SCAN lots"]
    engine.close()
