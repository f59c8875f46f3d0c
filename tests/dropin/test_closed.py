"""Every method of a closed (or broken) connection: exactly psycopg's errors.

psycopg raises ``OperationalError("the connection is closed")`` for anything
that needs the server, and lets the rest (close, cancel, fetching results
already received, ...) work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import pq
from psycopg.types import TypeInfo

from .support import Impl, closed_error, raises_exactly, terminate_backend

Op = Callable[[Any], Any]


def _enter(cm: Any) -> Any:
    return cm.__enter__()


# Operations that need the server: OperationalError "the connection is closed".
REFUSED: dict[str, Op] = {
    "cursor": lambda c: c.cursor(),
    "named_cursor": lambda c: c.cursor("n"),
    "execute": lambda c: c.execute("select 1"),
    "execute_prepare": lambda c: c.execute("select 1", prepare=True),
    "commit": lambda c: c.commit(),
    "rollback": lambda c: c.rollback(),
    "transaction": lambda c: _enter(c.transaction()),
    "pipeline": lambda c: _enter(c.pipeline()),
    "set_autocommit": lambda c: c.set_autocommit(True),
    "autocommit_attr": lambda c: setattr(c, "autocommit", True),
    "isolation_level": lambda c: setattr(c, "isolation_level", 4),
    "read_only": lambda c: setattr(c, "read_only", True),
    "deferrable": lambda c: c.set_deferrable(True),
    "notifies": lambda c: list(c.notifies(timeout=0.1)),
    "fileno": lambda c: c.fileno(),
    "tpc_begin": lambda c: c.tpc_begin("x"),
    "tpc_recover": lambda c: c.tpc_recover(),
    "typeinfo_fetch": lambda c: TypeInfo.fetch(c, "text"),
    "info_dbname": lambda c: c.info.dbname,
    "info_backend_pid": lambda c: c.info.backend_pid,
    "info_parameter_status": lambda c: c.info.parameter_status("server_version"),
    "cur_execute": lambda c: c.test_cursor.execute("select 1"),
    "cur_executemany": lambda c: c.test_cursor.executemany("select %s", [(1,)]),
    "cur_stream": lambda c: list(c.test_cursor.stream("select 1")),
    "cur_copy": lambda c: _enter(c.test_cursor.copy("copy (select 1) to stdout")),
    "client_cursor_execute": lambda c: c.test_client_cursor.execute("select %s", [1]),
    "client_cursor_copy_params": lambda c: _enter(
        c.test_client_cursor.copy("copy (select %s) to stdout", [1])
    ),
    "raw_cursor_execute": lambda c: c.test_raw_cursor.execute("select $1", [1]),
    "server_cursor_execute": lambda c: c.test_server_cursor.execute("select 1"),
}

# Operations psycopg allows on a closed connection, and what they give.
ALLOWED: dict[str, tuple[Op, Any]] = {
    "close": (lambda c: c.close(), None),
    "cancel": (lambda c: c.cancel(), None),
    "cancel_safe": (lambda c: c.cancel_safe(), None),
    "closed": (lambda c: c.closed, True),
    "broken": (lambda c: c.broken, False),
    "autocommit_get": (lambda c: c.autocommit, False),
    "transaction_status": (lambda c: c.info.transaction_status, pq.TransactionStatus.UNKNOWN),
    "info_encoding": (lambda c: c.info.encoding, "utf-8"),
    "xid": (lambda c: tuple(c.xid(1, "a", "b"))[:3], (1, "a", "b")),
    "cur_fetchone": (lambda c: c.test_cursor.fetchone(), (1,)),
    "cur_fetchall": (lambda c: c.test_cursor.fetchall(), [(1,)]),
    "cur_description": (lambda c: [col.name for col in c.test_cursor.description], ["one"]),
    "cur_rowcount": (lambda c: c.test_cursor.rowcount, 1),
    "cur_closed": (lambda c: c.test_cursor.closed, False),
    "cur_close": (lambda c: c.test_cursor.close(), None),
    "add_notice_handler": (lambda c: c.add_notice_handler(print), None),
    "prepare_threshold": (lambda c: c.prepare_threshold, 5),
}


def _with_cursors(conn: Any, impl: Impl) -> Any:
    conn.test_cursor = conn.cursor()
    conn.test_cursor.execute("select 1 as one")
    conn.test_client_cursor = impl.ClientCursor(conn)
    conn.test_raw_cursor = impl.RawCursor(conn)
    conn.test_server_cursor = conn.cursor("srv")
    return conn


@pytest.fixture
def closed(connect: Any, impl: Impl) -> Iterator[Any]:
    """A closed connection, with cursors made while it was open."""
    conn = _with_cursors(connect(), impl)
    conn.close()
    yield conn
    conn.test_server_cursor.close()


@pytest.fixture
def broken(connect: Any, impl: Impl, dsn: str) -> Iterator[Any]:
    """A connection whose backend was terminated (found out by one failed execute)."""
    conn = _with_cursors(connect(), impl)
    terminate_backend(conn, dsn)
    with pytest.raises(psycopg.OperationalError):
        conn.execute("select 1")
    assert conn.broken
    yield conn
    conn.test_server_cursor.close()


@pytest.mark.parametrize("op", list(REFUSED))
def test_closed_connection_refuses(closed: Any, op: str) -> None:
    with closed_error():
        REFUSED[op](closed)


@pytest.mark.parametrize("op", list(ALLOWED))
def test_closed_connection_allows(closed: Any, op: str) -> None:
    func, expected = ALLOWED[op]
    assert func(closed) == expected


def test_closed_by_context_manager(connect: Any, impl: Impl) -> None:
    with connect() as conn:
        cur = conn.cursor()
    assert conn.closed
    with closed_error():
        cur.execute("select 1")
    with closed_error():
        conn.execute("select 1")


# psycopg's message on a broken connection: "closed" from the connection's own
# check, "lost" from the cursor's and from commit/rollback.
BROKEN_MESSAGES = {
    "execute": "the connection is closed",
    "cursor": "the connection is closed",
    "cur_execute": "the connection is lost",
    "cur_executemany": "the connection is lost",
    "cur_stream": "the connection is lost",
    "cur_copy": "the connection is lost",
    "server_cursor_execute": "the connection is lost",
    "commit": "the connection is lost",
    "rollback": "the connection is lost",
}


@pytest.mark.parametrize("op", list(BROKEN_MESSAGES))
def test_broken_connection_refuses(broken: Any, op: str) -> None:
    with raises_exactly(psycopg.OperationalError, match=f"^{BROKEN_MESSAGES[op]}$"):
        REFUSED[op](broken)


def test_closed_cursor_on_closed_connection(connect: Any) -> None:
    conn = connect()
    cur = conn.cursor()
    cur.close()
    conn.close()
    with closed_error():  # the connection is checked first
        cur.execute("select 1")
