"""A row maker generated for one plan: the per-row fast path, unrolled per column.

psycopg calls the row maker once per row, so every Python operation counts.
The generated function touches only the columns that need work, masks
whole-column values inline, runs one trigger pass over a row's plain-text
columns and scans nothing more unless it fires.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from governed_db.masking.methods import MaskingError

if TYPE_CHECKING:
    from governed_db.masking.apply import RowMasker

__all__ = ["compile_row_maker"]

RowMaker = Callable[[Sequence[Any]], Any]


_BUILDERS: dict[tuple[Any, ...], Callable[..., RowMaker]] = {}


def _shape(masker: RowMasker) -> tuple[Any, ...]:
    return (*masker.plan.shape, masker.memory is not None)


def _source(shape: tuple[Any, ...]) -> str:
    """A builder ``build(make_row, counts, fail, m0.., scan0.., fires0.., emit, trim, tick)``."""
    mask_idx, groups, remember = shape
    inner: list[str] = []
    for k, i in enumerate(mask_idx):
        inner += [
            f"v = values[{i}]",
            "if v is not None:",
            f"    at = {k}",
            f"    values[{i}] = v = m{k}(v)",
            f"    counts[{k}] += 1",
        ]
        if remember:
            inner.append("    emit(v)")
    to_list = [] if mask_idx else ["if type(values) is not list:", "    values = list(values)"]
    for g, (indices, text_only) in enumerate(groups):
        if text_only:
            picked = ", ".join(f"values[{i}]" for i in indices)
            inner += [f"if fires{g}(({picked},)):", *("    " + x for x in to_list)]
            inner.append(f"    scan{g}(values)")
        else:
            inner += [*to_list, f"scan{g}(values)"]
    if remember:
        inner += ["tick[0] += 1", "if not tick[0] & 4095:", "    trim()"]
    params = ["make_row", "counts", "fail", "MaskingError", "emit", "trim", "tick"]
    params += [f"m{k}" for k in range(len(mask_idx))]
    params += [f"scan{g}" for g in range(len(groups))]
    params += [f"fires{g}" for g in range(len(groups))]
    lines = [f"def build({', '.join(params)}):", "    def make(values):"]
    if mask_idx:  # rows come as tuples from psycopg's C loader
        lines += ["        if type(values) is not list:", "            values = list(values)"]
        lines += ["        at = -1", "        try:", *("            " + line for line in inner)]
        lines += ["        except MaskingError:", "            raise"]
        lines += ["        except Exception as exc:", "            raise fail(at, exc) from None"]
    else:
        lines += ["        " + line for line in inner]
    lines += ["        return make_row(values)", "    return make"]
    return "\n".join(lines)


def compile_row_maker(masker: RowMasker, make_row: RowMaker) -> RowMaker:
    """``make_row`` preceded by the masker's plan, as one generated function.

    The source is generated once per plan shape (which columns, which
    groups) and cached; each result only binds its own functions to it.
    """
    shape = _shape(masker)
    build = _BUILDERS.get(shape)
    if build is None:
        namespace: dict[str, Any] = {}
        exec(_source(shape), {"type": type, "list": list}, namespace)  # indices and names only
        build = namespace["build"]
        if len(_BUILDERS) >= 256:
            _BUILDERS.clear()
        _BUILDERS[shape] = build
    memory = masker.memory
    emit, trim = memory.emitter() if memory is not None else (None, None)
    args: dict[str, Any] = {
        "make_row": make_row,
        "counts": masker.mask_counts,
        "fail": masker.failure,
        "MaskingError": MaskingError,
        "emit": emit,
        "trim": trim,
        "tick": [0],
    }
    for k, col in enumerate(masker.mask_columns):
        args[f"m{k}"] = col.mask
    for g, (scanner, _, _) in enumerate(masker.groups):
        args[f"scan{g}"] = masker.group_scan(g)
        args[f"fires{g}"] = scanner.fires
    made: RowMaker = build(**args)
    return made
