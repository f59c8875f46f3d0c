"""``MaskedResult``: ``cursor.pgresult`` for a result that needs masking.

``cursor.pgresult`` is public psycopg API, and libpq's ``get_value`` hands out
a result's raw bytes. When masking applies to the current result, the cursor
exposes this view instead: everything reads through to libpq's result except
``get_value``, which gives a masked cell's masked text (or refuses, for a
binary-format cell it cannot re-encode). The cursor's own loading goes
through psycopg's transformer, which keeps the real result.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import adapt, pq
from psycopg.adapt import PyFormat

from governed_db.errors import GovernanceError

__all__ = ["MaskedResult"]

_TEXT = pq.Format.TEXT
_JSON_OIDS = frozenset({114, 3802})
#: text, varchar, bpchar, name: the binary form is the text itself.
_TEXT_OIDS = frozenset({25, 1043, 1042, 19})


class MaskedResult:
    """A read-through view of a ``PGresult`` whose ``get_value`` is masked."""

    __slots__ = ("_context", "_masker", "_res", "_rows", "_tx", "nfields", "ntuples", "status")

    def __init__(self, res: Any, cursor: Any, masker: Any) -> None:
        self._res = res
        # read on every fetch by psycopg: plain attributes, not the read-through
        self.status = res.status
        self.ntuples = res.ntuples
        self.nfields = res.nfields
        self._masker = masker
        self._context = cursor  # loaders are looked up only if get_value() is called
        self._tx: Any = None
        self._rows: dict[int, tuple[tuple[Any, ...], tuple[Any, ...]]] = {}

    def _loader(self) -> Any:
        tx = self._tx
        if tx is None:
            tx = self._tx = adapt.Transformer.from_context(self._context)
            tx.set_pgresult(self._res)
            self._context = None
        return tx

    def __getattr__(self, name: str) -> Any:
        return getattr(self._res, name)

    def __repr__(self) -> str:
        return f"<masked {self._res!r}>"

    def _text(self, value: Any, type_oid: int) -> bytes | None:
        """``value`` in PostgreSQL's text form (None if psycopg cannot dump it)."""
        if isinstance(value, str):
            return value.encode("utf-8")
        try:
            if type_oid in _JSON_OIDS:
                return json.dumps(value).encode("utf-8")
            dumped = self._loader().get_dumper(value, PyFormat.TEXT).dump(value)
        except (psycopg.Error, TypeError, ValueError):
            return None
        return None if dumped is None else bytes(dumped)

    def get_value(self, row_number: int, column_number: int) -> bytes | None:
        """The cell's bytes as the server sent them, or its masked text if masking changed it."""
        raw: bytes | None = self._res.get_value(row_number, column_number)
        if raw is None:
            return None
        pair = self._rows.get(row_number)
        if pair is None:
            loaded = self._loader().load_row(row_number, tuple)
            if loaded is None:
                return raw
            pair = (loaded, self._masker.apply(loaded))
            if len(self._rows) > 1024:
                self._rows.clear()
            self._rows[row_number] = pair
        loaded, masked = pair
        value = masked[column_number]
        if value is loaded[column_number]:
            return raw
        if value is None:
            return None
        type_oid = self._res.ftype(column_number)
        if self._res.fformat(column_number) == _TEXT:
            text = self._text(value, type_oid)
            if text is not None:
                return text
        elif type_oid in _TEXT_OIDS and isinstance(value, str):
            return value.encode("utf-8")  # text types' binary form is their UTF-8 text
        raise GovernanceError(
            f"column {column_number} of this result is masked, and its masked value cannot "
            "be given as libpq bytes in this format (refused, fail closed)",
            rule_id="masked-raw-result",
            hint="Fetch the rows (fetchone/fetchall) to get the masked values.",
        )
