"""What ``verify`` found: problems, a summary per chain, and the report as JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from governed_db.audit.canonical import GENESIS_PREV

__all__ = ["STRICT_KINDS", "ChainSummary", "Problem", "VerifyReport"]

#: Warnings that ``--strict`` turns into failures: things no signature of the
#: chain's own writer vouches for, or a result nothing outside the spool anchors.
STRICT_KINDS = frozenset({"recovered", "unsigned-tail", "unanchored", "unwitnessed"})


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding. ``severity`` is error (tampered), warning or info."""

    severity: str
    kind: str
    message: str
    chain: str | None = None
    seq: int | None = None
    where: str = ""

    def as_json(self) -> dict[str, Any]:
        """The problem as a JSON object."""
        return {
            "severity": self.severity,
            "kind": self.kind,
            "message": self.message,
            "chain": self.chain,
            "seq": self.seq,
            "where": self.where or None,
        }


@dataclass(slots=True)
class ChainSummary:
    """What verify learned about one chain."""

    id: str
    records: int = 0
    first_seq: int | None = None
    last_seq: int = -1
    signing: str | None = None
    signed_through: int = -1
    closed: bool = False
    recovered_by: str | None = None
    #: records after the writer's last signature that only a recovery close vouches for
    unvouched: int = 0
    started: str | None = None  # the genesis record's ts
    kids: set[str] = field(default_factory=set)
    unknown_kids: set[str] = field(default_factory=set)
    # internal state
    expected: int = 0
    last_hash: str = GENESIS_PREV
    last_where: str = ""
    gaps: list[tuple[int, int, str]] = field(default_factory=list)
    genesis_trusted: bool = False
    seen_heads: list[tuple[str, int, str]] = field(default_factory=list)
    hashes: dict[int, str] = field(default_factory=dict)  # seqs a witness asked about

    def as_json(self) -> dict[str, Any]:
        """The chain summary as a JSON object."""
        return {
            "id": self.id,
            "records": self.records,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "signing": self.signing,
            "signed_through": self.signed_through,
            "closed": self.closed,
            "recovered_by": self.recovered_by,
            "unvouched_records": self.unvouched,
            "started": self.started,
            "kids": sorted(self.kids),
        }


@dataclass(slots=True)
class VerifyReport:
    """The outcome: problems found and a summary of each chain."""

    problems: list[Problem] = field(default_factory=list)
    chains: dict[str, ChainSummary] = field(default_factory=dict)
    records: int = 0
    files: int = 0
    seconds: float = 0.0
    strict: bool = False
    anchored: bool = True
    trust: list[str] = field(default_factory=list)  # where the trusted keys came from
    witness: str | None = None

    @property
    def ok(self) -> bool:
        """True when nothing was tampered with (no errors; under strict, no strict warnings)."""
        return not self.errors

    @property
    def errors(self) -> list[Problem]:
        """The problems that fail verification."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def unvouched(self) -> int:
        """Records of all chains that no signature of their writer vouches for."""
        return sum(c.unvouched for c in self.chains.values()) + sum(
            max(0, c.last_seq - c.signed_through) for c in self.chains.values() if not c.closed
        )

    @property
    def recovered(self) -> int:
        """Chains closed by crash recovery rather than by their writer."""
        return sum(1 for c in self.chains.values() if c.recovered_by)

    def as_json(self) -> dict[str, Any]:
        """The whole report as a JSON object (``audit verify --json``)."""
        return {
            "ok": self.ok,
            "strict": self.strict,
            "anchored": self.anchored,
            "trust": self.trust,
            "witness": self.witness,
            "records": self.records,
            "files": self.files,
            "seconds": round(self.seconds, 6),
            "recovered_closes": self.recovered,
            "unvouched_records": self.unvouched,
            "chains": [c.as_json() for c in self.chains.values()],
            "problems": [p.as_json() for p in self.problems],
        }
