"""The gate decides exactly what the server runs, and nothing unadmitted reaches the wire.

Every test here is an attempt to get a statement past the gate with public
psycopg and governed_db APIs, on a real server, under the built-in baseline
in prod (where DROP is blocked). Each checks that the table survived and,
where audit is on, that the refusal is in the trail.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

import governed_db
from governed_db.audit import AuditTrail, Signer
from governed_db.audit.reader import iter_records
from governed_db.testing import RecordingGovernor

KEY = Signer.generate()
INJECTION = "; drop table orders; --"


@pytest.fixture
def dsn(pg_dsn: str) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("create table orders (id int primary key, note text)")
        conn.execute("insert into orders select g, 'n' || g from generate_series(1, 5) g")
    return pg_dsn


@pytest.fixture
def trail(tmp_path: Path) -> Any:
    t = AuditTrail.from_settings(
        {"path": str(tmp_path / "audit"), "durability": "strict"}, signer=KEY
    )
    yield t
    t.close()


def _records(trail: Any, tmp_path: Path) -> list[dict[str, Any]]:
    trail.flush()
    return list(iter_records(tmp_path / "audit"))


def _prod(dsn: str, **kwargs: Any) -> Any:
    kwargs.setdefault("autocommit", True)
    return governed_db.connect(dsn, environment="prod", identity="agent:test", **kwargs)


def _orders_exist(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select to_regclass('orders') is not null").fetchone()
        return bool(row and row[0])


# -- 1. client-side merging: decide on the merged text -------------------------------


@pytest.mark.parametrize(
    ("query", "params"),
    [
        ("select * from orders where note = '%s'", [INJECTION]),
        ("select * from orders where note = '%s'", ["x' ; drop table orders; --"]),
        ("select * from orders where note = E'%s'", [INJECTION]),
        ("select * from orders where note = '%(n)s'", {"n": INJECTION}),
        ("select * from orders where id = %s -- '%s'", [1, "\n; drop table orders"]),
        ("select * from orders where note = $$%s$$", ["$$; drop table orders; --"]),
        ('select * from orders where "%s" = 1', ['"; drop table orders; --']),
    ],
)
def test_client_cursor_injection_is_decided_on_merged_text(
    dsn: str, query: str, params: Any
) -> None:
    with _prod(dsn, cursor_factory=psycopg.ClientCursor) as conn:
        with pytest.raises((governed_db.PolicyViolation, psycopg.errors.SyntaxError)) as info:
            conn.cursor().execute(query, params)
        if isinstance(info.value, governed_db.PolicyViolation):
            assert info.value.rule_id in {"drop-truncate-in-prod", "opaque-needs-approval-in-prod"}
    assert _orders_exist(dsn)


def test_governed_client_cursor_class_and_executemany(dsn: str) -> None:
    with _prod(dsn) as conn:
        cur = governed_db.ClientCursor(conn)
        with pytest.raises(governed_db.PolicyViolation):
            cur.executemany("update orders set note = '%s' where id = 1", [["ok"], [INJECTION]])
        # Nothing of the batch ran: the second merge was decided before the first was sent.
        assert conn.execute("select note from orders where id = 1").fetchone() == ("n1",)
    assert _orders_exist(dsn)


@pytest.mark.parametrize("factory", [psycopg.Cursor, psycopg.ClientCursor, psycopg.RawCursor])
def test_copy_with_params_is_decided_on_merged_text(dsn: str, factory: Any) -> None:
    with _prod(dsn, cursor_factory=factory) as conn:
        cur = conn.cursor()
        with pytest.raises((governed_db.PolicyViolation, psycopg.Error)):
            with cur.copy("copy (select * from orders where note = '%s') to stdout", [INJECTION]):
                pass
    assert _orders_exist(dsn)


def test_double_percent_is_decided_as_the_server_reads_it(dsn: str) -> None:
    seen: list[str] = []

    def record(call: governed_db.Call) -> None:
        seen.append(call.query)

    def refuse(call: governed_db.Call) -> None:
        record(call)

    gov = RecordingGovernor(refuse=refuse)
    with governed_db.connect(dsn, governor=gov) as conn:
        assert conn.execute("select 7 %% 4, %s::int", (1,)).fetchone() == (3, 1)
        cur = governed_db.ClientCursor(conn)
        assert cur.execute("select 7 %% 4, %s::int", (2,)).fetchone() == (3, 2)
        assert conn.execute("select '100%%'").fetchone() == ("100%%",)  # no params: as is
    assert seen == ["select 7 % 4, $1::int", "select 7 % 4, 2::int", "select '100%%'"]


def test_merged_parameters_are_not_audited_when_parameters_are_off(
    dsn: str, trail: Any, tmp_path: Path
) -> None:
    with governed_db.connect(dsn, audit=trail, cursor_factory=psycopg.ClientCursor) as conn:
        conn.execute("select * from orders where note = %s", ["hunter2-secret"])
    text = str(_records(trail, tmp_path))
    assert "hunter2-secret" not in text
    assert "select * from orders where note = ?" in text or "note = ?" in text


# -- 1. one immutable snapshot ---------------------------------------------------------


class TwoFacedStr(str):
    """Shows one text to Python and encodes another."""

    def encode(self, *args: Any, **kwargs: Any) -> bytes:  # type: ignore[override]
        return b"drop table orders"

    def __str__(self) -> str:
        return "select 1"

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash("select 1")


class TwoFacedBytes(bytes):
    def decode(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        return "select 1"


class TwoFacedSQL(sql.SQL):
    """A Composable that renders differently on each call."""

    calls = 0

    def as_bytes(self, context: Any = None) -> bytes:
        TwoFacedSQL.calls += 1
        return b"select 1" if TwoFacedSQL.calls == 1 else b"drop table orders"

    def as_string(self, context: Any = None) -> str:
        return self.as_bytes(context).decode()


@pytest.mark.parametrize(
    "query",
    [
        TwoFacedStr("drop table orders"),
        TwoFacedBytes(b"drop table orders"),
        bytearray(b"drop table orders"),
        memoryview(b"drop table orders"),
    ],
)
def test_query_subclasses_and_buffers_are_read_as_the_server_reads_them(
    dsn: str, query: Any
) -> None:
    with _prod(dsn) as conn:
        with pytest.raises(governed_db.PolicyViolation):
            conn.execute(query)
        # The decision cache is not fooled by a caller-controlled __eq__/__hash__ either.
        with pytest.raises(governed_db.PolicyViolation):
            conn.execute(query)
    assert _orders_exist(dsn)


def test_composable_rendered_once(dsn: str) -> None:
    TwoFacedSQL.calls = 0
    with _prod(dsn) as conn:
        conn.execute(TwoFacedSQL("ignored"))  # decided and sent as "select 1"
    assert TwoFacedSQL.calls == 1
    assert _orders_exist(dsn)


def test_bytearray_changed_by_another_thread_after_the_check(dsn: str) -> None:
    buf = bytearray(b"select 1 from orders")
    with _prod(dsn) as conn:
        stop = threading.Event()

        def flip() -> None:
            while not stop.is_set():
                buf[:] = b"drop table orders   "
                buf[:] = b"select 1 from orders"

        thread = threading.Thread(target=flip)
        thread.start()
        try:
            for _ in range(200):
                with contextlib.suppress(governed_db.PolicyViolation):
                    conn.execute(buf)
        finally:
            stop.set()
            thread.join()
    assert _orders_exist(dsn)


def test_unreadable_query_types_are_refused(dsn: str) -> None:
    with _prod(dsn) as conn:
        for query in (42, ["drop table orders"], object()):
            with pytest.raises(governed_db.GovernanceError, match="cannot govern") as info:
                conn.execute(query)
            assert info.value.rule_id == "unreadable-query"
        with pytest.raises(governed_db.GovernanceError, match="UTF-8"):
            conn.execute(b"select '\xff'")


# -- 1. session state that changes how text is read -----------------------------------


@pytest.mark.parametrize(
    "options",
    ["-c standard_conforming_strings=off", "-c client_encoding=LATIN1"],
)
def test_connect_refuses_a_session_that_reads_text_differently(dsn: str, options: str) -> None:
    with pytest.raises(governed_db.GovernanceError) as info:
        governed_db.connect(dsn, options=options)
    assert info.value.rule_id == "session-state"


def test_server_default_that_reads_text_differently_is_refused(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as raw:
        dbname = raw.info.dbname
        raw.execute(
            sql.SQL("alter database {} set standard_conforming_strings = off").format(
                sql.Identifier(dbname)
            )
        )
    try:
        with pytest.raises(governed_db.GovernanceError, match="standard_conforming_strings"):
            governed_db.connect(dsn)
    finally:
        with psycopg.connect(dsn, autocommit=True) as raw:
            raw.execute(
                sql.SQL("alter database {} reset standard_conforming_strings").format(
                    sql.Identifier(dbname)
                )
            )


@pytest.mark.parametrize(
    "change",
    [
        "select set_config('standard_conforming_strings', 'off', false)",
        "select set_config('client_encoding', 'LATIN1', false)",
    ],
)
def test_drift_during_the_session_fails_closed(dsn: str, change: str) -> None:
    gov = governed_db.Governor()  # allow-all: the session check is not a policy rule
    with governed_db.connect(dsn, governor=gov, autocommit=True) as conn:
        conn.execute(change)
        with pytest.raises(governed_db.GovernanceError) as info:
            conn.execute("select 1")
        assert info.value.rule_id == "session-state"
        with pytest.raises(governed_db.GovernanceError):
            list(conn.cursor().stream("select 1"))


# -- 2. trust each call, not each class -----------------------------------------------


def _bypass_attempts() -> list[Any]:
    return [
        lambda c: psycopg.Cursor.execute(c.cursor(), "drop table orders"),
        lambda c: psycopg.Cursor.executemany(c.cursor(), "drop table orders", [()]),
        lambda c: list(psycopg.Cursor.stream(c.cursor(), "drop table orders")),
        lambda c: psycopg.Cursor.copy(c.cursor(), "copy (select 1) to stdout").__enter__(),
        lambda c: psycopg.ClientCursor.execute(governed_db.ClientCursor(c), "drop table orders"),
        lambda c: psycopg.RawCursor.execute(governed_db.RawCursor(c), "drop table orders"),
        lambda c: _mixed(c).execute("drop table orders"),
        lambda c: _trusted(c).execute("drop table orders"),
    ]


def _mixed(conn: Any) -> Any:
    from governed_db.driver.cursor import GovernedCursorBase

    class Mixed(GovernedCursorBase, psycopg.Cursor[Any]):
        pass

    return Mixed(conn)


def _trusted(conn: Any) -> Any:
    from governed_db.driver._trusted import TrustedCursor

    return TrustedCursor(conn)


@pytest.mark.parametrize("attempt", _bypass_attempts())
def test_calls_that_skip_admission_are_refused_and_audited(
    dsn: str, trail: Any, tmp_path: Path, attempt: Any
) -> None:
    with governed_db.connect(dsn, audit=trail, environment="prod", autocommit=True) as conn:
        with pytest.raises(governed_db.GovernanceError) as info:
            attempt(conn)
        assert info.value.rule_id == "ungoverned-send"
    assert _orders_exist(dsn)
    refused = [r for r in _records(trail, tmp_path) if r["kind"] == "refused"]
    assert [r["decision"]["rule_id"] for r in refused] == ["ungoverned-send"]


def test_the_old_public_trusted_module_is_gone() -> None:
    with pytest.raises(ImportError):
        __import__("governed_db.trusted")


def test_governor_and_policy_are_immutable(dsn: str) -> None:
    with _prod(dsn) as conn:
        gate = conn.governor
        for name, value in [
            ("policy", None),
            ("identity", governed_db.Identity(kind="human", name="x")),
            ("environment", "dev"),
            ("trail", None),
            ("_policy", None),
        ]:
            with pytest.raises(AttributeError):
                setattr(gate, name, value)
        with pytest.raises(AttributeError):
            conn.governor = governed_db.Governor()
        with pytest.raises((AttributeError, TypeError)):
            gate.policy.guardrails = ()
        with pytest.raises(governed_db.PolicyViolation):
            conn.execute("drop table orders")
    assert _orders_exist(dsn)


# -- 6. drop-in: psycopg's own lookups are governed reads; closed connections ---------


def test_typeinfo_fetch_and_registrations_run_governed(
    dsn: str, trail: Any, tmp_path: Path
) -> None:
    from psycopg.types.composite import CompositeInfo, register_composite
    from psycopg.types.enum import EnumInfo, register_enum

    with psycopg.connect(dsn, autocommit=True) as raw:
        raw.execute("create type mood as enum ('ok', 'sad')")
        raw.execute("create type pair as (a int, b text)")
    with governed_db.connect(dsn, audit=trail, environment="prod") as conn:
        assert psycopg.types.TypeInfo.fetch(conn, "text") is not None
        info = EnumInfo.fetch(conn, "mood")
        assert info is not None
        register_enum(info, conn)
        comp = CompositeInfo.fetch(conn, "pair")
        assert comp is not None
        register_composite(comp, conn)
        assert conn.execute("select 'sad'::mood, (1, 'x')::pair").fetchone()[1].b == "x"
    intents = [r for r in _records(trail, tmp_path) if r["kind"] == "intent"]
    assert sum("pg_type" in r.get("db.query.text", "") for r in intents) >= 3


async def test_async_typeinfo_fetch_runs_governed(dsn: str) -> None:
    conn = await governed_db.AsyncConnection.connect(dsn, environment="prod")
    async with conn:
        assert await psycopg.types.TypeInfo.fetch(conn, "int4") is not None


@pytest.mark.parametrize(
    "call",
    [
        lambda c, cur: cur.execute("select 1"),
        lambda c, cur: cur.executemany("select %s", [(1,)]),
        lambda c, cur: list(cur.stream("select 1")),
        lambda c, cur: cur.copy("copy (select 1) to stdout").__enter__(),
        lambda c, cur: c.execute("select 1"),
        lambda c, cur: c.cursor(),
    ],
)
def test_closed_connection_raises_psycopgs_own_error(dsn: str, call: Any) -> None:
    errors = []
    for connect in (psycopg.connect, governed_db.connect):
        conn = connect(dsn)
        cur = conn.cursor()
        conn.close()
        with pytest.raises(psycopg.Error) as info:
            call(conn, cur)
        errors.append((type(info.value), str(info.value)))
    assert errors[0] == errors[1]
    assert errors[1][0] is psycopg.OperationalError


@pytest.mark.parametrize(
    "send",
    [
        lambda p: p.exec_(b"drop table orders"),
        lambda p: p.exec_params(b"drop table orders", []),
        lambda p: p.send_query(b"drop table orders"),
        lambda p: p.send_query_params(b"drop table orders", None),
        lambda p: p.prepare(b"x", b"drop table orders"),
        lambda p: p.send_prepare(b"x", b"drop table orders"),
        lambda p: p.exec_prepared(b"_pg3_0", []),
        lambda p: p.close_prepared(b"_pg3_0"),
    ],
)
def test_raw_libpq_sends_are_refused_and_audited(
    dsn: str, trail: Any, tmp_path: Path, send: Any
) -> None:
    with governed_db.connect(dsn, audit=trail, environment="prod", autocommit=True) as conn:
        pgconn = conn.pgconn
        assert pgconn.status == psycopg.pq.ConnStatus.OK  # reads go through
        assert pgconn.parameter_status(b"client_encoding") == b"UTF8"
        with pytest.raises(governed_db.GovernanceError) as info:
            send(pgconn)
        assert info.value.rule_id == "ungoverned-send"
        assert conn.execute("select count(*) from orders").fetchone() == (5,)
    assert _orders_exist(dsn)
    refused = [r for r in _records(trail, tmp_path) if r["kind"] == "refused"]
    assert [r["decision"]["rule_id"] for r in refused] == ["ungoverned-send"]


def test_pool_on_governed_connections_still_works(dsn: str) -> None:
    from psycopg_pool import ConnectionPool

    with ConnectionPool(
        dsn, connection_class=governed_db.Connection, min_size=1, max_size=2, open=True
    ) as pool:
        pool.check()
        with pool.connection() as conn:
            assert conn.execute("select count(*) from orders").fetchone() == (5,)


@pytest.mark.parametrize(
    "extra",
    [{"identity": "robot:x"}, {"identity": "agent:x"}, {"environment": "prod"}, {"policy": {}}],
)
def test_governor_with_other_governance_keywords_is_an_error(dsn: str, extra: Any) -> None:
    with pytest.raises(TypeError, match="either governor="):
        governed_db.connect(dsn, governor=governed_db.Governor(), **extra)


class _EvilInt(psycopg.adapt.Dumper):
    oid = 0

    def dump(self, obj: Any) -> bytes:
        return b"1"

    def quote(self, obj: Any) -> bytes:
        return b'1 FROM "c"; DROP TABLE orders; --'


@pytest.mark.parametrize(
    "attempt",
    [
        lambda cur: cur.fetchmany(1),
        lambda cur: cur.fetchone(),
        lambda cur: cur.scroll(1),
    ],
)
def test_a_dumper_cannot_smuggle_sql_into_psycopgs_own_commands(dsn: str, attempt: Any) -> None:
    conn = governed_db.connect(dsn, environment="prod", identity="agent:x")
    try:
        cur = conn.cursor("c", scrollable=True)
        cur.execute("select 1")
        conn.adapters.register_dumper(int, _EvilInt)
        with pytest.raises(governed_db.GovernanceError) as info:
            attempt(cur)
        assert info.value.rule_id == "unsafe-internal-command"
        conn.rollback()
        cur.close()
    finally:
        conn.close()
    assert _orders_exist(dsn)


@pytest.mark.parametrize(
    "reach",
    [
        lambda c: c.info.pgconn,
        lambda c: c.transaction().__enter__().pgconn,
        lambda c: c.pipeline().__enter__().pgconn,
        lambda c: c.pgconn,
    ],
)
def test_psycopg_helper_objects_do_not_hand_out_libpq(dsn: str, reach: Any) -> None:
    conn = governed_db.connect(dsn, environment="prod", identity="agent:x")
    try:
        handle = reach(conn)
        assert handle.status == psycopg.pq.ConnStatus.OK  # reads go through
        with pytest.raises(governed_db.GovernanceError) as info:
            handle.exec_(b"drop table orders")
        assert info.value.rule_id == "ungoverned-send"
    finally:
        conn.close()
    assert _orders_exist(dsn)


async def test_async_helper_objects_do_not_hand_out_libpq(dsn: str) -> None:
    conn = await governed_db.AsyncConnection.connect(dsn, environment="prod")
    async with conn:
        async with conn.transaction() as tx:
            with pytest.raises(governed_db.GovernanceError):
                tx.pgconn.send_query(b"drop table orders")
        async with conn.pipeline() as p:
            with pytest.raises(governed_db.GovernanceError):
                p.pgconn.exec_(b"drop table orders")
            await conn.execute("select 1")
    assert _orders_exist(dsn)


@pytest.mark.parametrize("claimed", ["human:alice", "service:etl", "ci:build"])
def test_an_agent_cannot_act_as_a_less_supervised_actor(
    dsn: str, trail: Any, tmp_path: Path, claimed: str
) -> None:
    with governed_db.connect(dsn, environment="prod", identity="agent:x", audit=trail) as conn:
        with (
            governed_db.acting_as(governed_db.Identity.parse(claimed)),
            pytest.raises(governed_db.GovernanceError) as info,
        ):
            conn.execute("select 1")
        assert info.value.rule_id == "identity-escalation"
        with governed_db.acting_as(governed_db.Identity.parse("agent:helper")):
            assert conn.execute("select 1").fetchone() == (1,)
    refused = [r for r in _records(trail, tmp_path) if r["kind"] == "refused"]
    assert [r["decision"]["rule_id"] for r in refused] == ["identity-escalation"]
