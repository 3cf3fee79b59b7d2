"""A ``loyalty process`` killed part-way, then run again on the same file, ends exactly
where one uninterrupted run ends.

The file holds a few thousand retail purchases, refunds of earlier purchases and
redemptions (some of which overdraw and are rejected), plus a few unreadable lines. The
first run is SIGKILLed once some batches have committed (the test polls the events table)
and before all of them have; it is then run again to completion. Afterwards every valid
event is stored exactly once, the ledger (members, lots, entries, postings, refund facts,
counters, buckets, rejects) equals that of a single run into a fresh database, the
command counts what that run counts (reporting the events the killed run had committed as
duplicates), a third run changes nothing, and ``loyalty ledger check`` is clean.

On SQLite and PostgreSQL. If the kill comes too late (the run already finished) the test
starts over with a fresh database and a file twice as long: it never skips.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from loyaltycore.cli import cli
from loyaltycore.schema import database_url
from plugins import support

BATCH = 50
EVENTS = 3000
LOYALTY = Path(sys.executable).parent / "loyalty"
CST = timezone(timedelta(hours=8))
START = datetime(2026, 1, 1, tzinfo=CST)
INVALID = [  # (position in the file, line): unreadable input the command must keep once
    (7, '{"id": "bad-1", "line": "retail", "type": "purchase"'),
    (501, json.dumps({"id": "bad-2", "line": "retail", "type": "teleport", "member": "M000",
                      "occurred_at": "2026-02-01T10:00:00+08:00"})),
    (1203, json.dumps({"id": "bad-3", "line": "retail", "type": "purchase", "member": "M001",
                       "occurred_at": "2026-02-01T10:00:00", "amount": "10.00",
                       "currency": "CNY", "data": {"store": "S1", "category": "home"}})),
]


def make_events(n: int, members: int = 200, seed: int = 42) -> list[dict]:
    """Retail purchases, refunds of earlier purchases and redemptions, in time order."""
    rng = random.Random(seed)
    ev = support.Events()
    ids = [f"M{i:03d}" for i in range(members)]
    offsets = sorted(rng.random() * 180 * 86400 for _ in range(n))
    open_purchases: list[tuple[str, str, float]] = []
    out = []
    for i, off in enumerate(offsets):
        at = (START + timedelta(seconds=int(off))).isoformat()
        roll = rng.random()
        if roll < 0.10 and open_purchases:
            eid, member, amount = open_purchases.pop(rng.randrange(len(open_purchases)))
            refund = max(0.01, round(amount * rng.choice([1.0, 0.5, rng.random()]), 2))
            out.append(ev.refund(eid, f"{refund:.2f}", id=f"rf-{i:06d}", member=member, at=at,
                                 reason=rng.choice(["size", "damaged", ""])))
        elif roll < 0.30:
            out.append(ev.make(line="retail", type="redeem", id=f"rd-{i:06d}",
                               member=rng.choice(ids), at=at,
                               points=rng.choice([100, 200, 500, 1000, 2500]),
                               reference=f"till-{i}"))
        else:
            member = rng.choice(ids)
            amount = round(math.exp(rng.uniform(math.log(20), math.log(3000))), 2)
            kw = {}
            if rng.random() < 0.3:
                kw["channel"] = rng.choice(["app", "web"])
            if rng.random() < 0.1 and amount > 50:
                kw["parking_fee"] = "10.00"
            eid = f"pu-{i:06d}"
            out.append(ev.purchase(f"{amount:.2f}", id=eid, member=member, at=at,
                                   category=rng.choice(["beauty", "fashion", "home"]),
                                   store=f"S{rng.randrange(20):02d}", **kw))
            open_purchases.append((eid, member, amount))
    return out


def write_file(path: Path, n: int) -> int:
    """The JSONL file; returns the number of valid events in it."""
    lines = [json.dumps(e) for e in make_events(n)]
    for pos, bad in INVALID:
        lines.insert(min(pos, len(lines)), bad)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return n


def process_cmd(path: Path, url: str) -> list[str]:
    return [str(LOYALTY), "process", str(path), "--db", url, "--rulesets",
            str(support.RULESETS), "--batch-size", str(BATCH), "--format", "json"]


def run_env() -> dict[str, str]:
    env = dict(os.environ, LOYALTY_PLUGINS="retail")
    env.pop("LOYALTY_RULESETS", None)
    env.pop("LOYALTY_DB", None)
    return env


def run_to_end(path: Path, url: str) -> tuple[int, dict]:
    proc = subprocess.run(process_cmd(path, url), capture_output=True, text=True,
                          env=run_env(), cwd=path.parent, timeout=600)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc.returncode, json.loads(proc.stdout)


def stored_events(db, default: int = 0) -> int:
    try:
        with db.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM events")).scalar_one()
    except DBAPIError:  # not created yet (the run is still migrating)
        return default


def kill_part_way(path: Path, url: str, total: int) -> int | None:
    """Start the run, SIGKILL it once a few batches are in; the events stored at the
    kill, or None if the run finished first."""
    db = create_engine(database_url(url))
    proc = subprocess.Popen(process_cmd(path, url), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=run_env(), cwd=path.parent)
    try:
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            if stored_events(db) >= 2 * BATCH:
                break
            time.sleep(0.005)
        finished = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
        assert "Traceback" not in err, err[-3000:]
        if finished:
            return None
        assert proc.returncode == -signal.SIGKILL
        stored = stored_events(db, default=-1)
        return None if stored >= total else stored
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
        db.dispose()


LEDGER_QUERIES = {
    "members": "SELECT id, tier, available, pending, debt, has_events, merged_into "
               "FROM members ORDER BY id",
    "events": "SELECT member_id, event_id, fingerprint, status, points, reversed, "
              "refundable, receipt FROM events ORDER BY member_id, event_id",
    "entries": "SELECT id, member_id, kind, at, event_id, memo FROM entries ORDER BY id",
    "postings": "SELECT entry_id, seq, account, member_id, points FROM postings "
                "ORDER BY entry_id, seq",
    "lots": "SELECT id, member_id, points, remaining, status, available_from, entry_id "
            "FROM lots ORDER BY id",
    "moves": "SELECT entry_id, seq, lot_id, kind, points, issuer, to_line FROM lot_moves "
             "ORDER BY entry_id, seq",
    "counters": "SELECT member_id, name, period, value FROM counters "
                "ORDER BY member_id, name, period",
    "buckets": "SELECT member_id, month, credit, value FROM buckets "
               "ORDER BY member_id, month, credit",
    "activity": "SELECT member_id, month, line FROM activity ORDER BY member_id, month, line",
    "rejects": "SELECT source, line_no, member_id, event_id, reason, raw FROM rejects "
               "ORDER BY line_no",
    "tiers": "SELECT member_id, at, from_tier, to_tier, reason, event_id FROM tier_history "
             "ORDER BY member_id, at, from_tier, to_tier",
}


def ledger_state(url: str) -> dict[str, list[tuple]]:
    db = create_engine(database_url(url))
    try:
        with db.connect() as conn:
            return {name: [tuple(r) for r in conn.execute(text(q))]
                    for name, q in LEDGER_QUERIES.items()}
    finally:
        db.dispose()


def check_resumed_run(tmp_path: Path, new_db: Callable[[], str]) -> None:
    n = EVENTS
    for _attempt in range(5):
        path = tmp_path / f"events-{n}.jsonl"
        total = write_file(path, n)
        url = new_db()
        at_kill = kill_part_way(path, url, total)
        if at_kill is not None:
            break
        n *= 2  # too late: the run finished first; a longer file, a fresh database
    else:
        raise AssertionError("could not kill `loyalty process` part-way in 5 attempts")
    assert 0 < at_kill < total
    # A batch commits whole or not at all: what the killed run left is whole batches.
    assert at_kill % BATCH == 0, at_kill

    rc, summary = run_to_end(path, url)
    reference_url = new_db()
    ref_rc, ref_summary = run_to_end(path, reference_url)

    assert rc == ref_rc == 1  # the unreadable lines and overdrawing redemptions
    for key in ("events", "accepted", "rejected", "invalid"):
        assert summary[key] == ref_summary[key], key
    assert summary["events"] == total + len(INVALID)
    assert summary["invalid"] == len(INVALID)
    assert summary["rejected"] > 0 and summary["accepted"] > total // 2
    # What the killed run committed is answered from the ledger, not applied again.
    assert summary["summary"]["events"]["duplicates"] == at_kill
    assert ref_summary["summary"]["events"]["duplicates"] == 0

    state, reference = ledger_state(url), ledger_state(reference_url)
    events = state["events"]
    assert len(events) == total
    assert len({(m, e) for m, e, *_ in events}) == total
    assert len({e for _, e, *_ in events}) == total  # every event id stored exactly once
    assert sum(1 for row in events if row[3] == "accepted") == summary["accepted"]
    assert len(state["rejects"]) == len(INVALID)
    assert state["members"] and state["entries"] and state["lots"]
    assert any(kind == "redeem" for _, _, kind, *_ in state["entries"])
    assert any(kind == "reverse" for _, _, kind, *_ in state["entries"])
    for name in LEDGER_QUERIES:
        assert state[name] == reference[name], f"{name} differs from an uninterrupted run"

    # And once more: everything is a duplicate, nothing changes.
    again_rc, again = run_to_end(path, url)
    assert again_rc == rc
    assert again["summary"]["events"]["duplicates"] == total
    assert (again["accepted"], again["rejected"]) == (summary["accepted"], summary["rejected"])
    assert ledger_state(url) == state

    engine = support.open_db(url)
    try:
        assert engine.check_ledger().clean
    finally:
        engine.close()
    result = CliRunner().invoke(cli, ["ledger", "check", "--db", url,
                                      "--rulesets", str(support.RULESETS)])
    assert result.exit_code == 0, result.output
    assert "ledger is clean" in result.output


def test_killed_run_resumes_exactly_once_on_sqlite(tmp_path):
    count = iter(range(100))
    check_resumed_run(tmp_path, lambda: f"sqlite:///{tmp_path / f'db-{next(count)}.db'}")


@pytest.fixture
def pg_databases():
    """Fresh PostgreSQL schemas on demand, all dropped afterwards."""
    from plugins.support import PG_URL

    drops = []

    def new() -> str:
        url, drop = support.pg_schema(PG_URL)
        drops.append(drop)
        return url

    yield new
    for drop in drops:
        drop()


def test_killed_run_resumes_exactly_once_on_postgresql(tmp_path, pg_databases):
    check_resumed_run(tmp_path, pg_databases)


def test_event_file_has_what_the_crash_test_needs():
    events = make_events(EVENTS)
    kinds = {e["type"] for e in events}
    assert kinds == {"purchase", "refund", "redeem"}
    assert len({e["id"] for e in events}) == len(events)
    at = [datetime.fromisoformat(e["occurred_at"]).astimezone(UTC) for e in events]
    assert at == sorted(at)
