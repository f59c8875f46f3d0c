"""Server texts that quote data are masked: error fields, notices, NOTIFY payloads.

The baseline's value detectors read them like a computed text column. The
error class, SQLSTATE and the fields that only name things stay as the
server sent them; an error that quotes nothing sensitive is psycopg's own.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from psycopg import errors

import governed_db

EMAIL = "maria.schmidt@example.com"
CARD = "4111111111111111"
TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


@pytest.fixture
def dsn(pg_dsn: str) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            "create table members (id int primary key, email text unique,"
            " card text check (length(card) < 10))"
        )
        conn.execute(
            """create function shout(t text) returns int language plpgsql as $$
            begin raise notice 'saw %', t; return 1; end $$"""
        )
        conn.execute(
            """create function fail_with(t text) returns int language plpgsql as $$
            begin raise exception 'bad value %', t using detail = 'detail ' || t,
                hint = 'hint ' || t; end $$"""
        )
        conn.execute("insert into members (id, email) values (1, %s)", (EMAIL,))
    return pg_dsn


def _texts(exc: psycopg.Error) -> list[str]:
    diag = exc.diag
    fields = (diag.message_primary, diag.message_detail, diag.message_hint, diag.context)
    return [str(exc), *(f for f in fields if f)]


def _assert_clean(texts: list[str], *secrets: str) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text, (secret, text)


@pytest.mark.parametrize(
    ("sql", "params", "cls"),
    [
        ("insert into members (id, email) values (2, %s)", (EMAIL,), errors.UniqueViolation),
        ("insert into members (id, card) values (3, %s)", (CARD,), errors.CheckViolation),
        ("select %s::int", (EMAIL,), errors.InvalidTextRepresentation),
        ("select fail_with(%s)", (TOKEN,), errors.RaiseException),
        ("select fail_with(email) from members", None, errors.RaiseException),
    ],
)
def test_errors_quoting_data_are_masked(dsn: str, sql: str, params: Any, cls: type) -> None:
    with governed_db.connect(dsn, autocommit=True) as conn, pytest.raises(cls) as info:
        conn.execute(sql, params)
    exc = info.value
    assert type(exc) is cls
    assert exc.sqlstate == cls.sqlstate
    _assert_clean(_texts(exc), EMAIL, CARD, TOKEN)
    assert exc.pgresult is None, "the raw libpq result is not handed out"
    assert exc.__context__ is None, "the unmasked error is not chained"


def test_an_error_that_quotes_nothing_is_psycopgs_own(dsn: str) -> None:
    with governed_db.connect(dsn, autocommit=True) as conn:
        with pytest.raises(errors.UndefinedTable) as info:
            conn.execute("select * from no_such_table")
        assert info.value.pgresult is not None
        assert info.value.diag.message_primary == 'relation "no_such_table" does not exist'


def test_names_in_diagnostics_are_kept(dsn: str) -> None:
    with governed_db.connect(dsn, autocommit=True) as conn:
        with pytest.raises(errors.UniqueViolation) as info:
            conn.execute("insert into members (id, email) values (9, %s)", (EMAIL,))
    diag = info.value.diag
    assert diag.table_name == "members"
    assert diag.constraint_name == "members_email_key"


def test_notices_are_masked(dsn: str) -> None:
    seen: list[str] = []
    with governed_db.connect(dsn, autocommit=True) as conn:
        conn.add_notice_handler(lambda diag: seen.append(diag.message_primary or ""))
        conn.execute("select shout(%s)", (TOKEN,))
        conn.execute("select shout(email) from members")
    assert len(seen) == 2
    _assert_clean(seen, TOKEN, EMAIL)
    assert all(s.startswith("saw ") for s in seen)


def test_notify_payloads_are_masked_for_handlers_and_notifies(dsn: str) -> None:
    handled: list[str] = []
    with governed_db.connect(dsn, autocommit=True) as conn:
        conn.execute("listen watch")
        conn.execute("select pg_notify('watch', %s)", (f"card {CARD}",))
        polled = [n.payload for n in conn.notifies(timeout=0.5, stop_after=1)]
        conn.add_notify_handler(lambda n: handled.append(n.payload))
        conn.execute("select pg_notify('watch', email) from members")
    assert polled
    assert handled
    _assert_clean(polled + handled, CARD, EMAIL)


async def test_async_side_channels_are_masked(dsn: str) -> None:
    seen: list[str] = []
    conn = await governed_db.AsyncConnection.connect(dsn, autocommit=True)
    async with conn:
        conn.add_notice_handler(lambda diag: seen.append(diag.message_primary or ""))
        await conn.execute("select shout(%s)", (EMAIL,))
        with pytest.raises(errors.UniqueViolation) as info:
            await conn.execute("insert into members (id, email) values (5, %s)", (EMAIL,))
        await conn.execute("listen awatch")
        await conn.execute("select pg_notify('awatch', %s)", (TOKEN,))
        payloads = [n.payload async for n in conn.notifies(timeout=0.5, stop_after=1)]
    await asyncio.sleep(0)
    _assert_clean([*seen, *_texts(info.value), *payloads], EMAIL, TOKEN)
    assert seen
    assert payloads
