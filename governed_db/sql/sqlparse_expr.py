"""WHERE/ON conditions for the sqlparse backend, parsed into the where.py language.

Column references are resolved against a ``Scope`` the way PostgreSQL does, so
``t.x = x`` is the same term on both sides and a condition that reads only
another table is row-independent. What cannot be resolved for certain (a
subquery with joins, an unusual function form) gets ``UNKNOWN_DEP``; ``trivial``
then says whether it mattered, and the statement becomes opaque if it did.
"""

from __future__ import annotations

from governed_db.sql.scope import NONE, UNKNOWN_DEP, Scope
from governed_db.sql.sqlparse_lex import Group, Item, Tok, Unsure, is_query, is_word, key_of
from governed_db.sql.sqlparse_subquery import mentions, subquery_dependence, witness
from governed_db.sql.sqlparse_words import (
    SPECIAL_CALLS,
    SQL_TYPES,
    STOP,
    TRIM_WORDS,
    VALUE_FUNCTIONS,
)
from governed_db.sql.where import COMPARISONS, Expr, cast_type, dependence
from governed_db.sql.where_eval import FUNCTIONS

__all__ = ["parse_condition"]

_ADD = frozenset({"+", "-", "||"})
_MUL = frozenset({"*", "/", "%"})
_COMMA = Tok("punct", ",")
_DOT = Tok("punct", ".")


class _Parser:
    """Recursive descent over items: or > and > not > predicate > + - || > * / % > unary > ::."""

    __slots__ = ("items", "pos", "scope")

    def __init__(self, items: list[Item], scope: Scope) -> None:
        self.items = items
        self.pos = 0
        self.scope = scope

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

    def at_end(self) -> bool:
        return self.pos == len(self.items)

    def or_(self) -> Expr:
        items = [self.and_()]
        while is_word(self.peek(), "or"):
            self.pos += 1
            items.append(self.and_())
        return _flat("or", items)

    def and_(self) -> Expr:
        items = [self.not_()]
        while is_word(self.peek(), "and"):
            self.pos += 1
            items.append(self.not_())
        return _flat("and", items)

    def not_(self) -> Expr:
        if is_word(self.peek(), "not"):
            self.pos += 1
            return ("not", self.not_())
        return self.predicate()

    def predicate(self) -> Expr:
        left = self.arith()
        nxt = self.peek()
        if isinstance(nxt, Tok) and nxt.kind == "op" and nxt.word in COMPARISONS:
            self.pos += 1
            return ("cmp", COMPARISONS[str(nxt.word)], left, self.arith())
        if isinstance(nxt, Tok) and nxt.kind == "op":
            self.pos += 1
            right = self.arith()
            return _term(("op", str(nxt.word)), left, right)
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
            if is_word(what, "distinct"):
                self.expect("from")
                return ("distinct", left, self.arith(), negated)
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
                found = self.linked(group, "in", left)
                return ("not", found) if negated else found
            return ("in", left, tuple(self.list_of(group.items)), negated)
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
            typ, key = self.type_name()
            expr = ("cast", expr, cast_type(typ), key)
        return expr

    def type_name(self) -> tuple[str, str]:
        """The type's name for ``cast_type`` and a key equal where PostgreSQL's would be."""
        parts = [self.take()]
        while self.peek() == _DOT:
            self.pos += 1
            parts.append(self.take())
        if not all(isinstance(p, Tok) and p.kind in ("word", "qname") for p in parts):
            raise Unsure("type name")
        names = [str(p.word) for p in parts if isinstance(p, Tok)]
        last = parts[-1]
        name = names[-1]
        if is_word(last, "double") and is_word(self.peek(), "precision"):
            self.pos += 1
            name = "float8"
            names = ["pg_catalog", "float8"]
        elif len(parts) == 1 and is_word(last, *SQL_TYPES):
            names = ["pg_catalog", SQL_TYPES[name]]
        modifiers = ""
        if isinstance(self.peek(), Group):  # varchar(10), numeric(10, 2)
            group = self.take()
            modifiers = key_of([group])
            name = "other" if name not in ("varchar", "char") else name
        return name, repr((names, modifiers))

    def primary(self) -> Expr:
        start = self.pos
        item = self.take()
        if isinstance(item, Group):
            if not item.items:
                raise Unsure("empty parentheses")
            if is_query(item):
                return self.linked(item, "scalar")
            inner = _Parser(item.items, self.scope)
            expr = inner.or_()
            if inner.at_end():
                return expr
            return _term(("row",), *self.list_of(item.items))  # a row constructor (a, b)
        kind, word = item
        if kind in ("str", "num"):
            return ("const", word)
        if kind == "param":
            return ("term", key_of([item]), NONE)
        if kind not in ("word", "qname"):
            raise Unsure(f"unexpected {word!r}")
        if kind == "word":
            if word in ("true", "false"):
                return ("const", word == "true")
            if word == "null":
                return ("const", None)
            if word == "cast" and isinstance(self.peek(), Group):
                return self.cast()
            if word == "case":
                return self.case()
            if word == "exists" and isinstance(self.peek(), Group):
                group = self.take()
                assert isinstance(group, Group)
                return self.linked(group, "exists")
            if word in VALUE_FUNCTIONS and not isinstance(self.peek(), Group):
                return ("term", key_of([item]), NONE)
            if word in STOP:
                raise Unsure(f"unexpected {word}")
        fields = [str(word)]
        while self.peek() == _DOT:
            self.pos += 1
            part = self.take()
            if part == Tok("op", "*"):
                fields.append("*")
                break
            if not (isinstance(part, Tok) and part.kind in ("word", "qname")):
                raise Unsure("dotted name")
            fields.append(str(part.word))
        nxt = self.peek()
        if isinstance(nxt, Group):
            self.pos += 1
            return self.call(fields, nxt, self.items[start : self.pos])
        if isinstance(nxt, Tok) and nxt.kind == "str":  # a typed literal: date '2024-01-01'
            self.pos += 1
            return ("term", key_of(self.items[start : self.pos]), NONE)
        key, dep = self.scope.column(fields)
        return ("term", key, dep)

    def cast(self) -> Expr:
        group = self.take()
        assert isinstance(group, Group)
        inner = _Parser(group.items, self.scope)
        expr = inner.or_()
        inner.expect("as")
        typ, key = inner.type_name()
        if not inner.at_end():
            raise Unsure("CAST form")
        return ("cast", expr, cast_type(typ), key)

    def case(self) -> Expr:
        subject = None if is_word(self.peek(), "when") else self.or_()
        conditions: list[Expr] = []
        results: list[Expr] = []
        while is_word(self.peek(), "when"):
            self.pos += 1
            condition = self.or_()
            conditions.append(condition if subject is None else ("cmp", "=", subject, condition))
            self.expect("then")
            results.append(self.or_())
        if not conditions:
            raise Unsure("CASE without WHEN")
        otherwise = None
        if is_word(self.peek(), "else"):
            self.pos += 1
            otherwise = self.or_()
        self.expect("end")
        return ("case", tuple(conditions), tuple(results), otherwise)

    def call(self, fields: list[str], group: Group, written: list[Item]) -> Expr:
        """A function call: its arguments decide what it depends on."""
        items = group.items
        name = ".".join(fields)
        if not items or items == [Tok("op", "*")]:
            return ("term", repr(("call", name, key_of(items))), NONE)
        low = fields[-1].lower()
        if low in ("any", "some", "all") and len(fields) == 1 and is_query(group):
            raise Unsure("op ANY/ALL (subquery)")
        special = SPECIAL_CALLS.get(low)
        quantifier = ""
        try:
            if special is not None and any(is_word(i, *special[0]) for i in items):
                args = self.keyword_args(items, *special)
            else:
                if is_word(items[0], "distinct", "all"):
                    quantifier = str(items[0].word) if isinstance(items[0], Tok) else ""
                    items = items[1:]
                args = self.list_of(items)
        except Unsure:
            return ("term", key_of(written), UNKNOWN_DEP)
        known = _known_function(fields, quantifier, special is not None and len(args) != 1)
        if known is not None:
            return ("func", known, tuple(args))
        return _term(("call", name, quantifier), *args)

    def keyword_args(self, items: list[Item], words: frozenset[str], skip: bool) -> list[Expr]:
        runs: list[list[Item]] = [[]]
        for item in items:
            if is_word(item, *words):
                runs.append([])
            else:
                runs[-1].append(item)
        if skip:
            runs = runs[1:]
        out = []
        for run in runs:
            start = 0
            while start < len(run) and is_word(run[start], *TRIM_WORDS):
                start += 1
            if start < len(run):
                out.append(self.whole(run[start:]))
        return out

    def whole(self, items: list[Item]) -> Expr:
        p = _Parser(items, self.scope)
        expr = p.or_()
        if not p.at_end():
            raise Unsure("argument has trailing items")
        return expr

    def list_of(self, items: list[Item]) -> list[Expr]:
        out: list[Expr] = []
        run: list[Item] = []
        for item in [*items, _COMMA]:
            if item == _COMMA:
                out.append(self.whole(run))
                run = []
            else:
                run.append(item)
        return out

    def subquery(self, group: Group) -> Expr:
        """A scalar/EXISTS/IN subquery: its simple shapes are read, the rest is UNKNOWN."""
        key = key_of([group])
        try:
            return ("term", key, subquery_dependence(group.items, self.scope, _prefix))
        except Unsure:
            table = self.scope.target_table()
            if table is not None and mentions(group.items, table):
                raise  # it may be a semi-join of the target with itself: cannot tell
            return ("term", key, UNKNOWN_DEP)

    def linked(self, group: Group, link: str, left: Expr | None = None) -> Expr:
        """A subquery where an expression may use it: the row's own value where it has one.

        As the pglast backend reads it: no FROM is exact (``(SELECT id)`` is ``id``);
        one scan of the target table offers the row itself (``witness OR <subquery>``).
        """
        while len(group.items) == 1 and isinstance(group.items[0], Group):
            group = group.items[0]  # ((SELECT 1)): the same subquery
        sub = self.subquery(group)
        if link == "exists":
            opaque = _term(("exists",), sub)
        elif link == "in":
            assert left is not None
            opaque = _term(("in", False), left, sub)
        else:
            opaque = sub
        if not self.scope.levels:
            return opaque
        try:
            found = witness(group.items, self.scope, _prefix)
        except Unsure:
            return opaque
        if found is None:
            return opaque
        exact, cond = found.exact, found.where
        if link == "exists":
            if found.aggregated:
                return ("const", True)  # one row, whatever the WHERE says
            shown: Expr = cond if cond is not None else ("const", True)
            return shown if exact else ("or", (shown, opaque))
        if found.values is None or len(found.values) != 1:
            return opaque
        value = found.values[0]
        if link == "scalar":
            otherwise = ("const", None) if exact else opaque
            if cond is None:
                return value if exact else ("case", (("const", True),), (value,), otherwise)
            return ("case", (cond,), (value,), otherwise)
        assert left is not None
        compared: Expr = ("cmp", "=", left, value)
        if cond is not None:
            compared = ("case", (cond,), (compared,), ("const", False))
        return compared if exact else ("or", (compared, opaque))


def _flat(kind: str, items: list[Expr]) -> Expr:
    """As PostgreSQL's grammar builds it: ``(a OR b) OR c`` is one OR of three."""
    if len(items) == 1:
        return items[0]
    first = items[0]
    if first[0] == kind:
        items = [*first[1], *items[1:]]
    return (kind, tuple(items))


def _known_function(fields: list[str], quantifier: str, keywords: bool) -> str | None:
    """The where_eval name of a call whose result is known, as pglast names it."""
    if (
        quantifier
        or keywords
        or len(fields) > 2
        or (len(fields) == 2 and fields[0] != "pg_catalog")
    ):
        return None
    name = fields[-1].lower()
    if name == "trim":
        return "btrim"
    return name if name in FUNCTIONS else None


def _term(head: tuple[object, ...], *parts: Expr) -> Expr:
    """A term made of ``parts``: equal when they are, dependent as they are."""
    dep = max((dependence(p) for p in parts), default=NONE)
    return ("term", repr((head, parts)), dep)


def _prefix(items: list[Item], scope: Scope) -> tuple[Expr, int]:
    """The expression at the start of ``items`` and how many items it took."""
    p = _Parser(items, scope)
    return p.or_(), p.pos


def parse_condition(items: list[Item], scope: Scope | None = None) -> Expr:
    """Parse a WHERE/ON condition; raise Unsure if it is not fully understood."""
    if not items:
        raise Unsure("empty condition")
    p = _Parser(items, scope if scope is not None else Scope())
    expr = p.or_()
    if not p.at_end():
        raise Unsure("condition has trailing items")
    return expr
