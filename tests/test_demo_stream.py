"""The demo streams: the synthetic group comes a month at a time, in time order, with the
same events as ever for a seed, the generator never holds more than one month, and the demo
processes a month only after the previous month's jobs, reading events as it goes."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tracemalloc
import weakref
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from loyaltycore import Engine
from loyaltycore.demo import run_demo, run_synthetic
from loyaltycore.synthetic import GROUP_TZ, SyntheticGroup, add_months, generate, write_jsonl

RULESETS = Path(__file__).resolve().parent.parent / "rulesets"
ALL_LINES = "retail,hotel,property,entertainment"

# What the generator makes for (60 members, 4 months, seed 3), first recorded when it still
# built the whole period in memory and sorted it (streaming changed no event), then when
# tills began to hold points: seeds quoted in docs must keep meaning the same events.
# Change it only with the generator.
GOLDEN = (442, "794eff2211dfb8de4b727c09740534df97187f85491f49a6fe55c1be72e64ed8")


def _at(line: str) -> datetime:
    return datetime.fromisoformat(json.loads(line)["occurred_at"])


def _jsonl(events) -> bytes:
    buf = io.StringIO()
    for ev in events:
        buf.write(json.dumps(ev, separators=(",", ":")) + "\n")
    return buf.getvalue().encode()


def test_a_seed_gives_the_same_events_as_before_streaming(tmp_path):
    with SyntheticGroup(60, 4, seed=3, workdir=tmp_path) as group:
        data = b"".join(line.encode() for month in group.months() for line in month.lines)
    assert (data.count(b"\n"), hashlib.sha256(data).hexdigest()) == GOLDEN
    assert _jsonl(generate(60, 4, seed=3)[1]) == data
    assert list(tmp_path.iterdir()) == []  # the months' files are gone once read


def test_months_come_in_time_order_and_put_together_are_the_file(tmp_path):
    with SyntheticGroup(200, 5, seed=11, workdir=tmp_path) as group:
        profiles = group.profiles
        total = group.simulate()
        months = [(m.index, m.first, list(m.lines)) for m in group.months()]
    assert [k for k, _, _ in months] == list(range(5))
    assert sum(len(lines) for _, _, lines in months) == total == sum(group.per_month)
    previous = datetime(2026, 1, 1, tzinfo=GROUP_TZ)
    for k, first, lines in months:
        assert first == add_months(group.first, k)
        assert lines and all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
        times = [_at(line) for line in lines]
        assert times == sorted(times) and times[0] >= previous
        starts = datetime(first.year, first.month, 1, tzinfo=GROUP_TZ)
        ends = datetime.combine(add_months(first, 1), datetime.min.time(), GROUP_TZ)
        assert starts <= times[0]
        if k < 4:  # the last month also takes what falls just past the period
            assert times[-1] < ends
        previous = times[-1]
    # The months one after the other are the events file the demo writes.
    out = tmp_path / "events.jsonl"
    generated_profiles, events = generate(200, 5, seed=11)
    write_jsonl(events, out)
    assert out.read_text(encoding="utf-8") == "".join(
        line for _, _, lines in months for line in lines)
    assert generated_profiles == profiles


def test_the_months_can_be_read_once():
    with SyntheticGroup(3, 1, seed=1) as group:
        assert sum(len(m) for m in group.months()) == group.events
        with pytest.raises(RuntimeError):
            next(group.months())


def test_the_generator_never_holds_more_than_one_month(tmp_path):
    """Memory, measured by what Python allocates (not by time): simulating holds one
    member's timeline, reading holds one month, and a month handed out is not kept."""
    tracemalloc.start()
    try:
        with SyntheticGroup(300, 12, seed=5, workdir=tmp_path) as group:
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            group.simulate()
            simulating = tracemalloc.get_traced_memory()[1] - before
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            sizes, gone = [], []
            previous = None
            for month in group.months():
                if previous is not None:
                    gone.append(previous() is None)
                previous = weakref.ref(month)
                sizes.append(sys.getsizeof(month.lines)
                             + sum(sys.getsizeof(line) for line in month.lines))
                del month
            reading = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    year = sum(sizes)
    assert len(sizes) == 12 and all(gone)  # the generator kept no month it had handed out
    # The whole period's lines are ~2.3 MB here and grow with the group; these do not.
    assert simulating < year / 2, (simulating, year)
    # Reading a month costs about 1.4 times its lines (the sort keys); holding on to the
    # month before while reading the next would make it 2.3.
    assert reading < 1.8 * max(sizes) and reading < year / 3, (reading, sizes)


class _Spy:
    """An engine whose process_many and run_jobs calls are logged with how many events
    the demo had read from its iterator by then."""

    def __init__(self, engine: Engine):
        self.engine, self.pulled, self.log = engine, 0, []
        process, jobs = engine.process_many, engine.run_jobs

        def process_many(events, **kw):
            events = list(events)
            self.log.append(("process", [datetime.fromisoformat(e["occurred_at"])
                                         for e in events], self.pulled))
            return process(events, **kw)

        def run_jobs(as_of, **kw):
            self.log.append(("jobs", as_of, self.pulled))
            return jobs(as_of, **kw)

        engine.process_many, engine.run_jobs = process_many, run_jobs

    def read(self, events):
        for ev in events:
            self.pulled += 1
            yield ev


def test_a_month_is_processed_only_after_the_previous_months_jobs_reading_as_it_goes(
        tmp_path, monkeypatch):
    monkeypatch.setenv("LOYALTY_PLUGINS", ALL_LINES)
    profiles, events = generate(40, 3, seed=2)
    engine = Engine.open(RULESETS, db=str(tmp_path / "demo.db"))
    try:
        spy = _Spy(engine)
        report = run_demo(engine, profiles, spy.read(iter(events)), 3, batch_size=50)
    finally:
        engine.close()
    assert report.events == len(events) and report.ledger_clean
    jobs = [(as_of, pulled) for kind, as_of, pulled in spy.log if kind == "jobs"]
    assert [as_of.month for as_of, _ in jobs] == [1, 2, 3]
    since = datetime(2026, 1, 1, tzinfo=GROUP_TZ) - timedelta(microseconds=1)
    k = 0
    for kind, what, pulled in spy.log:
        if kind == "jobs":
            since, k = what, k + 1
            # By a month's jobs the demo has read that month and at most one more event.
            assert pulled <= sum(1 for e in events
                                 if datetime.fromisoformat(e["occurred_at"]) <= what) + 1
            continue
        # Every event processed is after the jobs already run and within the month whose
        # jobs come next.
        assert since < min(what) and max(what) <= jobs[k][0]
        assert len(what) <= 50


def test_events_out_of_time_order_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LOYALTY_PLUGINS", ALL_LINES)
    profiles, events = generate(10, 2, seed=4)
    engine = Engine.open(RULESETS, db=str(tmp_path / "demo.db"))
    try:
        with pytest.raises(ValueError, match="time order"):
            run_demo(engine, profiles, [events[-1], *events[:-1]], 2)
    finally:
        engine.close()


def test_streaming_a_group_reports_what_processing_it_whole_does(tmp_path, monkeypatch):
    monkeypatch.setenv("LOYALTY_PLUGINS", ALL_LINES)
    profiles, events = generate(60, 3, seed=9)
    reports = []
    for name in ("whole", "streamed"):
        (tmp_path / name).mkdir()
        engine = Engine.open(RULESETS, db=str(tmp_path / name / "demo.db"))
        try:
            if name == "whole":
                report = run_demo(engine, profiles, events, 3)
            else:
                with SyntheticGroup(60, 3, seed=9, workdir=tmp_path / name) as group:
                    report = run_synthetic(engine, group, tmp_path / name / "events.jsonl")
        finally:
            engine.close()
        data = report.as_dict()
        data["run"].pop("seconds")
        data["run"].pop("events_per_s")
        reports.append(data)
    assert reports[0] == reports[1]
    assert (tmp_path / "streamed" / "events.jsonl").read_bytes() == _jsonl(events)
    assert not list((tmp_path / "streamed").glob(".synthetic-*"))  # months' files removed
