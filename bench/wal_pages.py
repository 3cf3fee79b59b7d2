#!/usr/bin/env python3
"""Which B-trees of a SQLite ledger one event writes, counted from the write-ahead log.

    .venv/bin/python bench/wal_pages.py [--members 10000] [--events 5000]
                                        [--batch-size 500] [--json]

Runs the demo's synthetic group (rulesets/ and the installed line plugins, seed 7) for two
months into a fresh SQLite file, so that every table is as deep as a program of that size
makes it, checkpoints the log, then processes the first ``--events`` events of the third
month with ``process_many(batch_size=...)`` and automatic checkpoints off, so the log
keeps every page image each commit wrote. Each log frame names its page; ``dbstat`` names
the table or index a page belongs to. Printed per event: log frames (page images written:
each is written again at the next checkpoint), distinct pages, and both per B-tree.

Frames per event is what grows with the size of a program on SQLite: at 10^3 members the
events of a batch share pages, at 10^4 and more each event's rows land on pages of their
own. It is a count, not a timing: the same on a busy machine as on a quiet one. The time
per event is printed too, for scale.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sqlite3
import struct
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def wal_frames(wal: Path) -> collections.Counter[int]:
    """How many frames (page images) the log holds for each page number."""
    data = wal.read_bytes()
    page = struct.unpack(">I", data[8:12])[0]
    frames: collections.Counter[int] = collections.Counter()
    pos = 32  # the log header; then each frame: a 24-byte header and the page
    while pos + 24 + page <= len(data):
        frames[struct.unpack(">I", data[pos:pos + 4])[0]] += 1
        pos += 24 + page
    return frames


def measure(members: int, events: int, batch_size: int) -> dict:
    import loyaltycore.schema as schema

    schema.SQLITE_CHECKPOINTS = "commit"  # no checkpoint thread either
    schema.SQLITE_CHECKPOINT_BYTES = 1 << 40  # the log keeps every frame
    from loyaltycore import Engine
    from loyaltycore.demo import SyntheticGroup
    from loyaltycore.store import KEEP_MEMBERS

    with tempfile.TemporaryDirectory(prefix="wal-pages-") as tmp:
        db = Path(tmp) / "ledger.db"
        engine = Engine.open(REPO / "rulesets", db=str(db),
                             keep_members=max(KEEP_MEMBERS, members))
        try:
            with SyntheticGroup(members, 3, 7, workdir=tmp) as group:
                group.simulate()
                engine.enrol_many(group.profiles)
                months = group.months()
                for _ in range(2):
                    engine.process_many(list(next(months).events()), batch_size=batch_size)
                sample = list(next(months).events())[:events]
            raw = sqlite3.connect(db, isolation_level=None)
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            raw.close()
            wall, cpu = time.perf_counter(), time.process_time()
            engine.process_many(sample, batch_size=batch_size)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            frames = wal_frames(Path(str(db) + "-wal"))
            with sqlite3.connect(db) as conn:
                page_size = conn.execute("PRAGMA page_size").fetchone()[0]
                owner = dict(conn.execute("SELECT pageno, name FROM dbstat"))
        finally:
            engine.close()
    n = len(sample)
    by_tree: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for page, count in frames.items():
        tree = by_tree[owner.get(page, "(freed)")]
        tree[0] += count
        tree[1] += 1
    return {"members": members, "events": n, "batch_size": batch_size,
            "page_size": page_size,
            "frames_per_event": round(sum(frames.values()) / n, 2),
            "distinct_pages_per_event": round(len(frames) / n, 2),
            "kib_logged_per_event": round(sum(frames.values()) * page_size / 1024 / n, 1),
            "us_per_event": round(wall / n * 1e6), "cpu_us_per_event": round(cpu / n * 1e6),
            "trees": {name: {"frames_per_event": round(f / n, 2),
                             "distinct_per_event": round(d / n, 2)}
                      for name, (f, d) in sorted(by_tree.items(), key=lambda kv: -kv[1][0])}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, default=10_000)
    ap.add_argument("--events", type=int, default=5_000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("LOYALTY_PLUGINS", "retail,hotel,property,entertainment")
    r = measure(args.members, args.events, args.batch_size)
    if args.json:
        print(json.dumps(r, indent=1))
        return 0
    print(f"{r['members']:,} members, {r['events']:,} events in batches of {r['batch_size']}, "
          f"{r['page_size']} B pages: {r['frames_per_event']} log frames per event "
          f"({r['kib_logged_per_event']} KiB), {r['distinct_pages_per_event']} distinct "
          f"pages per event; {r['us_per_event']} us per event ({r['cpu_us_per_event']} CPU)")
    print(f"  {'B-tree':<36} {'frames/event':>12} {'distinct/event':>15}")
    for name, t in r["trees"].items():
        if t["frames_per_event"] >= 0.01:
            print(f"  {name:<36} {t['frames_per_event']:>12.2f} {t['distinct_per_event']:>15.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
