"""The ``loyalty`` ledger commands, the way an operator runs them, on SQLite and PostgreSQL.

``loyalty process`` / ``member`` / ``statement`` / ``jobs run`` / ``ledger check`` /
``settlement`` through click's CliRunner (the CLI reads plugins from entry points, pinned
to retail by ``LOYALTY_PLUGINS=retail`` in tests/conftest.py), and ``loyalty dry-run``
against ``loyalty process`` on the same file: the receipts agree event by event.

Rulesets: tests/rulesets/ledger/plain (the test group: points never expire, refunds of
spent points make the balance negative) + the real retail rules, which the retail plugin
ships. Times: a bare date is 10:00 Shanghai = 02:00 UTC.
"""

from __future__ import annotations

import json
import random
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from loyaltycore import dryrun, report
from loyaltycore.cli import cli
from loyaltycore.engine import Engine
from loyaltycore.errors import IdempotencyConflict
from loyaltycore.store import (
    BUCKETS,
    COUNTERS,
    ENTRIES,
    EVENTS,
    GRANTS,
    LOTS,
    MEMBERS,
    MOVES,
    POSTINGS,
    REJECTS,
    TIERS,
)
from plugins import support

LEDGER = support.TEST_RULESETS / "ledger"
RULES = ["--rulesets", str(LEDGER / "plain")]  # + the retail plugin's own rules
SHANGHAI = timezone(timedelta(hours=8))


def open_engine(db: str | None) -> Engine:
    """What the CLI opens, through the API: the same rulesets, the retail plugin only."""
    return Engine.open([LEDGER / "plain"], plugins=[support.RETAIL], load_entrypoints=False,
                       db=db)


def loyalty(*args: str, code: int | None = 0):
    result = CliRunner().invoke(cli, [*args])
    if code is not None:
        assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    return result


def write_events(path: Path, events: list[dict], *, extra: list[str] = ()) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events)
                    + "".join(line + "\n" for line in extra), encoding="utf-8")
    return path


def generated_stream(seed: int = 7, n: int = 240, members: int = 6) -> list[dict]:
    """Purchases, refunds (some too large), redemptions (some overdrawn), resubmissions and
    conflicting resubmissions (same id, another amount) of a few members over 2026."""
    rnd = random.Random(seed)
    out: list[dict] = []
    purchases: list[dict] = []
    t = datetime(2026, 1, 5, 9, 0, tzinfo=SHANGHAI)
    for i in range(n):
        t += timedelta(hours=rnd.randint(1, 40))
        member = f"G{rnd.randrange(members):02d}"
        roll = rnd.random()
        base = {"id": f"g{i:04d}", "line": "retail", "member": member,
                "occurred_at": t.isoformat()}
        if roll < 0.5 or not purchases:
            e = {**base, "type": "purchase",
                 "amount": rnd.choice(["35", "99.90", "120", "480", "1000", "2500.50"]),
                 "currency": "CNY",
                 "data": {"store": "SH-01", "category": rnd.choice(["fashion", "beauty"]),
                          "channel": rnd.choice(["store", "app"])}}
            purchases.append(e)
        elif roll < 0.65:
            p = rnd.choice(purchases)
            e = {**base, "member": p["member"], "type": "refund",
                 "amount": rnd.choice(["10", "50", "100", "300", "1000"]), "currency": "CNY",
                 "data": {"related_event": p["id"], "reason": "returned"}}
        elif roll < 0.85:
            e = {**base, "type": "redeem",
                 "data": {"points": rnd.choice([50, 100, 300, 800, 2000]),
                          "reference": f"till-{i}"}}
        elif roll < 0.93:
            e = dict(rnd.choice(out))  # the same event again
        else:
            e = {**rnd.choice(purchases), "amount": "1.00"}  # same id, another payload
        out.append(e)
    return out


def dump(engine: Engine) -> dict:
    """Every table of the ledger and the member state, in a stable order (without the
    wall-clock columns)."""
    out = {}
    with engine.store.reading() as conn:
        for name, table, skip in (
                ("entries", ENTRIES, ()), ("postings", POSTINGS, ("id",)),
                ("moves", MOVES, ("id",)), ("lots", LOTS, ()), ("members", MEMBERS, ()),
                ("events", EVENTS, ("processed_at",)), ("tiers", TIERS, ("id",)),
                ("buckets", BUCKETS, ()), ("counters", COUNTERS, ()),
                ("grants", GRANTS, ()), ("rejects", REJECTS, ("id", "at"))):
            cols = [c for c in table.c if c.name not in skip]
            out[name] = sorted(tuple(str(v) for v in row) for row in
                                conn.execute(select(*cols)))
    return out


@pytest.fixture
def examples_and_stream(tmp_path) -> Path:
    """examples/events.jsonl (copied: process writes its rejects beside it) followed by the
    generated stream."""
    events = tmp_path / "events.jsonl"
    shutil.copy(support.EXAMPLES / "events.jsonl", events)
    with events.open("a", encoding="utf-8") as fh:
        for e in generated_stream():
            fh.write(json.dumps(e) + "\n")
    return events


# --- process -----------------------------------------------------------------------------


def test_process_exit_codes_summary_and_rejects_file(db_url, tmp_path, ev):
    good = write_events(tmp_path / "good.jsonl", [
        ev.purchase("1000", id="p1", at="2026-03-02"),
        ev.purchase("200", id="p2", member="M2", at="2026-03-02"),
        ev.refund("p1", "100", id="f1", at="2026-03-03")])
    out = json.loads(loyalty("process", str(good), "--db", db_url, "--format", "json",
                             *RULES).stdout)
    assert {k: out[k] for k in ("events", "accepted", "rejected", "invalid")} == \
        {"events": 3, "accepted": 3, "rejected": 0, "invalid": 0}
    assert out["summary"]["events"]["accepted"] == 3
    # p1 1000 + 200 bonus, p2 200 + 200 bonus, f1 claws back floor(1200 x 100/1000) = 120
    assert out["summary"]["lines"]["retail"]["pending"] == 1600
    assert out["summary"]["lines"]["retail"]["reversed"] == 120
    assert out["database"].startswith(db_url.split(":", 1)[0])
    assert not (tmp_path / "good.jsonl.rejects.jsonl").exists()

    bad = write_events(tmp_path / "bad.jsonl", [
        ev.refund("p1", "901", id="f2", at="2026-03-04"),  # 100 + 901 > 1000
        ev.make(line="retail", type="redeem", id="x1", at="2026-03-04", points=10),
        ev.purchase("300", id="p3", at="2026-03-05")],
        extra=['{"id": "broken", "line": "retail"'])
    result = loyalty("process", str(bad), "--db", db_url, "--format", "json", *RULES, code=1)
    out = json.loads(result.stdout)
    assert {k: out[k] for k in ("events", "accepted", "rejected", "invalid")} == \
        {"events": 4, "accepted": 1, "rejected": 2, "invalid": 1}
    assert out["summary"]["rejections"] == {"input:line": 1, "redemption": 1,
                                            "refund-bounds": 1}
    rejects = [json.loads(line) for line in
               (tmp_path / "bad.jsonl.rejects.jsonl").read_text().splitlines()]
    assert [(r["line_no"], r["kind"]) for r in rejects] == [
        (1, "rejected"), (2, "rejected"), (4, "invalid")]
    assert rejects[1]["reason"] == \
        "redemption [redeem]: would overdraw: 10 points asked, 0 available"
    assert json.loads(rejects[0]["input"])["id"] == "f2"
    # the table format says the same in words
    again = loyalty("process", str(good), "--db", db_url, *RULES)
    assert "3 accepted, 0 rejected, 0 unreadable" in again.stdout


def test_process_twice_gives_an_identical_ledger(db_url, examples_and_stream):
    args = ("process", str(examples_and_stream), "--db", db_url, "--format", "json",
            "--batch-size", "25", *RULES)
    first = json.loads(loyalty(*args, code=1).stdout)
    engine = open_engine(db_url)
    try:
        before = dump(engine)
        assert engine.check_ledger().clean
        second = json.loads(loyalty(*args, code=1).stdout)
        for key in ("events", "accepted", "rejected", "invalid"):
            assert second[key] == first[key], key
        after = dump(engine)
        for table in before:
            if table != "rejects":
                assert after[table] == before[table], table
        assert engine.check_ledger().clean
    finally:
        engine.close()
    assert first["events"] == 16 + 240
    assert first["invalid"] == 1  # r-0010 has no UTC offset


def test_process_twice_records_each_reject_once(db_url, examples_and_stream):
    args = ("process", str(examples_and_stream), "--db", db_url, "--format", "json", *RULES)
    loyalty(*args, code=1)
    engine = open_engine(db_url)
    try:
        first = dump(engine)["rejects"]
        assert any("already processed with a different payload" in " ".join(row)
                   for row in first)
        loyalty(*args, code=1)
        assert dump(engine)["rejects"] == first
    finally:
        engine.close()


# --- dry-run = process -------------------------------------------------------------------


def comparable(receipt_json: dict) -> dict:
    """A receipt's JSON without where it sat in the file; values must match exactly, on
    SQLite and on PostgreSQL alike (amounts as sent, not respelled by the database)."""
    return {k: v for k, v in receipt_json.items() if k not in ("line_no", "duplicate")}


def test_dry_run_and_process_give_the_same_receipts_event_by_event(db_url,
                                                                    examples_and_stream):
    result = loyalty("dry-run", str(examples_and_stream), "--format", "json", *RULES, code=1)
    dry = json.loads(result.stdout)["events"]
    # the API's dry-run says the same as the command
    memory = open_engine(None)
    valid, problems = dryrun.read_events(examples_and_stream, memory)
    api = dryrun.dry_run(memory, valid, problems=problems)
    assert [report.receipt_json(o.receipt) for o in api.outcomes] == \
        [comparable(d) for d in dry]

    loyalty("process", str(examples_and_stream), "--db", db_url, "--batch-size", "40",
            *RULES, code=1)
    engine = open_engine(db_url)
    try:
        # Resubmitting a processed event answers with the receipt it was given; a
        # conflicting one is rejected again, as process rejected it.
        ordered = sorted(valid, key=lambda pair: pair[1].occurred_at)
        receipts = engine.process_many([e for _, e in ordered])
        assert len(receipts) == len(dry) == 255
        for d, (line_no, _), r in zip(dry, ordered, receipts, strict=True):
            assert d["line_no"] == line_no
            assert comparable(report.receipt_json(r)) == comparable(d), line_no
        statuses = [d["status"] for d in dry]
        assert statuses.count("rejected") > 20 and statuses.count("accepted") > 150
        assert engine.check_ledger().clean
        # and the balances a dry-run ends with are the database's
        fork = memory.fork()
        for _, e in ordered:
            try:
                fork.process(e)
            except IdempotencyConflict:  # the conflicts, rejected above
                pass
        end = datetime(2027, 1, 1, tzinfo=SHANGHAI)
        for member in sorted({e.member for _, e in ordered}):
            mem, db = fork.member(member, at=end), engine.member(member, at=end)
            assert (db.available, db.pending, db.tier) == \
                (mem.available, mem.pending, mem.tier), member
    finally:
        engine.close()


# --- the reading commands ----------------------------------------------------------------


@pytest.fixture
def loaded(db_url, tmp_path, ev):
    """M1: p1 1000 CNY on 03-02 (1000 + 200 bonus, pending to 03-09), f1 a 250 refund on
    03-03 (claws back floor(1200 x 250/1000) = 300), x1 a 400-point redemption on 03-12.
    M2: p2 300 CNY on 03-05 (300 + 200 bonus, pending to 03-12)."""
    events = write_events(tmp_path / "events.jsonl", [
        ev.purchase("1000", id="p1", at="2026-03-02"),
        ev.refund("p1", "250", id="f1", at="2026-03-03"),
        ev.purchase("300", id="p2", member="M2", at="2026-03-05"),
        ev.make(line="retail", type="redeem", id="x1", at="2026-03-12", points=400,
                reference="till-7")])
    loyalty("process", str(events), "--db", db_url, *RULES)
    return db_url


def test_ledger_check_exits_0_on_a_clean_ledger_and_1_on_a_tampered_one(loaded):
    out = json.loads(loyalty("ledger", "check", "--db", loaded, "--format", "json",
                             *RULES).stdout)
    assert out["clean"] is True and out["problems"] == []
    # retail issued 1200 + 500 = 1700 = 400 redeemed + 300 reversed + 500 available (M1)
    # + 500 pending (M2: due on 03-12 but not recorded yet: no job ran, no event of M2's)
    assert out["lines"]["retail"] == {
        "line": "retail", "issued": 1700, "available": 500, "pending": 500, "reserved": 0,
        "redeemed_from": 400, "redeemed_at": 400, "expired": 0, "reversed": 300,
        "outstanding": 1000}
    table = loyalty("ledger", "check", "--db", loaded, *RULES).stdout
    assert "ledger is clean" in table

    engine = open_engine(loaded)
    with engine.store.transaction() as conn:
        conn.execute(update(MEMBERS).where(MEMBERS.c.id == "M1").values(available=501))
    engine.close()
    result = loyalty("ledger", "check", "--db", loaded, "--format", "json", *RULES, code=1)
    out = json.loads(result.stdout)
    assert out["clean"] is False
    assert out["problem_counts"] == {"member-vs-postings": 1, "member-vs-lots": 1}
    assert "2 difference(s)" in loyalty("ledger", "check", "--db", loaded, *RULES,
                                        code=1).stdout


def test_jobs_run_vests_what_is_due_once(db_url, tmp_path, ev):
    events = write_events(tmp_path / "events.jsonl", [
        ev.purchase("1000", id="p1", at="2026-03-02"),   # 1200, vests 03-09
        ev.purchase("300", id="p2", member="M2", at="2026-03-10")])  # 500, vests 03-17
    loyalty("process", str(events), "--db", db_url, *RULES)
    # a bare date runs everything due by the end of that day (UTC)
    out = json.loads(loyalty("jobs", "run", "--as-of", "2026-03-12", "--db", db_url,
                             "--format", "json", *RULES).stdout)
    assert out == {"as_of": "2026-03-12T23:59:59+00:00", "members": 1, "vested_points": 1200,
                   "expired_points": 0, "vouchers_lapsed": 0,
                   "hold_points_released": 0, "tier_moves": []}
    again = json.loads(loyalty("jobs", "run", "--as-of", "2026-03-12", "--db", db_url,
                               "--format", "json", *RULES).stdout)
    assert (again["members"], again["vested_points"]) == (0, 0)
    text = loyalty("jobs", "run", "--as-of", "2026-03-20T00:00:00+08:00", "--db", db_url,
                   *RULES).stdout
    assert "1 member(s) with something due; 500 points vested" in text
    bad = loyalty("jobs", "run", "--as-of", "2026-03-20T00:00:00", "--db", db_url, *RULES,
                  code=2)
    assert "has no UTC offset" in bad.output
    assert json.loads(loyalty("ledger", "check", "--db", db_url, "--format", "json",
                              *RULES).stdout)["clean"]


def test_member_shows_balances_tier_and_history(loaded):
    out = json.loads(loyalty("member", "M1", "--db", loaded, "--at", "2026-03-13",
                             "--format", "json", *RULES).stdout)
    # 1200 - 300 (f1) vested on 03-09, - 400 (x1) = 500
    assert (out["id"], out["tier"], out["available"], out["pending"]) == ("M1", "member",
                                                                         500, 0)
    assert out["tier_history"] == []
    # M2's points vested on 03-12 (lazily: nothing recorded it yet)
    later = json.loads(loyalty("member", "M2", "--db", loaded, "--at", "2026-03-13",
                               "--format", "json", *RULES).stdout)
    assert (later["available"], later["pending"]) == (500, 0)
    nobody = json.loads(loyalty("member", "NOBODY", "--db", loaded, "--format", "json",
                                *RULES).stdout)
    assert (nobody["available"], nobody["pending"], nobody["tier"]) == (0, 0, "member")
    text = loyalty("member", "M2", "--db", loaded, "--at", "2026-03-13", *RULES).stdout
    assert "M2  tier member  available 500  pending 0" in text


def test_member_at_a_past_date_is_refused_in_favour_of_the_statement(loaded):
    at = "2026-03-04"
    # A member view lets time pass forward from what is recorded; it cannot undo what
    # happened after `at`, so it says so instead of answering with today's balances.
    refused = loyalty("member", "M1", "--db", loaded, "--at", at, *RULES, code=2)
    assert "for an earlier date use the statement" in refused.output
    st = json.loads(loyalty("statement", "M1", "--db", loaded, "--since", at,
                            "--format", "json", *RULES).stdout)
    assert (st["opening_available"], st["opening_pending"]) == (0, 900)


def test_member_json_shows_qualifying_spend_as_sent(db_url, tmp_path, ev, request):
    events = write_events(tmp_path / "events.jsonl", [
        ev.purchase("1000.00", id="p1", at="2026-03-02"),
        ev.purchase("500.00", id="p2", at="2026-03-03")])
    loyalty("process", str(events), "--db", db_url, *RULES)
    out = json.loads(loyalty("member", "M1", "--db", db_url, "--at", "2026-03-04",
                             "--format", "json", *RULES).stdout)
    assert out["qualification"]["credits"] == {"spend": "1500.00"}


def test_statement_lists_entries_with_the_running_balance(loaded):
    out = json.loads(loyalty("statement", "M1", "--db", loaded, "--format", "json",
                             *RULES).stdout)
    assert [(ln["kind"], ln["event_id"], ln["available"], ln["pending"], ln["balance"])
            for ln in out["lines"]] == [
        ("earn", "p1", 0, 1200, 0),
        ("reverse", "f1", 0, -300, 0),
        ("vest", None, 700, -700, 700),   # p1's 1000-point lot, 300 of it clawed back
        ("vest", None, 200, -200, 900),   # the bonus lot
        ("redeem", "x1", -400, 0, 500)]
    assert out["lines"][-1]["memo"] == "till-7"
    assert (out["closing_available"], out["closing_pending"]) == (500, 0)
    since = json.loads(loyalty("statement", "M1", "--db", loaded, "--since", "2026-03-10",
                               "--format", "json", *RULES).stdout)
    assert (since["opening_available"], since["opening_pending"]) == (900, 0)
    assert [ln["kind"] for ln in since["lines"]] == ["redeem"]
    text = loyalty("statement", "M1", "--db", loaded, *RULES).stdout
    assert "Statement of M1" in text and "redeem" in text


def test_settlement_says_what_each_line_owes(loaded):
    rows = json.loads(loyalty("settlement", "--db", loaded, "--format", "json",
                              *RULES).stdout)
    # 400 retail points spent at retail, at 0.01 CNY each
    assert rows == [{"issuer": "retail", "redeemer": "retail", "points": 400,
                     "amount": "4.00", "currency": "CNY"}]
    window = json.loads(loyalty("settlement", "--db", loaded, "--since", "2026-03-13",
                                "--format", "json", *RULES).stdout)
    assert window == []
    assert json.loads(loyalty("settlement", "--db", loaded, "--since", "2026-03-12",
                              "--until", "2026-03-13", "--format", "json",
                              *RULES).stdout)[0]["points"] == 400
    assert "4.00 CNY" in loyalty("settlement", "--db", loaded, *RULES).stdout
