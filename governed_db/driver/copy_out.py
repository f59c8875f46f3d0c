"""``COPY ... TO STDOUT`` on a connection that masks: each line masked as it is read.

psycopg reads COPY data one row (one CopyData message) at a time in
``_read_gen``, which ``read()``, ``rows()``, ``read_row()`` and iteration all
use; ``MaskedCopy`` masks each text or CSV line there, with the detectors,
values replaced in place. Binary COPY of such a result is refused, and so is a
COPY that reads a column masked by name or source (the governor decides).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import psycopg
from psycopg import pq

from governed_db.errors import GovernanceError

__all__ = ["AsyncMaskedCopy", "MaskedCopy", "copy_out_plan"]

_COPY_OUT = pq.ExecStatus.COPY_OUT
Masker = Callable[[str], str]


def _masked(data: Any, mask: Masker) -> Any:
    if not data:
        return data
    text = bytes(data).decode("utf-8")
    masked = mask(text)
    return data if masked == text else memoryview(masked.encode("utf-8"))


class MaskedCopy(psycopg.Copy):
    """psycopg's ``Copy`` whose COPY TO data is masked line by line."""

    _gov_mask: Masker

    def _read_gen(self) -> Generator[Any, Any, Any]:
        data = yield from super()._read_gen()
        return _masked(data, self._gov_mask)


class AsyncMaskedCopy(psycopg.AsyncCopy):
    """The async twin of ``MaskedCopy``."""

    _gov_mask: Masker

    def _read_gen(self) -> Generator[Any, Any, Any]:
        data = yield from super()._read_gen()
        return _masked(data, self._gov_mask)


def copy_out_plan(cursor: Any, tables: Any) -> tuple[Masker | None, GovernanceError | None]:
    """``(line masker, refusal)`` for the COPY just started on ``cursor``."""
    state = cursor._conn._gov_state
    res = cursor.pgresult
    if state is None or res is None or res.status != _COPY_OUT or not state[0].masks:
        return None, None
    if res.binary_tuples:
        return None, GovernanceError(
            "binary COPY ... TO STDOUT cannot be masked, and this connection masks fetched "
            "values; refused (fail closed)",
            rule_id="copy-out-unmasked",
            hint="Use COPY ... TO STDOUT in text or CSV format, or SELECT the rows.",
        )
    try:
        return state[0].copy_out_masker(cursor, tables), None
    except GovernanceError as exc:
        return None, exc
