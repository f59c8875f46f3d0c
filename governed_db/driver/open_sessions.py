"""Governed sessions still open when the process exits get their end record.

A connection that is never closed (a script that exits, a pool that drops it)
would otherwise leave its session without an end. Each audit trail closes
itself at exit; the hook here is registered after the trail it serves, so it
runs first (``atexit`` runs last-registered first) and the trail still takes
the records.
"""

from __future__ import annotations

import atexit
import sys
import weakref
from typing import Any

__all__ = ["end_open_sessions", "forget", "track"]

_OPEN: weakref.WeakSet[Any] = weakref.WeakSet()
_WATCHED: weakref.WeakSet[Any] = weakref.WeakSet()


def track(conn: Any, governor: Any) -> None:
    """Remember ``conn``'s open session until it ends."""
    _OPEN.add(conn)
    trail = getattr(governor, "trail", None)
    if trail is not None and trail not in _WATCHED:
        _WATCHED.add(trail)
        atexit.register(end_open_sessions)


def forget(conn: Any) -> None:
    """``conn``'s session ended."""
    _OPEN.discard(conn)


def end_open_sessions() -> None:
    """Record the end of every governed session still open (at process exit)."""
    for conn in list(_OPEN):
        try:
            conn._gov_end("exit")
        except Exception as exc:  # at exit: say so, and go on with the others
            print(f"governed_db: could not record a session's end at exit: {exc}", file=sys.stderr)
