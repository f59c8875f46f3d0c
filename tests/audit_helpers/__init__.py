"""Shared bits for the audit tests: a trail factory, verification and a CLI runner."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from governed_db.audit import (
    AuditSession,
    AuditSink,
    AuditTrail,
    PublicKeys,
    Signer,
    Verifier,
    VerifyReport,
    spool_files,
)
from governed_db.cli import audit_cmd, keys_cmd

CONN = {
    "host": "db.internal",
    "port": 5432,
    "dbname": "app",
    "user": "app_rw",
    "application_name": "tests",
}
IDENTITY = {"user": "alice", "kind": "human"}
FACTS = {
    "operation": "update",
    "tables_read": ["public.orders"],
    "tables_written": ["public.orders"],
    "statement_class": "write",
    "text": "UPDATE orders SET note = 'secret' WHERE id = 1",
}
ALLOW = {"action": "allow", "rule_id": "default"}


def trail(
    path: Path | None, signer: Signer, code_sinks: Sequence[AuditSink] = (), **settings: Any
) -> AuditTrail:
    """A trail on ``path`` (None: memory only) with ``signer``; ``settings`` as in YAML."""
    values: dict[str, Any] = dict(settings)
    if path is not None:
        values["path"] = str(path)
    return AuditTrail.from_settings(values, sinks=code_sinks, signer=signer)


def session(t: AuditTrail) -> AuditSession:
    """A session with the stock identity."""
    return t.session(CONN, IDENTITY, "test")


def workload(t: AuditTrail, s: AuditSession, n: int, tag: str = "") -> None:
    """``n`` intent+outcome pairs."""
    for i in range(n):
        ref = t.intent(
            s,
            f"UPDATE orders SET note = 'x{tag}{i}' WHERE id = {i}",
            normalized="UPDATE orders SET note = $1 WHERE id = $2",
            facts=FACTS,
            decision=ALLOW,
        )
        t.outcome(ref, rowcount=1, rows_returned=0, duration_ms=0.25)


def verify(
    path: Path, *signers: Signer, partial: bool = False, allow_unsigned: bool = False
) -> VerifyReport:
    """Verify a spool (file or directory) with the signers' public keys."""
    keys = PublicKeys(s.public_key for s in signers)
    return Verifier(keys, partial=partial, allow_unsigned=allow_unsigned).verify(spool_files(path))


def kinds(report: VerifyReport) -> set[tuple[str, int | None]]:
    """(kind, seq) of every error."""
    return {(p.kind, p.seq) for p in report.errors}


def cli(argv: Sequence[str]) -> int:
    """Run ``governed-db audit|keys ...`` through the modules' own ``register``."""
    parser = argparse.ArgumentParser(prog="governed-db")
    sub = parser.add_subparsers(dest="command", required=True)
    audit_cmd.register(sub)
    keys_cmd.register(sub)
    args = parser.parse_args(list(argv))
    code: int = args.func(args)
    return code


def lines(path: Path) -> list[bytes]:
    """All lines of the single segment in a spool directory."""
    files = spool_files(path)
    assert len(files) == 1, files
    return files[0].read_bytes().splitlines(keepends=True)


def only_file(path: Path) -> Path:
    """The single segment file of a spool directory."""
    files = spool_files(path)
    assert len(files) == 1, files
    return files[0]


def by_seq(records: Sequence[Mapping[str, Any]]) -> dict[int, Mapping[str, Any]]:
    """Records keyed by seq."""
    return {int(r["seq"]): r for r in records}
