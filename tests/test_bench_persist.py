"""bench/persist.py runs end to end (SQLite, PostgreSQL, the member-count scale) and
reports its figures as one JSON object. No timing thresholds: the machine is shared."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from plugins.support import PG_URL

BENCH = Path(__file__).resolve().parent.parent / "bench" / "persist.py"
FIGURES = ("sqlite_events_per_s", "pg_events_per_s_1_worker", "pg_events_per_s_4_workers",
           "pg_events_per_s_4_workers_contended", "cost_ratio_1e6_vs_1e3")
SIZES = ("events", "members", "batch_size", "scale_events", "scale_members_small",
         "scale_members_large")


def test_quick_run_reports_every_figure():
    env = dict(os.environ, LOYALTY_BENCH_PG=PG_URL)
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--json"],
                          capture_output=True, text=True, env=env, timeout=600,
                          cwd=BENCH.parent.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout[-3000:]  # --json prints one object, nothing else
    result = json.loads(lines[0])
    for key in FIGURES:
        value = result[key]
        assert isinstance(value, int | float) and math.isfinite(value) and value > 0, key
    for key in SIZES:
        assert isinstance(result[key], int) and result[key] > 0, key
    assert result["quick"] is True
    assert result["scale_members_large"] > result["scale_members_small"]
    assert result["cost_ratio_db"] == "sqlite"
    scale = result["scale"]
    assert scale["ms_per_event_small"] > 0 and scale["ms_per_event_large"] > 0
    assert math.isclose(scale["ratio"], result["cost_ratio_1e6_vs_1e3"])
    assert 0 < result["sqlite_accepted"] <= result["events"]
    assert set(result["meets_targets"]) == {"sqlite_events_per_s",
                                            "pg_events_per_s_4_workers",
                                            "cost_ratio_1e6_vs_1e3"}
