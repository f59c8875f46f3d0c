"""Test rows: could a condition on the target's columns hold for every row?

A condition is evaluated over a small set of *test rows*: values for the
target's columns taken from boundary values (both extremes, 0, ±1, every
constant of the condition and its neighbours, empty and short strings, both
booleans). Whatever reads no column of the target (a parameter, ``now()``, a
subquery on another table) is a free value: the condition may keep every row
if *some* choice of the free values makes it hold on *every* test row.

- A test row that makes the condition false (or NULL) proves it is selective:
  ``id > 100`` fails for ``id = 0``, ``email <> lower(email)`` for ``'a'``.
- A condition that holds on every test row is treated as holding on every row:
  ``id = id + 0``, ``id * 1 = id``, ``id > id - 1``, ``abs(id) >= 0``,
  ``id = greatest(id, id)``, ``id IS NOT NULL``, ``CASE ... THEN true ELSE true
  END``, ``id = id + $1`` (with ``$1 = 0``). This errs towards "may keep every
  row": the test rows cannot prove a tautology, only fail to refute one.

The target's columns are not NULL in the test rows: a NOT NULL column (every
primary key) has none, so ``id IS NOT NULL`` may keep every row. A second pass,
*widened*, asks the same of rows whose columns are NULL or hold the values a
table holds in practice (positive numbers, any text, either boolean): a
condition written to keep the NULL rows as well, ``coalesce(id, 0) >= 0``,
``(id > 0) IS NOT FALSE``, ``id IS NULL OR id > 0``, keeps every row of a table
of ids. ``id > 0`` alone is not widened that way (a NULL id fails it): the row
limit remains its backstop.

``ctid`` takes line-pointer values (``(0,1)`` is the smallest: ``ctid >
'(0,0)'`` holds for every row); ``tableoid`` is one value for every row of a
plain table, so it counts as a free value (``tableoid > 0``).
"""

from __future__ import annotations

import itertools
from typing import Any

from governed_db.sql.scope import NONE, TARGET, UNKNOWN_DEP
from governed_db.sql.where_eval import UNKNOWN, Expr, Text, Tid, truth, value

__all__ = ["Budget", "dependence", "holds_for_every_row", "parts_of"]

MAX_ROW_VALUES = 4  # target columns varied jointly
MAX_FREE_VALUES = 2  # free values varied jointly
BUDGET = 4000  # evaluations per statement condition

_XID = frozenset({"xmin", "xmax", "cmin", "cmax"})


class Budget:
    """Evaluations left for one condition; spent, the answer is "not shown"."""

    __slots__ = ("left",)

    def __init__(self, left: int = BUDGET) -> None:
        self.left = left


def parts_of(e: Expr) -> list[Expr]:
    """The sub-expressions of ``e``."""
    out: list[Expr] = []
    for part in e[1:]:
        if isinstance(part, tuple) and part and isinstance(part[0], str):
            out.append(part)
        elif isinstance(part, tuple):
            out.extend(p for p in part if isinstance(p, tuple) and p)
    return out


def dependence(e: Expr) -> int:
    """The strongest dependence on the target anywhere in ``e`` (TARGET > UNKNOWN > MAYBE)."""
    kind = e[0]
    if kind == "const":
        return NONE
    if kind == "term":
        return int(e[2])
    return max((dependence(p) for p in parts_of(e)), default=NONE)


def _is_tableoid(key: str) -> bool:
    return key.startswith("col:") and key.rsplit(".", 1)[-1] == "tableoid"


def _abstract(e: Expr, unknown: int) -> Expr:
    """``e`` with each row-independent value (``now() - interval '1 day'``) one free term.

    Row-independent conditions keep their form: ``$1 AND NULL`` is never true.
    """
    return _abstracted(e, unknown)[0]


def _abstracted(e: Expr, unknown: int) -> tuple[Expr, int]:
    kind = e[0]
    if kind == "const":
        return e, NONE
    if kind == "term":
        return e, unknown if e[2] == UNKNOWN_DEP else int(e[2])
    out: list[Any] = [kind]
    dep = NONE
    for part in e[1:]:
        if isinstance(part, tuple) and part and isinstance(part[0], str):
            found, d = _abstracted(part, unknown)
            out.append(found)
            dep = max(dep, d)
        elif isinstance(part, tuple):
            items: list[Any] = []
            for p in part:
                if p:
                    found, d = _abstracted(p, unknown)
                    items.append(found)
                    dep = max(dep, d)
                else:
                    items.append(p)
            out.append(tuple(items))
        else:
            out.append(part)
    if dep != TARGET:
        v = value(e)
        if v is not UNKNOWN:
            return ("const", v), NONE
        if kind in ("arith", "func", "cast"):  # a value, whatever it is: one free value
            return ("term", "free:" + repr(e), NONE), NONE
    return tuple(out), dep


def _collect(e: Expr, unknown: int, terms: dict[str, int], consts: list[Any]) -> None:
    kind = e[0]
    if kind == "const":
        consts.append(e[1])
        return
    if kind == "term":
        dep = unknown if e[2] == UNKNOWN_DEP else int(e[2])
        if _is_tableoid(str(e[1])):
            dep = NONE  # the same for every row of a plain table
        terms[e[1]] = max(terms.get(e[1], NONE), dep)
        return
    for part in parts_of(e):
        _collect(part, unknown, terms, consts)


def _numbers(consts: list[Any]) -> list[Any]:
    out: list[Any] = []
    for c in consts:
        if isinstance(c, bool):
            continue
        if isinstance(c, int | float):
            out += [c, c - 1, c + 1] if isinstance(c, int) else [c, c - 0.5, c + 0.5]
        elif isinstance(c, str):
            try:
                n = float(c)
            except ValueError:
                continue
            if n.is_integer() and abs(n) < 2**53:
                out += [int(n), int(n) - 1, int(n) + 1]
    return out


def _texts(consts: list[Any]) -> list[Any]:
    out: list[Any] = []
    for c in consts:
        if isinstance(c, str):
            out += [c, c + "x", c[:-1], c.upper(), c.lower(), "x" + c]
    return [Text(t) for t in out]


def _unique(values: list[Any]) -> list[Any]:
    seen: set[tuple[type, Any]] = set()
    out = []
    for v in values:
        mark = (type(v), v)
        if mark not in seen:
            seen.add(mark)
            out.append(v)
    return out


_NUMERIC = frozenset({"abs", "sign", "mod", "floor", "ceil", "ceiling"})
_TEXTUAL = frozenset({"lower", "upper", "btrim", "length", "char_length", "character_length"})
_PASSING = frozenset({"coalesce", "greatest", "least", "nullif"})  # the type of their arguments


def _literal_types(v: Any) -> set[str]:
    if isinstance(v, bool):
        return {"bool"}
    if isinstance(v, int | float):
        return {"number"}
    if isinstance(v, str):
        out = {"text"}
        if truth(v) is not UNKNOWN:
            out.add("bool")
        try:
            float(v)
            out.add("number")
        except ValueError:
            pass
        return out
    return set()


def _carriers(e: Expr) -> list[str]:
    """Terms whose value ``e`` is (through coalesce, greatest, ...)."""
    if e[0] == "term":
        return [e[1]]
    if e[0] == "func" and e[1] in _PASSING:
        return [k for a in e[2] for k in _carriers(a)]
    return []


def _types(e: Expr, out: dict[str, set[str]]) -> None:
    """What types each term is used as: number, text, bool (no use: any)."""
    kind = e[0]

    def use(parts: list[Expr], types: set[str]) -> None:
        for part in parts:
            for key in _carriers(part):
                out.setdefault(key, set()).update(types)

    if kind in ("and", "or"):
        use(list(e[1]), {"bool"})
    elif kind in ("not", "is"):
        use([e[1]], {"bool"})
    elif kind == "arith":
        use([e[2], e[3]], {"text"} if e[1] == "||" else {"number"})
    elif kind == "func" and e[1] in _NUMERIC | _TEXTUAL:
        use(list(e[2]), {"number"} if e[1] in _NUMERIC else {"text"})
    elif kind in ("cmp", "distinct", "in", "between"):
        operands = [e[2], e[3]] if kind == "cmp" else [e[1], *(e[2] if kind == "in" else e[2:4])]
        if kind == "distinct":
            operands = [e[1], e[2]]
        known = [v for o in operands if (v := value(o)) is not UNKNOWN and v is not None]
        if known:
            use(operands, set().union(*(_literal_types(v) for v in known)))
        if kind == "cmp" and e[1] in ("like", "ilike", "nlike", "nilike"):
            use(operands, {"text"})
    for part in parts_of(e):
        _types(part, out)


def _row_pool(key: str, consts: list[Any], widened: bool, types: set[str]) -> list[Any]:
    column = key.rsplit(".", 1)[-1] if key.startswith("col:") else ""
    if column == "ctid":
        tids = [Tid(0, 1), Tid(2**32 - 1, 2**16 - 1), Tid(0, 2), Tid(1, 1)]
        for c in consts:
            if isinstance(c, str) and c.strip().startswith("("):
                parts = c.strip(" ()").split(",")
                if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
                    b, o = int(parts[0]), int(parts[1])
                    tids += [Tid(b, max(o, 1)), Tid(b, o + 1), Tid(b + 1, 1)]
                    if b:
                        tids.append(Tid(b - 1, 2**16 - 1))
        return _unique(([None] if widened else []) + tids)
    if column in _XID:
        low = 1 if column == "xmin" else 0
        xids = [n for n in [low, low + 1, 2**32 - 1, *_numbers(consts)] if isinstance(n, int)]
        return _unique(([None] if widened else []) + [n for n in xids if low <= n < 2**32])
    nums: list[Any] = []
    texts: list[Any] = []
    bools: list[Any] = []
    if not types or "number" in types:
        nums = [-(10**18), 10**18, *_numbers(consts), 0, 1, -1, 2, -2, 0.5, -0.5]
    if not types or "text" in types:
        texts = [*_texts(consts), Text(""), Text("a"), Text("A"), Text(" a "), Text("zz")]
    if not types or "bool" in types:
        bools = [True, False]
    if widened:
        return _unique([None, *[n for n in nums if n > 0], *texts, *bools])
    return _unique([*nums, *texts, *bools])


def _free_pool(consts: list[Any]) -> list[Any]:
    plain = [c for c in consts if c is not None and not isinstance(c, bool)]
    return _unique([None, True, False, 0, 1, -1, *plain, "", "a"])


def _bare_column(e: Expr, rows: set[str]) -> bool:
    return (
        e[0] == "term"
        and e[1] in rows
        and e[1].startswith("col:")
        and (e[1].rsplit(".", 1)[-1] not in ("ctid", *_XID))
    )


def _no_rows(e: Expr, rows: set[str]) -> bool:
    if e[0] == "term":
        return e[1] not in rows
    return all(_no_rows(p, rows) for p in parts_of(e))


def _plain_filter(e: Expr, rows: set[str]) -> bool:
    """``col op <no column>``: some value of the column always fails it (and one passes)."""
    kind = e[0]
    if kind == "cmp" and e[1] not in ("like", "ilike", "nlike", "nilike"):
        a, b = e[2], e[3]
        return (_bare_column(a, rows) and _no_rows(b, rows)) or (
            _bare_column(b, rows) and _no_rows(a, rows)
        )
    if kind in ("in", "between"):
        rest = e[2] if kind == "in" else (e[2], e[3])
        return _bare_column(e[1], rows) and all(_no_rows(x, rows) for x in rest)
    return False


def holds_for_every_row(
    e: Expr, want: bool, unknown: int, budget: Budget, *, widened: bool = False
) -> bool:
    """Could ``e`` be ``want`` (True: hold; False: fail or be NULL) on every test row?

    ``unknown`` is how a term of UNKNOWN_DEP counts (TARGET or NONE); ``widened``
    lets the target's columns be NULL and keeps only the values tables hold in
    practice (see the module docstring).
    """
    e = _abstract(e, unknown)
    terms: dict[str, int] = {}
    consts: list[Any] = []
    _collect(e, unknown, terms, consts)
    row_keys = [k for k, dep in terms.items() if dep == TARGET]
    free_keys = [k for k, dep in terms.items() if dep != TARGET]
    if len(row_keys) > MAX_ROW_VALUES or len(free_keys) > MAX_FREE_VALUES:
        return False
    if not widened and _plain_filter(e, set(row_keys)):
        return False
    if widened and want:
        # Widened rows include the one whose columns are all NULL: it must hold there,
        # whatever the free values are (NULL = $1 is NULL for every $1).
        budget.left -= 1
        if truth(value(e, dict.fromkeys(row_keys))) in (False, None):
            return False
    types: dict[str, set[str]] = {}
    _types(e, types)
    rows = {k: _row_pool(k, consts, widened, types.get(k, set())) for k in row_keys}
    free = _free_pool(consts)
    for chosen in itertools.product(free, repeat=len(free_keys)):
        env = dict(zip(free_keys, chosen, strict=True))
        shown = definite = False
        for values in itertools.product(*(rows[k] for k in row_keys)):
            budget.left -= 1
            if budget.left < 0:
                return False
            env.update(zip(row_keys, values, strict=True))
            v = truth(value(e, env))
            if v is UNKNOWN:
                continue
            definite = True
            if (v is not True) if want else (v is True):
                break
        else:
            shown = definite
        if shown:
            return True
    return False
