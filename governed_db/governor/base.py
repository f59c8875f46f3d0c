"""The gate's values and the allow-all ``Governor`` every gate extends.

A ``Governor`` is plain code over plain values: the cursor classes call
``admit`` with a ``Call`` before anything is sent, ``settle`` with an
``Outcome`` afterwards, ``shape_rows`` once per result to wrap the row
maker, and ``masked`` once such a result has been fetched, if it masked
values. The base class allows everything and passes rows through untouched;
policy, approvals and audit extend it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from governed_db.errors import BlastRadiusExceeded, GovernanceError
from governed_db.sql import analyze

__all__ = [
    "Call",
    "ClientMerged",
    "EstimateNeeded",
    "Governor",
    "Outcome",
    "RowMaker",
    "Session",
    "Ticket",
]

RowMaker = Callable[[Any], Any]

#: What psycopg's own commands may do: transaction and cursor control, reads.
_INTERNAL_OPERATIONS = frozenset({"transaction", "fetch", "deallocate", "select", "set"})

#: Ways a statement reaches the server, as named in ``Call.method``.
METHODS = frozenset({"execute", "executemany", "stream", "copy", "declare"})


class ClientMerged(NamedTuple):
    """``Call.params`` when psycopg merged the parameters into the text on the client.

    The query text then holds their values as literals (``ClientCursor``,
    ``copy(statement, params)``); ``params`` is what the caller passed. An
    audit trail that does not record parameters records such a statement
    without its literals.
    """

    params: Any


class EstimateNeeded(Exception):
    """Raised by ``admit``: call again with the planner's row estimate."""


@dataclass(frozen=True, slots=True)
class Session:
    """One governed connection: where it points and who opened it."""

    session_id: str
    params: Mapping[str, str]
    environment: str = ""
    identity: Any = None
    #: Session settings to apply once connected, e.g. {"statement_timeout": "30s"}.
    settings: Mapping[str, str] = field(default_factory=dict)
    #: The audit trail's handle for this session, when audit is on.
    audit: Any = None
    #: What each prepared statement name runs on this connection (``PREPARE``).
    prepared: dict[str, Any] = field(default_factory=dict)
    #: The masked values this connection emitted (for refusing masked-value writes).
    masked: Any = None
    #: The governor's decided statements for this session's own identity, by query text.
    plans: dict[str, Any] = field(default_factory=dict)


class Call(NamedTuple):
    """One statement on its way to the server (an immutable value, cheap to make).

    ``query`` is the text as the server will see it (``sql.Composed`` and bytes
    already rendered); ``params`` is what the caller passed (for
    ``executemany``, the sequence of parameter sets as given).
    """

    session: Session
    method: str
    query: str
    params: Any = None
    cursor_name: str | None = None


@dataclass(slots=True)
class Ticket:
    """What ``admit`` hands back; it travels with the statement to ``settle``."""

    call: Call
    started_ns: int = field(default_factory=time.perf_counter_ns)
    decision: Any = None
    #: Roll the statement back and raise if it affects more rows than this.
    max_rows: int | None = None
    #: ``lock_timeout`` to apply to this statement alone (DDL), e.g. "5s".
    lock_timeout: str | None = None
    #: Whatever the governor wants back in ``settle`` (audit reference, ...).
    ref: Any = None
    #: Changes the statement makes to the session's prepared statements, if any.
    session_changes: Any = None
    #: What the analyzer saw (the driver looks up the tables' columns before sending).
    facts: Any = None
    #: The mask plan of the statement's result, when it returned one (for the audit).
    mask_plan: Any = None
    #: The governor's per-statement plan (``Planned``: tables named, DDL ...), if it has one.
    planned: Any = None

    @property
    def guarded(self) -> bool:
        """Whether limits must be enforced around the statement."""
        return self.max_rows is not None or self.lock_timeout is not None

    def outcome(self, rowcount: int, error: BaseException | None) -> Outcome:
        """How the statement ended, timed from admission."""
        return Outcome(rowcount, time.perf_counter_ns() - self.started_ns, error)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a statement ended: ``error`` is None on success."""

    rowcount: int
    duration_ns: int
    error: BaseException | None = None


class Governor:
    """Allow-all gate: admits every statement and leaves rows as they are.

    ``admit`` runs before anything is sent and may raise to refuse; when it
    returns a ``Ticket``, ``settle`` is called once the statement has finished,
    failed or been abandoned. Returning None (as this class does) means the
    gate has nothing to settle, which keeps the hot path cheap.
    """

    __slots__ = ()

    #: Whether ``shape_rows`` needs each result column's source table (the driver
    #: then looks the tables up in the catalog); the allow-all gate does not.
    masks = False

    @property
    def records_masked(self) -> bool:
        """Whether ``masked`` records anything: the driver counts masked values only then.

        True in a subclass that overrides ``masked``.
        """
        return type(self).masked is not Governor.masked

    def open_session(self, session: Session) -> Session:
        """Called once per connection, after it is established."""
        return session

    def application_name(self) -> str | None:
        """The ``application_name`` to connect with when the user gave none."""
        return None

    def admit(
        self,
        session: Session,
        method: str,
        query: str,
        params: Any,
        cursor_name: str | None,
        estimated_rows: int | None = None,
    ) -> Ticket | None:
        """Decide on a statement before it is sent; raise to refuse it.

        Raise ``EstimateNeeded`` to be called again with ``estimated_rows``
        from the planner (the cursor runs ``EXPLAIN``; -1 if it could not).
        """
        return None

    def settle(
        self,
        ticket: Ticket,
        rowcount: int,
        error: BaseException | None,
        rows_returned: int | None = None,
    ) -> None:
        """Called after a statement ``admit`` returned a ticket for.

        ``rows_returned`` is the size of the result the statement produced, if
        it produced one and it is known at this point (not for named cursors).
        """

    def masked(self, ticket: Ticket, counts: Sequence[Any]) -> None:
        """Called once per result that masked values, when its fetching is finished.

        ``counts`` are masking's ``MaskCount`` (column, source, rule_id, method,
        values), never a value. Comes after ``settle``. The base class records nothing.
        """

    def driver_refused(
        self, session: Session, method: str, query: str | None, error: Exception
    ) -> None:
        """Called when the driver refuses a statement itself (``GovernanceError``).

        ``query`` is its text when it could be read. The base class records
        nothing; a gate with an audit trail writes a refused record.
        """

    def internal_command(self, session: Session, text: str) -> None:
        """Vet a command psycopg builds itself (BEGIN, COMMIT, FETCH, MOVE, CLOSE, ...).

        Such commands render values with the connection's adapters, so a
        dumper could make one carry more. Refuse anything but one statement
        that controls a transaction or cursor, or reads.
        """
        facts = analyze(text)
        if facts.statement_count == 1 and not facts.opaque:
            s = facts.statements[0]
            if s.effects <= _INTERNAL_OPERATIONS and not s.tables_written and not s.functions:
                return
        raise GovernanceError(
            "a command psycopg builds for its own use (transaction, cursor or prepared "
            "statement control) would send something else; refused (fail closed). A "
            "dumper registered on the connection may be rendering SQL",
            rule_id="unsafe-internal-command",
            hint="Register dumpers that render only literal values.",
        )

    def copy_out_masker(self, cursor: Any, tables: Any) -> Callable[[str], str] | None:
        """How to mask one line of ``COPY ... TO STDOUT`` text, or None (nothing masks).

        ``tables`` are the tables the COPY reads. Raise ``GovernanceError`` to
        refuse the COPY when its data cannot be masked line by line.
        """
        return None

    def copy_out_shape(self, statement: str) -> Any:
        """What a ``COPY ... TO STDOUT`` writes (a ``sql.CopyShape``), or None: not masked."""
        return None

    def copy_row_masker(self, cursor: Any, columns: list[Any]) -> Callable[[Any], Any] | None:
        """How to mask one COPY row of ``columns`` (name, source, type OID), or None."""
        return None

    def text_masker(self, session: Session) -> Callable[[str], str] | None:
        """How to mask free text the server sends (errors, notices, NOTIFY), or None."""
        return None

    def shape_rows(self, cursor: Any, make_row: RowMaker) -> RowMaker:
        """Return the row maker for a new result (called once per result)."""
        return make_row

    def exceeded(self, ticket: Ticket, affected: int) -> BaseException:
        """The error for a statement that affected more than ``ticket.max_rows`` rows."""
        return BlastRadiusExceeded(
            f"the statement affected {affected} rows, more than the {ticket.max_rows} allowed; "
            "it was rolled back",
            rule_id="max_rows_affected",
            hint="Narrow the WHERE clause, or work in batches below the limit.",
            statement=ticket.call.query,
        )

    def uncountable(self, ticket: Ticket) -> BaseException:
        """The error for a row-limited statement whose changed rows cannot be counted."""
        return BlastRadiusExceeded(
            f"a row limit of {ticket.max_rows} applies, and the rows this statement changed "
            "cannot be counted from its results (a write inside a CTE, EXPLAIN ANALYZE, "
            "COPY or CREATE TABLE AS reports the rows it returns); it was rolled back",
            rule_id="max_rows_affected",
            hint="Run the UPDATE, DELETE or MERGE as a plain statement of its own.",
            statement=ticket.call.query,
        )

    def end_session(self, session: Session, reason: str) -> None:
        """The session ended: ``closed``, ``broken`` (seen broken) or ``exit`` (process exit).

        Calls ``close_session`` unless a subclass records the reason itself.
        """
        self.close_session(session)

    def close_session(self, session: Session) -> None:
        """Called when the connection closes."""
