"""A small PostgreSQL lexer shared by both backends: split, normalize, fingerprint.

Both backends split a query string and normalize each statement with this
module, so statement texts, normalized forms and fingerprints are identical
whichever backend analyzed them. Where a statement starts and ends, and what
is a literal, must be exactly what the server reads, so the lexer follows
PostgreSQL's own (``src/backend/parser/scan.l``):

- whitespace is ``[ \\t\\n\\r\\f\\v]`` only; every other character is part of a token;
- ``--`` comments end at ``\\n`` *or* ``\\r``; ``/* */`` comments nest;
- identifiers and dollar-quote tags may hold any non-ASCII character (and
  identifiers ``$``): ``x$$`` and ``€$$`` are identifiers, not a dollar quote;
- strings: ``'..'`` and ``N'..'`` (``''`` doubles), ``E'..'`` (backslash
  escapes), ``B'..'`` / ``X'..'`` (no doubling), ``U&'..'``; a string followed
  by whitespace holding a newline and another ``'`` continues (``'a'\\n'b'`` is
  one literal, read in the first part's mode);
- ``$tag$ .. $tag$`` dollar quoting, ``".."`` / ``U&".."`` quoted identifiers;
- multi-character operators lose a trailing ``+``/``-`` as PostgreSQL's do
  (``=-1`` is ``=``, ``-``, ``1``);
- a NUL character ends the text, as it ends the C string libpq sends.

Parameters are ``$1`` and psycopg's ``%s`` / ``%(name)s``. A token is a plain
tuple ``(kind, text, start, end)``; kind is one of ident, quoted, string,
number, param, op, punct, other.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

__all__ = [
    "Token",
    "fingerprint_of",
    "normalize_tokens",
    "split_statements",
    "substitute_placeholders",
    "tokenize",
]

#: ``(kind, text, start, end)``.
Token = tuple[str, str, int, int]
KIND: Final = 0
TEXT: Final = 1
START: Final = 2
END: Final = 3

_HIGH = "\\x80-\\U0010ffff"  # any non-ASCII character: bytes \200-\377 in UTF-8
_IDENT_START = f"[A-Za-z_{_HIGH}]"
_IDENT_REST = f"[A-Za-z0-9_${_HIGH}]"
_DOLQ_REST = f"[A-Za-z0-9_{_HIGH}]"
# Whitespace holding a newline between two parts of one string literal (scan.l's quotecontinue).
_CONT = r"(?>(?:[ \t\f\v]|--[^\n\r]*+)*+)[\n\r](?>(?:[ \t\n\r\f\v]|--[^\n\r]*+[\n\r])*+)'"
_SQ = r"(?:[^']++|'')*+"
_EQ = r"(?:[^'\\]++|\\.|'')*+"
_BQ = r"[^']*+"
_DEC = r"[0-9](?:_?[0-9])*+"
# The lookahead skips whitespace before trying the alternatives (much faster).
_TOKEN_RE = re.compile(
    rf"""
    (?=[^ \t\n\r\f\v])(?:
    (?P<ident>(?![EeBbXx]')(?![Uu]&['"]){_IDENT_START}{_IDENT_REST}*+)
  | (?P<punct>::|:=|\.\.|[(),;\[\]:]|\.(?![0-9]))
  | (?P<number>0[xX](?:_?[0-9A-Fa-f])++|0[oO](?:_?[0-7])++|0[bB](?:_?[01])++
        |(?:{_DEC}(?:\.(?!\.)(?:{_DEC})?)?|\.{_DEC})(?:[eE][+-]?{_DEC})?)
  | (?P<string>'{_SQ}(?:'{_CONT}{_SQ})*+'?
        |[Ee]'{_EQ}(?:'{_CONT}{_EQ})*+'?
        |[BbXx]'{_BQ}(?:'{_CONT}{_BQ})*+'?
        |[Uu]&'{_SQ}(?:'{_CONT}{_SQ})*+'?)
  | (?P<op>(?:%%|[+*<>=~!@\#^&|`?]|-(?!-)|/(?!\*)|%(?!\([^)]*\)[sbt]|[sbt](?!{_IDENT_REST})))++)
  | (?P<quoted>(?:[Uu]&)?"(?:[^"]++|"")*+"?)
  | (?P<param>\$[0-9]++|%\([^)]*\)[sbt]|%[sbt](?!{_IDENT_REST}))
  | (?P<comment>--[^\n\r]*+|/\*(?:[^*/]++|\*(?!/)|/(?!\*))*+\*/)
  | (?P<nested>/\*)
  | (?P<dollar>\$\$.*?(?:\$\$|\Z)|\$(?P<tag>{_IDENT_START}{_DOLQ_REST}*+)\$.*?(?:\$(?P=tag)\$|\Z))
  | (?P<other>.)
    )""",
    re.VERBOSE | re.DOTALL,
)
_SPACE = " \t\n\r\f\v"
_SQL_OPS = frozenset("~!@#^&|`?%")  # an operator holding one of these keeps a trailing + or -


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


def _split_operator(tok: Token) -> list[Token]:
    """PostgreSQL's rule: ``=-`` is two operators, ``?-`` one (scan.l, {operator})."""
    _, op, start, _ = tok
    n = len(op)
    if any(c in _SQL_OPS for c in op[:-1]):
        return [tok]
    while n > 1 and op[n - 1] in "+-":
        n -= 1
    out = [("op", op[:n], start, start + n)]
    out.extend(("op", c, start + i, start + i + 1) for i, c in enumerate(op[n:], n))
    return out


def _tokens_from(text: str, pos: int, out: list[Token]) -> int:
    """Append tokens from ``pos`` on; return where a nested comment restarts, or -1."""
    for m in _TOKEN_RE.finditer(text, pos):
        kind = m.lastgroup or "other"
        if kind == "comment":
            continue
        if kind == "nested":  # a comment holding another: PostgreSQL nests them
            return _block_comment_end(text, m.start())
        tok = ("string" if kind == "dollar" else kind, m.group(), m.start(), m.end())
        if kind == "op" and len(tok[TEXT]) > 1 and tok[TEXT][-1] in "+-":
            out.extend(_split_operator(tok))
        else:
            out.append(tok)
    return -1


def tokenize(text: str) -> list[Token]:
    """Lex ``text`` as PostgreSQL would; whitespace and comments are dropped."""
    nul = text.find("\x00")
    if nul >= 0:
        text = text[:nul]
    if "--" not in text and "/*" not in text and "$" not in text:
        # The common case, in one comprehension: nothing to drop, restart or rename.
        found = _TOKEN_RE.finditer(text)
        tokens = [(m.lastgroup or "", m.group(), m.start(), m.end()) for m in found]
        if "+" not in text and "-" not in text:
            return tokens
        out: list[Token] = []
        for tok in tokens:
            if tok[KIND] == "op" and len(tok[TEXT]) > 1 and tok[TEXT][-1] in "+-":
                out.extend(_split_operator(tok))
            else:
                out.append(tok)
        return out
    out = []
    pos = 0
    while pos >= 0:
        pos = _tokens_from(text, pos, out)
    return out


def split_statements(text: str) -> list[tuple[str, list[Token]]]:
    """Split on top-level ``;`` into (statement text, tokens); empty statements dropped.

    ``BEGIN ATOMIC ... END`` bodies (SQL-standard function bodies) stay whole.
    The text ends at a NUL character, as the server's copy of it does.
    """
    nul = text.find("\x00")
    if nul >= 0:
        text = text[:nul]
    tokens = tokenize(text)
    if "atomic" in text.lower():
        cuts = _cuts_with_atomic(tokens)
    else:
        cuts = [i for i, tok in enumerate(tokens) if tok[TEXT] == ";" and tok[KIND] == "punct"]
    out: list[tuple[str, list[Token]]] = []
    first = 0
    for cut in [*cuts, len(tokens)]:
        if cut > first:
            piece = tokens[first:cut]
            end = tokens[cut][START] if cut < len(tokens) else len(text)
            out.append((text[piece[0][START] : end].rstrip(_SPACE), piece))
        first = cut + 1
    return out


def _cuts_with_atomic(tokens: list[Token]) -> list[int]:
    """Indices of the ``;`` that end statements, skipping those inside BEGIN ATOMIC bodies."""
    cuts = []
    atomic = 0
    prev = ""
    for i, (kind, text, _, _) in enumerate(tokens):
        if kind == "ident":
            word = text.lower()
            if (word == "atomic" and prev == "begin") or (atomic and word == "case"):
                atomic += 1
            elif atomic and word == "end":
                atomic -= 1
            prev = word
            continue
        prev = ""
        if kind == "punct" and text == ";" and not atomic:
            cuts.append(i)
    return cuts


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
    for kind, word, start, end in tokens:
        if kind != "param" or word.startswith("$"):
            continue
        if word.startswith("%("):
            if word not in names:
                count += 1
                names[word] = count
            number = names[word]
        else:
            count += 1
            number = count
        pieces.append(text[last : start - base])
        pieces.append(f"${number}")
        last = end - base
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


_NO_SPACE_BEFORE = frozenset({",", ")", ".", "::", "]", "["})
_NO_SPACE_AFTER = frozenset({"(", ".", "::", "["})
_LITERALS = frozenset({"string", "number", "param"})


def normalize_tokens(tokens: list[Token]) -> str:
    """Literals and parameters become ``?``; unquoted words are lower-cased; one space apart."""
    parts: list[str] = []
    append = parts.append
    glue = True
    literals = _LITERALS
    before = _NO_SPACE_BEFORE
    after = _NO_SPACE_AFTER
    for kind, text, _, _ in tokens:
        if kind in literals:
            word = "?"
        elif kind == "ident":
            word = text.lower()
        else:
            word = text
        if not glue and word not in before:
            append(" ")
        append(word)
        glue = word in after
    return "".join(parts)


def fingerprint_of(normalized: str) -> str:
    """sha256 hex of a normalized text: equal for statements differing only in literals."""
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()
