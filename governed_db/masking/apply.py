"""Applying a plan to rows: one row at a time (a row-maker wrapper) or many at once.

A :class:`RowMasker` is made per result (``plan.start(memory)``). It touches
only the columns that need work, counts what it masked per (column, rule,
method), and tells the connection's :class:`MaskedValues` what it emitted.
:meth:`RowMasker.apply_rows` is the fast path for ``fetchall``/``fetchmany``:
column by column, one trigger scan per column for the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from governed_db.masking.methods import MaskingError, many
from governed_db.masking.rowmaker import compile_row_maker
from governed_db.masking.scan import Found

if TYPE_CHECKING:
    from governed_db.masking.memory import MaskedValues
    from governed_db.masking.plan import ColumnPlan, MaskPlan

__all__ = ["CountMark", "MaskCount", "RowMasker"]

RowMaker = Callable[[Sequence[Any]], Any]


#: What :meth:`RowMasker.mark` returns: the counts at one moment.
CountMark = tuple[list[int], dict[tuple[int, str, str], int]]


class MaskCount(NamedTuple):
    """How many values of a column one rule masked with one method (never the values)."""

    column: str
    source: str | None
    rule_id: str
    method: str
    values: int


def _failed(col: ColumnPlan, exc: Exception) -> MaskingError:
    if isinstance(exc, MaskingError):
        return exc.at(col.column.name)
    return MaskingError(
        col.rule_id or "?",
        col.method or "?",
        f"the method raised {type(exc).__name__}",
        col.column.name,
    )


#: Rows masked at a time by :meth:`RowMasker.apply_rows`: few enough that a chunk's
#: values stay in the CPU caches from one pass to the next, and that the tuples of
#: a chunk's new rows come from the free list its old rows went to (no more than
#: its 2000 tuples of a size).
_CHUNK = 1024


class RowMasker:
    """Masks the rows of one result according to a :class:`MaskPlan`."""

    __slots__ = ("_apply", "_counts", "_scanned", "groups", "mask_columns", "mask_counts",
                 "memory", "plan")  # fmt: skip

    def __init__(self, plan: MaskPlan, memory: MaskedValues | None = None) -> None:
        self.plan = plan
        self.memory = memory
        self.mask_columns = plan.mask_columns
        #: Values masked so far in each of ``mask_columns`` (one row at a time).
        self.mask_counts = [0] * len(self.mask_columns)
        self._counts: dict[tuple[int, str, str], int] = {}
        self._apply: RowMaker | None = None
        #: Scanned columns by scanner: ``(scanner, columns, all plain text)``.
        self.groups = plan.groups
        self._scanned = [c for g in plan.groups for c in g[1]]

    # --- counting and remembering ------------------------------------------------------------

    def _count(self, index: int, rule_id: str, method: str, n: int) -> None:
        key = (index, rule_id, method)
        self._counts[key] = self._counts.get(key, 0) + n

    def _found(self, col: ColumnPlan, found: Found) -> None:
        for rule_id, method in found.hits:
            self._count(col.index, rule_id, method, 1)
        if self.memory is not None:
            self.memory.add(found.value)
            self.memory.add_fragments(found.fragments)

    def mark(self) -> CountMark:
        """Where the counts stand now: give it to :meth:`counts` to count from here."""
        return (list(self.mask_counts), dict(self._counts))

    def counts(self, since: CountMark | None = None) -> list[MaskCount]:
        """What was masked so far (or since ``since``), per (column, rule, method)."""
        if since is not None and since[1] == self._counts:
            # only the row maker's counters moved (or nothing): no merging, already in order
            return [
                MaskCount(c.column.name, c.column.source, c.rule_id or "", c.method or "", n - b)
                for c, n, b in zip(self.mask_columns, self.mask_counts, since[0], strict=True)
                if n != b
            ]
        totals = dict(self._counts)
        for col, n in zip(self.mask_columns, self.mask_counts, strict=True):
            if n:
                key = (col.index, col.rule_id or "", col.method or "")
                totals[key] = totals.get(key, 0) + n
        if since is not None:
            before, found = since
            for (i, rule_id, method), n in found.items():
                totals[(i, rule_id, method)] -= n
            for col, n in zip(self.mask_columns, before, strict=True):
                if n:
                    totals[(col.index, col.rule_id or "", col.method or "")] -= n
        cols = self.plan.columns
        return [
            MaskCount(cols[i].column.name, cols[i].column.source, rule_id, method, n)
            for (i, rule_id, method), n in sorted(totals.items())
            if n
        ]

    def failure(self, k: int, exc: Exception) -> MaskingError:
        """The error for mask column ``k`` whose method raised ``exc``."""
        return _failed(self.mask_columns[k], exc)

    def group_scan(self, g: int) -> Callable[[list[Any]], None]:
        """Scan group ``g``'s columns of a row in place (the slow path of one row)."""
        scanner, cols, text_only = self.groups[g]
        names = ", ".join(c.column.name for c in cols)

        def scan(row: list[Any]) -> None:
            values = [row[c.index] for c in cols]
            try:
                if text_only:
                    found = scanner.scan_texts(values, trusted=True)
                else:
                    found = scanner.scan_values(values)
            except MaskingError as exc:
                raise exc.at(names) from None
            for k, f in found.items():
                col = cols[k]
                row[col.index] = f.value
                self._found(col, f)

        return scan

    # --- one row -------------------------------------------------------------------------------

    def apply(self, values: Sequence[Any]) -> tuple[Any, ...]:
        """One row (any sequence), masked, as a tuple."""
        if self._apply is None:
            self._apply = compile_row_maker(self, tuple)
        result: tuple[Any, ...] = self._apply(list(values))
        return result

    def wrap(self, make_row: RowMaker) -> RowMaker:
        """``make_row`` itself when nothing needs masking, else a maker that masks first.

        The maker is generated for this plan (see :mod:`governed_db.masking.rowmaker`):
        with only plain-text columns to scan, it runs one trigger pass over the
        row's texts and does nothing more unless that fires.
        """
        if not (self.mask_columns or self.groups):
            return make_row
        return compile_row_maker(self, make_row)

    # --- many rows -----------------------------------------------------------------------------

    def apply_rows(
        self, rows: Sequence[Sequence[Any]], *, owned: bool = False
    ) -> list[tuple[Any, ...]]:
        """Many rows at once, masked, as a list of tuples.

        The input is not changed, unless ``owned``: then ``rows`` (a list of tuples
        nobody else holds, as the driver loads them) is reused for the output.
        """
        out = rows if owned and type(rows) is list else list(map(tuple, rows))
        if not out or not (self.mask_columns or self.groups):
            return out
        for start in range(0, len(out), _CHUNK):
            self._apply_chunk(out, start, start + _CHUNK)
        return out

    def _apply_chunk(self, out: list[Any], start: int, end: int) -> None:
        """Mask ``out[start:end]`` in place, a column at a time.

        The chunk's new rows replace its old ones, which are freed (unless someone
        else holds them): the next chunk's new tuples come from the free list they
        went to, so a large fetch doesn't set off the cyclic garbage collector over
        and over (it would walk every young object, the masked columns included).
        """
        rows = out if start == 0 and end >= len(out) else out[start:end]
        n = len(rows)
        replaced: dict[int, list[Any]] = {}
        for col in self.mask_columns:
            i = col.index
            values = list(map(itemgetter(i), rows))
            try:
                new = many(col.mask)(values)  # type: ignore[arg-type]
            except Exception as exc:
                raise _failed(col, exc) from None
            replaced[i] = new
            masked = n - values.count(None)
            if masked:
                self._count(i, col.rule_id or "", col.method or "", masked)
                if self.memory is not None:
                    self.memory.update(new)
        patches: dict[int, dict[int, Any]] = {}
        for col in self._scanned:
            i = col.index
            values = list(map(itemgetter(i), rows))
            scanner = col.scanner
            try:
                if col.text_only:
                    found = scanner.scan_texts(values, trusted=True)  # type: ignore[union-attr]
                else:
                    found = scanner.scan_values(values)  # type: ignore[union-attr]
            except Exception as exc:
                raise _failed(col, exc) from None
            for r, f in found.items():
                patches.setdefault(start + r, {})[i] = f.value
                self._found(col, f)
        if replaced:  # the chunk's rows made anew in one pass
            columns = [
                replaced[i] if i in replaced else map(itemgetter(i), rows)
                for i in range(len(rows[0]))
            ]
            out[start:end] = zip(*columns, strict=True)
        for r, fix in patches.items():
            row = list(out[r])
            for i, v in fix.items():
                row[i] = v
            out[r] = tuple(row)
