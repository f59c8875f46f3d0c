"""The async twins of the governed cursors (see ``governed_db.cursor``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import psycopg

from governed_db.cursor import GovernedCursorBase

__all__ = [
    "AsyncClientCursor",
    "AsyncCursor",
    "AsyncGovernedCursorMixin",
    "AsyncGovernedServerCursorMixin",
    "AsyncRawCursor",
    "AsyncRawServerCursor",
    "AsyncServerCursor",
]


class AsyncGovernedCursorMixin(GovernedCursorBase):
    """Gate for async client-side cursors."""

    __slots__ = ()

    #: ``Call.method`` for ``execute``: named cursors DECLARE instead.
    _gov_execute_method = "execute"

    async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        ticket = await self._admit_async(self._gov_execute_method, query, params)
        try:
            async with self._guard_async(ticket):
                result = await super().execute(query, params, **kwargs)  # type: ignore[misc]
        except BaseException as exc:
            self._settle(ticket, exc)
            raise
        self._settle(ticket, None)
        return result

    async def executemany(self, query: Any, params_seq: Iterable[Any], **kwargs: Any) -> None:
        if not isinstance(params_seq, list | tuple):
            params_seq = list(params_seq)
        ticket = await self._admit_async("executemany", query, params_seq)
        try:
            async with self._guard_async(ticket):
                await super().executemany(query, params_seq, **kwargs)  # type: ignore[misc]
        except BaseException as exc:
            self._settle(ticket, exc)
            raise
        self._settle(ticket, None)

    async def stream(self, query: Any, params: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        ticket = self._refuse_guarded_stream(await self._admit_async("stream", query, params))
        error: BaseException | None = None
        try:
            async for row in super().stream(query, params, **kwargs):  # type: ignore[misc]
                yield row
        except GeneratorExit:
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._settle(ticket, error)

    @asynccontextmanager
    async def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        ticket = await self._admit_async("copy", statement, params)
        error: BaseException | None = None
        try:
            async with (
                self._guard_async(ticket),
                super().copy(statement, params, **kwargs) as copy,  # type: ignore[misc]
            ):
                yield copy
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._settle(ticket, error)


class AsyncGovernedServerCursorMixin(AsyncGovernedCursorMixin):
    """Gate for async named cursors (``stream``/``copy`` included, as for sync)."""

    __slots__ = ()

    _gov_execute_method = "declare"

    @property
    def _gov_cursor_name(self) -> str | None:  # type: ignore[override]
        return self._name  # type: ignore[attr-defined, no-any-return]


class AsyncCursor(AsyncGovernedCursorMixin, psycopg.AsyncCursor[Any]):
    """``psycopg.AsyncCursor`` with the gate."""

    __module__ = "governed_db"


class AsyncClientCursor(AsyncGovernedCursorMixin, psycopg.AsyncClientCursor[Any]):
    """``psycopg.AsyncClientCursor`` with the gate."""

    __module__ = "governed_db"


class AsyncRawCursor(AsyncGovernedCursorMixin, psycopg.AsyncRawCursor[Any]):
    """``psycopg.AsyncRawCursor`` with the gate."""

    __module__ = "governed_db"


class AsyncServerCursor(AsyncGovernedServerCursorMixin, psycopg.AsyncServerCursor[Any]):
    """``psycopg.AsyncServerCursor`` with the gate."""

    __module__ = "governed_db"


class AsyncRawServerCursor(AsyncGovernedServerCursorMixin, psycopg.AsyncRawServerCursor[Any]):
    """``psycopg.AsyncRawServerCursor`` with the gate."""

    __module__ = "governed_db"
