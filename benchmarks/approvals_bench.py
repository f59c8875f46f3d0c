"""The cost of checking a granted approval: ``ApprovalGate.settle`` for a statement with a grant.

A request is made and granted (many uses, so every call finds it valid) and the
gate settles the same statement again and again: look the binding up in the
store, verify the Ed25519 signature of each decision against the policy's keys,
judge validity, and count one use atomically. Two figures per store: the check
alone (find + verify + judge) and the check plus the counted use (what a run
pays). File store: target ≤ 1 ms. PostgreSQL store: reported.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from benchmarks.report import Measurement
from governed_db import Identity, load_policy
from governed_db.approvals import judge, public_text, sign_decision
from governed_db.errors import ApprovalRequired
from governed_db.governor.approval_gate import ApprovalGate
from governed_db.policy import Context, decide
from governed_db.sql import analyze

QUERY = "delete from orders where id <= 11"


def _policy(directory: Path, store: dict[str, Any], key: Ed25519PrivateKey) -> Any:
    document = {
        "version": 1,
        "environments": {"prod": None},
        "approvals": {
            "store": store,
            "approvers": {"alice": {"key": public_text(key)}},
            "groups": {"dba": ["alice"]},
        },
        "guardrails": [
            {
                "id": "deletes-need-approval",
                "when": {"environment": "prod", "operation": "delete"},
                "action": "require_approval",
                "approval": {"group": "dba", "uses": 1_000_000_000, "expires": "1d"},
            }
        ],
    }
    path = directory / "policy.yaml"
    path.write_text(json.dumps(document))
    return load_policy(path)


def _median_us(call: Callable[[], Any], rounds: int, per_round: int) -> float:
    clock = time.perf_counter_ns
    medians = []
    for _ in range(rounds):
        t0 = clock()
        for _ in range(per_round):
            call()
        medians.append((clock() - t0) / per_round / 1000)
    return statistics.median(medians)


def _case(
    label: str, store: dict[str, Any], quick: bool, target_ms: float | None
) -> list[Measurement]:
    key = Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory(prefix="governed-db-approvals-bench-") as tmp:
        os.environ.setdefault(
            "GOVERNED_DB_APPROVALS_KEY", "YmVuY2htYXJrLWtleS1iZW5jaG1hcmsta2V5LWJlbmNo"
        )
        if store.get("type") == "file":
            store = {**store, "path": str(Path(tmp) / "store")}
        policy = _policy(Path(tmp), store, key)
        gate = ApprovalGate(policy)
        identity = Identity(kind="agent", name="bench")
        facts = analyze(QUERY)
        decision = decide(policy, facts, Context("prod", identity))
        try:
            gate.settle(identity, QUERY, None, facts, decision, 11)
        except ApprovalRequired as exc:
            approval_id = exc.approval_id
        assert approval_id is not None
        backend = gate.store()
        request = backend.get(approval_id)
        assert request is not None
        backend.add_decision(
            approval_id,
            sign_decision(
                key,
                approval_id=approval_id,
                request_digest=request.request.digest,
                decision="grant",
                approver="alice",
                reason="benchmark",
                max_rows=11,
                expires_at=int(time.time()) + 86400,
                uses=1_000_000_000,
            ),
        )
        rule = gate.rule(decision)

        def check() -> None:
            (stored,) = backend.find(request.request.binding)
            assert judge(stored, policy.approvals, rule, time.time()).state == "granted"

        def settle() -> None:
            gate.settle(identity, QUERY, None, facts, decision, 11)

        rounds, per_round = (5, 50) if quick else (15, 100)
        settle()
        check_us = _median_us(check, rounds, per_round)
        settle_us = _median_us(settle, rounds, per_round)
        backend.close()
    detail = f"median of {rounds} rounds × {per_round} calls; one signed grant"
    ok = None if target_ms is None else settle_us / 1000 <= target_ms
    target = "" if target_ms is None else f"≤ {target_ms:g} ms"
    return [
        Measurement(
            f"approvals: check a granted approval ({label})",
            round(check_us, 1),
            "µs",
            "",
            None,
            detail + " (find + verify + judge)",
        ),
        Measurement(
            f"approvals: check + count a use ({label})",
            round(settle_us, 1),
            "µs",
            target,
            ok,
            detail + " (ApprovalGate.settle)",
        ),
    ]


def measurements(quick: bool = False, dsn: str | None = None) -> list[Measurement]:
    """File store always; PostgreSQL store when ``dsn`` names a server."""
    out = _case("file store", {"type": "file"}, quick, 1.0)
    if dsn is not None:
        out += _case("postgres store", {"type": "postgres", "dsn": dsn}, quick, None)
    return out


if __name__ == "__main__":
    from governed_db.embedded_server import start_embedded_server

    server = start_embedded_server()
    try:
        for m in measurements(dsn=server.conninfo()):
            print(f"{m.name}: {m.value} {m.unit} {m.target} {m.detail}")
    finally:
        server.stop()
