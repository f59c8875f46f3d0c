"""``Planned``: one statement's decision with everything the hot path asks of it, computed once.

A repeated statement is looked up by (text, environment, identity); what the
gate and the driver then need (limits, whether it writes, which tables it
names, whether it changes the schema or the session's prepared statements)
is read off this value instead of being derived from the facts per call.
"""

from __future__ import annotations

from governed_db.governor.masking_gate import WRITE_EFFECTS
from governed_db.governor.session_rules import dynamic
from governed_db.policy import Decision
from governed_db.sql import Facts

__all__ = ["Planned", "ends_transactions", "row_limit_unenforceable"]


class Planned:
    """A decided statement and the per-call facts derived from it."""

    __slots__ = (
        "ddl",
        "decision",
        "dynamic",
        "facts",
        "hot",
        "lock_timeout",
        "max_rows",
        "refuses",
        "tables",
        "writes",
    )

    def __init__(
        self, decision: Decision, facts: Facts, max_rows: int | None, lock_timeout: str | None
    ) -> None:
        if max_rows is not None and not decision.refuses and ends_transactions(facts):
            decision = row_limit_unenforceable(decision.environment)
        self.decision = decision
        self.facts = facts
        self.max_rows = max_rows
        self.lock_timeout = lock_timeout
        self.refuses = decision.refuses
        written = facts.tables_written
        #: Tables the statement names (the driver looks up their columns before sending).
        self.tables = facts.tables_read | written
        #: Whether it stores values (a masked value in it would be written back).
        self.writes = bool(written or facts.effects & WRITE_EFFECTS)
        #: Whether it prepares, executes or deallocates (decided per session, never cached).
        self.dynamic = dynamic(facts)
        #: Whether it changes the schema (the connection's catalog is then stale).
        self.ddl = any(s.statement_class == "ddl" for s in facts.statements)
        #: Whether the decision holds until the policy changes (so it may be reused).
        self.hot = False


def ends_transactions(facts: Facts) -> bool:
    """Whether a statement commits, rolls back or sets savepoints."""
    return any("transaction" in s.effects for s in facts.statements)


def row_limit_unenforceable(environment: str) -> Decision:
    """The refusal of a row-limited statement that also ends or splits its transaction."""
    return Decision(
        "block",
        "row-limit-unenforceable",
        "a row limit applies to this statement, and it also commits, rolls back or "
        "sets savepoints, which would take the changes out of the limit's reach",
        "Run the transaction control (COMMIT, ROLLBACK, SAVEPOINT ...) separately.",
        environment,
        "block",
        cacheable=False,
    )
