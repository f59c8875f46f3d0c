"""Evaluating the where.py expression language: constants, or one test row of values.

``value(e)`` knows what is known without data (``1 = 1``, ``x = x``, ``'tru'``).
``value(e, env)`` evaluates ``e`` for one *test row*: ``env`` gives every term a
value (``where_rows`` builds such rows to ask "is this true for every row?").
With an ``env`` nothing is assumed about the form of the expression: only the
values count.

Values are Python values typed the way PostgreSQL would type them: ``Text``
for a text value of a test row (an untyped ``str`` is a literal that coerces to
the other side's type), ``Tid`` for ``ctid``, ``None`` for NULL, ``UNKNOWN`` when
it depends on data or would be a type error.
"""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple

from governed_db.sql.scope import TARGET

__all__ = [
    "AGGREGATES",
    "FUNCTIONS",
    "SYSTEM_COLUMNS",
    "UNKNOWN",
    "Expr",
    "Text",
    "Tid",
    "always_true",
    "same",
    "truth",
    "value",
]

Expr = tuple[Any, ...]

#: Columns every table has that are never NULL.
SYSTEM_COLUMNS = frozenset({"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"})


class _Unknown:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


class Text(str):
    """A text value of a test row (typed: it does not coerce to a number or a boolean)."""

    __slots__ = ()


class Tid(NamedTuple):
    """A ``ctid``: (block, line pointer); line pointers start at 1."""

    block: int
    offset: int


_TID = re.compile(r"\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*")

# PostgreSQL's boolin(): any unambiguous prefix of true/false/yes/no, on/off, 1/0,
# case-insensitive, surrounding whitespace ignored.
_TRUE_WORDS = frozenset({"t", "tr", "tru", "true", "y", "ye", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"f", "fa", "fal", "fals", "false", "n", "no", "of", "off", "0"})


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def truth(v: Any) -> Any:
    """Boolean reading of a value: True/False, None for NULL, UNKNOWN if unsure."""
    if v is UNKNOWN or v is None or isinstance(v, bool):
        return v
    if isinstance(v, Text | Tid):
        return UNKNOWN  # text or tid in a boolean context: an error
    if isinstance(v, int | float):
        return v != 0
    if isinstance(v, str):
        word = v.strip(" \t\n\r\f\v").lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    return UNKNOWN


def _tid(v: str) -> Any:
    m = _TID.fullmatch(v)
    return Tid(int(m.group(1)), int(m.group(2))) if m else UNKNOWN


def _coerce_pair(a: Any, b: Any) -> tuple[Any, Any]:
    """PostgreSQL-ish coercion of an untyped string literal to the other side's type.

    Values of different types that PostgreSQL would not compare give UNKNOWN.
    """
    a_lit = isinstance(a, str) and not isinstance(a, Text)
    b_lit = isinstance(b, str) and not isinstance(b, Text)
    if a_lit and b_lit:
        return a, b
    if a_lit or b_lit:
        lit, other = (a, b) if a_lit else (b, a)
        if isinstance(other, bool):
            lit = truth(lit)
        elif isinstance(other, Tid):
            lit = _tid(lit)
        elif _number(other):
            try:
                lit = float(lit)
            except ValueError:
                lit = UNKNOWN
        elif isinstance(other, Text):
            lit = Text(lit)
        return (lit, other) if a_lit else (other, lit)
    kinds = {_kind(a), _kind(b)}
    if len(kinds) != 1:
        return UNKNOWN, UNKNOWN
    return a, b


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if _number(v):
        return "number"
    if isinstance(v, Tid):
        return "tid"
    return "text" if isinstance(v, str) else "other"


def _like(value: str, pattern: str, fold: bool) -> bool:
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.DOTALL | (re.IGNORECASE if fold else 0)) is not None


def compare(op: str, a: Any, b: Any) -> Any:
    """``a op b`` with SQL's NULL rules; UNKNOWN where it depends on data or types."""
    if a is None or b is None:
        return None  # NULL whatever the other side is
    if a is UNKNOWN or b is UNKNOWN:
        return UNKNOWN
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
    if a is None or b is None:
        return None  # NULL whatever the other side is
    if a is UNKNOWN or b is UNKNOWN:
        return UNKNOWN
    if op == "||":
        if isinstance(a, bool | Tid) or isinstance(b, bool | Tid):
            return UNKNOWN
        text = f"{a}{b}"
        return Text(text) if isinstance(a, Text) or isinstance(b, Text) else text
    a, b = _coerce_pair(a, b)
    if not (_number(a) and _number(b)):
        return UNKNOWN
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return int(a / b) if isinstance(a, int) and isinstance(b, int) else a / b
        if op == "%":
            return math.fmod(a, b) if isinstance(a, float) or isinstance(b, float) else _imod(a, b)
    except (ZeroDivisionError, OverflowError, ValueError):
        return UNKNOWN
    return UNKNOWN


def _imod(a: int, b: int) -> int:
    """PostgreSQL's %: the sign of the dividend."""
    if b == 0:
        raise ZeroDivisionError
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def _cast(v: Any, typ: str) -> Any:
    if v is UNKNOWN or v is None:
        return v
    try:
        if typ == "bool":
            if isinstance(v, str | bool):
                return truth(str(v) if isinstance(v, Text) else v)
            return v != 0 if isinstance(v, int) else UNKNOWN
        if typ == "int":
            if isinstance(v, Tid):
                return UNKNOWN
            return (
                int(v.strip())
                if isinstance(v, str)
                else int(v)
                if isinstance(v, bool)
                else round(v)
            )
        if typ == "float":
            return UNKNOWN if isinstance(v, bool | Tid) else float(v)
        if typ == "text":
            if isinstance(v, bool):
                return Text("true" if v else "false")
            if isinstance(v, Tid):
                return Text(f"({v.block},{v.offset})")
            return Text(v)
    except (ValueError, OverflowError):
        return UNKNOWN
    return UNKNOWN


# -- functions whose results the evaluator knows -------------------------------------------------


def _args_known(args: list[Any]) -> bool:
    return all(a is not UNKNOWN for a in args)


def _strict(fn: Any) -> Any:
    """A function that returns NULL for any NULL argument."""

    def call(args: list[Any]) -> Any:
        if not _args_known(args):
            return UNKNOWN
        if any(a is None for a in args):
            return None
        try:
            return fn(*args)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError, AttributeError):
            return UNKNOWN

    return call


def _num(v: Any) -> Any:
    if isinstance(v, str) and not isinstance(v, Text):
        return float(v)
    if not _number(v):
        raise TypeError("not a number")
    return v


def _txt(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError("not text")
    return v


def _coalesce(args: list[Any]) -> Any:
    for a in args:
        if a is UNKNOWN:
            return UNKNOWN
        if a is not None:
            return a
    return None


def _nullif(args: list[Any]) -> Any:
    if len(args) != 2:
        return UNKNOWN
    same = compare("=", args[0], args[1])
    if same is UNKNOWN:
        return UNKNOWN if args[0] is not None else None
    return None if same is True else args[0]


def _extreme(largest: bool) -> Any:
    def call(args: list[Any]) -> Any:
        if not _args_known(args) or not args:
            return UNKNOWN
        best = None
        for a in args:
            if a is None:
                continue
            if best is None:
                best = a
                continue
            above = compare(">", a, best)
            if above is UNKNOWN:
                return UNKNOWN
            if above is largest and compare("=", a, best) is False:
                best = a
        return best

    return call


def _sign(v: Any) -> Any:
    n = _num(v)
    return (n > 0) - (n < 0) if isinstance(n, int) else float((n > 0) - (n < 0))


#: name -> implementation over evaluated arguments (NULL and UNKNOWN included).
FUNCTIONS: dict[str, Any] = {
    "abs": _strict(lambda v: abs(_num(v))),
    "sign": _strict(_sign),
    "mod": _strict(lambda a, b: _arith("%", _num(a), _num(b))),
    "floor": _strict(lambda v: math.floor(_num(v))),
    "ceil": _strict(lambda v: math.ceil(_num(v))),
    "ceiling": _strict(lambda v: math.ceil(_num(v))),
    "lower": _strict(lambda v: type(v)(_txt(v).lower())),
    "upper": _strict(lambda v: type(v)(_txt(v).upper())),
    "btrim": _strict(lambda v: type(v)(_txt(v).strip(" "))),
    "length": _strict(lambda v: len(_txt(v))),
    "char_length": _strict(lambda v: len(_txt(v))),
    "character_length": _strict(lambda v: len(_txt(v))),
    "coalesce": _coalesce,
    "nullif": _nullif,
    "greatest": _extreme(True),
    "least": _extreme(False),
}


#: Built-in aggregates: a query with one of these and no GROUP BY returns exactly one row.
# fmt: off
AGGREGATES = frozenset({
    "any_value", "array_agg", "avg", "bit_and", "bit_or", "bit_xor", "bool_and", "bool_or",
    "corr", "count", "covar_pop", "covar_samp", "every", "json_agg", "json_agg_strict",
    "json_arrayagg", "json_object_agg", "json_object_agg_strict", "json_object_agg_unique",
    "json_object_agg_unique_strict", "json_objectagg", "jsonb_agg", "jsonb_agg_strict",
    "jsonb_object_agg", "jsonb_object_agg_strict", "jsonb_object_agg_unique",
    "jsonb_object_agg_unique_strict", "max", "min", "mode", "percentile_cont",
    "percentile_disc", "range_agg", "range_intersect_agg", "regr_avgx", "regr_avgy",
    "regr_count", "regr_intercept", "regr_r2", "regr_slope", "regr_sxx", "regr_sxy",
    "regr_syy", "stddev", "stddev_pop", "stddev_samp", "string_agg", "sum", "var_pop",
    "var_samp", "variance", "xmlagg", "rank", "dense_rank", "percent_rank", "cume_dist",
})
# fmt: on


# -- evaluation ----------------------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """The same expression, whatever each term's dependence: ``t.id`` and ``t2.id`` over
    another scan of the same table are the same column."""
    if type(a) is not tuple or type(b) is not tuple:
        return bool(a == b)
    if len(a) != len(b):
        return False
    if a and a[0] == "term" and b[0] == "term":
        return bool(a[1] == b[1])
    return all(same(x, y) for x, y in zip(a, b, strict=True))


_SAME_TRUE = frozenset({"=", "<=", ">=", "like", "ilike"})
_SAME_FALSE = frozenset({"<>", "<", ">", "nlike", "nilike"})


def _cmp(op: str, left: Expr, right: Expr, env: dict[str, Any] | None) -> Any:
    if env is None:
        if left[0] != "const" and same(left, right):
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
    return compare(op, value(left, env), value(right, env))


def _never_null(e: Expr) -> bool:
    """A target column that is never NULL: ``ctid``, ``xmin``, ..."""
    if e[0] != "term" or e[2] != TARGET or not str(e[1]).startswith("col:"):
        return False
    return str(e[1]).rsplit(".", 1)[-1] in SYSTEM_COLUMNS


def value(e: Expr, env: dict[str, Any] | None = None) -> Any:
    """Evaluate ``e``: a Python value, None for NULL, UNKNOWN when it depends on data.

    With ``env`` (term key -> value) it is evaluated for that one test row.
    """
    kind = e[0]
    if kind == "const":
        return e[1]
    if kind == "term":
        return UNKNOWN if env is None else env.get(e[1], UNKNOWN)
    if kind == "and":
        vals = [truth(value(x, env)) for x in e[1]]
        if any(v is False for v in vals):
            return False
        if all(v is True for v in vals):
            return True
        return None if not any(v is UNKNOWN for v in vals) else UNKNOWN
    if kind == "or":
        vals = [truth(value(x, env)) for x in e[1]]
        if any(v is True for v in vals):
            return True
        if all(v is False for v in vals):
            return False
        return None if not any(v is UNKNOWN for v in vals) else UNKNOWN
    if kind == "not":
        v = truth(value(e[1], env))
        return (not v) if isinstance(v, bool) else v
    if kind == "cmp":
        return _cmp(e[1], e[2], e[3], env)
    if kind == "arith":
        return _arith(e[1], value(e[2], env), value(e[3], env))
    if kind == "func":
        return FUNCTIONS[e[1]]([value(a, env) for a in e[2]])
    if kind == "in":
        return _in(e, env)
    if kind == "between":
        both = value(("and", (("cmp", ">=", e[1], e[2]), ("cmp", "<=", e[1], e[3]))), env)
        return (not both) if e[4] and isinstance(both, bool) else both
    if kind == "isnull":
        if env is None and e[2] and _never_null(e[1]):
            return True
        v = value(e[1], env)
        if v is UNKNOWN:
            return UNKNOWN
        return (v is not None) if e[2] else (v is None)
    if kind == "is":
        v = truth(value(e[1], env))
        if v is UNKNOWN:
            return UNKNOWN
        hit = v is e[2]
        return (not hit) if e[3] else hit
    if kind == "distinct":
        return _distinct(e, env)
    if kind == "cast":
        return _cast(value(e[1], env), e[2])
    if kind == "case":
        for condition, result in zip(e[1], e[2], strict=True):
            chosen = truth(value(condition, env))
            if chosen is True:
                return value(result, env)
            if chosen is UNKNOWN:
                return UNKNOWN
        return None if e[3] is None else value(e[3], env)
    return UNKNOWN


def _in(e: Expr, env: dict[str, Any] | None) -> Any:
    if env is None and e[1][0] != "const" and any(same(e[1], item) for item in e[2]):
        return not e[3]  # x IN (.., x, ..)
    v = value(e[1], env)
    if v is UNKNOWN:
        return UNKNOWN
    hits = [compare("=", v, value(x, env)) for x in e[2]]
    if any(h is True for h in hits):
        return not e[3]
    if all(h is False for h in hits):
        return bool(e[3])
    return UNKNOWN if any(h is UNKNOWN for h in hits) else None


def _distinct(e: Expr, env: dict[str, Any] | None) -> Any:
    if env is None and same(e[1], e[2]):
        return e[3]  # x IS NOT DISTINCT FROM x: always (NULLs included)
    a, b = value(e[1], env), value(e[2], env)
    if a is UNKNOWN or b is UNKNOWN:
        return UNKNOWN
    if a is None or b is None:
        equal: Any = a is None and b is None
    else:
        equal = compare("=", a, b)
        if equal is UNKNOWN:
            return UNKNOWN
    return bool(equal) if e[3] else not equal


def always_true(e: Expr | None) -> bool:
    """True if the value of ``e`` is true for every row (``WHERE 1=1``, ``... OR true``)."""
    if e is None:
        return False
    return truth(value(e)) is True
