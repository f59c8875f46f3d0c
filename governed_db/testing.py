"""Helpers for users' own tests: see what the gate saw without a mock of anything.

``RecordingGovernor`` records every call the gate admits; ``capture_audit()``
gives an in-memory audit sink to pass as ``connect(..., audit=sink)``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from governed_db.audit import MemorySink
from governed_db.governor import Call, Governor, Outcome, RowMaker, Session, Ticket

__all__ = ["RecordingGovernor", "Seen", "capture_audit"]


@contextlib.contextmanager
def capture_audit() -> Iterator[MemorySink]:
    """An in-memory audit sink: ``connect(dsn, audit=sink)``; ``sink.records`` holds dicts.

    Records are signed only if a signing key is configured; nothing is written
    to disk.
    """
    sink = MemorySink("capture")
    yield sink


@dataclass(frozen=True, slots=True)
class Seen:
    """One statement as the gate saw it, and how it ended."""

    call: Call
    outcome: Outcome | None


class RecordingGovernor(Governor):
    """Allows everything and remembers every call, outcome and result shaped.

    Pass it as ``connect(..., governor=RecordingGovernor())``. ``refuse`` is an
    optional predicate: a call for which it returns an exception is refused
    with that exception (nothing is sent to the server).
    """

    __slots__ = ("_lock", "calls", "refuse", "results", "settled")

    def __init__(self, refuse: Any = None) -> None:
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self.settled: list[Seen] = []
        self.results: list[tuple[str | None, int]] = []
        self.refuse = refuse

    def admit(
        self,
        session: Session,
        method: str,
        query: str,
        params: Any,
        cursor_name: str | None,
        estimated_rows: int | None = None,
    ) -> Ticket:
        call = Call(session, method, query, params, cursor_name)
        with self._lock:
            self.calls.append(call)
        if self.refuse is not None:
            error = self.refuse(call)
            if error is not None:
                raise error
        return Ticket(call)

    def settle(
        self,
        ticket: Ticket,
        rowcount: int,
        error: BaseException | None,
        rows_returned: int | None = None,
    ) -> None:
        with self._lock:
            self.settled.append(Seen(ticket.call, ticket.outcome(rowcount, error)))

    def shape_rows(self, cursor: Any, make_row: RowMaker) -> RowMaker:
        with self._lock:
            self.results.append((getattr(cursor, "_name", None) or None, id(make_row)))
        return make_row

    @property
    def methods(self) -> list[str]:
        """The ``method`` of every call admitted, in order."""
        return [c.method for c in self.calls]

    @property
    def queries(self) -> list[str]:
        """The text of every call admitted, in order."""
        return [c.query for c in self.calls]
