"""PREPARE / EXECUTE / DEALLOCATE are decided by what they run on this connection,
psycopg's own prepared-statement names are off limits, and statements may not
change the settings the gate's reading of text depends on."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

import governed_db


@pytest.fixture
def dsn(pg_dsn: str) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("create table orders (id int primary key, note text)")
        conn.execute("insert into orders select g, 'n' || g from generate_series(1, 5) g")
    return pg_dsn


def _count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select count(*) from orders").fetchone()
        return int(row[0]) if row else -1


def _prod(dsn: str) -> Any:
    return governed_db.connect(dsn, environment="prod", identity="agent:t", autocommit=True)


@pytest.mark.parametrize(
    "statement",
    [
        "prepare d as delete from orders",
        "PREPARE d (int) AS DELETE FROM orders WHERE true",
        "prepare d as with x as (delete from orders returning 1) select * from x",
        "prepare d as update orders set note = 'x'",
    ],
)
def test_prepare_is_decided_as_its_statement(dsn: str, statement: str) -> None:
    with _prod(dsn) as conn:
        with pytest.raises(governed_db.PolicyViolation):
            conn.execute(statement)
    assert _count(dsn) == 5


@pytest.mark.parametrize(
    "statements",
    [
        ["prepare s as select * from orders where id = 1", "execute s"],
        ["prepare s(int) as select * from orders where id = $1", "execute s(1)"],
        ["prepare s as select 1; execute s"],
    ],
)
def test_execute_is_decided_by_what_was_prepared(dsn: str, statements: list[str]) -> None:
    with _prod(dsn) as conn:
        for statement in statements:
            conn.execute(statement)  # allowed: it runs a read


def test_execute_of_an_unknown_name_is_opaque(dsn: str) -> None:
    with _prod(dsn) as conn, pytest.raises(governed_db.PolicyViolation) as info:
        conn.execute("execute never_prepared")
    assert info.value.rule_id == "opaque-needs-approval-in-prod"


def test_a_failed_prepare_keeps_every_candidate(dsn: str) -> None:
    with _prod(dsn) as conn:
        conn.execute("prepare s as select * from orders where id = 1")
        # The name exists: this PREPARE fails on the server, but what 's' runs is
        # now uncertain, so EXECUTE s is decided by both candidates.
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
            conn.execute("prepare s as select * from orders for update")
        conn.execute("execute s")
        conn.execute("deallocate s")
        with pytest.raises(governed_db.PolicyViolation):
            conn.execute("execute s")  # unknown again: opaque in prod


@pytest.mark.parametrize(
    "statement",
    [
        "deallocate _pg3_0",
        "DEALLOCATE PREPARE _pg3_1",
        "prepare _pg3_0 as select 1",
        "execute _pg3_0",
        'prepare "_pg3_7" as delete from orders where id = 1',
    ],
)
def test_psycopg_prepared_names_are_reserved(dsn: str, statement: str) -> None:
    with governed_db.connect(dsn, autocommit=True) as conn:  # dev: the rule holds anyway
        with pytest.raises(governed_db.PolicyViolation) as info:
            conn.execute(statement)
        assert info.value.rule_id == "reserved-prepared-name"


def test_psycopg_prepared_statements_cannot_be_hijacked(dsn: str) -> None:
    with governed_db.connect(dsn, autocommit=True, prepare_threshold=0) as conn:
        assert conn.execute("select count(*) from orders").fetchone() == (5,)
        for statement in ("deallocate _pg3_0", "prepare _pg3_0 as delete from orders"):
            with pytest.raises(governed_db.PolicyViolation):
                conn.execute(statement)
        assert conn.execute("select count(*) from orders").fetchone() == (5,)
    assert _count(dsn) == 5


@pytest.mark.parametrize(
    "statement",
    [
        "set standard_conforming_strings = off",
        "SET SESSION standard_conforming_strings TO off",
        "set local standard_conforming_strings = off",
        "set client_encoding = 'LATIN1'",
        "set names 'LATIN1'",
        "select set_config('standard_conforming_strings', 'off', false)",
        "select set_config('client_encoding', 'SJIS', false)",
        "select 1; set standard_conforming_strings = off",
    ],
)
def test_statements_may_not_change_how_text_is_read(dsn: str, statement: str) -> None:
    with governed_db.connect(dsn, autocommit=True) as conn:
        with pytest.raises(governed_db.PolicyViolation) as info:
            conn.execute(statement)
        assert info.value.rule_id == "session-setting-change"
        assert conn.execute("show standard_conforming_strings").fetchone() == ("on",)
