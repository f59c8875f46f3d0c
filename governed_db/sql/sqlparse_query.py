"""Reading queries and DML for the sqlparse backend: tables, CTE scopes, WHERE, writes."""

from __future__ import annotations

from governed_db.sql.sqlparse_expr import parse_condition
from governed_db.sql.sqlparse_lex import Group, Item, Tok, Unsure, is_query, is_word
from governed_db.sql.vocabulary import Seen, Write
from governed_db.sql.where import always_true

__all__ = ["COMMA", "Reader", "words_at"]

COMMA = Tok("punct", ",")
_DOT = Tok("punct", ".")
# Words that end a WHERE (or ON) condition at the same level.
# fmt: off
_CLAUSE_END = frozenset({
    "group", "having", "window", "order", "limit", "offset", "fetch", "for", "union",
    "intersect", "except", "returning", "when", "join", "inner", "left", "right", "full",
    "cross", "natural", "where", "on",
})
# fmt: on
# Words that are never a table alias (PostgreSQL's reserved words, roughly).
# fmt: off
_RESERVED = frozenset({
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both",
    "case", "cast", "check", "collate", "column", "constraint", "create", "cross",
    "current_date", "default", "desc", "distinct", "do", "else", "end", "except", "false",
    "fetch", "for", "foreign", "from", "full", "grant", "group", "having", "in", "inner",
    "intersect", "into", "is", "join", "lateral", "leading", "left", "limit", "natural", "not",
    "null", "offset", "on", "only", "or", "order", "outer", "primary", "references",
    "returning", "right", "select", "set", "some", "table", "tablesample", "then", "to",
    "true", "union", "unique", "user", "using", "values", "when", "where", "window", "with",
})
# fmt: on


def words_at(items: list[Item], start: int, count: int) -> list[str]:
    out = []
    for item in items[start : start + count]:
        out.append(str(item.word) if isinstance(item, Tok) and item.kind == "word" else "")
    return out


class Reader:
    __slots__ = ("seen",)

    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    # -- names -------------------------------------------------------------------------------
    def name_at(self, items: list[Item], i: int) -> tuple[list[str], int]:
        """Read a dotted name at ``i``; return its parts and the index after it."""
        parts: list[str] = []
        while True:
            tok = items[i] if i < len(items) else None
            if not (isinstance(tok, Tok) and tok.kind in ("word", "qname")):
                raise Unsure("expected a name")
            if tok.kind == "word" and tok.word in _RESERVED:
                raise Unsure(f"reserved word {tok.word} as a name")
            parts.append(str(tok.word))
            i += 1
            if i < len(items) and items[i] == _DOT:
                i += 1
                continue
            return parts, i

    @staticmethod
    def qualify(parts: list[str]) -> str:
        return f"{parts[-2] if len(parts) > 1 else 'public'}.{parts[-1]}"

    def skip_alias(self, items: list[Item], i: int) -> int:
        if is_word(items[i] if i < len(items) else None, "as"):
            i += 1
        tok = items[i] if i < len(items) else None
        if isinstance(tok, Tok) and (
            tok.kind == "qname" or (tok.kind == "word" and tok.word not in _RESERVED)
        ):
            i += 1
            if i < len(items) and isinstance(items[i], Group):
                i += 1
        return i

    def target(self, items: list[Item], i: int) -> int:
        """A written relation at ``i`` ([ONLY] name [*] [[AS] alias]); return the index after."""
        if is_word(items[i] if i < len(items) else None, "only"):
            i += 1
        parts, i = self.name_at(items, i)
        self.seen.writes.add(self.qualify(parts))
        if i < len(items) and items[i] == Tok("op", "*"):
            i += 1
        return i

    def write_list(self, items: list[Item], i: int) -> None:
        """Comma-separated written relations from ``i`` on (TRUNCATE, LOCK, DROP ...)."""
        while i < len(items):
            if is_word(items[i], "only"):
                i += 1
                continue
            i = self.target(items, i)
            if i < len(items) and isinstance(items[i], Group):  # VACUUM t (col, ...)
                i += 1
            if i < len(items) and items[i] == COMMA:
                i += 1
                continue
            return

    # -- scanning ----------------------------------------------------------------------------
    def scan(self, items: list[Item], ctes: frozenset[str]) -> None:
        """Find function calls and subqueries anywhere in ``items``."""
        for n, item in enumerate(items):
            if isinstance(item, Group):
                self.group(item, ctes)
                prev = items[n - 1] if n else None
                if isinstance(prev, Tok) and prev.kind in ("word", "qname"):
                    self.seen.function(str(prev.word))

    def group(self, group: Group, ctes: frozenset[str]) -> None:
        if group.items and is_query(group):
            self.query(group.items, ctes)
        else:
            self.scan(group.items, ctes)

    def table_ref(self, items: list[Item], i: int, ctes: frozenset[str]) -> int:
        """A FROM item at ``i``: table, subquery, function or parenthesised join."""
        while is_word(items[i] if i < len(items) else None, "lateral", "only"):
            i += 1
        item = items[i] if i < len(items) else None
        if isinstance(item, Group):
            if is_query(item):
                self.query(item.items, ctes)
            else:
                self.level(item.items, ctes, from_mode=True)
            return self.skip_alias(items, i + 1)
        if is_word(item, "rows"):
            raise Unsure("ROWS FROM")
        parts, i = self.name_at(items, i)
        if i < len(items) and isinstance(items[i], Group):
            self.seen.function(parts[-1])
            self.scan([items[i]], ctes)
            i += 1
            if is_word(items[i] if i < len(items) else None, "with"):
                i += 2  # WITH ORDINALITY
        elif len(parts) == 1 and parts[0] in ctes:
            pass
        else:
            self.seen.reads.add(self.qualify(parts))
        if i < len(items) and items[i] == Tok("op", "*"):
            i += 1
        return self.skip_alias(items, i)

    def level(
        self, items: list[Item], ctes: frozenset[str], *, from_mode: bool = False
    ) -> tuple[list[Item] | None, bool, bool]:
        """Walk one query level; return (its WHERE items, has LIMIT, has a set operation)."""
        where: list[Item] | None = None
        has_limit = setop = False
        expect_table = from_mode
        i = 0
        n = len(items)
        while i < n:
            item = items[i]
            if expect_table:
                i = self.table_ref(items, i, ctes)
                expect_table = False
                continue
            if isinstance(item, Group):
                self.scan(items[max(i - 1, 0) : i + 1], ctes)
                i += 1
                continue
            word = item.word if item.kind == "word" else None
            if word == "with":
                raise Unsure("WITH inside a query level")
            if word in ("from", "join", "using") or (item == COMMA and from_mode):
                if word == "using" and i + 1 < n and isinstance(items[i + 1], Group):
                    i += 1  # JOIN ... USING (cols)
                    continue
                from_mode = from_mode or word in ("from", "using")
                expect_table = True
            elif word == "table" and i == 0:
                expect_table = True
            elif word == "where":
                start = i = i + 1
                while i < n and not is_word(items[i], *_CLAUSE_END):
                    if isinstance(items[i], Group):
                        self.scan(items[i - 1 : i + 1], ctes)
                    i += 1
                where = items[start:i]
                from_mode = False
                continue
            elif word in ("union", "intersect", "except"):
                setop = True
                from_mode = False
            elif word in ("limit", "fetch"):
                has_limit = not is_word(items[i + 1] if i + 1 < n else None, "all", "null")
                from_mode = False
            elif word in (
                "group",
                "having",
                "order",
                "window",
                "returning",
                "set",
                "select",
                "values",
                "for",
                "offset",
                "into",
            ):
                from_mode = False
            i += 1
        return where, has_limit, setop

    def with_clause(
        self, items: list[Item], i: int, ctes: frozenset[str]
    ) -> tuple[frozenset[str], int]:
        """Read ``[RECURSIVE] name [(cols)] AS [NOT] [MATERIALIZED] (body), ...`` from ``i``."""
        recursive = is_word(items[i] if i < len(items) else None, "recursive")
        i += recursive
        names: list[str] = []
        bodies: list[Group] = []
        while True:
            parts, i = self.name_at(items, i)
            if len(parts) != 1:
                raise Unsure("qualified CTE name")
            if i < len(items) and isinstance(items[i], Group):
                i += 1
            if not is_word(items[i] if i < len(items) else None, "as"):
                raise Unsure("CTE without AS")
            i += 1
            while is_word(items[i] if i < len(items) else None, "not", "materialized"):
                i += 1
            body = items[i] if i < len(items) else None
            if not isinstance(body, Group):
                raise Unsure("CTE body")
            names.append(parts[0])
            bodies.append(body)
            i += 1
            if is_word(items[i] if i < len(items) else None, "search", "cycle"):
                raise Unsure("SEARCH/CYCLE")
            if i < len(items) and items[i] == COMMA:
                i += 1
                continue
            break
        everything = ctes | frozenset(names)
        for k, body in enumerate(bodies):
            self.query(body.items, everything if recursive else ctes | frozenset(names[:k]))
        return everything, i

    def query(
        self, items: list[Item], ctes: frozenset[str]
    ) -> tuple[list[Item] | None, bool, bool]:
        """A query or DML at one level; DML is recorded in ``seen.dml``."""
        if not items:
            raise Unsure("empty query")
        i = 0
        if is_word(items[0], "with"):
            ctes, i = self.with_clause(items, 1, ctes)
        items = items[i:]
        first = items[0] if items else None
        if isinstance(first, Group) or is_word(first, "select", "values", "table"):
            return self.level(items, ctes)
        if is_word(first, "insert", "update", "delete", "merge"):
            self.dml(items, ctes)
            return None, False, False
        raise Unsure("not a query")

    def condition(self, items: list[Item] | None) -> tuple[bool, bool]:
        """(has a condition, condition is always true)."""
        if items is None:
            return False, False
        return True, always_true(parse_condition(items))

    def dml(self, items: list[Item], ctes: frozenset[str]) -> None:
        verb = str(items[0].word) if isinstance(items[0], Tok) else ""
        n = len(items)
        if verb == "insert":
            if not is_word(items[1] if n > 1 else None, "into"):
                raise Unsure("INSERT without INTO")
            i = self.target(items, 2)
            if is_word(items[i] if i < n else None, "as"):
                i += 2
            if i < n and isinstance(items[i], Group) and not is_query(items[i]):  # type: ignore[arg-type]
                i += 1
            rest = items[i:]
            if rest and is_word(rest[0], "with"):
                self.query(rest, ctes)
            else:
                self.level(rest, ctes)
            self.seen.dml.append(Write("insert", False, False))
        elif verb in ("update", "delete"):
            i = 1
            if verb == "delete":
                if not is_word(items[1] if n > 1 else None, "from"):
                    raise Unsure("DELETE without FROM")
                i = 2
            i = self.skip_alias(items, self.target(items, i))
            where, _limit, _setop = self.level(items[i:], ctes)
            self.seen.dml.append(Write(verb, *self.condition(where)))
        elif verb == "merge":
            if not is_word(items[1] if n > 1 else None, "into"):
                raise Unsure("MERGE without INTO")
            i = self.skip_alias(items, self.target(items, 2))
            if not is_word(items[i] if i < n else None, "using"):
                raise Unsure("MERGE without USING")
            i = self.table_ref(items, i + 1, ctes)
            if not is_word(items[i] if i < n else None, "on"):
                raise Unsure("MERGE without ON")
            start = i = i + 1
            while i < n and not is_word(items[i], "when"):
                i += 1
            self.scan(items[start:], ctes)
            self.seen.dml.append(Write("merge", *self.condition(items[start:i])))
        else:
            raise Unsure("not DML")

    def ddl_scan(self, items: list[Item], ctes: frozenset[str]) -> None:
        """Column definitions and ALTER actions: REFERENCES/LIKE/INHERITS tables are read."""
        self.scan(items, ctes)
        for i, item in enumerate(items):
            if isinstance(item, Group):
                self.ddl_scan(item.items, ctes)
            elif is_word(item, "references") or (
                is_word(item, "like") and (i == 0 or items[i - 1] == COMMA)
            ):
                parts, _ = self.name_at(items, i + 1)
                self.seen.reads.add(self.qualify(parts))
            elif is_word(item, "inherits") and i + 1 < len(items):
                group = items[i + 1]
                if isinstance(group, Group):
                    self.read_list(group.items)
            elif is_word(item, "of") and is_word(items[i - 1] if i else None, "partition"):
                parts, _ = self.name_at(items, i + 1)
                self.seen.reads.add(self.qualify(parts))

    def read_list(self, items: list[Item]) -> None:
        i = 0
        while i < len(items):
            parts, i = self.name_at(items, i)
            self.seen.reads.add(self.qualify(parts))
            i += 1  # the comma
