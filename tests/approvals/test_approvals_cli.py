"""``governed-db approvals`` and ``keys init --approver``, run as real subprocesses."""

from __future__ import annotations

import json
import os
import pty
import stat
import time
from pathlib import Path

import pytest

import governed_db
from tests.approvals.conftest import ROWS
from tests.approvals.helpers import DELETE, approval_policy, cli, count, prod, write_key


def _ask(dsn: str, setup, identity: str = "agent:claude") -> governed_db.ApprovalRequired:
    with (
        prod(dsn, setup, identity=identity) as conn,
        pytest.raises(governed_db.ApprovalRequired) as info,
    ):
        conn.execute(DELETE)
    return info.value


def test_keys_init_approver_prints_the_policy_line(home: Path) -> None:
    done = cli(home, "keys", "init", "--approver", "dana", "--store", "file")
    assert done.returncode == 0, done.stderr
    line = next(ln for ln in done.stdout.splitlines() if "dana:" in ln)
    assert 'key: "ed25519:' in line
    path = home / "approvers" / "dana.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = cli(home, "keys", "init", "--approver", "dana", "--store", "file")
    assert again.returncode != 0
    assert "already exists" in again.stderr
    assert "Traceback" not in again.stderr


def test_approve_from_the_cli_then_the_statement_runs(dsn: str, home: Path) -> None:
    setup = approval_policy(home)
    write_key(home, "alice", setup.keys["alice"])
    exc = _ask(dsn, setup)
    policy = str(setup.policy_path)
    listed = cli(home, "approvals", "list", "--pending", "--json", "--policy", policy)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["id"] for r in rows] == [exc.approval_id]
    assert rows[0]["statement"] == DELETE
    assert rows[0]["state"] == "pending"
    shown = cli(home, "approvals", "show", exc.approval_id, "--policy", policy)
    assert shown.returncode == 0, shown.stderr
    assert "orders" in shown.stdout
    assert "agent:claude" in shown.stdout
    assert "orders-writes-need-approval" in shown.stdout
    table = cli(home, "approvals", "list", "--policy", policy)
    assert exc.approval_id in table.stdout
    # the command in the error is the one to run (with a reason filled in)
    assert exc.approve_command is not None
    args = exc.approve_command.split()[1:-2]
    done = cli(home, *args, "--reason", "checked the rows", "--max-rows", "11")
    assert done.returncode == 0, done.stderr
    assert "granted" in done.stdout
    with prod(dsn, setup) as conn:
        conn.execute(DELETE)
    assert count(dsn) == ROWS - 11


def test_cli_errors_are_one_clear_line(dsn: str, home: Path) -> None:
    setup = approval_policy(home, approval={"group": "leads"})
    text = setup.policy_path.read_text().replace('"dba": [', '"leads": ["carol"], "dba": [')
    setup.policy_path.write_text(text)
    policy = str(setup.policy_path)
    write_key(home, "alice", setup.keys["alice"])
    write_key(home, "carol", setup.keys["carol"])
    exc = _ask(dsn, setup)

    def run(*args: str) -> str:
        done = cli(home, "approvals", *args, "--policy", policy)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        return done.stderr

    assert "unknown approval id" in run("approve", "0123456789abcdef0123", "--reason", "x")
    assert "not an approver for rule" in run(
        "approve", exc.approval_id, "--reason", "x", "--approver", "alice"
    )
    assert "no approver key found for bob" in run(
        "approve", exc.approval_id, "--reason", "x", "--approver", "bob"
    )
    assert "is not an approver" in run(
        "approve", exc.approval_id, "--reason", "x", "--approver", "mallory"
    )
    denied = cli(home, "approvals", "deny", exc.approval_id, "--reason", "no", "--policy", policy)
    assert denied.returncode == 0, denied.stderr
    assert "already decided: denied" in run(
        "approve", exc.approval_id, "--reason", "x", "--approver", "carol"
    )


def test_cli_refuses_an_expired_request(dsn: str, home: Path) -> None:
    setup = approval_policy(home, approval={"expires": "1s"})
    write_key(home, "alice", setup.keys["alice"])
    exc = _ask(dsn, setup)
    time.sleep(1.5)
    done = cli(
        home,
        "approvals",
        "approve",
        exc.approval_id,
        "--reason",
        "late",
        "--policy",
        str(setup.policy_path),
    )
    assert done.returncode == 1
    assert "expired" in done.stderr


def test_revoke_from_the_cli(dsn: str, home: Path) -> None:
    setup = approval_policy(home)
    write_key(home, "alice", setup.keys["alice"])
    policy = str(setup.policy_path)
    exc = _ask(dsn, setup)
    assert (
        cli(
            home,
            "approvals",
            "approve",
            exc.approval_id,
            "--reason",
            "ok",
            "--max-rows",
            "20",
            "--policy",
            policy,
        ).returncode
        == 0
    )
    done = cli(home, "approvals", "revoke", exc.approval_id, "--policy", policy)
    assert done.returncode == 0, done.stderr
    assert "revoked" in done.stdout
    again = _ask(dsn, setup)
    assert f"{exc.approval_id} was revoked by alice" in str(again)
    assert count(dsn) == ROWS


def test_self_approval_is_refused_unless_the_rule_allows_it(dsn: str, home: Path) -> None:
    setup = approval_policy(home, emails={"alice": "alice@example.com"})
    write_key(home, "alice", setup.keys["alice"])
    exc = _ask(dsn, setup, identity="human:alice")
    done = cli(
        home,
        "approvals",
        "approve",
        exc.approval_id,
        "--reason",
        "mine",
        "--policy",
        str(setup.policy_path),
    )
    assert done.returncode == 1
    assert "does not allow self-approval" in done.stderr
    # a grant written straight into the store by the requester counts for nothing
    setup.decide(exc.approval_id, "alice", max_rows=20)
    assert _ask(dsn, setup, identity="human:alice").approval_id == exc.approval_id
    assert count(dsn) == ROWS


def test_allowed_self_approval_needs_a_terminal_and_is_break_glass(dsn: str, home: Path) -> None:
    setup = approval_policy(home, approval={"self_approval": True})
    write_key(home, "alice", setup.keys["alice"])
    policy = str(setup.policy_path)
    exc = _ask(dsn, setup, identity="human:alice")
    args = (
        "approvals",
        "approve",
        exc.approval_id,
        "--reason",
        "outage",
        "--max-rows",
        "20",
        "--policy",
        policy,
    )
    done = cli(home, *args)
    assert done.returncode == 1
    assert "needs a person at a terminal" in done.stderr
    leader, follower = pty.openpty()
    try:
        done = cli(home, *args, stdin=follower)
    finally:
        os.close(leader)
        os.close(follower)
    assert done.returncode == 0, done.stderr
    with prod(dsn, setup, identity="human:alice") as conn:
        conn.execute(DELETE)
    assert count(dsn) == ROWS - 11


def test_self_approval_of_an_agent_request_is_never_allowed(dsn: str, home: Path) -> None:
    setup = approval_policy(home, approval={"self_approval": True})
    # an agent named like an approver: the approver's own grant is a self-approval of a
    # non-human request, which never counts
    setup.decide(
        _ask(dsn, setup, identity="agent:alice").approval_id, "alice", break_glass=True, max_rows=20
    )
    _ask(dsn, setup, identity="agent:alice")
    assert count(dsn) == ROWS


def test_two_approvers_acting_at_once_both_count(dsn: str, home: Path) -> None:
    import subprocess
    import sys

    setup = approval_policy(home, approval={"min_approvals": 2})
    for name in ("alice", "bob"):
        write_key(home, name, setup.keys[name])
    exc = _ask(dsn, setup)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNED_DB_")}
    env["GOVERNED_DB_HOME"] = str(home)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "governed_db.cli.main",
                "approvals",
                "approve",
                exc.approval_id,
                "--reason",
                "ok",
                "--max-rows",
                "11",
                "--expires",
                "2h",
                "--approver",
                name,
                "--policy",
                str(setup.policy_path),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("alice", "bob")
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    with prod(dsn, setup) as conn:
        conn.execute(DELETE)
    assert count(dsn) == ROWS - 11


def test_bad_expires_is_a_clear_error(dsn: str, home: Path) -> None:
    setup = approval_policy(home)
    write_key(home, "alice", setup.keys["alice"])
    exc = _ask(dsn, setup)
    done = cli(
        home,
        "approvals",
        "approve",
        exc.approval_id,
        "--reason",
        "ok",
        "--expires",
        "soon",
        "--policy",
        str(setup.policy_path),
    )
    assert done.returncode == 1
    assert "bad duration 'soon'" in done.stderr


def test_python_api_self_approval_in_a_notebook_is_break_glass(
    dsn: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import sys
    import types

    from governed_db.approvals import DecisionError, decide

    setup = approval_policy(home, approval={"self_approval": True})
    write_key(home, "alice", setup.keys["alice"])
    exc = _ask(dsn, setup, identity="human:alice")
    policy = setup.policy
    assert exc.approval_id is not None
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # not a terminal
    with pytest.raises(DecisionError, match="terminal or notebook"):
        decide(policy, exc.approval_id, "grant", reason="outage", max_rows=20)
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    with pytest.raises(DecisionError, match="reason is required"):
        decide(policy, exc.approval_id, "grant", reason=" ", max_rows=20)
    done = decide(policy, exc.approval_id, "grant", reason="outage", max_rows=20)
    assert done.decision.body["break_glass"] is True
    assert done.verdict.state == "granted"
    with prod(dsn, setup, identity="human:alice") as conn:
        conn.execute(DELETE)
    assert count(dsn) == ROWS - 11


def test_decisions_made_in_the_cli_are_audit_records(dsn: str, home: Path) -> None:
    from governed_db.audit.reader import iter_records

    setup = approval_policy(home)
    document = json.loads(setup.policy_path.read_text())
    spool = home / "audit"
    document["audit"] = {"path": str(spool), "durability": "strict"}
    setup.policy_path.write_text(json.dumps(document))
    write_key(home, "alice", setup.keys["alice"])
    exc = _ask(dsn, setup)
    policy = str(setup.policy_path)
    granted = cli(
        home,
        "approvals",
        "approve",
        exc.approval_id,
        "--policy",
        policy,
        "--approver",
        "alice",
        "--reason",
        "checked the rows",
        "--max-rows",
        "11",
    )
    assert granted.returncode == 0, granted.stderr
    revoked = cli(
        home, "approvals", "revoke", exc.approval_id, "--policy", policy, "--approver", "alice"
    )
    assert revoked.returncode == 0, revoked.stderr
    # each CLI process writes a chain of its own: order the events by time
    events = sorted(
        (r for r in iter_records(spool) if r["kind"] == "approval"), key=lambda r: r["ts"]
    )
    assert [(e["approval.event"], e["approval.state"]) for e in events] == [
        ("grant", "granted"),
        ("revoke", "revoked"),
    ]
    assert all(e["approval.id"] == exc.approval_id for e in events)
    assert events[0]["approver"] == "alice"
    assert events[0]["max_rows"] == 11
    assert events[0]["rule_id"] == "orders-writes-need-approval"
    verified = cli(home, "audit", "verify", str(spool), "--json")
    assert json.loads(verified.stdout)["chains"], verified.stderr
    assert not [p for p in json.loads(verified.stdout)["problems"] if p["severity"] == "error"]
