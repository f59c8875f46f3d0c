"""Statements from plain psycopg cursors on a governed connection, governed at ``wait``.

psycopg itself opens plain cursors on the connection it is given:
``TypeInfo.fetch`` (and so enum, composite, hstore and range registration,
which SQLAlchemy's dialect runs on connect) uses ``psycopg.Cursor(conn)``.
A caller can do the same. Such a statement is not refused: it is decided
like any other, when its generator reaches ``Connection.wait``.

Exactness: the generator psycopg made is replaced by one built from a
snapshot of its query (and, where psycopg merges parameters on the client,
from a private deep copy of them), so the text decided is the text sent.
The connection lock is held here, so nothing can be asked of the server:
a rule that needs a planner estimate refuses (fail closed).
"""

from __future__ import annotations

from types import FrameType
from typing import TYPE_CHECKING, Any

from psycopg import pq

from governed_db.driver.admission import plan_call
from governed_db.driver.catalog import changes_schema
from governed_db.driver.pipelined import Pending
from governed_db.driver.session_state import check_session_state
from governed_db.driver.wire import WireChecked, refuse
from governed_db.errors import GovernanceError
from governed_db.governor import ClientMerged, EstimateNeeded

if TYPE_CHECKING:
    from collections.abc import Generator

    from governed_db.governor import Ticket

__all__ = ["SENDING", "PlainCall", "check_wait"]

#: psycopg's cursor generators that send a statement -> (method, query arg, params arg).
SENDING: dict[str, tuple[str, str, str]] = {
    "_execute_gen": ("execute", "query", "params"),
    "_executemany_gen_pipeline": ("executemany", "query", "params_seq"),
    "_executemany_gen_no_pipeline": ("executemany", "query", "params_seq"),
    "_stream_send_gen": ("stream", "query", "params"),
    "_start_copy_gen": ("copy", "statement", "params"),
    "_declare_gen": ("declare", "query", "params"),
}
_TUPLES_OK = pq.ExecStatus.TUPLES_OK


class PlainCall:
    """One admitted statement of a plain cursor: the generator to run and its tickets."""

    __slots__ = ("gen", "owner", "tickets")

    def __init__(self, gen: Any, owner: Any, tickets: list[Ticket | None]) -> None:
        self.gen = gen
        self.owner = owner
        self.tickets = tickets

    def shape(self, conn: Any) -> None:
        """Pass the plain cursor's current result through the row hook (masking)."""
        state = conn._gov_state
        owner = self.owner
        if state is not None and state[0].masks and owner.pgresult is not None:
            owner._make_row = state[0].shape_rows(owner, owner._make_row)

    def expect(self, conn: Any) -> Pending | None:
        """In pipeline mode, settle (and mask) when the result arrives; None outside one."""
        pipeline = conn._pipeline
        if pipeline is None or not any(t is not None for t in self.tickets):
            return None

        def arrived(error: BaseException | None, rowcount: int, rows: int | None) -> None:
            self.settle(conn, error, (rowcount, rows))
            if error is None:
                self.shape(conn)

        return conn._gov_pipelined.expect(self.owner, arrived)  # type: ignore[no-any-return]

    def failed(self, conn: Any, pending: Pending | None, error: BaseException) -> None:
        """Settle a statement that raised ``error``, unless it is queued in the pipeline."""
        if pending is None:
            self.settle(conn, error)
            return
        pipeline = conn._pipeline
        owner = self.owner
        queued = pipeline is not None and any(
            q is not None and q[0] is owner for q in pipeline.result_queue
        )
        if not queued and conn._gov_pipelined.withdraw(pending):
            self.settle(conn, error)

    def settle(
        self,
        conn: Any,
        error: BaseException | None,
        counts: tuple[int, int | None] | None = None,
    ) -> None:
        """Report how it ended to the governor (``counts``: rowcount, rows, if not the cursor's)."""
        state = conn._gov_state
        if state is None:
            return
        if counts is None:
            res = self.owner.pgresult
            rows = res.ntuples if res is not None and res.status == _TUPLES_OK else None
            rowcount = self.owner.rowcount
        else:
            rowcount, rows = counts
        ddl = False
        for ticket in self.tickets:
            if ticket is not None:
                ddl = ddl or changes_schema(ticket)
                state[0].settle(ticket, rowcount, error, rows)
        catalog = getattr(conn, "_gov_catalog", None)
        if catalog is not None and ddl:
            catalog.after_ddl(conn.pgconn)


def check_wait(conn: Any, gen: Generator[Any, Any, Any]) -> PlainCall | None:
    """Vet an operation on its way to the server; a ``PlainCall`` if it must be governed here.

    Governed cursors (and governed_db's private ones) must hold this call's
    pass; their own hooks check the rest. A plain psycopg cursor's statement
    is decided here.
    """
    if gen is conn._gov_checked_gen:  # a wire-checked cursor's: its own hooks check it
        conn._gov_checked_gen = None
        return None
    frame: FrameType | None = getattr(gen, "gi_frame", None)
    if frame is None:
        return None
    spec = SENDING.get(frame.f_code.co_name)
    if spec is None:
        return None
    owner = frame.f_locals.get("self")
    if owner is None or getattr(owner, "_conn", None) is not conn:
        return None
    method, query_arg, params_arg = spec
    if isinstance(owner, WireChecked):
        if owner._gov_pass is None:
            error = GovernanceError(
                f"{method} was called on a governed cursor through psycopg's own method, "
                "bypassing the gate; refused (fail closed)",
                rule_id="ungoverned-send",
                hint="Call the cursor's own execute()/executemany()/stream()/copy().",
            )
            query = frame.f_locals.get(query_arg)
            refuse(owner, error, method, query if isinstance(query, str) else None)
        return None
    return _admit_plain(conn, gen, frame, owner, method, query_arg, params_arg)


def _admit_plain(
    conn: Any,
    gen: Any,
    frame: FrameType,
    owner: Any,
    method: str,
    query_arg: str,
    params_arg: str,
) -> PlainCall:
    state = conn._gov_state
    if state is None:
        return PlainCall(gen, owner, [])  # a closed connection: psycopg raises its own error
    governor, session = state
    catalog = getattr(conn, "_gov_catalog", None)
    if catalog is not None and catalog.tx_ddl:
        catalog.after_ddl(conn.pgconn)
    code = frame.f_code
    names = code.co_varnames[1 : code.co_argcount + code.co_kwonlyargcount]
    args = {name: frame.f_locals[name] for name in names if name in frame.f_locals}
    query = args.get(query_arg)
    try:
        check_session_state(conn.pgconn)
        params = args.get(params_arg)
        if params and _merges_on_client(owner, method):
            # psycopg would merge the parameters again after the gate's merge, with no
            # check of what it then sends (a dumper may render differently each time).
            raise GovernanceError(
                "a plain psycopg cursor merges parameters into the statement text on the "
                "client, where governed_db cannot check what is finally sent; refused "
                "(fail closed)",
                rule_id="plain-cursor-client-merge",
                hint="Use conn.cursor() or governed_db.ClientCursor(conn), which check it.",
            )
        if method == "executemany" and params is not None and not isinstance(params, list):
            params = list(params)
        plan = plan_call(owner, method, query, params)
    except GovernanceError as exc:
        refuse(owner, exc, method, query if isinstance(query, str) else None)
    if governor.masks and (
        method in ("stream", "copy") or (method == "executemany" and args.get("returning"))
    ):
        # Rows of these reach the caller through result changes this hook cannot see.
        refuse(
            owner,
            GovernanceError(
                f"{method} on a plain psycopg cursor cannot have its rows masked; refused "
                "(fail closed)",
                rule_id="plain-cursor-unmasked",
                hint="Use conn.cursor(), which masks every fetch path.",
            ),
            method,
            query if isinstance(query, str) else None,
        )
    tickets: list[Ticket | None] = []
    call_params = ClientMerged(params) if plan.merged else params
    for text, _server in plan.statements:
        try:
            ticket = governor.admit(session, method, text, call_params, None)
        except EstimateNeeded:
            # The connection is busy with this very call: no EXPLAIN can run now.
            ticket = governor.admit(session, method, text, call_params, None, -1)
        tickets.append(ticket)
    if any(t is not None and t.guarded for t in tickets):
        error = GovernanceError(
            "a row limit or DDL lock timeout applies to this statement, and a plain psycopg "
            "cursor runs it where the limit cannot be enforced; refused (fail closed)",
            rule_id="plain-cursor-unguarded",
            hint="Use conn.cursor(), which enforces the limits.",
        )
        for ticket in tickets:
            if ticket is not None:
                governor.settle(ticket, -1, error)
        raise error
    args[query_arg] = plan.admission.query
    if params_arg in args:
        args[params_arg] = params
    gen.close()
    return PlainCall(getattr(owner, code.co_name)(**args), owner, tickets)


def _merges_on_client(owner: Any, method: str) -> bool:
    from psycopg._queries import PostgresClientQuery

    return method == "copy" or issubclass(owner._query_cls, PostgresClientQuery)
