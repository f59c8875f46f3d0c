"""The gate's own cost for a repeated statement: ``PolicyGovernor.admit`` + ``settle``."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from benchmarks.report import Measurement
from governed_db import Identity, PolicyGovernor, Session, load_policy

EXAMPLE = Path(__file__).parent.parent / "policies.example.yaml"
QUERY = "select id, name, email from customers where id = %s"


def measurements(quick: bool = False) -> list[Measurement]:
    """Median cost of admitting (and settling) a statement whose decision is cached."""
    gate = PolicyGovernor(load_policy(EXAMPLE), identity=Identity(kind="agent", name="bench"))
    session = gate.open_session(Session("bench", {"host": "localhost", "dbname": "shop"}))
    params = (42,)
    gate.admit(session, "execute", QUERY, params, None)  # first sight: analyze + decide
    rounds, per_round = (20, 2000) if quick else (50, 5000)
    clock = time.perf_counter_ns
    medians = []
    for _ in range(rounds):
        t0 = clock()
        for _ in range(per_round):
            ticket = gate.admit(session, "execute", QUERY, params, None)
            gate.settle(ticket, 1, None)
        medians.append((clock() - t0) / per_round / 1000)
    value = statistics.median(medians)
    return [
        Measurement(
            name="gate: cached decision (PolicyGovernor.admit + settle, example policy)",
            value=round(value, 3),
            unit="µs",
            target="≤ 5 µs",
            passed=value <= 5.0,
            detail=f"median of {rounds} rounds × {per_round} calls, audit off",
        )
    ]
