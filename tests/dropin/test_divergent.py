"""Tests written as psycopg's own suite would write them, where governed_db differs by design.

Each governed run of the parametrized tests here is listed in
``divergences.DIVERGENCES`` and expected to fail; the psycopg run checks the test
itself is right. The last test, governed_db only, shows what a refusal looks like.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

import governed_db


def test_cursor_type_is_psycopgs(conn: Any) -> None:
    assert type(conn.cursor()) is psycopg.Cursor
    assert type(conn.execute("select 1")) is psycopg.Cursor


def test_server_cursor_type_is_psycopgs(conn: Any) -> None:
    with conn.cursor("typed") as cur:
        assert type(cur) is psycopg.ServerCursor


def test_repr_names_psycopg(conn: Any) -> None:
    assert repr(conn).startswith("<psycopg.Connection [IDLE]")
    assert repr(conn.cursor()).startswith("<psycopg.Cursor [no result] [IDLE]")


@pytest.mark.parametrize("cls", ["Cursor", "ClientCursor", "RawCursor"])
def test_psycopg_cursor_class_on_the_connection(conn: Any, cls: str) -> None:
    query = "select $1::int" if cls == "RawCursor" else "select %s::int"
    cur = getattr(psycopg, cls)(conn)
    assert cur.execute(query, [1]).fetchone() == (1,)


def test_psycopg_server_cursor_class_on_the_connection(conn: Any) -> None:
    with psycopg.ServerCursor(conn, "direct") as cur:
        cur.execute("select 1")
        assert cur.fetchone() == (1,)


async def test_psycopg_async_cursor_class_on_the_connection(aconn: Any) -> None:
    cur = psycopg.AsyncCursor(aconn)
    await cur.execute("select 1")
    assert await cur.fetchone() == (1,)


def test_delete_without_where_runs(conn: Any) -> None:
    conn.execute("create temp table d (id int)")
    conn.execute("insert into d values (1), (2), (3)")
    assert conn.execute("delete from d").rowcount == 3


def test_update_with_always_true_where_runs(conn: Any) -> None:
    conn.execute("create temp table d (id int, v int)")
    conn.execute("insert into d values (1, 0), (2, 0)")
    assert conn.execute("update d set v = 1 where 1 = 1").rowcount == 2


def test_query_of_unreadable_type_is_a_type_error(conn: Any) -> None:
    with pytest.raises(TypeError):
        conn.execute(42)


# --- governed_db only: what a refusal looks like ------------------------------------------


def test_refusal_is_insufficient_privilege_and_sends_nothing(dsn: str) -> None:
    with governed_db.connect(dsn) as conn:
        conn.execute("create temp table d (id int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
            conn.execute("delete from d")
        exc = info.value
        assert isinstance(exc, governed_db.PolicyViolation)
        assert exc.sqlstate == "42501"
        assert exc.rule_id == "delete-needs-where"
        # refused before anything reached the server: the transaction is not aborted
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert conn.execute("delete from d where id > 0").rowcount == 0
