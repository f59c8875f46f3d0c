"""A small reference witness endpoint: ``governed-db audit witness-serve``.

Speaks the HTTP witness protocol (``HttpWitness`` / ``read_witness``):
``POST {"heads": [...]}`` stores heads, ``GET`` answers ``{"heads": [...]}``.
Heads are appended to a JSON Lines file (fsynced before the answer, so an
acknowledged head survives a crash) and the first head seen at each
(chain, seq) is kept: a later rewrite cannot replace it. Run it where the
writer has no shell, behind TLS; ``token`` requires ``Authorization: Bearer``.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from governed_db.audit.heads import Head

__all__ = ["HeadStore", "make_server"]

_MAX_BODY = 16 << 20


class HeadStore:
    """Heads by (chain, seq), first one kept, persisted to an append-only file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._heads: dict[tuple[str, int], dict[str, Any]] = {}
        if path.exists():
            for line in path.read_bytes().splitlines():
                try:
                    head = Head.of(json.loads(line))
                except (ValueError, RecursionError):
                    continue  # a torn last line from a crash: its POST was never acknowledged
                if head is not None:
                    self._heads.setdefault((head.chain, head.seq), head.as_json())

    def add(self, items: list[Any]) -> int:
        """Store new heads (durably); how many were new."""
        fresh = []
        with self._lock:
            for item in items:
                head = Head.of(item) if isinstance(item, dict) else None
                if head is None or (head.chain, head.seq) in self._heads:
                    continue
                self._heads[(head.chain, head.seq)] = head.as_json()
                fresh.append(head.as_json())
            if fresh:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, b"".join(json.dumps(h).encode() + b"\n" for h in fresh))
                    os.fsync(fd)
                finally:
                    os.close(fd)
        return len(fresh)

    def all(self) -> list[dict[str, Any]]:
        """Every head held."""
        with self._lock:
            return list(self._heads.values())


def make_server(store: HeadStore, host: str, port: int, token: str | None) -> ThreadingHTTPServer:
    """An HTTP server for ``store`` (call ``serve_forever``)."""

    class Handler(BaseHTTPRequestHandler):
        def _allowed(self) -> bool:
            if token is None:
                return True
            given = self.headers.get("Authorization", "")
            if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return True
            self._answer(401, {"error": "unauthorized"})
            return False

        def _answer(self, code: int, doc: dict[str, Any]) -> None:
            data = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            if not self._allowed():
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
                if not 0 < length <= _MAX_BODY:
                    raise ValueError("body size")
                doc = json.loads(self.rfile.read(length))
                heads = doc["heads"]
                if not isinstance(heads, list):
                    raise ValueError("heads")
            except (ValueError, KeyError, TypeError, RecursionError):
                self._answer(400, {"error": 'expected {"heads": [...]}'})
                return
            try:
                added = store.add(heads)
            except OSError as exc:
                self._answer(503, {"error": f"store: {exc.strerror or exc}"})
                return
            self._answer(200, {"added": added})

        def do_GET(self) -> None:
            if self._allowed():
                self._answer(200, {"heads": store.all()})

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer((host, port), Handler)
