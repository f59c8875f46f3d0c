"""What each statement's results masked, handed to the governor once they are read.

A statement's outcome is recorded when it ends, before its rows are fetched;
how many values masking changed is known only as rows are fetched. So a
cursor keeps a ``Counting``: for each masker its results use, where the
masker's counts stood when the statement's result arrived
(``RowMasker.mark``) and which statement (ticket) the result belongs to.
When the cursor's next call starts, when it closes or is collected, and
when the connection ends, the difference goes to ``Governor.masked`` (the
audit's ``masked`` record). Counts are of the values the driver masked,
which with ``fetchone()`` and iteration includes rows masked a batch ahead.

Maskers are shared by the results of one connection (see
``MaskingGate._made``); a masker another cursor is counting is never
handed out (``MaskingGate._made`` checks ``_gov_mask_owners``), so counts are never mixed.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

__all__ = ["Counting", "counting_of", "flush_all"]

log = logging.getLogger("governed_db.audit")


class Counting:
    """One cursor's results being counted: ``[masker, mark, ticket, frozen counts]`` each."""

    __slots__ = ("__weakref__", "conn", "entries")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.entries: list[list[Any]] = []

    def add(self, masker: Any, tickets: list[Any], index: int, results: int) -> None:
        """Count ``masker`` against the statement (of a call's ``tickets``) of result ``index``.

        ``results`` is how many results the call has: with one per statement, result
        ``index`` is statement ``index``'s; otherwise the call's last statement's.
        """
        if not tickets:
            return
        ticket = tickets[index] if len(tickets) == results and 0 <= index < results else None
        if ticket is None:
            ticket = next((t for t in reversed(tickets) if t is not None), None)
            if ticket is None:
                return
        last = None
        for entry in self.entries:
            if entry[0] is masker:
                last = entry
        if last is not None:
            if last[2] is ticket and last[3] is None:
                return  # already counting this statement's results with it
            if last[3] is None:  # the earlier statement's share ends here
                last[3] = masker.counts(last[1])
        self.entries.append([masker, masker.mark(), ticket, None])
        _owners(self.conn)[id(masker)] = id(self)

    def flush(self) -> None:
        """Hand what each statement masked to the governor; start over."""
        entries, self.entries = self.entries, []
        if not entries:
            return
        owners = _owners(self.conn)
        state = self.conn._gov_state
        for masker, mark, ticket, frozen in entries:
            if owners.get(id(masker)) == id(self):
                del owners[id(masker)]
            counts = frozen if frozen is not None else masker.counts(mark)
            if counts and state is not None:
                try:
                    state[0].masked(ticket, counts)
                except Exception:  # it already ran and was read: never fail the caller here
                    log.exception("audit: the masked-value counts of a statement were not recorded")


def _owners(conn: Any) -> dict[int, int]:
    found: dict[int, int] | None = conn.__dict__.get("_gov_mask_owners")
    if found is None:
        found = conn.__dict__["_gov_mask_owners"] = {}
    return found


def counting_of(cursor: Any) -> Counting:
    """The cursor's ``Counting``, made (and registered with its connection) on first use."""
    counting: Counting | None = cursor.__dict__.get("_gov_counting")
    if counting is None:
        conn = cursor._conn
        counting = cursor.__dict__["_gov_counting"] = Counting(conn)
        registry: weakref.WeakSet[Counting] | None = conn.__dict__.get("_gov_countings")
        if registry is None:
            registry = conn.__dict__["_gov_countings"] = weakref.WeakSet()
        registry.add(counting)
        # a cursor dropped without close() still reports what its last call masked
        weakref.finalize(cursor, counting.flush).atexit = False
    return counting


def flush_all(conn: Any) -> None:
    """Report every cursor's counts (the connection is ending)."""
    registry: weakref.WeakSet[Counting] | None = conn.__dict__.get("_gov_countings")
    if registry:
        for counting in list(registry):
            counting.flush()
