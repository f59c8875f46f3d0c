"""Masking through the driver: 100k rows x 5 columns, fetched by governed_db and raw psycopg.

Issue 8's targets, paired in the same run (``python -m benchmarks``):

- nothing sensitive, no text columns, under the baseline: <= 1.05x raw;
- the baseline's detectors over 3 text columns of ordinary business text: <= 1.5x;
- 2 of 5 columns masked by provenance rules (email, last4): <= 1.3x;
- a 100k-row JSON column through the detectors: rows/s reported.

Each case is ``fetchall()`` and, separately, iteration (``for row in cur``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

import governed_db
from benchmarks import harness
from benchmarks.masking_bench import business_rows, json_rows
from benchmarks.report import Measurement

ROWS = 100_000

_POLICY = """
version: 1
guardrails: []
masking:
  rules:
    - id: bench-email
      columns: [bench_pii.email]
      method: email
    - id: bench-card
      columns: [bench_pii.card]
      method: last4
"""


def prepare(dsn: str) -> None:
    """Create and fill the four tables (COPY, so it takes seconds)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "drop table if exists bench_plain, bench_text, bench_pii, bench_json;"
            "create table bench_plain (id int, qty int, amount numeric, created date, ok bool);"
            "insert into bench_plain select g, g % 97, g * 1.5, date '2024-01-01' + g % 365,"
            " g % 2 = 0 from generate_series(1, 100000) g;"
            "create table bench_text (id int, customer text, address text, note text,"
            " total numeric);"
            "create table bench_pii (id int, email text, card text, created date, amount numeric);"
            "insert into bench_pii select g, 'person' || g || '@example.com',"
            " '4111' || lpad(g::text, 12, '0'), date '2024-01-01' + g % 365, g * 2.5"
            " from generate_series(1, 100000) g;"
            "create table bench_json (id int, doc jsonb)"
        )
        with conn.cursor().copy("copy bench_text from stdin") as copy:
            for row in business_rows(ROWS):
                copy.write_row(row)
        with conn.cursor().copy("copy bench_json (id, doc) from stdin") as copy:
            for ident, (doc,) in enumerate(json_rows(ROWS), 1):
                copy.write_row((ident, psycopg.types.json.Jsonb(doc)))
        conn.execute("vacuum analyze")


def _fetchall(sql: str) -> Callable[[Any], harness.Operation]:
    def make(conn: Any) -> harness.Operation:
        cur = conn.cursor()

        def op() -> Any:
            cur.execute(sql)
            return cur.fetchall()

        return op

    return make


def _iterate(sql: str) -> Callable[[Any], harness.Operation]:
    def make(conn: Any) -> harness.Operation:
        cur = conn.cursor()

        def op() -> Any:
            cur.execute(sql)
            return sum(1 for _ in cur)

        return op

    return make


def measurements(dsn: str, quick: bool) -> list[Measurement]:
    """The masking cases, paired against raw psycopg on ``dsn``."""
    policy = Path(tempfile.mkdtemp(prefix="governed-db-bench-")) / "masking.yaml"
    policy.write_text(_POLICY)
    pairs = 8 if quick else 20
    cases: list[tuple[str, str, Callable[[str], Any], float | None]] = [
        ("nothing sensitive, no text columns", "select * from bench_plain", _baseline, 1.05),
        ("detectors over 3 business-text columns", "select * from bench_text", _baseline, 1.5),
        (
            "2 of 5 masked by provenance rules (email, last4)",
            "select * from bench_pii",
            lambda d: governed_db.connect(d, policy=policy, audit=False),
            1.3,
        ),
        ("a JSON column through the detectors", "select * from bench_json", _baseline, None),
    ]
    out = []
    for label, sql, connect, target in cases:
        for how, make in (("fetchall", _fetchall(sql)), ("iteration", _iterate(sql))):
            with psycopg.connect(dsn) as raw, connect(dsn) as gov:
                result = harness.paired(
                    f"masking 100k x 5, {label}, {how}", make(raw), make(gov), pairs, 2
                )
            m = harness.to_measurement(result, target, "masking")
            if target is None:
                rate = ROWS / (result.governed_median_us / 1e6)
                m = Measurement(
                    m.name,
                    round(rate),
                    "rows/s",
                    "",
                    None,
                    f"{result.paired_ratio:.2f}x raw; " + m.detail,
                )
            out.append(m)
    return out


def _baseline(dsn: str) -> Any:
    return governed_db.connect(dsn, audit=False)
