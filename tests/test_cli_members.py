"""The member and points commands, the way an operator runs them, on SQLite and PostgreSQL.

``loyalty enrol`` / ``link-identity`` / ``find-member`` / ``merge`` / ``assign-tier`` and
``redeem`` / ``cancel-redemption`` / ``reserve-points`` / ``capture-reservation`` /
``release-reservation`` through click's CliRunner, each checked against what the API
(``Engine.member``, ``tier_history``, ``check_ledger``) then reads from the same database.

Rules: the real group policy (rulesets/) and the retail plugin's rules (the CLI is pinned
to retail by tests/conftest.py): retail points are pending for 7 days; redemptions come
in hundreds, 100 at least.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from loyaltycore.cli import cli
from loyaltycore.engine import Engine
from loyaltycore.errors import ConfigurationError
from plugins import support

REPO = Path(__file__).resolve().parent.parent
RULES = ["--rulesets", str(REPO / "rulesets")]
PHONE = "13800138000"


def loyalty(*args: str, code: int | None = 0, stdin: str | None = None):
    result = CliRunner().invoke(cli, [*args], input=stdin)
    if code is not None:
        assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    return result


def open_engine(db: str) -> Engine:
    return Engine.open([REPO / "rulesets"], plugins=[support.RETAIL], load_entrypoints=False,
                       db=db)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def purchase(event_id: str, member: str, amount: str, at: str) -> dict:
    return {"id": event_id, "line": "retail", "type": "purchase", "member": member,
            "occurred_at": at, "amount": amount, "currency": "CNY",
            "data": {"store": "SH-01", "category": "fashion"}}


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setenv("LOYALTY_SECRET", "test-group-secret")


# --- enrol ---------------------------------------------------------------------------------


def test_enrol_keeps_the_good_profiles_and_writes_the_refused_ones_with_reasons(db_url,
                                                                                 tmp_path):
    members = write_lines(tmp_path / "members.jsonl", [
        '{"id": "A1", "birth_month": 3, "enrolled_on": "2025-06-15"}',
        '{"id": "A2", "birth_month": 13}',
        '{"id": "A3", "tier": "gold", "enrolled_on": "2024-01-01"}',
        "not json",
        '{"id": "A4", "tier": "platinum"}',
        '{"id": "A5", "nickname": "x"}',
    ])
    out = loyalty("enrol", str(members), *RULES, "--db", db_url, "--format", "json", code=1)
    summary = json.loads(out.stdout)
    assert summary == {"profiles": 6, "enrolled": 2, "refused": 4,
                       "rejects_file": str(tmp_path / "members.jsonl.rejects.jsonl")}
    rejects = [json.loads(line) for line in
               (tmp_path / "members.jsonl.rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [2, 4, 5, 6]
    assert "field birth_month" in rejects[0]["reason"]
    assert rejects[1]["input"] == "not json" and "not JSON" in rejects[1]["reason"]
    assert "'platinum' is not on the ladder" in rejects[2]["reason"]
    assert "field nickname" in rejects[3]["reason"]
    assert f"{members}:5: member A4: tier 'platinum'" in out.stderr

    engine = open_engine(db_url)
    try:
        a1, a3 = engine.member("A1"), engine.member("A3")
        assert (a1.tier, a1.birth_month, a1.enrolled_on.isoformat()) == ("member", 3,
                                                                         "2025-06-15")
        assert a3.tier == "gold"
        # the starting tier is explained by the tier history, dated at enrolment
        assert [(h["from_tier"], h["to_tier"], h["reason"], h["at"][:10])
                for h in engine.tier_history("A3")] == [("member", "gold", "enrolment",
                                                         "2024-01-01")]
        assert engine.tier_history("A1") == []
    finally:
        engine.close()

    # the same file again: nothing new, nothing twice
    loyalty("enrol", str(members), *RULES, "--db", db_url, code=1)
    engine = open_engine(db_url)
    try:
        assert len(engine.tier_history("A3")) == 1
    finally:
        engine.close()


def test_enrolment_never_changes_the_tier_of_an_enrolled_member(db_url, tmp_path):
    first = write_lines(tmp_path / "first.jsonl", ['{"id": "B1", "tier": "gold"}',
                                                   '{"id": "B2"}'])
    loyalty("enrol", str(first), *RULES, "--db", db_url)
    events = write_lines(tmp_path / "events.jsonl", [json.dumps(purchase(
        "p-1", "B2", "100.00", "2026-03-04T12:00:00+08:00"))])
    loyalty("process", str(events), *RULES, "--db", db_url)

    again = write_lines(tmp_path / "again.jsonl", ['{"id": "B1", "tier": "silver"}',
                                                   '{"id": "B2", "tier": "diamond"}',
                                                   '{"id": "B1", "tier": "gold",'
                                                   ' "birth_month": 7}'])
    out = loyalty("enrol", str(again), *RULES, "--db", db_url, code=1)
    assert "member B1 is already enrolled on tier gold" in out.stderr
    assert "member B2 is already enrolled on tier member and has events" in out.stderr
    assert "assign-tier" in out.stderr
    engine = open_engine(db_url)
    try:
        b1 = engine.member("B1", datetime(2026, 12, 31, tzinfo=UTC))
        # the refused profiles changed nothing; the one that kept the tier was applied
        assert (b1.tier, b1.birth_month) == ("gold", 7)
        assert engine.member("B2", datetime(2026, 12, 31, tzinfo=UTC)).tier == "member"
    finally:
        engine.close()


def test_enrol_many_raises_without_a_list_for_the_refused(engine):
    with pytest.raises(ConfigurationError, match="'bronze' is not on the ladder"):
        engine.enrol({"id": "C1", "tier": "bronze"})
    refused: list = []
    assert engine.enrol_many([{"id": "C2", "tier": "silver"}, {"id": "C3", "tier": "bronze"}],
                             refused=refused) == 1
    assert [(p.id, "not on the ladder" in why) for p, why in refused] == [("C3", True)]
    assert engine.member("C2").tier == "silver"
    with pytest.raises(ConfigurationError, match="already enrolled on tier silver"):
        engine.enrol({"id": "C2", "tier": "gold"})


# --- identities and merges -------------------------------------------------------------------


def test_identities_are_linked_and_found_without_the_value_ever_printed(db_url, secret):
    linked = loyalty("link-identity", "D1", "phone", *RULES, "--db", db_url,
                     stdin=PHONE + "\n")
    assert "phone identity linked to member D1" in linked.output
    found = loyalty("find-member", "phone", *RULES, "--db", db_url, stdin=PHONE + "\n")
    assert found.stdout.strip() == "D1"
    unknown = loyalty("find-member", "phone", "-", *RULES, "--db", db_url,
                      stdin="13900000000\n", code=1)
    assert "no member is linked to this phone identity" in unknown.stderr
    taken = loyalty("link-identity", "D2", "phone", *RULES, "--db", db_url,
                    stdin=PHONE + "\n", code=2)
    assert "already belongs to member D1; merge" in taken.stderr
    for result in (linked, found, unknown, taken):
        assert PHONE not in result.output
    engine = open_engine(db_url)
    try:
        with engine.store.reading() as conn:
            rows = conn.execute(text("SELECT kind, digest, member_id FROM identities")).all()
    finally:
        engine.close()
    assert [(kind, member) for kind, _, member in rows] == [("phone", "D1")]
    assert all(PHONE not in digest for _, digest, _ in rows)


def test_merge_moves_the_points_and_later_events_land_on_the_survivor(db_url, tmp_path,
                                                                      secret):
    events = write_lines(tmp_path / "events.jsonl", [
        json.dumps(purchase("e-1", "E1", "300.00", "2026-03-02T12:00:00+08:00")),
        json.dumps(purchase("e-2", "E2", "500.00", "2026-03-03T12:00:00+08:00"))])
    loyalty("process", str(events), *RULES, "--db", db_url)
    loyalty("jobs", "run", "--as-of", "2026-03-20", *RULES, "--db", db_url)
    loyalty("link-identity", "E2", "card", "C-0042", *RULES, "--db", db_url)
    engine = open_engine(db_url)
    try:
        at = datetime(2026, 3, 21, tzinfo=UTC)
        before = engine.member("E1", at).available, engine.member("E2", at).available
    finally:
        engine.close()
    assert before[0] > 0 and before[1] > 0

    out = loyalty("merge", "E1", "E2", "--reason", "one person, CRM ticket 42",
                  "--at", "2026-03-21T00:00:00+00:00", *RULES, "--db", db_url)
    assert "E2 merged into E1" in out.output
    assert loyalty("find-member", "card", "C-0042", *RULES, "--db",
                   db_url).stdout.strip() == "E1"
    later = write_lines(tmp_path / "later.jsonl", [json.dumps(
        purchase("e-3", "E2", "200.00", "2026-03-22T12:00:00+08:00"))])
    loyalty("process", str(later), *RULES, "--db", db_url)
    again = loyalty("merge", "E1", "E2", "--reason", "twice", *RULES, "--db", db_url, code=2)
    assert "already merged into E1" in again.stderr

    engine = open_engine(db_url)
    try:
        at = datetime(2026, 3, 23, tzinfo=UTC)
        survivor = engine.member("E1", at)
        assert survivor.available == before[0] + before[1]
        assert survivor.pending > 0  # e-3, sent as E2, waits out its return window on E1
        assert engine.member("E2", at).id == "E1"
        assert engine.check_ledger().clean
    finally:
        engine.close()


def test_assign_tier_is_audited_and_never_permanent(db_url):
    out = loyalty("assign-tier", "F1", "diamond", "--reason", "VIP guest of the chairman",
                  "--until", "2099-06-30", *RULES, "--db", db_url, "--format", "json")
    move = json.loads(out.stdout)
    assert (move["from_tier"], move["to_tier"], move["reason"], move["detail"]) == (
        "member", "diamond", "manual", "VIP guest of the chairman")
    assert move["valid_until"].startswith("2099-06-30T23:59:59")
    past = loyalty("assign-tier", "F1", "gold", "--reason", "x", "--until", "2020-01-01",
                   *RULES, "--db", db_url, code=2)
    assert "never a permanent floor" in past.stderr
    unknown = loyalty("assign-tier", "F1", "platinum", "--reason", "x", "--until",
                      "2099-01-01", *RULES, "--db", db_url, code=2)
    assert "unknown tier 'platinum'" in unknown.stderr
    missing = loyalty("assign-tier", "F1", "gold", "--until", "2099-01-01", *RULES,
                      "--db", db_url, code=2)
    assert "--reason" in missing.output


# --- spending and holding points -------------------------------------------------------------


def _balance(out) -> dict:
    return json.loads(out.stdout)["balance"]


def test_points_commands_spend_hold_and_give_back_as_the_api_does(db_url, tmp_path):
    events = write_lines(tmp_path / "events.jsonl", [json.dumps(
        purchase("g-1", "G1", "3000.00", "2026-03-02T12:00:00+08:00"))])
    loyalty("process", str(events), *RULES, "--db", db_url)
    loyalty("jobs", "run", "--as-of", "2026-03-20", *RULES, "--db", db_url)
    engine = open_engine(db_url)
    try:
        start = engine.member("G1", datetime(2026, 3, 20, tzinfo=UTC)).available
    finally:
        engine.close()
    assert start >= 2000

    def run(*args: str, code: int = 0):
        return loyalty(*args, *RULES, "--db", db_url, "--format", "json", code=code)

    red = run("redeem", "G1", "1000", "--line", "retail", "--event-id", "r-1",
              "--at", "2026-03-21T10:00:00+08:00")
    assert json.loads(red.stdout)["status"] == "accepted"
    assert _balance(red)["available"] == start - 1000
    # a retry with the same arguments is the same redemption, not a second one
    retry = run("redeem", "G1", "1000", "--line", "retail", "--event-id", "r-1",
                "--at", "2026-03-21T10:00:00+08:00")
    assert json.loads(retry.stdout)["duplicate"] is True
    assert _balance(retry)["available"] == start - 1000
    conflict = run("redeem", "G1", "900", "--line", "retail", "--event-id", "r-1",
                   "--at", "2026-03-21T10:00:00+08:00", code=2)
    assert "already processed with a different payload" in conflict.stderr
    over = run("redeem", "G1", str((start // 100 + 1) * 100), "--line", "retail",
               "--event-id", "r-2", "--at", "2026-03-21T10:01:00+08:00", code=1)
    assert json.loads(over.stdout)["violations"][0]["invariant"] == "redemption"
    assert "would overdraw" in json.loads(over.stdout)["violations"][0]["message"]
    odd = run("redeem", "G1", "150", "--line", "retail", "--event-id", "r-3",
              "--at", "2026-03-21T10:02:00+08:00", code=1)
    assert "multiple of 100" in json.loads(odd.stdout)["violations"][0]["message"]

    hold = run("reserve-points", "G1", "500", "--line", "retail", "--event-id", "h-1",
               "--reference", "till 7", "--at", "2026-03-22T10:00:00+08:00")
    assert _balance(hold) == {"at": "2026-03-22T10:00:00+08:00",
                              "available": start - 1500, "pending": 0, "reserved": 500}
    capture = run("capture-reservation", "G1", "h-1", "--points", "300", "--line", "retail",
                  "--event-id", "h-1-pay", "--at", "2026-03-22T10:05:00+08:00")
    assert _balance(capture)["available"] == start - 1300  # 200 of the 500 came back
    assert _balance(capture)["reserved"] == 0
    cancel = run("cancel-redemption", "G1", "h-1-pay", "--line", "retail", "--event-id",
                 "c-1", "--reason", "order cancelled", "--at", "2026-03-23T09:00:00+08:00")
    assert _balance(cancel)["available"] == start - 1000
    hold2 = run("reserve-points", "G1", "400", "--line", "retail", "--event-id", "h-2",
                "--minutes", "10", "--at", "2026-03-23T10:00:00+08:00")
    assert _balance(hold2)["reserved"] == 400
    release = run("release-reservation", "G1", "h-2", "--line", "retail", "--event-id",
                  "h-2-off", "--reason", "customer paid cash",
                  "--at", "2026-03-23T10:03:00+08:00")
    assert _balance(release) == {"at": "2026-03-23T10:03:00+08:00",
                                 "available": start - 1000, "pending": 0, "reserved": 0}
    settled = run("capture-reservation", "G1", "h-2", "--line", "retail", "--event-id",
                  "h-2-pay", "--at", "2026-03-23T10:04:00+08:00", code=1)
    assert json.loads(settled.stdout)["violations"][0]["invariant"] == "reservation"

    text_out = loyalty("redeem", "G1", "100", "--line", "retail", "--event-id", "r-4",
                       "--at", "2026-03-24T10:00:00+08:00", *RULES, "--db", db_url)
    assert "accepted" in text_out.stdout and "-100 pts redeemed" in text_out.stdout
    assert f"available {start - 1100}" in text_out.stdout

    engine = open_engine(db_url)
    try:
        assert engine.check_ledger().clean
        statement = engine.statement("G1")
        assert statement.closing_available == start - 1100
    finally:
        engine.close()


def test_merge_of_members_with_activity_dated_after_now_still_says_what_it_did(db_url,
                                                                                tmp_path):
    events = write_lines(tmp_path / "events.jsonl", [
        json.dumps(purchase("f-1", "H1", "300.00", "2099-03-02T12:00:00+08:00")),
        json.dumps(purchase("f-2", "H2", "300.00", "2099-03-03T12:00:00+08:00"))])
    loyalty("process", str(events), *RULES, "--db", db_url)
    # dated now, the merge would come before the members' events: refused
    early = loyalty("merge", "H1", "H2", "--reason", "one person", *RULES, "--db", db_url,
                    code=2)
    assert "takes effect at that time or later" in early.stderr
    out = loyalty("merge", "H1", "H2", "--reason", "one person", "--at",
                  "2099-03-31T00:00:00+00:00", *RULES, "--db", db_url)
    assert out.output.strip() == "H2 merged into H1"
    engine = open_engine(db_url)
    try:
        assert engine.member("H2", datetime(2099, 4, 1, tzinfo=UTC)).id == "H1"
        assert engine.check_ledger().clean
    finally:
        engine.close()


def test_enrol_reads_a_json_list_and_names_the_refused_item(db_url, tmp_path):
    members = tmp_path / "members.json"
    members.write_text(json.dumps([{"id": "L1", "birth_month": 5},
                                   {"id": "L2", "tier": "gold"},
                                   {"id": "L3", "birth_month": 0}]), encoding="utf-8")
    out = loyalty("enrol", str(members), *RULES, "--db", db_url, code=1)
    assert f"{members}, item 3: field birth_month" in out.stderr
    rejects = [json.loads(line) for line in
               (tmp_path / "members.json.rejects.jsonl").read_text().splitlines()]
    assert [(r["item"], json.loads(r["input"])["id"]) for r in rejects] == [(3, "L3")]
    engine = open_engine(db_url)
    try:
        assert (engine.member("L1").birth_month, engine.member("L2").tier) == (5, "gold")
    finally:
        engine.close()


def test_a_partial_profile_keeps_what_is_known(db_url, tmp_path):
    first = write_lines(tmp_path / "first.jsonl",
                        ['{"id": "K1", "birth_month": 7, "enrolled_on": "2023-09-09"}'])
    loyalty("enrol", str(first), *RULES, "--db", db_url)
    events = write_lines(tmp_path / "events.jsonl", [json.dumps(
        purchase("k-1", "K1", "100.00", "2026-03-04T12:00:00+08:00"))])
    loyalty("process", str(events), *RULES, "--db", db_url)
    partial = write_lines(tmp_path / "partial.jsonl", ['{"id": "K1"}'])
    loyalty("enrol", str(partial), *RULES, "--db", db_url)
    engine = open_engine(db_url)
    try:
        k1 = engine.member("K1", datetime(2026, 12, 31, tzinfo=UTC))
        assert (k1.birth_month, k1.enrolled_on.isoformat()) == (7, "2023-09-09")
    finally:
        engine.close()


def test_a_manual_tier_dated_before_the_members_history_is_refused(db_url, tmp_path):
    events = write_lines(tmp_path / "events.jsonl", [json.dumps(
        purchase("j-1", "J1", "100.00", "2026-03-04T12:00:00+08:00"))])
    loyalty("process", str(events), *RULES, "--db", db_url)
    out = loyalty("assign-tier", "J1", "gold", "--reason", "x", "--until", "2099-01-01",
                  "--at", "2026-01-01T00:00:00+00:00", *RULES, "--db", db_url, code=2)
    assert "member J1 has activity or a tier move at 2026-03-04" in out.stderr
    engine = open_engine(db_url)
    try:
        assert engine.tier_history("J1") == []
    finally:
        engine.close()
