"""Governed cursor classes: psycopg's cursors with the gate in front.

Each public entry point (``execute``, ``executemany``, ``stream``, ``copy``)
takes one immutable snapshot of the query, works out the exact text the
server will run (psycopg's ``$n`` conversion, or its client-side merge of the
parameters), has the governor decide on that text, and only then calls
psycopg under a pass for this call alone; ``WireChecked`` refuses anything
else at the conversion and send hooks. ``_make_row_maker`` passes every
result's row maker through ``Governor.shape_rows`` once, while
``row_factory`` reads back as what the user set. The async twins are in
``cursor_async``; combining a user's own class with the gate is
``cursor_factory``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    contextmanager,
    nullcontext,
)
from itertools import islice
from typing import TYPE_CHECKING, Any, NoReturn

import psycopg
from psycopg import pq
from psycopg._queries import _query2pg

from governed_db.driver.admission import Plan, plan_call
from governed_db.driver.catalog import changes_schema, load, load_async
from governed_db.driver.copy_columns import copy_columns
from governed_db.driver.copy_out import (
    CheckedCopy,
    MaskedCopy,
    copy_in_memory,
    copy_out_plan,
    copy_out_shape,
)
from governed_db.driver.explain import estimate_rows, estimate_rows_async
from governed_db.driver.guards import guarded, guarded_async
from governed_db.driver.mask_counts import counting_of
from governed_db.driver.masked_result import MaskedResult
from governed_db.driver.pipelined import Pending
from governed_db.driver.session_state import check_session_state
from governed_db.driver.wire import WireChecked, WireCheckedServer, refuse
from governed_db.errors import GovernanceError
from governed_db.governor import ClientMerged, EstimateNeeded

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
]

_NO_GUARD: nullcontext[None] = nullcontext()
_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_BAD = pq.ConnStatus.BAD
#: Rows masked at a time ahead of fetchone() and iteration.
_BATCH = 256
#: Fewer rows left than this: masked one at a time (a batch's setup costs more).
_BATCH_FROM = 32
#: No more rows (``_gov_next_masked``).
_END = object()
_SCS = b"standard_conforming_strings"
_ENC = b"client_encoding"


def _server_params(text: str, params: Any) -> Any:
    """``params`` as the sequence a ``$n`` query takes (named ones in placeholder order)."""
    if params is None or not isinstance(params, dict):
        return params
    order = _query2pg(text.encode("utf-8"), "utf-8")[2] or []
    return [params[name] for name in order]


class GovernedCursorBase(WireChecked):
    """The calls into the governor shared by every governed cursor."""

    __slots__ = ()

    #: The mask plan of the last result made (handed to the audit at settle).
    _gov_plan: Any = None
    #: (masker, the user's row maker) when the current result needs masking.
    _gov_bulk: Any = None

    #: (bulk, result, first position, rows): masked rows ahead of ``fetchone``/iteration.
    _gov_batch: Any = None
    #: The tickets of the cursor's last settled call: its results' masked values count there.
    _gov_settled: Any = None

    def _gov_mask_range(self, start: int, end: int) -> list[Any]:
        """Rows ``start`` to ``end`` of the current result, masked a column at a time."""
        masker, make_row = self._gov_bulk
        rows = self._tx.load_rows(start, end, tuple)  # type: ignore[attr-defined]
        masked = masker.apply_rows(rows, owned=True)
        return masked if make_row is tuple else [make_row(r) for r in masked]

    def _gov_masked_rows(self, res: Any, size: int | None = None) -> list[Any]:
        """The next ``size`` rows of ``res`` (all by default), masked a column at a time."""
        start = self._pos
        end = res.ntuples if size is None else min(start + size, res.ntuples)
        self._pos = end
        return self._gov_mask_range(start, end)

    def _gov_next_masked(self, res: Any) -> Any:
        """The next row, masked in batches of ``_BATCH`` rows (``_END`` after the last)."""
        pos = self._pos
        left = res.ntuples - pos
        if 0 < left < _BATCH_FROM:  # a few rows: the generated row maker, one at a time
            self._pos = pos + 1
            return self._tx.load_row(pos, self._make_row)  # type: ignore[attr-defined]
        ahead = self._gov_ahead(res)
        if ahead is None:
            return _END
        rows, k = ahead
        self._pos = pos + 1
        return rows[k]

    def _gov_ahead(self, res: Any) -> tuple[list[Any], int] | None:
        """``(rows, k)``: masked rows whose ``k``-th is at the cursor's position (None at the end).

        Rows are masked ``_BATCH`` at a time (a batch already covering the
        position is reused, so no row is masked, or counted, twice); with
        fewer than ``_BATCH_FROM`` left, one row by the generated row maker.
        The position is not moved.
        """
        pos = self._pos
        left = res.ntuples - pos
        if left <= 0:
            return None
        if left < _BATCH_FROM:  # a few rows: the generated row maker, one at a time
            return [self._tx.load_row(pos, self._make_row)], 0  # type: ignore[attr-defined]
        bulk = self._gov_bulk
        batch = self._gov_batch
        if (
            batch is None
            or batch[0] is not bulk
            or batch[1] is not res
            or not batch[2] <= pos < batch[2] + len(batch[3])
        ):
            batch = (bulk, res, pos, self._gov_mask_range(pos, min(pos + _BATCH, res.ntuples)))
            self._gov_batch = batch
        return batch[3], pos - batch[2]

    def _gov_yield_from(self, res: Any, rows: list[Any], k: int) -> Iterator[Any]:
        """Rows ``k``... of a masked batch, one per step, while nothing else moves the cursor.

        A ``fetchone``/``scroll``/``execute`` or a row-factory change between two
        steps stops it; the caller then decides again from the new position.
        """
        bulk = self._gov_bulk
        pos = self._pos
        for row in islice(rows, k, None):
            if self._pos != pos or self._gov_bulk is not bulk or self.pgresult is not res:
                return
            pos += 1
            self._pos = pos
            yield row

    _conn: Any
    _pgconn: Any
    _query_cls: Any
    _row_factory: Any
    _make_row: Any
    _pos: int
    rowcount: int
    pgresult: Any

    _gov_cursor_name: str | None = None

    def _gov(self) -> tuple[Governor, Session]:
        state = self._conn._gov_state
        if state is None:
            self._psycopg_refuses()
        return state  # type: ignore[no-any-return]

    def _psycopg_refuses(self) -> NoReturn:
        """Raise what psycopg raises here (closed cursor or connection), else fail closed."""
        self._conn._check_connection_ok()
        if self.closed:  # type: ignore[attr-defined]
            raise psycopg.InterfaceError("the cursor is closed")
        raise GovernanceError(
            "this connection has no governor: open it with governed_db.connect() "
            "or governed_db.Connection.connect() (refused, fail closed)",
            rule_id="ungoverned-connection",
        )

    def _plan(self, method: str, query: Any, params: Any) -> tuple[Plan, Any]:
        """Check the session, snapshot the query, and the params to hand the gate."""
        pgconn = self._pgconn  # a broken connection: psycopg raises its own error at send
        try:
            if pgconn.parameter_status(_SCS) != b"on" or pgconn.parameter_status(_ENC) != b"UTF8":
                check_session_state(pgconn)
            plan = plan_call(self, method, query, params)
        except GovernanceError as exc:
            text = str.__getitem__(query, slice(None)) if isinstance(query, str) else None
            refuse(self, exc, method, text)
        return plan, ClientMerged(params) if plan.merged else params

    def _gov_call_starts(self) -> None:
        """A new call: report what the last one's results masked (outside a pipeline), and
        start from an empty catalog while a transaction that ran DDL is open."""
        counting = self.__dict__.get("_gov_counting")
        if counting is not None and self._conn._pipeline is None:
            self._gov_settled = None
            counting.flush()
        catalog = self._conn._gov_catalog
        if catalog.tx_ddl:
            catalog.after_ddl(self._pgconn)

    def _close(self) -> None:
        counting = self.__dict__.get("_gov_counting")
        if counting is not None:
            counting.flush()
        super()._close()  # type: ignore[misc]

    def _admit(self, method: str, query: Any, params: Any) -> tuple[Plan, list[Ticket | None]]:
        state = self._conn._gov_state
        if state is None:
            self._psycopg_refuses()
        if "_gov_counting" in self.__dict__ or self._conn._gov_catalog.tx_ddl:
            self._gov_call_starts()
        governor, session = state
        plan, params = self._plan(method, query, params)
        if self._conn._gov_ended and self._pgconn.status == _BAD:
            return plan, [None]  # a broken connection: psycopg raises its own error at send
        name = self._gov_cursor_name
        statements = plan.statements
        if len(statements) == 1:
            text, server = statements[0]
            try:
                return plan, [governor.admit(session, method, text, params, name)]
            except EstimateNeeded:
                rows = estimate_rows(self, text, _server_params(text, server))
                return plan, [governor.admit(session, method, text, params, name, rows)]
        tickets = []
        for text, server in statements:
            try:
                ticket = governor.admit(session, method, text, params, name)
            except EstimateNeeded:
                rows = estimate_rows(self, text, _server_params(text, server))
                ticket = governor.admit(session, method, text, params, name, rows)
            tickets.append(ticket)
        return plan, tickets

    async def _admit_async(
        self, method: str, query: Any, params: Any
    ) -> tuple[Plan, list[Ticket | None]]:
        governor, session = self._gov()
        self._gov_call_starts()
        plan, params = self._plan(method, query, params)
        if self._conn._gov_ended and self._pgconn.status == _BAD:
            return plan, [None]  # a broken connection: psycopg raises its own error at send
        tickets = []
        name = self._gov_cursor_name
        for text, server in plan.statements:
            try:
                ticket = governor.admit(session, method, text, params, name)
            except EstimateNeeded:
                rows = await estimate_rows_async(self, text, _server_params(text, server))
                ticket = governor.admit(session, method, text, params, name, rows)
            tickets.append(ticket)
        return plan, tickets

    def _settle(
        self,
        tickets: list[Ticket | None],
        error: BaseException | None,
        counts: tuple[int, int | None] | None = None,
    ) -> None:
        """Report how the call ended; ``counts`` (rowcount, rows) when not the cursor's own."""
        if not tickets or (tickets[0] is None and len(tickets) == 1):
            return
        state = self._conn._gov_state
        if state is None:
            return
        if counts is None:
            res = self.pgresult
            rows = res.ntuples if res is not None and res.status == _TUPLES_OK else None
            rowcount = self.rowcount
        else:
            rowcount, rows = counts
        plan, self._gov_plan = self._gov_plan, None
        ddl = False
        for ticket in tickets:
            if ticket is not None:
                ticket.mask_plan = plan
                ddl = ddl or changes_schema(ticket)
                state[0].settle(ticket, rowcount, error, rows)
        if ddl:
            self._conn._gov_catalog.after_ddl(self._pgconn)
        if state[0].records_masked:  # what its results mask is counted as they are read
            self._gov_settled = tickets
            bulk = self._gov_bulk
            if bulk is not None:
                counting_of(self).add(bulk[0], tickets, self._iresult, len(self._results))  # type: ignore[attr-defined]
        if error is not None and self._conn.broken:
            self._conn._gov_end("broken")  # its session ends now (a pool drops it unclosed)

    def _gov_running(self, tickets: list[Ticket | None]) -> object:
        """Register a call that runs while the caller holds it (stream, copy).

        If the connection closes first, the call is settled then, before the
        session's end is recorded.
        """
        key = object()

        def settle(error: BaseException | None) -> None:
            self._settle(tickets, error)

        self._conn._gov_inflight[key] = settle
        return key

    def _gov_done(
        self, key: object, tickets: list[Ticket | None], error: BaseException | None
    ) -> None:
        """Settle a running call, unless closing the connection already did."""
        if self._conn._gov_inflight.pop(key, None) is not None:
            self._settle(tickets, error)

    def _gov_expect(self, tickets: list[Ticket | None], results: int = 1) -> Pending | None:
        """In pipeline mode, settle ``tickets`` when the results arrive (None outside one)."""
        conn = self._conn
        if conn._pipeline is None or results < 1:
            return None

        def settle(error: BaseException | None, rowcount: int, rows: int | None) -> None:
            self._settle(tickets, error, (rowcount, rows))

        return conn._gov_pipelined.expect(self, settle, results)  # type: ignore[no-any-return]

    def _gov_failed(
        self, pending: Pending | None, tickets: list[Ticket | None], error: BaseException
    ) -> None:
        """Settle a call that raised ``error``, unless its statement is queued in a pipeline."""
        if pending is None:
            self._settle(tickets, error)
        elif self._gov_pass is not None and self._gov_pass.pgq is not None:
            return  # converted and queued: settled when its result arrives (or as not run)
        elif self._conn._gov_pipelined.withdraw(pending):
            self._settle(tickets, error)

    def _guard(self, tickets: list[Ticket | None]) -> AbstractContextManager[None]:
        ticket = _guarded_ticket(tickets)
        if ticket is None:
            return _NO_GUARD
        return guarded(self, ticket, self._gov()[0])

    def _guard_async(self, tickets: list[Ticket | None]) -> AbstractAsyncContextManager[None]:
        ticket = _guarded_ticket(tickets)
        if ticket is None:
            return _NO_GUARD
        return guarded_async(self, ticket, self._gov()[0])

    def _refuse_guarded_stream(self, tickets: list[Ticket | None]) -> None:
        if _guarded_ticket(tickets) is not None:
            error = GovernanceError(
                "a row limit or DDL lock timeout applies to this statement and stream() "
                "cannot enforce it (rows would reach you before the count is known); "
                "refused, fail closed",
                rule_id="stream-cannot-guard",
                hint="Use execute() instead.",
            )
            self._settle(tickets, error)
            raise error

    def _gov_prefetch(self, tickets: list[Ticket | None]) -> None:
        """Look up the columns of the tables the statement names, before it is sent."""
        names = _table_names(tickets)  # empty unless the governor masks (tickets carry facts)
        catalog = self._conn._gov_catalog
        if names and not names <= catalog.names:
            load(self._conn, catalog, names=catalog.unseen(names))

    async def _gov_prefetch_async(self, tickets: list[Ticket | None]) -> None:
        names = _table_names(tickets)
        catalog = self._conn._gov_catalog
        if names and not names <= catalog.names:
            await load_async(self._conn, catalog, names=catalog.unseen(names))

    def _gov_missing(self) -> list[int]:
        """Tables this call's results name that masking needs and the catalog lacks."""
        results = self._results  # type: ignore[attr-defined]
        if not results or self.pgresult is None or not self._gov()[0].masks:
            return []
        return self._conn._gov_catalog.missing(results)  # type: ignore[no-any-return]

    def _gov_resolved(self, known_before: int) -> None:
        """Re-plan the current result if the catalog learned tables since ``known_before``."""
        if len(self._conn._gov_catalog.tables) != known_before:
            self._make_row = self._make_row_maker()

    def _gov_resolve_late(self) -> None:
        """After execute: resolve tables the results name that were not looked up before."""
        missing = self._gov_missing()
        if missing:
            catalog = self._conn._gov_catalog
            known = len(catalog.tables)
            load(self._conn, catalog, oids=missing)
            self._gov_resolved(known)

    async def _gov_resolve_late_async(self) -> None:
        missing = self._gov_missing()
        if missing:
            catalog = self._conn._gov_catalog
            known = len(catalog.tables)
            await load_async(self._conn, catalog, oids=missing)
            self._gov_resolved(known)

    def _gov_refused(self, error: GovernanceError) -> None:
        """Audit ``error`` as a refusal of this cursor's statement, then raise it."""
        state = self._conn._gov_state
        if state is not None:
            state[0].driver_refused(state[1], "copy", None, error)
        raise error

    def _make_row_maker(self) -> Any:
        state = self._conn._gov_state
        make_row = self._row_factory(self)
        if state is None:
            return make_row
        shaped = state[0].shape_rows(self, make_row)
        bulk = self._gov_bulk
        if bulk is None:
            return shaped
        res = self.pgresult
        if type(res) is not MaskedResult and res.status == _TUPLES_OK:
            self.pgresult = MaskedResult(res, self, bulk[0])  # get_value() masks too
        settled = self._gov_settled
        if settled is not None:  # a later result of a settled call (FETCH, nextset)
            counting_of(self).add(bulk[0], settled, self._iresult, len(self._results))  # type: ignore[attr-defined]
        return shaped

    @property
    def row_factory(self) -> Any:
        """Writable: how result rows are formed (reads back as what was set)."""
        return self._row_factory

    @row_factory.setter
    def row_factory(self, row_factory: Any) -> None:
        self._row_factory = row_factory
        if getattr(self, "pgresult", None):
            self._make_row = self._make_row_maker()


def _table_names(tickets: list[Ticket | None]) -> frozenset[str]:
    names: frozenset[str] = frozenset()
    for ticket in tickets:
        if ticket is None:
            continue
        planned = ticket.planned
        if planned is not None:
            found = planned.tables
        elif ticket.facts is not None:
            found = ticket.facts.tables_read | ticket.facts.tables_written
        else:
            continue
        names = found if not names else names | found
    return names


def _guarded_ticket(tickets: list[Ticket | None]) -> Ticket | None:
    """The one ticket whose limits must be enforced, if any (the strictest)."""
    if len(tickets) == 1:
        ticket = tickets[0]
        if ticket is None or (ticket.max_rows is None and ticket.lock_timeout is None):
            return None
        return ticket
    guarded_ = [t for t in tickets if t is not None and t.guarded]
    if not guarded_:
        return None
    return min(guarded_, key=lambda t: t.max_rows if t.max_rows is not None else 1 << 62)


class GovernedCursorMixin(GovernedCursorBase):
    """Gate for client-side cursors (``Cursor``, ``ClientCursor``, ``RawCursor``)."""

    __slots__ = ()

    #: ``Call.method`` for ``execute``: named cursors DECLARE instead.
    _gov_execute_method = "execute"

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        plan, tickets = self._admit(self._gov_execute_method, query, params)
        if len(tickets) == 1 and tickets[0] is None:  # a gate with nothing to guard or settle
            self._gov_pass = plan.admission
            try:
                return super().execute(plan.admission.query, params, **kwargs)  # type: ignore[misc]
            finally:
                self._gov_pass = None
        self._gov_prefetch(tickets)
        guard = _guarded_ticket(tickets)
        pending = self._gov_expect(tickets) if guard is None else None
        self._gov_pass = plan.admission
        try:
            if guard is None:
                result = super().execute(plan.admission.query, params, **kwargs)  # type: ignore[misc]
            else:
                with guarded(self, guard, self._gov()[0]):
                    result = super().execute(plan.admission.query, params, **kwargs)  # type: ignore[misc]
        except BaseException as exc:
            self._gov_failed(pending, tickets, exc)
            raise
        finally:
            self._gov_pass = None
        if pending is None:
            self._settle(tickets, None)
            self._gov_resolve_late()
        return result

    def executemany(self, query: Any, params_seq: Iterable[Any], **kwargs: Any) -> None:
        if not isinstance(params_seq, list | tuple):
            params_seq = list(params_seq)
        plan, tickets = self._admit("executemany", query, params_seq)
        self._gov_prefetch(tickets)
        pending = None if kwargs.get("returning") else self._gov_expect(tickets, len(params_seq))
        self._gov_pass = plan.admission
        try:
            with self._guard(tickets):
                super().executemany(plan.admission.query, params_seq, **kwargs)  # type: ignore[misc]
        except BaseException as exc:
            self._gov_failed(pending, tickets, exc)
            raise
        finally:
            self._gov_pass = None
        if pending is None:
            self._settle(tickets, None)

    def stream(self, query: Any, params: Any = None, **kwargs: Any) -> Iterator[Any]:
        plan, tickets = self._admit("stream", query, params)
        self._refuse_guarded_stream(tickets)
        self._gov_prefetch(tickets)
        error: BaseException | None = None
        running = self._gov_running(tickets)
        self._gov_pass = plan.admission
        try:
            yield from super().stream(plan.admission.query, params, **kwargs)  # type: ignore[misc]
        except GeneratorExit:
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._gov_pass = None
            self._gov_done(running, tickets, error)

    def fetchone(self) -> Any:
        """psycopg's ``fetchone``; a result that needs masking is masked a batch ahead."""
        if self._gov_bulk is None:
            return super().fetchone()  # type: ignore[misc]
        self._fetch_pipeline()  # type: ignore[attr-defined]
        row = self._gov_next_masked(self._check_result_for_fetch())  # type: ignore[attr-defined]
        return None if row is _END else row

    def __iter__(self) -> Any:
        # psycopg's own iteration when nothing is masked (no cost per row); else batches
        return self if self._gov_bulk is None else self._gov_iter()

    def _gov_iter(self) -> Iterator[Any]:
        while True:
            if self._gov_bulk is None:  # the row factory or the result changed
                try:
                    row = super().__next__()  # type: ignore[misc]
                except StopIteration:
                    return
                yield row
                continue
            self._fetch_pipeline()  # type: ignore[attr-defined]
            res = self._check_result_for_fetch()  # type: ignore[attr-defined]
            ahead = self._gov_ahead(res)
            if ahead is None:
                return
            yield from self._gov_yield_from(res, *ahead)

    def fetchall(self) -> list[Any]:
        """psycopg's ``fetchall``; a result that needs masking is masked in one pass."""
        if self._gov_bulk is None:
            return super().fetchall()  # type: ignore[misc, no-any-return]
        self._fetch_pipeline()  # type: ignore[attr-defined]
        return self._gov_masked_rows(self._check_result_for_fetch())  # type: ignore[attr-defined]

    def fetchmany(self, size: int = 0) -> list[Any]:
        """psycopg's ``fetchmany``; a result that needs masking is masked a batch at a time."""
        if self._gov_bulk is None:
            return super().fetchmany(size)  # type: ignore[misc, no-any-return]
        self._fetch_pipeline()  # type: ignore[attr-defined]
        res = self._check_result_for_fetch()  # type: ignore[attr-defined]
        return self._gov_masked_rows(res, size or self.arraysize)  # type: ignore[attr-defined]

    @contextmanager
    def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> Iterator[Any]:
        plan, tickets = self._admit("copy", statement, params)
        self._gov_prefetch(tickets)
        error: BaseException | None = None
        running = self._gov_running(tickets)
        shape = copy_out_shape(self, tickets)
        try:
            columns = copy_columns(self, shape) if shape is not None else None
        except BaseException as exc:
            self._gov_done(running, tickets, exc)
            raise
        self._gov_pass = plan.admission
        try:
            with self._guard(tickets):
                # psycopg's own copy(), with the Copy class chosen by masking.
                try:
                    with self._conn.lock:
                        self._conn.wait(self._start_copy_gen(plan.admission.query, params))
                        self._gov_pass = None
                        mask, refusal = copy_out_plan(self, _table_names(tickets), shape, columns)
                        memory = copy_in_memory(self)
                        cls = (
                            MaskedCopy
                            if mask is not None
                            else CheckedCopy
                            if memory is not None
                            else psycopg.Copy
                        )
                        with cls(self, **kwargs) as copy:  # type: ignore[arg-type]
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


class GovernedServerCursorMixin(WireCheckedServer, GovernedCursorMixin):
    """Gate for named (server-side) cursors: ``execute`` is a DECLARE.

    psycopg's named cursors also inherit ``stream``, ``copy`` and
    ``executemany`` from the client cursor; they pass the same gate.
    """

    __slots__ = ()

    _gov_execute_method = "declare"

    def fetchone(self) -> Any:
        """psycopg's named-cursor ``fetchone``."""
        return super(GovernedCursorMixin, self).fetchone()  # type: ignore[misc]

    def __iter__(self) -> Any:
        return super(GovernedCursorMixin, self).__iter__()  # type: ignore[misc]

    def fetchall(self) -> list[Any]:
        """psycopg's named-cursor ``fetchall`` (rows come from FETCH, one row at a time)."""
        return super(GovernedCursorMixin, self).fetchall()  # type: ignore[misc, no-any-return]

    def fetchmany(self, size: int = 0) -> list[Any]:
        """psycopg's named-cursor ``fetchmany``."""
        return super(GovernedCursorMixin, self).fetchmany(size)  # type: ignore[misc, no-any-return]

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
