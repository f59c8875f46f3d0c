"""Where each result column comes from: ``pgresult.ftable/ftablecol`` → ``schema.table.column``.

PostgreSQL names the table and column number behind every plain column
reference in a result (through aliases, subqueries, CTEs, joins, RETURNING
and server cursors); 0 means computed. One catalog query per unseen table
resolves them, cached per connection and dropped after DDL on it.

For lineage (``masking.lineage_plan``) the catalog is also ``Relations``: a
relation by the analyzer's name, its columns in order and, for a view or a
materialized view, its definition (``pg_get_viewdef``). Looking up a view
looks up what its definition reads too, to any depth.

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
from governed_db.governor.masking_gate import view_tables
from governed_db.masking.lineage_plan import Derived, Relation

__all__ = ["Catalog", "changes_schema", "columns_of", "load", "load_async"]

#: How many rounds of "look up what the views just found read" a lookup takes at most.
_VIEW_ROUNDS = 8

_BY_OID = """\
select c.oid, n.nspname, c.relname, a.attnum, a.attname, c.relkind
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
where c.oid = any($1::pg_catalog.oid[])"""

# The analyzer qualifies an unqualified name as public.x; the server resolves it by
# search_path (a temporary table, another schema), so both spellings are looked up.
_BY_NAME = """\
select x.name, c.oid, n.nspname, c.relname, a.attnum, a.attname, c.relkind
from unnest($1::text[], $2::text[]) as x(name, spelled)
join pg_catalog.pg_class c on c.oid = pg_catalog.to_regclass(x.spelled)
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped"""

_VIEWS = """\
select c.oid, pg_catalog.pg_get_viewdef(c.oid)
from pg_catalog.pg_class c
where c.oid = any($1::pg_catalog.oid[])"""

_VIEW_KINDS = frozenset({"v", "m"})


class Catalog:
    """One connection's cache: table OID → (``schema.table``, {attnum: column name})."""

    __slots__ = ("_relations", "aliases", "definitions", "generation", "kinds", "lineage_cache",
                 "names", "qualified", "tables", "tx_ddl", "view_lineage")  # fmt: skip

    def __init__(self) -> None:
        self.tables: dict[int, tuple[str, dict[int, str]]] = {}
        self.names: set[str] = set()  # ``schema.table`` names already looked up
        #: the analyzer's name for a table -> the OID the server resolved it to
        self.aliases: dict[str, int] = {}
        #: ``schema.table`` as the server names it -> OID
        self.qualified: dict[str, int] = {}
        #: OID -> relkind ("r", "v", "m", ...); OID -> a view's definition
        self.kinds: dict[int, str] = {}
        self.definitions: dict[int, str] = {}
        #: lineage caches, emptied whenever the catalog learns or forgets something
        self.view_lineage: dict[str, tuple[Derived, ...] | None] = {}
        self.lineage_cache: dict[Any, Any] = {}
        self._relations: dict[str, Relation | None] = {}
        #: counts what the catalog learned or forgot: plans made from it are good while it stands
        self.generation = 0
        #: DDL ran in the transaction still open: what is learned in it may be rolled back
        self.tx_ddl = False

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
        """Store catalog rows ``(oid, schema, table, attnum, column[, relkind])``."""
        for oid, schema, table, attnum, column, *kind in rows:
            entry = self.tables.get(oid)
            if entry is None:
                entry = self.tables[oid] = (f"{schema}.{table}", {})
                self.qualified[entry[0]] = oid
            entry[1][attnum] = column
            if kind:
                self.kinds[oid] = kind[0]
        if names:
            self.names.update(names)
        self._changed()

    def _changed(self) -> None:
        self.generation += 1
        self.view_lineage.clear()
        self.lineage_cache.clear()
        self._relations.clear()

    def views_without_definition(self) -> list[int]:
        """OIDs of views and materialized views whose definition is not fetched yet."""
        defined = self.definitions
        return sorted(o for o, k in self.kinds.items() if k in _VIEW_KINDS and o not in defined)

    def add_definitions(self, rows: list[tuple[Any, ...]]) -> list[str]:
        """Store ``(oid, definition)`` rows; the relations they read not looked up yet."""
        wanted: set[str] = set()
        for oid, definition in rows:
            self.definitions[oid] = definition or ""
            wanted |= view_tables(definition or "")
        self._changed()
        return self.unseen(wanted)

    def relation(self, name: str) -> Relation | None:
        """``Relations.relation``: by the analyzer's name or the server's ``schema.table``."""
        try:
            return self._relations[name]
        except KeyError:
            pass
        oid = self.aliases.get(name)
        if oid is None:
            oid = self.qualified.get(name)
        entry = self.tables.get(oid) if oid is not None else None
        found = None
        if entry is not None and oid is not None:
            columns = tuple(entry[1][k] for k in sorted(entry[1]))
            definition = None
            if self.kinds.get(oid) in _VIEW_KINDS:
                definition = self.definitions.get(oid, "")
            found = Relation(entry[0], columns, definition)
        if len(self._relations) > 4096:
            self._relations.clear()
        self._relations[name] = found
        return found

    def remember_lineage(self, key: Any, value: Any) -> None:
        """Keep a statement's resolved lineage until the catalog changes."""
        if len(self.lineage_cache) > 4096:
            self.lineage_cache.clear()
        self.lineage_cache[key] = value

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

    def after_ddl(self, pgconn: Any) -> None:
        """Forget everything DDL may have changed; mark a transaction it left open.

        DDL changes what tables and views are. Inside a transaction it can
        still be rolled back (``ROLLBACK``, ``ROLLBACK TO SAVEPOINT``,
        ``conn.rollback()``, a failed ``transaction()`` block), and what is
        learned in between would then describe objects that no longer are. So
        while ``tx_ddl`` is set the driver calls this again before each
        statement (which plans its own result from what it looks up), and once
        more after the transaction has ended, which clears the mark.
        """
        self.clear()
        self.tx_ddl = pgconn.transaction_status != pq.TransactionStatus.IDLE

    def clear(self) -> None:
        """Forget everything (after DDL on this connection)."""
        self.tables.clear()
        self.names.clear()
        self.aliases.clear()
        self.qualified.clear()
        self.kinds.clear()
        self.definitions.clear()
        self._changed()


def columns_of(cursor: Any, catalog: Catalog) -> list[tuple[str, str | None, int]]:
    """The cursor's current result: (name, ``schema.table.column`` or None, type OID) each."""
    res = cursor.pgresult
    if res is None or not res.nfields:
        return []
    return result_columns(res, catalog, cursor._encoding)


def result_columns(res: Any, catalog: Catalog, encoding: str) -> list[tuple[str, str | None, int]]:
    """The columns of libpq result ``res`` (a result or a description of one)."""
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
        for _ in range(_VIEW_ROUNDS):  # views: their definitions, and what those read
            views = catalog.views_without_definition()
            if not views:
                break
            run(cur, _VIEWS, (views,))
            more = catalog.add_definitions(cur.fetchall())
            if more:
                run(cur, _BY_NAME, _spellings(more))
                catalog.add_named(cur.fetchall(), more)


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
        for _ in range(_VIEW_ROUNDS):
            views = catalog.views_without_definition()
            if not views:
                break
            await arun(cur, _VIEWS, (views,))
            more = catalog.add_definitions(await cur.fetchall())
            if more:
                await arun(cur, _BY_NAME, _spellings(more))
                catalog.add_named(await cur.fetchall(), more)


def changes_schema(ticket: Any) -> bool:
    """Whether a ticket's statement is DDL (the connection's catalog is then stale)."""
    planned = ticket.planned
    if planned is not None:
        return bool(planned.ddl)
    facts = ticket.facts
    return facts is not None and any(s.statement_class == "ddl" for s in facts.statements)
