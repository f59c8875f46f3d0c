"""``COPY ... TO STDOUT`` on a connection that masks: each line masked as it is read.

psycopg reads COPY data one row (one CopyData message) at a time in
``_read_gen``, which ``read()``, ``rows()``, ``read_row()`` and iteration all
use; ``MaskedCopy`` masks each text or CSV line there. When the COPY's columns
could be described before it ran (``copy_columns``), each line is split into
values and masked column by column like fetched rows; otherwise the detectors
read the whole line, and a COPY that reads a column masked by name or source
is refused. Binary COPY of such a result is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import psycopg
from psycopg import pq

from governed_db.driver.copy_lines import csv_line_masker, text_line_masker
from governed_db.errors import GovernanceError, PolicyViolation

__all__ = [
    "AsyncCheckedCopy",
    "AsyncMaskedCopy",
    "CheckedCopy",
    "MaskedCopy",
    "copy_in_memory",
    "copy_out_plan",
    "copy_out_shape",
]

_COPY_OUT = pq.ExecStatus.COPY_OUT
_COPY_IN = pq.ExecStatus.COPY_IN
Masker = Callable[[str], str]


def _masked(data: Any, mask: Masker) -> Any:
    if not data:
        return data
    text = bytes(data).decode("utf-8")
    masked = mask(text)
    return data if masked == text else memoryview(masked.encode("utf-8"))


class _MaskedRead:
    """psycopg's one read generator for COPY data, masking each line it returns."""

    _gov_mask: Masker

    def _read_gen(self) -> Generator[Any, Any, Any]:
        data = yield from super()._read_gen()  # type: ignore[misc]
        return _masked(data, self._gov_mask)


class MaskedCopy(_MaskedRead, psycopg.Copy):
    """psycopg's ``Copy`` whose COPY TO data is masked line by line."""


class AsyncMaskedCopy(_MaskedRead, psycopg.AsyncCopy):
    """The async twin of ``MaskedCopy``."""


def _refuse_masked(memory: Any, data: Any) -> None:
    if memory.find_in_params([data]) is not None:
        raise PolicyViolation(
            "the COPY data holds a value that masking produced on this connection; "
            "storing it would overwrite real data with its mask (the COPY is aborted)",
            rule_id="masked-value-write",
            hint="Masked values are placeholders, not data: copy the rows from their source.",
        )


class CheckedCopy(psycopg.Copy):
    """psycopg's ``Copy`` whose COPY FROM data may not carry masked values."""

    _gov_memory: Any

    def write(self, buffer: Any) -> None:
        _refuse_masked(self._gov_memory, buffer)
        super().write(buffer)

    def write_row(self, row: Any) -> None:
        _refuse_masked(self._gov_memory, row)
        super().write_row(row)


class AsyncCheckedCopy(psycopg.AsyncCopy):
    """The async twin of ``CheckedCopy``."""

    _gov_memory: Any

    async def write(self, buffer: Any) -> None:
        _refuse_masked(self._gov_memory, buffer)
        await super().write(buffer)

    async def write_row(self, row: Any) -> None:
        _refuse_masked(self._gov_memory, row)
        await super().write_row(row)


def copy_in_memory(cursor: Any) -> Any:
    """The connection's masked-value memory if the COPY just started reads data in."""
    state = cursor._conn._gov_state
    res = cursor.pgresult
    if state is None or res is None or res.status != _COPY_IN:
        return None
    memory = getattr(state[1], "masked", None)
    return memory if memory else None


def copy_out_shape(cursor: Any, tickets: Any) -> Any:
    """The shape of the COPY TO STDOUT about to run, if masking may need its columns."""
    state = cursor._conn._gov_state
    if state is None or not state[0].masks or len(tickets) != 1 or tickets[0] is None:
        return None
    ticket = tickets[0]
    facts = ticket.facts
    if facts is None or "copy_to" not in facts.effects:
        return None
    shape = state[0].copy_out_shape(ticket.call.query)
    if shape is None or shape.format not in ("text", "csv") or not shape.default_layout:
        return None
    return shape


def copy_out_plan(
    cursor: Any, tables: Any, shape: Any = None, columns: Any = None
) -> tuple[Masker | None, GovernanceError | None]:
    """``(line masker, refusal)`` for the COPY just started on ``cursor``.

    With the COPY's ``shape`` and described ``columns``, lines are masked column
    by column, as fetched rows are; without them, by the detectors alone, and a
    COPY reading a column masked by name or source is refused.
    """
    state = cursor._conn._gov_state
    res = cursor.pgresult
    if state is None or res is None or res.status != _COPY_OUT or not state[0].masks:
        return None, None
    if columns is not None and not res.binary_tuples and res.nfields == len(columns):
        mask_row = state[0].copy_row_masker(cursor, columns)
        if mask_row is None:
            return None, None
        if shape.format == "csv":
            return csv_line_masker(mask_row, shape.header), None
        return text_line_masker(mask_row), None
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
