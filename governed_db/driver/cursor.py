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
from typing import TYPE_CHECKING, Any, NoReturn

import psycopg
from psycopg import pq
from psycopg._queries import _query2pg

from governed_db.driver.admission import Plan, plan_call
from governed_db.driver.catalog import load, load_async
from governed_db.driver.copy_out import CheckedCopy, MaskedCopy, copy_in_memory, copy_out_plan
from governed_db.driver.explain import estimate_rows, estimate_rows_async
from governed_db.driver.guards import guarded, guarded_async
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
_SCS = b"standard_conforming_strings"
_NOTHING_TO_SETTLE: list[Any] = [None]
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

    def _gov_masked_rows(self, res: Any, size: int | None = None) -> list[Any]:
        """The next ``size`` rows of ``res`` (all by default), masked a column at a time."""
        masker, make_row = self._gov_bulk
        end = res.ntuples if size is None else min(self._pos + size, res.ntuples)
        rows = self._tx.load_rows(self._pos, end, tuple)  # type: ignore[attr-defined]
        self._pos = end
        masked = masker.apply_rows(rows)
        return masked if make_row is tuple else [make_row(r) for r in masked]

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

    def _admit(self, method: str, query: Any, params: Any) -> tuple[Plan, list[Ticket | None]]:
        governor, session = self._gov()
        plan, params = self._plan(method, query, params)
        tickets = []
        name = self._gov_cursor_name
        for text, server in plan.statements:
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
        plan, params = self._plan(method, query, params)
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

    def _settle(self, tickets: list[Ticket | None], error: BaseException | None) -> None:
        if not tickets or (tickets[0] is None and len(tickets) == 1):
            return
        state = self._conn._gov_state
        if state is None:
            return
        res = self.pgresult
        rows = res.ntuples if res is not None and res.status == _TUPLES_OK else None
        plan, self._gov_plan = self._gov_plan, None
        for ticket in tickets:
            if ticket is not None:
                ticket.mask_plan = plan
                if _changes_schema(ticket):
                    self._conn._gov_catalog.clear()
                state[0].settle(ticket, self.rowcount, error, rows)

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
        return state[0].shape_rows(self, make_row)

    @property
    def row_factory(self) -> Any:
        """Writable: how result rows are formed (reads back as what was set)."""
        return self._row_factory

    @row_factory.setter
    def row_factory(self, row_factory: Any) -> None:
        self._row_factory = row_factory
        if getattr(self, "pgresult", None):
            self._make_row = self._make_row_maker()


#: id(facts) -> (facts, the tables they name): computed once per analysed statement.
_TABLES: dict[int, tuple[Any, frozenset[str]]] = {}


def _table_names(tickets: list[Ticket | None]) -> frozenset[str]:
    names: frozenset[str] = frozenset()
    for ticket in tickets:
        facts = ticket.facts if ticket is not None else None
        if facts is None:
            continue
        found = _TABLES.get(id(facts))
        if found is None or found[0] is not facts:
            if len(_TABLES) > 4096:
                _TABLES.clear()
            found = _TABLES[id(facts)] = (facts, facts.tables_read | facts.tables_written)
        names = found[1] if not names else names | found[1]
    return names


def _changes_schema(ticket: Ticket) -> bool:
    facts = ticket.facts
    return facts is not None and any(s.statement_class == "ddl" for s in facts.statements)


def _guarded_ticket(tickets: list[Ticket | None]) -> Ticket | None:
    """The one ticket whose limits must be enforced, if any (the strictest)."""
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
        if tickets == _NOTHING_TO_SETTLE:  # a gate with nothing to guard, settle or mask
            self._gov_pass = plan.admission
            try:
                return super().execute(plan.admission.query, params, **kwargs)  # type: ignore[misc]
            finally:
                self._gov_pass = None
        self._gov_prefetch(tickets)
        self._gov_pass = plan.admission
        try:
            with self._guard(tickets):
                result = super().execute(plan.admission.query, params, **kwargs)  # type: ignore[misc]
        except BaseException as exc:
            self._settle(tickets, exc)
            raise
        finally:
            self._gov_pass = None
        self._settle(tickets, None)
        self._gov_resolve_late()
        return result

    def executemany(self, query: Any, params_seq: Iterable[Any], **kwargs: Any) -> None:
        if not isinstance(params_seq, list | tuple):
            params_seq = list(params_seq)
        plan, tickets = self._admit("executemany", query, params_seq)
        self._gov_prefetch(tickets)
        self._gov_pass = plan.admission
        try:
            with self._guard(tickets):
                super().executemany(plan.admission.query, params_seq, **kwargs)  # type: ignore[misc]
        except BaseException as exc:
            self._settle(tickets, exc)
            raise
        finally:
            self._gov_pass = None
        self._settle(tickets, None)

    def stream(self, query: Any, params: Any = None, **kwargs: Any) -> Iterator[Any]:
        plan, tickets = self._admit("stream", query, params)
        self._refuse_guarded_stream(tickets)
        self._gov_prefetch(tickets)
        error: BaseException | None = None
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
            self._settle(tickets, error)

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
        self._gov_pass = plan.admission
        try:
            with self._guard(tickets):
                # psycopg's own copy(), with the Copy class chosen by masking.
                try:
                    with self._conn.lock:
                        self._conn.wait(self._start_copy_gen(plan.admission.query, params))
                        self._gov_pass = None
                        mask, refusal = copy_out_plan(self, _table_names(tickets))
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
            self._settle(tickets, error)


class GovernedServerCursorMixin(WireCheckedServer, GovernedCursorMixin):
    """Gate for named (server-side) cursors: ``execute`` is a DECLARE.

    psycopg's named cursors also inherit ``stream``, ``copy`` and
    ``executemany`` from the client cursor; they pass the same gate.
    """

    __slots__ = ()

    _gov_execute_method = "declare"

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
