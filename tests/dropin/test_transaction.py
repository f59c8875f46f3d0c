"""conn.transaction(): commit, rollback, savepoints, Rollback, force_rollback, autocommit."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import Rollback, pq

from .support import raises_exactly

IDLE = pq.TransactionStatus.IDLE
INTRANS = pq.TransactionStatus.INTRANS
INERROR = pq.TransactionStatus.INERROR


@pytest.fixture
def table(conn: Any) -> str:
    conn.execute("create temp table t (id int)")
    conn.commit()
    return "t"


def _ids(conn: Any) -> list[int]:
    return [r[0] for r in conn.execute("select id from t order by id").fetchall()]


def _insert(conn: Any, value: int) -> None:
    conn.execute("insert into t values (%s)", (value,))


def test_transaction_commits(conn: Any, table: str) -> None:
    with conn.transaction() as tx:
        assert isinstance(tx, psycopg.Transaction)
        assert tx.connection is conn
        assert conn.info.transaction_status == INTRANS
        _insert(conn, 1)
    assert conn.info.transaction_status == IDLE
    conn.rollback()
    assert _ids(conn) == [1]


def test_transaction_rolls_back_on_exception(conn: Any, table: str) -> None:
    with pytest.raises(ZeroDivisionError), conn.transaction():
        _insert(conn, 1)
        raise ZeroDivisionError
    assert conn.info.transaction_status == IDLE
    assert _ids(conn) == []


def test_transaction_rolls_back_on_database_error(conn: Any, table: str) -> None:
    with raises_exactly(psycopg.errors.DivisionByZero), conn.transaction():
        _insert(conn, 1)
        conn.execute("select 1 / 0")
    assert conn.info.transaction_status == IDLE
    assert _ids(conn) == []


def test_rollback_exception_exits_quietly(conn: Any, table: str) -> None:
    with conn.transaction():
        _insert(conn, 1)
        raise Rollback
    assert _ids(conn) == []
    with conn.transaction() as tx:
        _insert(conn, 2)
        raise Rollback(tx)
    assert _ids(conn) == []


def test_rollback_to_outer_transaction(conn: Any, table: str) -> None:
    with conn.transaction() as outer:
        _insert(conn, 1)
        with conn.transaction():
            _insert(conn, 2)
            with conn.transaction():
                _insert(conn, 3)
                raise Rollback(outer)
        _insert(conn, 99)  # never reached
    assert _ids(conn) == []


def test_nested_savepoints(conn: Any, table: str) -> None:
    with conn.transaction():
        _insert(conn, 1)
        with conn.transaction() as sp:
            assert sp.savepoint_name == "_pg3_2"
            _insert(conn, 2)
        with pytest.raises(ZeroDivisionError), conn.transaction():
            _insert(conn, 3)
            raise ZeroDivisionError
        with conn.transaction():
            _insert(conn, 4)
            with conn.transaction():
                _insert(conn, 5)
                raise Rollback
    assert _ids(conn) == [1, 2, 4]


def test_named_savepoint(conn: Any, table: str) -> None:
    with conn.transaction(savepoint_name="outer_sp") as tx:
        assert tx.savepoint_name == "outer_sp"
        _insert(conn, 1)
        with conn.transaction(savepoint_name="inner sp") as inner:
            assert inner.savepoint_name == "inner sp"
            _insert(conn, 2)
            raise Rollback(inner)
    assert _ids(conn) == [1]


def test_error_in_savepoint_keeps_outer(conn: Any, table: str) -> None:
    with conn.transaction():
        _insert(conn, 1)
        with raises_exactly(psycopg.errors.UndefinedTable), conn.transaction():
            _insert(conn, 2)
            conn.execute("select * from nosuchtable")
        assert conn.info.transaction_status == INTRANS
        _insert(conn, 3)
    assert _ids(conn) == [1, 3]


def test_force_rollback(conn: Any, table: str) -> None:
    with conn.transaction(force_rollback=True):
        _insert(conn, 1)
        assert _ids(conn) == [1]
    assert _ids(conn) == []
    with conn.transaction(), conn.transaction(force_rollback=True):
        _insert(conn, 2)
    assert _ids(conn) == []


def test_transaction_in_existing_transaction_uses_savepoint(conn: Any, table: str) -> None:
    _insert(conn, 1)
    assert conn.info.transaction_status == INTRANS
    with conn.transaction() as tx:
        assert tx.savepoint_name == "_pg3_1"
        _insert(conn, 2)
        raise Rollback
    assert conn.info.transaction_status == INTRANS
    assert _ids(conn) == [1]
    conn.rollback()
    assert _ids(conn) == []


def test_transaction_in_autocommit(connect: Any) -> None:
    conn = connect(autocommit=True)
    conn.execute("create temp table t (id int)")
    with conn.transaction() as tx:
        assert tx.savepoint_name == ""
        assert conn.info.transaction_status == INTRANS
        _insert(conn, 1)
        with conn.transaction() as sp:
            assert sp.savepoint_name == "_pg3_2"
            _insert(conn, 2)
            raise Rollback
    assert conn.info.transaction_status == IDLE
    assert conn.autocommit
    assert _ids(conn) == [1]


def test_explicit_commit_or_rollback_forbidden_inside(conn: Any, table: str) -> None:
    with conn.transaction():
        with raises_exactly(psycopg.ProgrammingError, match="Explicit commit"):
            conn.commit()
        with raises_exactly(psycopg.ProgrammingError, match="Explicit rollback"):
            conn.rollback()
        _insert(conn, 1)
    assert _ids(conn) == [1]


def test_status_after_error_outside_block(conn: Any, table: str) -> None:
    with pytest.raises(psycopg.errors.UndefinedTable):
        conn.execute("select * from nosuchtable")
    assert conn.info.transaction_status == INERROR
    with raises_exactly(psycopg.errors.InFailedSqlTransaction):
        with conn.transaction():
            pass
    conn.rollback()
    assert conn.info.transaction_status == IDLE


def test_transaction_on_cursor_connection(conn: Any, table: str) -> None:
    cur = conn.cursor()
    with conn.transaction():
        cur.execute("insert into t values (7)")
        assert cur.rowcount == 1
    assert _ids(conn) == [7]


def test_transaction_with_server_cursor(conn: Any, table: str) -> None:
    with conn.transaction(), conn.cursor("sc") as cur:
        cur.execute("select generate_series(1, 3)")
        assert cur.fetchall() == [(1,), (2,), (3,)]


def test_savepoint_sql_visible_in_status(conn: Any, table: str) -> None:
    with conn.transaction():
        with conn.transaction():
            cur = conn.execute("select 1")
            assert cur.statusmessage == "SELECT 1"
    assert conn.info.transaction_status == IDLE


def test_transaction_repr_and_status(conn: Any) -> None:
    with conn.transaction() as tx:
        assert "(active)" in repr(tx)
    assert "(committed)" in repr(tx)
    with conn.transaction() as tx:
        raise Rollback
    assert "(rolled_back_explicitly)" in repr(tx)


@pytest.mark.fresh_db
def test_transaction_visible_to_others_only_after_commit(connect: Any) -> None:
    conn = connect()
    other = connect(autocommit=True)
    conn.execute("create table t (id int)")
    conn.commit()
    with conn.transaction():
        _insert(conn, 1)
        assert other.execute("select count(*) from t").fetchone() == (0,)
    assert other.execute("select count(*) from t").fetchone() == (1,)


@pytest.mark.fresh_db
def test_isolation_in_transaction_block(connect: Any) -> None:
    conn = connect(autocommit=True)
    other = connect(autocommit=True)
    conn.execute("create table t (id int)")
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    with conn.transaction():
        assert conn.execute("select count(*) from t").fetchone() == (0,)
        other.execute("insert into t values (1)")
        assert conn.execute("select count(*) from t").fetchone() == (0,)
    assert conn.execute("select count(*) from t").fetchone() == (1,)


@pytest.mark.fresh_db
def test_serialization_failure(connect: Any) -> None:
    a = connect()
    b = connect()
    a.execute("create table t (id int primary key, v int)")
    a.execute("insert into t values (1, 0)")
    a.commit()
    a.isolation_level = b.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    a.execute("select v from t where id = 1").fetchone()
    b.execute("update t set v = 2 where id = 1")
    b.commit()
    with raises_exactly(psycopg.errors.SerializationFailure, sqlstate="40001"):
        a.execute("update t set v = 1 where id = 1")
    a.rollback()


def test_lock_not_available(connect: Any) -> None:
    a = connect()
    a.execute("select pg_advisory_xact_lock(424242)")
    b = connect()
    b.execute("set lock_timeout = '50ms'")
    with raises_exactly(psycopg.errors.LockNotAvailable, sqlstate="55P03"):
        b.execute("select pg_advisory_xact_lock(424242)")
    a.rollback()
    b.rollback()
