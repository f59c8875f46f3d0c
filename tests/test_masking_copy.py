"""``COPY ... TO STDOUT`` is masked column by column, like fetched rows.

The columns are described by the server before the COPY runs; text and CSV
lines in PostgreSQL's default layout are split into values, masked by the
same plan as a SELECT of the same columns, and written back in that layout.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

import governed_db

EMAIL = "maria.schmidt@example.com"
CARD = "4111111111111111"


@pytest.fixture
def dsn(pg_dsn: str) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            "create table clients (id int, email text, card_number text, note text, gen int"
            " generated always as (id * 2) stored)"
        )
        conn.execute(
            "insert into clients (id, email, card_number, note) values"
            " (1, %s, %s, E'tab\\there, \"quoted\", back\\\\slash\\nnewline'),"
            " (2, null, null, null)",
            (EMAIL, CARD),
        )
    return pg_dsn


def _copy_text(conn: Any, sql: str) -> str:
    with conn.cursor().copy(sql) as copy:
        return b"".join(bytes(chunk) for chunk in copy).decode()


def _selected(conn: Any, sql: str) -> list[Any]:
    return conn.execute(sql).fetchall()


@pytest.mark.parametrize(
    "sql",
    [
        "copy clients to stdout",
        "copy clients (id, email, card_number, note) to stdout",
        "copy (select id, email as contact, card_number, note from clients) to stdout",
        "copy clients to stdout with (format csv)",
        "copy clients to stdout with (format csv, header)",
        "copy (select * from clients order by id) to stdout with csv header",
    ],
)
def test_copy_masks_what_select_masks(dsn: str, sql: str) -> None:
    with governed_db.connect(dsn, autocommit=True) as conn:
        data = _copy_text(conn, sql)
        rows = _selected(conn, "select email, card_number from clients where id = 1")
    assert EMAIL not in data
    assert CARD not in data
    masked_email, masked_card = rows[0]
    assert masked_email in data
    assert masked_card in data


def test_copy_text_layout_is_kept(dsn: str) -> None:
    with governed_db.connect(dsn, autocommit=True) as conn:
        data = _copy_text(conn, "copy clients to stdout")
    first, second = data.splitlines()
    fields = first.split("\t")
    assert fields[0] == "1"
    assert fields[3] == 'tab\\there, "quoted", back\\\\slash\\nnewline'
    assert len(fields) == 4, "COPY leaves the generated column out, and so does the mask"
    assert second.split("\t") == ["2", "\\N", "\\N", "\\N"]


def test_copy_csv_layout_is_kept(dsn: str) -> None:
    with governed_db.connect(dsn, autocommit=True) as conn:
        data = _copy_text(conn, "copy clients to stdout (format csv, header)")
    header, rest = data.split("\n", 1)
    assert header == "id,email,card_number,note"
    assert rest.startswith("1,")
    assert '"tab\there, ""quoted"", back\\slash\nnewline"' in rest
    assert rest.endswith("2,,,\n")


def test_copy_in_a_transaction_leaves_it_usable(dsn: str) -> None:
    with governed_db.connect(dsn) as conn:
        conn.execute("select 1")
        data = _copy_text(conn, "copy clients to stdout")
        assert EMAIL not in data
        assert conn.execute("select count(*) from clients").fetchone() == (2,)
        conn.rollback()


def test_copy_with_a_custom_layout_is_refused_not_leaked(dsn: str) -> None:
    with governed_db.connect(dsn, autocommit=True) as conn:
        with pytest.raises(governed_db.GovernanceError) as info:
            _copy_text(conn, "copy clients to stdout with (delimiter ';')")
        assert info.value.rule_id == "copy-out-unmasked"


async def test_async_copy_is_masked(dsn: str) -> None:
    async with await governed_db.AsyncConnection.connect(dsn, autocommit=True) as conn:
        async with conn.cursor().copy("copy clients to stdout (format csv)") as copy:
            data = b"".join([bytes(chunk) async for chunk in copy]).decode()
    assert EMAIL not in data
    assert CARD not in data
    assert "1," in data


def test_copy_rows_and_read_row_are_masked(dsn: str) -> None:
    with governed_db.connect(dsn, autocommit=True) as conn:
        with conn.cursor().copy("copy (select email, card_number from clients) to stdout") as c:
            rows = list(c.rows())
        with conn.cursor().copy("copy (select email from clients) to stdout") as c:
            first = c.read_row()
            while c.read_row() is not None:  # psycopg leaves an unread COPY running
                pass
    flat = [str(v) for row in rows for v in row]
    assert EMAIL not in flat
    assert CARD not in flat
    assert first is not None
    assert EMAIL not in str(first)
