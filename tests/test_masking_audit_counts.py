"""Which data they touched, counted: each statement's masked values, once its rows are read."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import governed_db
from governed_db.audit import AuditTrail, Signer
from governed_db.audit.reader import iter_records

KEY = Signer.generate()
ROWS = 40  # more than a fetch batch's tail, fewer than a batch


@pytest.fixture
def customers(pg_dsn: str) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as raw:
        raw.execute("create table customers (id int, email text, note text)")
        raw.execute(
            "insert into customers select i, 'user' || i || '@example.com', "
            "case when i % 4 = 0 then 'call me at jane' || i || '@corp.example' else 'ok' end "
            f"from generate_series(1, {ROWS}) i"
        )
        raw.execute("update customers set email = null where id = 3")
    return pg_dsn


@pytest.fixture
def trail(tmp_path: Path) -> Iterator[AuditTrail]:
    opened = AuditTrail.from_settings(
        {"path": str(tmp_path / "audit"), "durability": "strict"}, signer=KEY
    )
    yield opened
    opened.close()


def _records(trail: AuditTrail, spool: Path) -> list[dict[str, Any]]:
    trail.close()
    records = list(iter_records(spool))
    text = json.dumps(records)
    assert "@example.com" not in text
    assert "@corp.example" not in text
    return records


def _masked(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["kind"] == "masked"]


def _counts(record: dict[str, Any]) -> dict[tuple[str, str], int]:
    return {(c["column"], c["method"]): c["values"] for c in record["counts"]}


def _intent_of(records: list[dict[str, Any]], masked: dict[str, Any]) -> dict[str, Any]:
    (intent,) = [r for r in records if r["kind"] == "intent" and r["seq"] == masked["intent_seq"]]
    return intent


def test_fetchall_counts_each_masked_column(
    customers: str, trail: AuditTrail, tmp_path: Path
) -> None:
    with governed_db.connect(customers, audit=trail, autocommit=True) as conn:
        cur = conn.cursor()
        cur.execute("select id, email, note from customers order by id")
        rows = cur.fetchall()
        assert rows[0][1] == "u***@example.com"
        cur.execute("select 1")
    records = _records(trail, tmp_path / "audit")
    (masked,) = _masked(records)
    assert "from customers" in _intent_of(records, masked)["db.query.text"]
    counts = _counts(masked)
    assert counts[("email", "email")] == ROWS - 1  # NULL is not masked
    assert sum(v for (col, _), v in counts.items() if col == "note") == ROWS // 4
    sources = {c["column"]: c["source"] for c in masked["counts"]}
    assert sources["email"] == "public.customers.email"
    # the outcome came first (the statement ended before its rows were read)
    kinds = [r["kind"] for r in records if r.get("intent_seq") == masked["intent_seq"]]
    assert kinds == ["outcome", "masked"]


def test_partial_reads_count_what_was_masked(
    customers: str, trail: AuditTrail, tmp_path: Path
) -> None:
    with governed_db.connect(customers, audit=trail, autocommit=True) as conn:
        cur = conn.cursor()
        cur.execute("select email from customers where id <= 10 order by id")
        assert len(cur.fetchmany(4)) == 4
        cur.execute("select email from customers where id > 30 order by id")  # 10 rows
        cur.fetchmany(2)
        cur.fetchall()
    records = _records(trail, tmp_path / "audit")
    first, second = _masked(records)
    assert _counts(first) == {("email", "email"): 3}  # id 3 is NULL
    assert _counts(second) == {("email", "email"): 10}
    assert first["intent_seq"] < second["intent_seq"]


def test_nothing_read_nothing_recorded(customers: str, trail: AuditTrail, tmp_path: Path) -> None:
    with governed_db.connect(customers, audit=trail, autocommit=True) as conn:
        conn.execute("select email from customers")  # never fetched
        conn.execute("select id from customers").fetchall()  # nothing to mask
    assert _masked(_records(trail, tmp_path / "audit")) == []


@pytest.mark.parametrize("ending", ["close cursor", "drop cursor", "close connection"])
def test_counts_are_reported_however_the_cursor_ends(
    customers: str, trail: AuditTrail, tmp_path: Path, ending: str
) -> None:
    conn = governed_db.connect(customers, audit=trail, autocommit=True)
    cur = conn.cursor()
    cur.execute("select email from customers where id <= 5 order by id")
    for _ in cur:  # iteration masks a batch ahead of the caller
        pass
    if ending == "close cursor":
        cur.close()
    elif ending == "drop cursor":
        del cur
        gc.collect()
    conn.close()
    (masked,) = _masked(_records(trail, tmp_path / "audit"))
    assert _counts(masked) == {("email", "email"): 4}  # id 3 is NULL


def test_interleaved_cursors_count_apart(customers: str, trail: AuditTrail, tmp_path: Path) -> None:
    query = "select email from customers where id between %s and %s order by id"
    with governed_db.connect(customers, audit=trail, autocommit=True) as conn:
        a, b = conn.cursor(), conn.cursor()
        a.execute(query, (1, 6))  # 5 values (id 3 is NULL)
        b.execute(query, (10, 29))  # 20 values
        for _ in range(3):
            a.fetchone()
            b.fetchmany(5)
        a.fetchall()
        b.fetchall()
        a.close()
        b.close()
    records = _records(trail, tmp_path / "audit")
    by_query = {_intent_of(records, m)["seq"]: sum(_counts(m).values()) for m in _masked(records)}
    intents = sorted(by_query)
    assert [by_query[s] for s in intents] == [5, 20]


def test_server_cursor_counts_every_fetch(
    customers: str, trail: AuditTrail, tmp_path: Path
) -> None:
    with governed_db.connect(customers, audit=trail) as conn:
        with conn.cursor(name="reader") as cur:
            cur.itersize = 7
            cur.execute("select id, email from customers order by id")
            assert sum(1 for _ in cur) == ROWS
    records = _records(trail, tmp_path / "audit")
    (masked,) = _masked(records)
    assert _counts(masked) == {("email", "email"): ROWS - 1}
    assert _intent_of(records, masked)["db.query.text"].startswith("select id, email")


async def test_async_cursor_counts(customers: str, trail: AuditTrail, tmp_path: Path) -> None:
    conn = await governed_db.AsyncConnection.connect(customers, audit=trail, autocommit=True)
    async with conn:
        cur = conn.cursor()
        await cur.execute("select email from customers where id <= 8")
        assert len(await cur.fetchall()) == 8
        await cur.execute("select email from customers where id <= 2")
        await cur.fetchone()
        await cur.close()
    counts = [_counts(m) for m in _masked(_records(trail, tmp_path / "audit"))]
    assert counts == [{("email", "email"): 7}, {("email", "email"): 1}]


def test_pipeline_results_count_against_their_own_statements(
    customers: str, trail: AuditTrail, tmp_path: Path
) -> None:
    query = "select email from customers where id between %s and %s order by id"
    with governed_db.connect(customers, audit=trail, autocommit=True) as conn:
        a, b = conn.cursor(), conn.cursor()
        with conn.pipeline():
            a.execute(query, (1, 6))  # 5 values (id 3 is NULL)
            b.execute(query, (10, 12))  # 3 values
        assert len(a.fetchall()) == 6
        assert len(b.fetchall()) == 3
        a.execute("select 1")
        b.execute("select 1")
    records = _records(trail, tmp_path / "audit")
    by_intent = {m["intent_seq"]: sum(_counts(m).values()) for m in _masked(records)}
    assert [by_intent[s] for s in sorted(by_intent)] == [5, 3]


def test_results_of_one_text_count_against_its_intent(
    customers: str, trail: AuditTrail, tmp_path: Path
) -> None:
    """A text of two statements is decided, and recorded, as one intent: both results count."""
    text = (
        "select email from customers where id <= 5;"  # 4 values (id 3 is NULL)
        " select email from customers where id > 30"  # 10 values
    )
    with governed_db.connect(customers, audit=trail, autocommit=True) as conn:
        cur = conn.cursor()
        cur.execute(text)
        assert len(cur.fetchall()) == 5
        assert cur.nextset()
        assert len(cur.fetchall()) == 10
        cur.close()
    records = _records(trail, tmp_path / "audit")
    (intent,) = [r for r in records if r["kind"] == "intent"]
    assert intent["db.query.text"] == text
    masked = _masked(records)
    assert {m["intent_seq"] for m in masked} == {intent["seq"]}
    assert sum(sum(_counts(m).values()) for m in masked) == 14
