"""The database cases: the same work through raw psycopg and through governed_db."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from benchmarks.harness import Operation


@dataclass(frozen=True, slots=True)
class Case:
    """One workload: ``make(conn)`` returns the operation to time on that connection."""

    name: str
    make: Callable[[Any], Operation]
    pairs: int
    warmup: int


SETUP = """
drop table if exists bench_customers, bench_big, bench_sink;
create table bench_customers (id int primary key, name text, email text);
insert into bench_customers
    select i, 'name ' || i, 'user' || i || '@example.com' from generate_series(1, 1000) i;
create table bench_big (id int, name text, email text);
insert into bench_big
    select i, 'name ' || i, 'user' || i || '@example.com' from generate_series(1, 100000) i;
create table bench_sink (id int, name text);
"""


def prepare(dsn: str) -> None:
    """Create the tables every case reads or writes."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SETUP)
        conn.execute("vacuum analyze")


def _select_one(conn: Any) -> Operation:
    cur = conn.cursor()

    def op() -> Any:
        cur.execute("SELECT 1")
        return cur.fetchone()

    return op


def _param_select(conn: Any) -> Operation:
    cur = conn.cursor()
    state = {"i": 0}

    def op() -> Any:
        state["i"] = state["i"] % 1000 + 1
        cur.execute("select id, name, email from bench_customers where id = %s", (state["i"],))
        return cur.fetchone()

    return op


def _fetch_100k(conn: Any) -> Operation:
    cur = conn.cursor()

    def op() -> Any:
        cur.execute("select id, name, email from bench_big")
        return cur.fetchall()

    return op


_ROWS = [(i, f"row {i}") for i in range(10_000)]


def _executemany_10k(conn: Any) -> Operation:
    cur = conn.cursor()

    def op() -> None:
        cur.executemany("insert into bench_sink (id, name) values (%s, %s)", _ROWS)
        conn.commit()

    return op


def _client_cursor(conn: Any) -> Any:
    import governed_db

    governed = isinstance(conn, governed_db.Connection)
    return (governed_db.ClientCursor if governed else psycopg.ClientCursor)(conn)


def _client_repeated(conn: Any) -> Operation:
    cur = _client_cursor(conn)

    def op() -> Any:
        cur.execute("select id, name, email from bench_customers where id = %s", (42,))
        return cur.fetchone()

    return op


def _client_first_seen(conn: Any) -> Operation:
    cur = _client_cursor(conn)
    state = {"i": 0}

    def op() -> Any:
        state["i"] += 1  # a new merged text every call: analyzed and decided afresh
        cur.execute("select id, name, email from bench_customers where id = %s", (state["i"],))
        return cur.fetchone()

    return op


#: Cases whose cost is reported, not held to the side's target.
INFORMATIONAL = frozenset(
    {"ClientCursor select, repeated params", "ClientCursor select, first-seen params"}
)


def cases(quick: bool) -> list[Case]:
    """Every database case, with repetitions scaled down by ``quick``."""
    scale = 5 if quick else 1
    return [
        Case("SELECT 1 round trip", _select_one, 3000 // scale, 300),
        Case("parameterised single-row select", _param_select, 3000 // scale, 300),
        Case("fetch 100k rows", _fetch_100k, 30 // scale + 4, 3),
        Case("executemany 10k inserts", _executemany_10k, 20 // scale + 4, 2),
        Case("ClientCursor select, repeated params", _client_repeated, 2000 // scale, 200),
        Case("ClientCursor select, first-seen params", _client_first_seen, 2000 // scale, 200),
    ]
