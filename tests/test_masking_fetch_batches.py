"""fetchone() and iteration mask a batch of rows ahead, with psycopg's position semantics.

Mixing iteration, fetchone, fetchmany, scroll and a row-factory change on a
masked result gives the rows, in the order and at the positions plain psycopg
gives them, each masked.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg.rows import dict_row

import governed_db

ROWS = 1000


@pytest.fixture
def dsn(pg_dsn: str) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("create table contacts (id int, email text)")
        conn.execute(
            "insert into contacts select g, 'person' || g || '@example.com'"
            " from generate_series(1, %s) g",
            (ROWS,),
        )
    return pg_dsn


def _check(row: tuple[int, str]) -> int:
    ident, email = row
    assert email != f"person{ident}@example.com", "masked"
    assert email.endswith("@example.com")
    return ident


def test_mixed_fetching_keeps_positions(dsn: str) -> None:
    with governed_db.connect(dsn) as conn:
        cur = conn.execute("select id, email from contacts order by id")
        seen = []
        for row in cur:
            seen.append(_check(row))
            if len(seen) == 10:
                break
        seen.append(_check(cur.fetchone()))
        seen += [_check(r) for r in cur.fetchmany(5)]
        assert cur.rownumber == 16
        cur.scroll(300, mode="absolute")
        seen.append(_check(cur.fetchone()))
        cur.scroll(-2)
        seen.append(_check(cur.fetchone()))
        seen += [_check(r) for r in cur]
        assert cur.fetchone() is None
    assert seen[:16] == list(range(1, 17))
    assert seen[16:18] == [301, 300]
    assert seen[18:] == list(range(301, ROWS + 1))


def test_row_factory_change_mid_result(dsn: str) -> None:
    with governed_db.connect(dsn) as conn:
        cur = conn.execute("select id, email from contacts order by id")
        first = cur.fetchone()
        cur.row_factory = dict_row
        second = cur.fetchone()
    assert _check(first) == 1
    assert isinstance(second, dict)
    assert _check((second["id"], second["email"])) == 2


async def test_async_iteration_and_fetchone(dsn: str) -> None:
    async with await governed_db.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute("select id, email from contacts order by id")
        first = await cur.fetchone()
        rest = [row async for row in cur]
    assert _check(first) == 1
    assert [_check(r) for r in rest] == list(range(2, ROWS + 1))
