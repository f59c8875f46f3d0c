"""Expressions: the source columns a value derives from (references, calls, subqueries).

A mixin of the lineage walker (``lineage_walk``), over ``lineage_uses``.
"""

from __future__ import annotations

from typing import Any

from governed_db.sql.lineage import Column, Source, item_sources
from governed_db.sql.lineage_functions import known_function
from governed_db.sql.lineage_scope import Acc, Ctes, Node, Scope, find, flat, strings, unknown_item
from governed_db.sql.lineage_uses import Uses

__all__ = ["DML", "Expressions"]

#: Keys under an expression that hold no column reference.
_SKIP = frozenset({"location", "typeName", "funcname", "name", "sortby_dir", "sortby_nulls"})
DML = ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt")
_DML = DML


class Expressions(Uses):
    """Adds to an accumulator every source an expression reads (``column``, ``expr``)."""

    __slots__ = ()

    # -- expressions ---------------------------------------------------------------------------
    def column(self, node: Any, scope: Scope, ctes: Ctes) -> Column:
        acc: Acc = (set(), [False])
        self.expr(node, scope, ctes, acc)
        return Column(frozenset(acc[0]), acc[1][0])

    def expr(self, node: Any, scope: Scope, ctes: Ctes, acc: Acc) -> None:
        """Add to ``acc`` every source ``node`` reads (and whether any is unknown)."""
        if type(node) is list:
            for item in node:
                self.expr(item, scope, ctes, acc)
            return
        if type(node) is not dict:
            return
        for key, val in node.items():
            if key in _SKIP:
                continue
            if key == "ColumnRef":
                self.ref(val.get("fields", ()), scope, acc)
            elif key == "FuncCall":
                self.call(val, scope, ctes, acc)
            elif key == "SubLink":
                self.sublink(val, scope, ctes, acc)
            elif key in ("SelectStmt", *_DML):
                items, _ = self.statement(key, val, scope, ctes)
                for item in items:
                    acc[0].update(item_sources(item))
                    acc[1][0] = acc[1][0] or unknown_item(item)
            elif type(val) is dict or type(val) is list:
                self.expr(val, scope, ctes, acc)

    def ref(self, fields: Any, scope: Scope, acc: Acc) -> None:
        names = strings(fields)
        if not names:
            return
        if "A_Star" in fields[-1]:
            rel = find(scope, names)
            if rel is None:  # (composite).*: what the composite is, unknown here
                acc[1][0] = True
                return
            acc[0].update(rel.whole())
            acc[1][0] = acc[1][0] or rel.opaque is not None
            return
        if len(names) == 1:
            self.bare(names[0], scope, acc)
            return
        column = names[1]
        rel = find(scope, names[:2]) if len(names) >= 3 else None
        if rel is not None:
            column = names[2]
        else:
            rel = find(scope, names[:1])
        if rel is None:  # composite_column.field
            self.bare(names[0], scope, acc)
            return
        _, found, unknown = rel.named(column)
        acc[0].update(found)
        acc[1][0] = acc[1][0] or unknown

    def bare(self, name: str, scope: Scope, acc: Acc) -> None:
        """An unqualified name: a column of some item, innermost level first, or a whole row."""
        tables: list[str] = []
        for level in reversed(scope):
            exact = False
            for rel in flat(level):
                if rel.table is not None and not rel.colnames:
                    tables.append(rel.table)
                    extra = rel.assigned.get(name, frozenset()) | rel.assigned_all
                    acc[0].update(extra)
                    continue
                hit, found, unknown = rel.named(name)
                if hit or found or unknown:
                    acc[0].update(found)
                    acc[1][0] = acc[1][0] or unknown
                    exact = exact or hit
            if exact:
                break
        if tables:
            acc[0].add(Source(tuple(dict.fromkeys(tables)), name))
        for level in reversed(scope):  # a whole-row reference (when no column has the name)
            for rel in flat(level):
                if rel.refname == name:
                    if rel.table is not None:
                        acc[0].add(Source((rel.table,), name, row=True))
                    else:
                        acc[0].update(rel.whole())
                    return

    def call(self, call: Node, scope: Scope, ctes: Ctes, acc: Acc) -> None:
        if not known_function(strings(call.get("funcname"))):
            acc[1][0] = True
        self.expr(call.get("args"), scope, ctes, acc)
        for sort in call.get("agg_order") or ():
            self.use("order", sort["SortBy"]["node"], scope, ctes)
        if "agg_filter" in call:
            self.condition(call["agg_filter"], scope, ctes)
        if "over" in call:
            self.window(call["over"], scope, ctes)

    def sublink(self, link: Node, scope: Scope, ctes: Ctes, acc: Acc) -> None:
        ((kind, query),) = link["subselect"].items()
        items, _ = self.statement(kind, query, scope, ctes)
        kind_ = link.get("subLinkType", "")
        test = self.column(link.get("testexpr"), scope, ctes) if "testexpr" in link else None
        inner = frozenset(s for i in items for s in item_sources(i))
        if kind_ != "EXISTS_SUBLINK":
            acc[0].update(inner)
            acc[1][0] = acc[1][0] or any(unknown_item(i) for i in items)
        if test is not None:
            acc[0].update(test.sources)
            acc[1][0] = acc[1][0] or test.unknown
