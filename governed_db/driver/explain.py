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

from governed_db.driver._trusted import (
    AsyncTrustedRawCursor,
    TrustedRawCursor,
    arun,
    run,
)

__all__ = ["UNKNOWN", "estimate_rows", "estimate_rows_async"]

UNKNOWN = -1


def _plan_rows(document: Any) -> int:
    plan = document[0]["Plan"]
    if plan.get("Node Type") == "ModifyTable" and plan.get("Plans"):
        plan = plan["Plans"][0]  # the rows the write would touch
    return int(plan["Plan Rows"])


def estimate_rows(cursor: Any, query: str, params: Any) -> int:
    """The estimate, or ``UNKNOWN`` (sync connections).

    ``query`` is the exact text the gate decides on (``$n`` placeholders) and
    ``params`` the server-bound parameters, or None when they were merged in.
    """
    conn = cursor._conn
    if conn.pgconn.pipeline_status:
        return UNKNOWN
    try:
        with (
            conn.transaction(force_rollback=True),
            TrustedRawCursor(conn, row_factory=tuple_row) as cur,
        ):
            run(cur, "EXPLAIN (FORMAT JSON) " + query, params or ())
            row = cur.fetchone()
        return _plan_rows(row[0]) if row else UNKNOWN
    except (psycopg.Error, LookupError, TypeError, ValueError):
        return UNKNOWN


async def estimate_rows_async(cursor: Any, query: str, params: Any) -> int:
    """The estimate, or ``UNKNOWN`` (async connections)."""
    conn = cursor._conn
    if conn.pgconn.pipeline_status:
        return UNKNOWN
    try:
        async with (
            conn.transaction(force_rollback=True),
            AsyncTrustedRawCursor(conn, row_factory=tuple_row) as cur,
        ):
            await arun(cur, "EXPLAIN (FORMAT JSON) " + query, params or ())
            row = await cur.fetchone()
        return _plan_rows(row[0]) if row else UNKNOWN
    except (psycopg.Error, LookupError, TypeError, ValueError):
        return UNKNOWN
