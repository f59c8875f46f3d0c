"""A cursor reuses its last result's mask plan only while the result is described alike.

Another session can change a table between two runs of the same statement;
the second result must be planned afresh, never masked by the first's plan.
"""

from __future__ import annotations

import psycopg
import pytest

import governed_db


@pytest.fixture
def dsn(pg_dsn: str) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as raw:
        raw.execute("create table accounts (id int, label text, extra int)")
        raw.execute("insert into accounts values (1, 'hunter2', 7)")
    return pg_dsn


def _run(cur: governed_db.Cursor) -> tuple[object, ...]:
    cur.execute("select * from accounts")
    row = cur.fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.parametrize(
    ("change", "hidden"),
    [
        # renamed to a name the baseline masks: same table, same attnum, new name
        ("alter table accounts rename column label to password", "hunter2"),
        # a new column appears in select *
        ("alter table accounts add column api_token text default 'tok'", "tok"),
    ],
)
def test_a_changed_table_is_planned_again(dsn: str, change: str, hidden: str) -> None:
    with governed_db.connect(dsn, audit=False, autocommit=True) as conn:
        cur = conn.cursor()
        assert _run(cur) == (1, "hunter2", 7)
        assert _run(cur) == (1, "hunter2", 7)  # planned once, reused
        with psycopg.connect(dsn, autocommit=True) as other:
            other.execute(change)
        conn._gov_catalog.clear()  # what a reconnect or DDL here would do; names decide below
        row = _run(cur)
        assert hidden not in row, row


def test_a_type_change_is_planned_again(dsn: str) -> None:
    with governed_db.connect(dsn, audit=False, autocommit=True) as conn:
        cur = conn.cursor()
        assert _run(cur)[2] == 7
        with psycopg.connect(dsn, autocommit=True) as other:
            other.execute("alter table accounts alter column extra type text")
            other.execute("update accounts set extra = 'mail jane.roe@example.com'")
        row = _run(cur)  # same text, same names: the type decides that detectors scan it
        assert "jane.roe@example.com" not in str(row), row


def test_a_renamed_result_column_without_catalog_reset(dsn: str) -> None:
    with governed_db.connect(dsn, audit=False, autocommit=True) as conn:
        cur = conn.cursor()
        _run(cur)
        with psycopg.connect(dsn, autocommit=True) as other:
            other.execute("alter table accounts rename column label to secret")
        row = _run(cur)  # the result's own column name is "secret" now
        assert "hunter2" not in row, row


def test_row_factory_change_replans(dsn: str) -> None:
    with governed_db.connect(dsn, audit=False, autocommit=True) as conn:
        cur = conn.cursor()
        cur.execute("select id, label as password from accounts")
        first = cur.fetchone()
        assert first is not None
        assert first[1] != "hunter2"
        cur.row_factory = psycopg.rows.dict_row
        cur.execute("select id, label as password from accounts")
        row = cur.fetchone()
        assert row is not None
        assert row["password"] != "hunter2"


def test_each_statement_of_one_text_is_planned_for_itself(dsn: str) -> None:
    """Two results of one text, described alike (a computed text column ``x``), derive
    from different columns: the second must not take the first's plan."""
    with psycopg.connect(dsn, autocommit=True) as raw:
        raw.execute("create table logins (id int, password text)")
        raw.execute("insert into logins values (1, 'hunter2')")
    text = "select upper(label) as x from accounts; select upper(password) as x from logins"
    with governed_db.connect(dsn, audit=False, autocommit=True) as conn:
        cur = conn.cursor()
        for _ in range(2):  # the second time, every result has been planned once already
            cur.execute(text)
            assert cur.fetchall() == [("HUNTER2",)]  # accounts.label is no secret
            assert cur.nextset()
            (row,) = cur.fetchall()
            assert "HUNTER2" not in row, row
