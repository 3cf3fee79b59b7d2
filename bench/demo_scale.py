#!/usr/bin/env python3
"""How ``loyalty demo`` grows with the size of the group.

    .venv/bin/python bench/demo_scale.py [--sizes 1000,10000,100000] [--months 12]
                                         [--seed 7] [--json]

For each size, a fresh child process opens an engine on the repository's group policy
(rulesets/) with the installed line plugins, which bring their own rulesets, and a new SQLite
file in a temporary directory, and runs the whole demo as `loyalty demo` does
(loyaltycore.demo.run_synthetic: simulate the group, enrol, then a month at a time write the
month's events to a JSONL file, process them and run the jobs at the month's end; the report
with its ledger check). It prints wall time, CPU time, events, events/s (over processing
only) and peak memory per size, with the time per event so that linear growth shows as a
flat column.

Peak memory is the child's ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (peak resident
set size, generation and engine together): one child per size, so one size's peak cannot
hide another's. Resident pages include the pages of the SQLite file the store maps
(``mmap_size``), which are the operating system's file cache, not the process's own
memory; so the child also samples its anonymous resident memory (``RssAnon`` of
/proc/self/status, every 0.2 s) and reports the largest value as ``peak_anon_mb``. The events are never all in memory (one month at a time), so the peak
should grow far less than the number of events: what grows with the group is the members'
state, not the year. CPU time is the child's ``time.process_time()`` (user + system, also
shown apart: SQLite page reads of a database larger than its cache show as system time); on
a shared machine it is the steadier figure, wall time the one a user sees.

Enrolment is a small share of its own: ``Engine.enrol_many``, a transaction per 1,000
members (under a second for 10,000).

The quick form is ``--sizes 1000,10000``. 100,000 members is ~3.2 million events and a
database of ~11 GB: at the 500-2,000 events/s measured, an hour or more.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RULESETS = REPO / "rulesets"
ALL_LINES = "retail,hotel,property,entertainment"


class AnonPeak:
    """The largest ``RssAnon`` seen by a sampling thread (Linux; 0 elsewhere)."""

    def __init__(self, every: float = 0.2):
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.sample()

    def sample(self) -> None:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                        return
        except OSError:
            pass

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.sample()
        return self.peak_kb / 1024


def one(members: int, months: int, seed: int, rulesets: Path) -> dict:
    """Run the demo once, in this process, and measure it."""
    from loyaltycore import Engine
    from loyaltycore.demo import SyntheticGroup, run_synthetic
    from loyaltycore.store import KEEP_MEMBERS

    anon = AnonPeak()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix="demo-scale-") as tmp:
        db = Path(tmp) / "demo.db"
        # as `loyalty demo` does: it keeps every member between transactions
        engine = Engine.open(rulesets, db=str(db), keep_members=max(KEEP_MEMBERS, members))
        try:
            with SyntheticGroup(members, months, seed, workdir=tmp) as group:
                report = run_synthetic(engine, group, Path(tmp) / "demo-events.jsonl")
        finally:
            engine.close()
        db_bytes = sum(p.stat().st_size for p in Path(tmp).glob("demo.db*"))
        events_bytes = (Path(tmp) / "demo-events.jsonl").stat().st_size
    wall = time.perf_counter() - wall0
    seconds = {k: round(v, 2) for k, v in report.seconds.items() if k != "total"}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"members": members, "months": months, "events": report.events,
            "rejected": report.rejected, "wall_s": round(wall, 2),
            "cpu_s": round(time.process_time() - cpu0, 2),
            "cpu_user_s": round(usage.ru_utime, 2), "cpu_sys_s": round(usage.ru_stime, 2),
            "seconds": seconds,
            "events_per_s": report.events_per_s,
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "peak_anon_mb": round(anon.stop(), 1),
            "db_mb": round(db_bytes / 2**20, 1),
            "events_mb": round(events_bytes / 2**20, 1), "ledger_clean": report.ledger_clean}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000",
                    help="Member counts, comma-separated (quick form: 1000,10000).")
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rulesets", type=Path, default=RULESETS)
    ap.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child's size
    args = ap.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.months, args.seed, args.rulesets)))
        return
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    # The demo needs all four lines whatever the calling shell pins.
    env = {**os.environ, "LOYALTY_PLUGINS": ALL_LINES}
    rows = []
    for size in sizes:
        child = subprocess.run(
            [sys.executable, __file__, "--one", str(size), "--months", str(args.months),
             "--seed", str(args.seed), "--rulesets", str(args.rulesets)],
            env=env, capture_output=True, text=True, check=False)
        if child.returncode != 0:
            sys.exit(f"{size} members failed:\n{child.stderr}")
        rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
        if not args.json:
            _print_row(rows[-1], header=len(rows) == 1)
    if args.json:
        print(json.dumps({"months": args.months, "seed": args.seed,
                          "peak_memory": "ru_maxrss of one child process per size; "
                                         "peak_anon_mb: its largest RssAnon sampled",
                          "runs": rows}, indent=1))


def _print_row(r: dict, *, header: bool) -> None:
    if header:
        print(f"{'members':>8} {'events':>9} {'wall s':>8} {'cpu s':>8} {'sys s':>7} "
              f"{'events/s':>9} {'cpu us/event':>12} {'peak MB':>8} {'anon MB':>8} "
              f"{'db MB':>7}  clean  "
              "wall seconds by stage")
    per_event = r["cpu_s"] / r["events"] * 1e6 if r["events"] else 0
    stages = " ".join(f"{k}={v}" for k, v in r["seconds"].items())
    print(f"{r['members']:>8} {r['events']:>9} {r['wall_s']:>8.1f} {r['cpu_s']:>8.1f} "
          f"{r['cpu_sys_s']:>7.1f} {r['events_per_s']:>9} {per_event:>12.0f} "
          f"{r['peak_rss_mb']:>8.1f} {r['peak_anon_mb']:>8.1f} "
          f"{r['db_mb']:>7.1f}  {'yes' if r['ledger_clean'] else 'NO':<5}  {stages}",
          flush=True)


if __name__ == "__main__":
    main()
