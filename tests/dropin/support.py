"""What the drop-in suite compares: one namespace per implementation, and exact raises.

Every test in ``tests/dropin`` runs once with ``psycopg``'s own classes and once
with ``governed_db``'s, and asserts the same observable behaviour. psycopg's run
checks the expectation; governed_db's run checks the drop-in.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import psycopg
import pytest

import governed_db


@dataclass(frozen=True)
class Impl:
    """The classes a test uses, from psycopg or from governed_db."""

    name: str
    module: ModuleType
    Connection: Any
    AsyncConnection: Any
    Cursor: Any
    ClientCursor: Any
    RawCursor: Any
    ServerCursor: Any
    RawServerCursor: Any
    AsyncCursor: Any
    AsyncClientCursor: Any
    AsyncRawCursor: Any
    AsyncServerCursor: Any
    AsyncRawServerCursor: Any


_CLASSES = (
    "Connection",
    "AsyncConnection",
    "Cursor",
    "ClientCursor",
    "RawCursor",
    "ServerCursor",
    "RawServerCursor",
    "AsyncCursor",
    "AsyncClientCursor",
    "AsyncRawCursor",
    "AsyncServerCursor",
    "AsyncRawServerCursor",
)

IMPLS = {
    name: Impl(name, module, **{cls: getattr(module, cls) for cls in _CLASSES})
    for name, module in (("psycopg", psycopg), ("governed", governed_db))
}


@contextmanager
def raises_exactly(
    cls: type[BaseException], match: str | None = None, sqlstate: str | None = None
) -> Iterator[pytest.ExceptionInfo[Any]]:
    """``pytest.raises`` that also wants the exact class (not a subclass) and SQLSTATE.

    A different class that is not a subclass of ``cls`` propagates unchanged,
    so the report shows governed_db's own traceback.
    """
    with pytest.raises(cls, match=match) as info:
        yield info
    assert type(info.value) is cls, f"raised {type(info.value)!r}, psycopg raises {cls!r}"
    if sqlstate is not None:
        assert getattr(info.value, "sqlstate", None) == sqlstate


def terminate_backend(conn: Any, dsn: str) -> None:
    """Kill ``conn``'s server process from another connection and wait until it is gone."""
    pid = conn.info.backend_pid
    with psycopg.connect(dsn, autocommit=True) as killer:
        killer.execute("select pg_terminate_backend(%s)", (pid,))
        for _ in range(200):
            cur = killer.execute("select 1 from pg_stat_activity where pid = %s", (pid,))
            if cur.fetchone() is None:
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} did not terminate")


def closed_error() -> Any:
    """What psycopg raises for any operation on a closed connection."""
    return raises_exactly(psycopg.OperationalError, match="^the connection is closed$")
