"""Subqueries inside a condition, for the sqlparse backend: do they read the target table?

Only the plain shape ``SELECT list [FROM name [alias], ...] [WHERE cond] [LIMIT n]``
is read (its FROM names shadow the outer ones, as in PostgreSQL); anything else
raises ``Unsure`` and the caller marks the subquery ``UNKNOWN_DEP``.
"""

from __future__ import annotations

from collections.abc import Callable

from governed_db.sql.scope import NONE, Scope, ScopeItem
from governed_db.sql.sqlparse_lex import Item, Tok, Unsure, is_word
from governed_db.sql.sqlparse_words import STOP
from governed_db.sql.where import Expr, dependence

__all__ = ["Prefix", "subquery_dependence"]

#: Parses the expression at the start of some items: (expression, items taken).
Prefix = Callable[[list[Item], Scope], tuple[Expr, int]]
COMMA = Tok("punct", ",")
DOT = Tok("punct", ".")

_SUBQUERY_CLAUSES = frozenset(
    {"group", "having", "order", "window", "union", "intersect", "except", "for", "into"}
)


def subquery_dependence(items: list[Item], scope: Scope, parse: Prefix) -> int:
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
    where: list[Item] | None = None
    for n, i in enumerate(cut):
        part = items[i + 1 : bounds[n + 1]]
        if is_word(items[i], "from"):
            names = _from_names(part)
        elif is_word(items[i], "where"):
            where = part
        elif len(part) != 1 or not (isinstance(part[0], Tok) and part[0].kind in ("num", "param")):
            raise Unsure("LIMIT/OFFSET expression")
    inner = scope.push(names)
    dep = NONE
    if select != [Tok("op", "*")]:
        for run in _split(select):
            dep = max(dep, dependence(_select_item(run, inner, parse)))
    if where is not None:
        expr, used = parse(where, inner)
        if used != len(where):
            raise Unsure("subquery WHERE")
        dep = max(dep, dependence(expr))
    return dep


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


def _from_names(items: list[Item]) -> list[ScopeItem]:
    """``name [[AS] alias], ...`` only: joins and subqueries are not read here."""
    out = []
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
    return out
