"""The portable backend: sqlparse's lexer plus a small reader of PostgreSQL's statement shapes.

It understands the shapes real applications send (queries with joins, CTEs and
subqueries, DML, common DDL, COPY, session and maintenance commands). Whatever
it cannot read with certainty becomes opaque: it never guesses towards harmless.
"""

from __future__ import annotations

from governed_db.sql.sqlparse_lex import Group, Item, Tok, Unsure, is_word, lex
from governed_db.sql.sqlparse_query import COMMA, Reader, words_at
from governed_db.sql.vocabulary import Seen

__all__ = ["NAME", "analyze_statement"]

NAME = "sqlparse"

# First word -> operation, for statements with nothing else to read.
# fmt: off
_SIMPLE = {
    "begin": "transaction", "start": "transaction", "commit": "transaction",
    "end": "transaction", "rollback": "transaction", "abort": "transaction",
    "savepoint": "transaction", "release": "transaction", "fetch": "fetch", "move": "fetch",
    "close": "fetch", "grant": "grant", "revoke": "revoke", "show": "show", "listen": "listen",
    "unlisten": "listen", "notify": "notify", "checkpoint": "checkpoint", "discard": "discard",
    "deallocate": "deallocate", "comment": "comment", "do": "do", "load": "load",
}
# fmt: on
# fmt: off
_NAME_ONLY_KINDS = frozenset({
    "sequence", "schema", "extension", "type", "domain", "database", "function", "procedure",
})
# fmt: on
# fmt: off
_DROP_KINDS = _NAME_ONLY_KINDS | frozenset({
    "index", "trigger", "policy", "rule", "aggregate", "operator", "collation", "server",
    "cast", "owned",
})
# fmt: on
_ROLE_KINDS = frozenset({"role", "user", "group"})


def _relation_kind(items: list[Item], i: int) -> int:
    """Words naming a relation kind at ``i`` (TABLE, VIEW, MATERIALIZED VIEW, ...), or 0."""
    first = words_at(items, i, 2)
    if first[0] in ("table", "view"):
        return 1
    if first in (["materialized", "view"], ["foreign", "table"]):
        return 2
    return 0


def _skip(items: list[Item], i: int, *words: str) -> int:
    while i < len(items) and is_word(items[i], *words):
        i += 1
    return i


def _strip_with_data(items: list[Item]) -> list[Item]:
    tail = words_at(items, len(items) - 3, 3)
    if tail[-2:] == ["with", "data"]:
        return items[:-2]
    if tail == ["with", "no", "data"]:
        return items[:-3]
    return items


class _Statement(Reader):
    """Dispatch on a statement's leading words."""

    __slots__ = ()

    def statement(self, items: list[Item]) -> None:
        seen = self.seen
        first = items[0]
        verb = first.word if isinstance(first, Tok) and first.kind == "word" else ""
        words = words_at(items, 0, 4)
        if isinstance(first, Group) or verb in (
            "select",
            "values",
            "table",
            "with",
            "insert",
            "update",
            "delete",
            "merge",
        ):
            self.query_statement(items)
        elif verb == "explain":
            self.explain(items)
        elif words[:2] == ["prepare", "transaction"] or words[:2] == ["commit", "prepared"]:
            seen.operation = "transaction"
        elif verb == "prepare":
            k = next((j for j, it in enumerate(items) if is_word(it, "as")), None)
            if k is None:
                raise Unsure("PREPARE without AS")
            self.statement(items[k + 1 :])
            if not seen.opaque:
                seen.only_plans("prepare")
        elif verb == "declare":
            k = next((j for j, it in enumerate(items) if is_word(it, "for")), None)
            if k is None:
                raise Unsure("DECLARE without FOR")
            self.statement(items[k + 1 :])
            seen.operation = "declare"
        elif verb == "copy":
            self.copy(items)
        elif verb == "create":
            self.create(items)
        elif verb == "alter":
            self.alter(items)
        elif verb == "drop":
            self.drop(items)
        elif verb in ("truncate", "lock"):
            seen.operation = str(verb)
            self.write_list(items, _skip(items, 1, "table"))
        elif verb in ("set", "reset"):
            seen.operation = "set"
            rest = [w for w in words[1:] if w not in ("session", "local")]
            if rest[:1] == ["role"] or rest[:1] == ["authorization"]:
                seen.klass = "role"
        elif verb in ("vacuum", "analyze", "analyse"):
            seen.operation = "vacuum" if verb == "vacuum" else "analyze"
            i = 1
            while i < len(items) and (
                isinstance(items[i], Group)
                or is_word(items[i], "full", "freeze", "verbose", "analyze", "analyse")
            ):
                i += 1
            self.write_list(items, i)
        elif verb == "reindex":
            seen.operation = "reindex"
            i = 2 if isinstance(items[1], Group) else 1
            if is_word(items[i], "table"):
                self.target(items, _skip(items, i + 1, "concurrently"))
        elif verb == "cluster":
            seen.operation = "cluster"
            i = _skip(items, 1, "verbose")
            if i < len(items):
                self.target(items, i)
        elif words[:3] == ["refresh", "materialized", "view"]:
            seen.operation = "refresh"
            self.target(items, _skip(items, 3, "concurrently"))
        elif verb in ("call", "execute"):
            seen.operation = str(verb)
            self.scan(items[2:] if verb == "execute" else items[1:], frozenset())
        elif words[:2] == ["security", "label"]:
            seen.operation = "security_label"
        elif verb in _SIMPLE:
            seen.operation = _SIMPLE[str(verb)]
        else:
            raise Unsure(f"statement {verb!r}")

    def query_statement(self, items: list[Item]) -> None:
        seen = self.seen
        seen.operation = "select"
        if is_word(items[0], "select"):
            k = next((j for j, it in enumerate(items) if is_word(it, "into")), None)
            if k is not None:
                j = _skip(items, k + 1, "temp", "temporary", "unlogged", "table")
                parts, end = self.name_at(items, j)
                seen.writes.add(self.qualify(parts))
                seen.operation = "create"
                items = items[:k] + items[end:]
        where, seen.has_limit, setop = self.query(items, frozenset())
        if not setop:
            seen.has_where, seen.where_is_trivial = self.condition(where)
        seen.settle_effect()

    def explain(self, items: list[Item]) -> None:
        analyze = False
        i = 1
        if isinstance(items[1], Group):
            option: list[Item] = []
            for item in [*items[1].items, COMMA]:
                if item != COMMA:
                    option.append(item)
                    continue
                if is_word(option[0] if option else None, "analyze", "analyse"):
                    value = option[1] if len(option) > 1 else None
                    analyze = value is None or not (
                        is_word(value, "false", "off", "no")
                        or value == Tok("num", 0)
                        or value in (Tok("str", "false"), Tok("str", "off"))
                    )
                option = []
            i = 2
        else:
            while is_word(items[i], "analyze", "analyse", "verbose"):
                analyze = analyze or is_word(items[i], "analyze", "analyse")
                i += 1
        self.statement(items[i:])
        if not analyze and not self.seen.opaque:
            self.seen.only_plans("explain")

    def copy(self, items: list[Item]) -> None:
        seen = self.seen
        i = 1
        table = None
        if isinstance(items[1], Group):
            self.query(items[1].items, frozenset())
            i = 2
        else:
            parts, i = self.name_at(items, 1)
            table = self.qualify(parts)
            if i < len(items) and isinstance(items[i], Group):
                i += 1
        direction = words_at(items, i, 2)
        if direction[0] not in ("from", "to"):
            raise Unsure("COPY direction")
        if direction[1] == "program":
            seen.operation = "copy_program"
        else:
            seen.operation = "copy_from" if direction[0] == "from" else "copy_to"
        if table:
            (seen.writes if direction[0] == "from" else seen.reads).add(table)
        self.scan(items[i:], frozenset())
        seen.settle_copy()

    def create(self, items: list[Item]) -> None:
        seen = self.seen
        seen.operation = "create"
        i = _skip(
            items,
            1,
            "or",
            "replace",
            "temp",
            "temporary",
            "unlogged",
            "global",
            "local",
            "recursive",
        )
        kind = _relation_kind(items, i)
        word = words_at(items, i, 1)[0]
        if kind:
            plain_view = words_at(items, i, 1)[0] == "view"
            i = _skip(items, i + kind, "if", "not", "exists")
            parts, i = self.name_at(items, i)
            seen.writes.add(self.qualify(parts))
            j = i + 1 if i < len(items) and isinstance(items[i], Group) else i
            if is_word(items[j] if j < len(items) else None, "with"):
                j += 2  # WITH (storage options)
            if is_word(items[j] if j < len(items) else None, "as"):
                query = _strip_with_data(items[j + 1 :])
                _where, has_limit, _setop = self.query(query, frozenset())
                if not plain_view:
                    seen.has_limit = has_limit
                return
            self.ddl_scan(items[i:], frozenset())
        elif word in ("unique", "index"):
            i = _skip(items, i, "unique", "index", "concurrently", "if", "not", "exists")
            if not is_word(items[i], "on"):
                _parts, i = self.name_at(items, i)
            if not is_word(items[i], "on"):
                raise Unsure("CREATE INDEX without ON")
            i = self.target(items, i + 1)
            self.scan(items[i:], frozenset())
        elif word in ("trigger", "policy"):
            k = next((j for j in range(i, len(items)) if is_word(items[j], "on")), None)
            if k is None:
                raise Unsure("no ON")
            end = self.target(items, k + 1)
            if word == "policy":
                self.scan(items[end:], frozenset())
        elif word in _ROLE_KINDS:
            seen.klass = "role"
        elif word not in _NAME_ONLY_KINDS:
            raise Unsure(f"CREATE {word}")
        elif word in ("function", "procedure") and any(is_word(it, "atomic") for it in items):
            raise Unsure("BEGIN ATOMIC body")

    def alter(self, items: list[Item]) -> None:
        seen = self.seen
        seen.operation = "alter"
        kind = _relation_kind(items, 1)
        word = words_at(items, 1, 1)[0]
        if kind:
            i = _skip(items, 1 + kind, "if", "exists", "only")
            i = self.target(items, i)
            self.ddl_scan(items[i:], frozenset())
        elif word in _ROLE_KINDS:
            seen.klass = "role"
        elif word not in _NAME_ONLY_KINDS | {"index", "system"}:
            raise Unsure(f"ALTER {word}")

    def drop(self, items: list[Item]) -> None:
        seen = self.seen
        seen.operation = "drop"
        kind = _relation_kind(items, 1)
        word = words_at(items, 1, 1)[0]
        if kind:
            self.write_list(items, _skip(items, 1 + kind, "if", "exists"))
        elif word in _ROLE_KINDS:
            seen.klass = "role"
        elif word not in _DROP_KINDS:
            raise Unsure(f"DROP {word}")


def analyze_statement(sql: str) -> Seen:
    """Analyze one statement's text (placeholders already rewritten as ``$n``)."""
    seen = Seen()
    try:
        items = lex(sql)
        if not items:
            raise Unsure("nothing to read")
        _Statement(seen).statement(items)
    except (Unsure, IndexError, ValueError) as exc:
        del exc
        seen = Seen(opaque=True)
    return seen
