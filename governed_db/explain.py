"""The planner's row estimate for one statement, for ``estimated_rows`` rules.

``EXPLAIN (FORMAT JSON)`` never executes the statement. It is always sent with
the extended protocol (which the server refuses for more than one statement),
inside a transaction or savepoint that is rolled back, so a failing EXPLAIN
cannot abort the caller's transaction. -1 means no estimate could be had.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import tuple_row

from governed_db.trusted import (
    AsyncTrustedCursor,
    AsyncTrustedRawCursor,
    TrustedCursor,
    TrustedRawCursor,
)

__all__ = ["UNKNOWN", "estimate_rows", "estimate_rows_async"]

UNKNOWN = -1


def _plan_rows(document: Any) -> int:
    plan = document[0]["Plan"]
    if plan.get("Node Type") == "ModifyTable" and plan.get("Plans"):
        plan = plan["Plans"][0]  # the rows the write would touch
    return int(plan["Plan Rows"])


def _statement(cursor: Any, query: str, params: Any) -> tuple[str, Any, bool]:
    """``(text, params, raw_placeholders)`` to send after ``EXPLAIN``."""
    if params is None:
        return query, (), True
    if isinstance(cursor, psycopg.RawCursor | psycopg.AsyncRawCursor):
        return query, params, True
    if isinstance(cursor, psycopg.ClientCursor | psycopg.AsyncClientCursor):
        return cursor.mogrify(query, params), (), True
    return query, params, False


def estimate_rows(cursor: Any, query: str, params: Any) -> int:
    """The estimate, or ``UNKNOWN`` (sync connections)."""
    conn = cursor._conn
    if conn.pgconn.pipeline_status:
        return UNKNOWN
    text, args, raw = _statement(cursor, query, params)
    cls = TrustedRawCursor if raw else TrustedCursor
    try:
        with conn.transaction(force_rollback=True), cls(conn, row_factory=tuple_row) as cur:
            cur.execute("EXPLAIN (FORMAT JSON) " + text, args)
            row = cur.fetchone()
        return _plan_rows(row[0]) if row else UNKNOWN
    except (psycopg.Error, LookupError, TypeError, ValueError):
        return UNKNOWN


async def estimate_rows_async(cursor: Any, query: str, params: Any) -> int:
    """The estimate, or ``UNKNOWN`` (async connections)."""
    conn = cursor._conn
    if conn.pgconn.pipeline_status:
        return UNKNOWN
    text, args, raw = _statement(cursor, query, params)
    cls = AsyncTrustedRawCursor if raw else AsyncTrustedCursor
    try:
        async with (
            conn.transaction(force_rollback=True),
            cls(conn, row_factory=tuple_row) as cur,
        ):
            await cur.execute("EXPLAIN (FORMAT JSON) " + text, args)
            row = await cur.fetchone()
        return _plan_rows(row[0]) if row else UNKNOWN
    except (psycopg.Error, LookupError, TypeError, ValueError):
        return UNKNOWN
