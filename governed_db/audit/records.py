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
import copy
import hashlib
import hmac
import json
import os
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from governed_db.audit.canonical import canonical_json, fragments, jsonable

__all__ = ["RECORD_KINDS", "AuditRecord", "AuditSession", "IntentRef", "Prepared"]

SCHEMA_VERSION = 1

#: Every kind of record a chain holds (docs/audit.md describes each); any other is tampering.
RECORD_KINDS = frozenset(
    {
        "genesis",
        "session",
        "intent",
        "outcome",
        "masked",
        "refused",
        "end",
        "approval",
        "checkpoint",
        "close",
    }
)

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
        """One of ``RECORD_KINDS``: genesis, session, intent, outcome, masked, refused, ..."""
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
    #: ``session.id`` and ``fields`` pre-encoded (None: a key the fast encoder can't take).
    frags: tuple[str, ...] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "frags", fragments({"session.id": self.id, **self.fields}))


@dataclass(frozen=True, slots=True)
class Prepared:
    """The converted facts + decision part of intent/refused records (``AuditTrail.prepare``).

    Immutable and reusable: make one per distinct statement plan and pass it as
    ``prepared=`` instead of ``facts=``/``decision=``.
    """

    fields: Mapping[str, Any]
    frags: tuple[str, ...] | None = field(repr=False, compare=False)


def prepare(facts: Mapping[str, Any] | None, decision: Mapping[str, Any]) -> Prepared:
    """A :class:`Prepared` from the analyzer's facts and the policy decision (as mappings)."""
    fields = {**facts_fields(facts), **decision_fields(decision)}
    return Prepared(MappingProxyType(fields), fragments(fields))


class IntentRef:
    """Points an outcome (and masked records) at its intent record.

    With a background writer (``durability: batch``/``none``) the record's
    ``seq`` and ``hash`` are assigned when it is written: reading them before
    then waits for the writer. ``seq == -1`` and ``hash == ""`` mean the
    intent record was lost. ``outcome()`` needs neither: the writer fills
    the outcome's ``intent``/``intent_seq`` in chain order.
    """

    __slots__ = ("_hash", "_seq", "_wait", "chain", "session_id")

    def __init__(
        self,
        session_id: str,
        seq: int = -1,
        hash: str | None = "",
        chain: str = "",
        *,
        wait: Callable[[IntentRef], None] | None = None,
    ) -> None:
        self.session_id = session_id
        self.chain = chain
        self._seq = seq
        self._hash = hash  # None: not written yet
        self._wait = wait

    def resolve(self, seq: int, digest: str) -> None:
        """Set by the writer once the intent record is written (``-1, ""``: lost)."""
        self._seq = seq
        self._hash = digest

    @property
    def written(self) -> bool:
        """False while the record waits in the writer's queue."""
        return self._hash is not None

    @property
    def seq(self) -> int:
        """The intent record's seq (-1 if lost); waits for the writer if need be."""
        if self._hash is None and self._wait is not None:
            self._wait(self)
        return self._seq

    @property
    def hash(self) -> str:
        """The intent record's hash ("" if lost); waits for the writer if need be."""
        if self._hash is None and self._wait is not None:
            self._wait(self)
        return self._hash or ""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IntentRef):
            return NotImplemented
        return (self.session_id, self.seq, self.hash, self.chain) == (
            other.session_id,
            other.seq,
            other.hash,
            other.chain,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        state = f"seq={self._seq}" if self._hash is not None else "pending"
        return f"IntentRef(session_id={self.session_id!r}, {state}, chain={self.chain!r})"


#: One count of a ``masked`` record: (column, source or None, rule id, method, values).
MaskedCount = tuple[str, str | None, str, str, int]


def masked_counts(counts: Iterable[Sequence[Any]]) -> tuple[MaskedCount, ...]:
    """Check the counts of a ``masked`` record: names and a number, never a value.

    Each is ``(column, source, rule_id, method, values)`` (a masking ``MaskCount``
    fits): strings, ``source`` None for a computed column, ``values`` an int >= 0.
    Raises TypeError otherwise.
    """
    out = []
    for count in counts:
        if len(count) != 5:
            raise TypeError(
                "a masked count is (column, source, rule_id, method, values), "
                f"not {len(count)} items"
            )
        column, source, rule_id, method, values = count
        if (
            type(column) is not str
            or (source is not None and type(source) is not str)
            or type(rule_id) is not str
            or type(method) is not str
            or type(values) is not int
            or values < 0
        ):
            raise TypeError(
                "a masked count is (column: str, source: str | None, rule_id: str, method: "
                f"str, values: int >= 0), got types {[type(v).__name__ for v in count]}"
            )
        out.append((column, source, rule_id, method, values))
    return tuple(out)


def masked_fields(counts: Iterable[MaskedCount]) -> list[dict[str, Any]]:
    """The ``counts`` member of a ``masked`` record."""
    return [
        {
            "column": jsonable(column),
            "source": jsonable(source) if source is not None else "computed",
            "rule": jsonable(rule_id),
            "method": jsonable(method),
            "values": values,
        }
        for column, source, rule_id, method, values in counts
    ]


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


def parameter_fields(params: Any, mode: str, key: bytes) -> dict[str, Any] | None:
    """``parameters_hmac`` (mode ``hash``: HMAC-SHA256 under ``key``) or ``parameters``."""
    if mode == "hash":
        digest = hmac.new(key, canonical_json(jsonable(params)), hashlib.sha256)
        return {"parameters_hmac": digest.hexdigest()}
    if mode == "plain":
        return {"parameters": jsonable(params)}
    return None


class PreparedCache:
    """``prepare`` for callers that pass the same, unchanged mappings again and again.

    Keyed by the mappings' identity and checked against a deep copy, so a
    mapping changed in place is converted afresh, never served stale.
    """

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[tuple[int, int], tuple[Any, Any, Any, Any, Prepared]] = {}

    def get(self, facts: Mapping[str, Any] | None, decision: Mapping[str, Any] | None) -> Prepared:
        """The Prepared for these mappings (TypeError without a decision)."""
        if decision is None:
            raise TypeError("intent()/refused() need decision= (or prepared=)")
        key = (id(facts), id(decision))
        hit = self._entries.get(key)
        if (
            hit is not None
            and hit[0] is facts
            and hit[1] is decision
            and hit[2] == facts
            and hit[3] == decision
        ):
            return hit[4]
        prepared = prepare(facts, decision)
        try:
            snapshot = (copy.deepcopy(facts), copy.deepcopy(decision))
        except Exception:  # not copyable: don't cache
            return prepared
        if len(self._entries) >= 1024:
            self._entries.clear()
        self._entries[key] = (facts, decision, *snapshot, prepared)
        return prepared


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
