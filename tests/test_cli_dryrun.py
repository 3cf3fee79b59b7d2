"""`loyalty dry-run` and `loyalty plugins` through click's CliRunner.

Every run writes its rejects to tmp_path (never next to examples/).
"""

from __future__ import annotations

import json
import shutil
import traceback
from datetime import datetime

from click.testing import CliRunner

from loyaltycore.cli import cli
from plugins import support

EVENTS = support.EXAMPLES / "events.jsonl"
MEMBERS = support.EXAMPLES / "members.jsonl"
EXAMPLE_LINES = EVENTS.read_text(encoding="utf-8").splitlines()

RECEIPT_KEYS = {"line_no", "duplicate", "event_id", "member", "line", "type", "occurred_at",
                "status", "points", "pending_points", "tier_before", "tier_after",
                "ruleset_versions", "effects", "violations"}


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    # A crash would also exit 1 under CliRunner: insist on a clean exit.
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        "".join(traceback.format_exception(result.exception))
    return result


def dry(events, tmp_path, *more):
    return run("dry-run", events, "--rulesets", support.RULESETS, "--members", MEMBERS,
               "--rejects", tmp_path / "rejects.jsonl", *more)


def write(tmp_path, name, lines):
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def example_json(tmp_path, *more):
    result = dry(EVENTS, tmp_path, "--format", "json", *more)
    assert result.exit_code == 1
    return json.loads(result.stdout)


def test_examples_exit_1_and_rejects_hold_the_lines_verbatim(tmp_path):
    result = dry(EVENTS, tmp_path)
    assert result.exit_code == 1
    assert "16 events: 12 accepted, 3 rejected, 1 invalid, 0 duplicates" in result.output
    assert f"4 rejected or invalid line(s) written to {tmp_path / 'rejects.jsonl'}" \
        in result.output
    rows = [json.loads(x) for x in
            (tmp_path / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["line_no"] for r in rows] == [9, 10, 13, 16]
    for r in rows:
        assert r["input"] == EXAMPLE_LINES[r["line_no"] - 1]
    by_line = {r["line_no"]: r for r in rows}
    assert by_line[10]["kind"] == "invalid" and by_line[10]["field"] == "occurred_at"
    assert "UTC offset" in by_line[10]["reason"]
    assert by_line[9]["kind"] == "rejected"
    assert "retail-vip-lane is for tiers ['gold', 'diamond']" in by_line[9]["reason"]
    assert "allows 2 per month; 2 used, 1 more requested" in by_line[13]["reason"]
    assert by_line[16]["reason"].startswith("currency: amount in USD")


def test_default_rejects_file_sits_next_to_the_events(tmp_path):
    events = tmp_path / "events.jsonl"
    shutil.copy(EVENTS, events)
    result = run("dry-run", events, "--rulesets", support.RULESETS, "--members", MEMBERS)
    assert result.exit_code == 1
    assert len((tmp_path / "events.jsonl.rejects.jsonl").read_text().splitlines()) == 4


def test_all_valid_file_exits_0_and_writes_no_rejects(tmp_path):
    events = write(tmp_path, "ok.jsonl", [EXAMPLE_LINES[i] for i in (0, 1, 2, 4, 5)])
    result = dry(events, tmp_path)
    assert result.exit_code == 0, result.output
    assert "5 events: 5 accepted, 0 rejected, 0 invalid, 0 duplicates" in result.output
    assert not (tmp_path / "rejects.jsonl").exists()


def test_blank_and_comment_lines_are_skipped(tmp_path):
    events = write(tmp_path, "c.jsonl", ["# a comment", "", EXAMPLE_LINES[0], "  "])
    result = dry(events, tmp_path, "--format", "json")
    assert result.exit_code == 0
    assert [e["line_no"] for e in json.loads(result.stdout)["events"]] == [3]


def test_missing_rules_dir_exits_2(tmp_path):
    result = run("dry-run", EVENTS, "--rulesets", tmp_path / "no-rules",
                 "--rejects", tmp_path / "r.jsonl")
    assert result.exit_code == 2
    assert "no such file or directory" in result.output
    assert "rulesets cannot be loaded" in result.output
    assert not (tmp_path / "r.jsonl").exists()


def test_broken_rules_exit_2_listing_every_problem(tmp_path):
    broken = support.write_broken_rulesets(tmp_path / "broken")
    result = run("dry-run", EVENTS, "--rulesets", broken, "--rejects", tmp_path / "r.jsonl")
    assert result.exit_code == 2
    for _, _, _, fragment in support.BROKEN_EXPECTED:
        assert fragment in result.output


def test_missing_events_file_is_a_usage_error(tmp_path):
    assert run("dry-run", tmp_path / "none.jsonl").exit_code == 2


def test_json_output_shape(tmp_path):
    data = example_json(tmp_path)
    assert set(data) == {"format", "events", "input_errors", "summary"}
    assert data["format"] == "loyaltycore.dry-run/1"
    assert data["input_errors"] == [{"line_no": 10, "field": "occurred_at",
                                     "message": "timestamp needs a UTC offset (e.g. "
                                                "2026-05-01T10:00:00+08:00)"}]
    assert len(data["events"]) == 15
    for e in data["events"]:
        assert set(e) == RECEIPT_KEYS  # no not_fired without --explain
        for effect in e["effects"]:
            assert "trace" not in effect
    first = data["events"][0]
    assert first["event_id"] == "r-0001" and first["status"] == "accepted"
    assert (first["points"], first["pending_points"]) == (0, 468)
    assert first["ruleset_versions"] == {"group": "2026.1", "retail": "2026.1"}
    assert first["effects"][0] == {
        "line": "retail", "rule": "retail-base", "source": "rules", "kind": "hold",
        "points": 268, "basis": "base", "vests_at": "2026-02-09T11:20:00+08:00",
        "vests_on": None}
    upgrade = [e for e in data["events"] if e["event_id"] == "r-0011"][0]
    assert (upgrade["tier_before"], upgrade["tier_after"]) == ("member", "silver")
    rejected = [e for e in data["events"] if e["status"] == "rejected"]
    assert [e["event_id"] for e in rejected] == ["r-0009", "r-0013", "r-0016"]
    assert rejected[1]["violations"] == [{
        "invariant": "rights", "rule": "retail-parking-2h",
        "message": "retail-parking-2h allows 2 per month; 2 used, 1 more requested",
        "numbers": {"quota": 2, "remaining": 0, "requested": 1}}]
    s = data["summary"]
    assert set(s) == {"events", "lines", "rules", "tier_moves", "rights", "rejections"}
    assert s["events"] == {"read": 16, "accepted": 12, "rejected": 3, "invalid": 1,
                           "duplicates": 0}
    assert s["lines"]["retail"]["reversed"] == 840
    assert s["tier_moves"] == [{"from": "member", "to": "silver", "count": 1,
                               "reason": "upgrade"}]
    assert s["rejections"] == {"rights": 2, "currency": 1, "input:occurred_at": 1}
    assert s["rules"]["retail-first-purchase"] == {"fired": 3, "points": 600}


def test_events_are_run_in_time_order(tmp_path):
    data = example_json(tmp_path)
    times = [e["occurred_at"] for e in data["events"]]
    assert [e["line_no"] for e in data["events"]][-3:] == [15, 13, 16]
    assert times == sorted(times, key=datetime.fromisoformat)


def test_json_explain_has_traces_and_not_fired(tmp_path):
    data = example_json(tmp_path, "--explain")
    first = data["events"][0]
    assert set(first) == RECEIPT_KEYS | {"not_fired"}
    base = first["effects"][0]
    assert base["trace"] == {
        "rule": "retail-base", "version": "2026.1", "file": str(support.RETAIL_RULES),
        "detail": "spend 268.00 x base rate 1 = 268 points",
        "values": {"event.amount": "268.00", "event.giftcard_paid": "0",
                   "event.giftcard_purchase": False, "event.parking_fee": "0"}}
    missed = {m["rule"]: m for m in first["not_fired"]}
    assert missed["retail-beauty-x2"] == {
        "rule": "retail-beauty-x2", "version": "2026.1",
        "reason": "condition is false: event.category == 'beauty'",
        "values": {"event.category": "fashion"}}


def test_text_explain_shows_traces_and_rules_not_fired(tmp_path):
    result = dry(EVENTS, tmp_path, "--explain")
    out = result.output
    assert "+268 pending until 2026-02-09 (retail-base): spend 268.00 x base rate 1 = 268 " \
           "points" in out
    assert "not fired retail-beauty-x2: condition is false: event.category == 'beauty'" in out
    assert "-840 pts reversing r-0002 (retail-refund): r-0002 earned 1680 on 560.00; " \
           "refunds now 280.00 -> claw back 840 (0 already)" in out
    assert "tier member -> silver: spend 20085.00 reaches the silver threshold 20000" in out
    plain = dry(EVENTS, tmp_path).output
    assert "not fired" not in plain and "x base rate" not in plain


def test_summary_only(tmp_path):
    result = dry(EVENTS, tmp_path, "--summary-only")
    assert result.exit_code == 1
    assert "r-0001" not in result.stdout
    assert "16 events: 12 accepted, 3 rejected, 1 invalid, 0 duplicates" in result.stdout
    assert "Points by line" in result.stdout
    data = example_json(tmp_path, "--summary-only")
    assert data["events"] == [] and data["summary"]["events"]["read"] == 16
    assert len(data["input_errors"]) == 1


def test_duplicate_lines_are_reported_as_duplicates(tmp_path):
    events = write(tmp_path, "dup.jsonl", [EXAMPLE_LINES[0], EXAMPLE_LINES[1],
                                           EXAMPLE_LINES[0]])
    text = dry(events, tmp_path)
    assert text.exit_code == 0
    assert "duplicate (same as before; nothing applied)" in text.output
    assert "3 events: 2 accepted, 0 rejected, 0 invalid, 1 duplicates" in text.output
    data = json.loads(dry(events, tmp_path, "--format", "json").stdout)
    assert [(e["line_no"], e["duplicate"]) for e in data["events"]] == [
        (1, False), (3, True), (2, False)]
    assert data["events"][1]["effects"] == data["events"][0]["effects"]
    assert data["summary"]["lines"]["retail"]["pending"] == 468 + 1680  # counted once


def test_same_id_with_another_payload_is_rejected_not_fatal(tmp_path):
    changed = EXAMPLE_LINES[0].replace('"268.00"', '"269.00"')
    events = write(tmp_path, "conflict.jsonl", [EXAMPLE_LINES[0], changed])
    result = dry(events, tmp_path, "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["events"][1]["violations"][0]["invariant"] == "idempotency"
    row = json.loads((tmp_path / "rejects.jsonl").read_text().splitlines()[0])
    assert row["line_no"] == 2 and row["input"] == changed


# Regression test (this was a product bug, fixed in src/ while the tests were being written):
# summary counts a duplicate of a rejected event both as 'rejected' and as 'duplicates'
# (dryrun.summarize), so the categories add up to more than 'read'
def test_summary_categories_add_up_with_rejected_duplicates(tmp_path):
    events = write(tmp_path, "dup.jsonl", [EXAMPLE_LINES[8], EXAMPLE_LINES[8]])
    s = json.loads(dry(events, tmp_path, "--format", "json").stdout)["summary"]["events"]
    assert s["accepted"] + s["rejected"] + s["invalid"] + s["duplicates"] == s["read"]


def test_invalid_lines_do_not_stop_the_run(tmp_path):
    events = write(tmp_path, "bad.jsonl", ["{not json", EXAMPLE_LINES[0],
                                           '{"id": "x", "line": "hotel", "type": "stay", '
                                           '"member": "M", "occurred_at": '
                                           '"2026-03-01T10:00:00+08:00"}'])
    data = json.loads(dry(events, tmp_path, "--format", "json").stdout)
    errors = {e["line_no"]: e for e in data["input_errors"]}
    assert errors[1]["message"].startswith("not valid JSON")
    assert errors[3]["field"] == "line/type"
    assert "unknown line or event type 'hotel:stay'" in errors[3]["message"]
    assert [e["status"] for e in data["events"]] == ["accepted"]


def test_without_members_file_profiles_are_unknown(tmp_path):
    result = run("dry-run", EVENTS, "--rulesets", support.RULESETS, "--format", "json",
                 "--rejects", tmp_path / "r.jsonl")
    data = json.loads(result.stdout)
    vip = [e for e in data["events"] if e["event_id"] == "r-0008"][0]
    assert vip["status"] == "rejected"  # M1003 is not gold without the profile


# Regression test (this was a product bug, fixed in src/ while the tests were being written):
# a refund line without an amount crashes `loyalty dry-run` with a TypeError traceback
# (decide.py reversals) instead of rejecting that line
def test_refund_without_amount_is_a_reject_not_a_crash(tmp_path):
    refund = ('{"id": "rf", "line": "retail", "type": "refund", "member": "M1001", '
              '"occurred_at": "2026-02-03T10:00:00+08:00", "data": {"related_event": '
              '"r-0001"}}')
    events = write(tmp_path, "refund.jsonl", [EXAMPLE_LINES[0], refund])
    result = dry(events, tmp_path)
    assert result.exit_code == 1
    assert "rf" in (tmp_path / "rejects.jsonl").read_text()


def test_plugins_lists_retail_and_its_hooks():
    result = run("plugins", "--format", "json")
    assert result.exit_code == 0
    infos = {i["name"]: i for i in json.loads(result.stdout)}
    assert infos["retail"]["lines"] == ["retail"]
    assert infos["retail"]["hooks"] == ["loyalty_lines", "loyalty_rulesets"]
    assert infos["retail"]["version"] == "loyaltycore-retail 0.1.0"
    table = run("plugins")
    assert table.exit_code == 0
    for text in ("retail", "loyalty_lines", "retail:purchase", "retail:refund"):
        assert text in table.output


def test_plugins_respects_loyalty_plugins(monkeypatch):
    monkeypatch.setenv("LOYALTY_PLUGINS", "none")
    assert json.loads(run("plugins", "--format", "json").stdout) == []


def test_a_redemption_and_its_cancellation_read_in_the_dry_run(tmp_path):
    purchase = EXAMPLE_LINES[0]
    member = json.loads(purchase)["member"]
    extra = [json.dumps({"id": f"x-{n}", "line": line, "type": etype, "member": member,
                         "occurred_at": f"2026-03-0{n}T10:00:00+08:00", "data": data})
             for n, line, etype, data in [
                 (5, "retail", "redeem", {"points": 100, "reference": "POS-1"}),
                 (6, "retail", "cancel_redemption", {"related_event": "x-5", "points": 40}),
                 (7, "retail", "cancel_redemption", {"related_event": "x-5", "points": 80})]]
    events = write(tmp_path, "events.jsonl", [purchase, *extra])
    result = dry(events, tmp_path)
    out = result.output
    assert "retail/redeem" in out and "-100 pts redeemed" in out
    assert "+40 pts given back from x-5" in out
    assert "would give back 80 points, but redemption 'x-5' spent 100 and 40 were given " \
           "back already" in out
    assert result.exit_code == 1  # the last one is rejected


def test_holds_at_a_till_read_in_the_dry_run(tmp_path):
    purchase = EXAMPLE_LINES[0]
    member = json.loads(purchase)["member"]
    extra = [json.dumps({"id": eid, "line": "retail", "type": etype, "member": member,
                         "occurred_at": f"2026-03-05T10:{minute:02d}:00+08:00", "data": data})
             for eid, minute, etype, data in [
                 ("h-1", 0, "reserve_points", {"points": 100, "reference": "basket 1"}),
                 ("k-1", 3, "capture_reservation", {"related_event": "h-1"}),
                 ("h-2", 5, "reserve_points", {"points": 100, "minutes": 5}),
                 ("k-2", 20, "capture_reservation", {"related_event": "h-2"})]]
    events = write(tmp_path, "events.jsonl", [purchase, *extra])
    result = dry(events, tmp_path)
    out = result.output
    assert "100 pts on hold until 2026-03-05T10:30+08:00" in out
    assert "-100 pts redeemed from hold h-1" in out
    assert "reservation 'h-2' lapsed unsettled at 2026-03-05T02:10:00+00:00" in out
    assert result.exit_code == 1  # the capture after the lapse is rejected
