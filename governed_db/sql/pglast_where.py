"""pglast expression nodes translated into the where.py language, with column scopes."""

from __future__ import annotations

from typing import Any

from governed_db.sql.scope import NONE, TARGET, Scope, ScopeItem
from governed_db.sql.where import COMPARISONS, Expr, cast_type
from governed_db.sql.where_eval import AGGREGATES, FUNCTIONS

__all__ = ["from_items", "scan_of", "strings", "to_expr"]

Node = dict[str, Any]


def strings(items: list[Node]) -> list[str]:
    return [i["String"]["sval"] for i in items if "String" in i]


def _alias(node: Node) -> str | None:
    alias = node.get("alias")
    return str(alias["aliasname"]) if alias else None


def _table_of(rv: Node, ctes: frozenset[str]) -> str | None:
    relname = rv.get("relname", "")
    if "schemaname" not in rv and relname in ctes:
        return None
    return f"{rv.get('schemaname', 'public')}.{relname}"


def scan_of(select: Node, ctes: frozenset[str]) -> tuple[Node, str, ScopeItem] | None:
    """A SELECT that only renames columns of one table: (its RangeVar, table, scan item).

    The scan item is the table as its WHERE sees it (alias, or schema and name).
    """
    found = _renaming(select, ctes)
    if found is None:
        return None
    rv, table, _ = found
    alias = _alias(rv)
    if alias is not None:
        return rv, table, ScopeItem(alias, None, False, table)
    return rv, table, ScopeItem(rv.get("relname", ""), rv.get("schemaname", "public"), False, table)


def _renaming(select: Node, ctes: frozenset[str]) -> tuple[Node, str, ScopeItem] | None:
    """A subquery that only renames columns of one table: (its RangeVar, table, item)."""
    if (
        select.get("op", "SETOP_NONE") != "SETOP_NONE"
        or any(k in select for k in _NOT_A_SCAN)
        or len(select.get("fromClause", ())) != 1
    ):
        return None
    rv = select["fromClause"][0].get("RangeVar")
    table = None if rv is None else _table_of(rv, ctes)
    if rv is None or table is None:
        return None
    renames: list[tuple[str, str | None]] = []
    star = False
    for target in select.get("targetList", ()):
        res = target.get("ResTarget", {})
        fields = res.get("val", {}).get("ColumnRef", {}).get("fields")
        last = fields[-1] if fields else None
        if last is not None and "A_Star" in last and "name" not in res:
            star = True
            continue
        column = last["String"]["sval"] if last is not None and "String" in last else None
        name = res.get("name", column)
        if name is not None:
            renames.append((str(name), column))
    return rv, table, ScopeItem("", None, False, table, tuple(renames), star)


# Clauses that make a subquery more than a filtered scan of its table.
_NOT_A_SCAN = ("groupClause", "havingClause", "windowClause", "distinctClause", "withClause",
               "valuesLists", "intoClause", "groupDistinct")  # fmt: skip


def from_items(
    nodes: list[Node] | None,
    *,
    target: bool = False,
    ctes: frozenset[str] | None = None,
    filters: list[tuple[Node, ScopeItem]] | None = None,
    bodies: dict[str, Node] | None = None,
) -> list[ScopeItem]:
    """The names a FROM list makes visible (``target`` marks them as the changed table).

    With ``ctes`` (the statement's own level) each plain table also names what it
    scans, and so does a subquery that only renames one table's columns; its WHERE
    goes to ``filters`` with the scope item its columns resolve in.
    """
    out: list[ScopeItem] = []
    for node in nodes or ():
        ((kind, body),) = node.items()
        if (
            kind == "RangeVar"
            and bodies
            and "schemaname" not in body
            and body.get("relname") in bodies
        ):
            # a CTE of the statement: read like the subquery it names
            select = bodies[body["relname"]]
            alias = _alias(body) or body["relname"]
            named = {"RangeSubselect": {"subquery": select, "alias": {"aliasname": alias}}}
            out.extend(from_items([named], ctes=ctes, filters=filters))
            continue
        if kind == "RangeVar":
            alias = _alias(body)
            relname = body.get("relname", "")
            schema = body.get("schemaname", "public")
            table = None
            if ctes is not None and ("schemaname" in body or relname not in ctes):
                table = f"{schema}.{relname}"
            if alias is not None:
                out.append(ScopeItem(alias, None, target, table))
            else:
                out.append(ScopeItem(relname, schema, target, table))
        elif kind == "JoinExpr":
            alias = _alias(body)
            if alias is not None:
                out.append(ScopeItem(alias))
            else:
                out.extend(from_items([body["larg"], body["rarg"]], ctes=ctes))
        elif kind == "RangeTableSample":
            out.extend(from_items([body["relation"]], ctes=ctes))
        elif kind == "RangeFunction":
            alias = _alias(body)
            functions = body.get("functions", [])
            if alias is None and len(functions) == 1:
                call = functions[0]["List"]["items"][0]
                names = strings(call.get("FuncCall", {}).get("funcname", []))
                alias = names[-1] if names else None
            out.append(ScopeItem(alias or ""))
        elif kind == "RangeSubselect" and ctes is not None and not body.get("lateral"):
            alias = _alias(body) or ""
            found = _renaming(body["subquery"].get("SelectStmt", {}), ctes)
            if found is None:
                out.append(ScopeItem(alias))
                continue
            _rv, table, item = found
            out.append(ScopeItem(alias, None, False, table, item.renames, item.star))
            where = body["subquery"]["SelectStmt"].get("whereClause")
            if where is not None and filters is not None:
                scan = scan_of(body["subquery"]["SelectStmt"], ctes)
                if scan is not None:
                    filters.append((where, scan[2]))
        else:  # subqueries, XMLTABLE, JSON_TABLE: named by their alias
            out.append(ScopeItem(_alias(body) or ""))
    return out


class _Canon:
    """A node with locations dropped and column references resolved: the key of a term."""

    __slots__ = ("dep",)

    def __init__(self) -> None:
        self.dep = NONE

    def node(self, n: Any, scope: Scope | None) -> Any:
        if isinstance(n, list):
            return [self.node(v, scope) for v in n]
        if not isinstance(n, dict):
            return n
        if "ColumnRef" in n:
            return {"col": self.column(n["ColumnRef"], scope)}
        if "fromClause" in n and scope is not None:  # a subquery's own FROM items
            scope = scope.push(from_items(n["fromClause"]))
        if "CurrentOfExpr" in n:
            self.dep = TARGET  # WHERE CURRENT OF: the cursor's one row
        return {k: self.node(v, scope) for k, v in n.items() if not k.endswith("location")}

    def column(self, ref: Node, scope: Scope | None) -> str:
        fields = [f["String"]["sval"] if "String" in f else "*" for f in ref.get("fields", ())]
        if scope is None:
            self.dep = TARGET
            return "col:" + ".".join(fields)
        key, dep = scope.column(fields)
        self.dep = max(self.dep, dep)
        return key


def _term(n: Node, scope: Scope | None) -> Expr:
    canon = _Canon()
    key = repr(canon.node(n, scope))  # one parser, one key order: equal nodes, equal reprs
    return ("term", key, canon.dep)


_ARITH = frozenset({"+", "-", "*", "/", "%", "||"})


def to_expr(n: Node, scope: Scope | None = None) -> Expr:
    """Translate a pglast expression node into the where.py language.

    ``scope`` resolves column references (None: every column reads the rows).
    """
    ((kind, body),) = n.items()
    if kind == "A_Const":
        if body.get("isnull"):
            return ("const", None)
        if "ival" in body:
            return ("const", body["ival"].get("ival", 0))
        if "fval" in body:
            return ("const", float(body["fval"].get("fval", "0")))
        if "boolval" in body:
            return ("const", bool(body["boolval"].get("boolval", False)))
        if "sval" in body:
            return ("const", body["sval"].get("sval", ""))
        return _term(n, scope)
    if kind == "ColumnRef":
        canon = _Canon()
        key = canon.column(body, scope)
        return ("term", key, canon.dep)
    if kind == "BoolExpr":
        args = tuple(to_expr(a, scope) for a in body.get("args", ()))
        op = body["boolop"]
        if op == "NOT_EXPR":
            return ("not", args[0])
        return ("and" if op == "AND_EXPR" else "or", args)
    if kind == "A_Expr":
        return _a_expr(n, body, scope)
    if kind == "CaseExpr":
        arg = body.get("arg")
        subject = to_expr(arg, scope) if arg else None
        conditions, results = [], []
        for when in body.get("args", ()):
            branch = when["CaseWhen"]
            condition = to_expr(branch["expr"], scope)
            if subject is not None:
                condition = ("cmp", "=", subject, condition)
            conditions.append(condition)
            results.append(to_expr(branch["result"], scope))
        default = body.get("defresult")
        otherwise = to_expr(default, scope) if default else None
        return ("case", tuple(conditions), tuple(results), otherwise)
    if kind == "NullTest":
        return ("isnull", to_expr(body["arg"], scope), body["nulltesttype"] == "IS_NOT_NULL")
    if kind == "BooleanTest":
        test = body["booltesttype"]
        if test in ("IS_TRUE", "IS_NOT_TRUE", "IS_FALSE", "IS_NOT_FALSE"):
            return ("is", to_expr(body["arg"], scope), "TRUE" in test, "NOT" in test)
        return _term(n, scope)
    if kind == "FuncCall":
        name = _known_function(body)
        if name is not None:
            return ("func", name, tuple(to_expr(a, scope) for a in body.get("args", ())))
        return _term(n, scope)
    if kind == "CoalesceExpr":
        return ("func", "coalesce", tuple(to_expr(a, scope) for a in body.get("args", ())))
    if kind == "MinMaxExpr":
        name = "greatest" if body.get("op") == "IS_GREATEST" else "least"
        return ("func", name, tuple(to_expr(a, scope) for a in body.get("args", ())))
    if kind == "SubLink":
        return _sublink(n, body, scope)
    if kind == "TypeCast":
        type_name = body["typeName"]
        if type_name.get("arrayBounds"):
            return _term(n, scope)
        names = strings(type_name.get("names", []))
        modifiers = type_name.get("typmods")
        key = repr((names, _Canon().node(modifiers, None) if modifiers else None))
        return ("cast", to_expr(body["arg"], scope), cast_type(names[-1] if names else ""), key)
    return _term(n, scope)


def _a_expr(n: Node, body: Node, scope: Scope | None) -> Expr:
    ak = body["kind"]
    op = strings(body.get("name", []))[-1:] or [""]
    left = body.get("lexpr")
    right = body.get("rexpr")
    if ak in ("AEXPR_OP", "AEXPR_LIKE", "AEXPR_ILIKE") and left and right:
        if op[0] in COMPARISONS:
            return ("cmp", COMPARISONS[op[0]], to_expr(left, scope), to_expr(right, scope))
        if op[0] in _ARITH:
            return ("arith", op[0], to_expr(left, scope), to_expr(right, scope))
    if ak == "AEXPR_OP" and op[0] == "-" and right and not left:
        return ("arith", "-", ("const", 0), to_expr(right, scope))
    if ak == "AEXPR_IN" and left and right and "List" in right:
        items = tuple(to_expr(i, scope) for i in right["List"].get("items", ()))
        return ("in", to_expr(left, scope), items, op[0] == "<>")
    if ak in ("AEXPR_BETWEEN", "AEXPR_NOT_BETWEEN") and left and right:
        lo, hi = right["List"]["items"]
        e = to_expr(left, scope)
        return ("between", e, to_expr(lo, scope), to_expr(hi, scope), ak == "AEXPR_NOT_BETWEEN")
    if ak == "AEXPR_NULLIF" and left and right:
        return ("func", "nullif", (to_expr(left, scope), to_expr(right, scope)))
    quantified = ak in ("AEXPR_OP_ANY", "AEXPR_OP_ALL")
    if quantified and left and right and "A_ArrayExpr" in right and op[0] in COMPARISONS:
        subject = to_expr(left, scope)  # x = ANY(ARRAY[a, b]): x = a OR x = b
        elements = right["A_ArrayExpr"].get("elements", ())
        items = tuple(("cmp", COMPARISONS[op[0]], subject, to_expr(e, scope)) for e in elements)
        return ("or" if ak == "AEXPR_OP_ANY" else "and", items)
    if ak in ("AEXPR_DISTINCT", "AEXPR_NOT_DISTINCT") and left and right:
        l_expr, r_expr = to_expr(left, scope), to_expr(right, scope)
        return ("distinct", l_expr, r_expr, ak == "AEXPR_NOT_DISTINCT")
    return _term(n, scope)


_CALL_FLAGS = ("agg_order", "agg_filter", "over", "agg_within_group", "agg_star",
               "agg_distinct", "func_variadic")  # fmt: skip


def _known_function(body: Node) -> str | None:
    """The name of a call whose result where_eval knows (pg_catalog's, plain form)."""
    names = strings(body.get("funcname", []))
    if not names or len(names) > 2 or (len(names) == 2 and names[0] != "pg_catalog"):
        return None
    if any(body.get(flag) for flag in _CALL_FLAGS):
        return None
    if any("NamedArgExpr" in a for a in body.get("args", ())):
        return None
    name = names[-1].lower()
    return name if name in FUNCTIONS else None


def _pure(node: Any) -> bool:
    """No call (but a known function's), no subquery, no ``*``: the row's own value."""
    if isinstance(node, list):
        return all(_pure(v) for v in node)
    if not isinstance(node, dict):
        return True
    if "FuncCall" in node and _known_function(node["FuncCall"]) is None:
        return False
    if "SubLink" in node or "A_Star" in node:
        return False
    return all(_pure(v) for v in node.values())


def _aggregated(node: Any) -> bool:
    """An aggregate call anywhere (not inside a nested subquery)."""
    if isinstance(node, list):
        return any(_aggregated(v) for v in node)
    if not isinstance(node, dict):
        return False
    call = node.get("FuncCall")
    if call is not None and not call.get("over"):
        names = strings(call.get("funcname", []))
        if call.get("agg_star") or call.get("agg_distinct") or call.get("agg_filter"):
            return True
        if names and names[-1].lower() in AGGREGATES:
            return True
    if "SubLink" in node:
        return False
    return any(_aggregated(v) for v in node.values())


def _witness_scope(sub: Node, scope: Scope) -> tuple[Scope, bool] | None:
    """The scope a subquery's row is read in, if it has the row's own value to offer.

    No FROM: exactly one row, computed from the outer row (exact). One plain
    scan of the target table: the row itself is among its rows (a witness).
    """
    if sub.get("op", "SETOP_NONE") != "SETOP_NONE" or any(
        k in sub for k in ("havingClause", "windowClause", "withClause", "valuesLists")
    ):
        return None
    from_clause = sub.get("fromClause")
    if not from_clause:
        return scope.push([]), True
    table = scope.target_table()
    rv = from_clause[0].get("RangeVar") if len(from_clause) == 1 else None
    if rv is None or table is None or _table_of(rv, frozenset()) != table:
        return None
    alias = _alias(rv)
    if alias is not None:
        item = ScopeItem(alias, None, True, table)
    else:
        item = ScopeItem(rv.get("relname", ""), rv.get("schemaname", "public"), True, table)
    return scope.push([item]), False


def _sublink(n: Node, body: Node, scope: Scope | None) -> Expr:
    """EXISTS / IN / ANY / ALL / scalar subqueries: the row's own value where it has one.

    ``(SELECT id)``, ``id IN (SELECT id)``, ``EXISTS (SELECT 1 WHERE id > 0)`` read
    the outer row exactly. A subquery over the target table itself
    (``id IN (SELECT id FROM orders)``, ``EXISTS (SELECT 1 FROM orders o2 WHERE
    o2.id = orders.id)``) holds at least where the row itself matches: ``witness
    OR <the subquery>``.
    """
    opaque = _term(n, scope)
    sub = body.get("subselect", {}).get("SelectStmt")
    if scope is None or not scope.levels or sub is None:
        return opaque
    found = _witness_scope(sub, scope)
    if found is None:
        return opaque
    inner, exact = found
    where = sub.get("whereClause")
    cond = to_expr(where, inner) if where is not None else None
    grouped = bool(sub.get("groupClause"))
    targets = [t.get("ResTarget", {}).get("val") for t in sub.get("targetList", ())]
    link = body.get("subLinkType")
    if link == "EXISTS_SUBLINK":
        if _aggregated(targets) and not grouped:
            return ("const", True)  # one row, whatever the WHERE says
        witness: Expr = cond if cond is not None else ("const", True)
        return witness if exact else ("or", (witness, opaque))
    if len(targets) != 1 or not _pure(targets) or (grouped and exact):
        return opaque
    value = to_expr(targets[0], inner)
    if link == "EXPR_SUBLINK":
        otherwise = ("const", None) if exact else opaque
        if cond is None:
            return value if exact else ("case", (("const", True),), (value,), otherwise)
        return ("case", (cond,), (value,), otherwise)
    names = strings(body.get("operName", [])) or ["="]
    test = body.get("testexpr")
    if link not in ("ANY_SUBLINK", "ALL_SUBLINK") or names[-1] not in COMPARISONS or not test:
        return opaque
    if "RowExpr" in test:
        return opaque
    compared: Expr = ("cmp", COMPARISONS[names[-1]], to_expr(test, scope), value)
    if link == "ALL_SUBLINK":
        if not exact:
            return opaque
        return compared if cond is None else ("case", (cond,), (compared,), ("const", True))
    if cond is not None:
        compared = ("case", (cond,), (compared,), ("const", False))
    return compared if exact else ("or", (compared, opaque))
