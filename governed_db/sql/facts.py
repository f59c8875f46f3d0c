"""What a statement does: the frozen values the analyzer produces.

``Facts`` is the contract between ``sql.analyze`` and everything downstream
(policy, audit, masking). Both parser backends must produce equal Facts.
"""

from __future__ import annotations

from dataclasses import dataclass

# Statement classes, in the spirit of pgaudit's: riskiest last so max() works.
CLASS_RANK: dict[str, int] = {
    "read": 0,
    "misc": 1,
    "write": 2,
    "function": 3,
    "role": 4,
    "ddl": 5,
    "opaque": 6,
}


@dataclass(frozen=True, slots=True)
class StatementFacts:
    """One statement of a query string.

    ``operation`` is the most consequential effect anywhere in the statement
    (``WITH d AS (DELETE ...) SELECT`` is a ``delete``). Table names are
    schema-qualified (``public.orders`` for an unqualified ``orders``), with
    CTE names and aliases resolved away.
    """

    operation: str
    statement_class: str
    tables_read: frozenset[str] = frozenset()
    tables_written: frozenset[str] = frozenset()
    has_where: bool = False
    where_is_trivial: bool = False
    has_limit: bool = False
    functions: frozenset[str] = frozenset()
    opaque: bool = False
    text: str = ""
    normalized: str = ""
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class Facts:
    """Every statement in one query string, in order, plus which backend read them."""

    statements: tuple[StatementFacts, ...]
    backend: str
    text: str = ""
    fingerprint: str = ""

    @property
    def statement_count(self) -> int:
        """How many statements the string holds."""
        return len(self.statements)

    @property
    def opaque(self) -> bool:
        """True if any statement could not be seen through."""
        return any(s.opaque for s in self.statements)

    @property
    def primary(self) -> StatementFacts:
        """The riskiest statement (by class rank, then position)."""
        return max(self.statements, key=lambda s: CLASS_RANK.get(s.statement_class, 6))

    @property
    def tables_read(self) -> frozenset[str]:
        """Tables read by any statement."""
        return frozenset().union(*(s.tables_read for s in self.statements))

    @property
    def tables_written(self) -> frozenset[str]:
        """Tables written by any statement."""
        return frozenset().union(*(s.tables_written for s in self.statements))
