"""The floor of any driver-level gate: psycopg with pass-through overrides, doing nothing.

governed_db checks each call at the points psycopg offers: the cursor's
``execute``, the query conversion, the send calls, the generator handed to
``Connection.wait``, the row maker and ``pgconn``. This connection overrides
the same points with methods that only call psycopg's own, so its ratio to
raw psycopg is what the hooks cost before any checking is done.
"""

from __future__ import annotations

import sys
from typing import Any

import psycopg


class HookCursor(psycopg.Cursor[Any]):
    """psycopg's cursor, with governed_db's hook points overridden by pass-throughs."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        return super().execute(query, params, **kwargs)

    def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
        super().executemany(query, params_seq, **kwargs)

    def _convert_query(self, query: Any, params: Any = None) -> Any:
        return super()._convert_query(query, params)

    def _execute_send(self, query: Any, **kwargs: Any) -> None:
        super()._execute_send(query, **kwargs)

    def _send_query_prepared(self, name: bytes, pgq: Any, **kwargs: Any) -> None:
        super()._send_query_prepared(name, pgq, **kwargs)

    def _execute_gen(self, *args: Any, **kwargs: Any) -> Any:
        return super()._execute_gen(*args, **kwargs)

    def _make_row_maker(self) -> Any:
        return super()._make_row_maker()

    def fetchone(self) -> Any:
        return super().fetchone()

    def fetchall(self) -> Any:
        return super().fetchall()


class HookConnection(psycopg.Connection[Any]):
    """psycopg's connection, with ``wait`` and ``pgconn`` overridden by pass-throughs."""

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        return super().wait(gen, interval, timeout)

    @property
    def pgconn(self) -> Any:
        sys._getframe(1)  # governed_db looks at its caller's module here
        return self._hook_pgconn

    @pgconn.setter
    def pgconn(self, value: Any) -> None:
        self._hook_pgconn = value


def connect(dsn: str) -> HookConnection:
    """A connection whose cursors are ``HookCursor``."""
    return HookConnection.connect(dsn, cursor_factory=HookCursor)
