"""Limits enforced for real: blast radius rolled back, DDL lock timeout applied."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest

import governed_db
from governed_db.governor import Call, Governor, Session, Ticket


class LimitGovernor(Governor):
    """Puts a row limit on writes and a lock timeout on ALTERs."""

    __slots__ = ("lock_timeout", "max_rows")

    def __init__(self, max_rows: int | None = 3, lock_timeout: str | None = None) -> None:
        self.max_rows = max_rows
        self.lock_timeout = lock_timeout

    def admit(
        self, session: Session, method: str, query: str, params: Any, cursor_name: str | None
    ) -> Ticket:
        ticket = Ticket(Call(session, method, query, params, cursor_name))
        if re.search(r"\b(update|delete|insert)\b", query, re.I):
            ticket.max_rows = self.max_rows
        if re.search(r"\balter\b", query, re.I):
            ticket.lock_timeout = self.lock_timeout
        return ticket


@pytest.fixture
def setup(pg_dsn: str) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("create table t (id int, v int default 0)")
        conn.execute("insert into t (id) select generate_series(1, 5)")
    return pg_dsn


def _values(dsn: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("select v from t order by id")]


def test_autocommit_over_limit_is_rolled_back(setup: str) -> None:
    with governed_db.connect(setup, governor=LimitGovernor(), autocommit=True) as conn:
        with pytest.raises(governed_db.BlastRadiusExceeded, match="affected 5 rows") as info:
            conn.execute("update t set v = 1")
        assert info.value.sqlstate == "42501"
        assert conn.execute("update t set v = 2 where id <= 3").rowcount == 3
    assert _values(setup) == [2, 2, 2, 0, 0]


def test_in_transaction_only_the_statement_is_undone(setup: str) -> None:
    with governed_db.connect(setup, governor=LimitGovernor()) as conn:
        conn.execute("update t set v = 7 where id = 1")
        with pytest.raises(governed_db.BlastRadiusExceeded):
            conn.execute("update t set v = 9")
        # The transaction is still usable and keeps the earlier change.
        assert conn.execute("select v from t where id = 1").fetchone() == (7,)
        conn.commit()
    assert _values(setup) == [7, 0, 0, 0, 0]


def test_user_rollback_still_undoes_an_allowed_statement(setup: str) -> None:
    with governed_db.connect(setup, governor=LimitGovernor()) as conn:
        conn.execute("update t set v = 5 where id = 2")
        conn.rollback()
    assert _values(setup) == [0, 0, 0, 0, 0]


def test_multi_statement_strings_count_every_statement(setup: str) -> None:
    with governed_db.connect(setup, governor=LimitGovernor(), autocommit=True) as conn:
        with pytest.raises(governed_db.BlastRadiusExceeded, match="affected 4 rows"):
            conn.execute("update t set v = 3 where id <= 2; update t set v = 3 where id > 3")
    assert _values(setup) == [0, 0, 0, 0, 0]


def test_executemany_counts_the_total(setup: str) -> None:
    with governed_db.connect(setup, governor=LimitGovernor(), autocommit=True) as conn:
        with pytest.raises(governed_db.BlastRadiusExceeded):
            conn.cursor().executemany(
                "update t set v = 4 where id = %s", [(1,), (2,), (3,), (4,)]
            )
    assert _values(setup) == [0, 0, 0, 0, 0]


def test_copy_from_counts_rows(setup: str) -> None:
    with governed_db.connect(setup, governor=LimitGovernor(max_rows=2), autocommit=True) as conn:
        cur = conn.cursor()
        with pytest.raises(governed_db.BlastRadiusExceeded):
            with cur.copy("copy t (id) from stdin -- insert") as copy:
                for i in range(10, 13):
                    copy.write_row((i,))
    assert len(_values(setup)) == 5


def test_statement_errors_pass_through_unchanged(setup: str) -> None:
    with governed_db.connect(setup, governor=LimitGovernor(), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UndefinedColumn):
            conn.execute("update t set nope = 1")
        assert conn.execute("select 1").fetchone() == (1,)


def test_guarded_statement_in_pipeline_fails_closed(setup: str) -> None:
    with governed_db.connect(setup, governor=LimitGovernor(), autocommit=True) as conn:
        with pytest.raises(governed_db.GovernanceError, match="pipeline"), conn.pipeline():
            conn.execute("update t set v = 1 where id = 1")
    assert _values(setup) == [0, 0, 0, 0, 0]


def test_guarded_stream_fails_closed(setup: str) -> None:
    with governed_db.connect(setup, governor=LimitGovernor(), autocommit=True) as conn:
        with pytest.raises(governed_db.GovernanceError, match="stream"):
            list(conn.cursor().stream("delete from t returning id"))
    assert len(_values(setup)) == 5


def test_lock_timeout_applies_to_ddl_and_is_restored(setup: str) -> None:
    gov = LimitGovernor(lock_timeout="200ms")
    with psycopg.connect(setup) as holder:
        holder.execute("lock table t in access exclusive mode")
        with governed_db.connect(setup, governor=gov, autocommit=True) as conn:
            with pytest.raises(psycopg.errors.LockNotAvailable):
                conn.execute("alter table t add column w int")
            assert conn.execute("show lock_timeout").fetchone() == ("0",)
        holder.rollback()
    with governed_db.connect(setup, governor=gov, autocommit=True) as conn:
        conn.execute("alter table t add column w int")
        assert conn.execute("show lock_timeout").fetchone() == ("0",)


async def test_async_over_limit_is_rolled_back(setup: str) -> None:
    conn = await governed_db.AsyncConnection.connect(setup, governor=LimitGovernor())
    async with conn:
        await conn.execute("update t set v = 8 where id = 5")
        with pytest.raises(governed_db.BlastRadiusExceeded):
            await conn.execute("delete from t")
        await conn.commit()
    assert _values(setup) == [0, 0, 0, 0, 8]
