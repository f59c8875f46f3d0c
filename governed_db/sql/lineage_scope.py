"""The FROM items lineage resolves column references through, and small tree helpers.

Each query level has its FROM items (``Rel``): base relations (named as the
analyzer names them), derived ones (subqueries, CTEs, VALUES, functions with a
known shape) whose columns are already followed, and functions of unknown
shape. A column reference is resolved through them, innermost level first;
what only the catalog can place stays a ``Source`` with candidate tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from governed_db.sql.lineage import (
    Branches,
    Column,
    Expand,
    Item,
    Opaque,
    Source,
    item_sources,
)

__all__ = [
    "Acc",
    "Ctes",
    "Node",
    "Rel",
    "Scope",
    "figure_name",
    "find",
    "flat",
    "literal",
    "merge",
    "plain",
    "qualified",
    "star_target",
    "strings",
    "unknown_item",
]

Node = dict[str, Any]
Acc = tuple[set[Source], list[bool]]  # sources, [unknown]
Scope = list[list["Rel"]]  # the FROM items of each query level, outermost first
Ctes = dict[str, "Rel"]


def strings(items: Any) -> list[str]:
    return [i["String"]["sval"] for i in items or () if "String" in i]


def qualified(rv: Node) -> str:
    return f"{rv.get('schemaname', 'public')}.{rv.get('relname', '')}"


@dataclass(eq=False)
class Rel:
    """A FROM item at one query level."""

    refname: str | None
    schema: str | None = None
    table: str | None = None  # base relation (analyzer's name)
    colnames: tuple[str, ...] = ()  # alias column list (renames positionally)
    columns: list[tuple[str | None, Item]] | None = None  # derived: followed columns
    opaque: frozenset[Source] | None = None  # function of unknown shape: its arguments
    children: tuple[Rel, ...] = ()  # a join: its two sides
    transparent: bool = False  # an unaliased join: its sides are named, not it
    leaves: tuple[Rel, ...] = ()  # of a transparent join: the items it makes visible
    builtin: frozenset[Source] | None = None  # built-in function: its arguments
    assigned: dict[str, frozenset[Source]] = field(default_factory=dict)
    assigned_all: frozenset[Source] = frozenset()

    def named(self, name: str) -> tuple[bool, set[Source], bool]:
        """(exact, sources, unknown) of column ``name`` of this item (exact: surely it)."""
        if self.children:
            sources: set[Source] = set()
            unknown = False
            for child in self.children:
                _, found, unk = child.named(name)
                sources |= found
                unknown = unknown or unk
            return False, sources, unknown
        if self.table is not None:
            extra = set(self.assigned.get(name, ())) | set(self.assigned_all)
            if name in self.colnames:
                column = f"#{self.colnames.index(name) + 1}"
                return True, {Source((self.table,), column), *extra}, False
            return False, {Source((self.table,), name), *extra}, False
        if self.opaque is not None:
            return name in self.colnames, set(self.opaque), True
        if self.builtin is not None:
            return False, set(self.builtin), False
        columns = self.columns or []
        names = self.colnames
        for i, (own, item) in enumerate(columns):
            label = names[i] if i < len(names) else own
            if label == name and not isinstance(item, Expand | Branches | Opaque):
                assert isinstance(item, Column)
                return True, set(item.sources), item.unknown
        sources = set()
        unknown = False
        renamed = bool(names) and any(not isinstance(c[1], Column) for c in columns)
        for _, item in columns:
            if isinstance(item, Expand) and not renamed:
                sources.add(Source((item.table,), name))
                sources |= {s for c, found in item.also if c == name for s in found}
                sources |= item.also_all
            elif not isinstance(item, Column) or renamed:
                sources |= set(item_sources(item))
                unknown = unknown or unknown_item(item)
        return False, sources, unknown

    def star(self, exclude: frozenset[str] = frozenset()) -> list[Item]:
        """The items ``refname.*`` stands for."""
        if self.children:
            return [i for child in self.children for i in child.star(exclude)]
        if self.table is not None:
            also = tuple((k, v) for k, v in self.assigned.items())
            return [Expand(self.table, exclude, also, self.assigned_all)]
        if self.opaque is not None:
            return [Opaque(self.opaque)]
        if self.builtin is not None:
            return [Opaque(self.builtin, unknown=False)]
        out = []
        for i, (own, item) in enumerate(self.columns or []):
            label = self.colnames[i] if i < len(self.colnames) else own
            if label is None or label not in exclude:
                out.append(item)
        return out

    def whole(self) -> set[Source]:
        """Every source of the whole row (``to_jsonb(t)``)."""
        return {s for item in self.star() for s in item_sources(item)}


def flat(level: list[Rel]) -> list[Rel]:
    """The items of a level, the sides of unaliased joins in place of the joins."""
    out: list[Rel] = []
    for rel in level:
        if rel.transparent:
            out.extend(rel.leaves)
        else:
            out.append(rel)
    return out


def find(scope: Scope, names: list[str]) -> Rel | None:
    """The FROM item ``names`` (``[schema.]refname``) refers to, innermost level first."""
    if not names or len(names) > 2:
        return None
    for level in reversed(scope):
        for rel in flat(level):
            if rel.refname == names[-1] and (len(names) == 1 or rel.schema == names[0]):
                return rel
    return None


def star_target(val: Any) -> list[str] | None:
    """The qualifier of a ``*`` target (``[]`` for a bare ``*``), or None."""
    if type(val) is dict and "ColumnRef" in val:
        fields = val["ColumnRef"].get("fields", ())
        if fields and "A_Star" in fields[-1]:
            return strings(fields[:-1])
    return None


def literal(node: Any) -> bool:
    """A constant or a parameter (what a probe compares a column with)."""
    while type(node) is dict and "TypeCast" in node:
        node = node["TypeCast"].get("arg")
    return type(node) is dict and ("A_Const" in node or "ParamRef" in node)


def figure_name(val: Any) -> str | None:
    """The name PostgreSQL gives an unnamed output column (enough to refer to it)."""
    while type(val) is dict:
        if "ColumnRef" in val:
            names = strings(val["ColumnRef"].get("fields"))
            return names[-1] if names else None
        if "TypeCast" in val:
            val = val["TypeCast"].get("arg")
            continue
        if "FuncCall" in val:
            names = strings(val["FuncCall"].get("funcname"))
            return names[-1] if names else None
        return None
    return None


def unknown_item(item: Item) -> bool:
    if isinstance(item, Column):
        return item.unknown
    if isinstance(item, Opaque):
        return item.unknown
    if isinstance(item, Branches):
        return any(unknown_item(i) for b in item.branches for i in b)
    return False


def merge(a: Item, b: Item) -> Item:
    assert isinstance(a, Column)
    assert isinstance(b, Column)
    return Column(a.sources | b.sources, a.unknown or b.unknown, a.plain and b.plain)


def plain(val: Any, scope: Scope) -> bool:
    """Is ``val`` a column's stored value (a reference, maybe cast), not computed from it?"""
    while type(val) is dict and ("TypeCast" in val or "CollateClause" in val):
        val = (val.get("TypeCast") or val.get("CollateClause") or {}).get("arg")
    if type(val) is not dict or "ColumnRef" not in val:
        return False
    fields = val["ColumnRef"].get("fields", ())
    names = strings(fields)
    if not names or "A_Star" in fields[-1]:
        return False
    rel = find(scope, names[:-1]) if len(names) >= 2 else None
    candidates = [rel] if rel is not None else [r for level in scope for r in flat(level)]
    for candidate in candidates:
        if candidate.table is not None:
            if candidate.assigned.get(names[-1]) or candidate.assigned_all:
                return False
            continue
        for i, (own, item) in enumerate(candidate.columns or []):
            label = candidate.colnames[i] if i < len(candidate.colnames) else own
            if label == names[-1] and not (isinstance(item, Column) and item.plain):
                return False
        if candidate.opaque is not None or candidate.builtin is not None or candidate.children:
            if candidate.children:
                continue
            return False
    return True
