"""pglast expression nodes translated into the where.py language, with column scopes."""

from __future__ import annotations

from typing import Any

from governed_db.sql.scope import NONE, TARGET, Scope, ScopeItem
from governed_db.sql.where import COMPARISONS, Expr, cast_type

__all__ = ["from_items", "strings", "to_expr"]

Node = dict[str, Any]


def strings(items: list[Node]) -> list[str]:
    return [i["String"]["sval"] for i in items if "String" in i]


def _alias(node: Node) -> str | None:
    alias = node.get("alias")
    return str(alias["aliasname"]) if alias else None


def from_items(
    nodes: list[Node] | None, *, target: bool = False, ctes: frozenset[str] | None = None
) -> list[ScopeItem]:
    """The names a FROM list makes visible (``target`` marks them as the changed table).

    With ``ctes`` (the statement's own level) each plain table also names what it scans.
    """
    out: list[ScopeItem] = []
    for node in nodes or ():
        ((kind, body),) = node.items()
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
    if ak in ("AEXPR_DISTINCT", "AEXPR_NOT_DISTINCT") and left and right:
        l_expr, r_expr = to_expr(left, scope), to_expr(right, scope)
        return ("distinct", l_expr, r_expr, ak == "AEXPR_NOT_DISTINCT")
    return _term(n, scope)
