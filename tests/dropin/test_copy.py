"""COPY: to and from STDIN/STDOUT in text, CSV and binary; params; errors; transactions."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import pq

from .support import Impl, raises_exactly

IDLE = pq.TransactionStatus.IDLE
INTRANS = pq.TransactionStatus.INTRANS
INERROR = pq.TransactionStatus.INERROR
ROWS = [(1, "one", None), (2, "two\ttab", 2.5), (3, "three\nline", 3.25)]


@pytest.fixture
def table(conn: Any) -> str:
    conn.execute("create temp table c (id int primary key, name text, score float8)")
    conn.commit()
    return "c"


@pytest.fixture
def filled(conn: Any, table: str) -> str:
    with conn.cursor() as cur:
        cur.executemany("insert into c values (%s, %s, %s)", ROWS)
    return table


def _rows(conn: Any) -> list[Any]:
    return conn.execute("select * from c order by id").fetchall()


# --- COPY FROM ----------------------------------------------------------------------------


def test_copy_from_write_row(conn: Any, table: str) -> None:
    cur = conn.cursor()
    with cur.copy("copy c (id, name, score) from stdin") as copy:
        for row in ROWS:
            copy.write_row(row)
    assert cur.rowcount == 3
    assert cur.statusmessage == "COPY 3"
    assert _rows(conn) == ROWS


def test_copy_from_write_text_blocks(conn: Any, table: str) -> None:
    cur = conn.cursor()
    with cur.copy("copy c from stdin") as copy:
        copy.write("1\tone\t\\N\n")
        copy.write(b"2\ttwo\\ttab\t2.5\n3\tthree\\nline\t3.25\n")
    assert cur.rowcount == 3
    assert _rows(conn) == ROWS


def test_copy_from_csv(conn: Any, table: str) -> None:
    cur = conn.cursor()
    with cur.copy("copy c from stdin (format csv, header true)") as copy:
        copy.write('id,name,score\n1,one,\n2,"two\ttab",2.5\n3,"three\nline",3.25\n')
    assert _rows(conn) == ROWS


def test_copy_from_binary(conn: Any, table: str) -> None:
    with conn.cursor().copy("copy c from stdin (format binary)") as copy:
        copy.set_types(["int4", "text", "float8"])
        for row in ROWS:
            copy.write_row(row)
    assert _rows(conn) == ROWS


def test_copy_from_binary_without_types_fails(conn: Any, table: str) -> None:
    with raises_exactly(psycopg.errors.ProtocolViolation, sqlstate="08P01"):
        with conn.cursor().copy("copy c from stdin (format binary)") as copy:
            copy.write_row((1, "one", 1.0))  # int8 sent for int4
    assert conn.info.transaction_status == INERROR


def test_copy_from_column_subset(conn: Any, table: str) -> None:
    with conn.cursor().copy("copy c (name, id) from stdin") as copy:
        copy.write_row(("x", 10))
    assert _rows(conn) == [(10, "x", None)]


def test_copy_from_bad_data(conn: Any, table: str) -> None:
    with raises_exactly(psycopg.errors.InvalidTextRepresentation, sqlstate="22P02"):
        with conn.cursor().copy("copy c from stdin") as copy:
            copy.write("notanumber\tx\t1\n")
    assert conn.info.transaction_status == INERROR
    conn.rollback()
    assert _rows(conn) == []


def test_copy_from_constraint_violation(conn: Any, table: str) -> None:
    with raises_exactly(psycopg.errors.UniqueViolation, sqlstate="23505"):
        with conn.cursor().copy("copy c (id) from stdin") as copy:
            copy.write_row((1,))
            copy.write_row((1,))
    conn.rollback()


def test_copy_from_python_error_aborts(conn: Any, table: str) -> None:
    conn.commit()
    with pytest.raises(ZeroDivisionError):
        with conn.cursor().copy("copy c from stdin") as copy:
            copy.write_row(ROWS[0])
            raise ZeroDivisionError
    assert conn.info.transaction_status == INERROR
    conn.rollback()
    assert _rows(conn) == []


def test_copy_from_in_autocommit(connect: Any) -> None:
    conn = connect(autocommit=True)
    conn.execute("create temp table c (id int primary key, name text, score float8)")
    with conn.cursor().copy("copy c from stdin") as copy:
        copy.write_row(ROWS[0])
    assert conn.info.transaction_status == IDLE
    assert _rows(conn) == ROWS[:1]


def test_copy_in_transaction_rolled_back(conn: Any, table: str) -> None:
    conn.commit()
    with conn.cursor().copy("copy c from stdin") as copy:
        copy.write_row(ROWS[0])
    assert conn.info.transaction_status == INTRANS
    conn.rollback()
    assert _rows(conn) == []


def test_copy_inside_transaction_block(conn: Any, table: str) -> None:
    conn.commit()
    with pytest.raises(ZeroDivisionError), conn.transaction():
        with conn.cursor().copy("copy c from stdin") as copy:
            copy.write_row(ROWS[0])
        raise ZeroDivisionError
    assert _rows(conn) == []
    with conn.transaction():
        with conn.cursor().copy("copy c from stdin") as copy:
            copy.write_row(ROWS[1])
    assert _rows(conn) == ROWS[1:2]


def test_copy_from_large(conn: Any, table: str) -> None:
    with conn.cursor().copy("copy c (id, name) from stdin") as copy:
        for i in range(5000):
            copy.write_row((i, "x" * 50))
    assert conn.execute("select count(*) from c").fetchone() == (5000,)


# --- COPY TO ------------------------------------------------------------------------------


def test_copy_to_read(conn: Any, filled: str) -> None:
    cur = conn.cursor()
    with cur.copy("copy (select * from c order by id) to stdout") as copy:
        data = b"".join(bytes(block) for block in copy)
    assert data == b"1\tone\t\\N\n2\ttwo\\ttab\t2.5\n3\tthree\\nline\t3.25\n"
    assert cur.rowcount == 3
    assert cur.statusmessage is None  # the cursor's result is still the COPY_OUT one


def test_copy_to_read_until_empty(conn: Any, filled: str) -> None:
    with conn.cursor().copy("copy c (id) to stdout") as copy:
        chunks = []
        while data := copy.read():
            chunks.append(bytes(data))
    assert sorted(b"".join(chunks).split()) == [b"1", b"2", b"3"]


def test_copy_to_rows_text(conn: Any, filled: str) -> None:
    with conn.cursor().copy("copy (select * from c order by id) to stdout") as copy:
        rows = list(copy.rows())
    assert rows == [("1", "one", None), ("2", "two\ttab", "2.5"), ("3", "three\nline", "3.25")]


def test_copy_to_rows_with_types(conn: Any, filled: str) -> None:
    with conn.cursor().copy("copy (select * from c order by id) to stdout") as copy:
        copy.set_types(["int4", "text", "float8"])
        assert list(copy.rows()) == ROWS


def test_copy_to_read_row(conn: Any, filled: str) -> None:
    with conn.cursor().copy("copy (select id, name from c order by id) to stdout") as copy:
        copy.set_types(["int4", "text"])
        assert copy.read_row() == (1, "one")
        assert copy.read_row() == (2, "two\ttab")
        assert copy.read_row() == (3, "three\nline")
        assert copy.read_row() is None


def test_copy_to_binary(conn: Any, filled: str) -> None:
    with conn.cursor().copy("copy (select * from c order by id) to stdout (format binary)") as cp:
        cp.set_types(["int4", "text", "float8"])
        assert list(cp.rows()) == ROWS


def test_copy_to_csv(conn: Any, filled: str) -> None:
    with conn.cursor().copy(
        "copy (select id, name from c where id < 3 order by id) to stdout (format csv, header)"
    ) as copy:
        data = b"".join(bytes(b) for b in copy)
    assert data == b"id,name\n1,one\n2,two\ttab\n"


def test_copy_to_break_early(conn: Any) -> None:
    with conn.cursor().copy("copy (select generate_series(1, 100000)) to stdout") as copy:
        first = bytes(copy.read())
    assert first.startswith(b"1\n")
    # psycopg does not drain an unfinished COPY TO: the next query can't be sent.
    with raises_exactly(psycopg.OperationalError, match="another command is already in progress"):
        conn.execute("select 'after'")


def test_copy_with_params(conn: Any, filled: str) -> None:
    cur = conn.cursor()
    with cur.copy("copy (select id, name from c where id > %s order by id) to stdout", [1]) as cp:
        assert [r[0] for r in cp.rows()] == ["2", "3"]
    with cur.copy(
        "copy (select %(a)s::text || '%%', %(b)s::int) to stdout", {"a": "x", "b": 7}
    ) as cp:
        assert list(cp.rows()) == [("x%", "7")]


def test_copy_with_params_quotes(conn: Any) -> None:
    with conn.cursor().copy("copy (select %s::text) to stdout", ["it's; drop"]) as copy:
        assert list(copy.rows()) == [("it's; drop",)]


def test_copy_query_error(conn: Any) -> None:
    with raises_exactly(psycopg.errors.UndefinedTable, sqlstate="42P01"):
        with conn.cursor().copy("copy nosuchtable from stdin"):
            pass
    assert conn.info.transaction_status == INERROR


def test_copy_error_while_reading(conn: Any) -> None:
    with raises_exactly(psycopg.errors.DivisionByZero, sqlstate="22012"):
        with conn.cursor().copy(
            "copy (select 1 / (2 - i) from generate_series(1, 3) i) to stdout"
        ) as cp:
            list(cp)
    conn.rollback()


def test_copy_not_a_copy_statement(conn: Any) -> None:
    with raises_exactly(psycopg.ProgrammingError, match="COPY"):
        with conn.cursor().copy("select 1"):
            pass


def test_copy_with_execute_is_refused(conn: Any, table: str) -> None:
    with raises_exactly(psycopg.ProgrammingError, match="COPY cannot be used with this method"):
        conn.execute("copy c from stdin")


def test_copy_from_client_cursor(conn: Any, impl: Impl, table: str) -> None:
    cur = impl.ClientCursor(conn)
    with cur.copy("copy c (id, name) from stdin") as copy:
        copy.write_row((1, "client"))
    assert conn.execute("select name from c").fetchall() == [("client",)]


def test_copy_from_raw_cursor_with_params(conn: Any, impl: Impl, filled: str) -> None:
    cur = impl.RawCursor(conn)
    with cur.copy("copy (select name from c where id = %s) to stdout", [2]) as copy:
        assert list(copy.rows()) == [("two\ttab",)]
