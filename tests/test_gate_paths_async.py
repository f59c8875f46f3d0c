"""The async twins: every path reaches the gate and the row hook."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

import governed_db
from governed_db.testing import RecordingGovernor


@pytest.fixture
def gov() -> RecordingGovernor:
    return RecordingGovernor()


@pytest.fixture
async def aconn(pg_dsn: str, gov: RecordingGovernor) -> AsyncIterator[Any]:
    conn = await governed_db.AsyncConnection.connect(pg_dsn, governor=gov)
    async with conn:
        await conn.execute("create table items (id int primary key, name text)")
        await conn.execute("insert into items values (1, 'a'), (2, 'b')")
        await conn.commit()
        gov.calls.clear()
        gov.settled.clear()
        gov.results.clear()
        yield conn


async def test_is_a_psycopg_async_connection(aconn: Any) -> None:
    assert isinstance(aconn, psycopg.AsyncConnection)
    assert isinstance(aconn.cursor(), governed_db.AsyncCursor)


async def test_execute_and_fetch(aconn: Any, gov: RecordingGovernor) -> None:
    cur = await aconn.execute("select name from items where id = %s", (1,))
    assert await cur.fetchone() == ("a",)
    assert gov.methods == ["execute"]
    assert len(gov.results) == 1


async def test_executemany(aconn: Any, gov: RecordingGovernor) -> None:
    await aconn.cursor().executemany("insert into items values (%s, %s)", [(5, "e"), (6, "f")])
    assert gov.methods == ["executemany"]
    cur = await aconn.execute("select count(*) from items")
    assert await cur.fetchone() == (4,)


async def test_stream(aconn: Any, gov: RecordingGovernor) -> None:
    rows = [r async for r in aconn.cursor().stream("select id from items order by id")]
    assert rows == [(1,), (2,)]
    assert gov.methods == ["stream"]
    assert gov.results
    assert len(gov.settled) == 1


async def test_copy(aconn: Any, gov: RecordingGovernor) -> None:
    cur = aconn.cursor()
    async with cur.copy("copy items from stdin") as copy:
        await copy.write_row((9, "z"))
    assert gov.methods == ["copy"]
    res = await aconn.execute("select name from items where id = 9")
    assert await res.fetchone() == ("z",)


async def test_server_cursor(aconn: Any, gov: RecordingGovernor) -> None:
    async with aconn.cursor("srv", row_factory=dict_row) as cur:
        await cur.execute("select id from items order by id")
        assert await cur.fetchall() == [{"id": 1}, {"id": 2}]
    assert gov.methods == ["declare"]
    assert gov.results


@pytest.mark.parametrize("factory", [psycopg.AsyncClientCursor, psycopg.AsyncRawCursor])
async def test_async_cursor_factories(pg_dsn: str, factory: type[Any]) -> None:
    gov = RecordingGovernor()
    conn = await governed_db.AsyncConnection.connect(pg_dsn, governor=gov, cursor_factory=factory)
    async with conn:
        cur = conn.cursor()
        assert isinstance(cur, factory)
        await cur.execute("select 1")
        assert await cur.fetchone() == (1,)
    assert gov.methods == ["execute"]


async def test_async_raw_server_cursor(pg_dsn: str) -> None:
    gov = RecordingGovernor()
    conn = await governed_db.AsyncConnection.connect(pg_dsn, governor=gov)
    async with conn:
        conn.server_cursor_factory = psycopg.AsyncRawServerCursor
        async with conn.cursor("r") as cur:
            await cur.execute("select $1::int", (3,))
            assert await cur.fetchall() == [(3,)]
    assert gov.methods == ["declare"]


async def test_pipeline(aconn: Any, gov: RecordingGovernor) -> None:
    async with aconn.pipeline():
        c1 = await aconn.execute("select 1")
        await aconn.execute("insert into items values (7, 'g')")
    assert await c1.fetchone() == (1,)
    assert gov.methods == ["execute", "execute"]


async def test_refusal_sends_nothing(pg_dsn: str) -> None:
    def refuse(call: governed_db.Call) -> Exception | None:
        return governed_db.PolicyViolation("no", rule_id="r") if "drop" in call.query else None

    conn = await governed_db.AsyncConnection.connect(
        pg_dsn, governor=RecordingGovernor(refuse=refuse), autocommit=True
    )
    async with conn:
        await conn.execute("create table keep (id int)")
        with pytest.raises(governed_db.PolicyViolation):
            await conn.execute("drop table keep")
        with pytest.raises(governed_db.PolicyViolation):
            async for _ in conn.cursor().stream("drop table keep"):
                pass
        cur = await conn.execute("select to_regclass('keep') is not null")
        assert await cur.fetchone() == (True,)


async def test_async_errors_pass_through(aconn: Any) -> None:
    with pytest.raises(psycopg.errors.UndefinedTable):
        await aconn.execute("select * from nope")


async def test_async_psycopg_cursor_made_directly_is_decided(aconn: Any) -> None:
    cur = psycopg.AsyncCursor(aconn)
    await cur.execute("select %s::int", (7,))
    assert await cur.fetchone() == (7,)
    # A plain client-side-binding cursor merges parameters where they cannot be checked.
    with pytest.raises(governed_db.GovernanceError) as info:
        await psycopg.AsyncClientCursor(aconn).execute("select %s::int", (7,))
    assert info.value.rule_id == "plain-cursor-client-merge"
    await aconn.rollback()


async def test_async_named_cursor_stream_passes_the_gate(pg_dsn: str) -> None:
    def refuse(call: governed_db.Call) -> Exception | None:
        return governed_db.PolicyViolation("no", rule_id="r") if "drop" in call.query else None

    conn = await governed_db.AsyncConnection.connect(
        pg_dsn, governor=RecordingGovernor(refuse=refuse), autocommit=True
    )
    async with conn:
        await conn.execute("create table keep (id int)")
        async with conn.cursor("named") as cur:
            with pytest.raises(governed_db.PolicyViolation):
                async for _ in cur.stream("drop table keep"):
                    pass
        cur2 = await conn.execute("select to_regclass('keep') is not null")
        assert await cur2.fetchone() == (True,)
