"""Private cursors for governed_db's own bookkeeping, admitted per call.

Savepoints around a guarded statement, ``EXPLAIN`` for a row estimate and
``set_config`` for a lock timeout are not the caller's statements. They run
through these classes, and only through ``run``/``arun``, which issue the
call's pass. Calling ``execute`` on one of these cursors directly is refused
at the wire like any other unadmitted statement.
"""

from __future__ import annotations

from typing import Any

import psycopg

from governed_db.driver.admission import Admission
from governed_db.driver.wire import WireChecked

__all__ = [
    "AsyncTrustedCursor",
    "AsyncTrustedRawCursor",
    "TrustedCursor",
    "TrustedRawCursor",
    "arun",
    "run",
]


class TrustedCursor(WireChecked, psycopg.Cursor[Any]):
    """Internal bookkeeping cursor (``%s`` placeholders)."""


class TrustedRawCursor(WireChecked, psycopg.RawCursor[Any]):
    """Internal bookkeeping cursor (``$1`` placeholders)."""


class AsyncTrustedCursor(WireChecked, psycopg.AsyncCursor[Any]):
    """Internal bookkeeping cursor, async."""


class AsyncTrustedRawCursor(WireChecked, psycopg.AsyncRawCursor[Any]):
    """Internal bookkeeping cursor, async, ``$1`` placeholders."""


def run(cursor: TrustedCursor | TrustedRawCursor, query: str, params: Any = None) -> None:
    """Execute one bookkeeping statement on ``cursor`` under a pass for it alone."""
    text = str.__getitem__(query, slice(None))
    cursor._gov_pass = Admission(text)
    try:
        psycopg.Cursor.execute(cursor, text, params, prepare=False)
    finally:
        cursor._gov_pass = None


async def arun(
    cursor: AsyncTrustedCursor | AsyncTrustedRawCursor, query: str, params: Any = None
) -> None:
    """The async twin of ``run``."""
    text = str.__getitem__(query, slice(None))
    cursor._gov_pass = Admission(text)
    try:
        await psycopg.AsyncCursor.execute(cursor, text, params, prepare=False)
    finally:
        cursor._gov_pass = None
