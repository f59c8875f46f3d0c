"""Verifying big spools on every core: workers check lines, the verifier stitches runs.

Workers are forked, and only while the process has no other thread (else the
spool is verified in one process). A worker takes a chunk of a file (whole
lines) and does the per-line work — decoding, the canonical-form check, the
hash — and links consecutive records of one chain itself. It returns **runs**
(consecutive, well-formed, unsigned, ordinary records that continue each
other: chain, first seq and prev, last seq and hash, count) and, in between,
the lines it could not vouch for (bad, signed, genesis, checkpoint or close
records). The verifier applies a run in one step when it continues its
chain's state exactly as the one-record fast path would; anything else — a
run that does not continue its chain, and every line handed back — goes
through the ordinary checks, line by line. So the findings are those of the
serial verifier, in the same order.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orjson import loads as _loads

from governed_db.audit.records import RECORD_KINDS
from governed_db.audit.verify_lines import decode, noncanonical
from governed_db.audit.verify_report import VerifyReport

if TYPE_CHECKING:
    from governed_db.audit.verify import Verifier

__all__ = ["CHUNK", "PARALLEL_BYTES", "Run", "open_pool", "scan", "verify_file"]

#: Spools at least this big are verified by worker processes.
PARALLEL_BYTES = 48 << 20
#: Bytes of a file one worker checks at a time.
CHUNK = 8 << 20
#: Kinds a worker may check (unsigned, hash cut out of the line); others go to the verifier.
_PLAIN = RECORD_KINDS - {"genesis", "checkpoint", "close"}
_sha256 = hashlib.sha256


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive records of one chain a worker checked and linked."""

    chain: str
    first_seq: int
    first_prev: str
    last_seq: int
    last_hash: str
    count: int
    index: int  # the first line's index within the chunk
    start: int  # byte offsets of the run in the file
    end: int


Item = Run | tuple[int, bytes]


def open_pool(total_bytes: int) -> ProcessPoolExecutor | None:
    """A worker pool when the spool is big and there is more than one CPU, else None."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    method = _start_method()
    if total_bytes < PARALLEL_BYTES or (cpus or 1) < 2 or method is None:
        return None
    return ProcessPoolExecutor(max_workers=cpus, mp_context=multiprocessing.get_context(method))


def _start_method() -> str | None:
    """``fork`` while this process has no other thread, else None (verify in one process).

    fork is cheap and safe without other threads; spawn would re-run the
    caller's ``__main__`` in every worker, which an unguarded script must not see.
    """
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return None


def chunk_bounds(path: Path) -> tuple[list[tuple[int, int]], int]:
    """Byte ranges of whole lines, about CHUNK each; and where an incomplete last line starts."""
    size = path.stat().st_size
    bounds = []
    with open(path, "rb") as f:
        start = 0
        while start < size:
            f.seek(min(start + CHUNK, size) - 1)
            rest = f.read(1 << 20)
            while rest and b"\n" not in rest:
                more = f.read(1 << 20)
                if not more:
                    break
                rest += more
            cut = rest.find(b"\n")
            if cut < 0:
                break  # no newline up to the end: the rest is an incomplete line
            end = min(start + CHUNK, size) - 1 + cut + 1
            bounds.append((start, end))
            start = end
    return bounds, start


def scan(job: tuple[str, int, int]) -> tuple[list[Item], int]:
    """A worker's part: check the lines in ``[start, end)`` of a file; (items, line count)."""
    path, start, end = job
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    lines = data[:-1].split(b"\n")
    try:
        values: list[Any] = list(map(_loads, lines))
    except ValueError:
        values = [_decode(line) for line in lines]
    bad = set(noncanonical(lines, values))
    items: list[Item] = []
    run: list[Any] | None = None  # chain, first_seq, first_prev, last_seq, last_hash, n, i, start
    offset = start
    plain = _PLAIN
    for i, value in enumerate(values):
        line = lines[i]
        here = offset
        offset += len(line) + 1
        ok = False
        if (not bad or i not in bad) and type(value) is dict:  # (a signed line fails the hash)
            chain, seq, claimed = value.get("chain"), value.get("seq"), value.get("hash")
            prev, kind = value.get("prev"), value.get("kind")
            if (
                type(seq) is int
                and type(claimed) is str
                and type(kind) is str
                and type(chain) is str
                and type(prev) is str
                and kind in plain
            ):
                cut = line.find(b',"hash":"')
                digest = _sha256(line[:cut])
                digest.update(line[cut + 74 :])
                ok = cut >= 0 and digest.hexdigest() == claimed
        if not ok:
            if run is not None:
                items.append(_close(run, here))
                run = None
            items.append((i, line))
            continue
        if run is not None and run[0] == chain and run[3] + 1 == seq and run[4] == prev:
            run[3], run[4], run[5] = seq, claimed, run[5] + 1
            continue
        if run is not None:
            items.append(_close(run, here))
        run = [chain, seq, prev, seq, claimed, 1, i, here]
    if run is not None:
        items.append(_close(run, offset))
    return items, len(lines)


def _close(run: list[Any], end: int) -> Run:
    return Run(run[0], run[1], run[2], run[3], run[4], run[5], run[6], run[7], end)


def _decode(line: bytes) -> Any:
    try:
        return _loads(line)
    except ValueError:
        return decode(line)


def verify_file(
    verifier: Verifier,
    path: Path,
    report: VerifyReport,
    progress: Callable[[int], None] | None,
    pool: ProcessPoolExecutor,
) -> None:
    """Verify one file with the pool's workers, in line order (see the module docstring)."""
    name = path.name
    bounds, tail = chunk_bounds(path)
    jobs = [(str(path), start, end) for start, end in bounds]
    base = 1
    for (items, nlines), (start, end) in zip(_ordered(pool, jobs), bounds, strict=True):
        report.records += nlines
        for item in items:
            if isinstance(item, Run):
                if not _apply(item, report):
                    lines = _read(path, item.start, item.end)
                    verifier._lines(name, base + item.index, lines, report, count=False)
            else:
                index, line = item
                verifier._lines(name, base + index, [line], report, count=False)
        base += nlines
        if progress is not None:
            progress(end - start)
    size = path.stat().st_size
    if tail < size:
        if progress is not None:
            progress(size - tail)
        verifier._truncated_line(report, f"{name}:{base}")


def _ordered(
    pool: ProcessPoolExecutor, jobs: list[tuple[str, int, int]]
) -> Iterator[tuple[list[Item], int]]:
    """Results in job order, with at most twice the workers' count of jobs in flight."""
    ahead = 2 * (os.cpu_count() or 2)
    pending = [pool.submit(scan, job) for job in jobs[:ahead]]
    next_job = len(pending)
    while pending:
        future = pending.pop(0)
        if next_job < len(jobs):
            pending.append(pool.submit(scan, jobs[next_job]))
            next_job += 1
        yield future.result()


def _apply(run: Run, report: VerifyReport) -> bool:
    """Advance a chain past a run that continues it exactly; False if it does not."""
    chain = report.chains.get(run.chain)
    if (
        chain is None
        or run.first_seq != chain.expected
        or run.first_prev != chain.last_hash
        or chain.closed
        or chain.signing == "every"
    ):
        return False
    chain.records += run.count
    chain.expected = run.last_seq + 1
    chain.last_seq = run.last_seq
    chain.last_hash = run.last_hash
    return True


def _read(path: Path, start: int, end: int) -> list[bytes]:
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(end - start)[:-1].split(b"\n")
