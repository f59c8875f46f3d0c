"""Every way SQL reaches the server passes the gate; every result passes the row hook."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import class_row, dict_row

import governed_db
from governed_db.testing import RecordingGovernor


@pytest.fixture
def gov() -> RecordingGovernor:
    return RecordingGovernor()


@pytest.fixture
def conn(pg_dsn: str, gov: RecordingGovernor) -> Any:
    with governed_db.Connection.connect(pg_dsn, governor=gov) as c:
        c.execute("create table items (id int primary key, name text)")
        c.execute("insert into items values (1, 'a'), (2, 'b'), (3, 'c')")
        c.commit()
        gov.calls.clear()
        gov.settled.clear()
        gov.results.clear()
        yield c


def test_cursor_execute_reaches_both_hooks(conn: Any, gov: RecordingGovernor) -> None:
    cur = conn.cursor()
    cur.execute("select id from items where id = %s", (2,))
    assert cur.fetchone() == (2,)
    assert gov.methods == ["execute"]
    assert gov.calls[0].params == (2,)
    assert len(gov.results) == 1
    assert gov.settled[0].outcome is not None
    assert gov.settled[0].outcome.error is None
    assert gov.settled[0].outcome.rowcount == 1


def test_connection_execute(conn: Any, gov: RecordingGovernor) -> None:
    assert conn.execute("select count(*) from items").fetchall() == [(3,)]
    assert gov.queries == ["select count(*) from items"]
    assert len(gov.results) == 1


@pytest.mark.parametrize("as_generator", [False, True])
def test_executemany(conn: Any, gov: RecordingGovernor, as_generator: bool) -> None:
    rows = [(10, "x"), (11, "y")]
    params = (r for r in rows) if as_generator else rows
    conn.cursor().executemany("insert into items values (%s, %s)", params)
    assert gov.methods == ["executemany"]
    assert list(gov.calls[0].params) == rows
    assert conn.execute("select count(*) from items where id >= 10").fetchone() == (2,)


def test_executemany_returning(conn: Any, gov: RecordingGovernor) -> None:
    cur = conn.cursor()
    cur.executemany(
        "insert into items values (%s, %s) returning id", [(20, "p"), (21, "q")], returning=True
    )
    ids = []
    while True:
        ids.append(cur.fetchone()[0])
        if not cur.nextset():
            break
    assert ids == [20, 21]
    assert len(gov.results) >= 2


def test_stream(conn: Any, gov: RecordingGovernor) -> None:
    rows = list(conn.cursor().stream("select id from items order by id"))
    assert rows == [(1,), (2,), (3,)]
    assert gov.methods == ["stream"]
    assert gov.results
    assert gov.settled[0].outcome is not None


def test_stream_abandoned_early_is_settled(conn: Any, gov: RecordingGovernor) -> None:
    gen = conn.cursor().stream("select generate_series(1, 1000)")
    assert next(gen) == (1,)
    gen.close()
    assert len(gov.settled) == 1
    assert gov.settled[0].outcome is not None
    assert gov.settled[0].outcome.error is None


def test_stream_sends_nothing_until_iterated(conn: Any, gov: RecordingGovernor) -> None:
    conn.cursor().stream("select 1")
    assert gov.calls == []


def test_copy_to_and_from(conn: Any, gov: RecordingGovernor) -> None:
    cur = conn.cursor()
    with cur.copy("copy items (id, name) from stdin") as copy:
        copy.write_row((30, "copied"))
    with cur.copy("copy (select id from items where id = 30) to stdout") as copy:
        got = [bytes(b) for b in copy]
    assert got == [b"30\n"]
    assert gov.methods == ["copy", "copy"]
    assert [s.outcome.error for s in gov.settled if s.outcome] == [None, None]


def test_named_server_cursor(conn: Any, gov: RecordingGovernor) -> None:
    with conn.cursor("big") as cur:
        cur.execute("select id from items order by id")
        assert cur.fetchmany(2) == [(1,), (2,)]
        assert list(cur) == [(3,)]
    assert gov.methods == ["declare"]
    assert gov.calls[0].cursor_name == "big"
    assert gov.results
    assert isinstance(cur, governed_db.ServerCursor)


@pytest.mark.parametrize(
    "factory", [psycopg.ClientCursor, psycopg.RawCursor, governed_db.ClientCursor]
)
def test_cursor_factories_are_governed(pg_dsn: str, factory: type[Any]) -> None:
    gov = RecordingGovernor()
    with governed_db.connect(pg_dsn, governor=gov, cursor_factory=factory) as conn:
        placeholder = "$1" if issubclass(factory, psycopg.RawCursor) else "%s"
        cur = conn.cursor()
        assert isinstance(cur, factory)
        assert isinstance(cur, governed_db.driver.GovernedCursorMixin)
        cur.execute(f"select {placeholder}::int", (5,))
        assert cur.fetchone() == (5,)
    assert gov.methods == ["execute"]


def test_raw_server_cursor(pg_dsn: str) -> None:
    gov = RecordingGovernor()
    with governed_db.connect(pg_dsn, governor=gov) as conn:
        conn.server_cursor_factory = psycopg.RawServerCursor
        with conn.cursor("raw") as cur:
            cur.execute("select $1::int", (7,))
            assert cur.fetchall() == [(7,)]
    assert gov.methods == ["declare"]


def test_user_cursor_class_is_combined_not_replaced(pg_dsn: str) -> None:
    class Mine(psycopg.Cursor[Any]):
        def ids(self) -> list[int]:
            return [r[0] for r in self.fetchall()]

    gov = RecordingGovernor()
    with governed_db.connect(pg_dsn, governor=gov, cursor_factory=Mine) as conn:
        assert issubclass(conn.cursor_factory, Mine)
        cur = conn.cursor()
        cur.execute("select generate_series(1, 3)")
        assert cur.ids() == [1, 2, 3]
    assert gov.methods == ["execute"]


def test_not_a_cursor_class_is_refused(pg_dsn: str) -> None:
    with governed_db.connect(pg_dsn) as conn, pytest.raises(TypeError, match="cursor class"):
        conn.cursor_factory = dict  # type: ignore[assignment]


def test_pipeline_mode(conn: Any, gov: RecordingGovernor) -> None:
    with conn.pipeline():
        cur1 = conn.execute("select 1")
        cur2 = conn.cursor()
        cur2.execute("insert into items values (40, 'p')")
        cur2.executemany("insert into items values (%s, %s)", [(41, "q")])
    assert cur1.fetchone() == (1,)
    assert gov.methods == ["execute", "execute", "executemany"]
    assert conn.execute("select count(*) from items where id >= 40").fetchone() == (2,)


@pytest.mark.parametrize(
    ("query", "text"),
    [
        (
            sql.SQL("select {} from items").format(sql.Identifier("name")),
            'select "name" from items',
        ),
        (sql.SQL("select {}").format(sql.Literal("it's")), "select 'it''s'"),
        (b"select 1", "select 1"),
    ],
)
def test_non_str_queries_are_rendered(
    conn: Any, gov: RecordingGovernor, query: Any, text: str
) -> None:
    conn.execute(query).fetchall()
    assert gov.queries == [text]


def test_unreadable_query_fails_closed(conn: Any, gov: RecordingGovernor) -> None:
    with pytest.raises(governed_db.GovernanceError, match="cannot govern a query"):
        conn.execute(12345)  # type: ignore[arg-type]
    assert gov.calls == []


def test_row_factory_reads_back_and_passes_hook(conn: Any, gov: RecordingGovernor) -> None:
    cur = conn.cursor()
    cur.row_factory = dict_row
    assert cur.row_factory is dict_row
    cur.execute("select id, name from items where id = 1")
    assert cur.fetchone() == {"id": 1, "name": "a"}
    assert len(gov.results) == 1


def test_row_factory_changed_after_execute(conn: Any, gov: RecordingGovernor) -> None:
    cur = conn.cursor()
    cur.execute("select id, name from items where id = 1")
    cur.row_factory = dict_row
    assert cur.fetchone() == {"id": 1, "name": "a"}
    assert len(gov.results) == 2


@dataclass
class Item:
    id: int
    name: str


def test_class_row_on_cursor_and_connection(pg_dsn: str) -> None:
    gov = RecordingGovernor()
    with governed_db.connect(pg_dsn, governor=gov, row_factory=dict_row) as conn:
        assert conn.row_factory is dict_row
        assert conn.execute("select 1 as one").fetchone() == {"one": 1}
        cur = conn.cursor(row_factory=class_row(Item))
        cur.execute("select 7 as id, 'n' as name")
        assert cur.fetchall() == [Item(7, "n")]
        with conn.cursor("srv", row_factory=dict_row) as scur:
            scur.execute("select 2 as two")
            assert scur.fetchone() == {"two": 2}
    assert len(gov.results) == 3


def _declare_drop(conn: Any) -> None:
    with conn.cursor("n") as cur:
        cur.execute("drop table keep")


def test_refused_statement_is_never_sent(pg_dsn: str) -> None:
    def refuse(call: governed_db.Call) -> Exception | None:
        if "drop" in call.query:
            return governed_db.PolicyViolation("no drops", rule_id="no-drop")
        return None

    gov = RecordingGovernor(refuse=refuse)
    with governed_db.connect(pg_dsn, governor=gov, autocommit=True) as conn:
        conn.execute("create table keep (id int)")
        with pytest.raises(governed_db.PolicyViolation) as info:
            conn.execute("drop table keep")
        assert isinstance(info.value, psycopg.errors.InsufficientPrivilege)
        assert info.value.sqlstate == "42501"
        assert conn.execute("select to_regclass('keep') is not null").fetchone() == (True,)
        for path in (
            lambda c: c.cursor().executemany("drop table keep", [()]),
            lambda c: list(c.cursor().stream("drop table keep")),
            lambda c: c.cursor().copy("drop table keep").__enter__(),
            _declare_drop,
        ):
            with pytest.raises(governed_db.PolicyViolation):
                path(conn)
        assert conn.execute("select to_regclass('keep') is not null").fetchone() == (True,)


def test_psycopg_errors_pass_through_unchanged(conn: Any, gov: RecordingGovernor) -> None:
    with pytest.raises(psycopg.errors.UndefinedTable) as info:
        conn.execute("select * from missing_table")
    assert type(info.value) is psycopg.errors.UndefinedTable
    conn.rollback()
    outcome = gov.settled[-1].outcome
    assert outcome is not None
    assert outcome.error is info.value
    with pytest.raises(psycopg.errors.SyntaxError):
        conn.execute("selec 1")


def _declare(conn: Any, query: str) -> None:
    with psycopg.ServerCursor(conn, "direct") as cur:
        cur.execute(query)


def _no_drop(call: governed_db.Call) -> Exception | None:
    if "drop" in call.query:
        return governed_db.PolicyViolation("no drops", rule_id="no-drop")
    return None


@pytest.mark.parametrize(
    "make",
    [
        lambda c: psycopg.ClientCursor(c).execute("drop table items"),
        lambda c: psycopg.ClientCursor(c).execute("select %s", ["x'; drop table items; --"]),
        lambda c: psycopg.Cursor(c).executemany("drop table items", [()]),
        lambda c: list(psycopg.RawCursor(c).stream("drop table items")),
        lambda c: psycopg.Cursor(c).copy("copy (select 1) to stdout; drop table items").__enter__(),
        lambda c: _declare(c, "select 1; drop table items"),
    ],
)
def test_psycopg_cursor_made_directly_is_decided(pg_dsn: str, make: Any) -> None:
    # A plain psycopg cursor on a governed connection is governed like any other:
    # its statement reaches the governor, which refuses the drop.
    gov = RecordingGovernor(refuse=_no_drop)
    with governed_db.connect(pg_dsn, governor=gov) as conn:
        conn.execute("create table items (id int)")
        conn.commit()
        with pytest.raises(
            (governed_db.PolicyViolation, governed_db.GovernanceError, psycopg.errors.SyntaxError)
        ):
            make(conn)
        conn.rollback()
        assert conn.execute("select to_regclass('items') is not null").fetchone() == (True,)


def test_psycopg_cursor_made_directly_runs_governed(conn: Any, gov: RecordingGovernor) -> None:
    with psycopg.Cursor(conn) as cur:
        cur.execute("select id from items where id = %s", (2,))
        assert cur.fetchone() == (2,)
    with psycopg.ServerCursor(conn, "direct") as cur:
        cur.execute("select id from items order by id")
        assert cur.fetchall() == [(1,), (2,), (3,)]
    assert gov.queries == ["select id from items where id = $1", "select id from items order by id"]
    assert gov.methods == ["execute", "declare"]
    assert [s.outcome.error for s in gov.settled if s.outcome] == [None, None]


def test_bypass_check_knows_this_psycopgs_generators() -> None:
    # If psycopg renamed them, the check would pass everything: fail here instead.
    from psycopg import _cursor_base, _server_cursor_base, cursor, cursor_async

    from governed_db.driver.plain import SENDING as _SENDING

    names = {
        name
        for module in (_cursor_base, _server_cursor_base, cursor, cursor_async)
        for cls in vars(module).values()
        if isinstance(cls, type)
        for name in vars(cls)
    }
    assert names >= set(_SENDING)


def test_governed_classes_made_directly_are_governed(conn: Any, gov: RecordingGovernor) -> None:
    cur = governed_db.ClientCursor(conn)
    cur.execute("select %s::int", (1,))
    assert cur.fetchone() == (1,)
    assert gov.methods == ["execute"]


def test_connection_commands_still_work(conn: Any, gov: RecordingGovernor) -> None:
    with conn.transaction():
        conn.execute("insert into items values (50, 'tx')")
    with conn.pipeline():
        conn.execute("select 1")
    conn.commit()
    conn.rollback()
    assert conn.execute("select count(*) from items").fetchone() == (4,)


def test_named_cursor_stream_and_copy_pass_the_gate(pg_dsn: str) -> None:
    # psycopg's ServerCursor inherits stream() and copy() from Cursor.
    def refuse(call: governed_db.Call) -> Exception | None:
        return governed_db.PolicyViolation("no", rule_id="r") if "drop" in call.query else None

    gov = RecordingGovernor(refuse=refuse)
    with governed_db.connect(pg_dsn, governor=gov, autocommit=True) as conn:
        conn.execute("create table keep (id int)")
        with conn.cursor("named") as cur:
            with pytest.raises(governed_db.PolicyViolation):
                list(cur.stream("drop table keep"))
            with pytest.raises(governed_db.PolicyViolation):
                cur.copy("drop table keep").__enter__()
            with cur.copy("copy keep to stdout") as copy:
                assert list(copy) == []
        assert conn.execute("select to_regclass('keep') is not null").fetchone() == (True,)
    assert gov.methods == ["execute", "stream", "copy", "copy", "execute"]
