"""DB-API 2.0 globals: ``governed_db`` offers what ``psycopg`` offers, as the same objects."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest

from .support import Impl

_EXCEPTIONS = (
    "Warning",
    "Error",
    "InterfaceError",
    "DatabaseError",
    "DataError",
    "OperationalError",
    "IntegrityError",
    "InternalError",
    "ProgrammingError",
    "NotSupportedError",
)
_CONSTRUCTORS = (
    "Binary",
    "Date",
    "Time",
    "Timestamp",
    "DateFromTicks",
    "TimeFromTicks",
    "TimestampFromTicks",
)
_TYPE_OBJECTS = ("STRING", "BINARY", "NUMBER", "DATETIME", "ROWID")


def test_apilevel_threadsafety_paramstyle(impl: Impl) -> None:
    mod = impl.module
    assert (mod.apilevel, mod.threadsafety, mod.paramstyle) == (
        psycopg.apilevel,
        psycopg.threadsafety,
        psycopg.paramstyle,
    )
    assert (mod.apilevel, mod.threadsafety, mod.paramstyle) == ("2.0", 2, "pyformat")


@pytest.mark.parametrize("name", _EXCEPTIONS)
def test_exception_classes_are_psycopgs(impl: Impl, name: str) -> None:
    assert getattr(impl.module, name) is getattr(psycopg, name)


def test_exception_hierarchy(impl: Impl) -> None:
    mod = impl.module
    assert issubclass(mod.Warning, Exception)
    assert issubclass(mod.Error, Exception)
    assert not issubclass(mod.Warning, mod.Error)
    assert issubclass(mod.InterfaceError, mod.Error)
    assert issubclass(mod.DatabaseError, mod.Error)
    for name in (
        "DataError",
        "OperationalError",
        "IntegrityError",
        "InternalError",
        "ProgrammingError",
        "NotSupportedError",
    ):
        assert issubclass(getattr(mod, name), mod.DatabaseError)


@pytest.mark.parametrize("name", _CONSTRUCTORS + _TYPE_OBJECTS)
def test_constructors_and_type_objects_are_psycopgs(impl: Impl, name: str) -> None:
    assert getattr(impl.module, name) is getattr(psycopg, name)


def test_constructors_build_values(impl: Impl) -> None:
    mod = impl.module
    assert mod.Date(2024, 2, 29) == dt.date(2024, 2, 29)
    assert mod.Time(12, 30, 1) == dt.time(12, 30, 1)
    assert mod.Timestamp(2024, 2, 29, 12, 30, 1) == dt.datetime(2024, 2, 29, 12, 30, 1)
    assert mod.DateFromTicks(0) == psycopg.DateFromTicks(0)
    assert mod.TimestampFromTicks(0) == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert mod.Binary(b"\x00\x01").obj == b"\x00\x01"


def test_type_objects_compare_with_description(conn: Any, impl: Impl) -> None:
    mod = impl.module
    cur = conn.execute(
        "select 'a'::text, 'x'::bytea, 1::int, 1.5::float8, now(), 1::oid, 2::numeric"
    )
    codes = [col.type_code for col in cur.description]
    assert codes[0] == mod.STRING
    assert codes[1] == mod.BINARY
    assert codes[2] == mod.NUMBER
    assert codes[3] == mod.NUMBER
    assert codes[4] == mod.DATETIME
    assert codes[5] == mod.ROWID
    assert codes[6] == mod.NUMBER
    assert codes[0] != mod.NUMBER


def test_binary_round_trips(conn: Any, impl: Impl) -> None:
    data = bytes(range(256))
    got = conn.execute("select %s::bytea", (impl.module.Binary(data),)).fetchone()[0]
    assert got == data


def test_module_connect_returns_the_connection_class(impl: Impl, dsn: str) -> None:
    conn = impl.module.connect(dsn)
    try:
        assert type(conn) is impl.Connection
        assert isinstance(conn, psycopg.Connection)
        assert conn.execute("select 1").fetchone() == (1,)
    finally:
        conn.close()


@pytest.mark.parametrize(
    "name",
    [
        "Connection",
        "AsyncConnection",
        "Cursor",
        "ClientCursor",
        "RawCursor",
        "ServerCursor",
        "RawServerCursor",
        "AsyncCursor",
        "AsyncClientCursor",
        "AsyncRawCursor",
        "AsyncServerCursor",
        "AsyncRawServerCursor",
    ],
)
def test_public_classes_are_psycopg_classes(impl: Impl, name: str) -> None:
    cls = getattr(impl.module, name)
    assert issubclass(cls, getattr(psycopg, name))
    assert cls.__name__ == name
    assert name in impl.module.__all__


def test_module_connect_accepts_psycopgs_keywords(impl: Impl, dsn: str) -> None:
    conn = impl.module.connect(
        dsn,
        autocommit=True,
        prepare_threshold=None,
        row_factory=psycopg.rows.dict_row,
        cursor_factory=impl.ClientCursor,
        connect_timeout=10,
    )
    try:
        assert conn.autocommit
        assert conn.prepare_threshold is None
        assert conn.row_factory is psycopg.rows.dict_row
        cur = conn.execute("select %s as a", ["x"])
        assert isinstance(cur, psycopg.ClientCursor)
        assert cur.fetchall() == [{"a": "x"}]
    finally:
        conn.close()
