"""Lineage from pglast's JSON parse tree (see ``lineage`` for what it holds).

Each query level has its FROM items (``_Rel``): base relations (named as the
analyzer names them), derived ones (subqueries, CTEs, VALUES, functions with a
known shape) whose columns are already followed, and functions of unknown
shape. A column reference is resolved through them, innermost level first;
what only the catalog can place stays a ``Source`` with candidate tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from governed_db.sql.lineage import (
    NO_DATA,
    UNKNOWN,
    Branches,
    Column,
    Expand,
    Item,
    Lineage,
    Opaque,
    Source,
    Use,
    item_sources,
)
from governed_db.sql.lineage_functions import known_function

__all__ = ["lineage_of"]

Node = dict[str, Any]
_Acc = tuple[set[Source], list[bool]]  # sources, [unknown]
_Scope = list[list["_Rel"]]  # the FROM items of each query level, outermost first
_Ctes = dict[str, "_Rel"]

#: Keys under an expression that hold no column reference.
_SKIP = frozenset({"location", "typeName", "funcname", "name", "sortby_dir", "sortby_nulls"})
_PROBE_OPS = frozenset({"<", ">", "<=", ">=", "~~", "~~*", "!~~", "!~~*", "~", "~*", "!~", "!~*",
                        "^@", "@@", "similar"})  # fmt: skip
_PROBE_KINDS = frozenset({
    "AEXPR_LIKE", "AEXPR_ILIKE", "AEXPR_SIMILAR", "AEXPR_BETWEEN", "AEXPR_NOT_BETWEEN",
    "AEXPR_BETWEEN_SYM", "AEXPR_NOT_BETWEEN_SYM",
})  # fmt: skip
#: Utility statements whose output is not table data.
_NO_DATA = frozenset({"VariableShowStmt", "ExplainStmt"})
_DML = ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt")


def _strings(items: Any) -> list[str]:
    return [i["String"]["sval"] for i in items or () if "String" in i]


def _qualified(rv: Node) -> str:
    return f"{rv.get('schemaname', 'public')}.{rv.get('relname', '')}"


@dataclass(eq=False)
class _Rel:
    """A FROM item at one query level."""

    refname: str | None
    schema: str | None = None
    table: str | None = None  # base relation (analyzer's name)
    colnames: tuple[str, ...] = ()  # alias column list (renames positionally)
    columns: list[tuple[str | None, Item]] | None = None  # derived: followed columns
    opaque: frozenset[Source] | None = None  # function of unknown shape: its arguments
    children: tuple[_Rel, ...] = ()  # a join: its two sides
    transparent: bool = False  # an unaliased join: its sides are named, not it
    leaves: tuple[_Rel, ...] = ()  # of a transparent join: the items it makes visible
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
                unknown = unknown or _unknown(item)
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


class _Walker:
    """Follows one statement; ``uses`` collects row-picking uses from every level."""

    __slots__ = ("uses",)

    def __init__(self) -> None:
        self.uses: list[Use] = []

    # -- statements ----------------------------------------------------------------------------
    def statement(
        self, kind: str, body: Node, scope: _Scope, ctes: _Ctes
    ) -> tuple[list[Item], list[str | None]]:
        """(output items, output names) of a SELECT or a DML statement's RETURNING."""
        if kind == "SelectStmt":
            return self.select(body, scope, ctes)
        if kind in _DML:
            return self.dml(kind, body, scope, ctes)
        return [], []

    def with_clause(self, body: Node, scope: _Scope, ctes: _Ctes) -> dict[str, _Rel]:
        wc = body.get("withClause")
        if not wc:
            return ctes
        ctes = dict(ctes)
        recursive = bool(wc.get("recursive"))
        for c in wc.get("ctes", ()):
            cte = c["CommonTableExpr"]
            name = cte["ctename"]
            colnames = tuple(_strings(cte.get("aliascolnames")))
            ((kind, query),) = cte["ctequery"].items()
            if recursive:
                ctes[name] = self.recursive_cte(name, colnames, kind, query, scope, ctes)
            else:
                items, names = self.statement(kind, query, scope, ctes)
                ctes[name] = _Rel(name, columns=list(zip(names, items, strict=True)),
                                  colnames=colnames)  # fmt: skip
        return ctes

    def recursive_cte(
        self,
        name: str,
        colnames: tuple[str, ...],
        kind: str,
        query: Node,
        scope: _Scope,
        ctes: _Ctes,
    ) -> _Rel:
        """A recursive CTE's columns: its branches, again and again until nothing is added."""
        rel = _Rel(name, columns=[], colnames=colnames)
        inner = dict(ctes)
        inner[name] = rel
        previous: list[frozenset[Source]] | None = None
        for _ in range(8):
            saved = len(self.uses)
            items, names = self.statement(kind, query, scope, inner)
            flat = [frozenset(item_sources(i)) for i in items]
            unknown = [_unknown(i) for i in items]
            rel.columns = [(n, Column(f, u)) for n, f, u in zip(names, flat, unknown, strict=True)]
            if flat == previous:
                break
            del self.uses[saved:]
            previous = flat
        return rel

    def select(self, body: Node, scope: _Scope, ctes: _Ctes) -> tuple[list[Item], list[str | None]]:
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
                items = [_merge(a, b) for a, b in zip(left, right, strict=True)]
            for sort in body.get("sortClause", ()):
                node = sort["SortBy"]["node"]
                self.order_use(node, items, names, [], ctes)
            return items, names
        if "valuesLists" in body:
            rows = [v["List"]["items"] for v in body["valuesLists"]]
            width = max((len(r) for r in rows), default=0)
            columns: list[Item] = []
            for i in range(width):
                acc: _Acc = (set(), [False])
                for row in rows:
                    if i < len(row):
                        self.expr(row[i], scope, ctes, acc)
                columns.append(Column(frozenset(acc[0]), acc[1][0]))
            return columns, [f"column{i + 1}" for i in range(width)]
        level: list[_Rel] = []
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
            star = _star(val)
            if star is not None:
                expanded = self.expand(star, inner, level, units)
                items.extend(expanded)
                names.extend([None] * len(expanded))
                continue
            acc = (set(), [False])
            self.expr(val, inner, ctes, acc)
            items.append(Column(frozenset(acc[0]), acc[1][0], _plain(val, inner)))
            names.append(res.get("name") or _figure_name(val))
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
        self, star: list[str], scope: _Scope, level: list[_Rel], units: list[list[Item]]
    ) -> list[Item]:
        if not star:  # a bare *: every FROM item, joins with USING merged first
            return [i for unit in units for i in unit]
        rel = _find(scope, star)
        return rel.star() if rel is not None else [Opaque()]

    def from_item(
        self, item: Node, scope: _Scope, level: list[_Rel], ctes: _Ctes
    ) -> tuple[_Rel, list[Item]]:
        """One FROM item: its ``_Rel`` and what a bare ``*`` expands it to."""
        ((kind, node),) = item.items()
        alias = node.get("alias") or {}
        refname = alias.get("aliasname")
        colnames = tuple(_strings(alias.get("colnames")))
        lateral = [*scope, level]  # LATERAL (and functions) see earlier items
        if kind == "RangeVar":
            name = node.get("relname", "")
            if "schemaname" not in node and name in ctes:
                cte = ctes[name]
                rel = _Rel(refname or name, columns=cte.columns, colnames=colnames or cte.colnames)
                rel.columns = list(cte.columns or [])
                return rel, rel.star()
            rel = _Rel(refname or name, None if refname else node.get("schemaname", "public"),
                       table=_qualified(node), colnames=colnames)  # fmt: skip
            return rel, rel.star()
        if kind == "RangeSubselect":
            ((qkind, query),) = node["subquery"].items()
            items, names = self.statement(
                qkind, query, lateral if node.get("lateral") else scope, ctes
            )
            rel = _Rel(refname, columns=list(zip(names, items, strict=True)), colnames=colnames)
            return rel, rel.star()
        if kind == "JoinExpr":
            return self.join(node, scope, level, ctes)
        if kind == "RangeFunction":
            return self.function(node, refname, colnames, lateral, ctes)
        if kind == "RangeTableSample":
            rel, unit = self.from_item(node["relation"], scope, level, ctes)
            return rel, unit
        # XMLTABLE / JSON_TABLE and anything else: columns derive from what it reads
        acc: _Acc = (set(), [False])
        self.expr(node, lateral, ctes, acc)
        rel = _Rel(refname, opaque=frozenset(acc[0]), colnames=colnames)
        return rel, rel.star()

    def join(
        self, node: Node, scope: _Scope, level: list[_Rel], ctes: _Ctes
    ) -> tuple[_Rel, list[Item]]:
        left, lunit = self.from_item(node["larg"], scope, level, ctes)
        right, runit = self.from_item(node["rarg"], scope, [*level, left], ctes)
        both = [*level, left, right]
        inner = [*scope, both]
        using = _strings(node.get("usingClause"))
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
        rel = _Rel(alias or "", children=(left, right), transparent=not alias)
        if not alias:
            rel.leaves = tuple(_flat([left, right]))
        return rel, unit

    def function(
        self,
        node: Node,
        refname: str | None,
        colnames: tuple[str, ...],
        scope: _Scope,
        ctes: _Ctes,
    ) -> tuple[_Rel, list[Item]]:
        """A function in FROM: built-ins derive from their arguments; others are unknown."""
        acc: _Acc = (set(), [False])
        known = True
        name = refname
        defs: list[str] = []
        for f in node.get("functions", ()):
            call, coldefs = (f["List"]["items"] + [None, None])[:2]
            if call and "FuncCall" in call:
                called = _strings(call["FuncCall"].get("funcname"))
                known = known and known_function(called)
                name = name or (called[-1] if called else None)
            self.expr(call, scope, ctes, acc)
            for d in (coldefs or {}).get("List", {}).get("items", ()) if coldefs else ():
                defs.append(d.get("ColumnDef", {}).get("colname", ""))
        for d in node.get("coldeflist") or ():
            defs.append(d.get("ColumnDef", {}).get("colname", ""))
        sources = frozenset(acc[0])
        if not known or acc[1][0]:
            rel = _Rel(name, opaque=sources, colnames=colnames or tuple(defs))
            return rel, rel.star()
        # a built-in: every column it returns derives from its arguments; without
        # column names its width is unknown to the text (one opaque, known unit)
        shape = colnames or tuple(defs)
        if not shape:
            return _Rel(name, builtin=sources), [Opaque(sources, unknown=False)]
        columns: list[tuple[str | None, Item]] = [(n, Column(sources)) for n in shape]
        if node.get("ordinality") and not colnames:
            columns.append(("ordinality", Column()))
        rel = _Rel(name, columns=columns)
        return rel, rel.star()

    # -- DML -----------------------------------------------------------------------------------
    def dml(
        self, kind: str, body: Node, scope: _Scope, ctes: _Ctes
    ) -> tuple[list[Item], list[str | None]]:
        ctes = self.with_clause(body, scope, ctes)
        rv = body["relation"]
        alias = (rv.get("alias") or {}).get("aliasname")
        target = _Rel(alias or rv.get("relname", ""), None if alias else rv.get("schemaname"),
                      table=_qualified(rv))  # fmt: skip
        level: list[_Rel] = [target]
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
        old_new = [_Rel(n, table=target.table, assigned=target.assigned,
                        assigned_all=target.assigned_all) for n in ("old", "new")]  # fmt: skip
        visible = [*scope, [*level, *old_new]]
        items: list[Item] = []
        names: list[str | None] = []
        for res_target in returning:
            res = res_target["ResTarget"]
            val = res.get("val")
            star = _star(val)
            if star is not None:
                if not star:
                    expanded = [i for r in level for i in r.star()]
                else:
                    found = _find(visible, star)
                    expanded = found.star() if found is not None else [Opaque()]
                items.extend(expanded)
                names.extend([None] * len(expanded))
                continue
            value = self.column(val, visible, ctes)
            items.append(Column(value.sources, value.unknown, _plain(val, visible)))
            names.append(res.get("name") or _figure_name(val))
        return items, names

    def insert(
        self,
        body: Node,
        target: _Rel,
        scope: _Scope,
        ctes: _Ctes,
        inner: list[list[_Rel]],
    ) -> None:
        cols = [t["ResTarget"].get("name") for t in body.get("cols") or ()]
        select = body.get("selectStmt")
        if select:
            ((kind, query),) = select.items()
            items, _ = self.statement(kind, query, scope, ctes)
            self.positional(target, cols, items)
        conflict = body.get("onConflictClause")
        if conflict:
            excluded = _Rel("excluded", table=target.table, assigned=target.assigned,
                            assigned_all=target.assigned_all)  # fmt: skip
            visible = [*scope, [*inner[-1], excluded]]
            self.assign(conflict.get("targetList") or (), target, visible, ctes)
            if "whereClause" in conflict:
                self.condition(conflict["whereClause"], visible, ctes)

    def positional(self, target: _Rel, cols: list[str | None], items: list[Item]) -> None:
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

    def assign(self, targets: Any, target: _Rel, scope: _Scope, ctes: _Ctes) -> None:
        for t in targets:
            res = t["ResTarget"]
            name = res.get("name")
            sources = frozenset(item_sources(self.column(res.get("val"), scope, ctes)))
            if name is not None and sources:
                target.assigned[name] = target.assigned.get(name, frozenset()) | sources

    # -- expressions ---------------------------------------------------------------------------
    def column(self, node: Any, scope: _Scope, ctes: _Ctes) -> Column:
        acc: _Acc = (set(), [False])
        self.expr(node, scope, ctes, acc)
        return Column(frozenset(acc[0]), acc[1][0])

    def expr(self, node: Any, scope: _Scope, ctes: _Ctes, acc: _Acc) -> None:
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
                    acc[1][0] = acc[1][0] or _unknown(item)
            elif type(val) is dict or type(val) is list:
                self.expr(val, scope, ctes, acc)

    def ref(self, fields: Any, scope: _Scope, acc: _Acc) -> None:
        names = _strings(fields)
        if not names:
            return
        if "A_Star" in fields[-1]:
            rel = _find(scope, names)
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
        rel = _find(scope, names[:2]) if len(names) >= 3 else None
        if rel is not None:
            column = names[2]
        else:
            rel = _find(scope, names[:1])
        if rel is None:  # composite_column.field
            self.bare(names[0], scope, acc)
            return
        _, found, unknown = rel.named(column)
        acc[0].update(found)
        acc[1][0] = acc[1][0] or unknown

    def bare(self, name: str, scope: _Scope, acc: _Acc) -> None:
        """An unqualified name: a column of some item, innermost level first, or a whole row."""
        tables: list[str] = []
        for level in reversed(scope):
            exact = False
            for rel in _flat(level):
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
            for rel in _flat(level):
                if rel.refname == name:
                    if rel.table is not None:
                        acc[0].add(Source((rel.table,), name, row=True))
                    else:
                        acc[0].update(rel.whole())
                    return

    def call(self, call: Node, scope: _Scope, ctes: _Ctes, acc: _Acc) -> None:
        if not known_function(_strings(call.get("funcname"))):
            acc[1][0] = True
        self.expr(call.get("args"), scope, ctes, acc)
        for sort in call.get("agg_order") or ():
            self.use("order", sort["SortBy"]["node"], scope, ctes)
        if "agg_filter" in call:
            self.condition(call["agg_filter"], scope, ctes)
        if "over" in call:
            self.window(call["over"], scope, ctes)

    def sublink(self, link: Node, scope: _Scope, ctes: _Ctes, acc: _Acc) -> None:
        ((kind, query),) = link["subselect"].items()
        items, _ = self.statement(kind, query, scope, ctes)
        kind_ = link.get("subLinkType", "")
        test = self.column(link.get("testexpr"), scope, ctes) if "testexpr" in link else None
        inner = frozenset(s for i in items for s in item_sources(i))
        if kind_ != "EXISTS_SUBLINK":
            acc[0].update(inner)
            acc[1][0] = acc[1][0] or any(_unknown(i) for i in items)
        if test is not None:
            acc[0].update(test.sources)
            acc[1][0] = acc[1][0] or test.unknown

    # -- uses ----------------------------------------------------------------------------------
    def window(self, window: Node, scope: _Scope, ctes: _Ctes) -> None:
        for node in window.get("partitionClause") or ():
            self.use("order", node, scope, ctes)
        for sort in window.get("orderClause") or ():
            self.use("order", sort["SortBy"]["node"], scope, ctes)

    def use(self, kind: str, node: Any, scope: _Scope, ctes: _Ctes) -> None:
        found = self.column(node, scope, ctes)
        if found.sources:
            self.uses.append(Use(kind, found.sources))

    def order_use(
        self,
        node: Node,
        items: list[Item],
        names: list[str | None],
        scope: _Scope,
        ctes: _Ctes,
    ) -> None:
        """GROUP BY / ORDER BY / DISTINCT ON: by position, output name or expression."""
        const = node.get("A_Const") or {}
        position = const.get("ival", {}).get("ival")
        label = _strings(node["ColumnRef"]["fields"]) if "ColumnRef" in node else []
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

    def condition(self, node: Any, scope: _Scope, ctes: _Ctes) -> None:
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
            op = (_strings(expr.get("name")) or [""])[-1]
            left, right = expr.get("lexpr"), expr.get("rexpr")
            lcol, rcol = self.column(left, scope, ctes), self.column(right, scope, ctes)
            literal_right = _literal(right)
            if kind in _PROBE_KINDS or (kind == "AEXPR_OP" and op in _PROBE_OPS):
                probe = lcol if literal_right or not rcol.sources else rcol
                other = rcol if probe is lcol else lcol
                if probe.sources:
                    self.uses.append(Use("probe" if _literal(right if probe is lcol else left)
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


def _flat(level: list[_Rel]) -> list[_Rel]:
    """The items of a level, the sides of unaliased joins in place of the joins."""
    out: list[_Rel] = []
    for rel in level:
        if rel.transparent:
            out.extend(rel.leaves)
        else:
            out.append(rel)
    return out


def _find(scope: _Scope, names: list[str]) -> _Rel | None:
    """The FROM item ``names`` (``[schema.]refname``) refers to, innermost level first."""
    if not names or len(names) > 2:
        return None
    for level in reversed(scope):
        for rel in _flat(level):
            if rel.refname == names[-1] and (len(names) == 1 or rel.schema == names[0]):
                return rel
    return None


def _star(val: Any) -> list[str] | None:
    """The qualifier of a ``*`` target (``[]`` for a bare ``*``), or None."""
    if type(val) is dict and "ColumnRef" in val:
        fields = val["ColumnRef"].get("fields", ())
        if fields and "A_Star" in fields[-1]:
            return _strings(fields[:-1])
    return None


def _literal(node: Any) -> bool:
    """A constant or a parameter (what a probe compares a column with)."""
    while type(node) is dict and "TypeCast" in node:
        node = node["TypeCast"].get("arg")
    return type(node) is dict and ("A_Const" in node or "ParamRef" in node)


def _figure_name(val: Any) -> str | None:
    """The name PostgreSQL gives an unnamed output column (enough to refer to it)."""
    while type(val) is dict:
        if "ColumnRef" in val:
            names = _strings(val["ColumnRef"].get("fields"))
            return names[-1] if names else None
        if "TypeCast" in val:
            val = val["TypeCast"].get("arg")
            continue
        if "FuncCall" in val:
            names = _strings(val["FuncCall"].get("funcname"))
            return names[-1] if names else None
        return None
    return None


def _unknown(item: Item) -> bool:
    if isinstance(item, Column):
        return item.unknown
    if isinstance(item, Opaque):
        return item.unknown
    if isinstance(item, Branches):
        return any(_unknown(i) for b in item.branches for i in b)
    return False


def _merge(a: Item, b: Item) -> Item:
    assert isinstance(a, Column)
    assert isinstance(b, Column)
    return Column(a.sources | b.sources, a.unknown or b.unknown, a.plain and b.plain)


def _plain(val: Any, scope: _Scope) -> bool:
    """Is ``val`` a column's stored value (a reference, maybe cast), not computed from it?"""
    while type(val) is dict and ("TypeCast" in val or "CollateClause" in val):
        val = (val.get("TypeCast") or val.get("CollateClause") or {}).get("arg")
    if type(val) is not dict or "ColumnRef" not in val:
        return False
    fields = val["ColumnRef"].get("fields", ())
    names = _strings(fields)
    if not names or "A_Star" in fields[-1]:
        return False
    rel = _find(scope, names[:-1]) if len(names) >= 2 else None
    candidates = [rel] if rel is not None else [r for level in scope for r in _flat(level)]
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
