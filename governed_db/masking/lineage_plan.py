"""A statement's lineage resolved against the catalog: what each result column derives from.

``sql.lineage`` names relations as the statement does and leaves ``*``,
unqualified columns and views to the catalog. ``resolve`` turns it into one
``Derived`` per result column: the base columns (``schema.table.column``) it
derives from and whether some of it could not be followed. A view's columns
resolve through its definition (parsed with the same lineage), to any depth.

The catalog is the driver's; masking sees it through ``Relations``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from governed_db.sql import analyze
from governed_db.sql.lineage import (
    Branches,
    Column,
    Expand,
    Item,
    Lineage,
    Opaque,
    Source,
    item_sources,
)

__all__ = ["NOTHING", "Derived", "Relation", "Relations", "derived_columns", "resolve"]

#: How deep views over views are followed before the rest counts as unknown.
MAX_VIEW_DEPTH = 16


@dataclass(frozen=True, slots=True)
class Derived:
    """What one result column derives from: base ``schema.table.column`` names.

    ``plain``: its value is a stored value (through views too), not computed from one.
    """

    sources: frozenset[str] = frozenset()
    unknown: bool = False
    plain: bool = False


NOTHING = Derived()
_UNKNOWN = Derived(unknown=True)


@dataclass(frozen=True, slots=True)
class Relation:
    """A relation the catalog knows: ``schema.name``, its columns in order, its definition.

    ``definition`` is the query of a view or materialized view (None for a table).
    """

    qualified: str
    columns: tuple[str, ...]
    definition: str | None = None


class Relations(Protocol):
    """The catalog as lineage needs it (a connection's, cached and cleared after DDL)."""

    def relation(self, name: str) -> Relation | None:
        """The relation a statement names ``name`` (``schema.table``), if looked up."""

    @property
    def view_lineage(self) -> dict[str, tuple[Derived, ...] | None]:
        """A cache: view ``schema.name`` -> its columns' ``Derived`` (None: in progress)."""


def resolve(lineage: Lineage, relations: Relations, width: int) -> tuple[Derived, ...]:
    """One ``Derived`` per result column (``width`` of them)."""
    if not lineage.known:
        return (_UNKNOWN,) * width
    if not lineage.data:
        return (NOTHING,) * width
    return _Resolver(relations).output(lineage.items, width)


def derived_columns(
    lineage: Lineage,
    sources: Sequence[str | None],
    relations: Relations,
) -> tuple[Derived, ...]:
    """``resolve``, plus what the view behind each column's own source derives from."""
    resolver = _Resolver(relations)
    width = len(sources)
    if not lineage.known:
        out = [_UNKNOWN] * width
    elif not lineage.data:
        out = [NOTHING] * width
    else:
        out = list(resolver.output(lineage.items, width))
    for i, source in enumerate(sources):
        if source is None:
            continue
        table, _, column = source.rpartition(".")
        rel = relations.relation(table)
        if rel is not None and rel.definition is not None:
            view = resolver.view_column(rel, column)
            out[i] = Derived(out[i].sources | view.sources, out[i].unknown or view.unknown,
                             view.plain)  # fmt: skip
        elif out[i].plain is False:  # a table's column, as stored (the server says so)
            out[i] = Derived(out[i].sources, out[i].unknown, True)
    return tuple(out)


class _Resolver:
    __slots__ = ("depth", "relations")

    def __init__(self, relations: Relations, depth: int = 0) -> None:
        self.relations = relations
        self.depth = depth

    def output(self, items: Sequence[Item], width: int) -> tuple[Derived, ...]:
        columns = self.items(items, width)
        if columns is None or len(columns) != width:  # the shapes don't line up: fail wide
            every = _join(self.item(i) for i in items)
            return (Derived(every.sources, True),) * width
        return tuple(columns)

    def items(self, items: Sequence[Item], width: int | None) -> list[Derived] | None:
        """Each item's columns in order; an ``Opaque`` takes what the others leave."""
        fixed: list[list[Derived] | None] = []
        variable = -1
        for i, item in enumerate(items):
            if isinstance(item, Opaque):
                if variable >= 0 or width is None:
                    return None
                variable = i
                fixed.append(None)
                continue
            found = self.columns_of(item)
            if found is None:
                return None
            fixed.append(found)
        out: list[Derived] = []
        taken = sum(len(f) for f in fixed if f is not None)
        for i, found in enumerate(fixed):
            if found is not None:
                out.extend(found)
                continue
            opaque = items[i]
            assert isinstance(opaque, Opaque) and width is not None  # noqa: PT018
            if width < taken:
                return None
            one = Derived(self.sources(opaque.sources).sources, opaque.unknown)
            out.extend([one] * (width - taken))
        return out

    def columns_of(self, item: Item) -> list[Derived] | None:
        if isinstance(item, Column):
            found = self.sources(item.sources)
            plain = item.plain and all(self.plain(s) for s in item.sources)
            return [Derived(found.sources, found.unknown or item.unknown, plain)]
        if isinstance(item, Expand):
            rel = self.relations.relation(item.table)
            if rel is None:
                return None
            also = dict(item.also)
            extra = self.sources(item.also_all)
            out = []
            for name in rel.columns:
                if name in item.exclude:
                    continue
                parts = [self.column(rel, name), extra]
                if name in also:
                    parts.append(self.sources(also[name]))
                joined = _join(parts)
                plain = not item.also_all and name not in also and parts[0].plain
                out.append(Derived(joined.sources, joined.unknown, plain))
            return out
        if isinstance(item, Branches):
            branches = [self.items(b, None) for b in item.branches]
            if any(b is None for b in branches):
                return None
            widths = {len(b) for b in branches if b is not None}
            if len(widths) != 1:
                return None
            return [
                Derived(j.sources, j.unknown, all(c.plain for c in column))
                for column in zip(*branches, strict=True)
                for j in (_join(column),)
            ]
        return None

    def item(self, item: Item) -> Derived:
        """Everything ``item`` derives from, as one (when the shape cannot be lined up)."""
        found = self.sources(frozenset(item_sources(item)))
        unknown = isinstance(item, Opaque) or (isinstance(item, Column) and item.unknown)
        return Derived(found.sources, found.unknown or unknown)

    def sources(self, sources: Iterable[Source]) -> Derived:
        return _join(self.source(s) for s in sources)

    def source(self, source: Source) -> Derived:
        """The base columns one ``Source`` stands for."""
        rels = []
        for name in source.tables:
            rel = self.relations.relation(name)
            if rel is None:
                return _UNKNOWN  # not looked up: the catalog can't say what it is
            rels.append(rel)
        column = source.column
        for rel in rels:
            if column == "*":
                return _join(self.column(rel, c) for c in rel.columns)
            if column.startswith("#"):
                index = int(column[1:]) - 1
                if 0 <= index < len(rel.columns):
                    return self.column(rel, rel.columns[index])
                return _UNKNOWN
            if column in rel.columns:
                return self.column(rel, column)
        if source.row and rels:
            return _join(self.column(rels[0], c) for c in rels[0].columns)
        return NOTHING  # no candidate has it: a name of an outer level, or an error

    def plain(self, source: Source) -> bool:
        """A single column's stored value (through a view: if the view's column is)."""
        if source.column == "*" or source.row:
            return False
        found = self.source(source)
        return found.plain

    def column(self, rel: Relation, column: str) -> Derived:
        own = frozenset((f"{rel.qualified}.{column}",))
        if rel.definition is None:
            return Derived(own, plain=True)
        found = self.view_column(rel, column)
        return Derived(own | found.sources, found.unknown, found.plain)

    def view_column(self, rel: Relation, column: str) -> Derived:
        """What a view's column derives from, through its definition."""
        cache = self.relations.view_lineage
        key = rel.qualified
        if key not in cache:
            if self.depth >= MAX_VIEW_DEPTH:
                return _UNKNOWN
            cache[key] = None  # a view that reaches itself stops here
            inner = _Resolver(self.relations, self.depth + 1)
            facts = analyze(rel.definition or "")
            statement = facts.statements[0] if facts.statement_count == 1 else None
            if statement is None:
                cache[key] = (_UNKNOWN,) * len(rel.columns)
            else:
                cache[key] = inner.output(statement.lineage.items, len(rel.columns))
        found = cache[key]
        if found is None:
            return _UNKNOWN
        if column in rel.columns:
            index = rel.columns.index(column)
            if index < len(found):
                return found[index]
        return _UNKNOWN


def _join(parts: Iterable[Derived]) -> Derived:
    sources: set[str] = set()
    unknown = False
    for part in parts:
        sources |= part.sources
        unknown = unknown or part.unknown
    return Derived(frozenset(sources), unknown)
