"""Many processes racing earns and redemptions on the same few members.

Each worker process opens its own :class:`~loyaltycore.engine.Engine` on the same database
and, released together by a barrier, submits purchases and redemptions (unique event ids)
for the same three members, some one event per transaction (``process``/``redeem``), some
in small batches that lock several members at once (``process_many``). Redemptions ask for
far more than the members ever hold, so many must be rejected as overdrafts.

Afterwards, from the receipts the workers were given: no balance is negative, what was
seeded + earned == what was redeemed + what is left (nothing lost, nothing counted twice),
every event id is stored exactly once with the status its receipt said, the ledger's own
redeem entries agree with the accepted receipts, and ``loyalty ledger check`` is clean.

PostgreSQL (``SELECT ... FOR UPDATE`` on member rows) with 16 workers; SQLite
(``BEGIN IMMEDIATE`` serialises writers on one file) with a few.
"""

from __future__ import annotations

import multiprocessing
import queue
import random
import traceback
from collections import Counter
from datetime import UTC, datetime

from click.testing import CliRunner
from sqlalchemy import create_engine, text

from loyaltycore.cli import cli
from loyaltycore.effects import RedeemPoints
from loyaltycore.schema import database_url
from plugins import support

MEMBERS = ("C1", "C2", "C3")
SEED_AMOUNT = "1000.00"  # 1000 points + the 200-point first-purchase bonus each
PURCHASE_AMOUNT = "100.00"
REDEEM_POINTS = 300
SEED_AT = "2026-01-05T10:00:00+08:00"
VESTED_BY = datetime(2026, 1, 20, tzinfo=UTC)
PURCHASE_AT = "2026-02-02T10:00:00+08:00"  # vested (7 days) by the time of any redemption
REDEEM_AT = "2026-03-02T10:00:{s:02d}+08:00"
END = datetime(2026, 4, 1, tzinfo=UTC)


def _worker_events(wid: int, rounds: int) -> list[dict]:
    ev = support.Events()
    out = []
    for r in range(rounds):
        for m in MEMBERS:
            out.append(ev.purchase(PURCHASE_AMOUNT, id=f"w{wid:02d}-p{r}-{m}", member=m,
                                   at=PURCHASE_AT))
            out.append(ev.make(line="retail", type="redeem", id=f"w{wid:02d}-r{r}-{m}",
                               member=m, at=REDEEM_AT.format(s=wid % 60),
                               points=REDEEM_POINTS, reference=f"till-{wid}"))
    random.Random(wid).shuffle(out)
    return out


def _summary(receipt) -> dict:
    return {"event_id": receipt.event_id, "member": receipt.member, "type": receipt.type,
            "status": receipt.status,
            "earned": receipt.points + receipt.pending_points,
            "redeemed": sum(e.points for e in receipt.effects if isinstance(e, RedeemPoints)),
            "violations": [(v.invariant, v.message) for v in receipt.violations]}


def _worker(url: str, wid: int, rounds: int, barrier, results) -> None:
    """One process: its own engine, then its events as fast as it can once released."""
    try:
        engine = support.open_db(url, time_budget=5.0)
        events = _worker_events(wid, rounds)
        barrier.wait(timeout=120)
        receipts = []
        if wid % 2:
            receipts = engine.process_many(events, batch_size=4)
        else:
            for e in events:
                if e["type"] == "redeem" and wid % 4 == 2:
                    receipts.append(engine.redeem(
                        e["member"], e["data"]["points"], line="retail", event_id=e["id"],
                        at=datetime.fromisoformat(e["occurred_at"]),
                        reference=e["data"]["reference"]))
                else:
                    receipts.append(engine.process(e))
        engine.close()
        results.put((wid, "ok", [_summary(r) for r in receipts]))
    except BaseException:  # reported to the test, which fails with the traceback
        results.put((wid, "error", traceback.format_exc()))
        try:
            barrier.abort()
        except Exception:
            pass


def _seed(url: str) -> dict[str, int]:
    """Give each member a known, vested balance; returns member -> points."""
    engine = support.open_db(url)
    ev = support.Events()
    seeded = {}
    for m in MEMBERS:
        r = engine.process(ev.purchase(SEED_AMOUNT, id=f"seed-{m}", member=m, at=SEED_AT))
        assert r.accepted, r.violations
        seeded[m] = r.points + r.pending_points
    engine.run_jobs(VESTED_BY)
    for m in MEMBERS:
        snap = engine.member(m, at=VESTED_BY)
        assert (snap.available, snap.pending) == (seeded[m], 0)
    engine.close()
    assert all(v > 0 for v in seeded.values())
    return seeded


def _race(url: str, workers: int, rounds: int) -> list[dict]:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(workers)
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, wid, rounds, barrier, results),
                         daemon=True) for wid in range(workers)]
    for p in procs:
        p.start()
    out: dict[int, list[dict]] = {}
    errors = []
    try:
        for _ in range(workers):
            try:
                wid, status, payload = results.get(timeout=240)
            except queue.Empty:
                raise AssertionError(f"workers did not report in time; got {sorted(out)}") \
                    from None
            if status == "ok":
                out[wid] = payload
            else:
                errors.append(f"worker {wid}:\n{payload}")
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
    assert not errors, "\n".join(errors)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    for wid in range(workers):
        assert [r["event_id"] for r in out[wid]] == \
            [e["id"] for e in _worker_events(wid, rounds)], f"worker {wid} receipts"
    return [r for wid in sorted(out) for r in out[wid]]


def _check(url: str, seeded: dict[str, int], receipts: list[dict]) -> None:
    purchases = [r for r in receipts if r["type"] == "purchase"]
    redeems = [r for r in receipts if r["type"] == "redeem"]
    assert purchases and redeems
    assert all(r["status"] == "accepted" and r["earned"] > 0 for r in purchases), \
        [r for r in purchases if r["status"] != "accepted"][:3]
    accepted = [r for r in redeems if r["status"] == "accepted"]
    rejected = [r for r in redeems if r["status"] == "rejected"]
    assert accepted, "no redemption went through"
    assert rejected, "the race never ran a member out of points"
    for r in accepted:
        assert r["redeemed"] == REDEEM_POINTS and not r["violations"]
    for r in rejected:
        assert r["redeemed"] == 0
        assert [v[0] for v in r["violations"]] == ["redemption"], r
        assert "would overdraw" in r["violations"][0][1], r

    earned = Counter()
    spent = Counter()
    for r in purchases:
        earned[r["member"]] += r["earned"]
    for r in accepted:
        spent[r["member"]] += r["redeemed"]
    expected = {m: seeded[m] + earned[m] - spent[m] for m in MEMBERS}

    db = create_engine(database_url(url))
    try:
        with db.connect() as conn:
            rows = {r.id: r for r in conn.execute(text(
                "SELECT id, available, pending, debt FROM members"))}
            assert sorted(rows) == sorted(MEMBERS)
            for m in MEMBERS:
                row = rows[m]
                assert row.available >= 0 and row.pending >= 0 and row.debt == 0, row
                assert row.available + row.pending == expected[m], \
                    (m, row, seeded[m], earned[m], spent[m])
            stored = list(conn.execute(text(
                "SELECT member_id, event_id, status FROM events")))
            ids = Counter(r.event_id for r in stored)
            assert [i for i, n in ids.items() if n != 1] == []
            want = {r["event_id"]: (r["member"], r["status"]) for r in receipts}
            want.update({f"seed-{m}": (m, "accepted") for m in MEMBERS})
            assert {r.event_id: (r.member_id, r.status) for r in stored} == want
            redeem_entries = list(conn.execute(text(
                "SELECT member_id, event_id FROM entries WHERE kind = 'redeem'")))
            assert sorted(r.event_id for r in redeem_entries) == \
                sorted(r["event_id"] for r in accepted)
            redeemed_account = conn.execute(text(
                "SELECT COALESCE(SUM(points), 0) FROM postings "
                "WHERE account = 'redeemed:retail'")).scalar_one()
            assert int(redeemed_account) == sum(spent.values())
    finally:
        db.dispose()

    engine = support.open_db(url)
    try:
        report = engine.check_ledger()
        assert report.clean, report.problems
        engine.run_jobs(END)  # vest whatever the last purchases left pending
        for m in MEMBERS:
            snap = engine.member(m, at=END)
            assert (snap.available, snap.pending) == (expected[m], 0), m
        assert engine.check_ledger().clean
    finally:
        engine.close()
    result = CliRunner().invoke(cli, ["ledger", "check", "--db", url,
                                      "--rulesets", str(support.RULESETS)])
    assert result.exit_code == 0, result.output
    assert "ledger is clean" in result.output


def test_sixteen_processes_race_on_postgresql(pg_url):
    seeded = _seed(pg_url)
    receipts = _race(pg_url, workers=16, rounds=3)
    assert len(receipts) == 16 * 3 * len(MEMBERS) * 2
    _check(pg_url, seeded, receipts)


def test_processes_race_on_one_sqlite_file(sqlite_url):
    seeded = _seed(sqlite_url)
    receipts = _race(sqlite_url, workers=4, rounds=3)
    assert len(receipts) == 4 * 3 * len(MEMBERS) * 2
    _check(sqlite_url, seeded, receipts)
