"""Connections: open/close, context managers, autocommit, transaction characteristics, info."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from typing import Any

import psycopg
import pytest
from psycopg import pq
from psycopg.rows import dict_row, namedtuple_row

from .support import Impl, raises_exactly, terminate_backend

IDLE = pq.TransactionStatus.IDLE
INTRANS = pq.TransactionStatus.INTRANS
INERROR = pq.TransactionStatus.INERROR
UNKNOWN = pq.TransactionStatus.UNKNOWN


def _count(conn: Any, table: str) -> int:
    return int(conn.execute(f"select count(*) from {table}").fetchone()[0])


# --- open, close, broken ------------------------------------------------------------------


def test_connect_opens_an_idle_connection(conn: Any, impl: Impl) -> None:
    assert type(conn) is impl.Connection
    assert isinstance(conn, psycopg.Connection)
    assert not conn.closed
    assert not conn.broken
    assert conn.autocommit is False
    assert conn.info.transaction_status == IDLE
    assert conn.pgconn.status == pq.ConnStatus.OK


def test_close(conn: Any) -> None:
    conn.close()
    assert conn.closed
    assert not conn.broken
    assert conn.pgconn.status == pq.ConnStatus.BAD
    assert conn.info.transaction_status == UNKNOWN
    conn.close()  # idempotent
    assert conn.closed


def test_close_in_transaction_discards_it(connect: Any) -> None:
    conn = connect()
    conn.execute("create temp table t (id int)")
    conn.close()
    assert conn.closed


def test_connect_failure_is_operational_error(impl: Impl, dsn: str) -> None:
    with raises_exactly(psycopg.OperationalError):
        impl.Connection.connect(dsn + " dbname=no_such_database_dropin")


def test_connect_unknown_option_is_programming_error(impl: Impl, dsn: str) -> None:
    with pytest.raises(psycopg.ProgrammingError) as info:
        impl.Connection.connect(dsn, no_such_option_dropin=1)
    # governed_db documents UnknownKeywordError, a ProgrammingError (and TypeError) subclass.
    allowed = {psycopg.ProgrammingError}
    if impl.name == "governed":
        allowed.add(impl.module.UnknownKeywordError)
    assert type(info.value) in allowed


def test_broken_connection(connect: Any, dsn: str) -> None:
    conn = connect()
    terminate_backend(conn, dsn)
    with pytest.raises(psycopg.OperationalError) as info:
        conn.execute("select 1")
    assert type(info.value) is psycopg.errors.AdminShutdown
    assert conn.closed
    assert conn.broken
    with raises_exactly(psycopg.OperationalError, match="the connection is closed"):
        conn.execute("select 1")
    conn.close()
    assert conn.broken


def test_fileno_and_pgconn(conn: Any) -> None:
    assert conn.fileno() == conn.pgconn.socket
    assert conn.pgconn.status == pq.ConnStatus.OK
    assert conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
    assert conn.pgconn.parameter_status(b"client_encoding") == b"UTF8"
    assert conn.pgconn.backend_pid == conn.info.backend_pid


def test_pgconn_is_libpqs_handle(conn: Any) -> None:
    assert type(conn.pgconn) is psycopg.pq.PGconn
    res = conn.pgconn.exec_(b"select 1")
    assert res.get_value(0, 0) == b"1"


def test_connection_is_collected_after_close(impl: Impl, dsn: str) -> None:
    conn = impl.Connection.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("select 1")
    conn.execute("select 2").fetchall()
    conn.close()
    ref = weakref.ref(conn)
    del conn, cur
    gc.collect()
    assert ref() is None


def test_open_connection_is_collected(impl: Impl, dsn: str) -> None:
    conn = impl.Connection.connect(dsn, autocommit=True)
    conn.execute("select 1").fetchall()
    ref = weakref.ref(conn)
    with pytest.warns(ResourceWarning, match="was deleted while still open"):  # noqa: PT031
        del conn
        gc.collect()
    assert ref() is None


_DRIVER_ROOTS = ("psycopg", "psycopg_binary", "psycopg_pool", "governed_db")


def _driver_objects() -> int:
    """Live objects of psycopg's and governed_db's own types (other threads of the test
    process, such as audit writers left by earlier tests, allocate too)."""
    return sum(
        1
        for o in gc.get_objects()
        if str(getattr(type(o), "__module__", "")).partition(".")[0] in _DRIVER_ROOTS
    )


def test_gc_objects_stable_across_connections(impl: Impl, dsn: str) -> None:
    """psycopg's leak-test pattern: the same work, three times, the same object count."""
    counts = []
    for _ in range(3):
        with impl.Connection.connect(dsn) as conn:
            for i in range(30):
                conn.execute(f"select {i}, %s::text", [str(i)]).fetchall()
            with conn.cursor("leak") as cur:
                cur.execute("select generate_series(1, 3)")
                cur.fetchall()
        del conn, cur
        gc.collect()
        counts.append(_driver_objects())
    assert counts[1] == counts[2]


def test_cursor_is_collected(conn: Any) -> None:
    cur = conn.cursor()
    cur.execute("select 1")
    cur.close()
    ref = weakref.ref(cur)
    del cur
    gc.collect()
    assert ref() is None


# --- context manager ----------------------------------------------------------------------


@pytest.mark.fresh_db
def test_context_manager_commits_and_closes(connect: Any) -> None:
    with connect() as conn:
        conn.execute("create table t (id int)")
        conn.execute("insert into t values (1), (2)")
    assert conn.closed
    assert _count(connect(), "t") == 2


@pytest.mark.fresh_db
def test_context_manager_rolls_back_on_error_and_closes(connect: Any) -> None:
    with connect() as conn:
        conn.execute("create table t (id int)")
    with pytest.raises(ZeroDivisionError), connect() as conn:
        conn.execute("insert into t values (1)")
        raise ZeroDivisionError
    assert conn.closed
    assert _count(connect(), "t") == 0


@pytest.mark.fresh_db
def test_context_manager_after_database_error(connect: Any) -> None:
    with connect() as conn:
        conn.execute("create table t (id int)")
    with raises_exactly(psycopg.errors.UndefinedTable, sqlstate="42P01"), connect() as conn:
        conn.execute("insert into t values (1)")
        conn.execute("select * from nosuchtable")
    assert conn.closed
    assert _count(connect(), "t") == 0


@pytest.mark.fresh_db
def test_context_manager_in_autocommit(connect: Any) -> None:
    with connect(autocommit=True) as conn:
        conn.execute("create table t (id int)")
        conn.execute("insert into t values (1)")
        assert conn.info.transaction_status == IDLE
    with pytest.raises(ZeroDivisionError), connect(autocommit=True) as conn:
        conn.execute("insert into t values (2)")
        raise ZeroDivisionError
    assert _count(connect(), "t") == 2


def test_context_manager_returns_the_connection(connect: Any, impl: Impl) -> None:
    conn = connect()
    with conn as entered:
        assert entered is conn
    assert conn.closed


def test_context_manager_with_closed_connection(connect: Any) -> None:
    with connect() as conn:
        conn.close()
    assert conn.closed


# --- commit / rollback --------------------------------------------------------------------


def test_commit_and_rollback(conn: Any) -> None:
    conn.execute("create temp table t (id int)")
    conn.commit()
    assert conn.info.transaction_status == IDLE
    conn.execute("insert into t values (1)")
    assert conn.info.transaction_status == INTRANS
    conn.rollback()
    assert conn.info.transaction_status == IDLE
    assert _count(conn, "t") == 0
    conn.execute("insert into t values (2)")
    conn.commit()
    conn.execute("insert into t values (3)")
    conn.rollback()
    assert conn.execute("select id from t").fetchall() == [(2,)]


def test_commit_and_rollback_when_idle_are_no_ops(conn: Any) -> None:
    conn.commit()
    conn.rollback()
    assert conn.info.transaction_status == IDLE


def test_commit_in_error_state_rolls_back(conn: Any) -> None:
    conn.execute("create temp table t (id int)")
    conn.commit()
    conn.execute("insert into t values (1)")
    with raises_exactly(psycopg.errors.DivisionByZero, sqlstate="22012"):
        conn.execute("select 1 / 0")
    assert conn.info.transaction_status == INERROR
    with raises_exactly(psycopg.errors.InFailedSqlTransaction, sqlstate="25P02"):
        conn.execute("select 1")
    conn.commit()  # the server answers ROLLBACK
    assert conn.info.transaction_status == IDLE
    assert _count(conn, "t") == 0


# --- autocommit ---------------------------------------------------------------------------


def test_autocommit_off_opens_a_transaction(conn: Any) -> None:
    conn.execute("select 1")
    assert conn.info.transaction_status == INTRANS


def test_autocommit_on(connect: Any) -> None:
    conn = connect(autocommit=True)
    assert conn.autocommit is True
    conn.execute("select 1")
    assert conn.info.transaction_status == IDLE


def test_autocommit_setter(conn: Any) -> None:
    conn.autocommit = True
    assert conn.autocommit is True
    conn.execute("select 1")
    assert conn.info.transaction_status == IDLE
    conn.set_autocommit(False)
    assert conn.autocommit is False
    conn.execute("select 1")
    assert conn.info.transaction_status == INTRANS


def test_autocommit_cannot_change_in_transaction(conn: Any) -> None:
    conn.execute("select 1")
    with raises_exactly(psycopg.ProgrammingError, match="can't change 'autocommit' now"):
        conn.autocommit = True
    with raises_exactly(psycopg.ProgrammingError, match="INTRANS"):
        conn.set_autocommit(True)
    assert conn.autocommit is False


def test_autocommit_cannot_change_in_failed_transaction(conn: Any) -> None:
    with pytest.raises(psycopg.errors.DivisionByZero):
        conn.execute("select 1 / 0")
    with raises_exactly(psycopg.ProgrammingError, match="INERROR"):
        conn.autocommit = True
    conn.rollback()
    conn.autocommit = True
    assert conn.autocommit


def test_autocommit_in_transaction_block(connect: Any) -> None:
    conn = connect(autocommit=True)
    with conn.transaction():
        with raises_exactly(psycopg.ProgrammingError):
            conn.autocommit = False
    assert conn.autocommit


def test_autocommit_statements_that_refuse_transactions(connect: Any) -> None:
    with raises_exactly(psycopg.errors.ActiveSqlTransaction, sqlstate="25001"):
        connect().execute("create database dropin_never_created")
    conn = connect(autocommit=True)
    # VACUUM can't run in a transaction block: it works only in autocommit.
    conn.execute("create temp table t (id int)")
    conn.execute("vacuum t")
    assert conn.execute("select 1").statusmessage == "SELECT 1"


# --- isolation level, read only, deferrable ----------------------------------------------


def _show(conn: Any, name: str) -> str:
    return str(conn.execute(f"show {name}").fetchone()[0])


def test_transaction_characteristics_default_to_none(conn: Any) -> None:
    assert conn.isolation_level is None
    assert conn.read_only is None
    assert conn.deferrable is None
    assert _show(conn, "transaction_isolation") == "read committed"


@pytest.mark.parametrize(
    ("level", "shown"),
    [
        (psycopg.IsolationLevel.READ_UNCOMMITTED, "read uncommitted"),
        (psycopg.IsolationLevel.READ_COMMITTED, "read committed"),
        (psycopg.IsolationLevel.REPEATABLE_READ, "repeatable read"),
        (psycopg.IsolationLevel.SERIALIZABLE, "serializable"),
    ],
)
def test_isolation_level(conn: Any, level: Any, shown: str) -> None:
    conn.isolation_level = level
    assert conn.isolation_level is level
    assert _show(conn, "transaction_isolation") == shown
    conn.rollback()
    conn.set_isolation_level(None)
    assert _show(conn, "transaction_isolation") == "read committed"


def test_isolation_level_from_int(conn: Any) -> None:
    conn.isolation_level = 4
    assert conn.isolation_level is psycopg.IsolationLevel.SERIALIZABLE
    with raises_exactly(ValueError):
        conn.isolation_level = 42


def test_isolation_level_in_autocommit(connect: Any) -> None:
    conn = connect(autocommit=True)
    conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
    assert _show(conn, "transaction_isolation") == "read committed"
    with conn.transaction():
        assert _show(conn, "transaction_isolation") == "serializable"


def test_characteristics_cannot_change_in_transaction(conn: Any) -> None:
    conn.execute("select 1")
    with raises_exactly(psycopg.ProgrammingError, match="can't change 'isolation_level' now"):
        conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
    with raises_exactly(psycopg.ProgrammingError, match="can't change 'read_only' now"):
        conn.read_only = True
    with raises_exactly(psycopg.ProgrammingError, match="can't change 'deferrable' now"):
        conn.deferrable = True


def test_read_only(conn: Any) -> None:
    conn.read_only = True
    assert conn.read_only is True
    assert _show(conn, "transaction_read_only") == "on"
    with raises_exactly(psycopg.errors.ReadOnlySqlTransaction, sqlstate="25006"):
        conn.execute("create table dropin_read_only_refused (id int)")
    conn.rollback()
    conn.set_read_only(False)
    assert _show(conn, "transaction_read_only") == "off"


def test_deferrable(conn: Any) -> None:
    conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
    conn.read_only = True
    conn.deferrable = True
    assert _show(conn, "transaction_deferrable") == "on"
    conn.rollback()
    conn.set_deferrable(False)
    assert _show(conn, "transaction_deferrable") == "off"


# --- info ---------------------------------------------------------------------------------


def test_info(conn: Any, dsn: str) -> None:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    info = conn.info
    assert info.dbname == params["dbname"]
    assert info.user == params["user"]
    assert str(info.port) == str(params["port"])
    assert info.encoding == "utf-8"
    assert info.vendor == "PostgreSQL"
    assert info.server_version >= 140000
    assert info.backend_pid == conn.execute("select pg_backend_pid()").fetchone()[0]
    assert info.status == pq.ConnStatus.OK
    assert info.pipeline_status == pq.PipelineStatus.OFF
    assert info.error_message == ""
    assert info.timezone.utcoffset(None) is not None or str(info.timezone)


def test_info_transaction_status(conn: Any) -> None:
    assert conn.info.transaction_status == IDLE
    conn.execute("select 1")
    assert conn.info.transaction_status == INTRANS
    with pytest.raises(psycopg.errors.UndefinedTable):
        conn.execute("select * from nosuchtable")
    assert conn.info.transaction_status == INERROR
    conn.rollback()
    assert conn.info.transaction_status == IDLE


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("standard_conforming_strings", "on"),
        ("client_encoding", "UTF8"),
        ("server_encoding", "UTF8"),
        ("integer_datetimes", "on"),
        ("no_such_parameter", None),
    ],
)
def test_info_parameter_status(conn: Any, name: str, value: str | None) -> None:
    assert conn.info.parameter_status(name) == value


def test_info_application_name_is_the_users(conn: Any) -> None:
    assert conn.info.parameter_status("application_name") == ""
    assert _show(conn, "application_name") == ""


def test_info_application_name_given(connect: Any) -> None:
    conn = connect(application_name="dropin-app")
    assert conn.info.parameter_status("application_name") == "dropin-app"


def test_info_get_parameters(conn: Any, dsn: str) -> None:
    params = conn.info.get_parameters()
    assert params["dbname"] == psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    assert "password" not in params


def test_parameter_status_follows_set(conn: Any) -> None:
    conn.execute("set timezone to 'Europe/Rome'")
    assert conn.info.parameter_status("TimeZone") == "Europe/Rome"
    assert str(conn.info.timezone) == "Europe/Rome"


# --- notices and notifies -----------------------------------------------------------------


def test_notice_handlers(conn: Any) -> None:
    got: list[Any] = []

    def handler(diag: psycopg.errors.Diagnostic) -> None:
        assert isinstance(diag, psycopg.errors.Diagnostic)
        got.append((diag.severity, diag.sqlstate, diag.message_primary))

    conn.add_notice_handler(handler)
    conn.execute("do $$ begin raise notice 'hello %', 42; end $$")
    assert got == [("NOTICE", "00000", "hello 42")]
    conn.remove_notice_handler(handler)
    conn.execute("do $$ begin raise notice 'again'; end $$")
    assert len(got) == 1


def test_notice_from_a_warning(conn: Any) -> None:
    got: list[Any] = []
    conn.add_notice_handler(lambda d: got.append((d.severity, d.message_primary)))
    conn.execute("do $$ begin raise warning 'careful'; end $$")
    assert got == [("WARNING", "careful")]


def test_notifies_generator(connect: Any) -> None:
    listener = connect(autocommit=True)
    notifier = connect(autocommit=True)
    listener.execute("listen dropin_chan")
    notifier.execute("notify dropin_chan, 'hello'")
    notifier.execute("select pg_notify('dropin_chan', 'world')")
    got = list(listener.notifies(timeout=2.0, stop_after=2))
    assert [(n.channel, n.payload) for n in got] == [
        ("dropin_chan", "hello"),
        ("dropin_chan", "world"),
    ]
    assert all(isinstance(n, psycopg.Notify) for n in got)
    assert {n.pid for n in got} == {notifier.info.backend_pid}


def test_notifies_timeout_without_notifications(connect: Any) -> None:
    listener = connect(autocommit=True)
    listener.execute("listen dropin_silent")
    t0 = time.monotonic()
    assert list(listener.notifies(timeout=0.2)) == []
    assert time.monotonic() - t0 < 2


def test_notifies_generator_closed_early(connect: Any) -> None:
    listener = connect(autocommit=True)
    notifier = connect(autocommit=True)
    listener.execute("listen dropin_stop")
    for i in range(3):
        notifier.execute(f"notify dropin_stop, '{i}'")
    gen = listener.notifies(timeout=2.0)
    first = next(gen)
    gen.close()
    assert first.payload == "0"
    assert listener.execute("select 1").fetchone() == (1,)


def test_notify_handler(connect: Any) -> None:
    listener = connect(autocommit=True)
    notifier = connect(autocommit=True)
    got: list[Any] = []
    listener.add_notify_handler(got.append)
    listener.execute("listen dropin_handler")
    notifier.execute("notify dropin_handler, 'x'")
    time.sleep(0.05)
    listener.execute("select 1")
    assert [(n.channel, n.payload) for n in got] == [("dropin_handler", "x")]
    listener.remove_notify_handler(got.append)


def test_notify_is_sent_at_commit(connect: Any) -> None:
    listener = connect(autocommit=True)
    notifier = connect()
    listener.execute("listen dropin_tx")
    notifier.execute("notify dropin_tx, 'a'")
    assert list(listener.notifies(timeout=0.1)) == []
    notifier.commit()
    assert [n.payload for n in listener.notifies(timeout=2.0, stop_after=1)] == ["a"]


# --- cancel -------------------------------------------------------------------------------


def _cancel_soon(conn: Any, method: str) -> threading.Thread:
    def run() -> None:
        time.sleep(0.2)
        getattr(conn, method)()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("method", ["cancel", "cancel_safe"])
def test_cancel(conn: Any, method: str) -> None:
    thread = _cancel_soon(conn, method)
    with raises_exactly(psycopg.errors.QueryCanceled, sqlstate="57014"):
        conn.execute("select pg_sleep(5)")
    thread.join()
    assert conn.info.transaction_status == INERROR
    conn.rollback()
    assert conn.execute("select 1").fetchone() == (1,)


def test_cancel_when_idle_is_harmless(conn: Any) -> None:
    conn.cancel()
    conn.cancel_safe()
    assert conn.execute("select 1").fetchone() == (1,)


def test_statement_timeout(connect: Any) -> None:
    conn = connect(options="-c statement_timeout=100")
    with raises_exactly(psycopg.errors.QueryCanceled, sqlstate="57014"):
        conn.execute("select pg_sleep(2)")


# --- execute shortcut, threads ------------------------------------------------------------


def test_execute_returns_a_cursor(conn: Any, impl: Impl) -> None:
    cur = conn.execute("select %s::int, %s::text", (1, "a"))
    assert type(cur) is impl.Cursor
    assert cur.connection is conn
    assert cur.fetchall() == [(1, "a")]
    assert cur.rowcount == 1


def test_execute_binary(conn: Any) -> None:
    cur = conn.execute("select %s::int", (7,), binary=True)
    assert cur.fetchone() == (7,)
    assert cur.pgresult.fformat(0) == pq.Format.BINARY


def test_execute_with_connection_row_factory(connect: Any) -> None:
    conn = connect(row_factory=namedtuple_row)
    row = conn.execute("select 1 as a, 2 as b").fetchone()
    assert (row.a, row.b) == (1, 2)


def test_execute_from_threads(connect: Any) -> None:
    conn = connect(autocommit=True)
    results: list[Any] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results.append(conn.execute("select %s::int", (i,)).fetchone()[0])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == list(range(8))


# --- prepared statements ------------------------------------------------------------------


def _prepared(conn: Any) -> list[str]:
    cur = conn.cursor()
    cur.execute("select statement from pg_prepared_statements order by prepare_time", prepare=False)
    return [row[0] for row in cur.fetchall()]


def test_prepare_threshold_default(conn: Any) -> None:
    assert conn.prepare_threshold == 5
    query = "select %s::int + 1"
    results = [conn.execute(query, (i,)).fetchone() for i in range(7)]
    assert results == [(i + 1,) for i in range(7)]
    assert _prepared(conn) == ["select $1::int + 1"]


def test_prepared_statement_gives_the_same_results(conn: Any) -> None:
    conn.execute("create temp table t (id int, name text)")
    conn.execute("insert into t select i, 'n' || i from generate_series(1, 5) i")
    seen = []
    for _ in range(7):
        cur = conn.execute("select id, name from t where id > %s order by id", (2,))
        seen.append((cur.fetchall(), [c.name for c in cur.description], cur.rowcount))
    assert all(s == seen[0] for s in seen)
    assert seen[0][0] == [(3, "n3"), (4, "n4"), (5, "n5")]
    assert "select id, name from t where id > $1 order by id" in _prepared(conn)


def test_prepare_threshold_zero_and_none(connect: Any) -> None:
    eager = connect(prepare_threshold=0)
    eager.execute("select %s::int * 2", (1,))
    assert _prepared(eager) == ["select $1::int * 2"]
    never = connect(prepare_threshold=None)
    for i in range(7):
        never.execute("select %s::int * 3", (i,))
    assert _prepared(never) == []


def test_prepare_flag_per_execute(conn: Any) -> None:
    conn.execute("select %s::int * 4", (1,), prepare=True)
    assert _prepared(conn) == ["select $1::int * 4"]
    for i in range(7):
        conn.execute("select %s::int * 5", (i,), prepare=False)
    assert _prepared(conn) == ["select $1::int * 4"]


def test_prepare_threshold_setter(conn: Any) -> None:
    conn.prepare_threshold = 1
    assert conn.prepare_threshold == 1
    conn.execute("select 10 + %s", (1,))
    assert _prepared(conn) == []
    conn.execute("select 10 + %s", (1,))
    assert _prepared(conn) == ["select 10 + $1"]


def test_prepared_statements_survive_rollback(conn: Any) -> None:
    for i in range(6):
        assert conn.execute("select %s::int", (i,)).fetchone() == (i,)
    conn.rollback()
    assert conn.execute("select %s::int", (42,)).fetchone() == (42,)


def test_prepared_statement_invalidated_by_ddl(conn: Any) -> None:
    conn.execute("create temp table t (id int)")
    conn.execute("insert into t values (1)")
    for _ in range(6):
        assert conn.execute("select * from t").fetchall() == [(1,)]
    conn.execute("alter table t add column x text default 'x'")
    assert conn.execute("select * from t").fetchall() == [(1, "x")]


def test_prepare_many_distinct_queries(conn: Any) -> None:
    conn.prepare_threshold = 0
    for i in range(120):
        assert conn.execute(f"select {i} + %s::int", (1,)).fetchone() == (i + 1,)
    # psycopg keeps at most prepared_max (100) prepared statements
    assert len(_prepared(conn)) == conn.prepared_max == 100


# --- row_factory and cursor_factory -------------------------------------------------------


def test_row_factory_on_connection(connect: Any) -> None:
    conn = connect(row_factory=dict_row)
    assert conn.row_factory is dict_row
    assert conn.execute("select 1 as a").fetchone() == {"a": 1}
    cur = conn.cursor()
    assert cur.row_factory is dict_row
    conn.row_factory = namedtuple_row
    assert conn.cursor().row_factory is namedtuple_row
    assert cur.row_factory is dict_row  # existing cursors keep theirs
    assert conn.execute("select 2 as b").fetchone().b == 2


def test_row_factory_per_cursor(conn: Any) -> None:
    cur = conn.cursor(row_factory=dict_row)
    assert cur.execute("select 1 as a").fetchall() == [{"a": 1}]
    assert conn.execute("select 1 as a").fetchall() == [(1,)]


def test_cursor_factory_on_connection(connect: Any, impl: Impl) -> None:
    conn = connect(cursor_factory=impl.ClientCursor)
    assert conn.cursor_factory is impl.ClientCursor
    cur = conn.cursor()
    assert type(cur) is impl.ClientCursor
    assert cur.mogrify("select %s", ["it's"]) == "select 'it''s'"
    conn.cursor_factory = impl.RawCursor
    assert type(conn.execute("select $1::int", [1])) is impl.RawCursor


def test_server_cursor_factory_on_connection(conn: Any, impl: Impl) -> None:
    assert conn.server_cursor_factory is impl.ServerCursor
    conn.server_cursor_factory = impl.RawServerCursor
    with conn.cursor("c") as cur:
        assert type(cur) is impl.RawServerCursor
        cur.execute("select $1::int", [3])
        assert cur.fetchall() == [(3,)]


def test_cursor_factory_psycopg_class_gives_that_kind(connect: Any) -> None:
    conn = connect(cursor_factory=psycopg.ClientCursor)
    cur = conn.cursor()
    assert isinstance(cur, psycopg.ClientCursor)
    assert cur.execute("select %s", ["x"]).fetchone() == ("x",)


def test_cursor_factory_identity_reads_back(conn: Any) -> None:
    conn.cursor_factory = psycopg.ClientCursor
    assert conn.cursor_factory is psycopg.ClientCursor
    assert type(conn.cursor()) is psycopg.ClientCursor


def test_user_cursor_subclass(connect: Any, impl: Impl) -> None:
    class MyCursor(psycopg.Cursor[Any]):
        def first(self, query: str) -> Any:
            return self.execute(query).fetchone()[0]

    conn = connect(cursor_factory=MyCursor)
    cur = conn.cursor()
    assert isinstance(cur, MyCursor)
    assert cur.first("select 41 + 1") == 42


# --- two phase commit ---------------------------------------------------------------------


def test_xid_and_tpc_with_prepared_transactions_disabled(conn: Any) -> None:
    if conn.execute("show max_prepared_transactions").fetchone()[0] != "0":
        pytest.skip("prepared transactions are enabled on this server")
    conn.rollback()
    xid = conn.xid(42, "gtrid", "bqual")
    assert (xid.format_id, xid.gtrid, xid.bqual) == (42, "gtrid", "bqual")
    conn.tpc_begin(xid)
    conn.execute("select 1")
    with raises_exactly(psycopg.NotSupportedError, match="prepared transactions are disabled"):
        conn.tpc_prepare()
    assert conn.info.transaction_status == IDLE


def test_tpc_begin_in_transaction_is_refused(conn: Any) -> None:
    conn.execute("select 1")
    with raises_exactly(psycopg.ProgrammingError):
        conn.tpc_begin("x")


def test_tpc_recover(conn: Any) -> None:
    assert conn.tpc_recover() == []
