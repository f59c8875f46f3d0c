"""What a statement does: the frozen values the analyzer produces.

``Facts`` is the contract between ``sql.analyze`` and everything downstream
(policy, audit, masking). Both parser backends must produce equal Facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from governed_db.sql.lineage import UNKNOWN, Lineage

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
    (``WITH d AS (DELETE ...) SELECT`` is a ``delete``); ``effects`` holds every
    operation it performs (``INSERT ... ON CONFLICT DO UPDATE``: insert and
    update), and ``statement_class`` is the riskiest class among them. Table
    names are schema-qualified (``public.orders`` for an unqualified ``orders``),
    with CTE names and aliases resolved away.

    - ``effects``: operations performed anywhere, ``operation`` included; a plain
      ``select`` part is left out when anything else happens.
    - ``row_locks``: ``FOR UPDATE`` / ``NO KEY UPDATE`` / ``SHARE`` / ``KEY SHARE``
      anywhere, as "update", "no key update", "share", "key share";
      ``lock_waits``: "nowait" and/or "skip locked" on them.
    - ``explain_analyze``: an EXPLAIN that runs the statement it explains.
    - ``prepares``: ``PREPARE name AS stmt`` (the facts are stmt's); ``executes``:
      ``EXECUTE name`` (opaque here: the gate knows what name was prepared as);
      ``deallocates``: ``DEALLOCATE name`` (``"*"`` for ALL, DISCARD ALL). Names as
      the server folds them.
    - ``settings``: configuration parameters changed (SET, RESET, set_config(),
      ALTER SYSTEM/ROLE/DATABASE/FUNCTION ... SET), lower-cased; ``"*"`` for
      all or a name that cannot be known before it runs.
    - ``objects``: kinds of object CREATE/ALTER/DROP act on ("table", "function",
      ...; see ``OBJECT_KINDS``); ``alter_actions``: what an ALTER does to a
      table ("drop_column", "alter_type", "alter_type_using", "rename", ...;
      see ``ALTER_ACTIONS``).
    - ``copy_endpoint``: the other end of a COPY: "client" (STDIN / STDOUT),
      "file" (a file on the database server) or "program" (a shell command
      on it); None for anything else.
    - ``lineage``: where each output column comes from and which columns pick
      rows (``sql.lineage``); ``UNKNOWN`` when it cannot be followed (and from
      the sqlparse backend). Computed at first use, once per analysed
      statement (so with the analysis cache, once per text); not compared.
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
    effects: frozenset[str] = frozenset()
    row_locks: frozenset[str] = frozenset()
    lock_waits: frozenset[str] = frozenset()
    explain_analyze: bool = False
    prepares: str | None = None
    executes: str | None = None
    deallocates: str | None = None
    settings: frozenset[str] = frozenset()
    objects: frozenset[str] = frozenset()
    alter_actions: frozenset[str] = frozenset()
    copy_endpoint: str | None = None
    #: ``[(text, compute)]`` until ``lineage`` is first read, then ``[Lineage]``.
    lineage_cell: list[Any] = field(default_factory=list, compare=False, repr=False)
    text: str = ""
    normalized: str = ""
    fingerprint: str = ""

    @property
    def lineage(self) -> Lineage:
        """The statement's lineage (``sql.lineage``), computed once at first use."""
        cell = self.lineage_cell
        if not cell:
            return UNKNOWN
        found = cell[0]
        if type(found) is tuple:
            text, compute = found
            found = compute(text)
            cell[0] = found
        return found  # type: ignore[no-any-return]


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

    @property
    def effects(self) -> frozenset[str]:
        """Operations performed by any statement."""
        return frozenset().union(*(s.effects for s in self.statements))

    @property
    def settings(self) -> frozenset[str]:
        """Configuration parameters changed by any statement (``"*"``: unknown or all)."""
        return frozenset().union(*(s.settings for s in self.statements))
