"""Cursors for governed_db's own bookkeeping on a governed connection.

Savepoints around a guarded statement, ``EXPLAIN`` for a row estimate and
``set_config`` for a lock timeout are not the caller's statements: they run
through these classes, which the connection lets past its bypass check.
Every other cursor on a governed connection must be a governed one.
"""

from __future__ import annotations

from typing import Any

import psycopg

__all__ = [
    "TRUSTED_CURSORS",
    "AsyncTrustedCursor",
    "AsyncTrustedRawCursor",
    "TrustedCursor",
    "TrustedRawCursor",
]


class TrustedCursor(psycopg.Cursor[Any]):
    """Internal: not governed (bookkeeping only)."""


class TrustedRawCursor(psycopg.RawCursor[Any]):
    """Internal: not governed (bookkeeping only)."""


class AsyncTrustedCursor(psycopg.AsyncCursor[Any]):
    """Internal: not governed (bookkeeping only)."""


class AsyncTrustedRawCursor(psycopg.AsyncRawCursor[Any]):
    """Internal: not governed (bookkeeping only)."""


TRUSTED_CURSORS = (TrustedCursor, TrustedRawCursor, AsyncTrustedCursor, AsyncTrustedRawCursor)
