"""Guardrails through the driver: decisions on real statements against a real server."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

import governed_db
from governed_db.identity import Identity, acting_as

EXAMPLE = "policies.example.yaml"


@pytest.fixture
def dsn(pg_dsn: str) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("create table orders (id int primary key, total int default 0)")
        conn.execute("insert into orders (id) select generate_series(1, 2000)")
        conn.execute("analyze orders")
    return pg_dsn


def _count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select count(*) from orders").fetchone()
        assert row is not None
        return int(row[0])


def _policy(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": 1,
        "environments": {"default": "dev", "prod": {}, "dev": {}},
        "actors": {"agents": [{"kind": "agent"}]},
        "guardrails": [
            {
                "id": "agents-no-ddl-in-prod",
                "when": {"environment": "prod", "actor": "agents", "class": "ddl"},
                "action": "block",
                "hint": "Ask a human.",
            },
            {
                "id": "big-deletes",
                "when": {"operation": "delete", "estimated_rows": {"gt": 100}},
                "action": "require_approval",
            },
        ],
    }
    doc.update(extra)
    return doc


def test_baseline_blocks_delete_without_where_before_sending(dsn: str) -> None:
    with governed_db.connect(dsn, autocommit=True) as conn:
        with pytest.raises(governed_db.PolicyViolation) as info:
            conn.execute("DELETE FROM orders")
    err = info.value
    assert isinstance(err, psycopg.errors.InsufficientPrivilege)
    assert err.rule_id == "delete-needs-where"
    assert "public.orders" in str(err)
    assert err.hint
    assert err.facts is not None
    assert err.facts.primary.operation == "delete"
    assert _count(dsn) == 2000


def test_refusal_inside_cte_and_trivial_where(dsn: str) -> None:
    with governed_db.connect(dsn, autocommit=True) as conn:
        with pytest.raises(governed_db.PolicyViolation, match="delete-needs-where"):
            conn.execute("with d as (delete from orders returning id) select count(*) from d")
        with pytest.raises(governed_db.PolicyViolation, match="trivial"):
            conn.execute("update orders set total = 1 where 1 = 1 or id = %s", (3,))
        assert conn.execute("delete from orders where id = %s", (1,)).rowcount == 1
    assert _count(dsn) == 1999


def test_example_policy_in_prod(dsn: str) -> None:
    with governed_db.connect(
        dsn, policy=EXAMPLE, environment="prod", autocommit=True, audit=False
    ) as conn:
        assert conn.session.environment == "prod"
        with pytest.raises(governed_db.PolicyViolation, match="drop-truncate-in-prod"):
            conn.execute("drop table orders")
        with pytest.raises(governed_db.ApprovalRequired) as info:
            conn.execute("do $$ begin perform 1; end $$")
        assert info.value.rule_id == "opaque-needs-approval-in-prod"
        with pytest.raises(governed_db.ApprovalRequired, match="pg_read_file"):
            conn.execute("select pg_read_file('/etc/hostname')")
        assert conn.execute("select count(*) from orders").fetchone() == (2000,)
        assert conn.execute("show statement_timeout").fetchone() == ("30s",)


def test_blast_radius_from_policy(dsn: str) -> None:
    with governed_db.connect(
        dsn, policy=EXAMPLE, environment="prod", autocommit=True, audit=False
    ) as conn:
        with pytest.raises(governed_db.BlastRadiusExceeded) as info:
            conn.execute("update orders set total = 5 where id <= 1500")
        assert "1500 rows" in str(info.value)
        assert "1000 allowed in prod" in str(info.value)
        assert conn.execute("update orders set total = 5 where id <= 10").rowcount == 10
        total = conn.execute("select count(*) from orders where total = 5").fetchone()
        assert total == (10,)


def test_environment_matched_from_the_dsn(dsn: str) -> None:
    dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    policy = _policy(environments={"default": "dev", "prod": {"match": [{"dbname": dbname}]}})
    with governed_db.connect(dsn, policy=policy) as conn:
        assert conn.session.environment == "prod"


def test_unknown_environment_is_an_error(dsn: str) -> None:
    with pytest.raises(governed_db.PolicyError, match="unknown environment 'prdo'"):
        governed_db.connect(dsn, policy=EXAMPLE, environment="prdo", audit=False)


def test_missing_policy_path_names_the_path(dsn: str, tmp_path: Any) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(governed_db.PolicyError) as info:
        governed_db.connect(dsn, policy=str(missing))
    assert str(missing) in str(info.value)


def test_policy_from_environment_variable(
    dsn: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nguardrails:\n  - id: no-selects\n    when: {operation: select}\n"
        "    action: block\n"
    )
    monkeypatch.setenv("GOVERNED_DB_POLICY", str(path))
    with governed_db.connect(dsn) as conn:
        with pytest.raises(governed_db.PolicyViolation, match="no-selects"):
            conn.execute("select 1")


def test_acting_as_switches_identity_per_call(dsn: str) -> None:
    human = Identity(kind="human", name="alice")
    agent = Identity(kind="agent", name="claude")
    with governed_db.connect(
        dsn, policy=_policy(), identity=human, environment="prod", autocommit=True
    ) as conn:
        assert conn.execute("show application_name").fetchone() == ("governed_db:human:alice",)
        conn.execute("create index on orders (total)")
        with acting_as(agent), pytest.raises(governed_db.PolicyViolation) as info:
            conn.execute("create table notes (id int)")
        assert info.value.rule_id == "agents-no-ddl-in-prod"
        assert info.value.hint == "Ask a human."
        conn.execute("create table notes (id int)")


def test_identity_as_string_and_own_application_name(dsn: str) -> None:
    with governed_db.connect(dsn, identity="agent:claude", application_name="mine") as conn:
        assert conn.session.identity.kind == "agent"
        assert conn.execute("show application_name").fetchone() == ("mine",)
    with pytest.raises(TypeError, match="identity="):
        governed_db.connect(dsn, identity=42)


def test_estimated_rows_rule_runs_explain(dsn: str) -> None:
    with governed_db.connect(dsn, policy=_policy(), autocommit=True) as conn:
        with pytest.raises(governed_db.ApprovalRequired, match="big-deletes"):
            conn.execute("delete from orders where id > %s", (10,))
        assert conn.execute("delete from orders where id = %s", (5,)).rowcount == 1
        with conn.pipeline(), pytest.raises(governed_db.PolicyViolation, match="could not"):
            conn.execute("delete from orders where id = 6")
    assert _count(dsn) == 1999


async def test_async_refusal_and_estimate(dsn: str) -> None:
    conn = await governed_db.AsyncConnection.connect(dsn, policy=_policy(), autocommit=True)
    async with conn:
        with pytest.raises(governed_db.ApprovalRequired, match="big-deletes"):
            await conn.execute("delete from orders")
        with pytest.raises(governed_db.ApprovalRequired):
            await conn.execute("delete from orders where id > 10")
        cur = await conn.execute("delete from orders where id = 7")
        assert cur.rowcount == 1
    assert _count(dsn) == 1999


def test_observe_mode_runs_everything(dsn: str) -> None:
    with governed_db.connect(dsn, policy=_policy(mode="observe"), autocommit=True) as conn:
        conn.execute("delete from orders where id > 1990")
    assert _count(dsn) == 1990


def test_connections_with_the_same_settings_share_a_gate(dsn: str) -> None:
    with (
        governed_db.connect(dsn, policy=EXAMPLE, audit=False) as one,
        governed_db.connect(dsn, policy=EXAMPLE, audit=False) as two,
    ):
        assert one.governor is two.governor
        one.execute("select 1")
        two.execute("select 1")
        assert len(one.governor.cache) >= 1  # type: ignore[attr-defined]


async def test_async_connect_applies_statement_timeout(dsn: str) -> None:
    conn = await governed_db.AsyncConnection.connect(
        dsn, policy=EXAMPLE, environment="prod", audit=False
    )
    async with conn:
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        cur = await conn.execute("show statement_timeout")
        assert await cur.fetchone() == ("30s",)


def test_session_settings_leave_no_transaction_open(dsn: str) -> None:
    policy = _policy(limits={"default": {"statement_timeout": "1s"}})
    with governed_db.connect(dsn, policy=policy) as conn:
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert conn.execute("show statement_timeout").fetchone() == ("1s",)
