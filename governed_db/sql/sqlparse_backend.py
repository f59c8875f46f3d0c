"""The portable backend: sqlparse's lexer plus a small reader of PostgreSQL's statement shapes.

It understands the shapes real applications send (queries with joins, CTEs and
subqueries, DML, common DDL, COPY, session and maintenance commands). Whatever
it cannot read with certainty becomes opaque: it never guesses towards harmless.
"""

from __future__ import annotations

from governed_db.sql.sqlparse_ddl import Definitions, skip
from governed_db.sql.sqlparse_lex import Group, Item, Tok, Unsure, is_word, lex
from governed_db.sql.sqlparse_query import COMMA, words_at
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
    "unlisten": "listen", "notify": "notify", "checkpoint": "checkpoint", "comment": "comment",
    "do": "do", "load": "load",
}
# fmt: on
# The verbs a query's main part starts with, after any WITH clause.
_QUERY_VERBS = ("select", "insert", "update", "delete", "merge", "values", "table")


def _name(item: Item | None) -> str:
    """A statement or setting name as the server folds it."""
    if not (isinstance(item, Tok) and item.kind in ("word", "qname")):
        raise Unsure("expected a name")
    return str(item.word)


class _Statement(Definitions):
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
            start = 3 if isinstance(items[2], Group) else 2
            if not is_word(items[start], "as"):
                raise Unsure("PREPARE without AS")
            self.statement(items[start + 1 :])
            seen.prepares = _name(items[1])
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
            self.write_list(items, skip(items, 1, "table"))
        elif verb in ("set", "reset"):
            self.set_statement(items)
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
                self.target(items, skip(items, i + 1, "concurrently"))
        elif verb == "cluster":
            seen.operation = "cluster"
            i = skip(items, 1, "verbose")
            if i < len(items):
                self.target(items, i)
        elif words[:3] == ["refresh", "materialized", "view"]:
            seen.operation = "refresh"
            self.target(items, skip(items, 3, "concurrently"))
        elif verb == "call":
            seen.operation = "call"
            self.scan(items[1:], frozenset())
        elif verb == "execute":
            seen.operation = "execute"
            seen.executes = _name(items[1])
            self.scan(items[2:], frozenset())
        elif verb == "deallocate":
            seen.operation = "deallocate"
            i = skip(items, 1, "prepare")
            if len(items) != i + 1:
                raise Unsure("DEALLOCATE form")
            seen.deallocates = "*" if is_word(items[i], "all") else _name(items[i])
        elif verb == "discard":
            seen.operation = "discard"
            what = words_at(items, 1, 2)
            if what[0] == "all":
                seen.deallocates = "*"
                seen.setting(None)
            elif what[0] not in ("plans", "sequences", "temp", "temporary") or len(items) != 2:
                raise Unsure("DISCARD form")
        elif words[:2] == ["security", "label"]:
            seen.operation = "security_label"
        elif verb in _SIMPLE:
            seen.operation = _SIMPLE[str(verb)]
        else:
            raise Unsure(f"statement {verb!r}")

    def query_statement(self, items: list[Item]) -> None:
        seen = self.seen
        seen.operation = "select"
        main = next((j for j, it in enumerate(items) if is_word(it, *_QUERY_VERBS)), None)
        if main is not None and is_word(items[main], "select"):
            k = next((j for j in range(main, len(items)) if is_word(items[j], "into")), None)
            if k is not None:
                j = skip(items, k + 1, "temp", "temporary", "unlogged", "table")
                parts, end = self.name_at(items, j)
                seen.writes.add(self.qualify(parts))
                seen.operation = "create"
                seen.effects.add("create")
                seen.objects.add("table")
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
        if analyze:
            self.seen.explain_analyze = True
        elif not self.seen.opaque:
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
            seen.copy_endpoint = "program"
        else:
            seen.operation = "copy_from" if direction[0] == "from" else "copy_to"
            end = items[i + 1] if i + 1 < len(items) else None
            if is_word(end, "stdin", "stdout"):
                seen.copy_endpoint = "client"
            elif isinstance(end, Tok) and end.kind == "str":
                seen.copy_endpoint = "file"
            else:
                raise Unsure("COPY source or destination")
        if table:
            (seen.writes if direction[0] == "from" else seen.reads).add(table)
        self.scan(items[i:], frozenset())
        seen.settle_copy()


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
