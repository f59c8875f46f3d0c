"""INSERT, UPDATE, DELETE and MERGE for the sqlparse backend: writes and their WHERE facts."""

from __future__ import annotations

from dataclasses import replace

from governed_db.sql.scope import Scope, ScopeItem
from governed_db.sql.sqlparse_expr import parse_condition
from governed_db.sql.sqlparse_lex import Group, Item, Tok, Unsure, is_query, is_word
from governed_db.sql.sqlparse_query import Reader, words_at
from governed_db.sql.sqlparse_subquery import mentions
from governed_db.sql.vocabulary import Seen, Write
from governed_db.sql.where import trivial

# Words that make a SELECT more than a filtered scan of its table.
_NOT_A_SCAN = ("group", "having", "window", "distinct", "union", "intersect", "except",
               "with", "values")  # fmt: skip


def _name(item: Item | None) -> str:
    if not (isinstance(item, Tok) and item.kind in ("word", "qname")):
        raise Unsure("expected a name")
    return str(item.word)


__all__ = ["Writes"]


class Writes(Reader):
    """A Reader that also reads data-changing statements."""

    __slots__ = ()

    def condition(self, items: list[Item] | None, scope: Scope | None = None) -> tuple[bool, bool]:
        """(has a condition, condition could keep every row); Unsure if that cannot be told."""
        if items is None:
            return False, False
        expr = parse_condition(items, scope)
        wide = trivial(expr) if scope is not None else trivial(expr, row_independent=False)
        if wide is None:
            raise Unsure("cannot tell which table the condition reads")
        return True, wide

    def dml_level(
        self, target: ScopeItem, items: list[Item], ctes: frozenset[str]
    ) -> tuple[list[Item] | None, Scope]:
        """The rest of an UPDATE/DELETE: its WHERE and the scope its columns resolve in."""
        self.names = []
        self.sources = []
        try:
            where, _limit, _setop = self.level(items, ctes)
            self.own_sources(target)
            return where, Scope().push([target, *self.names])
        finally:
            self.names = None

    def own_sources(self, target: ScopeItem) -> None:
        """A subquery in USING/FROM that reads the target table: read by pglast only."""
        table = target.table or ""
        if any(mentions(group.items, table) for group in self.sources):
            raise Unsure("a subquery over the target table joined to it")

    def dml(self, items: list[Item], ctes: frozenset[str]) -> None:
        verb = str(items[0].word) if isinstance(items[0], Tok) else ""
        n = len(items)
        if verb == "insert":
            if not is_word(items[1] if n > 1 else None, "into"):
                raise Unsure("INSERT without INTO")
            i = self.target(items, 2)
            target = self.target_item(items, 2, alias=False)[0]
            if is_word(items[i] if i < n else None, "as"):
                target = ScopeItem(
                    _name(items[i + 1] if i + 1 < n else None), None, True, target.table
                )
                i += 2
            if i < n and isinstance(items[i], Group) and not is_query(items[i]):  # type: ignore[arg-type]
                i += 1
            rest = items[i:]
            conflict = self.on_conflict(rest)
            if conflict is not None:
                rest, tail = rest[:conflict], rest[conflict:]
            if rest and is_word(rest[0], "with"):
                self.query(rest, ctes)
            else:
                self.level(rest, ctes)
            self.seen.dml.append(Write("insert", False, False))
            if conflict is not None:
                self.scan(tail, ctes)
                if self.conflict_action(tail) == "update":
                    # Only the rows that conflict are updated: a WHERE of its own kind, wide
                    # when the rows inserted are the table's own.
                    wide = self.upsert_overwrites(target, rest, tail, ctes)
                    self.seen.dml.append(Write("update", True, wide, primary=False))
        elif verb in ("update", "delete"):
            i = 1
            if verb == "delete":
                if not is_word(items[1] if n > 1 else None, "from"):
                    raise Unsure("DELETE without FROM")
                i = 2
            target, i = self.target_item(items, i)
            where, scope = self.dml_level(target, items[i:], ctes)
            self.seen.dml.append(Write(verb, *self.condition(where, scope)))
        elif verb == "merge":
            self.merge(items, ctes)
        else:
            raise Unsure("not DML")

    def upsert_overwrites(
        self, target: ScopeItem, source: list[Item], tail: list[Item], ctes: frozenset[str]
    ) -> bool:
        """As the pglast backend decides it (``Walker.upsert_overwrites``)."""
        table = target.table or ""
        probe = Writes(Seen())
        probe.names = []
        where, _limit, setop = probe.level(source, ctes) if source else (None, False, False)
        names, probe.names = probe.names, None
        via_cte = any(isinstance(i, Tok) and i.word in ctes for i in source)
        if table not in probe.seen.reads and not (via_cte and table in self.seen.reads):
            return False
        simple = (
            is_word(source[0], "select")
            and not setop
            and len(names) == 1
            and names[0].table == table
            and not probe.sources
            and not any(is_word(i, *_NOT_A_SCAN) for i in source)
        )
        wide = True
        if simple:
            scan = replace(names[0], target=True)
            wide = where is None or self.condition(where, Scope().push([scan]))[1]
        do = next(k for k, it in enumerate(tail) if is_word(it, "do"))
        k = next((k for k in range(do, len(tail)) if is_word(tail[k], "where")), None)
        if wide and k is not None:
            end = next((m for m in range(k, len(tail)) if is_word(tail[m], "returning")), None)
            scope = Scope().push([target, ScopeItem("excluded")])
            wide = self.condition(tail[k + 1 : end], scope)[1]
        return wide

    @staticmethod
    def on_conflict(rest: list[Item]) -> int | None:
        """Where a top-level ``ON CONFLICT`` starts in an INSERT's tail, if it has one."""
        for k in range(len(rest) - 1):
            if is_word(rest[k], "on") and is_word(rest[k + 1], "conflict"):
                return k
        return None

    @staticmethod
    def conflict_action(tail: list[Item]) -> str:
        """``ON CONFLICT [target] DO NOTHING | DO UPDATE``: "nothing" or "update"."""
        do = next((k for k, it in enumerate(tail) if is_word(it, "do")), None)
        action = words_at(tail, do + 1, 1)[0] if do is not None else ""
        if action not in ("nothing", "update"):
            raise Unsure("ON CONFLICT form")
        return action

    def merge(self, items: list[Item], ctes: frozenset[str]) -> None:
        """MERGE INTO t USING s ON cond WHEN ... THEN ...: each action is an effect."""
        n = len(items)
        if not is_word(items[1] if n > 1 else None, "into"):
            raise Unsure("MERGE without INTO")
        target, i = self.target_item(items, 2)
        if not is_word(items[i] if i < n else None, "using"):
            raise Unsure("MERGE without USING")
        self.names = []
        self.sources = []
        try:
            i = self.table_ref(items, i + 1, ctes)
            self.own_sources(target)
            scope = Scope().push([target, *self.names])
        finally:
            self.names = None
        if not is_word(items[i] if i < n else None, "on"):
            raise Unsure("MERGE without ON")
        start = i = i + 1
        depth = 0  # CASE ... END inside ON has WHENs of its own
        while i < n and (depth or not is_word(items[i], "when")):
            depth += is_word(items[i], "case") - is_word(items[i], "end")
            i += 1
        self.scan(items[start:], ctes)
        _, matched = self.condition(items[start:i], scope)
        on = parse_condition(items[start:i], scope)
        not_on = trivial(("not", on))
        if not_on is None:
            raise Unsure("cannot tell which table the condition reads")
        unmatched = matched or not_on
        any_wide = False
        for action, by_source, extra in self.merge_actions(items[i:], scope):
            wide = False
            if action != "insert":
                wide = (unmatched if by_source else matched) and extra
                any_wide = any_wide or wide
            self.seen.dml.append(Write(action, True, wide, primary=False))
        self.seen.dml.append(Write("merge", True, any_wide))

    def merge_actions(self, items: list[Item], scope: Scope) -> list[tuple[str, bool, bool]]:
        """(action, for rows NOT MATCHED BY SOURCE, its AND condition could keep every row)."""
        out = []
        starts = [k for k, it in enumerate(items) if is_word(it, "when")]
        for n, k in enumerate(starts):
            clause = items[k : starts[n + 1] if n + 1 < len(starts) else len(items)]
            head = words_at(clause, 1, 4)
            by_source = head == ["not", "matched", "by", "source"]
            if head[0] == "matched":
                j = 2
            elif head[:2] == ["not", "matched"]:
                j = 5 if head[2:] in (["by", "source"], ["by", "target"]) else 3
            else:
                raise Unsure("MERGE WHEN form")
            extra = True
            if is_word(clause[j] if j < len(clause) else None, "and"):
                then = next((m for m in range(j, len(clause)) if is_word(clause[m], "then")), None)
                if then is None:
                    raise Unsure("WHEN without THEN")
                _, extra = self.condition(clause[j + 1 : then], scope)
                j = then
            if not is_word(clause[j] if j < len(clause) else None, "then"):
                raise Unsure("WHEN without THEN")
            verb = words_at(clause, j + 1, 2)
            if verb[0] in ("update", "delete", "insert"):
                out.append((verb[0], by_source, extra))
            elif verb != ["do", "nothing"]:
                raise Unsure("MERGE action")
        if not starts:
            raise Unsure("MERGE without WHEN")
        return out
