"""``loyalty demo`` end to end: a small group through the CLI into SQLite files, the report's
figures checked against each other and against the ledger, and reproducibility by seed."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from loyaltycore import Engine
from loyaltycore.cli import cli
from loyaltycore.dryrun import read_events
from loyaltycore.synthetic import GROUP_TZ, generate

RULESETS = Path(__file__).resolve().parent.parent / "rulesets"
ALL_LINES = "retail,hotel,property,entertainment"
MEMBERS, MONTHS = 150, 3
SECTIONS = {"run", "lines", "liability", "settlement", "tiers", "cross_line", "rights",
            "rules", "rejections", "jobs", "ledger", "redemptions"}


def _demo(where: Path, seed: int) -> tuple[dict, Path, Path]:
    where.mkdir()
    db, events = where / "demo.db", where / "demo-events.jsonl"
    result = CliRunner(env={"LOYALTY_PLUGINS": ALL_LINES}).invoke(cli, [
        "demo", "--members", str(MEMBERS), "--months", str(MONTHS), "--seed", str(seed),
        "--db", str(db), "--events-out", str(events), "--format", "json",
        "--rulesets", str(RULESETS)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return json.loads(result.output), events, db


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return {"first": _demo(root / "first", 7), "again": _demo(root / "again", 7),
            "other": _demo(root / "other", 8)}


def _figures(report: dict) -> dict:
    """The report without what depends on the clock or on where files went."""
    out = json.loads(json.dumps(report))
    for key in ("seconds", "events_per_s", "wall_seconds", "files"):
        out["run"].pop(key)
    return out


def test_report_has_every_section_and_a_clean_ledger(runs):
    report, events, _ = runs["first"]
    assert SECTIONS <= set(report)
    assert report["ledger"] == {"clean": True, "problems": []}
    run = report["run"]
    assert run["members"] == MEMBERS and run["months"] == MONTHS and run["seed"] == 7
    lines_in_file = sum(1 for _ in events.open(encoding="utf-8"))
    assert run["events"] == lines_in_file == run["accepted"] + run["rejected"]
    # The months waiting to be processed were kept beside the file, and are gone.
    assert not list(events.parent.glob(".synthetic-*"))
    assert run["events_per_s"] > 0
    assert sum(report["rejections"]["by_reason"].values()) >= run["rejected"]
    assert set(report["rejections"]["examples"]) == set(report["rejections"]["by_reason"])
    # The demo exercises every line, redemptions, refunds, tiers and rights.
    assert set(report["lines"]) == {"retail", "hotel", "property", "entertainment"}
    assert all(b["issued"] > 0 for b in report["lines"].values())
    assert report["settlement"]["inter_line_points"] > 0
    assert report["tiers"]["moves"] and report["rights"]["used"] and report["rules"]
    assert report["lines"]["property"]["pending"] > 0  # contracts waiting for their keys
    assert any(b["reversed"] > 0 for b in report["lines"].values())


def test_points_add_up_per_line_and_to_the_liability(runs):
    report, _, _ = runs["first"]
    point_value = Decimal(report["liability"]["point_value"])
    for name, b in report["lines"].items():
        assert b["issued"] == b["outstanding"] + b["redeemed"] + b["expired"] + b["reversed"], \
            name
        assert b["outstanding"] == b["available"] + b["pending"]
        assert Decimal(b["revenue"]) == Decimal(b["sales"]) - Decimal(b["refunds"])
        assert Decimal(b["cost"]) == Decimal(b["issued"] - b["reversed"]) * point_value
        # Every event passed the group's cost cap, so the line as a whole is under it.
        assert Decimal(b["cost_ratio"]) <= Decimal(b["max_cost_ratio"]), name
        assert Decimal(b["liability"]) == b["outstanding"] * point_value
    outstanding = sum(b["outstanding"] for b in report["lines"].values())
    assert report["liability"]["points"] == outstanding
    assert Decimal(report["liability"]["amount"]) == outstanding * point_value


def test_settlement_matches_the_points_redeemed(runs):
    report, _, _ = runs["first"]
    lines, settlement = report["lines"], report["settlement"]
    redeemed = sum(b["redeemed"] for b in lines.values())
    assert settlement["points"] == redeemed == sum(b["redeemed_here"] for b in lines.values())
    assert sum(r["points"] for r in settlement["rows"]) == redeemed
    for issuer, b in lines.items():
        assert sum(settlement["matrix"].get(issuer, {}).values()) == b["redeemed"]
        assert sum(row.get(issuer, 0) for row in settlement["matrix"].values()) \
            == b["redeemed_here"]
    assert settlement["inter_line_points"] == sum(
        r["points"] for r in settlement["rows"] if r["issuer"] != r["redeemer"])
    # what the receipts spent (redeemed, or captured from a hold at a till), less what
    # cancellations gave back, is what the ledger says
    red = report["redemptions"]
    assert red["points"] + red["captured_points"] - red["points_back"] == redeemed
    # every point held (receipts) was captured or released by the till (receipts), or the
    # hold lapsed or is still open (the store's holds)
    assert red["holds"] > 0 and red["captured_points"] > 0
    assert red["held_points"] == red["captured_points"] + red["released_points"] \
        + red["lapsed_points"] + red["open_points"]


def test_some_redemptions_are_cancelled_at_their_line_for_at_most_what_they_spent():
    _, events = generate(300, 12, seed=3)
    redeemed = {(e["member"], e["id"]): e for e in events if e["type"] == "redeem"}
    cancels = [e for e in events if e["type"] == "cancel_redemption"]
    assert cancels
    for c in cancels:
        original = redeemed[(c["member"], c["data"]["related_event"])]
        assert c["line"] == original["line"]
        assert 1 <= c["data"]["points"] <= original["data"]["points"]
        assert c["occurred_at"] > original["occurred_at"]


def test_tiers_and_cross_line_activity_are_consistent(runs, monkeypatch):
    monkeypatch.setenv("LOYALTY_PLUGINS", ALL_LINES)
    report, _, db = runs["first"]
    distribution = report["tiers"]["distribution"]
    assert list(distribution) == ["member", "silver", "gold", "diamond"]
    assert sum(distribution.values()) == MEMBERS
    cross = report["cross_line"]
    assert cross["members_active"] == sum(cross["by_lines_active"].values()) <= MEMBERS
    multi = sum(n for k, n in cross["by_lines_active"].items() if int(k) >= 2)
    assert Decimal(cross["multi_line_share"]) == round(
        Decimal(multi) / cross["members_active"], 4)
    for x, row in cross["conversion"].items():
        assert x not in row and all(Decimal(0) <= Decimal(v) <= 1 for v in row.values())
    # The distribution read from the tier history is what the engine says of each member.
    engine = Engine.open(RULESETS, db=str(db))
    try:
        end = datetime(2026, 1 + MONTHS, 1, tzinfo=GROUP_TZ) - timedelta(seconds=1)
        tiers = Counter(engine.member(f"M{i:06d}", end).tier for i in range(MEMBERS))
    finally:
        engine.close()
    assert {t: tiers.get(t, 0) for t in distribution} == distribution


def test_same_seed_same_demo_and_another_seed_another(runs):
    first, first_events, _ = runs["first"]
    again, again_events, _ = runs["again"]
    other, other_events, _ = runs["other"]
    assert first_events.read_bytes() == again_events.read_bytes()
    assert (first_events.parent / "demo-members.jsonl").read_bytes() \
        == (again_events.parent / "demo-members.jsonl").read_bytes()
    assert _figures(first) == _figures(again)
    assert first_events.read_bytes() != other_events.read_bytes()
    assert _figures(first)["lines"] != _figures(other)["lines"]


def test_every_generated_event_parses(runs, monkeypatch):
    monkeypatch.setenv("LOYALTY_PLUGINS", ALL_LINES)
    _, events, _ = runs["first"]
    valid, problems = read_events(events, Engine.open(RULESETS))
    assert problems == []
    assert len(valid) == sum(1 for _ in events.open(encoding="utf-8"))


def test_generated_events_are_ordered_and_refer_to_earlier_events():
    profiles, events = generate(60, 4, seed=3)
    assert [p["id"] for p in profiles] == [f"M{i:06d}" for i in range(60)]
    times = [datetime.fromisoformat(e["occurred_at"]) for e in events]
    assert times == sorted(times)
    assert times[0] >= datetime(2026, 1, 1, tzinfo=GROUP_TZ)
    assert times[-1] < datetime(2026, 5, 1, tzinfo=GROUP_TZ)
    seen: set[tuple[str, str]] = set()
    for e in events:
        key = (e["member"], e["id"])
        assert key not in seen
        seen.add(key)
        related = e["data"].get("related_event")
        if related is not None:
            assert (e["member"], related) in seen  # refunds follow their purchase
    types = Counter((e["line"], e["type"]) for e in events)
    for kind in (("retail", "refund"), ("retail", "redeem"), ("hotel", "checkout"),
                 ("entertainment", "ticket"), ("property", "contract")):
        assert types[kind] > 0, kind
    assert any(e["type"] == "use_right" for e in events)


def test_the_demo_recreates_its_own_database_but_never_deletes_a_real_ledger(tmp_path,
                                                                            monkeypatch):
    monkeypatch.setenv("LOYALTY_PLUGINS", ALL_LINES)
    runner = CliRunner()
    args = ["demo", "--members", "5", "--months", "1", "--format", "json",
            "--rulesets", str(RULESETS), "--events-out", str(tmp_path / "demo-events.jsonl")]
    demo_db = tmp_path / "demo.db"
    for _ in range(2):  # the second run replaces the first run's database
        result = runner.invoke(cli, [*args, "--db", str(demo_db)])
        assert result.exit_code == 0, result.output
    first_run = json.loads(result.output)["run"]
    assert first_run["events"] == first_run["accepted"] + first_run["rejected"] > 0

    ledger = tmp_path / "loyalty.db"
    engine = Engine.open(RULESETS, db=str(ledger))
    engine.process({"id": "till-1", "line": "retail", "type": "purchase", "member": "C1",
                    "occurred_at": "2026-03-04T12:00:00+08:00", "amount": "120.00",
                    "currency": "CNY", "data": {"store": "S1", "category": "beauty"}})
    engine.close()
    (tmp_path / "notes.db").write_text("not a database")
    for other in (ledger, tmp_path / "notes.db"):
        result = runner.invoke(cli, [*args, "--db", str(other)])
        assert result.exit_code == 2 and "not a demo database" in result.output
    engine = Engine.open(RULESETS, db=str(ledger))
    kept = engine.member("C1")
    assert kept.available + kept.pending == 120 + 120 + 200  # base, beauty x2, first purchase
    engine.close()
