"""``cursor.pgresult`` of a masked result: libpq's ``get_value`` gives masked bytes too."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

import governed_db

EMAIL = "maria.schmidt@example.com"


@pytest.fixture
def dsn(pg_dsn: str) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("create table people (id int, email text, note text)")
        conn.execute(
            "insert into people values (1, %s, 'card 4111 1111 1111 1111'), (2, null, 'ok')",
            (EMAIL,),
        )
    return pg_dsn


def _cells(res: Any) -> list[list[bytes | None]]:
    return [[res.get_value(r, c) for c in range(res.nfields)] for r in range(res.ntuples)]


@pytest.mark.parametrize("row_factory", [None, dict_row])
def test_get_value_is_masked_like_the_fetched_rows(dsn: str, row_factory: Any) -> None:
    with governed_db.connect(dsn) as conn:
        cur = conn.cursor(row_factory=row_factory) if row_factory else conn.cursor()
        cur.execute("select id, email, note from people order by id")
        cells = _cells(cur.pgresult)
        rows = cur.fetchall()
    assert cells[0][0] == b"1", "untouched cells are libpq's own bytes"
    assert EMAIL.encode() not in cells[0][1]
    assert b"4111 1111 1111 1111" not in (cells[0][2] or b"")
    assert cells[1][1] is None
    first = rows[0] if row_factory is None else list(rows[0].values())
    assert cells[0][1] == first[1].encode()


async def test_async_get_value_is_masked(dsn: str) -> None:
    async with await governed_db.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute("select email from people where id = 1")
        assert EMAIL.encode() not in cur.pgresult.get_value(0, 0)


def test_binary_format_text_cell_is_masked(dsn: str) -> None:
    with governed_db.connect(dsn) as conn:
        cur = conn.cursor(binary=True)
        cur.execute("select id, email from people where id = 1")
        res = cur.pgresult
        assert res.get_value(0, 0) == (1).to_bytes(4, "big")
        masked = res.get_value(0, 1)
        assert masked is not None
        assert masked == cur.fetchone()[1].encode()
        assert EMAIL.encode() not in masked


def test_unmasked_results_keep_libpqs_own_result(dsn: str) -> None:
    with governed_db.connect(dsn) as conn:
        cur = conn.execute("select id from people order by id")
        assert isinstance(cur.pgresult, psycopg.pq.PGresult)
        assert _cells(cur.pgresult) == [[b"1"], [b"2"]]
