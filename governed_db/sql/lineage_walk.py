"""Lineage from pglast's JSON parse tree (see ``lineage`` for what it holds).

The walker follows statements, FROM items, DML targets and expressions; the
FROM items and helpers are in ``lineage_scope``, row-picking uses in
``lineage_uses``.
"""

from __future__ import annotations

from typing import Any

from governed_db.sql.lineage import (
    NO_DATA,
    UNKNOWN,
    Branches,
    Column,
    Item,
    Lineage,
    Opaque,
    Source,
    Use,
    item_sources,
)
from governed_db.sql.lineage_expr import DML, Expressions
from governed_db.sql.lineage_functions import known_function
from governed_db.sql.lineage_scope import (
    Acc,
    Ctes,
    Node,
    Rel,
    Scope,
    figure_name,
    find,
    flat,
    merge,
    plain,
    qualified,
    star_target,
    strings,
    unknown_item,
)

__all__ = ["lineage_of"]

#: Utility statements whose output is not table data.
_NO_DATA = frozenset({"VariableShowStmt", "ExplainStmt"})
_DML = DML


class _Walker(Expressions):
    """Follows one statement; ``uses`` collects row-picking uses from every level."""

    __slots__ = ("uses",)

    def __init__(self) -> None:
        self.uses: list[Use] = []

    # -- statements ----------------------------------------------------------------------------
    def statement(
        self, kind: str, body: Node, scope: Scope, ctes: Ctes
    ) -> tuple[list[Item], list[str | None]]:
        """(output items, output names) of a SELECT or a DML statement's RETURNING."""
        if kind == "SelectStmt":
            return self.select(body, scope, ctes)
        if kind in _DML:
            return self.dml(kind, body, scope, ctes)
        return [], []

    def with_clause(self, body: Node, scope: Scope, ctes: Ctes) -> dict[str, Rel]:
        wc = body.get("withClause")
        if not wc:
            return ctes
        ctes = dict(ctes)
        recursive = bool(wc.get("recursive"))
        for c in wc.get("ctes", ()):
            cte = c["CommonTableExpr"]
            name = cte["ctename"]
            colnames = tuple(strings(cte.get("aliascolnames")))
            ((kind, query),) = cte["ctequery"].items()
            if recursive:
                ctes[name] = self.recursive_cte(name, colnames, kind, query, scope, ctes)
            else:
                items, names = self.statement(kind, query, scope, ctes)
                ctes[name] = Rel(name, columns=list(zip(names, items, strict=True)),
                                  colnames=colnames)  # fmt: skip
        return ctes

    def recursive_cte(
        self,
        name: str,
        colnames: tuple[str, ...],
        kind: str,
        query: Node,
        scope: Scope,
        ctes: Ctes,
    ) -> Rel:
        """A recursive CTE's columns: its branches, again and again until nothing is added."""
        rel = Rel(name, columns=[], colnames=colnames)
        inner = dict(ctes)
        inner[name] = rel
        previous: list[frozenset[Source]] | None = None
        for _ in range(8):
            saved = len(self.uses)
            items, names = self.statement(kind, query, scope, inner)
            flat = [frozenset(item_sources(i)) for i in items]
            unknown = [unknown_item(i) for i in items]
            rel.columns = [(n, Column(f, u)) for n, f, u in zip(names, flat, unknown, strict=True)]
            if flat == previous:
                break
            del self.uses[saved:]
            previous = flat
        return rel

    def select(self, body: Node, scope: Scope, ctes: Ctes) -> tuple[list[Item], list[str | None]]:
        ctes = self.with_clause(body, scope, ctes)
        op = body.get("op", "SETOP_NONE")
        if op != "SETOP_NONE":
            left, names = self.select(body["larg"], scope, ctes)
            right, _ = self.select(body["rarg"], scope, ctes)
            branches: list[tuple[Item, ...]] = []
            for side in (left, right):
                if len(side) == 1 and isinstance(side[0], Branches):
                    branches.extend(side[0].branches)
                else:
                    branches.append(tuple(side))
            items: list[Item] = [Branches(tuple(branches))]
            if all(isinstance(i, Column) for i in left) and len(left) == len(right):
                items = [merge(a, b) for a, b in zip(left, right, strict=True)]
            for sort in body.get("sortClause", ()):
                node = sort["SortBy"]["node"]
                self.order_use(node, items, names, [], ctes)
            return items, names
        if "valuesLists" in body:
            rows = [v["List"]["items"] for v in body["valuesLists"]]
            width = max((len(r) for r in rows), default=0)
            columns: list[Item] = []
            for i in range(width):
                acc: Acc = (set(), [False])
                for row in rows:
                    if i < len(row):
                        self.expr(row[i], scope, ctes, acc)
                columns.append(Column(frozenset(acc[0]), acc[1][0]))
            return columns, [f"column{i + 1}" for i in range(width)]
        level: list[Rel] = []
        units: list[list[Item]] = []
        for item in body.get("fromClause", ()):
            rel, unit = self.from_item(item, scope, level, ctes)
            level.append(rel)
            units.append(unit)
        inner = [*scope, level]
        items, names = [], []
        for target in body.get("targetList", ()):
            res = target["ResTarget"]
            val = res.get("val")
            star = star_target(val)
            if star is not None:
                expanded = self.expand(star, inner, level, units)
                items.extend(expanded)
                names.extend([None] * len(expanded))
                continue
            acc = (set(), [False])
            self.expr(val, inner, ctes, acc)
            items.append(Column(frozenset(acc[0]), acc[1][0], plain(val, inner)))
            names.append(res.get("name") or figure_name(val))
        if "whereClause" in body:
            self.condition(body["whereClause"], inner, ctes)
        if "havingClause" in body:
            self.condition(body["havingClause"], inner, ctes)
        for key in ("groupClause", "distinctClause"):
            for node in body.get(key) or ():
                if node:
                    self.order_use(node, items, names, inner, ctes)
        for sort in body.get("sortClause", ()):
            self.order_use(sort["SortBy"]["node"], items, names, inner, ctes)
        for window in body.get("windowClause", ()):
            self.window(window.get("WindowDef", {}), inner, ctes)
        return items, names

    def expand(
        self, star: list[str], scope: Scope, level: list[Rel], units: list[list[Item]]
    ) -> list[Item]:
        if not star:  # a bare *: every FROM item, joins with USING merged first
            return [i for unit in units for i in unit]
        rel = find(scope, star)
        return rel.star() if rel is not None else [Opaque()]

    def from_item(
        self, item: Node, scope: Scope, level: list[Rel], ctes: Ctes
    ) -> tuple[Rel, list[Item]]:
        """One FROM item: its ``Rel`` and what a bare ``*`` expands it to."""
        ((kind, node),) = item.items()
        alias = node.get("alias") or {}
        refname = alias.get("aliasname")
        colnames = tuple(strings(alias.get("colnames")))
        lateral = [*scope, level]  # LATERAL (and functions) see earlier items
        if kind == "RangeVar":
            name = node.get("relname", "")
            if "schemaname" not in node and name in ctes:
                cte = ctes[name]
                rel = Rel(refname or name, columns=cte.columns, colnames=colnames or cte.colnames)
                rel.columns = list(cte.columns or [])
                return rel, rel.star()
            rel = Rel(refname or name, None if refname else node.get("schemaname", "public"),
                       table=qualified(node), colnames=colnames)  # fmt: skip
            return rel, rel.star()
        if kind == "RangeSubselect":
            ((qkind, query),) = node["subquery"].items()
            items, names = self.statement(
                qkind, query, lateral if node.get("lateral") else scope, ctes
            )
            rel = Rel(refname, columns=list(zip(names, items, strict=True)), colnames=colnames)
            return rel, rel.star()
        if kind == "JoinExpr":
            return self.join(node, scope, level, ctes)
        if kind == "RangeFunction":
            return self.function(node, refname, colnames, lateral, ctes)
        if kind == "RangeTableSample":
            rel, unit = self.from_item(node["relation"], scope, level, ctes)
            return rel, unit
        # XMLTABLE / JSON_TABLE and anything else: columns derive from what it reads
        acc: Acc = (set(), [False])
        self.expr(node, lateral, ctes, acc)
        rel = Rel(refname, opaque=frozenset(acc[0]), colnames=colnames)
        return rel, rel.star()

    def join(
        self, node: Node, scope: Scope, level: list[Rel], ctes: Ctes
    ) -> tuple[Rel, list[Item]]:
        left, lunit = self.from_item(node["larg"], scope, level, ctes)
        right, runit = self.from_item(node["rarg"], scope, [*level, left], ctes)
        both = [*level, left, right]
        inner = [*scope, both]
        using = strings(node.get("usingClause"))
        unit: list[Item]
        if using:
            merged: list[Item] = []
            for name in using:
                _, a, ua = left.named(name)
                _, b, ub = right.named(name)
                merged.append(Column(frozenset(a | b), ua or ub))
            excluded = frozenset(using)
            unit = [*merged, *left.star(excluded), *right.star(excluded)]
        else:
            unit = [*lunit, *runit]
        if "quals" in node:
            self.condition(node["quals"], inner, ctes)
        alias = (node.get("alias") or {}).get("aliasname")
        rel = Rel(alias or "", children=(left, right), transparent=not alias)
        if not alias:
            rel.leaves = tuple(flat([left, right]))
        return rel, unit

    def function(
        self,
        node: Node,
        refname: str | None,
        colnames: tuple[str, ...],
        scope: Scope,
        ctes: Ctes,
    ) -> tuple[Rel, list[Item]]:
        """A function in FROM: built-ins derive from their arguments; others are unknown."""
        acc: Acc = (set(), [False])
        known = True
        name = refname
        defs: list[str] = []
        for f in node.get("functions", ()):
            call, coldefs = (f["List"]["items"] + [None, None])[:2]
            if call and "FuncCall" in call:
                called = strings(call["FuncCall"].get("funcname"))
                known = known and known_function(called)
                name = name or (called[-1] if called else None)
            self.expr(call, scope, ctes, acc)
            for d in (coldefs or {}).get("List", {}).get("items", ()) if coldefs else ():
                defs.append(d.get("ColumnDef", {}).get("colname", ""))
        for d in node.get("coldeflist") or ():
            defs.append(d.get("ColumnDef", {}).get("colname", ""))
        sources = frozenset(acc[0])
        if not known or acc[1][0]:
            rel = Rel(name, opaque=sources, colnames=colnames or tuple(defs))
            return rel, rel.star()
        # a built-in: every column it returns derives from its arguments; without
        # column names its width is unknown to the text (one opaque, known unit)
        shape = colnames or tuple(defs)
        if not shape:
            return Rel(name, builtin=sources), [Opaque(sources, unknown=False)]
        columns: list[tuple[str | None, Item]] = [(n, Column(sources)) for n in shape]
        if node.get("ordinality") and not colnames:
            columns.append(("ordinality", Column()))
        rel = Rel(name, columns=columns)
        return rel, rel.star()

    # -- DML -----------------------------------------------------------------------------------
    def dml(
        self, kind: str, body: Node, scope: Scope, ctes: Ctes
    ) -> tuple[list[Item], list[str | None]]:
        ctes = self.with_clause(body, scope, ctes)
        rv = body["relation"]
        alias = (rv.get("alias") or {}).get("aliasname")
        target = Rel(alias or rv.get("relname", ""), None if alias else rv.get("schemaname"),
                      table=qualified(rv))  # fmt: skip
        level: list[Rel] = [target]
        for key in ("fromClause", "usingClause"):
            for item in body.get(key) or ():
                rel, _ = self.from_item(item, scope, level, ctes)
                level.append(rel)
        if kind == "MergeStmt":
            rel, _ = self.from_item(body["sourceRelation"], scope, level, ctes)
            level.append(rel)
        inner = [*scope, level]
        if kind == "InsertStmt":
            self.insert(body, target, scope, ctes, inner)
        elif kind == "UpdateStmt":
            self.assign(body.get("targetList") or (), target, inner, ctes)
        elif kind == "MergeStmt":
            self.condition(body["joinCondition"], inner, ctes)
            for clause in body.get("mergeWhenClauses", ()):
                when = clause["MergeWhenClause"]
                if "condition" in when:
                    self.condition(when["condition"], inner, ctes)
                if when.get("commandType") == "CMD_INSERT":
                    cols = [t["ResTarget"].get("name") for t in when.get("targetList") or ()]
                    values = when.get("values") or ()
                    self.positional(target, cols, [self.column(v, inner, ctes) for v in values])
                else:
                    self.assign(when.get("targetList") or (), target, inner, ctes)
        if "whereClause" in body:
            self.condition(body["whereClause"], inner, ctes)
        returning = body.get("returningClause", {}).get("exprs") or body.get("returningList")
        if not returning:
            return [], []
        old_new = [Rel(n, table=target.table, assigned=target.assigned,
                        assigned_all=target.assigned_all) for n in ("old", "new")]  # fmt: skip
        visible = [*scope, [*level, *old_new]]
        items: list[Item] = []
        names: list[str | None] = []
        for res_target in returning:
            res = res_target["ResTarget"]
            val = res.get("val")
            star = star_target(val)
            if star is not None:
                if not star:
                    expanded = [i for r in level for i in r.star()]
                else:
                    found = find(visible, star)
                    expanded = found.star() if found is not None else [Opaque()]
                items.extend(expanded)
                names.extend([None] * len(expanded))
                continue
            value = self.column(val, visible, ctes)
            items.append(Column(value.sources, value.unknown, plain(val, visible)))
            names.append(res.get("name") or figure_name(val))
        return items, names

    def insert(
        self,
        body: Node,
        target: Rel,
        scope: Scope,
        ctes: Ctes,
        inner: list[list[Rel]],
    ) -> None:
        cols = [t["ResTarget"].get("name") for t in body.get("cols") or ()]
        select = body.get("selectStmt")
        if select:
            ((kind, query),) = select.items()
            items, _ = self.statement(kind, query, scope, ctes)
            self.positional(target, cols, items)
        conflict = body.get("onConflictClause")
        if conflict:
            excluded = Rel("excluded", table=target.table, assigned=target.assigned,
                            assigned_all=target.assigned_all)  # fmt: skip
            visible = [*scope, [*inner[-1], excluded]]
            self.assign(conflict.get("targetList") or (), target, visible, ctes)
            if "whereClause" in conflict:
                self.condition(conflict["whereClause"], visible, ctes)

    def positional(self, target: Rel, cols: list[str | None], items: list[Item]) -> None:
        """What an insert puts into each column (all of it to every column when unsure)."""
        if cols and len(cols) == len(items) and all(isinstance(i, Column) for i in items):
            for name, item in zip(cols, items, strict=True):
                if name is not None:
                    found = target.assigned.get(name, frozenset())
                    target.assigned[name] = found | frozenset(item_sources(item))
            return
        every = {s for item in items for s in item_sources(item)}
        if every:
            target.assigned_all = target.assigned_all | frozenset(every)

    def assign(self, targets: Any, target: Rel, scope: Scope, ctes: Ctes) -> None:
        for t in targets:
            res = t["ResTarget"]
            name = res.get("name")
            sources = frozenset(item_sources(self.column(res.get("val"), scope, ctes)))
            if name is not None and sources:
                target.assigned[name] = target.assigned.get(name, frozenset()) | sources


def lineage_of(kind: str, body: Node) -> Lineage:
    """The lineage of one top-level statement node (``kind`` as in the parse tree)."""
    if kind in _NO_DATA:
        return NO_DATA
    if kind == "CopyStmt":
        return _copy(body)
    if kind == "DeclareCursorStmt":
        ((kind, body),) = body["query"].items()
    elif kind == "PrepareStmt":
        return NO_DATA
    if kind not in ("SelectStmt", *_DML):
        return NO_DATA if kind.endswith("Stmt") and kind not in _OPAQUE else UNKNOWN
    walker = _Walker()
    items, _ = walker.statement(kind, body, [], {})
    return Lineage(tuple(items), tuple(dict.fromkeys(walker.uses)))


def _copy(body: Node) -> Lineage:
    """``COPY (query) TO``: the query's lineage; ``COPY table TO``: nothing but its columns."""
    if body.get("is_from"):
        return NO_DATA
    if "query" in body:
        ((kind, query),) = body["query"].items()
        return lineage_of(kind, query)
    # COPY table [(columns)] TO: each column is its own source, as the server describes it
    # (generated columns are left out, so '*' over the table would not line up)
    return NO_DATA if body.get("relation") else UNKNOWN


#: Statements whose rows come from something the text does not show.
_OPAQUE = frozenset({"FetchStmt", "ExecuteStmt", "CallStmt", "DoStmt"})
