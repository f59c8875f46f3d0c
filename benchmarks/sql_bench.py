"""How long ``governed_db.sql.analyze`` takes: first sight (per backend) and a cached lookup.

Run directly (``python benchmarks/sql_bench.py``) or import ``measurements()``.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

from pglast import parser as _parser

from benchmarks.report import Measurement
from governed_db.sql import analyze, analyze_uncached, available_backends
from governed_db.sql.lineage_walk import lineage_of

JOIN_10 = """
SELECT o.id, c.name, p.title, s.name AS supplier, w.city, r.name AS region,
       pay.amount, sh.tracked_at, inv.number, cat.label
FROM orders o
JOIN customers c ON c.id = o.customer_id
JOIN order_lines l ON l.order_id = o.id
JOIN products p ON p.id = l.product_id
JOIN suppliers s ON s.id = p.supplier_id
JOIN warehouses w ON w.id = l.warehouse_id
JOIN regions r ON r.id = w.region_id
LEFT JOIN payments pay ON pay.order_id = o.id
LEFT JOIN shipments sh ON sh.order_id = o.id
LEFT JOIN invoices inv ON inv.order_id = o.id
JOIN categories cat ON cat.id = p.category_id
WHERE o.created_at >= now() - interval '30 days' AND c.country = 'DE' AND pay.status = 'paid'
ORDER BY o.created_at DESC
LIMIT 100
""".strip()

FIRST_SEEN_TARGET_MS = 0.5
LINEAGE_FIRST_SEEN_TARGET_MS = 1.0
LINEAGE_CACHED_TARGET_US = 2.0


def _median_ns(fn: Callable[[], object], repeat: int, warmup: int = 50) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(repeat):
        start = clock()
        fn()
        samples.append(clock() - start)
    return statistics.median(samples)


def measurements(repeat: int = 2000) -> list[Measurement]:
    """First-seen analysis of a 10-table join per backend, and a cached lookup."""
    out = []
    for backend in available_backends():
        ns = _median_ns(lambda b=backend: analyze_uncached(JOIN_10, b), repeat)  # type: ignore[misc]
        ms = ns / 1e6
        if backend == "pglast":
            out.append(
                Measurement(
                    name="sql.analyze first-seen, 10-table join (pglast)",
                    value=round(ms, 4),
                    unit="ms",
                    target=f"<= {FIRST_SEEN_TARGET_MS} ms",
                    passed=ms <= FIRST_SEEN_TARGET_MS,
                    detail=f"median of {repeat}, cache bypassed",
                )
            )
        else:
            out.append(
                Measurement(
                    name=f"sql.analyze first-seen, 10-table join ({backend})",
                    value=round(ms, 4),
                    unit="ms",
                    detail=f"median of {repeat}, cache bypassed; informational",
                )
            )
    out.extend(lineage_measurements(repeat))
    analyze(JOIN_10)
    ns = _median_ns(lambda: analyze(JOIN_10), repeat * 10)
    out.append(
        Measurement(
            name="sql.analyze cached lookup",
            value=round(ns / 1e3, 3),
            unit="us",
            detail=f"median of {repeat * 10}; informational (decision cache target is elsewhere)",
        )
    )
    return out


def lineage_measurements(repeat: int = 2000) -> list[Measurement]:
    """Lineage of the 10-table join on top of analysis (first seen), and once cached."""
    ((kind, body),) = json.loads(_parser.parse_sql_json(JOIN_10))["stmts"][0]["stmt"].items()
    ms = _median_ns(lambda: lineage_of(kind, body), repeat) / 1e6
    analyze(JOIN_10)
    us = _median_ns(lambda: analyze(JOIN_10).statements[0].lineage, repeat * 10) / 1e3
    return [
        Measurement(
            name="sql lineage first-seen, 10-table join (on top of analysis)",
            value=round(ms, 4),
            unit="ms",
            target=f"<= {LINEAGE_FIRST_SEEN_TARGET_MS} ms",
            passed=ms <= LINEAGE_FIRST_SEEN_TARGET_MS,
            detail=f"median of {repeat}; the tree walk alone (the parse is the analysis')",
        ),
        Measurement(
            name="sql lineage cached (analysis cache hit)",
            value=round(us, 3),
            unit="us",
            target=f"<= {LINEAGE_CACHED_TARGET_US} us",
            passed=us <= LINEAGE_CACHED_TARGET_US,
            detail=f"median of {repeat * 10}",
        ),
    ]


if __name__ == "__main__":
    for m in measurements():
        verdict = "" if m.passed is None else (" PASS" if m.passed else " FAIL")
        print(f"{m.name:55} {m.value:>9} {m.unit:3} {m.target}{verdict}  ({m.detail})")
