"""Governed cursor classes: psycopg's cursors with the gate in front.

Each mixin overrides the public entry points (``execute``, ``executemany``,
``stream``, ``copy``) to call the connection's governor before anything is
sent, and psycopg's ``_make_row_maker`` so every result's row maker passes
through ``Governor.shape_rows`` once. ``row_factory`` keeps reading back as
what the user set. The async twins are in ``cursor_async``; combining a
user's own cursor class with the right mixin is ``cursor_factory``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    contextmanager,
    nullcontext,
)
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import pq, sql

from governed_db.errors import GovernanceError
from governed_db.explain import estimate_rows, estimate_rows_async
from governed_db.governor import EstimateNeeded
from governed_db.guards import guarded, guarded_async

if TYPE_CHECKING:
    from governed_db.governor import Governor, Session, Ticket

__all__ = [
    "ClientCursor",
    "Cursor",
    "GovernedCursorBase",
    "GovernedCursorMixin",
    "GovernedServerCursorMixin",
    "RawCursor",
    "RawServerCursor",
    "ServerCursor",
    "render_query",
]

try:  # Python >= 3.14 template strings, which psycopg >= 3.3 accepts as queries
    Template: Any = importlib.import_module("string.templatelib").Template
except ImportError:
    Template = None


def render_query(query: Any, conn: Any) -> str:
    """The text of ``query`` as the server will receive it (before parameters)."""
    if isinstance(query, str):
        return query
    if isinstance(query, bytes | bytearray | memoryview):
        return bytes(query).decode(conn.info.encoding, errors="replace")
    if isinstance(query, sql.Composable):
        return query.as_string(conn)
    if Template is not None and isinstance(query, Template):
        return str(sql.as_string(query, conn))
    raise GovernanceError(
        f"cannot read a query of type {type(query).__name__!r}; "
        "pass a str, bytes or psycopg.sql object (refused: a statement that "
        "cannot be read cannot be governed)"
    )


_NO_GUARD: nullcontext[None] = nullcontext()
_TUPLES_OK = pq.ExecStatus.TUPLES_OK


def _one_param_set(method: str, params: Any) -> Any:
    if method == "executemany":
        return params[0] if params else None
    return params


class GovernedCursorBase:
    """The calls into the governor shared by every governed cursor."""

    __slots__ = ()

    _conn: Any
    _row_factory: Any
    _make_row: Any
    rowcount: int
    pgresult: Any

    _gov_cursor_name: str | None = None

    def _gov(self) -> tuple[Governor, Session]:
        state = getattr(self._conn, "_gov_state", None)
        if state is None:
            raise GovernanceError(
                "this connection has no governor: open it with governed_db.connect() "
                "or governed_db.Connection.connect() (refused, fail closed)"
            )
        return state  # type: ignore[no-any-return]

    def _admit(self, method: str, query: Any, params: Any) -> Ticket | None:
        governor, session = self._gov()
        text = query if type(query) is str else render_query(query, self._conn)
        try:
            return governor.admit(session, method, text, params, self._gov_cursor_name)
        except EstimateNeeded:
            rows = estimate_rows(self, text, _one_param_set(method, params))
            return governor.admit(session, method, text, params, self._gov_cursor_name, rows)

    async def _admit_async(self, method: str, query: Any, params: Any) -> Ticket | None:
        governor, session = self._gov()
        text = query if type(query) is str else render_query(query, self._conn)
        try:
            return governor.admit(session, method, text, params, self._gov_cursor_name)
        except EstimateNeeded:
            rows = await estimate_rows_async(self, text, _one_param_set(method, params))
            return governor.admit(session, method, text, params, self._gov_cursor_name, rows)

    def _settle(self, ticket: Ticket | None, error: BaseException | None) -> None:
        if ticket is not None:
            res = self.pgresult
            rows = res.ntuples if res is not None and res.status == _TUPLES_OK else None
            self._gov()[0].settle(ticket, self.rowcount, error, rows)

    def _guard(self, ticket: Ticket | None) -> AbstractContextManager[None]:
        if ticket is None or not ticket.guarded:
            return _NO_GUARD
        return guarded(self, ticket, self._gov()[0])

    def _guard_async(self, ticket: Ticket | None) -> AbstractAsyncContextManager[None]:
        if ticket is None or not ticket.guarded:
            return _NO_GUARD
        return guarded_async(self, ticket, self._gov()[0])

    def _refuse_guarded_stream(self, ticket: Ticket | None) -> Ticket | None:
        if ticket is not None and ticket.guarded:
            error = GovernanceError(
                "a row limit or DDL lock timeout applies to this statement and stream() "
                "cannot enforce it (rows would reach you before the count is known); "
                "refused, fail closed: use execute() instead"
            )
            self._settle(ticket, error)
            raise error
        return ticket

    def _make_row_maker(self) -> Any:
        governor, _ = self._gov()
        return governor.shape_rows(self, self._row_factory(self))

    @property
    def row_factory(self) -> Any:
        """Writable: how result rows are formed (reads back as what was set)."""
        return self._row_factory

    @row_factory.setter
    def row_factory(self, row_factory: Any) -> None:
        self._row_factory = row_factory
        if getattr(self, "pgresult", None):
            self._make_row = self._make_row_maker()


class GovernedCursorMixin(GovernedCursorBase):
    """Gate for client-side cursors (``Cursor``, ``ClientCursor``, ``RawCursor``)."""

    __slots__ = ()

    #: ``Call.method`` for ``execute``: named cursors DECLARE instead.
    _gov_execute_method = "execute"

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        ticket = self._admit(self._gov_execute_method, query, params)
        try:
            with self._guard(ticket):
                result = super().execute(query, params, **kwargs)  # type: ignore[misc]
        except BaseException as exc:
            self._settle(ticket, exc)
            raise
        self._settle(ticket, None)
        return result

    def executemany(self, query: Any, params_seq: Iterable[Any], **kwargs: Any) -> None:
        if not isinstance(params_seq, list | tuple):
            params_seq = list(params_seq)
        ticket = self._admit("executemany", query, params_seq)
        try:
            with self._guard(ticket):
                super().executemany(query, params_seq, **kwargs)  # type: ignore[misc]
        except BaseException as exc:
            self._settle(ticket, exc)
            raise
        self._settle(ticket, None)

    def stream(self, query: Any, params: Any = None, **kwargs: Any) -> Iterator[Any]:
        ticket = self._refuse_guarded_stream(self._admit("stream", query, params))
        error: BaseException | None = None
        try:
            yield from super().stream(query, params, **kwargs)  # type: ignore[misc]
        except GeneratorExit:
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._settle(ticket, error)

    @contextmanager
    def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> Iterator[Any]:
        ticket = self._admit("copy", statement, params)
        error: BaseException | None = None
        try:
            with self._guard(ticket), super().copy(statement, params, **kwargs) as copy:  # type: ignore[misc]
                yield copy
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._settle(ticket, error)


class GovernedServerCursorMixin(GovernedCursorMixin):
    """Gate for named (server-side) cursors: ``execute`` is a DECLARE.

    psycopg's named cursors also inherit ``stream``, ``copy`` and
    ``executemany`` from the client cursor; they pass the same gate.
    """

    __slots__ = ()

    _gov_execute_method = "declare"

    @property
    def _gov_cursor_name(self) -> str | None:  # type: ignore[override]
        return self._name  # type: ignore[attr-defined, no-any-return]


class Cursor(GovernedCursorMixin, psycopg.Cursor[Any]):
    """``psycopg.Cursor`` with the gate."""

    __module__ = "governed_db"


class ClientCursor(GovernedCursorMixin, psycopg.ClientCursor[Any]):
    """``psycopg.ClientCursor`` (client-side binding) with the gate."""

    __module__ = "governed_db"


class RawCursor(GovernedCursorMixin, psycopg.RawCursor[Any]):
    """``psycopg.RawCursor`` ($1 placeholders) with the gate."""

    __module__ = "governed_db"


class ServerCursor(GovernedServerCursorMixin, psycopg.ServerCursor[Any]):
    """``psycopg.ServerCursor`` (named cursor) with the gate."""

    __module__ = "governed_db"


class RawServerCursor(GovernedServerCursorMixin, psycopg.RawServerCursor[Any]):
    """``psycopg.RawServerCursor`` with the gate."""

    __module__ = "governed_db"
