"""PostgreSQL sink against a real server: table created on first use, idempotent inserts."""

from __future__ import annotations

from pathlib import Path

import psycopg

from governed_db.audit import AuditRecord, Signer
from governed_db.audit.sinks.postgres import PostgresSink
from tests.audit_helpers import session, trail, verify, workload


def test_records_land_in_a_table_and_verify(tmp_path: Path, pg_dsn: str) -> None:
    signer = Signer.generate()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA audit")
    t = trail(
        tmp_path / "spool",
        signer,
        sinks=[{"type": "postgres", "dsn": pg_dsn, "table": "audit.trail", "batch_size": 25}],
    )
    workload(t, session(t), 40)
    t.close(timeout=20)

    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(
            "SELECT seq, kind, line, record FROM audit.trail ORDER BY seq"
        ).fetchall()
    assert [r[0] for r in rows] == list(range(len(rows)))
    assert len(rows) == 83
    assert rows[2][1] == "intent"
    assert rows[2][3]["db.namespace"] == "app"
    exported = tmp_path / "from-db.jsonl"
    exported.write_text("".join(r[2] + "\n" for r in rows), encoding="utf-8")
    assert verify(exported, signer).ok

    # at least once: a re-sent batch changes nothing
    sink = PostgresSink(pg_dsn, table="audit.trail")
    sink.emit([AuditRecord.parse(r[2].encode()) for r in rows[:10]])
    sink.close()
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM audit.trail").fetchone() == (83,)
