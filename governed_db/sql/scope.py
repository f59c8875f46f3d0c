"""Which relation a column reference names: PostgreSQL's scoping rules, without a catalog."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MAYBE", "NONE", "TARGET", "UNKNOWN_DEP", "Scope", "ScopeItem"]

# How a term depends on the target table's rows, weakest first: a definite column of
# the target outweighs everything else in the same term.
NONE = 0
MAYBE = 1
UNKNOWN_DEP = 2
TARGET = 3


@dataclass(frozen=True, slots=True)
class ScopeItem:
    """One FROM item visible at a query level: its reference name and where it came from.

    ``refname`` is the alias, else the relation (or function) name; "" when the
    item cannot be named. ``schema`` is set for an unaliased table (so
    ``schema.table.column`` can name it). ``target`` marks the table the
    statement changes. ``table`` is the table a statement-level item scans
    (``schema.name``): a column of the target and the same column of another
    scan of the same table are the same term (``DELETE FROM t USING t t2 WHERE
    t.id = t2.id`` matches every row).

    A subquery that only renames columns of one table (``(SELECT id AS k FROM t
    WHERE ...) s``) scans that table too: ``renames`` maps its output names to
    the table's columns (None: an expression, not a column), and ``star`` says
    whether it passes every other column through (``SELECT *``). At a subquery
    level, a ``target`` item is another scan of the target table taken as the
    row itself (the witness a semi-join always has).
    """

    refname: str
    schema: str | None = None
    target: bool = False
    table: str | None = None
    renames: tuple[tuple[str, str | None], ...] = ()
    star: bool = True


@dataclass(frozen=True, slots=True)
class Scope:
    """The FROM items of each query level, outermost first (level 0: the statement's own)."""

    levels: tuple[tuple[ScopeItem, ...], ...] = ()

    def push(self, items: Sequence[ScopeItem]) -> Scope:
        """The scope of a subquery with these FROM items."""
        return Scope((*self.levels, tuple(items)))

    def column(self, fields: Sequence[str]) -> tuple[str, int]:
        """``(key, dep)`` for a column reference ``a.b.c`` (names as PostgreSQL folded them).

        PostgreSQL tries the leading names as ``[schema.]relation`` at the
        innermost level first, then outwards; failing that the first name is a
        column (and the rest its fields). An unqualified column belongs to the
        target only at the statement's own level when the target is the only
        item there; anywhere else it might be another item's: ``MAYBE``.
        """
        levels = self.levels
        if not levels:  # no statement scope (a plain SELECT): every column reads the rows
            return "col:" + ".".join(fields), TARGET
        if len(fields) >= 2:
            for depth in range(len(levels) - 1, -1, -1):
                for item in levels[depth]:
                    if not item.refname:
                        continue
                    if item.refname == fields[0]:
                        return _key(depth, item, fields[1:]), _dep(fields) if item.target else NONE
                    if len(fields) >= 3 and item.schema == fields[0] and item.refname == fields[1]:
                        return _key(depth, item, fields[2:]), _dep(fields) if item.target else NONE
        for depth in range(len(levels) - 1, -1, -1):
            items = levels[depth]
            if not items:
                continue
            if len(items) == 1 and items[0].target and self._only_target(depth):
                return _key(depth, items[0], fields), _dep(fields)
            ambiguous = any(item.target for level in levels[: depth + 1] for item in level)
            return "col:?." + ".".join(fields), MAYBE if ambiguous else NONE
        return "col:?." + ".".join(fields), NONE

    def _only_target(self, depth: int) -> bool:
        """Every level out to the statement's holds the target alone (or nothing)."""
        return all(
            all(item.target for item in level) for level in self.levels[: depth + 1]
        ) and bool(self.levels[0])

    def target_table(self) -> str | None:
        """The table the statement changes (``schema.name``), if known."""
        for item in self.levels[0] if self.levels else ():
            if item.target:
                return item.table
        return None


def _dep(fields: Sequence[str]) -> int:
    """A column of the target reads its row; ``tableoid`` is one value for every row of a
    plain table (of each partition), so it reads none."""
    return NONE if fields[-1] == "tableoid" else TARGET


def _key(depth: int, item: ScopeItem, rest: Sequence[str]) -> str:
    if item.table and rest:
        column: str | None = rest[0]
        for name, source in item.renames:
            if name == rest[0]:
                column = source
                break
        else:
            if not item.star:
                column = None
        if column is not None:
            return f"col:t:{item.table}." + ".".join([column, *rest[1:]])
    return f"col:{depth}:{item.refname}." + ".".join(rest)
