#!/usr/bin/env python3
"""A digest of everything the per-event path produces, to prove a speed change changes
nothing: run it before and after (``PYTHONHASHSEED=0``) and compare the lines it prints.

    PYTHONHASHSEED=0 .venv/bin/python bench/digest_state.py [--events 6000] [--members 500]

Each line is ``name sha256``, over the repr of:

- ``bench-a``: path A of bench/decide.py (parse, advance, _decide, receipt_of, apply) on the
  bench stream: every receipt, the journal (entries and raw rows), every member (its kept
  receipts unpacked; fingerprints left out, as they hash a class by its address);
- ``bench-process``: ``Engine.process`` on the same stream (reviews included), then every
  7th event again (the resubmission's receipt), then the jobs at the end of the year;
- ``bench-explain``: ``process(explain=True)`` on the first third of the stream;
- ``bench-dryrun``: ``Engine.dry_run`` on the stream (every outcome's receipt);
- ``demo-memory``: the demo's synthetic group (holds, redemptions, cancellations,
  refunds) through ``process_many`` in memory, with the jobs at each month's end;
- ``demo-sqlite``: the same group through ``run_demo`` into a SQLite store: every row of
  every table (but the wall-clock ``processed_at``), sorted.
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import sys
import tempfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from decide import open_engine, run_a  # noqa: E402
from synth import make_events, make_members  # noqa: E402

from loyaltycore.engine import Engine, receipt_of  # noqa: E402

CST = timezone(timedelta(hours=8))


class Digest:
    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.n = 0

    def add(self, obj: object) -> None:
        self.h.update(repr(obj).encode())
        self.h.update(b"\n")
        self.n += 1


def state_into(d: Digest, state) -> None:
    d.add(list(state.journal))
    d.add(state.journal._rows)
    d.add(state.tier_history)
    d.add(state.review_log)
    for mid in sorted(state.members):
        m = state.members[mid]
        seen = {eid: state.receipt_of_seen(m, eid, s) for eid, s in m.seen.items()}
        saved = m.seen
        m.seen = {}
        try:
            d.add(m)
        finally:
            m.seen = saved
        d.add(sorted(seen.items()))


def bench_a(profiles, raws) -> Digest:
    d = Digest()
    engine = open_engine(profiles)
    parse, decide, state = engine.schema.parse, engine._decide, engine.state
    receipts = []
    for raw in raws:
        ev = parse(raw)
        state.advance(ev.member, ev.occurred_at)
        decision = decide(ev, False)
        receipt = receipt_of(decision)
        receipts.append(receipt)
        state.apply(decision, receipt)
    d.add(receipts)
    state_into(d, engine.state)
    # run_a itself (the timed loop) must leave the same state
    twin = open_engine(profiles)
    run_a(twin, raws)
    state_into(d, twin.state)
    return d


def bench_process(profiles, raws) -> Digest:
    d = Digest()
    engine = open_engine(profiles)
    for raw in raws:
        d.add(engine.process(raw))
    for raw in raws[::7]:
        d.add(engine.process(raw))
    report = engine.run_jobs(datetime(2026, 12, 31, 23, 59, tzinfo=CST))
    d.add(report)
    state_into(d, engine.state)
    return d


def bench_explain(profiles, raws) -> Digest:
    d = Digest()
    engine = open_engine(profiles)
    for raw in raws[: len(raws) // 3]:
        d.add(engine.process(raw, explain=True))
    state_into(d, engine.state)
    return d


def bench_dryrun(profiles, raws) -> Digest:
    d = Digest()
    engine = open_engine(profiles)
    result = engine.dry_run(raws)
    for o in result.outcomes:
        d.add(o.receipt)
    return d


def demo_events(members: int, months: int):
    from loyaltycore.synthetic import generate

    return generate(members, months, seed=11, start=date(2026, 1, 1))


def demo_memory(profiles, events, months: int) -> Digest:
    d = Digest()
    engine = Engine.open(None, load_entrypoints=True)
    engine.enrol_many(profiles)
    tz = engine.rulebook.groups[-1].tz
    by_month: dict[int, list] = {}
    for ev in events:
        at = datetime.fromisoformat(str(ev["occurred_at"])).astimezone(tz)
        by_month.setdefault(min(at.month - 1, months - 1), []).append(ev)
    for k in range(months):
        for r in engine.process_many(by_month.get(k, [])):
            d.add(r)
        end = datetime(2026, k + 2, 1, tzinfo=tz) - timedelta(microseconds=1)
        d.add(engine.run_jobs(end))
    state_into(d, engine.state)
    return d


def demo_sqlite(profiles, events, months: int) -> Digest:
    from loyaltycore.demo import run_demo

    d = Digest()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo.db"
        engine = Engine.open(None, load_entrypoints=True, db=path)
        run_demo(engine, profiles, events, months, start=date(2026, 1, 1))
        engine.close()
        conn = sqlite3.connect(path)
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        for t in tables:
            if t == "alembic_version":
                continue
            # processed_at is the wall clock
            cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')
                    if r[1] != "processed_at"]
            names = ", ".join(f'"{c}"' for c in cols)
            rows = conn.execute(f'SELECT {names} FROM "{t}"').fetchall()  # noqa: S608
            d.add((t, sorted(rows, key=repr)))
        conn.close()
    return d


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=6000)
    ap.add_argument("--members", type=int, default=500)
    ap.add_argument("--demo-members", type=int, default=150)
    ap.add_argument("--demo-months", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated names to run")
    args = ap.parse_args(argv)
    profiles = make_members(args.members)
    raws = make_events(args.events, members=args.members, seed=20260101)
    runs = {
        "bench-a": lambda: bench_a(profiles, raws),
        "bench-process": lambda: bench_process(profiles, raws),
        "bench-explain": lambda: bench_explain(profiles, raws),
        "bench-dryrun": lambda: bench_dryrun(profiles, raws),
    }
    demo = None

    def need_demo():
        nonlocal demo
        if demo is None:
            demo = demo_events(args.demo_members, args.demo_months)
        return demo

    runs["demo-memory"] = lambda: demo_memory(*need_demo(), args.demo_months)
    runs["demo-sqlite"] = lambda: demo_sqlite(*need_demo(), args.demo_months)
    only = {s for s in args.only.split(",") if s}
    for name, fn in runs.items():
        if only and name not in only:
            continue
        d = fn()
        print(f"{name} {d.n} {d.h.hexdigest()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
