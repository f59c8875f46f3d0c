"""The local file store: one JSON file per request, under a lock, written atomically.

Layout: ``<root>/<binding key>/<approval id>.json`` holding ``request`` and
``decisions``, and ``<approval id>.uses`` beside it, the use count. Every change
takes ``<root>/.lock`` (filelock, so it works across processes). A request or
decision replaces the JSON file with a fully written and fsynced copy
(``os.replace``), so readers never see half a file; a use rewrites the
16-byte count in place and fsyncs it (one sector: old or new, never torn),
which costs one disk sync instead of a write, a sync and a rename. The default
root is ``<user data dir>/approvals`` (platformdirs).
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from governed_db.approvals.binding import ApprovalRequest
from governed_db.approvals.decisions import SignedDecision
from governed_db.approvals.store import ApprovalStore, ApprovalStoreError, StoredApproval

__all__ = ["FileStore"]

_ID = re.compile(r"[0-9a-f]{8,64}")
_LOCK_TIMEOUT = 10.0


class FileStore(ApprovalStore):
    """Approvals in a directory (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.where = f"file store {self.root}"
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise self._error("cannot be created", exc) from exc
        self._lock = FileLock(str(self.root / ".lock"), timeout=_LOCK_TIMEOUT)
        self._paths: dict[str, Path] = {}

    def _error(self, what: str, exc: BaseException) -> ApprovalStoreError:
        detail = getattr(exc, "strerror", None) or exc
        return ApprovalStoreError(
            f"the approval {self.where} {what}: {detail}; statements that need approval are "
            "refused (fail closed)",
            rule_id="approval-store-unavailable",
        )

    def _path(self, binding: str, approval_id: str) -> Path:
        if not _ID.fullmatch(binding) or not _ID.fullmatch(approval_id):
            raise ApprovalStoreError(f"bad approval id {approval_id!r}")
        return self.root / binding / f"{approval_id}.json"

    def _read(self, path: Path) -> StoredApproval | None:
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._error("cannot be read", exc) from exc
        except ValueError:
            return None  # not ours (garbled): counts for nothing
        try:
            request = ApprovalRequest.from_body(data["request"])
            decisions = tuple(SignedDecision.from_json(d) for d in data.get("decisions", ()))
        except (KeyError, TypeError, ValueError):
            return None
        self._paths[request.id] = path
        return StoredApproval(request, decisions, self._used(path))

    def _used(self, path: Path) -> int:
        try:
            text = path.with_suffix(".uses").read_bytes()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise self._error("cannot be read", exc) from exc
        try:
            return max(int(text.strip() or b"0"), 0)
        except ValueError:
            return 2**31  # garbled: counts as used up (fail closed)

    def _write(self, path: Path, stored: StoredApproval) -> None:
        data: dict[str, Any] = {
            "request": stored.request.body(),
            "decisions": [d.as_json() for d in stored.decisions],
        }
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            path.parent.mkdir(exist_ok=True, mode=0o700)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(json.dumps(data, sort_keys=True).encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise self._error("cannot be written", exc) from exc

    def _update(self, approval_id: str, change: Any) -> Any:
        try:
            with self._lock:
                path = self._locate(approval_id)
                stored = self._read(path) if path is not None else None
                if path is None or stored is None:
                    raise ApprovalStoreError(f"unknown approval {approval_id}")
                new, result = change(stored)
                if new is not None:
                    self._write(path, new)
                return result
        except Timeout as exc:
            raise self._error("is locked by another process for too long", exc) from exc

    def _locate(self, approval_id: str) -> Path | None:
        if not _ID.fullmatch(approval_id):
            return None
        known = self._paths.get(approval_id)
        if known is not None and known.exists():
            return known
        found = list(self.root.glob(f"*/{approval_id}.json"))
        return found[0] if found else None

    def add_request(self, request: ApprovalRequest) -> None:
        path = self._path(request.binding, request.id)
        try:
            with self._lock:
                if path.exists():
                    raise ApprovalStoreError(f"approval {request.id} already exists")
                self._write(path, StoredApproval(request))
        except Timeout as exc:
            raise self._error("is locked by another process for too long", exc) from exc

    def find(self, binding: str) -> list[StoredApproval]:
        if not _ID.fullmatch(binding):
            return []
        directory = self.root / binding
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._error("cannot be read", exc) from exc
        found = []
        for name in names:
            if name.endswith(".json") and not name.startswith("."):
                stored = self._read(directory / name)
                if stored is not None and stored.request.binding == binding:
                    found.append(stored)
        return sorted(found, key=lambda s: (s.request.requested_at, s.request.id))

    def get(self, approval_id: str) -> StoredApproval | None:
        path = self._locate(approval_id)
        return None if path is None else self._read(path)

    def all(self) -> list[StoredApproval]:
        found = []
        try:
            paths = list(self.root.glob("*/*.json"))
        except OSError as exc:
            raise self._error("cannot be read", exc) from exc
        for path in paths:
            stored = self._read(path)
            if stored is not None:
                found.append(stored)
        return sorted(found, key=lambda s: (s.request.requested_at, s.request.id))

    def add_decision(self, approval_id: str, decision: SignedDecision) -> None:
        def change(stored: StoredApproval) -> tuple[StoredApproval, None]:
            return StoredApproval(stored.request, (*stored.decisions, decision), stored.used), None

        self._update(approval_id, change)

    def consume(self, approval_id: str, allowed: int) -> bool:
        try:
            with self._lock:
                path = self._locate(approval_id)
                if path is None:
                    raise ApprovalStoreError(f"unknown approval {approval_id}")
                used = self._used(path)
                if used >= allowed:
                    return False
                fd = os.open(path.with_suffix(".uses"), os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    os.pwrite(fd, b"%15d\n" % (used + 1), 0)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                return True
        except Timeout as exc:
            raise self._error("is locked by another process for too long", exc) from exc
        except OSError as exc:
            raise self._error("cannot be written", exc) from exc
