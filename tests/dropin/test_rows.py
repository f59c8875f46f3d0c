"""Row factories: on the connection, the cursor, after execute, with every fetch path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import rows

from .support import raises_exactly

QUERY = "select 1 as a, 'x' as b union all select 2, 'y' order by 1"


@dataclass
class Pair:
    a: int
    b: str


def _tuple_factory(cursor: Any) -> Any:
    names = [c.name for c in cursor.description] if cursor.description else []

    def make(values: Sequence[Any]) -> Any:
        return ("custom", dict(zip(names, values, strict=True)))

    return make


class Upper:
    """A row factory class: called with the cursor, returns the row maker."""

    def __init__(self, cursor: Any) -> None:
        self.names = [c.name.upper() for c in cursor.description or []]

    def __call__(self, values: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(self.names, values, strict=True))


FACTORIES = {
    "tuple_row": (rows.tuple_row, [(1, "x"), (2, "y")]),
    "dict_row": (rows.dict_row, [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]),
    "namedtuple_row": (rows.namedtuple_row, [(1, "x"), (2, "y")]),
    "class_row": (rows.class_row(Pair), [Pair(1, "x"), Pair(2, "y")]),
    "args_row": (rows.args_row(lambda a, b: f"{a}{b}"), ["1x", "2y"]),
    "kwargs_row": (
        rows.kwargs_row(lambda **kw: sorted(kw.items())),
        [[("a", 1), ("b", "x")], [("a", 2), ("b", "y")]],
    ),
    "custom": (_tuple_factory, [("custom", {"a": 1, "b": "x"}), ("custom", {"a": 2, "b": "y"})]),
    "class": (Upper, [{"A": 1, "B": "x"}, {"A": 2, "B": "y"}]),
}


@pytest.fixture(params=list(FACTORIES))
def factory(request: pytest.FixtureRequest) -> tuple[Any, list[Any]]:
    return FACTORIES[request.param]


def test_row_factory_fetch_paths(conn: Any, factory: tuple[Any, list[Any]]) -> None:
    rf, expected = factory
    cur = conn.cursor(row_factory=rf)
    assert cur.row_factory is rf
    assert cur.execute(QUERY).fetchall() == expected
    assert cur.execute(QUERY).fetchone() == expected[0]
    assert cur.fetchmany(5) == expected[1:]
    assert list(cur.execute(QUERY)) == expected
    assert list(cur.stream(QUERY)) == expected


def test_row_factory_on_connection(connect: Any, factory: tuple[Any, list[Any]]) -> None:
    rf, expected = factory
    conn = connect(row_factory=rf)
    assert conn.row_factory is rf
    assert conn.execute(QUERY).fetchall() == expected


def test_row_factory_on_server_cursor(conn: Any, factory: tuple[Any, list[Any]]) -> None:
    rf, expected = factory
    with conn.cursor("rf", row_factory=rf) as cur:
        cur.execute(QUERY)
        assert cur.fetchone() == expected[0]
        assert cur.fetchall() == expected[1:]


def test_namedtuple_row_fields(conn: Any) -> None:
    cur = conn.cursor(row_factory=rows.namedtuple_row)
    row = cur.execute('select 1 as a, 2 as "two words", 3 as "_x", 4').fetchone()
    assert row._fields == ("a", "two_words", "f_x", "f_column_")
    assert row.a == 1
    with raises_exactly(psycopg.DataError, match="cannot be a keyword: 'class'"):
        cur.execute('select 1 as "class"').fetchone()


def test_dict_row_duplicate_names(conn: Any) -> None:
    cur = conn.cursor(row_factory=rows.dict_row)
    assert cur.execute("select 1 as a, 2 as a").fetchone() == {"a": 2}


def test_scalar_row(conn: Any) -> None:
    cur = conn.cursor(row_factory=rows.scalar_row)
    assert cur.execute("select generate_series(1, 3)").fetchall() == [1, 2, 3]


def test_class_row_mismatch(conn: Any) -> None:
    cur = conn.cursor(row_factory=rows.class_row(Pair))
    with raises_exactly(TypeError):
        cur.execute("select 1 as a, 2 as c").fetchone()


def test_set_row_factory_after_execute(conn: Any) -> None:
    cur = conn.cursor()
    cur.execute(QUERY)
    assert cur.fetchone() == (1, "x")
    cur.row_factory = rows.dict_row
    assert cur.row_factory is rows.dict_row
    assert cur.fetchone() == {"a": 2, "b": "y"}
    cur.row_factory = rows.namedtuple_row
    cur.scroll(0, "absolute")
    assert cur.fetchone().b == "x"


def test_set_row_factory_before_execute(conn: Any) -> None:
    cur = conn.cursor()
    cur.row_factory = rows.dict_row
    assert cur.execute(QUERY).fetchall() == FACTORIES["dict_row"][1]


def test_row_factory_per_result_set(conn: Any) -> None:
    cur = conn.cursor(row_factory=rows.dict_row)
    cur.execute("select 1 as a; select 2 as b, 3 as c")
    assert cur.fetchall() == [{"a": 1}]
    cur.nextset()
    assert cur.fetchall() == [{"b": 2, "c": 3}]


def test_row_factory_with_executemany_returning(conn: Any) -> None:
    conn.execute("create temp table m (id int)")
    cur = conn.cursor(row_factory=rows.dict_row)
    cur.executemany("insert into m values (%s) returning id", [(1,), (2,)], returning=True)
    got = [cur.fetchone() for _ in cur.results()]
    assert got == [{"id": 1}, {"id": 2}]


def test_row_factory_called_once_per_result(conn: Any) -> None:
    calls: list[Any] = []

    def counting(cursor: Any) -> Any:
        calls.append(cursor)
        return rows.tuple_row(cursor)

    cur = conn.cursor(row_factory=counting)
    cur.execute("select generate_series(1, 5)")
    assert len(cur.fetchall()) == 5
    assert len(calls) == 1
    assert calls[0] is cur


def test_row_maker_sees_raw_values(conn: Any) -> None:
    seen: list[Any] = []

    def spy(cursor: Any) -> Any:
        def make(values: Sequence[Any]) -> Any:
            seen.append(tuple(values))
            return values

        return make

    cur = conn.cursor(row_factory=spy)
    cur.execute("select 'secret@example.com'::text, 42")
    cur.fetchall()
    assert seen == [("secret@example.com", 42)]


def test_description_available_to_factory(conn: Any) -> None:
    def names(cursor: Any) -> Any:
        cols = [c.name for c in cursor.description]
        return lambda values: cols

    cur = conn.cursor(row_factory=names)
    assert cur.execute("select 1 as p, 2 as q").fetchone() == ["p", "q"]


def test_row_factory_error_propagates(conn: Any) -> None:
    class Boom(Exception):
        pass

    def boom(cursor: Any) -> Any:
        raise Boom

    cur = conn.cursor(row_factory=boom)
    with raises_exactly(Boom):
        cur.execute("select 1")
    assert isinstance(cur, psycopg.Cursor)
