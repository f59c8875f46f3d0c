"""The audit trail through the driver: what runs, what is refused, who did it, verifiably."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import psycopg_pool
import pytest

import governed_db
from governed_db.audit import AuditTrail, Signer
from governed_db.audit.reader import iter_records
from tests.audit_helpers import verify

ROOT = Path(__file__).resolve().parent.parent
KEY = Signer.generate()


def _trail(path: Path, **settings: Any) -> AuditTrail:
    return AuditTrail.from_settings({"path": str(path), **settings}, signer=KEY)


def _records(path: Path) -> list[dict[str, Any]]:
    return list(iter_records(path))


@pytest.fixture
def dsn(pg_dsn: str) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("create table t (id int primary key, secret text)")
    return pg_dsn


def test_statements_refusals_and_errors_are_recorded(dsn: str, tmp_path: Path) -> None:
    spool = tmp_path / "audit"
    trail = _trail(spool, durability="strict")
    agent = governed_db.Identity(kind="agent", name="claude", on_behalf_of="alice")
    with governed_db.connect(dsn, audit=trail, identity="human:bob", autocommit=True) as conn:
        conn.execute("insert into t values (%s, %s)", (1, "hunter2"))
        with pytest.raises(governed_db.PolicyViolation):
            conn.execute("delete from t")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("insert into t values (1, 'dup-value')")
        with governed_db.acting_as(agent):
            assert conn.execute("select id from t").fetchall() == [(1,)]
    trail.close()
    assert verify(spool, KEY).ok

    records = _records(spool)
    text = json.dumps(records)
    assert "hunter2" not in text  # parameters are off by default
    assert "dup-value" in text  # ... statement literals are recorded unless redacted
    assert "Key (id)" not in text  # error messages (which quote values) never are

    intents = [r for r in records if r["kind"] == "intent"]
    outcomes = {r["intent"]: r for r in records if r["kind"] == "outcome"}
    assert [i["db.operation.name"] for i in intents] == ["insert", "insert", "select"]
    assert all(i["hash"] in outcomes for i in intents)
    assert outcomes[intents[0]["hash"]]["rowcount"] == 1
    failed = outcomes[intents[1]["hash"]]
    assert failed["db.response.status_code"] == "23505"
    assert failed["error.type"] == "UniqueViolation"
    assert outcomes[intents[2]["hash"]]["db.response.returned_rows"] == 1

    (refused,) = [r for r in records if r["kind"] == "refused"]
    assert refused["decision"]["rule_id"] == "delete-needs-where"
    assert refused["tables_written"] == ["public.t"]

    sessions = [r for r in records if r["kind"] == "session"]
    assert [s["identity"]["name"] for s in sessions] == ["bob", "claude"]
    assert intents[2]["session.id"] == sessions[1]["session.id"]
    assert intents[2]["identity"]["on_behalf_of"] == "alice"


def test_role_statements_never_record_passwords(dsn: str, tmp_path: Path) -> None:
    spool = tmp_path / "audit"
    trail = _trail(spool)
    with governed_db.connect(dsn, audit=trail, autocommit=True) as conn:
        conn.execute("create role app_user login password 'S3cr3t-pw'")
        for _ in range(3):  # the same plan again: the bridge's cached path
            conn.execute("alter role app_user password 'An0ther-pw'")
    trail.close()
    records = _records(spool)
    text = json.dumps(records)
    assert "S3cr3t-pw" not in text
    assert "An0ther-pw" not in text
    assert "create role app_user" in text.lower()
    altered = [r for r in records if r["kind"] == "intent" and "alter" in r["db.query.text"]]
    assert len(altered) == 3


def test_redacted_literals_and_hashed_parameters(dsn: str, tmp_path: Path) -> None:
    spool = tmp_path / "audit"
    trail = _trail(spool, redact_literals=True, parameters="hash")
    with governed_db.connect(dsn, audit=trail, autocommit=True) as conn:
        conn.execute("insert into t values (2, 'literal-secret')")
        conn.execute("insert into t values (%s, %s)", (3, "param-secret"))
    trail.close()
    records = _records(spool)
    text = json.dumps(records)
    assert "literal-secret" not in text
    assert "param-secret" not in text
    assert any("parameters_hmac" in r for r in records if r["kind"] == "intent")


def test_policy_audit_section_is_used(dsn: str, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("GOVERNED_DB_SIGNING_KEY", KEY.private_text())
    spool = tmp_path / "from-policy"
    policy = {"version": 1, "guardrails": [], "audit": {"path": str(spool)}}
    with governed_db.connect(dsn, policy=policy) as conn:
        conn.execute("select 1")
        trail = conn.governor.trail  # type: ignore[attr-defined]
    trail.close()
    assert verify(spool, KEY).ok
    assert [r["kind"] for r in _records(spool)].count("intent") == 1


def test_pool_threads_produce_one_verifiable_chain(dsn: str, tmp_path: Path) -> None:
    spool = tmp_path / "audit"
    trail = _trail(spool, durability="batch")
    threads, per_thread = 8, 2000
    errors: list[BaseException] = []
    with psycopg_pool.ConnectionPool(
        dsn,
        connection_class=governed_db.Connection,
        kwargs={"audit": trail, "autocommit": True},
        min_size=4,
        max_size=4,
    ) as pool:

        def work(n: int) -> None:
            try:
                for i in range(per_thread):
                    with pool.connection() as conn:
                        conn.execute("select %s::int, %s::int", (n, i)).fetchone()
            except BaseException as exc:  # collected and re-raised below
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    trail.close()
    assert errors == []
    report = verify(spool, KEY)
    assert report.ok, report.errors[:3]
    kinds = [r["kind"] for r in _records(spool)]
    assert kinds.count("intent") == threads * per_thread
    assert kinds.count("outcome") == threads * per_thread


FULL_DISK = """
import json, resource, signal, sys
import psycopg, governed_db
from governed_db.audit import AuditTrail, Signer
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG like a full disk, not a signal
dsn, path = sys.argv[1], sys.argv[2]
trail = AuditTrail.from_settings(
    {"path": path, "durability": "strict", "fail_closed": True}, signer=Signer.generate())
conn = governed_db.connect(dsn, audit=trail, autocommit=True)
resource.setrlimit(resource.RLIMIT_FSIZE, (24000, 24000))
ran = 0
for i in range(10, 400):
    try:
        conn.execute("insert into t (id) values (%s)", (i,))
    except governed_db.AuditError as exc:
        print(json.dumps({"error": str(exc), "ran": ran}))
        break
    ran += 1
"""


def test_fail_closed_statement_does_not_run(dsn: str, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", FULL_DISK, dsn, str(tmp_path / "audit")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "error" in result, out.stdout + out.stderr
    assert result["ran"] > 0
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select count(*) from t").fetchone() == (result["ran"],)


WORKER = """
import sys
import governed_db
from governed_db.audit import AuditTrail, Signer
dsn, path = sys.argv[1], sys.argv[2]
trail = AuditTrail.from_settings(
    {"path": path, "durability": "strict"}, signer=Signer.generate())
conn = governed_db.connect(dsn, audit=trail, autocommit=True)
print("ready", flush=True)
i = 100
while True:
    conn.execute(f"insert into t (id, secret) values ({i}, 'row-{i}')")
    i += 1
"""


def test_kill_9_every_statement_that_ran_has_its_intent(dsn: str, tmp_path: Path) -> None:
    spool = tmp_path / "audit"
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, dsn, str(spool)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert worker.stdout is not None
    assert worker.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    worker.stdout.close()
    with psycopg.connect(dsn) as conn:
        ran = {row[0] for row in conn.execute("select secret from t")}
    assert len(ran) > 10
    recorded = {
        r["db.query.text"].split("'")[1] for r in _records(spool) if r["kind"] == "intent"
    }
    assert ran <= recorded


def test_observe_mode_records_what_enforce_would_do(dsn: str, tmp_path: Path) -> None:
    spool = tmp_path / "audit"
    trail = _trail(spool)
    policy = {
        "version": 1,
        "mode": "observe",
        "guardrails": [
            {"id": "no-deletes", "when": {"operation": "delete"}, "action": "block"},
        ],
    }
    with governed_db.connect(dsn, policy=policy, audit=trail, autocommit=True) as conn:
        conn.execute("delete from t where id = 1")
    trail.close()
    (intent,) = [r for r in _records(spool) if r["kind"] == "intent"]
    assert intent["decision"]["action"] == "observe"
    assert intent["decision"]["would_be"] == "block"
    assert intent["decision"]["rule_id"] == "no-deletes"
