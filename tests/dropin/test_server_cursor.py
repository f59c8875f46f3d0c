"""Named (server-side) cursors: ServerCursor and RawServerCursor."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import pq

from .support import Impl, raises_exactly


@pytest.fixture
def table(conn: Any) -> str:
    conn.execute("create temp table t (id int primary key, name text)")
    conn.execute("insert into t select i, 'n' || i from generate_series(1, 10) i")
    return "t"


def test_named_cursor_class(conn: Any, impl: Impl) -> None:
    with conn.cursor("c1") as cur:
        assert type(cur) is impl.ServerCursor
        assert isinstance(cur, psycopg.ServerCursor)
        assert cur.name == "c1"
        assert cur.scrollable is None
        assert cur.withhold is False
        assert cur.itersize == 100
    assert cur.closed


def test_server_cursor_direct(conn: Any, impl: Impl, table: str) -> None:
    with impl.ServerCursor(conn, "direct") as cur:
        cur.execute(f"select id from {table} where id <= %s order by id", [3])
        assert cur.fetchall() == [(1,), (2,), (3,)]


def test_fetch(conn: Any, table: str) -> None:
    with conn.cursor("c") as cur:
        assert cur.execute(f"select id, name from {table} order by id") is cur
        assert cur.fetchone() == (1, "n1")
        assert cur.fetchmany(2) == [(2, "n2"), (3, "n3")]
        assert cur.rownumber == 3
        assert len(cur.fetchall()) == 7
        assert cur.fetchone() is None
        assert cur.fetchall() == []


def test_description_and_rowcount(conn: Any, table: str) -> None:
    with conn.cursor("c") as cur:
        cur.execute(f"select id, name from {table} where id > %s", [5])
        assert [c.name for c in cur.description] == ["id", "name"]
        assert (cur.rowcount, cur.rownumber, cur.statusmessage) == (-1, 0, None)
        cur.fetchmany(2)
        assert (cur.rowcount, cur.rownumber, cur.statusmessage) == (-1, 2, None)
        cur.fetchall()
        assert (cur.rowcount, cur.rownumber, cur.statusmessage) == (-1, 5, None)


def test_pgresult_after_declare(conn: Any, table: str) -> None:
    with conn.cursor("c") as cur:
        assert cur.pgresult is None
        cur.execute(f"select * from {table}")
        assert cur.pgresult.status == pq.ExecStatus.COMMAND_OK


def test_iteration_itersize(conn: Any, table: str) -> None:
    with conn.cursor("c") as cur:
        cur.itersize = 3
        cur.execute(f"select id from {table} order by id")
        assert [r[0] for r in cur] == list(range(1, 11))


def test_scroll_not_scrollable_forward_only(conn: Any, table: str) -> None:
    with conn.cursor("c") as cur:
        cur.execute(f"select id from {table} order by id")
        cur.scroll(3)
        assert cur.fetchone() == (4,)
        cur.scroll(6, "absolute")  # forward still works
        assert cur.fetchone() == (7,)


def test_scroll_backwards_needs_scrollable(conn: Any, table: str) -> None:
    with conn.cursor("c", scrollable=False) as cur:
        cur.execute(f"select id from {table} order by id")
        cur.fetchmany(3)
        with raises_exactly(psycopg.errors.ObjectNotInPrerequisiteState, sqlstate="55000"):
            cur.scroll(-1)


def test_scrollable(conn: Any, table: str) -> None:
    with conn.cursor("c", scrollable=True) as cur:
        assert cur.scrollable is True
        cur.execute(f"select id from {table} order by id")
        cur.fetchmany(5)
        cur.scroll(-2)
        assert cur.fetchone() == (4,)
        cur.scroll(0, "absolute")
        assert cur.fetchone() == (1,)
        cur.scroll(9, "absolute")
        assert cur.fetchall() == [(10,)]
        with raises_exactly(ValueError):
            cur.scroll(1, "sideways")


def test_withhold_survives_commit(conn: Any, table: str) -> None:
    conn.commit()
    with conn.cursor("h", withhold=True) as cur:
        assert cur.withhold is True
        cur.execute(f"select id from {table} order by id")
        conn.commit()
        assert cur.fetchmany(2) == [(1,), (2,)]
        conn.rollback()
        assert cur.fetchone() == (3,)


def test_without_withhold_commit_closes_it(conn: Any, table: str) -> None:
    cur = conn.cursor("c")
    cur.execute(f"select id from {table}")
    conn.commit()
    with raises_exactly(psycopg.errors.InvalidCursorName, sqlstate="34000"):
        cur.fetchone()
    conn.rollback()
    cur.close()


def test_autocommit_needs_withhold(connect: Any) -> None:
    conn = connect(autocommit=True)
    with raises_exactly(psycopg.errors.NoActiveSqlTransaction, sqlstate="25P01"):
        with conn.cursor("c") as cur:
            cur.execute("select generate_series(1, 3)")
    with conn.cursor("h", withhold=True) as cur:
        cur.execute("select generate_series(1, 3)")
        assert cur.fetchall() == [(1,), (2,), (3,)]


def test_execute_twice_redeclares(conn: Any, table: str) -> None:
    with conn.cursor("c") as cur:
        cur.execute("select 1")
        assert cur.fetchone() == (1,)
        cur.execute(f"select count(*) from {table}")
        assert cur.fetchone() == (10,)


def test_quoted_name(conn: Any) -> None:
    with conn.cursor('my "odd" cursor') as cur:
        cur.execute("select 'ok'")
        assert cur.fetchone() == ("ok",)
    names = conn.execute("select name from pg_cursors").fetchall()
    assert names == []


def test_declared_in_pg_cursors(conn: Any) -> None:
    with conn.cursor("visible", scrollable=True, withhold=True) as cur:
        cur.execute("select 1")
        got = conn.execute("select name, is_holdable, is_scrollable from pg_cursors").fetchall()
        assert got == [("visible", True, True)]


def test_close_and_closed_errors(conn: Any, table: str) -> None:
    cur = conn.cursor("c")
    cur.execute(f"select id from {table}")
    cur.close()
    assert cur.closed
    with raises_exactly(psycopg.InterfaceError, match="the cursor is closed"):
        cur.fetchone()
    with raises_exactly(psycopg.errors.InvalidCursorName, sqlstate="34000"):
        cur.execute("select 1")
    assert conn.info.transaction_status == pq.TransactionStatus.INERROR
    conn.rollback()
    cur.close()


def test_fetch_before_execute(conn: Any) -> None:
    cur = conn.cursor("c")
    with raises_exactly(psycopg.errors.InvalidCursorName, match='portal "c" does not exist'):
        cur.fetchone()
    conn.rollback()
    cur.close()


def test_executemany_not_supported(conn: Any) -> None:
    with conn.cursor("c") as cur, raises_exactly(psycopg.NotSupportedError):
        cur.executemany("select %s", [(1,)])


def test_stream_is_inherited(conn: Any) -> None:
    with conn.cursor("c") as cur:
        assert list(cur.stream("select generate_series(1, %s)", [3])) == [(1,), (2,), (3,)]


def test_copy_is_inherited(conn: Any) -> None:
    with conn.cursor("c") as cur, cur.copy("copy (select 1, 'a') to stdout") as copy:
        assert bytes(copy.read()) == b"1\ta\n"


def test_error_in_query(conn: Any) -> None:
    cur = conn.cursor("c")
    with raises_exactly(psycopg.errors.UndefinedTable, sqlstate="42P01"):
        cur.execute("select * from nosuchtable")
    assert conn.info.transaction_status == pq.TransactionStatus.INERROR
    conn.rollback()
    cur.close()


def test_error_while_fetching(conn: Any) -> None:
    with conn.cursor("c") as cur:
        cur.execute("select 10 / (3 - i) from generate_series(1, 5) i")
        assert cur.fetchone() == (5,)
        with raises_exactly(psycopg.errors.DivisionByZero, sqlstate="22012"):
            cur.fetchall()
    conn.rollback()


def test_non_select_is_refused_by_the_server(conn: Any) -> None:
    conn.execute("create temp table w (id int)")
    with conn.cursor("c") as cur, raises_exactly(psycopg.errors.SyntaxError, sqlstate="42601"):
        cur.execute("insert into w values (1)")
    conn.rollback()


def test_binary_server_cursor(conn: Any) -> None:
    with conn.cursor("c", binary=True) as cur:
        cur.execute("select 1::int, 'x'::text")
        assert cur.fetchone() == (1, "x")
        assert cur.pgresult.fformat(0) == pq.Format.BINARY


def test_raw_server_cursor(conn: Any, impl: Impl, table: str) -> None:
    with impl.RawServerCursor(conn, "raw") as cur:
        assert isinstance(cur, psycopg.RawServerCursor)
        cur.execute(f"select name from {table} where id = $1", [4])
        assert cur.fetchall() == [("n4",)]


def test_server_cursor_with_connection_row_factory(connect: Any) -> None:
    conn = connect(row_factory=psycopg.rows.dict_row)
    with conn.cursor("c") as cur:
        cur.execute("select 1 as a")
        assert cur.fetchone() == {"a": 1}


def test_server_cursor_prepare_threshold_not_used(conn: Any) -> None:
    for i in range(7):
        with conn.cursor(f"c{i}") as cur:
            cur.execute("select %s::int", [i])
            assert cur.fetchone() == (i,)


def test_server_cursor_repr_name(conn: Any) -> None:
    with conn.cursor("reprname") as cur:
        assert "'reprname'" in repr(cur)
