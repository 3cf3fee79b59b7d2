#!/usr/bin/env python3
"""End-to-end dry-run rate over the bench lines and rules.

    .venv/bin/python bench/dryrun_rate.py [--events N] [--members N] [--json] [--no-cli]

Writes N synthetic events (bench/synth.py, seeded) as JSONL plus a members JSONL to a
temporary directory, then times:

  api  dryrun.read_events (JSON -> pydantic) + dryrun.dry_run (sort, fork, process every
       event, summarize) + report.dry_run_json(summary_only=True) + json.dumps, on an engine
       opened with the bench's in-process plugins (entry points off).
  cli  `loyalty dry-run FILE --rulesets bench/rulesets --members M --summary-only
       --format json` as a subprocess (wall clock, interpreter start-up included). The CLI
       only loads plugins through entry points, so the bench plugins are exposed through a
       throw-away ``*.dist-info/entry_points.txt`` in the temp dir on PYTHONPATH, with
       LOYALTY_PLUGINS naming only them (the installed retail plugin stays out). Nothing is
       installed into the venv. The CLI's summary must equal the API's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lines import ENTRY_POINTS, PLUGINS  # noqa: E402
from synth import make_events, make_members  # noqa: E402

from loyaltycore import dryrun, report  # noqa: E402
from loyaltycore.engine import Engine  # noqa: E402

RULESETS = HERE / "rulesets"
LOYALTY = Path(sys.executable).with_name("loyalty")


def write_inputs(tmp: Path, n: int, members: int) -> tuple[Path, Path]:
    events = tmp / "events.jsonl"
    people = tmp / "members.jsonl"
    with events.open("w") as fh:
        for ev in make_events(n, members=members):
            fh.write(json.dumps(ev, separators=(",", ":")) + "\n")
    with people.open("w") as fh:
        for p in make_members(members):
            fh.write(json.dumps(p) + "\n")
    return events, people


def api_run(events: Path, people: Path) -> tuple[float, dict, dict]:
    engine = Engine.open([RULESETS], plugins=PLUGINS, load_entrypoints=False)
    for profile in dryrun.read_members(people):
        engine.enrol(profile)
    t0 = time.perf_counter()
    valid, problems = dryrun.read_events(events, engine)
    t1 = time.perf_counter()
    result = dryrun.dry_run(engine, valid, problems=problems)
    t2 = time.perf_counter()
    out = json.dumps(report.dry_run_json(result, explain=False, summary_only=True), indent=1)
    t3 = time.perf_counter()
    phases = {"read_events_s": round(t1 - t0, 3), "dry_run_s": round(t2 - t1, 3),
              "report_s": round(t3 - t2, 3)}
    return t3 - t0, json.loads(out)["summary"], phases


def cli_env(tmp: Path) -> dict[str, str]:
    dist = tmp / "loyaltycore_bench_lines-0.0.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: loyaltycore-bench-lines\n"
                                   "Version: 0.0\n")
    (dist / "entry_points.txt").write_text(
        "[loyaltycore]\n" + "".join(f"{k} = {v}\n" for k, v in ENTRY_POINTS.items()))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp), str(HERE), env.get("PYTHONPATH", "")])
    env["LOYALTY_PLUGINS"] = ",".join(ENTRY_POINTS)
    return env


def cli_run(events: Path, people: Path, env: dict[str, str]) -> tuple[float, dict | None, str]:
    cmd = [str(LOYALTY), "dry-run", str(events), "--rulesets", str(RULESETS), "--members",
           str(people), "--summary-only", "--format", "json",
           "--rejects", str(events.with_suffix(".rejects.jsonl"))]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    dt = time.perf_counter() - t0
    if proc.returncode not in (0, 1):  # 1: some events rejected (expected)
        return dt, None, proc.stderr.strip()[-2000:]
    return dt, json.loads(proc.stdout)["summary"], ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--members", type=int, default=5_000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-cli", action="store_true", help="time the API path only")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="loyalty-dryrun-bench-") as d:
        tmp = Path(d)
        events, people = write_inputs(tmp, args.events, args.members)
        n = sum(1 for _ in events.open())
        api_s, api_summary, phases = api_run(events, people)
        result: dict = {
            "dry_run_events_per_s": round(n / api_s),
            "events": n, "members": args.members, "api_seconds": round(api_s, 3),
            "api_phases": phases, "accepted": api_summary["events"]["accepted"],
            "rejected": api_summary["events"]["rejected"],
            "python": sys.version.split()[0],
            "target_30000_met": n / api_s >= 30_000,
        }
        if not args.no_cli:
            env = cli_env(tmp)
            tiny = tmp / "one.jsonl"
            tiny.write_text(events.open().readline())
            startup, _, err0 = cli_run(tiny, people, env)
            cli_s, cli_summary, err = cli_run(events, people, env)
            if cli_summary is None:
                result["cli_error"] = err or err0
            else:
                result.update({
                    "cli_events_per_s": round(n / cli_s),
                    "cli_seconds": round(cli_s, 3),
                    "cli_startup_seconds": round(startup, 3),
                    "cli_events_per_s_excl_startup": round(n / max(cli_s - startup, 1e-9)),
                    "cli_summary_equals_api": cli_summary == api_summary,
                })
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"python {result['python']}; {n:,} events, {args.members:,} members; "
          f"accepted {result['accepted']:,}, rejected {result['rejected']:,}")
    print(f"API dry-run (read_events + dry_run + summary JSON): {result['dry_run_events_per_s']:>9,} "
          f"events/s  ({api_s:.2f} s: {phases})")
    if "cli_events_per_s" in result:
        print(f"CLI loyalty dry-run --summary-only --format json:    "
              f"{result['cli_events_per_s']:>9,} events/s  ({result['cli_seconds']:.2f} s wall, "
              f"{result['cli_startup_seconds']:.2f} s of it start-up + 1 event; "
              f"{result['cli_events_per_s_excl_startup']:,} events/s without)")
        print(f"CLI summary equals API summary: {result['cli_summary_equals_api']}")
    elif "cli_error" in result:
        print(f"CLI could not run with the bench plugins: {result['cli_error']}")
    print(f"target dry-run >= 30,000 events/s: "
          f"{'met' if result['target_30000_met'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
