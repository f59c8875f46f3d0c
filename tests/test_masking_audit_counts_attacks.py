"""Attack on plan reuse: masked-value audit counts must be attributed to the right statement."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import governed_db
from governed_db.audit import AuditTrail, Signer
from governed_db.audit.reader import iter_records

KEY = Signer.generate()


@pytest.fixture(params=["reuse", "noreuse"])
def customers(pg_dsn: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "noreuse":
        from governed_db.governor import masking_gate

        monkeypatch.setattr(masking_gate, "_same_shape", lambda *a: None)
    with psycopg.connect(pg_dsn, autocommit=True) as raw:
        raw.execute("create table customers (id int, email text)")
        raw.execute(
            "insert into customers select i, 'user' || i || '@example.com' "
            "from generate_series(1, 40) i"
        )
    return pg_dsn


@pytest.fixture
def trail(tmp_path: Path) -> Iterator[AuditTrail]:
    opened = AuditTrail.from_settings(
        {"path": str(tmp_path / "audit"), "durability": "strict"}, signer=KEY
    )
    yield opened
    opened.close()


def _per_query(trail: AuditTrail, spool: Path) -> list[tuple[str, int]]:
    trail.close()
    records = list(iter_records(spool))
    intents = {r["seq"]: r for r in records if r["kind"] == "intent"}
    out = []
    for r in records:
        if r["kind"] == "masked":
            text = intents[r["intent_seq"]]["db.query.text"]
            out.append((text, sum(c["values"] for c in r["counts"])))
    return sorted(out)


Q = "select email from customers where id <= %s order by id"


def test_interleaved_cursors_same_text(customers: str, trail: AuditTrail, tmp_path: Path) -> None:
    with governed_db.connect(customers, audit=trail, autocommit=True) as conn:
        a, b = conn.cursor(), conn.cursor()
        a.execute(Q, (3,))
        a.fetchall()
        b.execute(Q, (5,))
        a.execute(Q, (7,))  # reuses a's plan and masker while b is counting one
        b.fetchall()
        a.fetchall()
        b.execute(Q, (11,))
        b.fetchmany(2)
        a.execute(Q, (13,))
        a.fetchall()
        b.fetchall()
        a.close()
        b.close()
    got = _per_query(trail, tmp_path / "audit")
    assert sorted(n for _, n in got) == [3, 5, 7, 11, 13], got


def test_pipeline_two_cursors_counts(customers: str, trail: AuditTrail, tmp_path: Path) -> None:
    with governed_db.connect(customers, audit=trail, autocommit=True) as conn:
        a, b = conn.cursor(), conn.cursor()
        a.execute(Q, (2,)).fetchall()
        b.execute(Q, (4,)).fetchall()
        with conn.pipeline():
            a.execute(Q, (3,))
            b.execute(Q, (5,))
            a.fetchall()
            b.fetchall()
        a.close()
        b.close()
    got = _per_query(trail, tmp_path / "audit")
    assert sorted(n for _, n in got) == [2, 3, 4, 5], got


def test_executemany_returning_counts(customers: str, trail: AuditTrail, tmp_path: Path) -> None:
    with governed_db.connect(customers, audit=trail, autocommit=True) as conn:
        cur = conn.cursor()
        cur.executemany(
            "select email from customers where id <= %s", [(2,), (3,), (4,)], returning=True
        )
        total: list[Any] = []
        while True:
            total.extend(cur.fetchall())
            if not cur.nextset():
                break
        cur.close()
    got = _per_query(trail, tmp_path / "audit")
    assert sum(n for _, n in got) == 9, got
