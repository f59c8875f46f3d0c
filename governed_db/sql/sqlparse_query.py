"""Reading queries for the sqlparse backend: tables, CTE scopes, WHERE, row locks, calls."""

from __future__ import annotations

from governed_db.sql.scope import ScopeItem
from governed_db.sql.sqlparse_lex import Group, Item, Tok, Unsure, is_query, is_word
from governed_db.sql.sqlparse_words import CLAUSE_END, LOCKS, RESERVED
from governed_db.sql.vocabulary import Seen

__all__ = ["COMMA", "Reader", "words_at"]

COMMA = Tok("punct", ",")
_DOT = Tok("punct", ".")


def _literal_name(args: list[Item]) -> str | None:
    """set_config()'s first argument if it is a string literal (cast or not), else None."""
    first: list[Item] = []
    for item in args:
        if item == COMMA:
            break
        first.append(item)
    if first and is_word(first[0], "cast") and len(first) == 2 and isinstance(first[1], Group):
        inner = first[1].items
        if len(inner) >= 3 and is_word(inner[1], "as"):
            first = inner[:1]
    head = first[0] if first else None
    if not (isinstance(head, Tok) and head.kind == "str"):
        return None
    if len(first) == 1 or first[1] == Tok("punct", "::"):
        return str(head.word)
    return None


def words_at(items: list[Item], start: int, count: int) -> list[str]:
    out = []
    for item in items[start : start + count]:
        out.append(str(item.word) if isinstance(item, Tok) and item.kind == "word" else "")
    return out


class Reader:
    """Reads one statement into ``seen``; ``names`` collects FROM items for a DML's scope."""

    __slots__ = ("bodies", "names", "seen", "sources")

    def __init__(self, seen: Seen) -> None:
        self.seen = seen
        self.names: list[ScopeItem] | None = None
        self.sources: list[Group] = []  # subqueries (and CTEs) among a DML's FROM items
        self.bodies: dict[str, Group] = {}  # CTE name -> body

    # -- names -------------------------------------------------------------------------------
    def name_at(self, items: list[Item], i: int) -> tuple[list[str], int]:
        """Read a dotted name at ``i``; return its parts and the index after it."""
        parts: list[str] = []
        while True:
            tok = items[i] if i < len(items) else None
            if not (isinstance(tok, Tok) and tok.kind in ("word", "qname")):
                raise Unsure("expected a name")
            if tok.kind == "word" and tok.word in RESERVED:
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

    def alias_at(self, items: list[Item], i: int) -> tuple[str | None, int]:
        """An optional ``[AS] alias [(columns)]`` at ``i``: the alias and the index after it."""
        explicit = is_word(items[i] if i < len(items) else None, "as")
        if explicit:
            i += 1
        tok = items[i] if i < len(items) else None
        if isinstance(tok, Tok) and (
            tok.kind == "qname" or (tok.kind == "word" and tok.word not in RESERVED)
        ):
            i += 1
            if i < len(items) and isinstance(items[i], Group):
                i += 1
            return str(tok.word), i
        if explicit:
            raise Unsure("AS without an alias")
        return None, i

    def skip_alias(self, items: list[Item], i: int) -> int:
        return self.alias_at(items, i)[1]

    def target(self, items: list[Item], i: int) -> int:
        """A written relation at ``i`` ([ONLY] name [*] [[AS] alias]); return the index after."""
        return self.target_item(items, i, alias=False)[1]

    def target_item(
        self, items: list[Item], i: int, *, alias: bool = True
    ) -> tuple[ScopeItem, int]:
        """A written relation and, with ``alias``, its alias: the scope item it makes."""
        if is_word(items[i] if i < len(items) else None, "only"):
            i += 1
        parts, i = self.name_at(items, i)
        self.seen.writes.add(self.qualify(parts))
        if i < len(items) and items[i] == Tok("op", "*"):
            i += 1
        name = None
        if alias:
            name, i = self.alias_at(items, i)
        table = self.qualify(parts)
        if name is not None:
            return ScopeItem(name, None, True, table), i
        schema = parts[-2] if len(parts) > 1 else "public"
        return ScopeItem(parts[-1], schema, True, table), i

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
                    self.call(str(prev.word), item)

    def call(self, name: str, args: Group) -> None:
        """A call of ``name``: dangerous functions, and the parameter set_config() changes."""
        seen = self.seen
        seen.function(name)
        if name.lower() == "set_config":
            seen.setting(_literal_name(args.items))

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
        names = self.names
        if isinstance(item, Group):
            if is_query(item):
                self.query(item.items, ctes)
                alias, i = self.alias_at(items, i + 1)
                if names is not None:
                    names.append(ScopeItem(alias or ""))
                    self.sources.append(item)
                return i
            self.level(item.items, ctes, from_mode=True)
            alias, i = self.alias_at(items, i + 1)
            if alias is not None and names is not None:
                raise Unsure("aliased join in a DML's FROM")
            return i
        if is_word(item, "rows"):
            raise Unsure("ROWS FROM")
        parts, i = self.name_at(items, i)
        table = None
        if i < len(items) and isinstance(items[i], Group):
            call = items[i]
            assert isinstance(call, Group)
            self.call(parts[-1], call)
            self.scan([call], ctes)
            i += 1
            if is_word(items[i] if i < len(items) else None, "with"):
                i += 2  # WITH ORDINALITY
            default = parts[-1]
            schema = None
        else:
            if not (len(parts) == 1 and parts[0] in ctes):
                table = self.qualify(parts)
                self.seen.reads.add(table)
            elif names is not None and parts[0] in self.bodies:
                self.sources.append(self.bodies[parts[0]])
            default = parts[-1]
            schema = parts[-2] if len(parts) > 1 else "public"
        if i < len(items) and items[i] == Tok("op", "*"):
            i += 1
        alias, i = self.alias_at(items, i)
        if names is not None:
            names.append(
                ScopeItem(alias, None, False, table)
                if alias
                else ScopeItem(default, schema, False, table)
            )
        return i

    def lock(self, items: list[Item], i: int) -> int:
        """``FOR <strength> [OF names] [NOWAIT | SKIP LOCKED]`` at ``i`` (the FOR)."""
        for words, strength in LOCKS.items():
            if tuple(words_at(items, i + 1, len(words))) == words:
                self.seen.row_locks.add(strength)
                i += 1 + len(words)
                break
        else:
            if words_at(items, i + 1, 2) == ["read", "only"]:
                return i + 3
            raise Unsure("FOR clause")
        if is_word(items[i] if i < len(items) else None, "of"):
            i += 1
            while True:
                _parts, i = self.name_at(items, i)
                if i < len(items) and items[i] == COMMA:
                    i += 1
                    continue
                break
        if is_word(items[i] if i < len(items) else None, "nowait"):
            self.seen.lock_waits.add("nowait")
            i += 1
        elif words_at(items, i, 2) == ["skip", "locked"]:
            self.seen.lock_waits.add("skip locked")
            i += 2
        return i

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
                following = items[i + 1] if i + 1 < n else None
                if word == "using" and isinstance(following, Group) and not is_query(following):
                    i += 1  # JOIN ... USING (cols)
                    continue
                from_mode = from_mode or word in ("from", "using")
                expect_table = True
            elif word == "table" and i == 0:
                expect_table = True
            elif word == "where":
                start = i = i + 1
                while i < n and not is_word(items[i], *CLAUSE_END):
                    if isinstance(items[i], Group):
                        self.scan(items[i - 1 : i + 1], ctes)
                    i += 1
                where = items[start:i]
                from_mode = False
                continue
            elif word == "for":
                i = self.lock(items, i)
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
            self.bodies[parts[0]] = body
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
        outer = self.names
        self.names = None  # a subquery's FROM items are not the statement's
        try:
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
        finally:
            self.names = outer

    def dml(self, items: list[Item], ctes: frozenset[str]) -> None:
        """INSERT / UPDATE / DELETE / MERGE: read by ``sqlparse_dml.Writes``."""
        raise Unsure("DML needs the Writes reader")

    def ddl_scan(self, items: list[Item], ctes: frozenset[str]) -> None:
        """Column definitions and ALTER actions: REFERENCES/LIKE/INHERITS tables are read."""
        self.scan(items, ctes)
        for i, item in enumerate(items):
            if isinstance(item, Group):
                self.ddl_scan(item.items, ctes)
            elif (
                is_word(item, "references")
                or (is_word(item, "like") and (i == 0 or items[i - 1] == COMMA))
                or (  # ALTER TABLE t [NO] INHERIT parent
                    is_word(item, "inherit")
                    and (i == 0 or items[i - 1] == COMMA or is_word(items[i - 1], "no"))
                )
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
