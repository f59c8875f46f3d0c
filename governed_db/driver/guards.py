"""Limits enforced around a statement: blast radius and DDL lock timeout.

``max_rows_affected`` runs the statement inside a SAVEPOINT (or, under
autocommit, its own transaction), counts the rows it affected, and rolls it
back and raises if they exceed the limit. ``lock_timeout`` is set for the
statement alone and restored after it. These use the private trusted cursors on
the same connection, admitted per statement: the guard's own bookkeeping is
not the caller's statement.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from psycopg import pq
from psycopg.rows import tuple_row

from governed_db.driver._trusted import AsyncTrustedCursor, TrustedCursor, arun, run
from governed_db.errors import GovernanceError

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
            run(
                raw,
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
            run(raw, f"savepoint {_SAVEPOINT}")
            yield
            try:
                _check(cursor, ticket, governor)
            except BaseException:
                run(raw, f"rollback to savepoint {_SAVEPOINT}")
                run(raw, f"release savepoint {_SAVEPOINT}")
                raise
            run(raw, f"release savepoint {_SAVEPOINT}")
    finally:
        if _can_restore(conn, old_lock_timeout):
            run(raw, "select set_config('lock_timeout', %s, false)", (old_lock_timeout,))
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
            await arun(
                raw,
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
            await arun(raw, f"savepoint {_SAVEPOINT}")
            yield
            try:
                _check(cursor, ticket, governor)
            except BaseException:
                await arun(raw, f"rollback to savepoint {_SAVEPOINT}")
                await arun(raw, f"release savepoint {_SAVEPOINT}")
                raise
            await arun(raw, f"release savepoint {_SAVEPOINT}")
    finally:
        if _can_restore(conn, old_lock_timeout):
            await arun(raw, "select set_config('lock_timeout', %s, false)", (old_lock_timeout,))
        await raw.close()


def _can_restore(conn: Any, old: str | None) -> bool:
    # In a failed transaction the set_config is undone by the rollback anyway.
    return (
        old is not None
        and not conn.closed
        and conn.info.transaction_status != pq.TransactionStatus.INERROR
    )


_DML_TAGS = frozenset({b"INSERT", b"UPDATE", b"DELETE", b"MERGE"})
_COUNTED = frozenset({"update", "delete", "merge"})


def _countable(cursor: Any, ticket: Any) -> bool:
    """Whether the rows the statement changed can be counted from its results.

    A write hidden in a CTE, ``EXPLAIN ANALYZE``, ``COPY (...) TO`` or
    ``CREATE TABLE AS`` reports the rows it returned, not the rows it changed;
    a cursor closed by its own row factory reports nothing.
    """
    if cursor.closed:
        return False
    facts = ticket.facts
    results = getattr(cursor, "_results", None) or []
    if facts is None or not results:
        return True
    statements = facts.statements
    for i, res in enumerate(results):
        s = statements[0] if len(statements) == 1 else statements[min(i, len(statements) - 1)]
        tag = (res.command_status or b"").split(b" ", 1)[0]
        if s.effects & _COUNTED and tag not in _DML_TAGS:
            return False
    return True


def _check(cursor: Any, ticket: Any, governor: Any) -> None:
    if not _countable(cursor, ticket):
        raise governor.uncountable(ticket)
    affected = affected_rows(cursor)
    if affected > ticket.max_rows:
        raise governor.exceeded(ticket, affected)
