"""DDL and session commands for the sqlparse backend: objects, ALTER actions, settings.

Every shape read here must give exactly what the pglast backend gives; any
other shape raises ``Unsure`` and the statement becomes opaque.
"""

from __future__ import annotations

from governed_db.sql.sqlparse_dml import Writes
from governed_db.sql.sqlparse_lex import Group, Item, Tok, Unsure, is_word
from governed_db.sql.sqlparse_query import COMMA, words_at
from governed_db.sql.sqlparse_words import (
    ACTIONS,
    COLUMN_ACTIONS,
    ISOLATION_LEVELS,
    SET_FORMS,
    TRANSACTION_MODES,
)

__all__ = ["Definitions", "skip"]

# fmt: off
NAME_ONLY_KINDS = frozenset({
    "sequence", "schema", "extension", "type", "domain", "database", "function", "procedure",
})
DROP_KINDS = {
    **{k: k for k in NAME_ONLY_KINDS},
    "index": "index", "trigger": "trigger", "policy": "policy", "rule": "rule",
    "aggregate": "aggregate", "operator": "operator", "collation": "collation",
    "server": "server", "cast": "cast", "routine": "routine",
}
# fmt: on
ROLE_KINDS = frozenset({"role", "user", "group"})
_RELATION_KINDS = {
    ("table",): "table",
    ("view",): "view",
    ("materialized", "view"): "materialized_view",
    ("foreign", "table"): "foreign_table",
}


def skip(items: list[Item], i: int, *words: str) -> int:
    while i < len(items) and is_word(items[i], *words):
        i += 1
    return i


def _runs(items: list[Item]) -> list[list[Item]]:
    runs: list[list[Item]] = [[]]
    for item in items:
        if item == COMMA:
            runs.append([])
        else:
            runs[-1].append(item)
    return runs


def relation_kind(items: list[Item], i: int) -> tuple[int, str]:
    """Words naming a relation kind at ``i`` (TABLE, VIEW, ...): their count and the kind."""
    for words, kind in _RELATION_KINDS.items():
        if tuple(words_at(items, i, len(words))) == words:
            return len(words), kind
    return 0, ""


class Definitions(Writes):
    """CREATE / ALTER / DROP and SET / RESET, for the statement dispatcher."""

    __slots__ = ()

    # -- settings ----------------------------------------------------------------------------
    def set_statement(self, items: list[Item]) -> None:
        """SET ... / RESET ...: which parameters change."""
        seen = self.seen
        seen.operation = "set"
        reset = is_word(items[0], "reset")
        i = 1
        if (
            not reset
            and is_word(items[1], "session", "local")
            and not is_word(
                items[2] if len(items) > 2 else None, "authorization", "characteristics"
            )
        ):
            i = 2
        words = tuple(words_at(items, i, 5))
        if words[:1] == ("constraints",) and not reset:
            return
        if words[:1] == ("role",) or words[:2] == ("session", "authorization"):
            seen.klass = "role"
        if reset and words[:1] == ("all",):
            seen.setting(None)
            return
        if reset and words[:3] == ("transaction", "isolation", "level"):
            seen.setting("transaction_isolation")
            return
        for form, name in SET_FORMS.items():
            if words[: len(form)] == form:
                seen.setting(name)
                return
        if words[:1] == ("transaction",) and not reset:
            self.transaction_modes(items[i + 1 :], "")
            return
        if words[:4] == ("session", "characteristics", "as", "transaction") and not reset:
            self.transaction_modes(items[i + 4 :], "default_")
            return
        name, j = self.setting_name(items, i)
        if not reset and not (
            is_word(items[j] if j < len(items) else None, "to")
            or items[j : j + 1] == [Tok("op", "=")]
        ):
            raise Unsure("SET form")
        if reset and j != len(items):
            raise Unsure("RESET form")
        seen.setting(name)

    def setting_name(self, items: list[Item], i: int) -> tuple[str, int]:
        parts, j = self.name_at(items, i)
        return ".".join(parts), j

    def transaction_modes(self, items: list[Item], prefix: str) -> None:
        i = 0
        while i < len(items):
            item = items[i]
            if item == COMMA or is_word(item, "not"):
                i += 1
                continue
            mode = TRANSACTION_MODES.get(str(item.word)) if isinstance(item, Tok) else None
            if mode is None:
                raise Unsure("transaction mode")
            self.seen.setting(f"{prefix}transaction_{mode}")
            i += 1
            if mode == "isolation":
                if not is_word(items[i] if i < len(items) else None, "level"):
                    raise Unsure("ISOLATION without LEVEL")
                i = skip(items, i + 1, *ISOLATION_LEVELS)
            elif mode == "read_only":
                if not is_word(items[i] if i < len(items) else None, "only", "write"):
                    raise Unsure("READ mode")
                i += 1

    def settings_in(self, items: list[Item]) -> None:
        """Every top-level ``SET name {TO|=} ...`` / ``RESET name|ALL`` in ``items``."""
        for k, item in enumerate(items):
            if is_word(item, "reset"):
                if is_word(items[k + 1] if k + 1 < len(items) else None, "all"):
                    self.seen.setting(None)
                else:
                    self.seen.setting(self.setting_name(items, k + 1)[0])
            elif is_word(item, "set") and k + 1 < len(items):
                nxt = items[k + 1]
                if not (isinstance(nxt, Tok) and nxt.kind in ("word", "qname")):
                    continue
                name, j = self.setting_name(items, k + 1)
                after = items[j] if j < len(items) else None
                if is_word(after, "to", "from") or after == Tok("op", "="):
                    self.seen.setting(name)

    # -- CREATE ------------------------------------------------------------------------------
    def create(self, items: list[Item]) -> None:
        seen = self.seen
        seen.operation = "create"
        i = skip(
            items, 1, "or", "replace", "temp", "temporary", "unlogged", "global", "local",
            "recursive",
        )  # fmt: skip
        count, kind = relation_kind(items, i)
        word = words_at(items, i, 1)[0]
        if count:
            seen.objects.add(kind)
            i = skip(items, i + count, "if", "not", "exists")
            parts, i = self.name_at(items, i)
            seen.writes.add(self.qualify(parts))
            j = i + 1 if i < len(items) and isinstance(items[i], Group) else i
            if is_word(items[j] if j < len(items) else None, "with"):
                j += 2  # WITH (storage options)
            if is_word(items[j] if j < len(items) else None, "as"):
                self.create_as(items[j + 1 :], plain_view=kind == "view")
                return
            self.ddl_scan(items[i:], frozenset())
        elif word in ("unique", "index"):
            seen.objects.add("index")
            i = skip(items, i, "unique", "index", "concurrently", "if", "not", "exists")
            if not is_word(items[i], "on"):
                _parts, i = self.name_at(items, i)
            if not is_word(items[i], "on"):
                raise Unsure("CREATE INDEX without ON")
            i = self.target(items, i + 1)
            self.scan(items[i:], frozenset())
        elif word in ("trigger", "policy"):
            seen.objects.add(word)
            k = next((j for j in range(i, len(items)) if is_word(items[j], "on")), None)
            if k is None:
                raise Unsure("no ON")
            end = self.target(items, k + 1)
            if word == "policy":
                self.scan(items[end:], frozenset())
        elif word in ROLE_KINDS:
            seen.klass = "role"
            seen.objects.add("role")
        elif word in NAME_ONLY_KINDS:
            seen.objects.add(word)
            if word in ("function", "procedure") and any(
                is_word(it, "atomic", "set") for it in items
            ):
                raise Unsure("BEGIN ATOMIC body or SET clause")
            if word == "schema" and any(is_word(it, "create", "grant") for it in items[2:]):
                raise Unsure("CREATE SCHEMA with elements")
        else:
            raise Unsure(f"CREATE {word}")

    def create_as(self, query: list[Item], *, plain_view: bool) -> None:
        """The query of CREATE TABLE / [MATERIALIZED] VIEW ... AS."""
        tail = words_at(query, len(query) - 3, 3)
        if tail[-2:] == ["with", "data"]:
            query = query[:-2]
        elif tail == ["with", "no", "data"]:
            query = query[:-3]
        seen = self.seen
        if not plain_view:
            seen.effects.add("create")
        _where, has_limit, _setop = self.query(query, frozenset())
        if not plain_view:
            seen.has_limit = has_limit
            if seen.dml:
                seen.settle_effect()

    # -- ALTER -------------------------------------------------------------------------------
    def alter(self, items: list[Item]) -> None:
        seen = self.seen
        seen.operation = "alter"
        count, kind = relation_kind(items, 1)
        word = words_at(items, 1, 1)[0]
        if count:
            seen.objects.add(kind)
            i = skip(items, 1 + count, "if", "exists", "only")
            i = self.target(items, i)
            if i < len(items) and items[i] == Tok("op", "*"):
                i += 1
            self.alter_actions(items[i:])
            self.ddl_scan(items[i:], frozenset())
        elif word == "index":
            seen.objects.add("index")
            i = skip(items, 2, "if", "exists")
            _parts, i = self.name_at(items, i)
            self.alter_actions(items[i:])
        elif word in ROLE_KINDS:
            seen.klass = "role"
            seen.objects.add("role")
            if any(is_word(it, "rename") for it in items):
                raise Unsure("ALTER ROLE ... RENAME")
            self.settings_in(items[2:])
        elif word == "system":
            self.settings_in(items[2:])
        elif word in NAME_ONLY_KINDS:
            seen.objects.add(word)
            self.alter_named(word, items)
        else:
            raise Unsure(f"ALTER {word}")

    def alter_named(self, kind: str, items: list[Item]) -> None:
        """ALTER SEQUENCE / SCHEMA / TYPE / ... name <what>."""
        i = skip(items, 2, "if", "exists")
        _parts, i = self.name_at(items, i)
        if kind in ("function", "procedure") and i < len(items) and isinstance(items[i], Group):
            i += 1
        rest = items[i:]
        head = tuple(words_at(rest, 0, 2))
        if any(is_word(it, "depends", "refresh") for it in rest) or (
            kind == "extension" and head[0] in ("add", "drop")
        ):
            raise Unsure(f"ALTER {kind} form")
        if head == ("rename", "value") and kind == "type":
            pass  # an enum label: not a rename of the type
        elif head[:1] == ("rename",):
            self.seen.alter_actions.add("rename")
        elif head == ("owner", "to"):
            self.seen.alter_actions.add("owner")
        elif head == ("set", "schema"):
            self.seen.alter_actions.add("set_schema")
        elif kind == "type" and head[0] in ("add", "drop", "alter") and head[1] != "value":
            raise Unsure("ALTER TYPE attribute")
        elif kind == "sequence" and head[0] in ("set", "owner"):
            raise Unsure("ALTER SEQUENCE form")
        elif kind in ("database", "function", "procedure"):
            self.settings_in(rest)
        elif kind not in ("type", "domain") and any(is_word(it, "set", "reset") for it in rest):
            raise Unsure(f"ALTER {kind} SET")

    def alter_actions(self, items: list[Item]) -> None:
        """The subcommands of ALTER TABLE (or VIEW, INDEX ...), comma-separated."""
        actions = self.seen.alter_actions
        head = tuple(words_at(items, 0, 2))
        if head[:1] == ("rename",):
            actions.add("rename")
            return
        if head == ("set", "schema"):
            actions.add("set_schema")
            return
        for run in _runs(items):
            actions.update(self.alter_action(run))

    @staticmethod
    def alter_action(run: list[Item]) -> list[str]:
        words = tuple(words_at(run, 0, 5))
        if words[:2] == ("enable", "replica") and words[2] in ("trigger", "rule"):
            # fires only for replication sessions: off for every ordinary one
            return [f"enable_{words[2]}", f"disable_{words[2]}"]
        for size in (5, 4, 3, 2, 1):
            found = ACTIONS.get(words[:size])
            if found is not None:
                return [found]
        if words[:1] == ("set",) and len(run) == 2 and isinstance(run[1], Group):
            return ["set_options"]
        if words[:1] == ("reset",) and len(run) == 2 and isinstance(run[1], Group):
            return ["reset_options"]
        if words[:1] == ("add",):
            return ["add_column"]
        if words[:1] == ("drop",):
            return ["drop_column"]
        if words[:1] == ("alter",):
            k = 2 if words[1] == "column" else 1
            rest = tuple(words_at(run, k + 1, 4))
            if rest[:1] == ("type",) or rest[:3] == ("set", "data", "type"):
                using = any(is_word(it, "using") for it in run)
                return ["alter_type", "alter_type_using"] if using else ["alter_type"]
            if rest[:1] == ("set",) and len(run) == k + 3 and isinstance(run[k + 2], Group):
                return ["set_options"]
            if rest[:1] == ("reset",) and len(run) == k + 3 and isinstance(run[k + 2], Group):
                return ["reset_options"]
            for size in (3, 2, 1):
                found = COLUMN_ACTIONS.get(rest[:size])
                if found is not None:
                    return [found]
            if rest[:1] in (("set",), ("restart",)):  # identity options
                return ["set_identity"]
        raise Unsure("ALTER TABLE action")

    # -- DROP --------------------------------------------------------------------------------
    def drop(self, items: list[Item]) -> None:
        seen = self.seen
        seen.operation = "drop"
        count, kind = relation_kind(items, 1)
        word = words_at(items, 1, 1)[0]
        if count:
            seen.objects.add(kind)
            self.write_list(items, skip(items, 1 + count, "if", "exists"))
        elif word in ROLE_KINDS:
            seen.klass = "role"
            seen.objects.add("role")
        elif word in DROP_KINDS:
            if word == "operator" and words_at(items, 2, 1)[0] in ("class", "family"):
                raise Unsure("DROP OPERATOR CLASS/FAMILY")
            seen.objects.add(DROP_KINDS[word])
        elif word != "owned":
            raise Unsure(f"DROP {word}")
