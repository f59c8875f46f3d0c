"""Is a WHERE clause always true? A tiny expression language both backends translate into.

An expression is a tuple whose first item names its kind:

``("const", v)``            a literal: bool, int, float, str, or None for NULL
``("term", key)``           anything else; equal keys mean the same expression
``("and"|"or", items)``     boolean connectives (items is a tuple)
``("not", e)``
``("cmp", op, l, r)``       op: = <> < > <= >= like ilike nlike nilike
``("arith", op, l, r)``     op: + - * / % ||
``("in", e, items, negated)``
``("between", e, lo, hi, negated)``
``("isnull", e, negated)``
``("is", e, truth, negated)``  IS [NOT] TRUE/FALSE (truth is True/False)
``("cast", e, type)``       type: bool, int, float, text or other

``always_true`` is conservative in the direction that matters: an OR with any
always-true branch is always true; an AND only when every branch is.
``x = x`` over the same expression counts as always true (it only excludes NULLs).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["COMPARISONS", "UNKNOWN", "Expr", "always_true", "cast_type"]

#: Comparison operators as both backends spell them -> the name ``always_true`` uses.
COMPARISONS = {
    "=": "=",
    "<>": "<>",
    "!=": "<>",
    "<": "<",
    ">": ">",
    "<=": "<=",
    ">=": ">=",
    "~~": "like",
    "~~*": "ilike",
    "!~~": "nlike",
    "!~~*": "nilike",
}

Expr = tuple[Any, ...]


class _Unknown:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()

_TRUE_WORDS = frozenset({"t", "true", "y", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"f", "false", "n", "no", "off", "0"})

_TYPES = {
    "bool": "bool",
    "boolean": "bool",
    "int": "int",
    "int2": "int",
    "int4": "int",
    "int8": "int",
    "integer": "int",
    "smallint": "int",
    "bigint": "int",
    "numeric": "float",
    "decimal": "float",
    "float4": "float",
    "float8": "float",
    "real": "float",
    "text": "text",
    "varchar": "text",
    "char": "text",
    "bpchar": "text",
}


def cast_type(name: str) -> str:
    """Map a type name to bool/int/float/text, else ``other``."""
    return _TYPES.get(name.lower(), "other")


def _truth(v: Any) -> Any:
    """Boolean reading of a value: True/False, None for NULL, UNKNOWN if unsure."""
    if v is UNKNOWN or v is None or isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return v != 0
    if isinstance(v, str):
        word = v.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    return UNKNOWN


def _coerce_pair(a: Any, b: Any) -> tuple[Any, Any]:
    """PostgreSQL-ish coercion of an untyped string literal to the other side's type."""
    if isinstance(a, str) and isinstance(b, bool):
        return _truth(a), b
    if isinstance(b, str) and isinstance(a, bool):
        return a, _truth(b)
    if isinstance(a, str) and isinstance(b, int | float):
        try:
            return float(a), b
        except ValueError:
            return UNKNOWN, b
    if isinstance(b, str) and isinstance(a, int | float):
        try:
            return a, float(b)
        except ValueError:
            return a, UNKNOWN
    return a, b


def _like(value: str, pattern: str, fold: bool) -> bool:
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.DOTALL | (re.IGNORECASE if fold else 0)) is not None


def _compare(op: str, a: Any, b: Any) -> Any:
    if a is UNKNOWN or b is UNKNOWN:
        return UNKNOWN
    if a is None or b is None:
        return None
    a, b = _coerce_pair(a, b)
    if a is UNKNOWN or b is UNKNOWN:
        return UNKNOWN
    if op in ("like", "ilike", "nlike", "nilike"):
        if not (isinstance(a, str) and isinstance(b, str)):
            return UNKNOWN
        hit = _like(a, b, op in ("ilike", "nilike"))
        return hit if op in ("like", "ilike") else not hit
    try:
        if op == "=":
            return bool(a == b)
        if op == "<>":
            return bool(a != b)
        if op == "<":
            return bool(a < b)
        if op == ">":
            return bool(a > b)
        if op == "<=":
            return bool(a <= b)
        if op == ">=":
            return bool(a >= b)
    except TypeError:
        return UNKNOWN
    return UNKNOWN


def _arith(op: str, a: Any, b: Any) -> Any:
    if a is UNKNOWN or b is UNKNOWN:
        return UNKNOWN
    if a is None or b is None:
        return None
    if op == "||":
        return UNKNOWN if isinstance(a, bool) or isinstance(b, bool) else f"{a}{b}"
    a, b = _coerce_pair(a, b)
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b)):
        return UNKNOWN
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a // b if isinstance(a, int) and isinstance(b, int) else a / b
        if op == "%":
            return a % b
    except (ZeroDivisionError, OverflowError):
        return UNKNOWN
    return UNKNOWN


def _cast(v: Any, typ: str) -> Any:
    if v is UNKNOWN or v is None:
        return v
    try:
        if typ == "bool":
            return _truth(v)
        if typ == "int":
            return int(v) if not isinstance(v, str) else int(v.strip())
        if typ == "float":
            return float(v)
        if typ == "text":
            return ("true" if v else "false") if isinstance(v, bool) else str(v)
    except (ValueError, OverflowError):
        return UNKNOWN
    return UNKNOWN


def value(e: Expr) -> Any:
    """Evaluate ``e``: a Python value, None for NULL, UNKNOWN when it depends on data."""
    kind = e[0]
    if kind == "const":
        return e[1]
    if kind == "and":
        vals = [_truth(value(x)) for x in e[1]]
        if any(v is False for v in vals):
            return False
        return True if all(v is True for v in vals) else UNKNOWN
    if kind == "or":
        vals = [_truth(value(x)) for x in e[1]]
        if any(v is True for v in vals):
            return True
        return False if all(v is False for v in vals) else UNKNOWN
    if kind == "not":
        v = _truth(value(e[1]))
        return (not v) if isinstance(v, bool) else v
    if kind == "cmp":
        op, left, right = e[1], e[2], e[3]
        if left[0] == "term" and left == right:
            # Same expression both sides: true for every non-NULL row.
            if op in ("=", "<=", ">=", "like", "ilike"):
                return True
            if op in ("<>", "<", ">", "nlike", "nilike"):
                return False
        if (
            op in ("like", "ilike")
            and left[0] == "term"
            and right[0] == "const"
            and isinstance(right[1], str)
            and right[1]
            and set(right[1]) == {"%"}
        ):
            return True
        return _compare(op, value(left), value(right))
    if kind == "arith":
        return _arith(e[1], value(e[2]), value(e[3]))
    if kind == "in":
        v = value(e[1])
        items = [value(x) for x in e[2]]
        if v is UNKNOWN:
            return UNKNOWN
        hits = [_compare("=", v, x) for x in items]
        if any(h is True for h in hits):
            return not e[3]
        if all(h is False for h in hits):
            return bool(e[3])
        return UNKNOWN
    if kind == "between":
        lo = _compare(">=", value(e[1]), value(e[2]))
        hi = _compare("<=", value(e[1]), value(e[3]))
        both = value(("and", (("const", lo), ("const", hi))))
        return (not both) if e[4] and isinstance(both, bool) else both
    if kind == "isnull":
        v = value(e[1])
        if v is UNKNOWN:
            return UNKNOWN
        return (v is not None) if e[2] else (v is None)
    if kind == "is":
        v = _truth(value(e[1]))
        if v is UNKNOWN:
            return UNKNOWN
        hit = v is e[2]
        return (not hit) if e[3] else hit
    if kind == "cast":
        return _cast(value(e[1]), e[2])
    return UNKNOWN


def always_true(e: Expr | None) -> bool:
    """True if the condition ``e`` keeps every row (``WHERE 1=1``, ``... OR true``)."""
    if e is None:
        return False
    return _truth(value(e)) is True
