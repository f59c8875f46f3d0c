"""Could a WHERE clause select every row? A tiny expression language both backends translate into.

An expression is a tuple whose first item names its kind:

``("const", v)``            a literal: bool, int, float, str, or None for NULL
``("term", key, dep)``      anything else; equal keys mean the same expression. ``dep``
                            says whether it reads the target table (see below)
``("and"|"or", items)``     boolean connectives (items is a tuple)
``("not", e)``
``("cmp", op, l, r)``       op: = <> < > <= >= like ilike nlike nilike
``("arith", op, l, r)``     op: + - * / % ||
``("func", name, args)``    a function whose result is known (``where_eval.FUNCTIONS``:
                            abs, coalesce, nullif, greatest, least, lower, upper, ...)
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
where we cannot tell. What the form does not settle is tried on test rows
(``where_rows``): ``id = id + 0``, ``abs(id) >= 0``, ``id IS NOT NULL`` and
``coalesce(id, 0) >= 0`` hold on every one of them.
"""

from __future__ import annotations

from governed_db.sql.scope import MAYBE, NONE, TARGET, UNKNOWN_DEP
from governed_db.sql.where_eval import SYSTEM_COLUMNS, UNKNOWN, Expr, always_true, truth, value
from governed_db.sql.where_rows import Budget, dependence, holds_for_every_row, parts_of

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


# -- could it keep every row? --------------------------------------------------------------------


def _could_be_all(e: Expr, want: bool, unknown: int, budget: Budget) -> bool:
    """Could ``e`` be ``want`` (True: holds, False: fails or is NULL) for every row?"""
    kind = e[0]
    if kind == "and":
        parts = [_could_be_all(x, want, unknown, budget) for x in e[1]]
        return all(parts) if want else any(parts)
    if kind == "or":
        if want and _has_complements(e[1]):
            return True  # x = 1 OR x <> 1 OR x IS NULL ...
        parts = [_could_be_all(x, want, unknown, budget) for x in e[1]]
        return any(parts) if want else all(parts)
    if kind == "not":
        return _could_be_all(e[1], not want, unknown, budget)
    if kind == "is" and e[1][0] in ("and", "or", "not", "is", "case"):
        holds = e[2] if not e[3] else not e[2]
        return _could_be_all(e[1], want == holds, unknown, budget)
    if kind == "case":
        return _case_could_be_all(e, want, unknown, budget)
    v = truth(value(e))
    if v is not UNKNOWN:  # known for every row: a constant, x = x, ctid IS NOT NULL ...
        return v is True if want else v is False or v is None
    dep = dependence(e)
    if dep == UNKNOWN_DEP:
        dep = unknown
    if dep != TARGET:
        return True  # row-independent: every row or none
    return holds_for_every_row(e, want, unknown, budget)  # id = id + 0, abs(id) >= 0 ...


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


def _case_could_be_all(e: Expr, want: bool, unknown: int, budget: Budget) -> bool:
    """One branch taken for every row, or a result that reads no row and may be anything."""
    conditions, results, otherwise = e[1], e[2], e[3]
    if otherwise is None:
        otherwise = ("const", None)
    for result in (*results, otherwise):
        if truth(value(result)) is UNKNOWN and _independent(result, unknown):
            return True  # e.g. ELSE $1: every row that reaches it goes the same way
    if any(
        _could_be_all(c, True, unknown, budget) and _could_be_all(r, want, unknown, budget)
        for c, r in zip(conditions, results, strict=True)
    ):
        return True
    return _could_be_all(otherwise, want, unknown, budget) and all(
        _could_be_all(c, False, unknown, budget) for c in conditions
    )


def _independent(e: Expr, unknown: int) -> bool:
    dep = dependence(e)
    return (unknown if dep == UNKNOWN_DEP else dep) != TARGET


_LEAVES = frozenset({"const", "term", "cmp", "arith", "func", "in", "between", "isnull",
                     "distinct", "cast"})  # fmt: skip


def _may_keep_every_row(e: Expr, unknown: int, budget: Budget) -> bool:
    """By form (AND/OR/NOT/CASE, row independence), then jointly over test rows, then widened.

    An AND holds on every row only if each of its parts does: they are tried one by one.
    """
    if e[0] == "and":
        return all(_may_keep_every_row(part, unknown, budget) for part in e[1])
    if _could_be_all(e, True, unknown, budget):
        return True
    if e[0] not in _LEAVES and holds_for_every_row(e, True, unknown, budget):
        return True  # id > 5 OR id < 10, CASE WHEN id > 0 THEN true ELSE true END ...
    return holds_for_every_row(e, True, unknown, budget, widened=True)


def _has_unknown_dep(e: Expr) -> bool:
    if e[0] == "term":
        return bool(e[2] == UNKNOWN_DEP)
    return any(_has_unknown_dep(part) for part in parts_of(e))


def trivial(e: Expr | None, *, row_independent: bool = True) -> bool | None:
    """Could the condition ``e`` keep every row of the target? None: cannot tell.

    ``row_independent=False`` judges only by value (every term counts as reading
    the rows): used for plain SELECTs, which change nothing.
    """
    if e is None:
        return False
    if not row_independent:
        return always_true(e)
    budget = Budget()
    sure = _may_keep_every_row(e, TARGET, budget)
    if not _has_unknown_dep(e) or sure == _may_keep_every_row(e, NONE, budget):
        return sure
    return None
