"""Background checkpoints of a SQLite ledger (loyaltycore.checkpoints).

What is observable from outside: after a commit, the database file itself (without its
write-ahead log) comes to hold the committed events, although the log is far below the
size at which the writer's own commit would have copied it; with
``LOYALTY_SQLITE_CHECKPOINTS=commit`` (the writer checkpoints, as SQLite does by default)
it does not. Durability across a killed process is tested with the rest of the crash
tests (tests/test_ledger_crash.py), which run with background checkpoints on.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from loyaltycore import Engine
from plugins import support

REPO = Path(__file__).resolve().parent.parent

WRITE_AND_WAIT = """
import shutil, sqlite3, sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from loyaltycore import Engine
from plugins import support
db = Path({db!r})
engine = Engine.open([{rulesets!r}], plugins=[support.RETAIL], load_entrypoints=False,
                     db=str(db))
engine.process_many([{{"id": f"p-{{i}}", "line": "retail", "type": "purchase",
                      "member": f"M{{i % 7}}", "occurred_at": "2026-03-04T12:00:00+08:00",
                      "amount": "100.00", "currency": "CNY",
                      "data": {{"store": "S1", "category": "fashion"}}}} for i in range(40)])
copy = db.with_name("file-alone.db")
deadline = time.monotonic() + 10
while True:
    # the database file alone, as a copy without its log would see it
    shutil.copyfile(db, copy)
    try:
        n = sqlite3.connect(copy).execute("SELECT count(*) FROM events").fetchone()[0]
    except sqlite3.DatabaseError:
        n = 0
    if n == 40 or time.monotonic() > deadline:
        break
    time.sleep(0.05)
print(n)
engine.close()
"""


def _events_in_file_alone(tmp_path: Path, mode: str) -> int:
    script = WRITE_AND_WAIT.format(tests=str(REPO / "tests"), db=str(tmp_path / "l.db"),
                                  rulesets=str(REPO / "rulesets"))
    env = {**os.environ, "LOYALTY_SQLITE_CHECKPOINTS": mode}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, check=True, timeout=120)
    return int(out.stdout.strip().splitlines()[-1])


def test_the_database_file_catches_up_with_commits_in_the_background(tmp_path):
    assert _events_in_file_alone(tmp_path, "background") == 40


def test_without_the_thread_the_log_keeps_the_commits_until_it_is_large(tmp_path):
    # the control: the same 40 events stay in the log (far below wal_autocheckpoint)
    assert _events_in_file_alone(tmp_path, "commit") == 0


def test_closing_the_engine_stops_the_thread_and_leaves_a_complete_file(tmp_path):
    db = tmp_path / "l.db"
    engine = Engine.open([REPO / "rulesets"], plugins=[support.RETAIL],
                         load_entrypoints=False, db=str(db))
    checkpointer = engine.store.checkpointer
    assert checkpointer is not None and checkpointer._thread.is_alive()
    engine.process({"id": "p-1", "line": "retail", "type": "purchase", "member": "M1",
                    "occurred_at": "2026-03-04T12:00:00+08:00", "amount": "100.00",
                    "currency": "CNY", "data": {"store": "S1", "category": "fashion"}})
    engine.close()
    assert not checkpointer._thread.is_alive()
    assert checkpointer.errors == []
    # the last connection closed: the log is gone and the file holds everything
    assert not Path(str(db) + "-wal").exists()
    shutil.copyfile(db, tmp_path / "copy.db")
    assert sqlite3.connect(tmp_path / "copy.db").execute(
        "SELECT count(*) FROM events").fetchone()[0] == 1
