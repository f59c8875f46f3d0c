"""The columns a ``COPY ... TO STDOUT`` will write, described by the server before it runs.

COPY data carries no column names or sources. Before the COPY starts, a
query with the same columns (the COPY's query, or its table's columns as
COPY writes them: listed, else all but generated ones) is prepared as the
unnamed statement and described: the server reports each column's name,
type and source table column, exactly as for a result, without running it.
Inside a transaction this happens under a savepoint, so a failure leaves the
transaction as it was. In pipeline mode, or if anything fails, there is no
description and the caller refuses what it cannot mask (fail closed).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from psycopg import pq
from psycopg.generators import execute

from governed_db.driver.catalog import load, load_async, result_columns

__all__ = ["Column", "copy_columns", "copy_columns_async"]

#: (name, ``schema.table.column`` or None, type OID)
Column = tuple[str, "str | None", int]

_OK = pq.ExecStatus.COMMAND_OK
_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_INTRANS = pq.TransactionStatus.INTRANS
_IDLE = pq.TransactionStatus.IDLE


#: A table's columns as ``COPY table TO`` writes them: in order, generated ones left out.
_COPIED_COLUMNS = (
    b"SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute"
    b" WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''"
)


def _describe(pgconn: Any, shape: Any, savepoint: bool) -> Generator[Any, Any, Any]:
    if savepoint:
        pgconn.send_query(b"SAVEPOINT _gov_copy_describe")
        yield from execute(pgconn)
    query = shape.query
    if query is None and shape.columns:
        query = shape.select()
    elif query is None:
        pgconn.send_query_params(_COPIED_COLUMNS, [shape.table.encode()])
        (res,) = yield from execute(pgconn)
        listed = res.get_value(0, 0) if res.status == _TUPLES_OK and res.ntuples else None
        query = f"SELECT {listed.decode()} FROM {shape.table}" if listed else None
    prepared = False
    if query is not None:
        pgconn.send_prepare(b"", query.encode())
        prepared = (yield from execute(pgconn))[-1].status == _OK
    described = None
    if prepared:
        pgconn.send_describe_prepared(b"")
        (res,) = yield from execute(pgconn)
        described = res if res.status == _OK else None
    if savepoint:
        if not prepared:
            pgconn.send_query(b"ROLLBACK TO SAVEPOINT _gov_copy_describe")
            yield from execute(pgconn)
        pgconn.send_query(b"RELEASE SAVEPOINT _gov_copy_describe")
        yield from execute(pgconn)
    return described


def _start(conn: Any) -> tuple[Any, bool] | None:
    if conn._pipeline is not None:
        return None
    pgconn = conn._gov_pgconn
    status = pgconn.transaction_status
    if status not in (_IDLE, _INTRANS):
        return None
    return pgconn, status == _INTRANS


def _columns(conn: Any, res: Any) -> list[Column]:
    return result_columns(res, conn._gov_catalog, conn._gov_pgconn._encoding)


def copy_columns(cursor: Any, shape: Any) -> list[Column] | None:
    """The columns the COPY of ``shape`` writes (sync), or None when they cannot be described."""
    conn = cursor._conn
    started = _start(conn)
    if started is None:
        return None
    pgconn, savepoint = started
    with conn.lock:
        res = conn.wait(_describe(pgconn, shape, savepoint))
    if res is None:
        return None
    missing = conn._gov_catalog.missing([res])
    if missing:
        load(conn, conn._gov_catalog, oids=missing)
    return _columns(conn, res)


async def copy_columns_async(cursor: Any, shape: Any) -> list[Column] | None:
    """The async twin of ``copy_columns``."""
    conn = cursor._conn
    started = _start(conn)
    if started is None:
        return None
    pgconn, savepoint = started
    async with conn.lock:
        res = await conn.wait(_describe(pgconn, shape, savepoint))
    if res is None:
        return None
    missing = conn._gov_catalog.missing([res])
    if missing:
        await load_async(conn, conn._gov_catalog, oids=missing)
    return _columns(conn, res)
