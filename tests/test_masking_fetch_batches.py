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


def _ids(row: object) -> int:
    if isinstance(row, dict):
        return int(row["id"])
    assert isinstance(row, tuple)
    return int(row[0])


@pytest.mark.parametrize("seed", range(6))
def test_an_open_iterator_follows_every_move_like_psycopg(dsn: str, seed: int) -> None:
    """Moves between steps of one live iterator give psycopg's rows, in psycopg's order."""
    import random

    query = "select id, email from contacts order by id"
    steps = random.Random(seed)
    plan = [
        steps.choice(["next", "next", "next", "one", "many", "scroll", "back"]) for _ in range(400)
    ]
    sizes = [steps.randint(1, 300) for _ in plan]

    def run(conn: psycopg.Connection) -> list[object]:
        cur = conn.execute(query)
        it = iter(cur)
        out: list[object] = []
        for op, size in zip(plan, sizes, strict=True):
            try:
                if op == "next":
                    out.append(_ids(next(it)))
                elif op == "one":
                    row = cur.fetchone()
                    out.append(None if row is None else _ids(row))
                elif op == "many":
                    out.append([_ids(r) for r in cur.fetchmany(size % 40 + 1)])
                elif op == "scroll":
                    cur.scroll(size, mode="absolute")
                    out.append(("at", cur.rownumber))
                else:
                    cur.scroll(-min(cur.rownumber or 0, size % 50))
                    out.append(("at", cur.rownumber))
            except StopIteration:
                out.append("stop")
                it = iter(cur)
            except IndexError:
                out.append("index")
        return out

    with psycopg.connect(dsn) as raw, governed_db.connect(dsn) as conn:
        assert run(conn) == run(raw)
