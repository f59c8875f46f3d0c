"""Code written for psycopg 3 keeps working with governed_db."""

from __future__ import annotations

import psycopg
import psycopg_pool
import pytest
from psycopg.rows import dict_row

import governed_db
import governed_db as db
from governed_db.testing import RecordingGovernor


def test_module_is_a_dbapi_driver() -> None:
    assert (db.apilevel, db.threadsafety, db.paramstyle) == ("2.0", 2, "pyformat")
    assert db.Error is psycopg.Error
    assert db.connect is governed_db.connect
    assert issubclass(db.PolicyViolation, db.Error)
    assert db.PolicyViolation.__module__ == "governed_db"


def test_connection_is_a_psycopg_connection(pg_dsn: str) -> None:
    with db.connect(pg_dsn) as conn:
        assert isinstance(conn, psycopg.Connection)
        assert isinstance(conn, db.Connection)
        assert conn.execute("select 1 + 1").fetchall() == [(2,)]
    assert conn.closed


def test_classmethod_connect_takes_the_same_arguments(pg_dsn: str) -> None:
    gov = RecordingGovernor()
    with db.Connection.connect(pg_dsn, governor=gov, autocommit=True) as conn:
        assert conn.autocommit
        assert conn.governor is gov
        conn.execute("select 1")
    assert gov.queries == ["select 1"]


def test_context_managers_commit_and_roll_back(pg_dsn: str) -> None:
    with db.connect(pg_dsn) as conn:
        conn.execute("create table t (id int)")
    with db.connect(pg_dsn) as conn:
        assert conn.execute("select count(*) from t").fetchone() == (0,)
        conn.commit()
        with pytest.raises(ZeroDivisionError), conn.transaction():
            conn.execute("insert into t values (1)")
            raise ZeroDivisionError
        with conn.transaction():
            conn.execute("insert into t values (2)")
        conn.execute("insert into t values (3)")
        conn.rollback()
        assert conn.execute("select id from t").fetchall() == [(2,)]


def test_cursor_context_manager_and_iteration(pg_dsn: str) -> None:
    with db.connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute("select generate_series(1, 3)")
        assert [r[0] for r in cur] == [1, 2, 3]
    assert cur.closed


def test_dict_row_on_cursor(pg_dsn: str) -> None:
    with db.connect(pg_dsn) as conn:
        cur = conn.cursor()
        cur.row_factory = dict_row
        assert cur.row_factory is dict_row
        cur.execute("select 1 as a, 'x' as b")
        assert cur.fetchone() == {"a": 1, "b": "x"}


def test_psycopg_pool_with_governed_connection_class(pg_dsn: str) -> None:
    gov = RecordingGovernor()
    with psycopg_pool.ConnectionPool(
        pg_dsn,
        connection_class=db.Connection,
        kwargs={"governor": gov, "autocommit": True},
        min_size=2,
        max_size=2,
        open=True,
    ) as pool:
        for i in range(4):
            with pool.connection() as conn:
                assert isinstance(conn, db.Connection)
                assert conn.execute("select %s::int", (i,)).fetchone() == (i,)
    assert gov.methods.count("execute") == 4


async def test_async_pool(pg_dsn: str) -> None:
    gov = RecordingGovernor()
    async with psycopg_pool.AsyncConnectionPool(
        pg_dsn,
        connection_class=db.AsyncConnection,
        kwargs={"governor": gov},
        min_size=1,
        max_size=1,
        open=False,
    ) as pool, pool.connection() as conn:
        cur = await conn.execute("select 42")
        assert await cur.fetchone() == (42,)
    assert gov.queries == ["select 42"]


def test_unknown_keyword_is_a_type_error(pg_dsn: str) -> None:
    with pytest.raises(TypeError, match="polcy"):
        db.connect(pg_dsn, polcy="policies.yaml")
    with pytest.raises(psycopg.ProgrammingError):
        db.connect(pg_dsn, nosuchparam=1)


def test_libpq_keywords_still_work(pg_dsn: str) -> None:
    with db.connect(pg_dsn, application_name="mine", connect_timeout=5) as conn:
        assert conn.execute("show application_name").fetchone() == ("mine",)


def test_governor_and_policy_are_exclusive(pg_dsn: str) -> None:
    with pytest.raises(TypeError, match="either governor= or policy="):
        db.connect(pg_dsn, policy={}, governor=RecordingGovernor())
    with pytest.raises(TypeError, match="governor= must be"):
        db.connect(pg_dsn, governor="allow-all")


def test_connection_errors_are_psycopg_errors() -> None:
    with pytest.raises(psycopg.OperationalError):
        db.connect("host=/nonexistent-socket-dir port=1 connect_timeout=1")


def test_plain_psycopg_connection_made_into_governed_fails_closed(pg_dsn: str) -> None:
    raw = psycopg.connect(pg_dsn)
    try:
        bare = db.Connection(raw.pgconn)
        with pytest.raises(db.GovernanceError, match="no governor"):
            bare.execute("select 1")
    finally:
        raw.close()
