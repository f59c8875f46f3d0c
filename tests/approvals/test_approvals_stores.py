"""Both stores: forged rows count for nothing, races for one use have one winner, outages refuse."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import governed_db
import governed_db.approvals.stores
from governed_db.approvals import (
    ApprovalStoreError,
    FileStore,
    MemoryStore,
    PostgresStore,
    SignedDecision,
    sign_decision,
)
from tests.approvals.conftest import ROWS
from tests.approvals.helpers import DELETE, approval_policy, count, prod


@pytest.fixture(params=["file", "postgres"])
def store_config(
    request: pytest.FixtureRequest, home: Path, pg_dsn: str
) -> Iterator[dict[str, str]]:
    if request.param == "file":
        yield {"type": "file", "path": str(home / "store")}
        return
    # its own database on the same server: the store is not the governed database
    name = f"approvals_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"create database {name}")
    info = psycopg.conninfo.conninfo_to_dict(pg_dsn)
    info["dbname"] = name
    yield {"type": "postgres", "dsn": psycopg.conninfo.make_conninfo(**info)}
    governed_db.approvals.stores.close_all()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"drop database {name} with (force)")


def _ask(dsn: str, setup) -> str:
    with prod(dsn, setup) as conn, pytest.raises(governed_db.ApprovalRequired) as info:
        conn.execute(DELETE)
    assert info.value.approval_id
    return info.value.approval_id


def test_grant_runs_once_with_either_store(dsn: str, home: Path, store_config) -> None:
    setup = approval_policy(home, store=store_config)
    approval_id = _ask(dsn, setup)
    setup.decide(approval_id, "alice")
    with prod(dsn, setup) as conn:
        conn.execute(DELETE)
    assert count(dsn) == ROWS - 11
    assert _ask(dsn, setup) != approval_id


def test_forged_decision_rows_count_for_nothing(dsn: str, home: Path, store_config) -> None:
    setup = approval_policy(home, store=store_config)
    approval_id = _ask(dsn, setup)
    store = setup.store()
    stored = store.get(approval_id)
    assert stored is not None
    body = {
        "v": 1,
        "approval_id": approval_id,
        "request_digest": stored.request.digest,
        "decision": "grant",
        "approver": "alice",
        "reason": "forged",
        "decided_at": 0,
        "max_rows": 100,
        "expires_at": 2**40,
        "uses": 5,
        "break_glass": False,
    }
    # no signature, a signature over other bytes, and one by a key the policy does not list
    valid_elsewhere = sign_decision(
        setup.keys["alice"],
        approval_id="0" * 20,
        request_digest="0" * 64,
        decision="grant",
        approver="alice",
        reason="other request",
    )
    mallory = Ed25519PrivateKey.generate()
    by_mallory = sign_decision(
        mallory,
        approval_id=approval_id,
        request_digest=stored.request.digest,
        decision="grant",
        approver="alice",
        reason="mallory",
        max_rows=100,
    )
    for forged in (
        SignedDecision(body, ""),
        SignedDecision(body, valid_elsewhere.signature),
        by_mallory,
    ):
        store.add_decision(approval_id, forged)
    if store_config["type"] == "postgres":
        # straight into the table, as someone with write access to the store would
        with psycopg.connect(store_config["dsn"], autocommit=True) as conn:
            conn.execute(
                "insert into governed_db_approvals.decisions (approval_id, body, signature) "
                "values (%s, %s, %s)",
                (approval_id, json.dumps(body), by_mallory.signature),
            )
            conn.execute("update governed_db_approvals.requests set used = -5")
    else:
        path = next(Path(store_config["path"]).glob(f"*/{approval_id}.json"))
        data = json.loads(path.read_text())
        data["decisions"].append({"body": body, "signature": by_mallory.signature})
        path.write_text(json.dumps(data))
    store.close()
    assert _ask(dsn, setup) == approval_id
    assert count(dsn) == ROWS


def test_request_rewritten_in_the_store_loses_its_signatures(
    dsn: str, home: Path, store_config
) -> None:
    setup = approval_policy(home, store=store_config)
    approval_id = _ask(dsn, setup)
    setup.decide(approval_id, "alice", max_rows=5)
    # raise the approved effect by editing the request row: the signature no longer matches
    if store_config["type"] == "postgres":
        with psycopg.connect(store_config["dsn"], autocommit=True) as conn:
            conn.execute(
                "update governed_db_approvals.requests "
                "set body = replace(body, '\"uses\": 1', '\"uses\": 9')"
            )
    else:
        path = next(Path(store_config["path"]).glob(f"*/{approval_id}.json"))
        data = json.loads(path.read_text())
        data["request"]["uses"] = 9
        path.write_text(json.dumps(data))
    with prod(dsn, setup) as conn, pytest.raises(governed_db.ApprovalRequired):
        conn.execute(DELETE)
    assert count(dsn) == ROWS


RACER = textwrap.dedent(
    """
    import sys, governed_db
    dsn, policy = sys.argv[1], sys.argv[2]
    with governed_db.connect(dsn, policy=policy, environment="prod", identity="agent:claude",
                             audit=False, autocommit=True) as conn:
        try:
            conn.execute("update orders set note = 'raced' where id <= 11")
        except governed_db.ApprovalRequired as exc:
            print("REFUSED", exc.approval_id)
        else:
            print("RAN")
    """
)


def test_two_processes_race_for_one_use(dsn: str, home: Path, store_config) -> None:
    setup = approval_policy(home, store=store_config)
    statement = "update orders set note = 'raced' where id <= 11"
    with prod(dsn, setup) as conn, pytest.raises(governed_db.ApprovalRequired) as info:
        conn.execute(statement)
    approval_id = info.value.approval_id
    assert approval_id
    setup.decide(approval_id, "alice", max_rows=20)
    env = {**__import__("os").environ, "GOVERNED_DB_HOME": str(home)}
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, dsn, str(setup.policy_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in racers]
    lines = [out.strip() for out, _ in outputs]
    assert all(p.returncode == 0 for p in racers), [err for _, err in outputs]
    assert lines.count("RAN") == 1, lines
    assert sum(line.startswith("REFUSED") for line in lines) == 3, lines


def test_unreachable_postgres_store_refuses(dsn: str, home: Path) -> None:
    setup = approval_policy(
        home, store={"type": "postgres", "dsn": "host=127.0.0.1 port=1 dbname=nothing"}
    )
    with prod(dsn, setup) as conn, pytest.raises(ApprovalStoreError) as info:
        conn.execute(DELETE)
    assert "cannot be reached" in str(info.value)
    assert "fail closed" in str(info.value)
    assert count(dsn) == ROWS


def test_unwritable_file_store_refuses(dsn: str, home: Path) -> None:
    blocker = home / "not-a-directory"
    blocker.write_text("")
    setup = approval_policy(home, store={"type": "file", "path": str(blocker / "store")})
    with prod(dsn, setup) as conn, pytest.raises(ApprovalStoreError) as info:
        conn.execute(DELETE)
    assert "fail closed" in str(info.value)
    assert count(dsn) == ROWS


def test_memory_store_counts_uses_atomically() -> None:
    from governed_db.approvals import ApprovalRequest

    store = MemoryStore()
    request = ApprovalRequest(
        id="ab" * 10,
        binding="cd" * 32,
        statement="x",
        fingerprint="f",
        params_hmac=None,
        operation="delete",
        tables_written=(),
        requester={"kind": "agent", "name": "a"},
        requester_match="same",
        environment="prod",
        rule_id="r",
        reason="",
        estimated_rows=None,
        policy_digest="",
        pinned=True,
        requested_at=0,
        expires_at=1,
        uses=2,
        group=None,
        min_approvals=1,
    )
    store.add_request(request)
    assert [store.consume(request.id, 2) for _ in range(3)] == [True, True, False]
    with pytest.raises(ApprovalStoreError):
        store.add_request(request)


def test_file_store_ignores_path_like_ids(home: Path) -> None:
    store = FileStore(home / "s")
    assert store.get("../../etc/passwd") is None
    assert store.find("../x") == []


def test_postgres_store_creates_its_schema_once_under_concurrency(pg_dsn: str) -> None:
    stores = [PostgresStore(pg_dsn) for _ in range(3)]
    for s in stores:
        assert s.all() == []
        s.close()


def test_garbled_use_count_counts_as_used_up(dsn: str, home: Path) -> None:
    setup = approval_policy(home)
    approval_id = _ask(dsn, setup)
    setup.decide(approval_id, "alice", max_rows=20)
    path = next((home / "approvals").glob(f"*/{approval_id}.json"))
    path.with_suffix(".uses").write_text("not a number")
    assert _ask(dsn, setup) != approval_id
    assert count(dsn) == ROWS
