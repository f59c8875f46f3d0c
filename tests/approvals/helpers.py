"""Policies with approvers, keys in files, and decisions signed the way the CLI signs them."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import governed_db
from governed_db.approvals import (
    ApprovalStore,
    FileStore,
    PostgresStore,
    public_text,
    sign_decision,
)

TABLE_SQL = "create table orders (id int primary key, note text)"
DELETE = "delete from orders where id <= 11"


@dataclass
class Setup:
    """A policy file with approvers, their private keys, and its store."""

    home: Path
    policy_path: Path
    keys: dict[str, Ed25519PrivateKey]
    store_config: dict[str, Any] = field(default_factory=dict)

    @property
    def policy(self) -> governed_db.Policy:
        return governed_db.load_policy(self.policy_path)

    def store(self) -> ApprovalStore:
        if self.store_config.get("type") == "postgres":
            return PostgresStore(self.store_config["dsn"])
        return FileStore(self.store_config.get("path") or self.home / "approvals")

    def decide(
        self,
        approval_id: str,
        approver: str,
        decision: str = "grant",
        *,
        key: Ed25519PrivateKey | None = None,
        max_rows: int | None = None,
        expires_in: int = 3600,
        uses: int | None = None,
        break_glass: bool = False,
        reason: str = "looks right",
    ) -> None:
        """Sign a decision as ``approver`` (with ``key``, default theirs) and store it."""
        store = self.store()
        stored = store.get(approval_id)
        assert stored is not None, approval_id
        request = stored.request
        signed = sign_decision(
            key or self.keys[approver],
            approval_id=approval_id,
            request_digest=request.digest,
            decision=decision,
            approver=approver,
            reason=reason,
            max_rows=max_rows if max_rows is not None else request.estimated_rows,
            expires_at=int(time.time()) + expires_in if decision == "grant" else None,
            uses=uses if uses is not None else request.uses,
            break_glass=break_glass,
        )
        store.add_decision(approval_id, signed)
        store.close()


def approval_policy(
    home: Path,
    *,
    approval: Mapping[str, Any] | None = None,
    approvers: tuple[str, ...] = ("alice", "bob", "carol"),
    store: Mapping[str, Any] | None = None,
    emails: Mapping[str, str] | None = None,
    extra_rules: list[dict[str, Any]] | None = None,
    actors: Mapping[str, Any] | None = None,
    rule_environments: tuple[str, ...] = ("prod",),
) -> Setup:
    """Write a policy where DELETE/UPDATE on orders in prod needs approval by group dba."""
    keys = {name: Ed25519PrivateKey.generate() for name in approvers}
    entries: dict[str, Any] = {}
    for name, key in keys.items():
        entry: dict[str, Any] = {"key": public_text(key)}
        if emails and name in emails:
            entry["email"] = emails[name]
        entries[name] = entry
    rule: dict[str, Any] = {
        "id": "orders-writes-need-approval",
        "when": {
            "environments": list(rule_environments),
            "operations": ["delete", "update"],
            "tables": ["orders"],
        },
        "action": "require_approval",
        "message": "{operation} on {table} in prod needs an approval",
        "approval": {"group": "dba", **(approval or {})},
    }
    document: dict[str, Any] = {
        "version": 1,
        "environments": {"prod": None, "staging": None, "dev": None, "default": "dev"},
        "approvals": {
            "store": dict(store or {"type": "file", "path": str(home / "approvals")}),
            "approvers": entries,
            "groups": {"dba": list(approvers)},
        },
        "guardrails": [*(extra_rules or []), rule],
    }
    if actors:
        document["actors"] = dict(actors)
    path = home / "policy.yaml"
    path.write_text(json.dumps(document, indent=2))  # JSON is YAML
    return Setup(home, path, keys, dict(document["approvals"]["store"]))


def prod(dsn: str, setup: Setup, identity: str = "agent:claude", **kw: Any) -> Any:
    kw.setdefault("autocommit", True)
    return governed_db.connect(
        dsn,
        policy=setup.policy_path,
        environment=kw.pop("environment", "prod"),
        identity=identity,
        audit=kw.pop("audit", False),
        **kw,
    )


def count(dsn: str) -> int:
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute("select count(*) from orders").fetchone()
        return int(row[0]) if row else -1


def write_key(home: Path, name: str, key: Ed25519PrivateKey) -> Path:
    """Put ``name``'s private key where the CLI looks for it (``<home>/approvers/NAME.key``)."""
    import base64
    import os

    from cryptography.hazmat.primitives import serialization

    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    path = home / "approvers" / f"{name}.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(raw).decode())
    return path


def cli(home: Path, *args: str, stdin: Any = None) -> Any:
    """Run ``governed-db ARGS`` in a real subprocess with this test's home."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNED_DB_")}
    env["GOVERNED_DB_HOME"] = str(home)
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "governed_db.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
