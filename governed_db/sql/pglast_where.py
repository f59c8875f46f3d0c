"""pglast expression nodes translated into the where.py language."""

from __future__ import annotations

import json
from typing import Any

from governed_db.sql.where import COMPARISONS, Expr, cast_type

__all__ = ["strings", "to_expr"]

Node = dict[str, Any]


def strings(items: list[Node]) -> list[str]:
    return [i["String"]["sval"] for i in items if "String" in i]


def _strip_locations(n: Any) -> Any:
    if isinstance(n, dict):
        return {k: _strip_locations(v) for k, v in n.items() if not k.endswith("location")}
    if isinstance(n, list):
        return [_strip_locations(v) for v in n]
    return n


def _term(n: Node) -> Expr:
    return ("term", json.dumps(_strip_locations(n), sort_keys=True))


_ARITH = frozenset({"+", "-", "*", "/", "%", "||"})


def to_expr(n: Node) -> Expr:
    """Translate a pglast expression node into the where.py language."""
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
        return _term(n)
    if kind == "BoolExpr":
        args = tuple(to_expr(a) for a in body.get("args", ()))
        op = body["boolop"]
        if op == "NOT_EXPR":
            return ("not", args[0])
        return ("and" if op == "AND_EXPR" else "or", args)
    if kind == "A_Expr":
        ak = body["kind"]
        op = strings(body.get("name", []))[-1:] or [""]
        left = body.get("lexpr")
        right = body.get("rexpr")
        if ak in ("AEXPR_OP", "AEXPR_LIKE", "AEXPR_ILIKE") and left and right:
            if op[0] in COMPARISONS:
                return ("cmp", COMPARISONS[op[0]], to_expr(left), to_expr(right))
            if op[0] in _ARITH:
                return ("arith", op[0], to_expr(left), to_expr(right))
        if ak == "AEXPR_OP" and op[0] == "-" and right and not left:
            return ("arith", "-", ("const", 0), to_expr(right))
        if ak == "AEXPR_IN" and left and right and "List" in right:
            items = tuple(to_expr(i) for i in right["List"].get("items", ()))
            return ("in", to_expr(left), items, op[0] == "<>")
        if ak in ("AEXPR_BETWEEN", "AEXPR_NOT_BETWEEN") and left and right:
            lo, hi = right["List"]["items"]
            return ("between", to_expr(left), to_expr(lo), to_expr(hi), ak == "AEXPR_NOT_BETWEEN")
        return _term(n)
    if kind == "NullTest":
        return ("isnull", to_expr(body["arg"]), body["nulltesttype"] == "IS_NOT_NULL")
    if kind == "BooleanTest":
        test = body["booltesttype"]
        if test in ("IS_TRUE", "IS_NOT_TRUE", "IS_FALSE", "IS_NOT_FALSE"):
            return ("is", to_expr(body["arg"]), "TRUE" in test, "NOT" in test)
        return _term(n)
    if kind == "TypeCast":
        names = strings(body["typeName"].get("names", []))
        if body["typeName"].get("arrayBounds"):
            return _term(n)
        return ("cast", to_expr(body["arg"]), cast_type(names[-1] if names else ""))
    return _term(n)
