"""Could a WHERE clause select every row? A tiny expression language both backends translate into.

An expression is a tuple whose first item names its kind:

``("const", v)``            a literal: bool, int, float, str, or None for NULL
``("term", key, dep)``      anything else; equal keys mean the same expression. ``dep``
                            says whether it reads the target table (see below)
``("and"|"or", items)``     boolean connectives (items is a tuple)
``("not", e)``
``("cmp", op, l, r)``       op: = <> < > <= >= like ilike nlike nilike
``("arith", op, l, r)``     op: + - * / % ||
``("in", e, items, negated)``
``("between", e, lo, hi, negated)``
``("isnull", e, negated)``
``("is", e, truth, negated)``  IS [NOT] TRUE/FALSE (truth is True/False)
``("distinct", l, r, not_distinct)``  IS [NOT] DISTINCT FROM
``("cast", e, type, key)``  type: bool, int, float, text or other; key: the type as written
``("case", conditions, results, else)``  CASE WHEN c THEN r ... ELSE e END (else: None
                            when absent); ``CASE x WHEN v`` is written with ``x = v``

A term's ``dep`` is ``NONE`` (reads no column of the table the statement changes),
``MAYBE`` (an unqualified column that may or may not be the target's),
``TARGET`` (a column of the target) or ``UNKNOWN`` (a backend could not tell).

``trivial`` answers "could this condition keep every row of the target?". A
condition that reads no column of the target is row-independent: it keeps all
rows or none (``EXISTS (SELECT 1)``, ``now() IS NOT NULL``, a bare ``$1``), so it
is trivial unless its value is known to be false (``1 <> 1``, which SQLAlchemy
sends for an empty IN list); so is one PostgreSQL keeps every row for
(``1 = 1``, ``x = x``, ``ctid IS NOT NULL``). An OR is trivial if any branch is,
an AND only if every branch is, and NOT swaps "could keep every row" with
"could drop every row". ``MAYBE`` counts as row-independent: we fail closed
where we cannot tell.
"""

from __future__ import annotations

import re
from typing import Any

from governed_db.sql.scope import MAYBE, NONE, TARGET, UNKNOWN_DEP

__all__ = [
    "COMPARISONS",
    "MAYBE",
    "NONE",
    "SYSTEM_COLUMNS",
    "TARGET",
    "UNKNOWN",
    "UNKNOWN_DEP",
    "Expr",
    "always_true",
    "cast_type",
    "dependence",
    "trivial",
]

#: Comparison operators as both backends spell them -> the name ``trivial`` uses.
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


#: Columns every table has that are never NULL.
SYSTEM_COLUMNS = frozenset({"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"})


class _Unknown:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()

# PostgreSQL's boolin(): any unambiguous prefix of true/false/yes/no, on/off, 1/0,
# case-insensitive, surrounding whitespace ignored.
_TRUE_WORDS = frozenset({"t", "tr", "tru", "true", "y", "ye", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"f", "fa", "fal", "fals", "false", "n", "no", "of", "off", "0"})

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


def _never_null(e: Expr) -> bool:
    """A target column that is never NULL: ``ctid``, ``xmin``, ..."""
    if e[0] != "term" or e[2] != TARGET or not str(e[1]).startswith("col:"):
        return False
    return str(e[1]).rsplit(".", 1)[-1] in SYSTEM_COLUMNS


# -- evaluation ----------------------------------------------------------------------------------


def _truth(v: Any) -> Any:
    """Boolean reading of a value: True/False, None for NULL, UNKNOWN if unsure."""
    if v is UNKNOWN or v is None or isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return v != 0
    if isinstance(v, str):
        word = v.strip(" \t\n\r\f\v").lower()
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


_SAME_TRUE = frozenset({"=", "<=", ">=", "like", "ilike"})
_SAME_FALSE = frozenset({"<>", "<", ">", "nlike", "nilike"})


def _same(a: Any, b: Any) -> bool:
    """The same expression, whatever each term's dependence: ``t.id`` and ``t2.id`` over
    another scan of the same table are the same column."""
    if type(a) is not tuple or type(b) is not tuple:
        return bool(a == b)
    if len(a) != len(b):
        return False
    if a and a[0] == "term" and b[0] == "term":
        return bool(a[1] == b[1])
    return all(_same(x, y) for x, y in zip(a, b, strict=True))


def _cmp(op: str, left: Expr, right: Expr) -> Any:
    if left[0] != "const" and _same(left, right):
        # The same expression on both sides: true for every row where it is not NULL.
        if op in _SAME_TRUE:
            return True
        if op in _SAME_FALSE:
            return False
    if (
        op in ("like", "ilike")
        and right[0] == "const"
        and isinstance(right[1], str)
        and right[1]
        and set(right[1]) == {"%"}
        and left[0] != "const"
    ):
        return True  # any non-NULL string is LIKE '%'
    return _compare(op, value(left), value(right))


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
        return _cmp(e[1], e[2], e[3])
    if kind == "arith":
        return _arith(e[1], value(e[2]), value(e[3]))
    if kind == "in":
        if e[1][0] != "const" and any(_same(e[1], item) for item in e[2]):
            return not e[3]  # x IN (.., x, ..)
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
        both = value(("and", (("cmp", ">=", e[1], e[2]), ("cmp", "<=", e[1], e[3]))))
        return (not both) if e[4] and isinstance(both, bool) else both
    if kind == "isnull":
        if e[2] and _never_null(e[1]):
            return True
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
    if kind == "distinct":
        if _same(e[1], e[2]):
            return e[3]  # x IS NOT DISTINCT FROM x: always (NULLs included)
        a, b = value(e[1]), value(e[2])
        if a is UNKNOWN or b is UNKNOWN:
            return UNKNOWN
        if a is None or b is None:
            same = a is None and b is None
        else:
            same = _compare("=", a, b)
            if same is UNKNOWN:
                return UNKNOWN
        return bool(same) if e[3] else not same
    if kind == "cast":
        return _cast(value(e[1]), e[2])
    if kind == "case":
        for condition, result in zip(e[1], e[2], strict=True):
            chosen = _truth(value(condition))
            if chosen is True:
                return value(result)
            if chosen is UNKNOWN:
                return UNKNOWN
        return None if e[3] is None else value(e[3])
    return UNKNOWN


def always_true(e: Expr | None) -> bool:
    """True if the value of ``e`` is true for every row (``WHERE 1=1``, ``... OR true``)."""
    if e is None:
        return False
    return _truth(value(e)) is True


# -- could it keep every row? --------------------------------------------------------------------


def dependence(e: Expr) -> int:
    """The strongest dependence on the target anywhere in ``e`` (TARGET > UNKNOWN > MAYBE)."""
    kind = e[0]
    if kind == "const":
        return NONE
    if kind == "term":
        return int(e[2])
    best = NONE
    for part in e[1:]:
        if isinstance(part, tuple) and part and isinstance(part[0], str):
            best = max(best, dependence(part))
        elif isinstance(part, tuple):
            for item in part:
                if isinstance(item, tuple):
                    best = max(best, dependence(item))
    return best


def _could_be_all(e: Expr, want: bool, unknown: int) -> bool:
    """Could ``e`` be ``want`` (True: holds, False: fails or is NULL) for every row?"""
    kind = e[0]
    if kind == "and":
        parts = [_could_be_all(x, want, unknown) for x in e[1]]
        return all(parts) if want else any(parts)
    if kind == "or":
        if want and _has_complements(e[1]):
            return True  # x = 1 OR x <> 1 OR x IS NULL ...
        parts = [_could_be_all(x, want, unknown) for x in e[1]]
        return any(parts) if want else all(parts)
    if kind == "not":
        return _could_be_all(e[1], not want, unknown)
    if kind == "is" and e[1][0] in ("and", "or", "not", "is", "case"):
        truth = e[2] if not e[3] else not e[2]
        return _could_be_all(e[1], want == truth, unknown)
    if kind == "case":
        return _case_could_be_all(e, want, unknown)
    v = _truth(value(e))
    if v is not UNKNOWN:  # known for every row: a constant, x = x, ctid IS NOT NULL ...
        return v is True if want else v is False or v is None
    dep = dependence(e)
    if dep == UNKNOWN_DEP:
        dep = unknown
    return dep != TARGET  # row-independent: every row or none


_COMPLEMENT = {
    "=": "<>", "<>": "=", "<": ">=", ">=": "<", ">": "<=", "<=": ">",
    "like": "nlike", "nlike": "like", "ilike": "nilike", "nilike": "ilike",
}  # fmt: skip


def _has_complements(branches: tuple[Expr, ...]) -> bool:
    """Two branches of an OR that cover every non-NULL row: e OR NOT e, x < 1 OR x >= 1 ..."""
    seen = set(branches)
    for b in branches:
        kind = b[0]
        if kind == "not" and b[1] in seen:
            return True
        if kind == "isnull" and ("isnull", b[1], not b[2]) in seen:
            return True
        if kind == "cmp" and ("cmp", _COMPLEMENT.get(b[1]), b[2], b[3]) in seen:
            return True
        if kind == "is" and ("is", b[1], b[2], not b[3]) in seen:
            return True
    return False


def _case_could_be_all(e: Expr, want: bool, unknown: int) -> bool:
    """One branch taken for every row, or a result that reads no row and may be anything."""
    conditions, results, otherwise = e[1], e[2], e[3]
    if otherwise is None:
        otherwise = ("const", None)
    for result in (*results, otherwise):
        if _truth(value(result)) is UNKNOWN and _independent(result, unknown):
            return True  # e.g. ELSE $1: every row that reaches it goes the same way
    if any(
        _could_be_all(c, True, unknown) and _could_be_all(r, want, unknown)
        for c, r in zip(conditions, results, strict=True)
    ):
        return True
    return _could_be_all(otherwise, want, unknown) and all(
        _could_be_all(c, False, unknown) for c in conditions
    )


def _independent(e: Expr, unknown: int) -> bool:
    dep = dependence(e)
    return (unknown if dep == UNKNOWN_DEP else dep) != TARGET


def trivial(e: Expr | None, *, row_independent: bool = True) -> bool | None:
    """Could the condition ``e`` keep every row of the target? None: cannot tell.

    ``row_independent=False`` judges only by value (every term counts as reading
    the rows): used for plain SELECTs, which change nothing.
    """
    if e is None:
        return False
    if not row_independent:
        return always_true(e)
    sure = _could_be_all(e, True, TARGET)
    if sure == _could_be_all(e, True, NONE):
        return sure
    return None
