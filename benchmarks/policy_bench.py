"""CPU-only policy figures: cached decision (target ≤ 5 µs), uncached decide, load.

``python -m benchmarks.policy_bench`` prints them; ``measurements()`` returns them
for ``python -m benchmarks``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.report import Measurement
from governed_db.identity import Identity
from governed_db.policy import Context, DecisionCache, decide, load_policy
from governed_db.sql import analyze

EXAMPLE = Path(__file__).parent.parent / "policies.example.yaml"
QUERY = "SELECT id, total FROM public.orders WHERE customer_id = %s ORDER BY id LIMIT 50"
MULTI = (
    "BEGIN; UPDATE orders SET paid = true WHERE id = 3; "
    "INSERT INTO audit_log VALUES (1, 'paid'); DELETE FROM carts WHERE id = 9; COMMIT"
)
CACHED_TARGET_US = 5.0


def _per_call_us(fn: Callable[[], object], batch: int, rounds: int) -> float:
    """Median over ``rounds`` of the mean cost of ``batch`` calls, in µs."""
    for _ in range(batch):  # warm up
        fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter_ns() - start) / batch / 1000)
    return statistics.median(samples)


def measurements(quick: bool = False) -> list[Measurement]:
    """Cached decision cost (held to ≤ 5 µs) plus informational figures."""
    rounds = 20 if quick else 200
    policy = load_policy(EXAMPLE)
    human = Identity("human", "bench", email="bench@example.com")
    cache = DecisionCache(policy)
    context = Context("prod", human)
    cache.decide(QUERY, analyze(QUERY), context)

    def cached() -> object:
        return cache.get(QUERY, Context("prod", human))

    hit = _per_call_us(cached, 1000, rounds)
    one = analyze(QUERY)
    many = analyze(MULTI)
    uncached_one = _per_call_us(lambda: decide(policy, one, context), 200, rounds)
    uncached_many = _per_call_us(lambda: decide(policy, many, context), 200, rounds)
    load_ms = _per_call_us(lambda: load_policy(EXAMPLE), 5, max(3, rounds // 20)) / 1000
    return [
        Measurement(
            name="policy: cached decision (Context + DecisionCache.get)",
            value=round(hit, 3),
            unit="µs",
            target=f"≤ {CACHED_TARGET_US:g} µs",
            passed=hit <= CACHED_TARGET_US,
            detail=f"median of {rounds} rounds × 1000 calls",
        ),
        Measurement(
            name="policy: uncached decide, 1 statement (example policy)",
            value=round(uncached_one, 2),
            unit="µs",
            detail=f"{len(policy.rules)} rules, facts already analyzed",
        ),
        Measurement(
            name="policy: uncached decide, 5 statements (example policy)",
            value=round(uncached_many, 2),
            unit="µs",
            detail="strictest of five per-statement decisions",
        ),
        Measurement(
            name="policy: load policies.example.yaml",
            value=round(load_ms, 3),
            unit="ms",
            detail="parse + validate; load once per process and reuse the Policy",
        ),
    ]


if __name__ == "__main__":  # pragma: no cover
    for m in measurements():
        ok = "" if m.passed is None else (" ok" if m.passed else " FAILED")
        print(f"{m.name}: {m.value:g} {m.unit} {m.target}{ok}")
