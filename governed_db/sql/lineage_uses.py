"""Where a statement uses columns to pick rows: WHERE, HAVING, ON, GROUP/ORDER BY, windows.

A mixin of the lineage walker (``lineage_walk``): comparisons are probes (LIKE,
regex, ranges against a literal or parameter), equalities between columns, or
plain filters; grouping and ordering are ``order`` uses.
"""

from __future__ import annotations

from typing import Any

from governed_db.sql.lineage import Column, Item, Use, item_sources
from governed_db.sql.lineage_scope import Ctes, Node, Scope, literal, strings

__all__ = ["Uses"]

_PROBE_OPS = frozenset({"<", ">", "<=", ">=", "~~", "~~*", "!~~", "!~~*", "~", "~*", "!~", "!~*",
                        "^@", "@@", "similar"})  # fmt: skip
_PROBE_KINDS = frozenset({
    "AEXPR_LIKE", "AEXPR_ILIKE", "AEXPR_SIMILAR", "AEXPR_BETWEEN", "AEXPR_NOT_BETWEEN",
    "AEXPR_BETWEEN_SYM", "AEXPR_NOT_BETWEEN_SYM",
})  # fmt: skip


class Uses:
    """Collects ``Use`` values into ``self.uses`` (the walker provides the rest)."""

    __slots__ = ()

    uses: list[Use]

    def column(self, node: Any, scope: Scope, ctes: Ctes) -> Column:
        raise NotImplementedError

    def statement(
        self, kind: str, body: Node, scope: Scope, ctes: Ctes
    ) -> tuple[list[Item], list[str | None]]:
        raise NotImplementedError

    def window(self, window: Node, scope: Scope, ctes: Ctes) -> None:
        for node in window.get("partitionClause") or ():
            self.use("order", node, scope, ctes)
        for sort in window.get("orderClause") or ():
            self.use("order", sort["SortBy"]["node"], scope, ctes)

    def use(self, kind: str, node: Any, scope: Scope, ctes: Ctes) -> None:
        found = self.column(node, scope, ctes)
        if found.sources:
            self.uses.append(Use(kind, found.sources))

    def order_use(
        self,
        node: Node,
        items: list[Item],
        names: list[str | None],
        scope: Scope,
        ctes: Ctes,
    ) -> None:
        """GROUP BY / ORDER BY / DISTINCT ON: by position, output name or expression."""
        const = node.get("A_Const") or {}
        position = const.get("ival", {}).get("ival")
        label = strings(node["ColumnRef"]["fields"]) if "ColumnRef" in node else []
        picked: list[Item] = []
        if isinstance(position, int) and 0 < position <= len(items):
            picked = [items[position - 1]]
        elif len(label) == 1 and label[0] in names:
            picked = [items[names.index(label[0])]]
        if picked or not scope:
            sources = frozenset(s for i in picked or items for s in item_sources(i))
            if sources:
                self.uses.append(Use("order", sources))
            return
        self.use("order", node, scope, ctes)

    def condition(self, node: Any, scope: Scope, ctes: Ctes) -> None:
        """WHERE / HAVING / ON: each comparison as a probe, an equality or a filter."""
        if type(node) is not dict:
            return
        if "BoolExpr" in node:
            for arg in node["BoolExpr"].get("args", ()):
                self.condition(arg, scope, ctes)
            return
        expr = node.get("A_Expr")
        if expr is not None:
            kind = expr.get("kind", "")
            op = (strings(expr.get("name")) or [""])[-1]
            left, right = expr.get("lexpr"), expr.get("rexpr")
            lcol, rcol = self.column(left, scope, ctes), self.column(right, scope, ctes)
            literal_right = literal(right)
            if kind in _PROBE_KINDS or (kind == "AEXPR_OP" and op in _PROBE_OPS):
                probe = lcol if literal_right or not rcol.sources else rcol
                other = rcol if probe is lcol else lcol
                if probe.sources:
                    self.uses.append(Use("probe" if literal(right if probe is lcol else left)
                                         or not other.sources else "filter",
                                         probe.sources, other.sources))  # fmt: skip
                    return
            if kind == "AEXPR_OP" and op == "=" and lcol.sources and rcol.sources:
                self.uses.append(Use("equality", lcol.sources, rcol.sources))
                return
            sources = lcol.sources | rcol.sources
            if sources:
                self.uses.append(Use("filter", sources))
            return
        link = node.get("SubLink")
        if link is not None and link.get("subLinkType") == "ANY_SUBLINK" and "testexpr" in link:
            ((kind, query),) = link["subselect"].items()
            items, _ = self.statement(kind, query, scope, ctes)
            inner = frozenset(s for i in items for s in item_sources(i))
            test = self.column(link["testexpr"], scope, ctes)
            if test.sources and inner:
                self.uses.append(Use("equality", test.sources, inner))
            elif test.sources or inner:
                self.uses.append(Use("filter", test.sources | inner))
            return
        self.use("filter", node, scope, ctes)
