"""Where each result column comes from: ``pgresult.ftable/ftablecol`` → ``schema.table.column``.

PostgreSQL names the table and column number behind every plain column
reference in a result (through aliases, subqueries, CTEs, joins, RETURNING
and server cursors); 0 means computed. One catalog query per unseen table
resolves them, cached per connection and dropped after DDL on it.

Results arrive while psycopg holds the connection's lock, when no query can
be sent. So tables are looked up before a statement is sent (those the
analyzer says it reads) and, for ``execute``, again right after it returns
if a result names a table still unknown; until then such a column counts as
computed, which the value detectors cover.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import pq
from psycopg.rows import tuple_row

from governed_db.driver._trusted import AsyncTrustedRawCursor, TrustedRawCursor, arun, run

__all__ = ["Catalog", "columns_of", "load", "load_async"]

_BY_OID = """\
select c.oid, n.nspname, c.relname, a.attnum, a.attname
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
where c.oid = any($1::pg_catalog.oid[])"""

# The analyzer qualifies an unqualified name as public.x; the server resolves it by
# search_path (a temporary table, another schema), so both spellings are looked up.
_BY_NAME = """\
select x.name, c.oid, n.nspname, c.relname, a.attnum, a.attname
from unnest($1::text[], $2::text[]) as x(name, spelled)
join pg_catalog.pg_class c on c.oid = pg_catalog.to_regclass(x.spelled)
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped"""


class Catalog:
    """One connection's cache: table OID → (``schema.table``, {attnum: column name})."""

    __slots__ = ("aliases", "names", "tables")

    def __init__(self) -> None:
        self.tables: dict[int, tuple[str, dict[int, str]]] = {}
        self.names: set[str] = set()  # ``schema.table`` names already looked up
        #: the analyzer's name for a table -> the OID the server resolved it to
        self.aliases: dict[str, int] = {}

    def source(self, oid: int, attnum: int) -> str | None:
        """``schema.table.column``, or None (computed, or not known yet)."""
        entry = self.tables.get(oid)
        if entry is None:
            return None
        column = entry[1].get(attnum)
        return None if column is None else f"{entry[0]}.{column}"

    def missing(self, results: Any) -> list[int]:
        """Table OIDs named by ``results`` that are not cached."""
        oids: set[int] = set()
        for res in results:
            for i in range(res.nfields):
                oid = res.ftable(i)
                if oid and oid not in self.tables:
                    oids.add(oid)
        return sorted(oids)

    def unseen(self, tables: Any) -> list[str]:
        """Qualified table names not looked up yet."""
        return sorted(t for t in tables if t not in self.names)

    def add(self, rows: list[tuple[Any, ...]], names: Sequence[str] = ()) -> None:
        """Store catalog rows ``(oid, schema, table, attnum, column)``."""
        for oid, schema, table, attnum, column in rows:
            entry = self.tables.get(oid)
            if entry is None:
                entry = self.tables[oid] = (f"{schema}.{table}", {})
            entry[1][attnum] = column
        if names:
            self.names.update(names)

    def add_named(self, rows: list[tuple[Any, ...]], names: Sequence[str]) -> None:
        """Store ``(name, oid, schema, table, attnum, column)`` rows of a lookup by name."""
        self.add([row[1:] for row in rows])
        for row in rows:
            self.aliases[row[0]] = row[1]
        self.names.update(names)

    def columns_of(self, name: str) -> tuple[str, list[str]] | None:
        """``(schema.table, column names)`` of a table by the analyzer's name, if looked up."""
        oid = self.aliases.get(name)
        entry = self.tables.get(oid) if oid is not None else None
        return None if entry is None else (entry[0], list(entry[1].values()))

    def clear(self) -> None:
        """Forget everything (after DDL on this connection)."""
        self.tables.clear()
        self.names.clear()
        self.aliases.clear()


def columns_of(cursor: Any, catalog: Catalog) -> list[tuple[str, str | None, int]]:
    """The cursor's current result: (name, ``schema.table.column`` or None, type OID) each."""
    res = cursor.pgresult
    if res is None or not res.nfields:
        return []
    encoding = cursor._encoding
    columns = []
    for i in range(res.nfields):
        oid = res.ftable(i)
        source = catalog.source(oid, res.ftablecol(i)) if oid else None
        name = res.fname(i)
        columns.append((name.decode(encoding) if name else "", source, res.ftype(i)))
    return columns


def _spellings(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """Each name, spelled as the analyzer wrote it and, for ``public.x``, as plain ``x``.

    The plain spelling comes first so that, as on the server, ``search_path`` decides.
    """
    keys: list[str] = []
    spelled: list[str] = []
    for name in names:
        schema, _, table = name.partition(".")
        if schema == "public":
            keys.append(name)
            spelled.append(_quoted(table))
        keys.append(name)
        spelled.append(".".join(_quoted(p) for p in name.split(".", 1)))
    return keys, spelled


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


_READY = (pq.TransactionStatus.IDLE, pq.TransactionStatus.INTRANS)


def _usable(conn: Any) -> bool:
    return (
        not conn.closed
        and not conn.pgconn.pipeline_status
        and conn.info.transaction_status
        in (pq.TransactionStatus.IDLE, pq.TransactionStatus.INTRANS)
    )


def load(
    conn: Any, catalog: Catalog, *, oids: Sequence[int] = (), names: Sequence[str] = ()
) -> None:
    """Look up ``oids`` and/or ``names`` on ``conn`` (sync); silently skipped when it can't."""
    if not (oids or names) or not _usable(conn):
        return
    with TrustedRawCursor(conn, row_factory=tuple_row) as cur:
        if oids:
            run(cur, _BY_OID, (list(oids),))
            catalog.add(cur.fetchall())
        if names:
            run(cur, _BY_NAME, _spellings(names))
            catalog.add_named(cur.fetchall(), names)


async def load_async(
    conn: Any,
    catalog: Catalog,
    *,
    oids: Sequence[int] = (),
    names: Sequence[str] = (),
) -> None:
    """The async twin of ``load``."""
    if not (oids or names) or not _usable(conn):
        return
    async with AsyncTrustedRawCursor(conn, row_factory=tuple_row) as cur:
        if oids:
            await arun(cur, _BY_OID, (list(oids),))
            catalog.add(await cur.fetchall())
        if names:
            await arun(cur, _BY_NAME, _spellings(names))
            catalog.add_named(await cur.fetchall(), names)
