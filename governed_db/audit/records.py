"""Record values and the builders that turn the gate's plain values into record fields.

Field names follow the OpenTelemetry database semantic conventions where one
exists (``db.system``, ``db.namespace``, ``db.query.text``,
``db.operation.name``, ``db.collection.name``, ``db.response.status_code``,
``db.response.returned_rows``, ``server.address``, ``server.port``,
``deployment.environment.name``, ``session.id``); the rest are plain names.
docs/audit.md holds the full schema.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from governed_db.audit.canonical import canonical_json, jsonable

__all__ = ["AuditRecord", "AuditSession", "IntentRef"]

SCHEMA_VERSION = 1

# Facts keys copied into records. Anything else (notably the statement text the
# analyzer keeps) is left out, so redaction can't be undone through the facts.
_FACT_KEYS = (
    "statement_class",
    "statement_count",
    "functions",
    "opaque",
    "fingerprint",
    "backend",
    "has_where",
    "where_is_trivial",
    "has_limit",
)
_DECISION_KEYS = ("action", "would_be", "rule_id", "approval_id", "reason", "hint")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One sealed record: its fields and the exact canonical bytes on disk (no newline)."""

    data: Mapping[str, Any]
    line: bytes

    @classmethod
    def parse(cls, line: bytes) -> AuditRecord:
        """A record from one spool line (raises ValueError if not a JSON object)."""
        line = line.rstrip(b"\r\n")
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return cls(data, line)

    @property
    def hash(self) -> str:
        """The record's SHA-256; also its id and idempotency key."""
        return str(self.data["hash"])

    @property
    def kind(self) -> str:
        """genesis, session, intent, outcome, refused, end, checkpoint or close."""
        return str(self.data["kind"])

    @property
    def seq(self) -> int:
        """Position in its chain (genesis is 0)."""
        return int(self.data["seq"])

    @property
    def chain(self) -> str:
        """The chain id."""
        return str(self.data["chain"])


@dataclass(frozen=True, slots=True)
class AuditSession:
    """Who connected, where: returned by ``AuditTrail.session`` and passed back to it."""

    id: str
    fields: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class IntentRef:
    """Points an outcome at its intent record."""

    session_id: str
    seq: int
    hash: str
    chain: str


def connection_fields(conn_info: Mapping[str, Any]) -> dict[str, Any]:
    """libpq-style connection parameters -> record fields."""
    out: dict[str, Any] = {"db.system": "postgresql"}
    names = {
        "host": "server.address",
        "port": "server.port",
        "dbname": "db.namespace",
        "user": "db.user",
        "application_name": "application_name",
    }
    for src, dst in names.items():
        value = conn_info.get(src)
        if value in (None, ""):
            continue
        if src == "port":
            with contextlib.suppress(TypeError, ValueError):
                value = int(value)
        out[dst] = jsonable(value)
    return out


def facts_fields(facts: Mapping[str, Any] | None) -> dict[str, Any]:
    """The analyzer's Facts (as a mapping) -> record fields."""
    if not facts:
        return {}
    out: dict[str, Any] = {}
    if facts.get("operation"):
        out["db.operation.name"] = str(facts["operation"])
    read = sorted({str(t) for t in facts.get("tables_read") or ()})
    written = sorted({str(t) for t in facts.get("tables_written") or ()})
    out["tables_read"] = read
    out["tables_written"] = written
    tables = set(read) | set(written)
    if len(tables) == 1:
        out["db.collection.name"] = next(iter(tables))
    extra = {k: jsonable(facts[k]) for k in _FACT_KEYS if facts.get(k) is not None}
    if extra:
        out["facts"] = extra
    return out


def decision_fields(decision: Mapping[str, Any]) -> dict[str, Any]:
    """The policy Decision (as a mapping) -> ``{"decision": {...}}``."""
    if not decision.get("action"):
        raise ValueError("decision needs an 'action' (allow, block, approve, observe)")
    return {
        "decision": {
            k: jsonable(decision[k]) for k in _DECISION_KEYS if decision.get(k) is not None
        }
    }


def statement_fields(
    statement: str,
    normalized: str | None,
    params: Any,
    *,
    redact: bool,
    parameters: str,
    param_key: bytes,
) -> dict[str, Any]:
    """The statement text (or its literal-free form) and, if asked, the parameters."""
    out: dict[str, Any] = {}
    if redact:
        out["db.query.text"] = normalized if normalized is not None else None
        out["query_redacted"] = True
    else:
        out["db.query.text"] = statement
    if params is not None and parameters == "hash":
        digest = hmac.new(param_key, canonical_json(jsonable(params)), hashlib.sha256)
        out["parameters_hmac"] = digest.hexdigest()
    elif params is not None and parameters == "plain":
        out["parameters"] = jsonable(params)
    return out


def statement_body(
    kind: str,
    session: AuditSession,
    statement: str,
    normalized: str | None,
    params: Any,
    facts: Mapping[str, Any] | None,
    decision: Mapping[str, Any],
    *,
    redact: bool,
    parameters: str,
    param_key: bytes,
) -> dict[str, Any]:
    """The fields of an intent or refused record."""
    return {
        "kind": kind,
        "session.id": session.id,
        **session.fields,
        **statement_fields(
            statement,
            normalized,
            params,
            redact=redact,
            parameters=parameters,
            param_key=param_key,
        ),
        **facts_fields(facts),
        **decision_fields(decision),
    }


def _software() -> str:
    try:
        from importlib.metadata import version

        return f"governed-db {version('governed-db')}"
    except Exception:  # pragma: no cover - not installed as a distribution
        return "governed-db"


def genesis_fields(signing: str, checkpoint_every: int, durability: str) -> dict[str, Any]:
    """The fields of the record that starts a chain."""
    return {
        "kind": "genesis",
        "signing": signing,
        "checkpoint_every": checkpoint_every if signing == "checkpoint" else None,
        "durability": durability,
        "host.name": socket.gethostname(),
        "process.pid": os.getpid(),
        "software": _software(),
    }


def outcome_fields(
    ref: IntentRef,
    *,
    rowcount: int | None,
    rows_returned: int | None,
    duration_ms: float | None,
    sqlstate: str | None,
    error: str | None,
    masking: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The fields of an outcome record."""
    return {
        "kind": "outcome",
        "session.id": ref.session_id,
        "intent": ref.hash,
        "intent_seq": ref.seq,
        "rowcount": rowcount if rowcount is None or rowcount >= 0 else None,
        "db.response.returned_rows": rows_returned,
        "duration_us": None if duration_ms is None else round(duration_ms * 1000),
        "db.response.status_code": sqlstate,
        "error.type": error,
        "masking": jsonable(masking) if masking is not None else None,
    }
