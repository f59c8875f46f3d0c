"""Pipeline mode: queued statements, sync points, result order, errors and PipelineAborted."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import pq

from .support import raises_exactly

INERROR = pq.TransactionStatus.INERROR
IDLE = pq.TransactionStatus.IDLE


@pytest.fixture
def table(conn: Any) -> str:
    conn.execute("create temp table p (id int primary key, name text)")
    conn.commit()
    return "p"


def test_pipeline_is_supported(conn: Any) -> None:
    assert psycopg.Pipeline.is_supported()
    with conn.pipeline() as p:
        assert type(p) is psycopg.Pipeline


def test_pipeline_status(conn: Any) -> None:
    assert conn.pgconn.pipeline_status == pq.PipelineStatus.OFF
    with conn.pipeline() as p:
        assert isinstance(p, psycopg.Pipeline)
        assert conn.pgconn.pipeline_status == pq.PipelineStatus.ON
        assert conn.info.pipeline_status == pq.PipelineStatus.ON
    assert conn.pgconn.pipeline_status == pq.PipelineStatus.OFF


def test_results_in_order(conn: Any) -> None:
    with conn.pipeline():
        c1 = conn.execute("select 1")
        c2 = conn.execute("select %s::text", ["two"])
        c3 = conn.cursor().execute("select generate_series(1, 3)")
    assert c1.fetchall() == [(1,)]
    assert c2.fetchall() == [("two",)]
    assert c3.fetchall() == [(1,), (2,), (3,)]


def test_fetch_inside_pipeline_forces_sync(conn: Any) -> None:
    with conn.pipeline():
        cur = conn.execute("select 42")
        assert cur.fetchone() == (42,)
        assert conn.execute("select 43").fetchone() == (43,)


def test_writes_and_reads(conn: Any, table: str) -> None:
    with conn.pipeline():
        conn.execute("insert into p values (%s, %s)", [1, "a"])
        conn.execute("insert into p values (%s, %s)", [2, "b"])
        cur = conn.execute("select count(*) from p")
    assert cur.fetchone() == (2,)
    conn.commit()


def test_executemany_in_pipeline(conn: Any, table: str) -> None:
    cur = conn.cursor()
    with conn.pipeline():
        cur.executemany("insert into p values (%s, %s)", [(i, str(i)) for i in range(5)])
    assert cur.rowcount == 5
    assert conn.execute("select count(*) from p").fetchone() == (5,)


def test_executemany_returning_in_pipeline(conn: Any, table: str) -> None:
    cur = conn.cursor()
    with conn.pipeline():
        cur.executemany(
            "insert into p values (%s, %s) returning id", [(1, "a"), (2, "b")], returning=True
        )
    assert cur.fetchone() == (1,)
    assert cur.nextset()
    assert cur.fetchone() == (2,)


def test_executemany_uses_pipeline_implicitly(conn: Any, table: str) -> None:
    cur = conn.cursor()
    cur.executemany("insert into p values (%s, %s)", [(i, "x") for i in range(10)])
    assert cur.rowcount == 10


def test_sync(conn: Any, table: str) -> None:
    with conn.pipeline() as p:
        conn.execute("insert into p values (1, 'a')")
        p.sync()
        cur = conn.execute("select name from p")
        p.sync()
        assert cur.fetchone() == ("a",)


def test_error_then_pipeline_aborted(conn: Any, table: str) -> None:
    # The error is raised by the first operation that reads it back: a later
    # execute() if the server has already answered, else the end of the block.
    with raises_exactly(psycopg.errors.UndefinedTable, sqlstate="42P01"):
        with conn.pipeline():
            c1 = conn.execute("insert into p values (1, 'a')")
            conn.execute("select * from nosuchtable")
    assert c1.rowcount == 1
    assert conn.info.transaction_status == INERROR
    conn.rollback()
    assert conn.execute("select count(*) from p").fetchone() == (0,)


def test_pipeline_aborted_on_fetch(connect: Any) -> None:
    conn = connect(autocommit=True)
    with conn.pipeline() as p:
        c1 = conn.execute("select 1")
        with raises_exactly(psycopg.errors.UndefinedTable, sqlstate="42P01"):
            conn.execute("select * from nosuchtable").fetchone()
        with raises_exactly(psycopg.errors.PipelineAborted, match="pipeline aborted"):
            conn.execute("select 'aborted'").fetchone()
        p.sync()  # a sync point makes the connection usable again
        c2 = conn.execute("select 2")
    assert c1.fetchone() == (1,)
    assert c2.fetchone() == (2,)


def test_pipeline_error_leaves_the_transaction_failed(conn: Any) -> None:
    with raises_exactly(psycopg.errors.DivisionByZero, sqlstate="22012"):
        with conn.pipeline() as p:
            conn.execute("select 1 / 0")
            p.sync()
    assert conn.info.transaction_status == INERROR
    with raises_exactly(psycopg.errors.InFailedSqlTransaction, sqlstate="25P02"):
        conn.execute("select 2")
    conn.rollback()
    assert conn.execute("select 3").fetchone() == (3,)


def test_error_in_pipeline_with_sync_recovers(connect: Any) -> None:
    conn = connect(autocommit=True)
    conn.execute("create temp table p (id int primary key)")
    with conn.pipeline() as p:
        conn.execute("insert into p values (1)")
        with raises_exactly(psycopg.errors.UniqueViolation, sqlstate="23505"):
            conn.execute("insert into p values (1)").fetchone()
        p.sync()
        cur = conn.execute("select count(*) from p")
    assert cur.fetchone() == (0,)  # one implicit transaction per sync point


def test_pipeline_aborted_on_other_cursor(connect: Any) -> None:
    conn = connect(autocommit=True)
    with conn.pipeline() as p:
        bad = conn.cursor()
        good = conn.cursor()
        with raises_exactly(psycopg.errors.UndefinedTable):
            bad.execute("select * from nosuchtable")
            bad.fetchall()
        good.execute("select 1")
        with raises_exactly(psycopg.errors.PipelineAborted):
            good.fetchall()
        p.sync()
        assert good.execute("select 2").fetchall() == [(2,)]


def test_nested_pipelines(conn: Any) -> None:
    with conn.pipeline() as p1:
        c1 = conn.execute("select 1")
        with conn.pipeline() as p2:
            assert p2 is p1
            c2 = conn.execute("select 2")
        assert conn.pgconn.pipeline_status == pq.PipelineStatus.ON
    assert (c1.fetchone(), c2.fetchone()) == ((1,), (2,))


def test_transaction_inside_pipeline(conn: Any, table: str) -> None:
    with conn.pipeline():
        with conn.transaction():
            conn.execute("insert into p values (1, 'in')")
        with pytest.raises(ZeroDivisionError), conn.transaction():
            conn.execute("insert into p values (2, 'out')")
            raise ZeroDivisionError
        cur = conn.execute("select id from p order by id")
    assert cur.fetchall() == [(1,)]


def test_pipeline_in_autocommit(connect: Any) -> None:
    conn = connect(autocommit=True)
    with conn.pipeline():
        cur = conn.execute("select 1")
    assert cur.fetchone() == (1,)
    assert conn.info.transaction_status == IDLE


def test_stream_in_pipeline_is_refused(conn: Any) -> None:
    with conn.pipeline(), raises_exactly(psycopg.ProgrammingError):
        list(conn.cursor().stream("select 1"))


def test_copy_in_pipeline_is_refused(conn: Any) -> None:
    with conn.pipeline(), raises_exactly(psycopg.NotSupportedError):
        conn.cursor().copy("copy (select 1) to stdout").__enter__()


def test_server_cursor_in_pipeline_is_refused(conn: Any) -> None:
    with conn.pipeline(), conn.cursor("pc") as cur:
        with raises_exactly(psycopg.NotSupportedError, match="not supported in pipeline mode"):
            cur.execute("select generate_series(1, 3)")


def test_several_statements_in_pipeline_are_refused(conn: Any) -> None:
    with raises_exactly(psycopg.errors.SyntaxError, sqlstate="42601"):
        with conn.pipeline():
            conn.execute("select 1; select 2")


def test_pipeline_prepared_statements(connect: Any) -> None:
    conn = connect(prepare_threshold=0)
    with conn.pipeline():
        curs = [conn.execute("select %s::int * 10", [i]) for i in range(6)]
    assert [c.fetchone()[0] for c in curs] == [0, 10, 20, 30, 40, 50]


def test_pipeline_rowcount_and_statusmessage(conn: Any, table: str) -> None:
    with conn.pipeline():
        cur = conn.execute("insert into p values (1, 'a'), (2, 'b')")
    assert cur.rowcount == 2
    assert cur.statusmessage == "INSERT 0 2"
