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

from governed_db.masking.methods import MaskingError
from governed_db.masking.scan import Found, Scanner

if TYPE_CHECKING:
    from governed_db.masking.memory import MaskedValues
    from governed_db.masking.plan import ColumnPlan, MaskPlan

__all__ = ["MaskCount", "RowMasker"]

RowMaker = Callable[[Sequence[Any]], Any]


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


class RowMasker:
    """Masks the rows of one result according to a :class:`MaskPlan`."""

    __slots__ = ("_counts", "_groups", "_mask", "_memory", "_scan", "plan")

    def __init__(self, plan: MaskPlan, memory: MaskedValues | None = None) -> None:
        self.plan = plan
        self._memory = memory
        self._mask = [c for c in plan.columns if c.action == "mask"]
        self._scan = [c for c in plan.columns if c.action == "scan"]
        self._counts: dict[tuple[int, str, str], int] = {}
        groups: dict[tuple[int, bool], tuple[Scanner, list[ColumnPlan], bool]] = {}
        for col in self._scan:
            assert col.scanner is not None
            key = (id(col.scanner), col.text_only)
            groups.setdefault(key, (col.scanner, [], col.text_only))[1].append(col)
        self._groups = list(groups.values())

    # --- counting and remembering ------------------------------------------------------------

    def _count(self, index: int, rule_id: str, method: str, n: int) -> None:
        key = (index, rule_id, method)
        self._counts[key] = self._counts.get(key, 0) + n

    def _found(self, col: ColumnPlan, found: Found) -> None:
        for rule_id, method in found.hits:
            self._count(col.index, rule_id, method, 1)
        if self._memory is not None:
            self._memory.add(found.value)
            self._memory.add_fragments(found.fragments)

    def counts(self) -> list[MaskCount]:
        """What was masked so far, per (column, rule, method)."""
        cols = self.plan.columns
        return [
            MaskCount(cols[i].column.name, cols[i].column.source, rule_id, method, n)
            for (i, rule_id, method), n in sorted(self._counts.items())
        ]

    # --- one row -------------------------------------------------------------------------------

    def apply(self, values: Sequence[Any]) -> tuple[Any, ...]:
        """One row (any sequence), masked, as a tuple."""
        return tuple(self.apply_list(list(values)))

    def apply_list(self, row: list[Any]) -> list[Any]:
        """Mask ``row`` in place and return it."""
        memory = self._memory
        for col in self._mask:
            i = col.index
            v = row[i]
            if v is None:
                continue
            try:
                row[i] = new = col.mask(v)  # type: ignore[misc]
            except Exception as exc:
                raise _failed(col, exc) from None
            self._count(i, col.rule_id or "", col.method or "", 1)
            if memory is not None:
                memory.add(new)
        for scanner, cols, text_only in self._groups:
            values = [row[c.index] for c in cols]
            try:
                if text_only:
                    found = scanner.scan_texts(values, trusted=True)
                else:
                    found = scanner.scan_values(values)
            except MaskingError as exc:
                raise exc.at(", ".join(c.column.name for c in cols)) from None
            for k, f in found.items():
                col = cols[k]
                row[col.index] = f.value
                self._found(col, f)
        return row

    def wrap(self, make_row: RowMaker) -> RowMaker:
        """``make_row`` itself when nothing needs masking, else a maker that masks first.

        When the only work is scanning plain-text columns (the baseline on
        ordinary tables) the maker runs one trigger pass over the row's texts
        and does nothing more unless it fires.
        """
        if not (self._mask or self._scan):
            return make_row
        apply_list = self.apply_list
        if not self._mask and len(self._groups) == 1 and self._groups[0][2]:
            scanner, cols, _ = self._groups[0]
            fires = scanner.fires
            pick: Callable[[Sequence[Any]], Any]
            if len(cols) == 1:
                index = cols[0].index

                def pick(values: Sequence[Any]) -> tuple[Any, ...]:
                    return (values[index],)

            else:
                pick = itemgetter(*(c.index for c in cols))

            def make_scanned(values: Sequence[Any]) -> Any:
                if fires(pick(values)):
                    values = apply_list(values if type(values) is list else list(values))
                return make_row(values)

            return make_scanned

        def make(values: Sequence[Any]) -> Any:
            return make_row(apply_list(values if type(values) is list else list(values)))

        return make

    # --- many rows -----------------------------------------------------------------------------

    def apply_rows(self, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """Many rows at once, masked, as a list of tuples (the input is not changed)."""
        out = list(map(tuple, rows))
        if not out or not (self._mask or self._scan):
            return out
        n = len(out)
        replaced: dict[int, list[Any]] = {}
        for col in self._mask:
            i = col.index
            values = list(map(itemgetter(i), out))
            try:
                new = list(map(col.mask, values))  # type: ignore[arg-type]
            except Exception as exc:
                raise _failed(col, exc) from None
            replaced[i] = new
            masked = n - values.count(None)
            if masked:
                self._count(i, col.rule_id or "", col.method or "", masked)
                if self._memory is not None:
                    self._memory.update(new)
        patches: dict[int, dict[int, Any]] = {}
        for col in self._scan:
            i = col.index
            values = list(map(itemgetter(i), out))
            scanner = col.scanner
            try:
                if col.text_only:
                    found = scanner.scan_texts(values, trusted=True)  # type: ignore[union-attr]
                else:
                    found = scanner.scan_values(values)  # type: ignore[union-attr]
            except Exception as exc:
                raise _failed(col, exc) from None
            for r, f in found.items():
                patches.setdefault(r, {})[i] = f.value
                self._found(col, f)
        if replaced:
            columns = [replaced.get(i) or list(map(itemgetter(i), out)) for i in range(len(out[0]))]
            out = list(zip(*columns, strict=True))
        for r, fix in patches.items():
            row = list(out[r])
            for i, v in fix.items():
                row[i] = v
            out[r] = tuple(row)
        return out
