"""Adapters and psycopg's catalog lookups: TypeInfo.fetch, enums, composites, hstore, ranges.

SQLAlchemy's psycopg dialect calls ``TypeInfo.fetch`` for hstore on first
connect; these lookups run through psycopg's own internal cursors.
"""

from __future__ import annotations

import enum
from typing import Any

import psycopg
import pytest
from psycopg.adapt import Dumper, Loader
from psycopg.types import TypeInfo
from psycopg.types.composite import CompositeInfo, register_composite
from psycopg.types.enum import EnumInfo, register_enum
from psycopg.types.hstore import register_hstore
from psycopg.types.range import Range, RangeInfo, register_range

from .support import Impl, raises_exactly


class Mood(enum.Enum):
    sad = "sad"
    ok = "ok"
    happy = "happy"


def test_typeinfo_fetch_builtin(conn: Any) -> None:
    info = TypeInfo.fetch(conn, "text")
    assert info is not None
    assert (info.name, info.oid, info.array_oid) == ("text", 25, 1009)


def test_typeinfo_fetch_needs_a_connection(conn: Any) -> None:
    with raises_exactly(TypeError, match="expected Connection or AsyncConnection"):
        TypeInfo.fetch(conn.cursor(), "int4")


def test_typeinfo_fetch_missing(conn: Any) -> None:
    assert TypeInfo.fetch(conn, "no_such_type_dropin") is None


def test_typeinfo_fetch_in_failed_transaction(conn: Any) -> None:
    with pytest.raises(psycopg.errors.DivisionByZero):
        conn.execute("select 1 / 0")
    with pytest.raises(psycopg.errors.InFailedSqlTransaction):
        TypeInfo.fetch(conn, "text")
    conn.rollback()


def test_typeinfo_fetch_keeps_transaction_state(connect: Any) -> None:
    conn = connect()
    TypeInfo.fetch(conn, "text")
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    conn.execute("select 1")
    TypeInfo.fetch(conn, "text")
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    auto = connect(autocommit=True)
    TypeInfo.fetch(auto, "text")
    assert auto.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_typeinfo_fetch_in_pipeline(conn: Any) -> None:
    with conn.pipeline():
        info = TypeInfo.fetch(conn, "float8")
    assert info is not None
    assert info.oid == 701


def test_typeinfo_register(conn: Any) -> None:
    info = TypeInfo.fetch(conn, "int8")
    assert info is not None
    info.register(conn)
    assert conn.adapters.types["int8"].oid == 20


@pytest.mark.fresh_db
def test_register_enum(conn: Any) -> None:
    conn.execute("create type mood as enum ('sad', 'ok', 'happy')")
    info = EnumInfo.fetch(conn, "mood")
    assert info is not None
    assert info.labels == ["sad", "ok", "happy"]
    register_enum(info, conn, Mood)
    assert conn.execute("select 'happy'::mood").fetchone() == (Mood.happy,)
    assert conn.execute("select %s", [Mood.ok]).fetchone() == (Mood.ok,)
    assert conn.execute("select %s::mood[]", [[Mood.sad, Mood.ok]]).fetchone() == (
        [Mood.sad, Mood.ok],
    )


@pytest.mark.fresh_db
def test_register_enum_without_python_enum(conn: Any) -> None:
    conn.execute("create type color as enum ('red', 'green')")
    info = EnumInfo.fetch(conn, "color")
    register_enum(info, conn)
    (value,) = conn.execute("select 'green'::color").fetchone()
    assert value.name == "green"


@pytest.mark.fresh_db
def test_register_composite(conn: Any) -> None:
    conn.execute("create type card as (value int, suit text)")
    info = CompositeInfo.fetch(conn, "card")
    assert info is not None
    assert info.field_names == ("value", "suit")
    register_composite(info, conn)
    (card,) = conn.execute("select (8, 'hearts')::card").fetchone()
    assert (card.value, card.suit) == (8, "hearts")
    assert type(card).__name__ == "card"
    assert conn.execute("select %s::card", [card]).fetchone() == (card,)


@pytest.mark.fresh_db
def test_register_composite_of_a_table(conn: Any) -> None:
    conn.execute("create table pt (x int, y int)")
    info = CompositeInfo.fetch(conn, "pt")
    register_composite(info, conn)
    (row,) = conn.execute("select row(1, 2)::pt").fetchone()
    assert (row.x, row.y) == (1, 2)


@pytest.mark.fresh_db
def test_hstore(conn: Any) -> None:
    try:
        with psycopg.connect(conn.info.dsn, autocommit=True) as admin:
            admin.execute("create extension if not exists hstore")
    except psycopg.Error as exc:
        pytest.skip(f"hstore unavailable: {exc}")
    info = TypeInfo.fetch(conn, "hstore")
    assert info is not None
    register_hstore(info, conn)
    value = {"a": "1", "b": None}
    assert conn.execute("select %s", [value]).fetchone() == (value,)
    assert conn.execute("select 'x=>y'::hstore").fetchone() == ({"x": "y"},)


@pytest.mark.fresh_db
def test_register_range(conn: Any) -> None:
    conn.execute("create type floatrange as range (subtype = float8)")
    info = RangeInfo.fetch(conn, "floatrange")
    assert info is not None
    register_range(info, conn)
    (r,) = conn.execute("select '[1.5, 2.5)'::floatrange").fetchone()
    assert r == Range(1.5, 2.5, "[)")


def test_builtin_range_and_json(conn: Any) -> None:
    assert conn.execute("select '[1,3)'::int4range").fetchone() == (Range(1, 3, "[)"),)
    jb = psycopg.types.json.Jsonb({"k": [1, 2]})
    assert conn.execute("select %s", [jb]).fetchone() == ({"k": [1, 2]},)


class UpperLoader(Loader):
    def load(self, data: Any) -> str:
        return bytes(data).decode().upper()


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y


class PointDumper(Dumper):
    oid = 600  # point

    def dump(self, obj: Point) -> bytes:
        return f"({obj.x},{obj.y})".encode()


def test_custom_loader_on_connection(conn: Any) -> None:
    conn.adapters.register_loader("text", UpperLoader)
    assert conn.execute("select 'abc'::text").fetchone() == ("ABC",)


def test_custom_loader_on_cursor(conn: Any) -> None:
    cur = conn.cursor()
    cur.adapters.register_loader("text", UpperLoader)
    assert cur.execute("select 'abc'::text").fetchone() == ("ABC",)
    assert conn.execute("select 'abc'::text").fetchone() == ("abc",)


def test_custom_dumper(conn: Any) -> None:
    conn.adapters.register_dumper(Point, PointDumper)
    assert conn.execute("select %s::text", [Point(1, 2)]).fetchone() == ("(1,2)",)


def test_adapters_context_shared(connect: Any) -> None:
    ctx = psycopg.adapt.AdaptersMap(psycopg.adapters)
    ctx.register_loader("text", UpperLoader)
    conn = connect(context=ctx)
    assert conn.execute("select 'x'::text").fetchone() == ("X",)


def test_adapters_are_a_copy_of_the_global_map(conn: Any, impl: Impl) -> None:
    assert conn.adapters is not psycopg.adapters
    assert conn.adapters.types["text"].oid == 25
