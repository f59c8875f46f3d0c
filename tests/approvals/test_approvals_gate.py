"""A statement that needs approval runs only under a valid signed grant bound to it exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import governed_db
from tests.approvals.conftest import ROWS
from tests.approvals.helpers import DELETE, approval_policy, count, prod


def _ask(dsn: str, setup, statement: str = DELETE, params=None, **kw) -> str:
    with prod(dsn, setup, **kw) as conn, pytest.raises(governed_db.ApprovalRequired) as info:
        conn.execute(statement, params)
    assert info.value.approval_id
    return info.value.approval_id


def test_approved_statement_runs_once(dsn: str, home: Path) -> None:
    setup = approval_policy(home)
    approval_id = _ask(dsn, setup)
    setup.decide(approval_id, "alice")
    with prod(dsn, setup) as conn:
        conn.execute(DELETE)
    assert count(dsn) == ROWS - 11
    with prod(dsn, setup) as conn, pytest.raises(governed_db.ApprovalRequired) as info:
        conn.execute(DELETE)
    assert info.value.approval_id != approval_id
    assert "used" in str(info.value)


def test_refusal_names_the_request_and_the_command(dsn: str, home: Path) -> None:
    setup = approval_policy(home)
    with prod(dsn, setup) as conn, pytest.raises(governed_db.ApprovalRequired) as info:
        conn.execute(DELETE)
    exc = info.value
    assert exc.approve_command is not None
    assert f"governed-db approvals approve {exc.approval_id}" in exc.approve_command
    assert "retry the same statement after approval" in str(exc)
    assert exc.sqlstate == "42501"
    # asking again finds the same pending request
    assert _ask(dsn, setup) == exc.approval_id
    assert count(dsn) == ROWS


@pytest.mark.parametrize(
    "other",
    [
        "delete from orders where id <= 12",
        "delete from orders where id <= 11 ",
        "DELETE from orders where id <= 11",
    ],
)
def test_one_character_changed_is_a_new_request(dsn: str, home: Path, other: str) -> None:
    setup = approval_policy(home)
    approval_id = _ask(dsn, setup)
    setup.decide(approval_id, "alice", max_rows=20)
    assert _ask(dsn, setup, other) != approval_id
    assert count(dsn) == ROWS


def test_other_parameters_are_refused(dsn: str, home: Path) -> None:
    setup = approval_policy(home)
    query = "delete from orders where id <= %s"
    approval_id = _ask(dsn, setup, query, (11,))
    setup.decide(approval_id, "alice", max_rows=20)
    assert _ask(dsn, setup, query, (12,)) != approval_id
    assert _ask(dsn, setup, query, ("11",)) != approval_id
    assert count(dsn) == ROWS
    with prod(dsn, setup) as conn:
        conn.execute(query, (11,))
    assert count(dsn) == ROWS - 11


def test_other_environment_is_refused(dsn: str, home: Path) -> None:
    setup = approval_policy(home, rule_environments=("prod", "staging"))
    approval_id = _ask(dsn, setup)
    setup.decide(approval_id, "alice")
    assert _ask(dsn, setup, environment="staging") != approval_id
    assert count(dsn) == ROWS
    with prod(dsn, setup) as conn:
        conn.execute(DELETE)
    assert count(dsn) == ROWS - 11


def test_other_requester_is_refused(dsn: str, home: Path) -> None:
    setup = approval_policy(home)
    approval_id = _ask(dsn, setup, identity="agent:one")
    setup.decide(approval_id, "alice")
    assert _ask(dsn, setup, identity="agent:two") != approval_id
    assert count(dsn) == ROWS


@pytest.mark.parametrize("decision", ["deny", "revoke"])
def test_denied_or_revoked_is_refused(dsn: str, home: Path, decision: str) -> None:
    setup = approval_policy(home)
    approval_id = _ask(dsn, setup)
    setup.decide(approval_id, "alice")
    setup.decide(approval_id, "bob", decision, reason="not on a Friday")
    with prod(dsn, setup) as conn, pytest.raises(governed_db.ApprovalRequired) as info:
        conn.execute(DELETE)
    state = {"deny": "denied", "revoke": "revoked"}[decision]
    assert f"{approval_id} was {state} by bob" in str(info.value)
    assert "not on a Friday" in str(info.value)
    assert count(dsn) == ROWS


def test_expired_grant_is_refused(dsn: str, home: Path) -> None:
    setup = approval_policy(home)
    approval_id = _ask(dsn, setup)
    setup.decide(approval_id, "alice", expires_in=-1)
    with prod(dsn, setup) as conn, pytest.raises(governed_db.ApprovalRequired) as info:
        conn.execute(DELETE)
    assert f"{approval_id} was expired" in str(info.value)
    assert count(dsn) == ROWS


def test_decision_signed_by_unlisted_key_counts_for_nothing(dsn: str, home: Path) -> None:
    setup = approval_policy(home)
    approval_id = _ask(dsn, setup)
    setup.decide(approval_id, "alice", key=Ed25519PrivateKey.generate())
    assert _ask(dsn, setup) == approval_id
    assert count(dsn) == ROWS


def test_approver_outside_the_group_counts_for_nothing(dsn: str, home: Path) -> None:
    setup = approval_policy(home, approval={"group": "leads"})
    text = setup.policy_path.read_text().replace('"dba": [', '"leads": ["carol"], "dba": [')
    setup.policy_path.write_text(text)
    approval_id = _ask(dsn, setup)
    setup.decide(approval_id, "alice")
    assert _ask(dsn, setup) == approval_id
    setup.decide(approval_id, "carol")
    with prod(dsn, setup) as conn:
        conn.execute(DELETE)
    assert count(dsn) == ROWS - 11


def test_min_approvals_needs_distinct_approvers(dsn: str, home: Path) -> None:
    setup = approval_policy(home, approval={"min_approvals": 2})
    approval_id = _ask(dsn, setup)
    setup.decide(approval_id, "alice")
    setup.decide(approval_id, "alice", reason="again")
    assert _ask(dsn, setup) == approval_id
    setup.decide(approval_id, "bob")
    with prod(dsn, setup) as conn:
        conn.execute(DELETE)
    assert count(dsn) == ROWS - 11


def test_max_rows_grant_rolls_back_a_larger_effect(dsn: str, home: Path) -> None:
    setup = approval_policy(home)
    approval_id = _ask(dsn, setup)
    setup.decide(approval_id, "alice", max_rows=10)
    with prod(dsn, setup) as conn, pytest.raises(governed_db.BlastRadiusExceeded):
        conn.execute(DELETE)  # touches 11 rows
    assert count(dsn) == ROWS


def test_default_max_rows_is_the_estimate(dsn: str, home: Path) -> None:
    setup = approval_policy(home)
    approval_id = _ask(dsn, setup)
    stored = setup.store().get(approval_id)
    assert stored is not None
    assert stored.request.estimated_rows is not None
    assert 5 <= stored.request.estimated_rows <= 20
    assert stored.request.operation == "delete"
    assert stored.request.tables_written == ("public.orders",)
    assert stored.request.requester["name"] == "claude"
    assert stored.request.environment == "prod"
    assert stored.request.rule_id == "orders-writes-need-approval"
    assert stored.request.policy_digest == setup.policy.digest
    assert stored.request.uses == 1
    assert stored.request.expires_at - stored.request.requested_at == 3600


def test_policy_change_invalidates_a_pinned_grant(dsn: str, home: Path) -> None:
    setup = approval_policy(home)
    approval_id = _ask(dsn, setup)
    setup.decide(approval_id, "alice")
    setup.policy_path.write_text(
        setup.policy_path.read_text().replace('"dev": null', '"qa": null, "dev": null')
    )
    assert _ask(dsn, setup) != approval_id
    assert count(dsn) == ROWS


def test_unpinned_grant_survives_a_policy_change(dsn: str, home: Path) -> None:
    setup = approval_policy(home, approval={"pin_policy": False})
    approval_id = _ask(dsn, setup)
    setup.decide(approval_id, "alice")
    setup.policy_path.write_text(
        setup.policy_path.read_text().replace('"dev": null', '"qa": null, "dev": null')
    )
    with prod(dsn, setup) as conn:
        conn.execute(DELETE)
    assert count(dsn) == ROWS - 11


def test_statement_without_approval_need_runs(dsn: str, home: Path) -> None:
    setup = approval_policy(home)
    with prod(dsn, setup) as conn:
        conn.execute("select * from orders").fetchall()
    with prod(dsn, setup, environment="dev") as conn:
        conn.execute(DELETE)
    assert count(dsn) == ROWS - 11
    assert not (home / "approvals").exists() or not any((home / "approvals").glob("*/*.json"))


def test_requester_group_lets_members_share_a_grant(dsn: str, home: Path) -> None:
    setup = approval_policy(
        home, approval={"requester": "agents"}, actors={"agents": [{"kind": "agent"}]}
    )
    approval_id = _ask(dsn, setup, identity="agent:one")
    setup.decide(approval_id, "alice", max_rows=20)
    with (
        prod(dsn, setup, identity="human:zed") as conn,
        pytest.raises(governed_db.ApprovalRequired),
    ):
        conn.execute(DELETE)  # not a member of the group
    with prod(dsn, setup, identity="agent:two") as conn:
        conn.execute(DELETE)
    assert count(dsn) == ROWS - 11


def test_a_grant_for_two_uses_runs_twice(dsn: str, home: Path) -> None:
    setup = approval_policy(home, approval={"uses": 2})
    statement = "update orders set note = note || '.' where id <= 3"
    approval_id = _ask(dsn, setup, statement)
    setup.decide(approval_id, "alice", max_rows=3)
    for _ in range(2):
        with prod(dsn, setup) as conn:
            conn.execute(statement)
    assert _ask(dsn, setup, statement) != approval_id
