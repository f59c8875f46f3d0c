"""Outcomes of statements queued in pipeline mode, written when their results arrive.

In pipeline mode psycopg's ``execute()`` returns once the statement is
queued; its result (or its error, or "aborted" because an earlier statement
failed) arrives later, when psycopg processes the pipeline's results. The
cursor registers what it must settle here before it queues the statement,
and the governed ``Pipeline`` reports each result as psycopg processes it.
Whatever is still waiting when the outermost pipeline ends is settled as
not run, so no outcome is lost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from psycopg import errors as e
from psycopg import pq

__all__ = ["Pending", "PipelineOutcomes", "not_run"]

_TUPLES_OK = pq.ExecStatus.TUPLES_OK

#: ``settle(error, rowcount, rows_returned)``: counts are the call's own results' (psycopg's
#: cursor state may already show a later statement queued on the same cursor).
Settle = Callable[[BaseException | None, int, int | None], None]


class Pending:
    """One queued call: its cursor, how to settle it, and how many results it still awaits."""

    __slots__ = ("cursor", "error", "left", "rowcount", "rows", "settle")

    def __init__(self, cursor: Any, settle: Settle, results: int) -> None:
        self.cursor = cursor
        self.settle = settle
        self.left = results
        self.error: BaseException | None = None
        self.rowcount = -1
        self.rows: int | None = None

    def count(self, results: Any) -> None:
        """Add what ``results`` (libpq results of this call) affected and returned."""
        for res in results:
            if res.status == _TUPLES_OK:
                self.rows = (self.rows or 0) + res.ntuples
            affected = res.command_tuples
            if affected is not None:
                self.rowcount = max(self.rowcount, 0) + affected

    def done(self) -> None:
        """Settle with what was counted (or the first error)."""
        if self.error is not None:
            self.settle(self.error, -1, None)
        else:
            self.settle(None, self.rowcount, self.rows)


def not_run(reason: str) -> e.PipelineAborted:
    """The error a statement is settled with when it never ran."""
    return e.PipelineAborted(f"not run: {reason}")


class PipelineOutcomes:
    """The connection's queued calls, in the order psycopg queued their statements."""

    __slots__ = ("_queue",)

    def __init__(self) -> None:
        self._queue: deque[Pending] = deque()

    def expect(self, cursor: Any, settle: Settle, results: int = 1) -> Pending:
        """Register a call about to queue ``results`` statements on ``cursor``."""
        entry = Pending(cursor, settle, results)
        self._queue.append(entry)
        return entry

    def withdraw(self, entry: Pending) -> bool:
        """Forget ``entry`` if none of its results arrived yet (it was never queued)."""
        try:
            self._queue.remove(entry)
        except ValueError:
            return False
        return True

    def queued(self, entry: Pending) -> bool:
        """Whether ``entry`` still awaits results."""
        return entry in self._queue

    def arrived(self, cursor: Any, results: Any, error: BaseException | None) -> None:
        """``results`` for ``cursor`` were processed (``error`` if it failed or was aborted)."""
        for entry in self._queue:
            if entry.cursor is cursor:
                break
        else:
            return  # a statement no governed call registered (psycopg's or ours, internal)
        entry.left -= 1
        if error is not None:
            entry.error = entry.error or error
        else:
            entry.count(results)
        if entry.left > 0:
            return
        self._queue.remove(entry)
        entry.done()

    def abandon(self, reason: str) -> None:
        """Settle every call still waiting as not run (the pipeline ended without them)."""
        while self._queue:
            entry = self._queue.popleft()
            entry.error = entry.error or not_run(reason)
            entry.done()
