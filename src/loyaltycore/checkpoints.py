"""Checkpoints of a SQLite file's write-ahead log, from a thread of their own.

In WAL mode a commit appends the transaction's pages to the log; a *checkpoint* copies
them back into the database file and syncs it to disk. SQLite runs one inside the commit
that takes the log past ``wal_autocheckpoint`` pages, so every few batches one writer's
commit waits for a copy of tens of megabytes and two fsyncs: at 10^4 members and more,
where each event dirties its own B-tree pages, that was most of what a commit cost, and
what grew with the size of the program.

SQLite's documentation suggests the alternative used here: the writer's connection
leaves checkpoints to another connection, which runs them from a background thread
(``PRAGMA wal_checkpoint(PASSIVE)``: it never blocks the writer or readers; it copies the
frames no reader still needs, and the writer starts the log again from its beginning
once all were copied). Python's sqlite3 releases the GIL while SQLite works, so the copy
and the fsyncs overlap the next batch's Python on the other core.

Durability is unchanged: the same checkpoints, the same syncs (``synchronous=NORMAL``:
a commit survives a killed process; an OS crash or power loss can lose the last ones).
The writer keeps SQLite's own checkpoint as a backstop, at a log several times larger,
in case this thread falls behind or is not running (another process writing the file).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

#: run a checkpoint at most this often: each copies every page written since the last
#: one once, however often it was written, so fewer checkpoints copy fewer pages
CHECKPOINT_INTERVAL_S = 1.0


class Checkpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on the SQLite file ``path`` from a daemon
    thread, after commits (:meth:`committed`) and at most every ``interval`` seconds."""

    def __init__(self, path: str, *, interval: float = CHECKPOINT_INTERVAL_S):
        # resolved now: the process may change directory before the thread connects
        self.path = str(Path(path).resolve())
        self.interval = interval
        self.runs = 0  # checkpoints run (for tests and benchmarks)
        self.errors: list[str] = []  # what failed, kept rather than raised in a thread
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"checkpoints of {path}",
                                        daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """A write transaction on the file committed: there are frames to copy."""
        self._wake.set()

    def close(self) -> None:
        """Stop the thread (closing the last connection checkpoints what is left)."""
        self._stop.set()
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        conn = None
        try:
            while True:
                self._wake.wait()
                if self._stop.is_set():
                    return
                self._wake.clear()
                started = time.monotonic()
                try:
                    if conn is None:  # after a commit: the file exists and is in WAL mode
                        # mode=rw: never create a file; this thread alone uses it
                        conn = sqlite3.connect(Path(self.path).as_uri() + "?mode=rw",
                                               uri=True, timeout=5, isolation_level=None)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.runs += 1
                except sqlite3.Error as exc:  # kept, and tried again after the next commit;
                    # meanwhile the writer's own checkpoints (the backstop) carry on
                    self.errors.append(str(exc))
                    del self.errors[:-10]
                    if conn is not None:
                        conn.close()
                        conn = None
                # Commits that come meanwhile wait for the next run: one run then copies
                # the pages of several batches, each page once.
                if self._stop.wait(max(0.0, self.interval - (time.monotonic() - started))):
                    return
        finally:
            if conn is not None:
                conn.close()
