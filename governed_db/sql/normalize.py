"""A small PostgreSQL lexer shared by both backends: split, normalize, fingerprint.

Both backends split a query string and normalize each statement with this
module, so statement texts, normalized forms and fingerprints are identical
whichever backend analyzed them. The lexer follows PostgreSQL's rules for
comments (nested ``/* */``), strings (``'..'``, ``E'..'``, ``B''``, ``X''``,
``U&''``), dollar quoting, quoted identifiers and parameters (``$1`` and
psycopg's ``%s`` / ``%(name)s``).
"""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple

__all__ = [
    "Token",
    "fingerprint_of",
    "normalize_tokens",
    "split_statements",
    "substitute_placeholders",
    "tokenize",
]


class Token(NamedTuple):
    """One lexeme: ``kind`` is one of ident, quoted, string, number, param, op, punct."""

    kind: str
    text: str
    start: int
    end: int


# Python's \w covers Unicode letters; PostgreSQL also allows other non-ASCII symbols,
# which lex here as "other" tokens: harmless for splitting and normalizing.
_IDENT_START = r"[^\W\d]"
_IDENT_REST = r"[\w$]"
# Alternatives ordered by frequency; each one's lookaheads keep the order safe.
_TOKEN_RE = re.compile(
    rf"""
    (?P<ident>(?![EeBbXxNn]')(?![Uu]&['"]){_IDENT_START}{_IDENT_REST}*)
  | (?P<number>0[xX][0-9A-Fa-f_]+|0[oO][0-7_]+|0[bB][01_]+
        |(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)
  | (?P<punct>::|[(),;\[\].:])
  | (?P<string>(?:[BbXxNn]|[Uu]&)?'(?:[^']|'')*'?)
  | (?P<op>(?:%%|[+*<>=~!@\#^&|`?]|-(?!-)|/(?!\*)|%(?!\([^)]*\)[sbt]|[sbt](?!{_IDENT_REST})))+)
  | (?P<quoted>(?:[Uu]&)?"(?:[^"]|"")*"?)
  | (?P<param>\$\d+|%\([^)]*\)[sbt]|%[sbt](?!{_IDENT_REST}))
  | (?P<comment>--[^\n]*|/\*(?:[^*/]|\*(?!/)|/(?!\*))*(?:\*/|\Z))
  | (?P<nested>/\*)
  | (?P<dollar>\$\$.*?(?:\$\$|\Z)|\$(?P<tag>{_IDENT_START}\w*)\$.*?(?:\$(?P=tag)\$|\Z))
  | (?P<estring>[Ee]'(?:[^'\\]|\\.|'')*'?)
  | (?P<other>\S)
    """,
    re.VERBOSE | re.DOTALL,
)
_KIND = {"estring": "string", "dollar": "string", "tag": "string"}


def _block_comment_end(text: str, start: int) -> int:
    """End of a (possibly nested) block comment opened at ``start``."""
    depth = 0
    i = start
    n = len(text)
    while i < n:
        pair = text[i : i + 2]
        if pair == "/*":
            depth += 1
            i += 2
        elif pair == "*/":
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return n


def tokenize(text: str) -> list[Token]:
    """Lex ``text``; whitespace and comments are dropped."""
    tokens: list[Token] = []
    append = tokens.append
    kinds = _KIND
    new = tuple.__new__  # skips NamedTuple's Python-level __new__: this loop is hot
    pos = 0
    while True:
        restart = -1
        for m in _TOKEN_RE.finditer(text, pos):
            kind = m.lastgroup or "other"
            if kind == "comment":
                continue
            if kind == "nested":  # a comment holding another: PostgreSQL nests them
                restart = _block_comment_end(text, m.start())
                break
            start, end = m.span()
            append(new(Token, (kinds.get(kind, kind), m.group(), start, end)))
        if restart < 0:
            return tokens
        pos = restart


def split_statements(text: str) -> list[tuple[str, list[Token]]]:
    """Split on top-level ``;`` into (statement text, tokens); empty statements dropped.

    ``BEGIN ATOMIC ... END`` bodies (SQL-standard function bodies) stay whole.
    """
    out: list[tuple[str, list[Token]]] = []
    current: list[Token] = []
    atomic = 0
    prev = ""
    start = 0
    for tok in tokenize(text):
        if tok.kind == "ident":
            word = tok.text.lower()
            if atomic:
                if word == "case":
                    atomic += 1
                elif word == "end":
                    atomic -= 1
            elif word == "atomic" and prev == "begin":
                atomic = 1
            prev = word
        else:
            prev = ""
        if tok.kind == "punct" and tok.text == ";" and not atomic:
            if current:
                out.append((text[start : tok.start].strip(), current))
            current = []
            start = tok.end
            continue
        if not current:
            start = tok.start
        current.append(tok)
    if current:
        out.append((text[start:].strip(), current))
    return out


def substitute_placeholders(text: str, tokens: list[Token], base: int = 0) -> str:
    """Rewrite psycopg placeholders (``%s``, ``%(name)s``) as ``$n`` so PostgreSQL can parse.

    ``base`` is where ``text`` starts in the string the tokens were read from.
    The same name maps to the same number. Returns ``text`` unchanged when
    there is nothing to rewrite.
    """
    pieces: list[str] = []
    names: dict[str, int] = {}
    last = 0
    count = 0
    for tok in tokens:
        if tok.kind != "param" or tok.text.startswith("$"):
            continue
        if tok.text.startswith("%("):
            if tok.text not in names:
                count += 1
                names[tok.text] = count
            number = names[tok.text]
        else:
            count += 1
            number = count
        pieces.append(text[last : tok.start - base])
        pieces.append(f"${number}")
        last = tok.end - base
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


_NO_SPACE_BEFORE = frozenset({",", ")", ".", "::", "]", "["})
_NO_SPACE_AFTER = frozenset({"(", ".", "::", "["})


def normalize_tokens(tokens: list[Token]) -> str:
    """Literals and parameters become ``?``; unquoted words are lower-cased; one space apart."""
    parts: list[str] = []
    glue = True
    for tok in tokens:
        kind = tok.kind
        if kind in ("string", "number", "param"):
            word = "?"
        elif kind == "ident":
            word = tok.text.lower()
        else:
            word = tok.text
        if parts and not glue and word not in _NO_SPACE_BEFORE:
            parts.append(" ")
        parts.append(word)
        glue = word in _NO_SPACE_AFTER
    return "".join(parts)


def fingerprint_of(normalized: str) -> str:
    """sha256 hex of a normalized text: equal for statements differing only in literals."""
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()
