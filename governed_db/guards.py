"""Limits enforced around a statement: blast radius and DDL lock timeout.

``max_rows_affected`` runs the statement inside a SAVEPOINT (or, under
autocommit, its own transaction), counts the rows it affected, and rolls it
back and raises if they exceed the limit. ``lock_timeout`` is set for the
statement alone and restored after it. These use ``trusted`` cursors on the
same connection: the guard's own bookkeeping is not governed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from psycopg import pq
from psycopg.rows import tuple_row

from governed_db.errors import GovernanceError
from governed_db.trusted import AsyncTrustedCursor, TrustedCursor

__all__ = ["affected_rows", "guarded", "guarded_async"]

_SAVEPOINT = "governed_db_guard"
_IDLE = pq.TransactionStatus.IDLE


def affected_rows(cursor: Any) -> int:
    """Rows affected by everything the cursor's last call ran (all results)."""
    results = getattr(cursor, "_results", None)
    if results:
        return sum(res.command_tuples or 0 for res in results)
    return max(int(cursor.rowcount), 0)


def _refuse_in_pipeline(conn: Any) -> None:
    if conn.pgconn.pipeline_status:
        raise GovernanceError(
            "a row limit or DDL lock timeout applies to this statement, and neither can be "
            "enforced in pipeline mode (refused, fail closed); run it outside the pipeline"
        )


@contextmanager
def guarded(cursor: Any, ticket: Any, governor: Any) -> Iterator[None]:
    """Run the body under the ticket's limits (sync connections)."""
    conn = cursor._conn
    _refuse_in_pipeline(conn)
    raw = TrustedCursor(conn, row_factory=tuple_row)
    old_lock_timeout = None
    own_transaction = (
        ticket.max_rows is not None and conn.autocommit and (conn.info.transaction_status == _IDLE)
    )
    try:
        if ticket.lock_timeout is not None:
            raw.execute(
                "select current_setting('lock_timeout'), set_config('lock_timeout', %s, false)",
                (ticket.lock_timeout,),
            )
            row = raw.fetchone()
            old_lock_timeout = row[0] if row else None
        if ticket.max_rows is None:
            yield
        elif own_transaction:
            with conn.transaction():
                yield
                _check(cursor, ticket, governor)
        else:
            raw.execute(f"savepoint {_SAVEPOINT}")
            yield
            try:
                _check(cursor, ticket, governor)
            except BaseException:
                raw.execute(f"rollback to savepoint {_SAVEPOINT}")
                raw.execute(f"release savepoint {_SAVEPOINT}")
                raise
            raw.execute(f"release savepoint {_SAVEPOINT}")
    finally:
        if _can_restore(conn, old_lock_timeout):
            raw.execute("select set_config('lock_timeout', %s, false)", (old_lock_timeout,))
        raw.close()


@asynccontextmanager
async def guarded_async(cursor: Any, ticket: Any, governor: Any) -> AsyncIterator[None]:
    """Run the body under the ticket's limits (async connections)."""
    conn = cursor._conn
    _refuse_in_pipeline(conn)
    raw = AsyncTrustedCursor(conn, row_factory=tuple_row)
    old_lock_timeout = None
    own_transaction = (
        ticket.max_rows is not None and conn.autocommit and (conn.info.transaction_status == _IDLE)
    )
    try:
        if ticket.lock_timeout is not None:
            await raw.execute(
                "select current_setting('lock_timeout'), set_config('lock_timeout', %s, false)",
                (ticket.lock_timeout,),
            )
            row = await raw.fetchone()
            old_lock_timeout = row[0] if row else None
        if ticket.max_rows is None:
            yield
        elif own_transaction:
            async with conn.transaction():
                yield
                _check(cursor, ticket, governor)
        else:
            await raw.execute(f"savepoint {_SAVEPOINT}")
            yield
            try:
                _check(cursor, ticket, governor)
            except BaseException:
                await raw.execute(f"rollback to savepoint {_SAVEPOINT}")
                await raw.execute(f"release savepoint {_SAVEPOINT}")
                raise
            await raw.execute(f"release savepoint {_SAVEPOINT}")
    finally:
        if _can_restore(conn, old_lock_timeout):
            await raw.execute("select set_config('lock_timeout', %s, false)", (old_lock_timeout,))
        await raw.close()


def _can_restore(conn: Any, old: str | None) -> bool:
    # In a failed transaction the set_config is undone by the rollback anyway.
    return (
        old is not None
        and not conn.closed
        and conn.info.transaction_status != pq.TransactionStatus.INERROR
    )


def _check(cursor: Any, ticket: Any, governor: Any) -> None:
    affected = affected_rows(cursor)
    if affected > ticket.max_rows:
        raise governor.exceeded(ticket, affected)
