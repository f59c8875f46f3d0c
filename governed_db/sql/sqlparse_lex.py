"""Tokens and parenthesis groups for the sqlparse backend.

sqlparse's lexer supplies the lexemes (strings, dollar quotes, comments,
numbers, operators); keywords are recognised here by word, the way
PostgreSQL's grammar does, because sqlparse's keyword list is not
PostgreSQL's. Anything the lexer and PostgreSQL might read differently
(backslashes in strings, nested comments, unknown placeholders) raises
``Unsure`` and the statement becomes opaque.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlparse import lexer as _lexer
from sqlparse import tokens as T

__all__ = ["Group", "Item", "Tok", "Unsure", "is_query", "is_word", "key_of", "lex"]


class Unsure(Exception):
    """The statement may mean something this backend cannot see: make it opaque."""


class Tok(NamedTuple):
    """kind: word (unquoted, lower-cased), qname (quoted name), str, num, param, op, punct."""

    kind: str
    word: object


class Group:
    """A parenthesised run of items."""

    __slots__ = ("items",)

    def __init__(self, items: list[Item]) -> None:
        self.items = items

    def __repr__(self) -> str:
        return f"Group({self.items!r})"


Item = Tok | Group

_STRING_PREFIXES = frozenset({"e", "b", "x", "n", "u"})


def _tokens(text: str) -> list[Tok]:
    out: list[Tok] = []
    adjacent = False
    for ttype, raw in _lexer.tokenize(text):  # type: ignore[no-untyped-call]
        if ttype in T.Whitespace or ttype in T.Newline or ttype in T.Comment:
            if ttype in T.Comment and raw.count("/*") > 1:
                raise Unsure("nested comment")
            adjacent = False
            continue
        low = raw.lower()
        if ttype in T.Keyword or (ttype in T.Name and ttype is not T.Name.Placeholder):
            out.extend(Tok("word", w) for w in low.split())
        elif ttype is T.Name.Placeholder:
            if not (raw.startswith("$") and raw[1:].isdigit()):
                raise Unsure("placeholder")
            out.append(Tok("param", raw))
        elif ttype is T.Literal.String.Symbol:
            out.append(Tok("qname", raw[1:-1].replace('""', '"')))
        elif ttype is T.Literal.String.Single:
            if "\\" in raw:
                raise Unsure("backslash in string")
            if adjacent and out and out[-1].kind == "word" and out[-1].word in _STRING_PREFIXES:
                out.pop()
            out.append(Tok("str", raw[1:-1].replace("''", "'")))
        elif ttype is T.Literal and raw.startswith("$"):
            tag_end = raw.index("$", 1) + 1
            out.append(Tok("str", raw[tag_end : len(raw) - tag_end]))
        elif ttype in T.Literal.Number:
            try:
                out.append(Tok("num", int(raw) if raw.isdigit() else float(raw)))
            except ValueError as exc:
                raise Unsure("number") from exc
        elif ttype in T.Operator or ttype is T.Wildcard:
            if "*/" in raw:
                raise Unsure("comment end outside a comment")
            if low.isalpha() or " " in low:
                out.extend(Tok("word", w) for w in low.split())
            else:
                out.append(Tok("op", low))
        elif ttype in T.Punctuation:
            out.append(Tok("punct", raw))
        else:
            raise Unsure(f"token {ttype}")
        adjacent = True
    return out


def lex(text: str) -> list[Item]:
    """Lex ``text`` and nest parentheses into Groups."""
    stack: list[list[Item]] = [[]]
    for tok in _tokens(text):
        if tok.kind == "punct" and tok.word == "(":
            stack.append([])
        elif tok.kind == "punct" and tok.word == ")":
            if len(stack) == 1:
                raise Unsure("unbalanced )")
            inner = stack.pop()
            stack[-1].append(Group(inner))
        elif tok.kind == "punct" and tok.word in ("[", "]"):
            raise Unsure("array subscript")
        else:
            stack[-1].append(tok)
    if len(stack) != 1:
        raise Unsure("unbalanced (")
    return stack[0]


def key_of(items: list[Item]) -> str:
    """A structural key: equal for the same expression written the same way."""
    return repr([(i.kind, i.word) if isinstance(i, Tok) else key_of(i.items) for i in items])


def is_word(item: Item | None, *words: str) -> bool:
    """True if ``item`` is one of the unquoted ``words``."""
    return isinstance(item, Tok) and item.kind == "word" and item.word in words


_QUERY_STARTS = frozenset({"select", "with", "values", "table", "insert", "update", "delete"})
_QUERY_TAILS = frozenset({"union", "intersect", "except", "order", "limit", "offset", "fetch"})


def is_query(group: Group) -> bool:
    """Does the group hold a (sub)query rather than an expression or a list?

    ``((SELECT 1) UNION (SELECT 2))`` is a query; ``((SELECT 1) = (SELECT 1))`` is not.
    """
    first = group.items[0] if group.items else None
    if isinstance(first, Group):
        after = group.items[1] if len(group.items) > 1 else None
        return is_query(first) and (after is None or is_word(after, *_QUERY_TAILS))
    return is_word(first, *_QUERY_STARTS)
