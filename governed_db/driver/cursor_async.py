"""The async twins of the governed cursors (see ``governed_db.driver.cursor``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import psycopg.errors

from governed_db.driver.copy_columns import copy_columns_async
from governed_db.driver.copy_out import (
    AsyncCheckedCopy,
    AsyncMaskedCopy,
    copy_in_memory,
    copy_out_plan,
    copy_out_shape,
)
from governed_db.driver.cursor import (
    _END,
    GovernedCursorBase,
    _guarded_ticket,
    _table_names,
)
from governed_db.driver.wire import WireCheckedServer

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
        plan, tickets = await self._admit_async(self._gov_execute_method, query, params)
        if len(tickets) == 1 and tickets[0] is None:  # a gate with nothing to guard or settle
            self._gov_pass = plan.admission
            try:
                return await super().execute(plan.admission.query, params, **kwargs)  # type: ignore[misc]
            finally:
                self._gov_pass = None
        await self._gov_prefetch_async(tickets)
        pending = self._gov_expect(tickets) if _guarded_ticket(tickets) is None else None
        self._gov_pass = plan.admission
        try:
            async with self._guard_async(tickets):
                result = await super().execute(plan.admission.query, params, **kwargs)  # type: ignore[misc]
        except BaseException as exc:
            self._gov_failed(pending, tickets, exc)
            raise
        finally:
            self._gov_pass = None
        if pending is None:
            self._settle(tickets, None)
            await self._gov_resolve_late_async()
        return result

    async def executemany(self, query: Any, params_seq: Iterable[Any], **kwargs: Any) -> None:
        if not isinstance(params_seq, list | tuple):
            params_seq = list(params_seq)
        plan, tickets = await self._admit_async("executemany", query, params_seq)
        await self._gov_prefetch_async(tickets)
        pending = None if kwargs.get("returning") else self._gov_expect(tickets, len(params_seq))
        self._gov_pass = plan.admission
        try:
            async with self._guard_async(tickets):
                await super().executemany(plan.admission.query, params_seq, **kwargs)  # type: ignore[misc]
        except BaseException as exc:
            self._gov_failed(pending, tickets, exc)
            raise
        finally:
            self._gov_pass = None
        if pending is None:
            self._settle(tickets, None)

    async def stream(self, query: Any, params: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        plan, tickets = await self._admit_async("stream", query, params)
        self._refuse_guarded_stream(tickets)
        await self._gov_prefetch_async(tickets)
        error: BaseException | None = None
        running = self._gov_running(tickets)
        self._gov_pass = plan.admission
        try:
            async for row in super().stream(plan.admission.query, params, **kwargs):  # type: ignore[misc]
                yield row
        except GeneratorExit:
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._gov_pass = None
            self._gov_done(running, tickets, error)

    async def fetchone(self) -> Any:
        """psycopg's ``fetchone``; a result that needs masking is masked a batch ahead."""
        if self._gov_bulk is None:
            return await super().fetchone()  # type: ignore[misc]
        await self._fetch_pipeline()  # type: ignore[attr-defined]
        row = self._gov_next_masked(self._check_result_for_fetch())  # type: ignore[attr-defined]
        return None if row is _END else row

    def __aiter__(self) -> Any:
        # psycopg's own iteration when nothing is masked (no cost per row); else batches
        return self if self._gov_bulk is None else self._gov_aiter()

    async def _gov_aiter(self) -> AsyncIterator[Any]:
        while True:
            if self._gov_bulk is None:  # the row factory or the result changed
                try:
                    row = await super().__anext__()  # type: ignore[misc]
                except StopAsyncIteration:
                    return
                yield row
                continue
            await self._fetch_pipeline()  # type: ignore[attr-defined]
            res = self._check_result_for_fetch()  # type: ignore[attr-defined]
            ahead = self._gov_ahead(res)
            if ahead is None:
                return
            for row in self._gov_yield_from(res, *ahead):
                yield row

    async def fetchall(self) -> list[Any]:
        """psycopg's ``fetchall``; a result that needs masking is masked in one pass."""
        if self._gov_bulk is None:
            return await super().fetchall()  # type: ignore[misc, no-any-return]
        await self._fetch_pipeline()  # type: ignore[attr-defined]
        return self._gov_masked_rows(self._check_result_for_fetch())  # type: ignore[attr-defined]

    async def fetchmany(self, size: int = 0) -> list[Any]:
        """psycopg's ``fetchmany``; a result that needs masking is masked a batch at a time."""
        if self._gov_bulk is None:
            return await super().fetchmany(size)  # type: ignore[misc, no-any-return]
        await self._fetch_pipeline()  # type: ignore[attr-defined]
        res = self._check_result_for_fetch()  # type: ignore[attr-defined]
        return self._gov_masked_rows(res, size or self.arraysize)  # type: ignore[attr-defined]

    @asynccontextmanager
    async def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        plan, tickets = await self._admit_async("copy", statement, params)
        await self._gov_prefetch_async(tickets)
        error: BaseException | None = None
        running = self._gov_running(tickets)
        shape = copy_out_shape(self, tickets)
        try:
            columns = await copy_columns_async(self, shape) if shape is not None else None
        except BaseException as exc:
            self._gov_done(running, tickets, exc)
            raise
        self._gov_pass = plan.admission
        try:
            async with self._guard_async(tickets):
                # psycopg's own copy(), with the Copy class chosen by masking.
                try:
                    async with self._conn.lock:
                        await self._conn.wait(self._start_copy_gen(plan.admission.query, params))
                        self._gov_pass = None
                        mask, refusal = copy_out_plan(self, _table_names(tickets), shape, columns)
                        memory = copy_in_memory(self)
                        cls = (
                            AsyncMaskedCopy
                            if mask is not None
                            else AsyncCheckedCopy
                            if memory is not None
                            else psycopg.AsyncCopy
                        )
                        async with cls(self, **kwargs) as copy:  # type: ignore[arg-type]
                            if refusal is not None:
                                self._gov_refused(refusal)
                            if mask is not None:
                                copy._gov_mask = mask  # type: ignore[attr-defined]
                            if memory is not None:
                                copy._gov_memory = memory  # type: ignore[attr-defined]
                            yield copy
                except psycopg.errors._NO_TRACEBACK as ex:
                    raise ex.with_traceback(None)  # noqa: B904
                self._select_current_result(0)  # type: ignore[attr-defined]
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._gov_pass = None
            self._gov_done(running, tickets, error)


class AsyncGovernedServerCursorMixin(WireCheckedServer, AsyncGovernedCursorMixin):
    """Gate for async named cursors (``stream``/``copy`` included, as for sync)."""

    __slots__ = ()

    _gov_execute_method = "declare"

    async def fetchone(self) -> Any:
        """psycopg's named-cursor ``fetchone``."""
        return await super(AsyncGovernedCursorMixin, self).fetchone()  # type: ignore[misc]

    def __aiter__(self) -> Any:
        return super(AsyncGovernedCursorMixin, self).__aiter__()  # type: ignore[misc]

    async def fetchall(self) -> list[Any]:
        """psycopg's named-cursor ``fetchall`` (rows come from FETCH)."""
        return await super(AsyncGovernedCursorMixin, self).fetchall()  # type: ignore[misc, no-any-return]

    async def fetchmany(self, size: int = 0) -> list[Any]:
        """psycopg's named-cursor ``fetchmany``."""
        return await super(AsyncGovernedCursorMixin, self).fetchmany(size)  # type: ignore[misc, no-any-return]

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
