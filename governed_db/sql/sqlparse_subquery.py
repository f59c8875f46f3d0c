"""Subqueries inside a condition, for the sqlparse backend: do they read the target table?

Only the plain shape ``SELECT list [FROM name [alias], ...] [WHERE cond] [LIMIT n]``
is read (its FROM names shadow the outer ones, as in PostgreSQL); anything else
raises ``Unsure`` and the caller marks the subquery ``UNKNOWN_DEP``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from governed_db.sql.scope import NONE, Scope, ScopeItem
from governed_db.sql.sqlparse_lex import Group, Item, Tok, Unsure, is_query, is_word
from governed_db.sql.sqlparse_words import STOP
from governed_db.sql.where import Expr, dependence
from governed_db.sql.where_eval import AGGREGATES, FUNCTIONS

__all__ = ["Prefix", "Witness", "mentions", "subquery_dependence", "witness"]

#: Parses the expression at the start of some items: (expression, items taken).
Prefix = Callable[[list[Item], Scope], tuple[Expr, int]]
COMMA = Tok("punct", ",")
DOT = Tok("punct", ".")

_SUBQUERY_CLAUSES = frozenset(
    {"group", "having", "order", "window", "union", "intersect", "except", "for", "into"}
)


class _Parts(NamedTuple):
    select: list[Item]
    names: list[ScopeItem]
    tables: list[str | None]
    where: list[Item] | None


def _read(items: list[Item]) -> _Parts:
    """``SELECT list [FROM name [alias], ...] [WHERE cond] [LIMIT n] [OFFSET n]``, else Unsure."""
    if not is_word(items[0] if items else None, "select"):
        raise Unsure("subquery shape")
    cut = [i for i, it in enumerate(items) if is_word(it, "from", "where", "limit", "offset")]
    if any(is_word(it, *_SUBQUERY_CLAUSES) for it in items):
        raise Unsure("subquery clause")
    bounds = [*cut, len(items)]
    select = items[1 : bounds[0]]
    if select and is_word(select[0], "distinct", "all"):
        select = select[1:]
    names: list[ScopeItem] = []
    tables: list[str | None] = []
    where: list[Item] | None = None
    for n, i in enumerate(cut):
        part = items[i + 1 : bounds[n + 1]]
        if is_word(items[i], "from"):
            names, tables = _from_names(part)
        elif is_word(items[i], "where"):
            where = part
        elif len(part) != 1 or not (isinstance(part[0], Tok) and part[0].kind in ("num", "param")):
            raise Unsure("LIMIT/OFFSET expression")
    return _Parts(select, names, tables, where)


def subquery_dependence(items: list[Item], scope: Scope, parse: Prefix) -> int:
    """How a plain subquery depends on the target; Unsure for any other shape."""
    parts = _read(items)
    inner = scope.push(parts.names)
    dep = NONE
    if parts.select != [Tok("op", "*")]:
        for run in _split(parts.select):
            dep = max(dep, dependence(_select_item(run, inner, parse)))
    if parts.where is not None:
        dep = max(dep, dependence(_where(parts.where, inner, parse)))
    return dep


def _where(where: list[Item], scope: Scope, parse: Prefix) -> Expr:
    expr, used = parse(where, scope)
    if used != len(where):
        raise Unsure("subquery WHERE")
    return expr


class Witness(NamedTuple):
    """What a subquery without FROM (exact) or over the target table itself offers."""

    exact: bool
    where: Expr | None
    values: list[Expr] | None  # None: not the row's own values (calls, *)
    aggregated: bool


def witness(items: list[Item], scope: Scope, parse: Prefix) -> Witness | None:
    """Read a subquery with no FROM, or whose one FROM item is the target table.

    None for any other FROM; Unsure for a shape this backend does not read.
    """
    parts = _read(items)
    table = scope.target_table()
    if parts.names:
        if len(parts.names) != 1 or table is None or parts.tables[0] != table:
            return None
        item = parts.names[0]
        inner = scope.push([ScopeItem(item.refname, item.schema, True, table)])
    else:
        inner = scope.push([])
    where = _where(parts.where, inner, parse) if parts.where is not None else None
    runs = _split(parts.select)
    values = None
    if all(_pure(run) for run in runs):
        values = [_select_item(run, inner, parse) for run in runs]
    return Witness(not parts.names, where, values, any(_aggregates(run) for run in runs))


def _calls(items: list[Item]) -> list[tuple[str, Group, Item | None]]:
    out = []
    for n, item in enumerate(items):
        if isinstance(item, Group):
            prev = items[n - 1] if n else None
            if isinstance(prev, Tok) and prev.kind in ("word", "qname"):
                nxt = items[n + 1] if n + 1 < len(items) else None
                out.append((str(prev.word).lower(), item, nxt))
            out += _calls(item.items)
    return out


def _pure(run: list[Item]) -> bool:
    """Only known functions, no subquery, no ``*``: the row's own value."""
    if any(item == Tok("op", "*") for item in run):
        return False
    for name, group, _ in _calls(run):
        if is_query(group) or name not in _PURE_CALLS:
            return False
    return not any(isinstance(i, Group) and i.items and is_query(i) for i in run)


_PURE_CALLS = frozenset({*FUNCTIONS, "cast"})


def _aggregates(run: list[Item]) -> bool:
    for name, group, nxt in _calls(run):
        if is_word(nxt, "over"):
            continue
        if name in AGGREGATES or group.items[:1] in ([Tok("op", "*")], [Tok("word", "distinct")]):
            return True
        if is_word(nxt, "filter"):
            return True
    return False


def mentions(items: list[Item], table: str) -> bool:
    """Does any word in ``items`` (nested too) name ``table``'s relation?"""
    name = table.rsplit(".", 1)[-1]
    for item in items:
        if isinstance(item, Group):
            if mentions(item.items, table):
                return True
        elif item.kind in ("word", "qname") and item.word == name:
            return True
    return False


def _split(items: list[Item]) -> list[list[Item]]:
    runs: list[list[Item]] = [[]]
    for item in items:
        if item == COMMA:
            runs.append([])
        else:
            runs[-1].append(item)
    return runs


def _select_item(run: list[Item], scope: Scope, parse: Prefix) -> Expr:
    if len(run) >= 2 and is_word(run[-2], "as"):
        run = run[:-2]
    expr, used = parse(run, scope)
    rest = run[used:]
    if rest and not (len(rest) == 1 and isinstance(rest[0], Tok) and rest[0].kind == "qname"):
        if not (len(rest) == 1 and isinstance(rest[0], Tok) and rest[0].kind == "word"):
            raise Unsure("select item")
        if rest[0].word in STOP:
            raise Unsure("select item")
    return expr


def _from_names(items: list[Item]) -> tuple[list[ScopeItem], list[str | None]]:
    """``name [[AS] alias], ...`` only: joins and subqueries are not read here.

    Also the table each names (``schema.name``).
    """
    out = []
    tables: list[str | None] = []
    for run in _split(items):
        parts: list[str] = []
        i = 0
        while i < len(run):
            tok = run[i]
            if not (isinstance(tok, Tok) and tok.kind in ("word", "qname")):
                raise Unsure("FROM item")
            if tok.kind == "word" and tok.word in STOP:
                raise Unsure("FROM item")
            parts.append(str(tok.word))
            i += 1
            if i < len(run) and run[i] == DOT:
                i += 1
                continue
            break
        alias_run = run[i:]
        if alias_run and is_word(alias_run[0], "as"):
            alias_run = alias_run[1:]
        if len(alias_run) > 1 or not parts:
            raise Unsure("FROM item")
        tables.append(f"{parts[-2] if len(parts) > 1 else 'public'}.{parts[-1]}")
        if alias_run:
            tok = alias_run[0]
            if not (isinstance(tok, Tok) and tok.kind in ("word", "qname")) or (
                tok.kind == "word" and tok.word in STOP
            ):
                raise Unsure("FROM alias")
            out.append(ScopeItem(str(tok.word)))
        else:
            schema = parts[-2] if len(parts) > 1 else "public"
            out.append(ScopeItem(parts[-1], schema))
    return out, tables
