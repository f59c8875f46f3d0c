"""Paired timing: raw psycopg and governed_db, alternated on every operation.

Noise on a small shared machine is the enemy, so: the server is pinned to one
core and this process to the other; the two sides alternate on every single
operation (which side goes first alternates too); the figure is the median of
per-operation times, and the paired ratio is the median over pairs of
governed/raw.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.report import Measurement

Operation = Callable[[], Any]


@dataclass(frozen=True, slots=True)
class Paired:
    """Medians of one paired case, and the process CPU each side used per operation."""

    name: str
    raw_median_us: float
    governed_median_us: float
    paired_ratio: float
    pairs: int
    raw_cpu_us: float = 0.0
    governed_cpu_us: float = 0.0

    @property
    def ratio_of_medians(self) -> float:
        return self.governed_median_us / self.raw_median_us


def pin(server_pid: int | None) -> str:
    """Pin the server (and its future backends) to core 0 and us to core 1."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2 or server_pid is None:
        return "not pinned (fewer than 2 cores)"
    try:
        import psutil

        server = psutil.Process(server_pid)
        for proc in [server, *server.children(recursive=True)]:
            proc.cpu_affinity([cores[0]])
        os.sched_setaffinity(0, {cores[1]})
    except Exception as exc:  # pinning is best effort; say so in the report
        return f"not pinned ({exc})"
    return f"server on core {cores[0]}, client on core {cores[1]}"


def cpu_per_op(op: Operation, count: int, drain: Callable[[], Any] | None = None) -> float:
    """Process CPU (all threads) per operation over a block of ``count``, in µs.

    ``drain`` (e.g. flushing an audit writer thread) runs inside the block, so
    work handed to background threads is counted too.
    """
    t0 = time.process_time_ns()
    for _ in range(count):
        op()
    if drain is not None:
        drain()
    return (time.process_time_ns() - t0) / count / 1000


def interleaved_cpu(
    ops: dict[str, Operation],
    count: int,
    rounds: int,
    drains: dict[str, Callable[[], Any]] | None = None,
) -> dict[str, float]:
    """Process CPU per operation of each side, best of ``rounds`` alternating blocks, in µs.

    Blocks of the sides alternate, so that load from other processes falls on
    all of them alike; the best block of each side is its least disturbed one.
    A side's drain (flushing its audit writer) runs inside its block.
    """
    best = dict.fromkeys(ops, float("inf"))
    drains = drains or {}
    for _ in range(rounds):
        for name, op in ops.items():
            drain = drains.get(name)
            if drain is not None:
                drain()
            best[name] = min(best[name], cpu_per_op(op, count, drain))
    return best


def paired(
    name: str,
    raw: Operation,
    governed: Operation,
    pairs: int,
    warmup: int,
    drain: Callable[[], Any] | None = None,
) -> Paired:
    """Time ``pairs`` alternating operations after ``warmup`` untimed ones.

    Then measure each side's CPU per operation in separate blocks (``drain``
    flushes the governed side's background work inside its block).
    """
    for _ in range(warmup):
        raw()
        governed()
    clock = time.perf_counter_ns
    raw_ns: list[int] = []
    gov_ns: list[int] = []
    for i in range(pairs):
        order = ((raw, raw_ns), (governed, gov_ns)) if i % 2 == 0 else (
            (governed, gov_ns),
            (raw, raw_ns),
        )
        for op, sink in order:
            t0 = clock()
            op()
            sink.append(clock() - t0)
    ratios = [g / r for g, r in zip(gov_ns, raw_ns, strict=True) if r > 0]
    if drain is not None:
        drain()
    block = max(pairs // 2, 2)
    return Paired(
        name=name,
        raw_median_us=statistics.median(raw_ns) / 1000,
        governed_median_us=statistics.median(gov_ns) / 1000,
        paired_ratio=statistics.median(ratios),
        pairs=pairs,
        raw_cpu_us=cpu_per_op(raw, block),
        governed_cpu_us=cpu_per_op(governed, block, drain),
    )


def to_measurement(result: Paired, target: float | None, label: str) -> Measurement:
    """A paired result as a table row, held to ``target`` (max ratio) if given."""
    detail = (
        f"raw {result.raw_median_us:.1f} µs, governed {result.governed_median_us:.1f} µs, "
        f"ratio of medians {result.ratio_of_medians:.3f}, {result.pairs} pairs; "
        f"CPU/op raw {result.raw_cpu_us:.1f} µs, governed {result.governed_cpu_us:.1f} µs"
    )
    return Measurement(
        name=f"{result.name} [{label}]",
        value=round(result.paired_ratio, 4),
        unit="× raw",
        target=f"≤ {target:.2f}" if target is not None else "",
        passed=None if target is None else result.paired_ratio <= target,
        detail=detail,
        cpu_raw=round(result.raw_cpu_us, 2),
        cpu_governed=round(result.governed_cpu_us, 2),
    )
