"""Which data they touched: outcome records list result columns and masking, never values."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

import governed_db
from governed_db.audit import AuditTrail, Signer
from governed_db.audit.reader import iter_records

KEY = Signer.generate()


def test_outcome_records_columns_and_masking_without_values(pg_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as raw:
        raw.execute("create table customers (id int, email text, note text)")
        raw.execute("insert into customers values (1, 'john.doe@example.com', 'ring 555')")
    spool = tmp_path / "audit"
    trail = AuditTrail.from_settings({"path": str(spool), "durability": "strict"}, signer=KEY)
    with governed_db.connect(pg_dsn, audit=trail, autocommit=True) as conn:
        rows = conn.execute("select id, email as e, upper(note) from customers").fetchall()
        assert rows == [(1, "j***@example.com", "RING 555")]
        conn.execute("update customers set note = 'x' where id = 1")
    trail.close()
    records = list(iter_records(spool))
    text = json.dumps(records)
    assert "john.doe@example.com" not in text
    assert "j***@example.com" not in text  # masked values are not audited either
    outcomes = [r for r in records if r["kind"] == "outcome"]
    columns = outcomes[0]["masking"]["columns"]
    assert [(c["name"], c["source"], c["action"]) for c in columns] == [
        ("id", "public.customers.id", "untouched"),
        ("e", "public.customers.email", "mask"),
        ("upper", "computed", "scan"),
    ]
    assert columns[1]["rule"] == "baseline-email-columns"
    assert "masking" not in outcomes[1] or outcomes[1]["masking"] is None
