"""WHERE/ON conditions for the sqlparse backend, parsed into the where.py language."""

from __future__ import annotations

from governed_db.sql.sqlparse_lex import Group, Item, Tok, Unsure, is_query, is_word, key_of
from governed_db.sql.where import COMPARISONS, Expr, cast_type

__all__ = ["parse_condition"]

_ADD = frozenset({"+", "-", "||"})
_MUL = frozenset({"*", "/", "%"})
# Words that end a primary (they belong to the grammar around it).
_STOP = frozenset(
    {
        "and",
        "or",
        "not",
        "is",
        "in",
        "between",
        "like",
        "ilike",
        "similar",
        "then",
        "else",
        "end",
        "when",
        "as",
        "from",
        "for",
        "escape",
        "isnull",
        "notnull",
        "asc",
        "desc",
        "nulls",
    }
)


class _Parser:
    """Recursive descent over items: or > and > not > predicate > + - || > * / % > unary > ::."""

    __slots__ = ("items", "pos")

    def __init__(self, items: list[Item]) -> None:
        self.items = items
        self.pos = 0

    def peek(self, ahead: int = 0) -> Item | None:
        i = self.pos + ahead
        return self.items[i] if i < len(self.items) else None

    def take(self) -> Item:
        item = self.peek()
        if item is None:
            raise Unsure("expression ends early")
        self.pos += 1
        return item

    def expect(self, word: str) -> None:
        if not is_word(self.take(), word):
            raise Unsure(f"expected {word}")

    def or_(self) -> Expr:
        items = [self.and_()]
        while is_word(self.peek(), "or"):
            self.pos += 1
            items.append(self.and_())
        return items[0] if len(items) == 1 else ("or", tuple(items))

    def and_(self) -> Expr:
        items = [self.not_()]
        while is_word(self.peek(), "and"):
            self.pos += 1
            items.append(self.not_())
        return items[0] if len(items) == 1 else ("and", tuple(items))

    def not_(self) -> Expr:
        if is_word(self.peek(), "not"):
            self.pos += 1
            return ("not", self.not_())
        return self.predicate()

    def predicate(self) -> Expr:
        start = self.pos
        left = self.arith()
        nxt = self.peek()
        if isinstance(nxt, Tok) and nxt.kind == "op" and nxt.word in COMPARISONS:
            self.pos += 1
            return ("cmp", COMPARISONS[str(nxt.word)], left, self.arith())
        if isinstance(nxt, Tok) and nxt.kind == "op":
            self.pos += 1
            self.arith()
            return ("term", key_of(self.items[start : self.pos]))
        negated = False
        if is_word(nxt, "is"):
            self.pos += 1
            if is_word(self.peek(), "not"):
                self.pos += 1
                negated = True
            what = self.take()
            if is_word(what, "null"):
                return ("isnull", left, negated)
            if is_word(what, "true", "false"):
                return ("is", left, is_word(what, "true"), negated)
            raise Unsure("IS form")
        if is_word(nxt, "not") and is_word(self.peek(1), "in", "like", "ilike", "between"):
            self.pos += 1
            negated = True
            nxt = self.peek()
        if is_word(nxt, "like", "ilike"):
            self.pos += 1
            op = str(nxt.word) if isinstance(nxt, Tok) else "like"
            if negated:
                op = "n" + op
            return ("cmp", op, left, self.arith())
        if is_word(nxt, "in"):
            self.pos += 1
            group = self.take()
            if not isinstance(group, Group):
                raise Unsure("IN without list")
            if is_query(group):
                return ("term", key_of(self.items[start : self.pos]))
            return ("in", left, tuple(_parse_list(group.items)), negated)
        if is_word(nxt, "between"):
            self.pos += 1
            if is_word(self.peek(), "symmetric", "asymmetric"):
                raise Unsure("BETWEEN SYMMETRIC")
            lo = self.arith()
            self.expect("and")
            return ("between", left, lo, self.arith(), negated)
        if negated:
            raise Unsure("dangling NOT")
        return left

    def arith(self) -> Expr:
        left = self.mul()
        while True:
            nxt = self.peek()
            if not (isinstance(nxt, Tok) and nxt.kind == "op" and nxt.word in _ADD):
                return left
            self.pos += 1
            left = ("arith", str(nxt.word), left, self.mul())

    def mul(self) -> Expr:
        left = self.unary()
        while True:
            nxt = self.peek()
            if not (isinstance(nxt, Tok) and nxt.kind == "op" and nxt.word in _MUL):
                return left
            self.pos += 1
            left = ("arith", str(nxt.word), left, self.unary())

    def unary(self) -> Expr:
        nxt = self.peek()
        if isinstance(nxt, Tok) and nxt.kind == "op" and nxt.word in ("-", "+"):
            self.pos += 1
            inner = self.unary()
            if nxt.word == "+":
                return inner
            if inner[0] == "const" and isinstance(inner[1], int | float):
                return ("const", -inner[1])
            return ("arith", "-", ("const", 0), inner)
        expr = self.primary()
        while isinstance(self.peek(), Tok) and self.peek() == Tok("punct", "::"):
            self.pos += 1
            expr = ("cast", expr, cast_type(self.type_name()))
        return expr

    def type_name(self) -> str:
        parts = [self.take()]
        while self.peek() == Tok("punct", "."):
            self.pos += 1
            parts.append(self.take())
        last = parts[-1]
        if not (isinstance(last, Tok) and last.kind in ("word", "qname")):
            raise Unsure("type name")
        name = str(last.word)
        if is_word(last, "double") and is_word(self.peek(), "precision"):
            self.pos += 1
            name = "float8"
        if isinstance(self.peek(), Group):  # varchar(10), numeric(10, 2)
            self.pos += 1
            name = "other" if name not in ("varchar", "char") else name
        return name

    def primary(self) -> Expr:
        start = self.pos
        item = self.take()
        if isinstance(item, Group):
            if not item.items or is_query(item):
                return ("term", key_of([item]))
            inner = _Parser(item.items)
            expr = inner.or_()
            if inner.pos != len(item.items):
                return ("term", key_of([item]))  # a row constructor or a list
            return expr
        kind, word = item
        if kind in ("str", "num"):
            return ("const", word)
        if kind == "param":
            return ("term", key_of([item]))
        if kind in ("word", "qname"):
            if kind == "word" and word in ("true", "false"):
                return ("const", word == "true")
            if kind == "word" and word == "null":
                return ("const", None)
            if kind == "word" and word == "cast" and isinstance(self.peek(), Group):
                group = self.take()
                assert isinstance(group, Group)
                inner = _Parser(group.items)
                expr = inner.or_()
                inner.expect("as")
                typ = inner.type_name()
                if inner.pos != len(group.items):
                    raise Unsure("CAST form")
                return ("cast", expr, cast_type(typ))
            if kind == "word" and word == "case":
                depth = 1
                while depth:
                    inner_item = self.take()
                    if is_word(inner_item, "case"):
                        depth += 1
                    elif is_word(inner_item, "end"):
                        depth -= 1
                return ("term", key_of(self.items[start : self.pos]))
            if kind == "word" and word in _STOP:
                raise Unsure(f"unexpected {word}")
            while self.peek() == Tok("punct", "."):
                self.pos += 2
            nxt = self.peek()
            # A function call f(...), or a typed literal: date '2024-01-01'.
            if isinstance(nxt, Group) or (isinstance(nxt, Tok) and nxt.kind == "str"):
                self.pos += 1
            return ("term", key_of(self.items[start : self.pos]))
        raise Unsure(f"unexpected {word!r}")


def _parse_list(items: list[Item]) -> list[Expr]:
    out: list[Expr] = []
    run: list[Item] = []
    for item in [*items, Tok("punct", ",")]:
        if item == Tok("punct", ","):
            p = _Parser(run)
            out.append(p.arith())
            if p.pos != len(run):
                raise Unsure("list item")
            run = []
        else:
            run.append(item)
    return out


def parse_condition(items: list[Item]) -> Expr:
    """Parse a WHERE/ON condition; raise Unsure if it is not fully understood."""
    if not items:
        raise Unsure("empty condition")
    p = _Parser(items)
    expr = p.or_()
    if p.pos != len(items):
        raise Unsure("condition has trailing items")
    return expr
