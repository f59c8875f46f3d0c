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


def compile_row_maker(masker: RowMasker, make_row: RowMaker) -> RowMaker:
    """``make_row`` preceded by the masker's plan, as one generated function."""
    env: dict[str, Any] = {
        "make_row": make_row,
        "counts": masker.mask_counts,
        "fail": masker.failure,
        "list": list,
        "type": type,
    }
    inner: list[str] = []
    memory = masker.memory
    if memory is not None:
        env["emit"], env["trim"] = memory.emitter()
        env["tick"] = [0]
    for k, col in enumerate(masker.mask_columns):
        env[f"m{k}"] = col.mask
        i = col.index
        inner += [
            f"v = values[{i}]",
            "if v is not None:",
            f"    at = {k}",
            f"    values[{i}] = v = m{k}(v)",
            f"    counts[{k}] += 1",
        ]
        if memory is not None:
            inner.append("    emit(v)")
    to_list = (
        [] if masker.mask_columns else ["if type(values) is not list:", "    values = list(values)"]
    )
    for g, (scanner, cols, text_only) in enumerate(masker.groups):
        env[f"scan{g}"] = masker.group_scan(g)
        if text_only:
            env[f"fires{g}"] = scanner.fires
            picked = ", ".join(f"values[{c.index}]" for c in cols)
            inner += [f"if fires{g}(({picked},)):", *("    " + x for x in to_list)]
            inner.append(f"    scan{g}(values)")
        else:
            inner += [*to_list, f"scan{g}(values)"]
    if memory is not None:
        inner += ["tick[0] += 1", "if not tick[0] & 4095:", "    trim()"]
    lines = ["def make(values):"]
    if masker.mask_columns:  # rows come as tuples from psycopg's C loader
        lines += ["    if type(values) is not list:", "        values = list(values)"]
        lines += ["    at = -1", "    try:", *("        " + line for line in inner)]
        lines += ["    except MaskingError:", "        raise", "    except Exception as exc:"]
        lines.append("        raise fail(at, exc) from None")
    else:
        lines += ["    " + line for line in inner]
    lines.append("    return make_row(values)")
    env["MaskingError"] = MaskingError
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), env, namespace)  # the source holds indices and names only
    made: RowMaker = namespace["make"]
    return made
