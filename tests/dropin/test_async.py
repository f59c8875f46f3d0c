"""The async twins: AsyncConnection and its cursors, copy, transactions, pipeline, notifies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import Rollback, pq
from psycopg.rows import dict_row
from psycopg.types import TypeInfo

from .support import Impl, closed_error, raises_exactly

IDLE = pq.TransactionStatus.IDLE
INTRANS = pq.TransactionStatus.INTRANS
INERROR = pq.TransactionStatus.INERROR


async def _fetchall(aconn: Any, query: str, params: Any = None) -> list[Any]:
    cur = await aconn.execute(query, params)
    return list(await cur.fetchall())


# --- connection ---------------------------------------------------------------------------


async def test_connect_and_close(aconn: Any, impl: Impl) -> None:
    assert type(aconn) is impl.AsyncConnection
    assert isinstance(aconn, psycopg.AsyncConnection)
    assert not aconn.closed
    assert aconn.info.transaction_status == IDLE
    await aconn.close()
    assert aconn.closed
    assert not aconn.broken
    await aconn.close()


async def test_module_level_async_connect(impl: Impl, dsn: str) -> None:
    conn = await impl.AsyncConnection.connect(dsn, autocommit=True)
    async with conn:
        assert conn.autocommit
        assert await _fetchall(conn, "select 1") == [(1,)]
    assert conn.closed


@pytest.mark.fresh_db
async def test_context_manager_commits(aconnect: Callable[..., Any]) -> None:
    async with await aconnect() as conn:
        await conn.execute("create table t (id int)")
        await conn.execute("insert into t values (1)")
    assert conn.closed
    other = await aconnect()
    assert await _fetchall(other, "select * from t") == [(1,)]


@pytest.mark.fresh_db
async def test_context_manager_rolls_back(aconnect: Callable[..., Any]) -> None:
    async with await aconnect() as conn:
        await conn.execute("create table t (id int)")
    with pytest.raises(ZeroDivisionError):
        async with await aconnect() as conn:
            await conn.execute("insert into t values (1)")
            raise ZeroDivisionError
    other = await aconnect()
    assert await _fetchall(other, "select * from t") == []


async def test_commit_rollback(aconn: Any) -> None:
    await aconn.execute("create temp table t (id int)")
    await aconn.commit()
    await aconn.execute("insert into t values (1)")
    assert aconn.info.transaction_status == INTRANS
    await aconn.rollback()
    assert await _fetchall(aconn, "select * from t") == []


async def test_set_autocommit(aconn: Any) -> None:
    await aconn.set_autocommit(True)
    assert aconn.autocommit
    await aconn.execute("select 1")
    assert aconn.info.transaction_status == IDLE
    await aconn.set_autocommit(False)
    await aconn.execute("select 1")
    with raises_exactly(psycopg.ProgrammingError, match="can't change 'autocommit' now"):
        await aconn.set_autocommit(True)


async def test_autocommit_property_setter_is_refused(aconn: Any) -> None:
    with raises_exactly(AttributeError):
        aconn.autocommit = True


async def test_set_isolation_read_only_deferrable(aconn: Any) -> None:
    await aconn.set_isolation_level(psycopg.IsolationLevel.SERIALIZABLE)
    await aconn.set_read_only(True)
    await aconn.set_deferrable(True)
    assert await _fetchall(
        aconn,
        "select current_setting('transaction_isolation'),"
        " current_setting('transaction_read_only'), current_setting('transaction_deferrable')",
    ) == [("serializable", "on", "on")]
    with raises_exactly(psycopg.ProgrammingError):
        await aconn.set_read_only(False)


async def test_info(aconn: Any) -> None:
    assert aconn.info.encoding == "utf-8"
    assert aconn.info.backend_pid == (await _fetchall(aconn, "select pg_backend_pid()"))[0][0]
    assert aconn.info.parameter_status("standard_conforming_strings") == "on"


async def test_async_execute_error(aconn: Any) -> None:
    with raises_exactly(psycopg.errors.UndefinedTable, sqlstate="42P01"):
        await aconn.execute("select * from nosuchtable")
    assert aconn.info.transaction_status == INERROR
    with raises_exactly(psycopg.errors.InFailedSqlTransaction):
        await aconn.execute("select 1")
    await aconn.rollback()


async def test_notices(aconn: Any) -> None:
    got: list[str] = []
    aconn.add_notice_handler(lambda d: got.append(d.message_primary))
    await aconn.execute("do $$ begin raise notice 'async notice'; end $$")
    assert got == ["async notice"]


async def test_notifies(aconnect: Callable[..., Any]) -> None:
    listener = await aconnect(autocommit=True)
    notifier = await aconnect(autocommit=True)
    await listener.execute("listen dropin_async")
    await notifier.execute("notify dropin_async, 'one'")
    await notifier.execute("select pg_notify('dropin_async', 'two')")
    got = [n async for n in listener.notifies(timeout=2.0, stop_after=2)]
    assert [(n.channel, n.payload) for n in got] == [
        ("dropin_async", "one"),
        ("dropin_async", "two"),
    ]
    assert {n.pid for n in got} == {notifier.info.backend_pid}


async def test_notifies_timeout(aconnect: Callable[..., Any]) -> None:
    listener = await aconnect(autocommit=True)
    await listener.execute("listen dropin_async_silent")
    assert [n async for n in listener.notifies(timeout=0.1)] == []


async def test_cancel(aconn: Any) -> None:
    async def cancel_soon() -> None:
        await asyncio.sleep(0.2)
        await aconn.cancel_safe()

    task = asyncio.create_task(cancel_soon())
    with raises_exactly(psycopg.errors.QueryCanceled, sqlstate="57014"):
        await aconn.execute("select pg_sleep(5)")
    await task
    await aconn.rollback()
    assert await _fetchall(aconn, "select 1") == [(1,)]


async def test_prepared_statements(aconn: Any) -> None:
    for i in range(7):
        assert await _fetchall(aconn, "select %s::int + 100", [i]) == [(i + 100,)]
    cur = aconn.cursor()
    await cur.execute("select statement from pg_prepared_statements", prepare=False)
    assert await cur.fetchall() == [("select $1::int + 100",)]


async def test_row_factory(aconnect: Callable[..., Any]) -> None:
    conn = await aconnect(row_factory=dict_row)
    assert await _fetchall(conn, "select 1 as a") == [{"a": 1}]
    cur = conn.cursor(row_factory=psycopg.rows.tuple_row)
    await cur.execute("select 1 as a")
    cur.row_factory = psycopg.rows.namedtuple_row
    assert (await cur.fetchone()).a == 1


async def test_typeinfo_fetch(aconn: Any) -> None:
    info = await TypeInfo.fetch(aconn, "text")
    assert info is not None
    assert info.oid == 25


@pytest.mark.fresh_db
async def test_register_enum_async(aconn: Any) -> None:
    from psycopg.types.enum import EnumInfo, register_enum

    await aconn.execute("create type mood as enum ('sad', 'happy')")
    info = await EnumInfo.fetch(aconn, "mood")
    register_enum(info, aconn)
    (value,) = (await _fetchall(aconn, "select 'happy'::mood"))[0]
    assert value.name == "happy"


# --- cursors ------------------------------------------------------------------------------


async def test_cursor_fetch(aconn: Any, impl: Impl) -> None:
    cur = aconn.cursor()
    assert type(cur) is impl.AsyncCursor
    await cur.execute("select generate_series(1, 5)")
    assert cur.rowcount == 5
    assert await cur.fetchone() == (1,)
    assert await cur.fetchmany(2) == [(2,), (3,)]
    assert cur.rownumber == 3
    assert [r async for r in cur] == [(4,), (5,)]
    assert await cur.fetchone() is None
    await cur.scroll(0, "absolute")
    assert await cur.fetchall() == [(1,), (2,), (3,), (4,), (5,)]


@pytest.mark.parametrize(
    ("kind", "query"),
    [
        ("AsyncCursor", "select %s::int * 2"),
        ("AsyncClientCursor", "select %s::int * 2"),
        ("AsyncRawCursor", "select $1::int * 2"),
    ],
)
async def test_cursor_kinds(aconn: Any, impl: Impl, kind: str, query: str) -> None:
    async with getattr(impl, kind)(aconn) as cur:
        assert isinstance(cur, getattr(psycopg, kind))
        await cur.execute(query, [21])
        assert await cur.fetchone() == (42,)
    assert cur.closed


async def test_client_cursor_mogrify(aconn: Any, impl: Impl) -> None:
    cur = impl.AsyncClientCursor(aconn)
    assert cur.mogrify("select %s, '%%'", ["it's"]) == "select 'it''s', '%'"


async def test_cursor_description_statusmessage(aconn: Any) -> None:
    cur = await aconn.execute("select 1 as a, 'x'::text as b")
    assert [(c.name, c.type_code) for c in cur.description] == [("a", 23), ("b", 25)]
    assert cur.statusmessage == "SELECT 1"


async def test_closed_cursor(aconn: Any) -> None:
    cur = aconn.cursor()
    await cur.close()
    with raises_exactly(psycopg.InterfaceError, match="the cursor is closed"):
        await cur.execute("select 1")


async def test_nextset(aconn: Any) -> None:
    cur = await aconn.execute("select 1; select 2")
    assert await cur.fetchall() == [(1,)]
    assert cur.nextset()
    assert await cur.fetchall() == [(2,)]
    assert cur.nextset() is None


async def test_executemany_returning(aconn: Any) -> None:
    await aconn.execute("create temp table m (id serial, name text)")
    cur = aconn.cursor()
    await cur.executemany(
        "insert into m (name) values (%s) returning id, name", [("a",), ("b",)], returning=True
    )
    assert await cur.fetchall() == [(1, "a")]
    assert cur.nextset()
    assert await cur.fetchall() == [(2, "b")]
    await cur.executemany("insert into m (name) values (%s)", [("c",), ("d",)])
    assert cur.rowcount == 2


async def test_stream(aconn: Any) -> None:
    cur = aconn.cursor()
    got = [r[0] async for r in cur.stream("select generate_series(1, %s)", [4])]
    assert got == [1, 2, 3, 4]


async def test_stream_break_early(aconnect: Callable[..., Any]) -> None:
    conn = await aconnect(autocommit=True)
    cur = conn.cursor()
    async for row in cur.stream("select generate_series(1, 10000)"):
        assert row == (1,)
        break
    assert await _fetchall(conn, "select 'after'") == [("after",)]


async def test_stream_error(aconn: Any) -> None:
    cur = aconn.cursor()
    got = []
    with raises_exactly(psycopg.errors.DivisionByZero):
        async for row in cur.stream("select 1 / (2 - i) from generate_series(1, 3) i"):
            got.append(row[0])
    assert got == [1]


async def test_server_cursor(aconn: Any, impl: Impl) -> None:
    async with aconn.cursor("asc", scrollable=True) as cur:
        assert type(cur) is impl.AsyncServerCursor
        await cur.execute("select generate_series(1, 10)")
        assert await cur.fetchone() == (1,)
        assert await cur.fetchmany(2) == [(2,), (3,)]
        await cur.scroll(-2)
        assert await cur.fetchone() == (2,)
        cur.itersize = 3
        assert [r[0] async for r in cur] == list(range(3, 11))


async def test_server_cursor_withhold(aconn: Any) -> None:
    async with aconn.cursor("wh", withhold=True) as cur:
        await cur.execute("select generate_series(1, 3)")
        await aconn.commit()
        assert await cur.fetchall() == [(1,), (2,), (3,)]


async def test_raw_server_cursor(aconn: Any, impl: Impl) -> None:
    async with impl.AsyncRawServerCursor(aconn, "raw") as cur:
        await cur.execute("select $1::text", ["r"])
        assert await cur.fetchall() == [("r",)]


# --- copy ---------------------------------------------------------------------------------


async def test_copy_from_and_to(aconn: Any) -> None:
    await aconn.execute("create temp table c (id int, name text)")
    cur = aconn.cursor()
    async with cur.copy("copy c from stdin") as copy:
        await copy.write_row((1, "a"))
        await copy.write("2\tb\n")
    assert cur.rowcount == 2
    async with cur.copy("copy (select * from c order by id) to stdout") as copy:
        assert [r async for r in copy.rows()] == [("1", "a"), ("2", "b")]
    async with cur.copy("copy (select * from c where id > %s) to stdout", [1]) as copy:
        copy.set_types(["int4", "text"])
        assert await copy.read_row() == (2, "b")
        assert await copy.read_row() is None


async def test_copy_binary(aconn: Any) -> None:
    await aconn.execute("create temp table c (id int, name text)")
    async with aconn.cursor().copy("copy c from stdin (format binary)") as copy:
        copy.set_types(["int4", "text"])
        await copy.write_row((7, "seven"))
    async with aconn.cursor().copy("copy c to stdout (format binary)") as copy:
        copy.set_types(["int4", "text"])
        assert [r async for r in copy.rows()] == [(7, "seven")]


async def test_copy_error(aconn: Any) -> None:
    await aconn.execute("create temp table c (id int)")
    with raises_exactly(psycopg.errors.InvalidTextRepresentation, sqlstate="22P02"):
        async with aconn.cursor().copy("copy c from stdin") as copy:
            await copy.write("x\n")
    assert aconn.info.transaction_status == INERROR


# --- transactions and pipeline ------------------------------------------------------------


async def test_transaction_blocks(aconn: Any) -> None:
    await aconn.execute("create temp table t (id int)")
    await aconn.commit()
    async with aconn.transaction():
        await aconn.execute("insert into t values (1)")
        async with aconn.transaction() as sp:
            assert sp.savepoint_name == "_pg3_2"
            await aconn.execute("insert into t values (2)")
            raise Rollback
        with pytest.raises(ZeroDivisionError):
            async with aconn.transaction():
                await aconn.execute("insert into t values (3)")
                raise ZeroDivisionError
    async with aconn.transaction(force_rollback=True):
        await aconn.execute("insert into t values (4)")
    assert await _fetchall(aconn, "select id from t") == [(1,)]


async def test_transaction_error(aconn: Any) -> None:
    with raises_exactly(psycopg.errors.DivisionByZero):
        async with aconn.transaction():
            await aconn.execute("select 1 / 0")
    assert aconn.info.transaction_status == IDLE


async def test_explicit_commit_forbidden_in_transaction(aconn: Any) -> None:
    async with aconn.transaction():
        with raises_exactly(psycopg.ProgrammingError, match="Explicit commit"):
            await aconn.commit()


async def test_pipeline(aconn: Any) -> None:
    await aconn.execute("create temp table p (id int primary key)")
    async with aconn.pipeline() as p:
        assert isinstance(p, psycopg.AsyncPipeline)
        c1 = await aconn.execute("insert into p values (1)")
        c2 = await aconn.execute("select count(*) from p")
        await p.sync()
        assert await c2.fetchone() == (1,)
    assert c1.rowcount == 1


async def test_pipeline_aborted(aconnect: Callable[..., Any]) -> None:
    conn = await aconnect(autocommit=True)
    async with conn.pipeline() as p:
        with raises_exactly(psycopg.errors.UndefinedTable):
            await (await conn.execute("select * from nosuchtable")).fetchone()
        with raises_exactly(psycopg.errors.PipelineAborted):
            await (await conn.execute("select 1")).fetchone()
        await p.sync()
        assert await (await conn.execute("select 2")).fetchone() == (2,)


async def test_executemany_in_pipeline(aconn: Any) -> None:
    await aconn.execute("create temp table p (id int)")
    cur = aconn.cursor()
    async with aconn.pipeline():
        await cur.executemany("insert into p values (%s)", [(i,) for i in range(4)])
    assert cur.rowcount == 4


# --- closed connection --------------------------------------------------------------------


async def _enter(cm: Any) -> Any:
    return await cm.__aenter__()


ASYNC_REFUSED: dict[str, Callable[[Any], Any]] = {
    "execute": lambda c: c.execute("select 1"),
    "commit": lambda c: c.commit(),
    "rollback": lambda c: c.rollback(),
    "set_autocommit": lambda c: c.set_autocommit(True),
    "transaction": lambda c: _enter(c.transaction()),
    "pipeline": lambda c: _enter(c.pipeline()),
    "typeinfo_fetch": lambda c: TypeInfo.fetch(c, "text"),
    "cur_execute": lambda c: c.test_cursor.execute("select 1"),
    "cur_executemany": lambda c: c.test_cursor.executemany("select %s", [(1,)]),
    "cur_copy": lambda c: _enter(c.test_cursor.copy("copy (select 1) to stdout")),
    "cur_stream": lambda c: c.test_cursor.stream("select 1").__anext__(),
    "server_cursor_execute": lambda c: c.test_server_cursor.execute("select 1"),
}


@pytest.mark.parametrize("op", list(ASYNC_REFUSED))
async def test_closed_async_connection_refuses(aconn: Any, op: str) -> None:
    aconn.test_cursor = aconn.cursor()
    aconn.test_server_cursor = aconn.cursor("srv")
    await aconn.close()
    try:
        with closed_error():
            await ASYNC_REFUSED[op](aconn)
    finally:
        await aconn.test_server_cursor.close()


async def test_closed_async_connection_cursor(aconn: Any) -> None:
    await aconn.close()
    with closed_error():
        aconn.cursor()
    with closed_error():
        aconn.cursor("named")
    assert aconn.info.transaction_status == pq.TransactionStatus.UNKNOWN
    aconn.cancel()
    await aconn.cancel_safe()
