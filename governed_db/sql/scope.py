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
    """

    refname: str
    schema: str | None = None
    target: bool = False
    table: str | None = None


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
                        return _key(depth, item, fields[1:]), TARGET if item.target else NONE
                    if len(fields) >= 3 and item.schema == fields[0] and item.refname == fields[1]:
                        return _key(depth, item, fields[2:]), TARGET if item.target else NONE
        for depth in range(len(levels) - 1, -1, -1):
            items = levels[depth]
            if not items:
                continue
            if depth == 0 and len(items) == 1 and items[0].target:
                return _key(0, items[0], fields), TARGET
            ambiguous = any(item.target for level in levels[: depth + 1] for item in level)
            return "col:?." + ".".join(fields), MAYBE if ambiguous else NONE
        return "col:?." + ".".join(fields), NONE


def _key(depth: int, item: ScopeItem, rest: Sequence[str]) -> str:
    if depth == 0 and item.table:
        return f"col:t:{item.table}." + ".".join(rest)
    return f"col:{depth}:{item.refname}." + ".".join(rest)
