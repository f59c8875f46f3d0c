"""``WireChecked``: psycopg's conversion and send hooks, refusing what was not admitted.

psycopg turns every statement into bytes in ``_convert_query`` and hands them
to libpq in ``_execute_send``, ``_send_prepare`` or ``_send_query_prepared``.
A cursor class with this mixin lets those run only under the ``Admission``
its own public method issued for this call. Calling psycopg's methods on it
directly (``psycopg.Cursor.execute(cur, ...)``), or a class that mixes in the
gate but skips admission, reaches these hooks without a pass and is refused —
in the audit trail too.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from psycopg.client_cursor import ClientCursorMixin

from governed_db.driver.admission import Admission
from governed_db.errors import GovernanceError

__all__ = ["WireChecked", "WireCheckedServer", "refuse"]

_MOGRIFY = ClientCursorMixin.mogrify.__code__


def refuse(cursor: Any, error: GovernanceError, method: str, text: str | None) -> NoReturn:
    """Audit ``error`` as a refusal on ``cursor``'s connection, then raise it."""
    state = getattr(cursor._conn, "_gov_state", None)
    if state is not None:
        governor, session = state
        governor.driver_refused(session, method, text, error)
    raise error


def _text_of(query: Any) -> str | None:
    if isinstance(query, str):
        return str.__getitem__(query, slice(None))
    raw = getattr(query, "query", query)
    if isinstance(raw, bytes | bytearray | memoryview):
        return bytes(raw).decode("utf-8", errors="replace")
    return None


class WireChecked:
    """Conversion and send hooks that require this call's ``Admission``.

    No ``__slots__``: the pass lives in the instance dict of the cursor
    classes it is mixed into (psycopg's own cursors have slots only).
    """

    _conn: Any
    #: The pass for the call in progress (None between calls).
    _gov_pass: Admission | None = None

    def _wire_refuse(self, query: Any, where: str) -> NoReturn:
        error = GovernanceError(
            f"a statement reached {where} without passing the gate for this call; refused "
            "(fail closed). psycopg's own methods were called on a governed cursor, or a "
            "cursor class skipped governed_db's admission",
            rule_id="ungoverned-send",
            hint="Call the cursor's own execute()/executemany()/stream()/copy() methods.",
        )
        refuse(self, error, "execute", _text_of(query))

    # psycopg makes one of these generators per statement and hands it to
    # ``Connection.wait``; marking it lets ``wait`` skip the frame inspection it
    # needs for plain psycopg cursors (the hooks below do the checking).
    def _execute_gen(self, *args: Any, **kwargs: Any) -> Any:
        self._conn._gov_checked_gen = gen = super()._execute_gen(*args, **kwargs)  # type: ignore[misc]
        return gen

    def _executemany_gen_pipeline(self, *args: Any, **kwargs: Any) -> Any:
        self._conn._gov_checked_gen = gen = super()._executemany_gen_pipeline(*args, **kwargs)  # type: ignore[misc]
        return gen

    def _executemany_gen_no_pipeline(self, *args: Any, **kwargs: Any) -> Any:
        self._conn._gov_checked_gen = gen = super()._executemany_gen_no_pipeline(*args, **kwargs)  # type: ignore[misc]
        return gen

    def _stream_send_gen(self, *args: Any, **kwargs: Any) -> Any:
        self._conn._gov_checked_gen = gen = super()._stream_send_gen(*args, **kwargs)  # type: ignore[misc]
        return gen

    def _start_copy_gen(self, *args: Any, **kwargs: Any) -> Any:
        self._conn._gov_checked_gen = gen = super()._start_copy_gen(*args, **kwargs)  # type: ignore[misc]
        return gen

    def _convert_query(self, query: Any, params: Any = None) -> Any:
        admission = self._gov_pass
        if (
            admission is not None
            and admission.merged is None
            and admission.pgq is None
            and query is admission.query
        ):  # the common case: the snapshot this call admitted, bound on the server
            admission.pgq = pgq = super()._convert_query(query, params)  # type: ignore[misc]
            return pgq
        if admission is None and sys._getframe(1).f_code is _MOGRIFY:
            # ClientCursor.mogrify() only shows the merged text; it sends nothing, and
            # what it converts carries no pass to the send hooks.
            return super()._convert_query(query, params)  # type: ignore[misc]
        if admission is None or not admission.converts(query):
            self._wire_refuse(query, "psycopg's query conversion")
        if admission.first is not None and query is admission.query and params is admission.params:
            pgq = admission.first  # the merge the gate decided on; not merged twice
            admission.first = None
        else:
            pgq = super()._convert_query(query, params)  # type: ignore[misc]
        admission.pgq = pgq
        return pgq

    def _check_send(self, pgq: Any) -> None:
        admission = self._gov_pass
        if admission is None or not admission.sends(pgq):
            self._wire_refuse(pgq, "the wire")

    def _execute_send(self, query: Any, **kwargs: Any) -> None:
        admission = self._gov_pass
        if admission is None or (query is not admission.pgq or admission.merged is not None):
            self._check_send(query)
        super()._execute_send(query, **kwargs)  # type: ignore[misc]

    def _send_prepare(self, name: bytes, query: Any) -> None:
        admission = self._gov_pass
        if admission is None or query is not admission.pgq:
            self._wire_refuse(query, "the wire (prepare)")
        super()._send_prepare(name, query)  # type: ignore[misc]

    def _send_query_prepared(self, name: bytes, pgq: Any, **kwargs: Any) -> None:
        admission = self._gov_pass
        if admission is None or (pgq is not admission.pgq or admission.merged is not None):
            self._check_send(pgq)
        super()._send_query_prepared(name, pgq, **kwargs)  # type: ignore[misc]


class WireCheckedServer(WireChecked):
    """Named cursors: the DECLARE wraps exactly the admitted snapshot."""

    __slots__ = ()

    def _declare_gen(self, *args: Any, **kwargs: Any) -> Any:
        self._conn._gov_checked_gen = gen = super()._declare_gen(*args, **kwargs)  # type: ignore[misc]
        return gen

    def _make_declare_statement(self, query: Any) -> Any:
        admission = self._gov_pass
        if admission is None or query is not admission.query:
            self._wire_refuse(query, "DECLARE")
        declare = super()._make_declare_statement(query)  # type: ignore[misc]
        admission.query = declare  # the DECLARE built around it is what psycopg converts
        return declare
