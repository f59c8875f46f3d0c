"""What the gate decides on, and the per-call pass checked where bytes are sent.

``snapshot`` turns a caller's query into one immutable value: an exact
``str`` or ``bytes`` (a subclass, a mutable buffer or a ``Composable`` is
copied or rendered once). That value is what the gate decides on and what
psycopg is handed, so the two can never differ.

``sent_text`` is the text the server will run: the snapshot itself, psycopg's
``$n`` conversion of it when parameters are bound on the server, or the
client-side merge of parameters into it (``ClientCursor``, ``copy`` with
parameters) — one merge per parameter set.

An ``Admission`` is issued for one call once the gate has allowed it. The
cursor's wire hooks (``WireChecked``) accept only the snapshot it names and
only the exact bytes it lists; anything else reaching them is refused.
"""

from __future__ import annotations

import importlib
from collections import OrderedDict
from typing import Any

import psycopg
from psycopg import adapt, sql
from psycopg._queries import PostgresClientQuery, PostgresQuery, PostgresRawQuery, _query2pg

from governed_db.errors import GovernanceError, UnreadableQueryError

__all__ = [
    "Admission",
    "Plan",
    "client_merge",
    "converted_text",
    "plan_call",
    "snapshot",
]

try:  # Python >= 3.14 template strings, which psycopg >= 3.3 accepts as queries
    _Template: Any = importlib.import_module("string.templatelib").Template
except ImportError:
    _Template = None

_ENCODING = "utf-8"  # client_encoding is pinned to UTF8 (see session_state)


def _refuse_type(query: Any) -> GovernanceError:
    return UnreadableQueryError(
        f"cannot govern a query of type {type(query).__name__!r}: a statement that cannot be "
        "read exactly cannot be governed (refused, fail closed)",
        rule_id="unreadable-query",
        hint="Pass a str, bytes or psycopg.sql object.",
    )


def snapshot(query: Any, context: Any) -> tuple[str | bytes, str]:
    """``(value to hand psycopg, its text)``: one immutable copy of ``query``.

    ``context`` is the cursor, whose adapters render ``sql`` objects exactly as
    psycopg would.
    """
    kind = type(query)
    if kind is str:
        return query, query
    if kind is bytes:
        return query, _decode(query)
    if isinstance(query, str):  # a subclass: copy its characters, ignore its methods
        text = str.__getitem__(query, slice(None))
        return text, text
    if isinstance(query, bytes | bytearray | memoryview):
        data = bytes(query)  # one copy: later changes to a buffer are not seen
        return data, _decode(data)
    if isinstance(query, sql.Composable):
        try:
            data = bytes(query.as_bytes(context))
        except psycopg.Error:
            raise
        except Exception as exc:
            raise GovernanceError(
                f"could not render the {type(query).__name__} query to text: {exc} "
                "(refused, fail closed)",
                rule_id="unreadable-query",
            ) from exc
        return data, _decode(data)
    if _Template is not None and isinstance(query, _Template):
        raise GovernanceError(
            "template-string queries are not governed yet (refused, fail closed)",
            rule_id="unreadable-query",
            hint="Use a str query with %s placeholders, or psycopg.sql objects.",
        )
    raise _refuse_type(query)


def _decode(data: bytes) -> str:
    try:
        return data.decode(_ENCODING)
    except UnicodeDecodeError as exc:
        raise GovernanceError(
            f"the query is not valid UTF-8 ({exc.reason} at byte {exc.start}); the session's "
            "client_encoding is UTF8, so the server would read it differently (refused)",
            rule_id="unreadable-query",
        ) from exc


_CONVERTED: OrderedDict[str, str] = OrderedDict()
_CONVERTED_MAX = 2048


def converted_text(text: str) -> str:
    """The text the server receives for ``text`` with server-bound parameters.

    psycopg turns ``%s``/``%(name)s`` into ``$n`` and ``%%`` into ``%``. A
    query psycopg cannot convert is returned as is: psycopg raises the same
    error before sending anything.
    """
    found = _CONVERTED.get(text)
    if found is None:
        try:
            found = _query2pg(text.encode(_ENCODING), _ENCODING)[0].decode(_ENCODING)
        except (psycopg.Error, UnicodeError):
            return text
        if len(_CONVERTED) >= _CONVERTED_MAX:
            _CONVERTED.clear()
        _CONVERTED[text] = found
    return found


def client_merge(cursor: Any, query: str | bytes, params: Any) -> PostgresClientQuery:
    """psycopg's own client-side merge of ``params`` into ``query`` (a fresh transformer)."""
    pgq = PostgresClientQuery(adapt.Transformer(cursor))
    pgq.convert(query, params)
    return pgq


class Admission:
    """The gate's pass for one call: what may be converted, and which bytes sent.

    ``query`` is the snapshot handed to psycopg. ``merged`` lists the exact
    bytes of each client-side merged statement, in the order they will be
    sent (None when parameters are bound on the server, where the bytes sent
    are psycopg's conversion of ``query`` itself). ``first`` is the merge of
    the first parameter set, handed back to psycopg so it is not merged twice.
    """

    __slots__ = ("first", "merged", "params", "pgq", "query", "sent")

    def __init__(
        self,
        query: Any,
        params: Any = None,
        merged: list[bytes] | None = None,
        first: PostgresQuery | None = None,
    ) -> None:
        self.query = query
        self.params = params
        self.merged = merged
        self.first = first
        self.pgq: PostgresQuery | None = None
        self.sent = 0

    def converts(self, query: Any) -> bool:
        """May psycopg convert ``query`` now? (once per call: a pass is not reusable)"""
        if self.pgq is not None:
            return False
        if query is self.query:
            return True
        merged = self.merged
        # copy(statement, params): psycopg merges itself, then converts the merged bytes.
        return (
            merged is not None
            and type(query) is bytes
            and self.sent < len(merged)
            and query == merged[self.sent]
        )

    def sends(self, pgq: Any) -> bool:
        """May these converted bytes go to the server now? (counts what was sent)"""
        merged = self.merged
        if merged is None:
            ok = pgq is self.pgq
        else:
            ok = self.sent < len(merged) and pgq.query == merged[self.sent]
            self.sent += ok
        return ok


#: One statement to decide: (text the server runs, server-bound parameters or None).
_Statement = tuple[str, Any]


class Plan:
    """What one call will send: its pass, and the statements the gate must decide."""

    __slots__ = ("admission", "merged", "statements")

    def __init__(self, admission: Admission, statements: list[_Statement]) -> None:
        self.admission = admission
        self.statements = statements
        #: True when parameters were merged into the text on the client.
        self.merged = admission.merged is not None


_new = object.__new__


def _plain_plan(query: str, text: str, params: Any) -> Plan:
    """``Plan(Admission(query), [(text, params)])``: a snapshot sent as is, parameters (if
    any) bound on the server; made without the calls (hot path)."""
    admission: Admission = _new(Admission)
    admission.query = query
    admission.params = admission.merged = admission.first = admission.pgq = None
    admission.sent = 0
    plan: Plan = _new(Plan)
    plan.admission = admission
    plan.statements = [(text, params)]
    plan.merged = False
    return plan


def plan_call(cursor: Any, method: str, query: Any, params: Any) -> Plan:
    """Snapshot ``query`` and list the exact statements ``cursor``'s call will send."""
    cls = cursor._query_cls
    if type(query) is str and method not in {"copy", "executemany"}:
        # The common case: a plain str, parameters bound on the server (or none).
        if cls is PostgresQuery:
            text = query if params is None else _CONVERTED.get(query) or converted_text(query)
            return _plain_plan(query, text, params)
        if cls is PostgresRawQuery or params is None:
            return _plain_plan(query, query, params)
    snap, text = snapshot(query, cursor)
    if method == "copy":
        if not params:
            return Plan(Admission(snap), [(text, None)])
        one = client_merge(cursor, snap, params).query
        return Plan(Admission(snap, merged=[one]), [(_decode(one), None)])
    if cls is PostgresClientQuery or issubclass(cls, PostgresClientQuery):
        sets = params if method == "executemany" else [params]
        if method != "executemany" and params is None:
            return Plan(Admission(snap), [(text, None)])
        merges = [client_merge(cursor, snap, p) for p in sets]
        merged = [m.query for m in merges]
        first = merges[0] if merges and method != "executemany" else None
        admission = Admission(snap, params, merged=merged, first=first)
        return Plan(admission, [(_decode(m), None) for m in merged])
    server = params[0] if method == "executemany" and params else params
    if method == "executemany" and not params:
        server = None
    if server is not None and not issubclass(cls, PostgresRawQuery):
        text = converted_text(text)
    return Plan(Admission(snap), [(text, server)])
