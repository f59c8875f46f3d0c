"""Server texts that can quote data, masked like a computed text column.

An error can quote the value it failed on (``invalid input syntax for type
integer: "alice@example.com"``, ``Key (email)=(...) already exists``), a
function can ``RAISE NOTICE`` a value, and ``pg_notify`` carries any text.
None of these has a source column, so the value detectors read them, as they
read a computed text column. Error classes and SQLSTATEs stay what psycopg
made; only the texts change, and only when a detector finds something.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import errors as e
from psycopg.pq import DiagnosticField

__all__ = ["masked_diagnostic_info", "masked_error", "masked_notify"]

Mask = Callable[[str], str]

#: Fields that name things or say where, never quote data.
_KEEP = frozenset(
    {
        DiagnosticField.SEVERITY,
        DiagnosticField.SEVERITY_NONLOCALIZED,
        DiagnosticField.SQLSTATE,
        DiagnosticField.STATEMENT_POSITION,
        DiagnosticField.INTERNAL_POSITION,
        DiagnosticField.SCHEMA_NAME,
        DiagnosticField.TABLE_NAME,
        DiagnosticField.COLUMN_NAME,
        DiagnosticField.DATATYPE_NAME,
        DiagnosticField.CONSTRAINT_NAME,
        DiagnosticField.SOURCE_FILE,
        DiagnosticField.SOURCE_LINE,
        DiagnosticField.SOURCE_FUNCTION,
    }
)


def masked_diagnostic_info(info: Any, mask: Mask, encoding: str) -> dict[int, bytes | None] | None:
    """The diagnostic fields of ``info`` with data masked, or None if nothing changed."""
    if info is None:
        return None
    fields: dict[int, bytes | None] = dict(e._info_to_dict(info) or {})  # type: ignore[arg-type]
    changed = False
    for field, raw in fields.items():
        if raw is None or field in _KEEP:
            continue
        text = raw.decode(encoding, "replace")
        masked = mask(text)
        if masked != text:
            fields[field] = masked.encode(encoding, "replace")
            changed = True
    return fields if changed else None


def masked_error(exc: psycopg.Error, mask: Mask) -> psycopg.Error:
    """``exc`` itself when no text of it quotes data; else the same error class, masked."""
    encoding = getattr(exc, "_encoding", "utf-8")
    info = masked_diagnostic_info(getattr(exc, "_info", None), mask, encoding)
    message = str(exc)
    masked_message = mask(message)
    if info is None and masked_message == message:
        return exc
    if info is None:
        info = e._info_to_dict(getattr(exc, "_info", None))  # type: ignore[assignment]
    return type(exc)(masked_message, info=info, encoding=encoding)


def masked_notify(notify: Any, mask: Mask) -> Any:
    """A ``Notify`` with its payload masked (the same object when nothing changed)."""
    payload = mask(notify.payload)
    return notify if payload == notify.payload else notify._replace(payload=payload)
