"""``ApprovalStore``: where requests, decisions and use counts are kept (a tiny base).

A store is untrusted for everything but counting uses: a decision counts only
when an approver key the policy lists signed it, and a request only when it
matches the statement being run. ``consume`` is the one operation a store must
make atomic: two workers racing for a one-use approval, exactly one gets it.
``MemoryStore`` is the in-memory twin for tests.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from governed_db.approvals.binding import ApprovalRequest
from governed_db.approvals.decisions import SignedDecision
from governed_db.errors import GovernanceError

__all__ = ["ApprovalStore", "ApprovalStoreError", "MemoryStore", "StoredApproval"]


class ApprovalStoreError(GovernanceError):
    """The approval store cannot be read or written: statements needing approval are refused."""

    __module__ = "governed_db.approvals"


@dataclass(frozen=True, slots=True)
class StoredApproval:
    """A request as the store holds it, with its decisions and how often it was used."""

    request: ApprovalRequest
    decisions: tuple[SignedDecision, ...] = ()
    used: int = 0


class ApprovalStore(ABC):
    """Requests by id and by binding key; decisions appended; uses counted atomically."""

    #: Says where the store is, for messages (``file /path``, ``postgres host/db``).
    where: str = "store"

    @abstractmethod
    def add_request(self, request: ApprovalRequest) -> None:
        """Keep a new request (its id is new)."""

    @abstractmethod
    def find(self, binding: str) -> list[StoredApproval]:
        """Every request with this binding key, oldest first."""

    @abstractmethod
    def get(self, approval_id: str) -> StoredApproval | None:
        """The request with this id, or None."""

    @abstractmethod
    def all(self) -> list[StoredApproval]:
        """Every request, oldest first."""

    @abstractmethod
    def add_decision(self, approval_id: str, decision: SignedDecision) -> None:
        """Append a decision to a request (two approvers at once both count)."""

    @abstractmethod
    def consume(self, approval_id: str, allowed: int) -> bool:
        """Atomically count one use if fewer than ``allowed`` were counted; True if counted."""

    def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release connections and files."""


@dataclass
class _Entry:
    request: ApprovalRequest
    decisions: list[SignedDecision] = field(default_factory=list)
    used: int = 0

    def frozen(self) -> StoredApproval:
        return StoredApproval(self.request, tuple(self.decisions), self.used)


class MemoryStore(ApprovalStore):
    """The in-memory twin (one process; tests)."""

    where = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def add_request(self, request: ApprovalRequest) -> None:
        with self._lock:
            if request.id in self._entries:
                raise ApprovalStoreError(f"approval {request.id} already exists")
            self._entries[request.id] = _Entry(request)

    def find(self, binding: str) -> list[StoredApproval]:
        with self._lock:
            return [e.frozen() for e in self._entries.values() if e.request.binding == binding]

    def get(self, approval_id: str) -> StoredApproval | None:
        with self._lock:
            entry = self._entries.get(approval_id)
            return None if entry is None else entry.frozen()

    def all(self) -> list[StoredApproval]:
        with self._lock:
            return [e.frozen() for e in self._entries.values()]

    def add_decision(self, approval_id: str, decision: SignedDecision) -> None:
        with self._lock:
            entry = self._entries.get(approval_id)
            if entry is None:
                raise ApprovalStoreError(f"unknown approval {approval_id}")
            entry.decisions.append(decision)

    def consume(self, approval_id: str, allowed: int) -> bool:
        with self._lock:
            entry = self._entries.get(approval_id)
            if entry is None or entry.used >= allowed:
                return False
            entry.used += 1
            return True

    def tamper(self, approval_id: str, decision: SignedDecision) -> None:
        """Write a decision row straight in, as an attacker with store access would."""
        self.add_decision(approval_id, decision)
