"""The prod row limit (max_rows_affected: 1000) cannot be slipped past (red-team cases)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import tuple_row

import governed_db

ROWS = 2000


@pytest.fixture
def dsn(pg_dsn: str) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("create table orders (id int primary key, note text)")
        conn.execute(f"insert into orders select g, 'n' || g from generate_series(1, {ROWS}) g")
    return pg_dsn


def _count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select count(*) from orders").fetchone()
        return int(row[0]) if row else -1


def _prod(dsn: str, **kw: Any) -> Any:
    kw.setdefault("autocommit", True)
    return governed_db.connect(dsn, environment="prod", identity="agent:t", **kw)


WIDE = "delete from orders where id > 0"


@pytest.mark.parametrize(
    "statement",
    [
        WIDE,
        "with x as (delete from orders where id > 0 returning 1) select count(*) from x",
        "explain analyze delete from orders where id > 0",
        "create table t2 as with x as (delete from orders where id > 0 returning 1) "
        "select count(*) from x",
        "update orders set note = 'x' where id > 0",
    ],
)
def test_wide_and_hidden_writes_are_rolled_back(dsn: str, statement: str) -> None:
    with _prod(dsn) as conn, pytest.raises((governed_db.PolicyViolation, psycopg.Error)):
        conn.execute(statement)
    assert _count(dsn) == ROWS


@pytest.mark.parametrize(
    "statement",
    [
        f"{WIDE}; savepoint governed_db_guard",
        f"{WIDE}; commit",
        f"commit; {WIDE}",
        f"{WIDE}; rollback to savepoint governed_db_guard",
    ],
)
@pytest.mark.parametrize("autocommit", [True, False])
def test_transaction_control_cannot_end_the_guard(
    dsn: str, statement: str, autocommit: bool
) -> None:
    with _prod(dsn, autocommit=autocommit) as conn:
        with pytest.raises(governed_db.PolicyViolation) as info:
            conn.execute(statement)
        assert info.value.rule_id == "row-limit-unenforceable"
        conn.rollback()
    assert _count(dsn) == ROWS


def test_plain_psycopg_cursor_cannot_skip_the_limit(dsn: str) -> None:
    with _prod(dsn) as conn:
        with pytest.raises(governed_db.GovernanceError) as info:
            psycopg.Cursor(conn).execute(WIDE)
        assert info.value.rule_id == "plain-cursor-unguarded"
    assert _count(dsn) == ROWS


def test_row_factory_that_closes_its_cursor(dsn: str) -> None:
    def closing(cur: Any) -> Any:
        if cur.pgresult is not None and (cur.pgresult.command_status or b"").startswith(b"DELETE"):
            cur.close()
        return tuple_row(cur)

    with _prod(dsn) as conn, pytest.raises(governed_db.BlastRadiusExceeded):
        conn.cursor(row_factory=closing).execute(WIDE)
    assert _count(dsn) == ROWS


def test_a_pass_cannot_be_reused_within_one_call(dsn: str) -> None:
    class Thrice(psycopg.Cursor[Any]):
        def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:
            for _ in range(3):
                super().execute(query, params, **kw)
            return self

    with _prod(dsn, cursor_factory=Thrice) as conn, pytest.raises(governed_db.GovernanceError):
        conn.cursor().execute("delete from orders where id <= 600")
    assert _count(dsn) == ROWS  # the first run was rolled back with the refused second
