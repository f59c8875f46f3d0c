"""Client-side cursors: Cursor, ClientCursor, RawCursor."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import pq, sql

from .support import Impl, raises_exactly

INERROR = pq.TransactionStatus.INERROR


@pytest.fixture
def table(conn: Any) -> str:
    conn.execute("create temp table t (id int primary key, name text, score numeric(6,2))")
    conn.execute(
        "insert into t values (1, 'one', 1.5), (2, 'two', 2.25), (3, 'three', null),"
        " (4, 'four', 4), (5, 'five', 5.75)"
    )
    return "t"


@pytest.fixture(params=["Cursor", "ClientCursor", "RawCursor"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _ph(kind: str, n: int = 1) -> str:
    """The n-th placeholder for this cursor kind."""
    return f"${n}" if kind == "RawCursor" else "%s"


# --- creation, close ----------------------------------------------------------------------


def test_cursor_kinds(conn: Any, impl: Impl, kind: str) -> None:
    cur = getattr(impl, kind)(conn)
    assert isinstance(cur, getattr(psycopg, kind))
    assert cur.connection is conn
    assert not cur.closed
    cur.execute(f"select {_ph(kind)}::int + 1", [41])
    assert cur.fetchone() == (42,)
    cur.close()
    assert cur.closed


def test_default_cursor(conn: Any, impl: Impl) -> None:
    cur = conn.cursor()
    assert type(cur) is impl.Cursor
    assert isinstance(cur, psycopg.Cursor)
    assert not isinstance(cur, psycopg.ClientCursor)


def test_cursor_context_manager(conn: Any) -> None:
    with conn.cursor() as cur:
        assert cur.execute("select 1") is cur
        assert not cur.closed
    assert cur.closed


def test_closed_cursor_errors(conn: Any) -> None:
    cur = conn.cursor()
    cur.execute("select 1")
    cur.close()
    with raises_exactly(psycopg.InterfaceError, match="the cursor is closed"):
        cur.execute("select 1")
    with raises_exactly(psycopg.InterfaceError, match="the cursor is closed"):
        cur.executemany("select %s", [(1,)])
    with raises_exactly(psycopg.InterfaceError, match="the cursor is closed"):
        cur.fetchone()
    with raises_exactly(psycopg.InterfaceError, match="the cursor is closed"):
        cur.fetchall()
    with raises_exactly(psycopg.InterfaceError, match="the cursor is closed"):
        list(cur.stream("select 1"))
    with raises_exactly(psycopg.InterfaceError, match="the cursor is closed"):
        cur.copy("copy (select 1) to stdout").__enter__()
    cur.close()  # idempotent


def test_close_keeps_no_results(conn: Any) -> None:
    cur = conn.execute("select 1")
    cur.close()
    assert cur.pgresult is None


# --- fetch --------------------------------------------------------------------------------


def test_fetchone_fetchmany_fetchall(conn: Any, table: str) -> None:
    cur = conn.execute(f"select id from {table} order by id")
    assert cur.arraysize == 1
    assert cur.fetchone() == (1,)
    assert cur.fetchmany() == [(2,)]
    assert cur.fetchmany(2) == [(3,), (4,)]
    assert cur.fetchall() == [(5,)]
    assert cur.fetchone() is None
    assert cur.fetchmany(3) == []
    assert cur.fetchall() == []


def test_arraysize(conn: Any, table: str) -> None:
    cur = conn.cursor()
    cur.arraysize = 3
    cur.execute(f"select id from {table} order by id")
    assert cur.fetchmany() == [(1,), (2,), (3,)]
    assert cur.fetchmany() == [(4,), (5,)]


def test_iteration(conn: Any, table: str, kind: str, impl: Impl) -> None:
    cur = getattr(impl, kind)(conn)
    cur.execute(f"select id, name from {table} where id <= {_ph(kind)} order by id", [3])
    assert list(cur) == [(1, "one"), (2, "two"), (3, "three")]
    assert list(cur) == []


def test_iteration_after_fetchone(conn: Any, table: str) -> None:
    cur = conn.execute(f"select id from {table} order by id")
    cur.fetchone()
    assert [r[0] for r in cur] == [2, 3, 4, 5]


def test_fetch_before_execute(conn: Any) -> None:
    cur = conn.cursor()
    with raises_exactly(psycopg.ProgrammingError, match="no result available"):
        cur.fetchone()
    with raises_exactly(psycopg.ProgrammingError, match="no result available"):
        cur.fetchall()


def test_fetch_after_a_command(conn: Any) -> None:
    cur = conn.execute("create temp table x (id int)")
    with raises_exactly(
        psycopg.ProgrammingError, match="the last operation didn't produce records"
    ):
        cur.fetchone()
    with raises_exactly(psycopg.ProgrammingError, match=r"command status: CREATE TABLE"):
        cur.fetchall()


def test_values_round_trip(conn: Any, kind: str, impl: Impl) -> None:
    values = (
        None,
        True,
        42,
        2**40,
        1.5,
        Decimal("12.34"),
        "text ' with \" quotes",
        b"\x00bytes",
        dt.date(2024, 2, 29),
        dt.datetime(2024, 2, 29, 12, 0, tzinfo=dt.UTC),
        [1, 2, 3],
        {"a": [1, None]},
    )
    cur = getattr(impl, kind)(conn)
    phs = ", ".join(_ph(kind, i + 1) for i in range(len(values)))
    if kind == "RawCursor":
        phs = phs.replace("$12", "$12::jsonb")
    else:
        phs = phs[: phs.rfind("%s")] + "%s::jsonb"
    params = [*values[:-1], psycopg.types.json.Json(values[-1])]
    cur.execute(f"select {phs}", params)
    assert cur.fetchone() == values


# --- description --------------------------------------------------------------------------


def test_description_none_before_execute_and_for_commands(conn: Any) -> None:
    cur = conn.cursor()
    assert cur.description is None
    cur.execute("create temp table x (id int)")
    assert cur.description is None


def test_description(conn: Any, table: str) -> None:
    conn.execute("create temp table d (a varchar(20), b numeric(10, 3), c int4, d text)")
    cur = conn.execute("select a, b, c, d, 1.5::float8 as e from d")
    desc = cur.description
    assert [c.name for c in desc] == ["a", "b", "c", "d", "e"]
    assert [tuple(c) for c in desc] == [
        ("a", 1043, 20, None, None, None, None),
        ("b", 1700, None, None, 10, 3, None),
        ("c", 23, None, 4, None, None, None),
        ("d", 25, None, None, None, None, None),
        ("e", 701, None, 8, None, None, None),
    ]
    col = desc[1]
    assert isinstance(col, psycopg.Column)
    assert (col.type_code, col.precision, col.scale, col.display_size) == (1700, 10, 3, None)
    assert col[0] == "b"
    assert len(col) == 7
    assert col.null_ok is None
    assert repr(desc[2]) == "<Column 'c', type: int4 (oid: 23)>"


def test_description_of_empty_result(conn: Any, table: str) -> None:
    cur = conn.execute(f"select id, name from {table} where id < 0")
    assert [c.name for c in cur.description] == ["id", "name"]
    assert cur.fetchall() == []
    assert cur.rowcount == 0


def test_description_unnamed_and_duplicate_columns(conn: Any) -> None:
    cur = conn.execute("select 1, 2 as a, 3 as a, 'x'::text")
    assert [c.name for c in cur.description] == ["?column?", "a", "a", "text"]


# --- rowcount, rownumber, statusmessage ---------------------------------------------------


def test_rowcount(conn: Any) -> None:
    cur = conn.cursor()
    assert cur.rowcount == -1
    cur.execute("create temp table r (id int)")
    assert cur.rowcount == -1
    cur.execute("insert into r select generate_series(1, 10)")
    assert cur.rowcount == 10
    cur.execute("update r set id = id + 100 where id > 7")
    assert cur.rowcount == 3
    cur.execute("delete from r where id > 100")
    assert cur.rowcount == 3
    cur.execute("select * from r")
    assert cur.rowcount == 7
    cur.execute("select * from r where id < 0")
    assert cur.rowcount == 0


def test_rowcount_executemany(conn: Any) -> None:
    cur = conn.cursor()
    cur.execute("create temp table r (id int)")
    cur.executemany("insert into r values (%s)", [(i,) for i in range(6)])
    assert cur.rowcount == 6
    cur.executemany("delete from r where id = %s", [(1,), (2,), (99,)])
    assert cur.rowcount == 2


def test_rownumber(conn: Any, table: str) -> None:
    cur = conn.cursor()
    assert cur.rownumber is None
    cur.execute(f"select id from {table} order by id")
    assert cur.rownumber == 0
    cur.fetchone()
    assert cur.rownumber == 1
    cur.fetchmany(2)
    assert cur.rownumber == 3
    cur.fetchall()
    assert cur.rownumber == 5
    cur.execute("create temp table x (id int)")
    assert cur.rownumber is None


def test_rownumber_with_iteration(conn: Any, table: str) -> None:
    cur = conn.execute(f"select id from {table} order by id")
    for i, _row in enumerate(cur, 1):
        assert cur.rownumber == i


def test_statusmessage(conn: Any) -> None:
    cur = conn.cursor()
    assert cur.statusmessage is None
    cur.execute("create temp table s (id int)")
    assert cur.statusmessage == "CREATE TABLE"
    cur.execute("insert into s values (1), (2)")
    assert cur.statusmessage == "INSERT 0 2"
    cur.execute("update s set id = 3 where id = 2")
    assert cur.statusmessage == "UPDATE 1"
    cur.execute("select * from s")
    assert cur.statusmessage == "SELECT 2"
    cur.execute("delete from s where id = 3")
    assert cur.statusmessage == "DELETE 1"
    with pytest.raises(psycopg.errors.UndefinedTable):
        cur.execute("select * from nosuchtable")
    assert cur.statusmessage is None


def test_pgresult(conn: Any) -> None:
    cur = conn.execute("select 1, 'a'")
    assert cur.pgresult.status == pq.ExecStatus.TUPLES_OK
    assert (cur.pgresult.ntuples, cur.pgresult.nfields) == (1, 2)


# --- scroll -------------------------------------------------------------------------------


def test_scroll(conn: Any, table: str) -> None:
    cur = conn.execute(f"select id from {table} order by id")
    cur.scroll(2)
    assert cur.fetchone() == (3,)
    cur.scroll(-2)
    assert cur.fetchone() == (2,)
    cur.scroll(0, mode="absolute")
    assert cur.rownumber == 0
    assert cur.fetchone() == (1,)
    cur.scroll(4, "absolute")
    assert cur.fetchall() == [(5,)]


def test_scroll_out_of_range(conn: Any, table: str) -> None:
    cur = conn.execute(f"select id from {table} order by id")
    with raises_exactly(IndexError):
        cur.scroll(10)
    with raises_exactly(IndexError):
        cur.scroll(-1)
    with raises_exactly(IndexError):
        cur.scroll(6, "absolute")
    assert cur.rownumber == 0


def test_scroll_bad_mode(conn: Any) -> None:
    cur = conn.execute("select 1")
    with raises_exactly(ValueError):
        cur.scroll(0, mode="sideways")


def test_scroll_without_result(conn: Any) -> None:
    with raises_exactly(psycopg.ProgrammingError):
        conn.cursor().scroll(1)


# --- several statements, nextset ----------------------------------------------------------


def test_nextset_several_statements(conn: Any) -> None:
    cur = conn.execute("select 1 as a; select 2 as b, 3 as c; create temp table n (id int)")
    assert cur.fetchall() == [(1,)]
    assert [c.name for c in cur.description] == ["a"]
    assert cur.nextset() is True
    assert cur.fetchall() == [(2, 3)]
    assert [c.name for c in cur.description] == ["b", "c"]
    assert cur.nextset() is True
    assert cur.statusmessage == "CREATE TABLE"
    assert cur.description is None
    assert cur.nextset() is None
    assert cur.nextset() is None


def test_several_statements_with_params_are_refused_server_side(conn: Any) -> None:
    with raises_exactly(
        psycopg.errors.SyntaxError, match="cannot insert multiple commands", sqlstate="42601"
    ):
        conn.execute("select %s; select %s", (1, 2))


def test_error_in_second_statement(conn: Any) -> None:
    conn.execute("create temp table e (id int)")
    conn.commit()
    with raises_exactly(psycopg.errors.DivisionByZero):
        conn.execute("insert into e values (1); select 1 / 0")
    assert conn.info.transaction_status == INERROR
    conn.rollback()
    assert conn.execute("select count(*) from e").fetchone() == (0,)


def test_statement_list_in_autocommit(connect: Any) -> None:
    conn = connect(autocommit=True)
    cur = conn.execute("create temp table a (id int); insert into a values (1), (2); select 9")
    assert cur.statusmessage == "CREATE TABLE"
    cur.nextset()
    assert cur.rowcount == 2
    cur.nextset()
    assert cur.fetchone() == (9,)


# --- executemany --------------------------------------------------------------------------


def test_executemany(conn: Any, kind: str, impl: Impl) -> None:
    conn.execute("create temp table m (id int, name text)")
    cur = getattr(impl, kind)(conn)
    cur.executemany(
        f"insert into m values ({_ph(kind, 1)}, {_ph(kind, 2)})",
        [(1, "a"), (2, "b"), (3, None)],
    )
    assert cur.rowcount == 3
    assert conn.execute("select * from m order by id").fetchall() == [
        (1, "a"),
        (2, "b"),
        (3, None),
    ]


def test_executemany_no_results(conn: Any) -> None:
    conn.execute("create temp table m (id int)")
    cur = conn.cursor()
    cur.executemany("insert into m values (%s)", [(1,), (2,)])
    assert cur.description is None
    with raises_exactly(psycopg.ProgrammingError):
        cur.fetchone()


def test_executemany_returning(conn: Any) -> None:
    conn.execute("create temp table m (id serial primary key, name text)")
    cur = conn.cursor()
    cur.executemany(
        "insert into m (name) values (%s) returning id, name",
        [("a",), ("b",), ("c",)],
        returning=True,
    )
    assert cur.fetchone() == (1, "a")
    assert cur.rowcount == 1
    assert cur.nextset()
    assert cur.fetchall() == [(2, "b")]
    assert cur.nextset()
    assert cur.fetchall() == [(3, "c")]
    assert cur.nextset() is None


def test_executemany_returning_results_iteration(conn: Any) -> None:
    conn.execute("create temp table m (id int)")
    cur = conn.cursor()
    cur.executemany(
        "insert into m select generate_series(1, %s) returning id",
        [(1,), (2,), (3,)],
        returning=True,
    )
    got = [cur.fetchall() for _ in cur.results()]
    assert got == [[(1,)], [(1,), (2,)], [(1,), (2,), (3,)]]


def test_executemany_named_params(conn: Any) -> None:
    conn.execute("create temp table m (id int, name text)")
    cur = conn.cursor()
    cur.executemany(
        "insert into m values (%(id)s, %(name)s)",
        [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
    )
    assert cur.rowcount == 2


def test_executemany_generator_and_empty(conn: Any) -> None:
    conn.execute("create temp table m (id int)")
    cur = conn.cursor()
    cur.executemany("insert into m values (%s)", ((i,) for i in range(4)))
    assert cur.rowcount == 4
    cur.executemany("insert into m values (%s)", [])
    assert cur.rowcount == 0
    assert conn.execute("select count(*) from m").fetchone() == (4,)


def test_executemany_error_keeps_nothing(conn: Any) -> None:
    conn.execute("create temp table m (id int primary key)")
    conn.commit()
    cur = conn.cursor()
    with raises_exactly(psycopg.errors.UniqueViolation, sqlstate="23505"):
        cur.executemany("insert into m values (%s)", [(1,), (2,), (1,)])
    conn.rollback()
    assert conn.execute("select count(*) from m").fetchone() == (0,)


def test_executemany_bad_params(conn: Any) -> None:
    cur = conn.cursor()
    with raises_exactly(psycopg.ProgrammingError):
        cur.executemany("select %s, %s", [(1, 2), (1,)])


# --- stream -------------------------------------------------------------------------------


def test_stream(conn: Any, table: str) -> None:
    cur = conn.cursor()
    rows = list(cur.stream(f"select id, name from {table} where id > %s order by id", [3]))
    assert rows == [(4, "four"), (5, "five")]
    assert [c.name for c in cur.description] == ["id", "name"]


def test_stream_break_early(conn: Any) -> None:
    cur = conn.cursor()
    got = []
    for row in cur.stream("select generate_series(1, 10000)"):
        got.append(row[0])
        if len(got) == 3:
            break
    assert got == [1, 2, 3]
    # psycopg cancels the rest of the query: whether the transaction is left failed
    # depends on how far the server got (INTRANS or INERROR); either way it is usable
    # after a rollback.
    assert conn.info.transaction_status in (pq.TransactionStatus.INTRANS, INERROR)
    conn.rollback()
    assert conn.execute("select 'after'").fetchone() == ("after",)


def test_stream_break_early_in_autocommit(connect: Any) -> None:
    conn = connect(autocommit=True)
    cur = conn.cursor()
    for row in cur.stream("select generate_series(1, 10000)"):
        assert row == (1,)
        break
    assert conn.info.transaction_status == pq.TransactionStatus.IDLE
    assert conn.execute("select 'after'").fetchone() == ("after",)


def test_stream_size(conn: Any) -> None:
    cur = conn.cursor()
    rows = list(cur.stream("select generate_series(1, 25)", size=10))
    assert [r[0] for r in rows] == list(range(1, 26))


def test_stream_then_fetch_is_refused(conn: Any) -> None:
    cur = conn.cursor()
    assert list(cur.stream("select 1")) == [(1,)]
    with raises_exactly(psycopg.ProgrammingError, match=r"result status: SINGLE_TUPLE"):
        cur.fetchall()


def test_stream_error_midway(conn: Any) -> None:
    cur = conn.cursor()
    got = []
    with raises_exactly(psycopg.errors.DivisionByZero, sqlstate="22012"):
        for row in cur.stream("select 10 / (3 - i) from generate_series(1, 5) i"):
            got.append(row[0])
    assert got == [5, 10]
    assert conn.info.transaction_status == INERROR


def test_stream_syntax_error(conn: Any) -> None:
    with raises_exactly(psycopg.errors.SyntaxError, sqlstate="42601"):
        list(conn.cursor().stream("selec 1"))


def test_stream_of_a_command(conn: Any) -> None:
    cur = conn.cursor()
    with raises_exactly(psycopg.ProgrammingError, match=r"stream\(\) didn't produce a result"):
        list(cur.stream("create temp table st (id int)"))


def test_stream_several_statements(conn: Any) -> None:
    with raises_exactly(
        psycopg.errors.SyntaxError, match="cannot insert multiple commands", sqlstate="42601"
    ):
        list(conn.cursor().stream("select 1; select 2"))


# --- parameters ---------------------------------------------------------------------------


def test_named_params(conn: Any) -> None:
    cur = conn.execute("select %(a)s::int, %(b)s::text, %(a)s::int", {"a": 1, "b": "x"})
    assert cur.fetchone() == (1, "x", 1)


def test_percent_escaping(conn: Any, kind: str, impl: Impl) -> None:
    cur = getattr(impl, kind)(conn)
    if kind == "RawCursor":
        cur.execute("select 'a%%b', 'c%d', $1::text", ["x"])
        assert cur.fetchone() == ("a%%b", "c%d", "x")
    else:
        cur.execute("select 'a%%b', %s::text, 'like%%'", ["x"])
        assert cur.fetchone() == ("a%b", "x", "like%")
    cur.execute("select 'a%%b'")  # no parameters: the text is sent unchanged
    assert cur.fetchone() == ("a%%b",)
    cur.execute("select 'a%%b'", [])
    assert cur.fetchone() == (("a%%b",) if kind == "RawCursor" else ("a%b",))


def test_percent_in_like_pattern(conn: Any, table: str) -> None:
    cur = conn.execute(f"select id from {table} where name like %s order by id", ["t%"])
    assert cur.fetchall() == [(2,), (3,)]
    cur = conn.execute(f"select id from {table} where name like 'f%%' and id > %s", [4])
    assert cur.fetchall() == [(5,)]


def test_binary_and_text_placeholders(conn: Any) -> None:
    cur = conn.execute("select %b::int, %t::int, %s::int", [1, 2, 3])
    assert cur.fetchone() == (1, 2, 3)
    cur = conn.execute("select %(a)b::bytea, %(b)t::bytea", {"a": b"\x01", "b": b"\x02"})
    assert cur.fetchone() == (b"\x01", b"\x02")
    with raises_exactly(psycopg.ProgrammingError, match="cannot have different formats"):
        conn.execute("select %(a)b, %(a)t", {"a": 1})


def test_binary_results(conn: Any) -> None:
    cur = conn.cursor(binary=True)
    cur.execute("select 1::int, 'x'::text, now()::date")
    assert cur.fetchone()[:2] == (1, "x")
    assert cur.pgresult.fformat(0) == pq.Format.BINARY
    cur = conn.cursor()
    cur.execute("select 1::int", binary=True)
    assert cur.pgresult.fformat(0) == pq.Format.BINARY
    cur.execute("select 1::int", binary=False)
    assert cur.pgresult.fformat(0) == pq.Format.TEXT


def test_list_and_any(conn: Any, table: str) -> None:
    cur = conn.execute(f"select id from {table} where id = any(%s) order by id", [[2, 4, 9]])
    assert cur.fetchall() == [(2,), (4,)]


def test_missing_and_extra_params(conn: Any) -> None:
    with raises_exactly(psycopg.ProgrammingError):
        conn.execute("select %s, %s", [1])
    with raises_exactly(psycopg.ProgrammingError):
        conn.execute("select %s", [1, 2])
    with raises_exactly(psycopg.ProgrammingError):
        conn.execute("select %(a)s", {"b": 1})
    with raises_exactly(psycopg.ProgrammingError):
        conn.execute("select %s, %(a)s", {"a": 1})


def test_params_must_be_a_sequence_or_mapping(conn: Any) -> None:
    with raises_exactly(TypeError):
        conn.execute("select %s", "abc")
    with raises_exactly(TypeError):
        conn.execute("select %s", 1)


def test_unadaptable_param(conn: Any) -> None:
    with raises_exactly(psycopg.ProgrammingError, match="cannot adapt type 'object'"):
        conn.execute("select %s", [object()])


def test_bad_placeholder(conn: Any) -> None:
    with raises_exactly(psycopg.ProgrammingError, match="only '%s', '%b', '%t' are allowed"):
        conn.execute("select %d", [1])


def test_sql_composition(conn: Any, table: str, impl: Impl) -> None:
    query = sql.SQL("select {cols} from {tbl} where {key} = {val}").format(
        cols=sql.SQL(", ").join([sql.Identifier("id"), sql.Identifier("name")]),
        tbl=sql.Identifier(table),
        key=sql.Identifier("id"),
        val=sql.Placeholder(),
    )
    assert conn.execute(query, [2]).fetchall() == [(2, "two")]
    lit = sql.SQL("select {}").format(sql.Literal("it's"))
    assert conn.execute(lit).fetchone() == ("it's",)


def test_bytes_query(conn: Any) -> None:
    assert conn.execute(b"select %s::text", ["b"]).fetchone() == ("b",)
    assert conn.execute(b"select 2").fetchone() == (2,)


def test_bytearray_query(conn: Any) -> None:
    with raises_exactly(TypeError, match="unhashable type: 'bytearray'"):
        conn.execute(bytearray(b"select 2"), [])


def test_query_of_bad_type(conn: Any) -> None:
    with raises_exactly(TypeError):
        conn.execute(42)


def test_prepare_per_statement_and_results(conn: Any) -> None:
    cur = conn.cursor()
    for i in range(6):
        cur.execute("select %s::int * 2", [i], prepare=i >= 3)
        assert cur.fetchone() == (i * 2,)


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "cls", "sqlstate"),
    [
        ("selec 1", psycopg.errors.SyntaxError, "42601"),
        ("select * from nosuchtable", psycopg.errors.UndefinedTable, "42P01"),
        ("select nosuchcol from pg_class", psycopg.errors.UndefinedColumn, "42703"),
        ("select 1 / 0", psycopg.errors.DivisionByZero, "22012"),
        ("select 'x'::int", psycopg.errors.InvalidTextRepresentation, "22P02"),
        ("select nosuchfunc()", psycopg.errors.UndefinedFunction, "42883"),
        ("select 2147483647::int + 1", psycopg.errors.NumericValueOutOfRange, "22003"),
    ],
)
def test_server_errors(conn: Any, query: str, cls: type[Exception], sqlstate: str) -> None:
    with raises_exactly(cls, sqlstate=sqlstate) as info:
        conn.execute(query)
    exc = info.value
    assert exc.diag.sqlstate == sqlstate
    assert exc.diag.severity == "ERROR"
    assert exc.pgresult is not None
    assert conn.info.transaction_status == INERROR


def test_error_diag(conn: Any) -> None:
    conn.execute("create temp table u (id int primary key, v int not null check (v > 0))")
    conn.execute("insert into u values (1, 1)")
    with raises_exactly(psycopg.errors.UniqueViolation, sqlstate="23505") as info:
        conn.execute("insert into u values (1, 2)")
    diag = info.value.diag
    assert diag.constraint_name == "u_pkey"
    assert diag.table_name == "u"
    assert diag.message_primary.startswith("duplicate key value")
    assert diag.message_detail == "Key (id)=(1) already exists."
    assert isinstance(info.value, psycopg.IntegrityError)


@pytest.mark.parametrize(
    ("query", "cls", "sqlstate"),
    [
        ("insert into u values (2, null)", psycopg.errors.NotNullViolation, "23502"),
        ("insert into u values (2, -1)", psycopg.errors.CheckViolation, "23514"),
        ("insert into u values (2, 1, 3)", psycopg.errors.SyntaxError, "42601"),
    ],
)
def test_integrity_errors(conn: Any, query: str, cls: type[Exception], sqlstate: str) -> None:
    conn.execute("create temp table u (id int primary key, v int not null check (v > 0))")
    with raises_exactly(cls, sqlstate=sqlstate):
        conn.execute(query)


def test_in_failed_transaction(conn: Any) -> None:
    with pytest.raises(psycopg.errors.DivisionByZero):
        conn.execute("select 1 / 0")
    with raises_exactly(psycopg.errors.InFailedSqlTransaction, sqlstate="25P02"):
        conn.execute("select 1")
    conn.rollback()
    assert conn.execute("select 1").fetchone() == (1,)


def test_error_leaves_cursor_usable(conn: Any) -> None:
    cur = conn.cursor()
    with pytest.raises(psycopg.errors.SyntaxError):
        cur.execute("selec")
    conn.rollback()
    assert cur.execute("select 2").fetchone() == (2,)


def test_errors_lookup(impl: Impl) -> None:
    assert psycopg.errors.lookup("42P01") is psycopg.errors.UndefinedTable
    assert psycopg.errors.lookup("UNIQUE_VIOLATION") is psycopg.errors.UniqueViolation


# --- ClientCursor -------------------------------------------------------------------------


def test_client_cursor_mogrify(conn: Any, impl: Impl) -> None:
    cur = impl.ClientCursor(conn)
    assert cur.mogrify("select %s, %s, %s", [1, "it's", None]) == "select 1, 'it''s', NULL"
    assert cur.mogrify("select %(a)s, 'x%%'", {"a": b"\x01"}) == "select '\\x01'::bytea, 'x%'"
    assert cur.mogrify("select 'no params %%'") == "select 'no params %%'"
    assert cur.mogrify("select %s", [[1, 2]]) == "select '{1,2}'::int2[]"


def test_client_cursor_several_statements_with_params(conn: Any, impl: Impl) -> None:
    cur = impl.ClientCursor(conn)
    cur.execute("select %s::int; select %s::text", [1, "x"])
    assert cur.fetchall() == [(1,)]
    assert cur.nextset()
    assert cur.fetchall() == [("x",)]


def test_client_cursor_binary_not_supported(conn: Any, impl: Impl) -> None:
    cur = impl.ClientCursor(conn)
    with raises_exactly(psycopg.NotSupportedError):
        cur.execute("select 1", binary=True)


def test_client_cursor_quotes_injection_attempts(conn: Any, impl: Impl, table: str) -> None:
    cur = impl.ClientCursor(conn)
    cur.execute(f"select count(*) from {table} where name = %s", ["x'; drop table t; --"])
    assert cur.fetchone() == (0,)
    assert conn.execute(f"select count(*) from {table}").fetchone() == (5,)


def test_client_cursor_executemany_and_rowcount(conn: Any, impl: Impl) -> None:
    conn.execute("create temp table m (id int, name text)")
    cur = impl.ClientCursor(conn)
    cur.executemany("insert into m values (%s, %s)", [(1, "a"), (2, "it's")])
    assert cur.rowcount == 2
    assert conn.execute("select name from m order by id").fetchall() == [("a",), ("it's",)]


def test_client_cursor_stream_and_copy(conn: Any, impl: Impl) -> None:
    cur = impl.ClientCursor(conn)
    assert list(cur.stream("select %s::int", [5])) == [(5,)]
    with cur.copy("copy (select %s::text) to stdout", ["c"]) as copy:
        assert bytes(copy.read()) == b"c\n"


# --- RawCursor ----------------------------------------------------------------------------


def test_raw_cursor_placeholders(conn: Any, impl: Impl) -> None:
    cur = impl.RawCursor(conn)
    cur.execute("select $2::text, $1::int, $2::text", [1, "two"])
    assert cur.fetchone() == ("two", 1, "two")


def test_raw_cursor_refuses_named_params(conn: Any, impl: Impl) -> None:
    cur = impl.RawCursor(conn)
    with raises_exactly(TypeError):
        cur.execute("select $1", {"a": 1})


def test_raw_cursor_percent_is_plain_text(conn: Any, impl: Impl) -> None:
    cur = impl.RawCursor(conn)
    assert cur.execute("select '%s', $1::text", ["x"]).fetchone() == ("%s", "x")
