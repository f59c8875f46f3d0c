"""``copy_shape(text)``: what a ``COPY ... TO STDOUT`` writes, column by column.

Masking a COPY stream by column needs the columns it carries (a table and its
column list, or the rows of a query) and how each line is written (format,
header, whether the delimiter, quoting and NULL are PostgreSQL's defaults).
Read with PostgreSQL's own parser; None whenever that is not certain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CopyShape", "copy_shape"]

#: Options that only change how a line is written when they differ from the defaults.
_LINE_OPTIONS = frozenset(
    {"delimiter", "null", "quote", "escape", "force_quote", "force_not_null", "force_null"}
)


@dataclass(frozen=True, slots=True)
class CopyShape:
    """One ``COPY ... TO`` statement's output: where the rows come from and their layout."""

    #: The query whose rows are copied, as SQL (``COPY (query) TO``), else None.
    query: str | None
    #: The table copied, as written (``COPY table [(columns)] TO``), else None.
    table: str | None
    #: The table's column list, as written (empty: every column).
    columns: tuple[str, ...]
    #: ``text``, ``csv`` or ``binary``.
    format: str
    #: Whether the first line is a header (CSV).
    header: bool
    #: Whether delimiter, quoting and NULL are PostgreSQL's defaults for the format.
    default_layout: bool

    def select(self) -> str:
        """A query with the same columns, in the same order (to describe them)."""
        if self.query is not None:
            return self.query
        columns = ", ".join(_ident(c) for c in self.columns) or "*"
        return f"SELECT {columns} FROM {self.table}"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _option(value: Any) -> str | bool | None:
    if value is None:
        return True
    for attr in ("sval", "boolval"):
        if hasattr(value, attr):
            inner = getattr(value, attr)
            found: str | bool | None = getattr(inner, "boolval", inner)
            return found
    return None


def copy_shape(text: str) -> CopyShape | None:
    """The shape of a single ``COPY ... TO`` statement, or None (not one, or not certain)."""
    try:
        from pglast import ast, parse_sql
        from pglast.stream import RawStream
    except ImportError:  # pragma: no cover - no pglast wheel: the caller refuses
        return None
    try:
        statements = parse_sql(text)
    except Exception:  # not PostgreSQL's grammar: not certain
        return None
    if len(statements) != 1:
        return None
    stmt: Any = statements[0].stmt
    if not isinstance(stmt, ast.CopyStmt) or stmt.is_from or stmt.filename is not None:
        return None
    fmt, header, default = "text", False, True
    for opt in stmt.options or ():
        value = _option(opt.arg)
        if opt.defname == "format":
            fmt = str(value).lower()
        elif opt.defname == "header":
            header = value is True or str(value).lower() in {"true", "on", "1"}
        elif opt.defname in _LINE_OPTIONS:
            default = False
    if stmt.query is not None:
        return CopyShape(RawStream()(stmt.query), None, (), fmt, header, default)
    relation: Any = stmt.relation
    if relation is None:
        return None
    name = ".".join(_ident(p) for p in (relation.schemaname, relation.relname) if p)
    columns = tuple(a.sval for a in stmt.attlist or ())
    return CopyShape(None, name, columns, fmt, header, default)
