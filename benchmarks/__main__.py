"""``python -m benchmarks``: governed_db against raw psycopg, paired in one run.

Starts an embedded PostgreSQL, pins it to one core and this process to the
other, and times each case through raw psycopg and through governed_db,
alternating on every operation. Prints a rich table and writes
``benchmarks/results.json``. ``--quick`` runs fewer repetitions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

import governed_db
from benchmarks import db_cases, harness, hook_floor
from benchmarks.report import Measurement
from governed_db.embedded_server import start_embedded_server

RESULTS = Path(__file__).with_name("results.json")
EXAMPLE_POLICY = Path(__file__).parent.parent / "policies.example.yaml"
_SCRATCH = Path(tempfile.mkdtemp(prefix="governed-db-bench-"))
# Audit is on by default: the "defaults" side writes its spool, and makes its signing
# key, here rather than in the user's data and config directories.
os.environ["GOVERNED_DB_DATA_DIR"] = str(_SCRATCH / "data")
os.environ["GOVERNED_DB_HOME"] = str(_SCRATCH / "config")
os.environ.pop("GOVERNED_DB_SIGNING_KEY", None)
os.environ.pop("GOVERNED_DB_SIGNING_KEY_FILE", None)
os.environ.pop("GOVERNED_DB_POLICY", None)


@dataclass(frozen=True, slots=True)
class Side:
    """How the 'governed' side connects, and the ratio each case is held to."""

    label: str
    connect: Callable[[str], Any]
    targets: dict[str, float]
    null: bool = False


def _sides() -> list[Side]:
    every = {
        case.name: 1.05
        for case in db_cases.cases(quick=True)
        if case.name not in db_cases.INFORMATIONAL
    }
    return [
        Side("null: psycopg vs psycopg", psycopg.connect, {}, null=True),
        Side("floor: psycopg with pass-through hooks (no checks)", hook_floor.connect, {}),
        Side(
            "allow-all governor",
            lambda dsn: governed_db.connect(dsn, governor=governed_db.Governor()),
            every,
        ),
        Side(
            "baseline, audit off (the gate alone)",
            lambda dsn: governed_db.connect(dsn, audit=False),
            every,
        ),
        Side(
            "defaults: baseline + default audit",
            governed_db.connect,
            dict.fromkeys(every, 1.1),
        ),
        Side(
            "example policy, no audit",
            lambda dsn: governed_db.connect(dsn, policy=EXAMPLE_POLICY, audit=False),
            {"SELECT 1 round trip": 1.10},
        ),
        Side(
            "example policy + file sink (batch)",
            lambda dsn: governed_db.connect(dsn, policy=EXAMPLE_POLICY, audit=_audit_settings()),
            {"SELECT 1 round trip": 1.15},
        ),
    ]


def _audit_settings() -> dict[str, Any]:
    """The example policy's audit section, at ``durability: batch``, in a scratch directory."""
    settings = dict(governed_db.load_policy(EXAMPLE_POLICY).audit)
    settings.update(durability="batch", path=str(_SCRATCH / "audit.jsonl"), sinks=[])
    settings.pop("rotate", None)
    return settings


def _pure_measurements(quick: bool) -> list[Measurement]:
    """CPU-only figures from the rooms' own benchmark modules."""
    from benchmarks import audit_bench, gate_bench, policy_bench, sql_bench

    return [
        *sql_bench.measurements(repeat=500 if quick else 2000),
        *policy_bench.measurements(quick),
        *gate_bench.measurements(quick),
        *audit_bench.measurements(quick),
    ]


def _run_side(side: Side, dsn: str, quick: bool) -> list[Measurement]:
    out = []
    for case in db_cases.cases(quick):
        with psycopg.connect(dsn) as raw_conn, side.connect(dsn) as gov_conn:
            trail = getattr(getattr(gov_conn, "governor", None), "trail", None)
            result = harness.paired(
                case.name,
                case.make(raw_conn),
                case.make(gov_conn),
                case.pairs,
                case.warmup,
                drain=trail.flush if trail is not None else None,
            )
        if side.null:
            within = abs(result.paired_ratio - 1.0) <= 0.02
            out.append(
                Measurement(
                    name=f"{case.name} [{side.label}]",
                    value=round(result.paired_ratio, 4),
                    unit="× raw",
                    target="1.00 ± 0.02",
                    passed=within,
                    detail=harness.to_measurement(result, None, side.label).detail,
                    cpu_raw=round(result.raw_cpu_us, 2),
                    cpu_governed=round(result.governed_cpu_us, 2),
                )
            )
        else:
            out.append(harness.to_measurement(result, side.targets.get(case.name), side.label))
    return out


#: Cases that run one statement per operation: their audit CPU is held to ≤ 10 µs.
_ONE_STATEMENT = ("SELECT 1 round trip", "parameterised single-row select")


def _audit_cost(dsn: str, quick: bool) -> list[Measurement]:
    """Process CPU the default audit adds per statement: defaults minus audit off.

    Measured apart from the paired timing, in alternating blocks (best of 6),
    because a single block's CPU figure is at the mercy of other processes.
    """
    out = []
    for case in db_cases.cases(quick):
        if case.name not in _ONE_STATEMENT:
            continue
        with (
            governed_db.connect(dsn, audit=False) as off,
            governed_db.connect(dsn) as on,
        ):
            ops = {"off": case.make(off), "on": case.make(on)}
            for op in ops.values():
                for _ in range(case.warmup):
                    op()
            trail = getattr(on.governor, "trail", None)
            drains = {} if trail is None else {"on": trail.flush}
            best = harness.interleaved_cpu(ops, case.pairs // 2, 6, drains)
        cost = best["on"] - best["off"]
        out.append(
            Measurement(
                f"audit CPU per statement, {case.name} (defaults − audit off)",
                round(cost, 2),
                "µs",
                "≤ 10",
                cost <= 10.0,
                f"process CPU, all threads, best of 6 alternating blocks: {best['on']:.1f} µs "
                f"with default audit, {best['off']:.1f} µs off",
                cpu_raw=round(best["off"], 2),
                cpu_governed=round(best["on"], 2),
            )
        )
    return out


def _table(rows: Sequence[Measurement]) -> Table:
    table = Table(title="governed_db benchmarks (paired against raw psycopg, medians)")
    for column in ("case", "value", "target", "ok", "detail"):
        table.add_column(column, overflow="fold")
    for m in rows:
        ok = "" if m.passed is None else ("[green]yes[/]" if m.passed else "[red]NO[/]")
        table.add_row(m.name, f"{m.value:g} {m.unit}", m.target, ok, m.detail)
    return table


def main(argv: Sequence[str] | None = None) -> int:
    """Run every case; exit 0 (figures are reported, not asserted)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    console = Console(width=150)
    server = start_embedded_server()
    pinning = harness.pin(server.pid)
    console.print(f"[dim]{pinning}[/]")
    rows: list[Measurement] = []
    try:
        dsn = server.conninfo()
        db_cases.prepare(dsn)
        for side in _sides():
            with console.status(f"timing: {side.label}"):
                rows.extend(_run_side(side, dsn, args.quick))
        with console.status("timing: audit CPU per statement"):
            rows.extend(_audit_cost(dsn, args.quick))
        from benchmarks import approvals_bench, masking_cases

        with console.status("timing: masking through the driver"):
            masking_cases.prepare(dsn)
            rows.extend(masking_cases.measurements(dsn, args.quick))

        with console.status("timing: approvals"):
            rows.extend(approvals_bench.measurements(args.quick, dsn))
    finally:
        server.stop()
    rows.extend(_pure_measurements(args.quick))
    console.print(_table(rows))
    args.output.write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "machine": platform.platform(),
                "python": platform.python_version(),
                "psycopg": psycopg.__version__,
                "pinning": pinning,
                "quick": args.quick,
                "results": [m.as_json() for m in rows],
            },
            indent=2,
        )
        + "\n"
    )
    console.print(f"[dim]wrote {args.output}[/]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
