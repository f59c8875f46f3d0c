"""The forwarder: background threads that feed remote sinks from the local spool.

One thread per remote sink reads the spool files in batches of ``batch_size``
(so memory stays bounded however long a sink is down), calls ``emit``, and on
success persists the position (``.forward/<sink>.<chain>.json``). A failed
batch is retried with exponential backoff and jitter until it goes through:
delivery is at least once, and the record ``hash`` is the idempotency key.
After a restart the positions left behind are picked up again (see
``AuditTrail``), so an outage or a crash loses nothing that reached the spool.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from governed_db.audit import spool
from governed_db.audit.records import AuditRecord
from governed_db.audit.sinks.base import AuditSink

__all__ = ["Forwarder"]

log = logging.getLogger("governed_db.audit")


@dataclass(slots=True)
class _Cursor:
    chain: str
    segment: int
    offset: int
    done: bool = False


class _Worker(threading.Thread):
    """Feeds one sink from every chain it has a cursor in."""

    def __init__(self, directory: Path, sink: AuditSink, on_done: Callable[[str], None]) -> None:
        super().__init__(name=f"governed_db-audit-{sink.name}", daemon=True)
        self.directory = directory
        self.sink = sink
        self.cursors: list[_Cursor] = []
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.cond = threading.Condition()
        self.passes = 0  # passes started
        self.clean = 0  # last pass that found nothing to send and no error
        self.stopping = False
        self.failures = 0
        self.delivered = 0
        self._on_done = on_done
        self._prefix: dict[str, str] = {}

    def add(self, cursor: _Cursor) -> None:
        with self.lock:
            self.cursors.append(cursor)
        self.wake.set()

    def _path(self, chain: str, segment: int) -> Path | None:
        prefix = self._prefix.get(chain)
        if prefix is None:
            files = sorted(self.directory.glob(f"audit-*-{chain}-000001.jsonl"))
            if not files:
                return None
            prefix = files[0].name[: -len("000001.jsonl")]
            self._prefix[chain] = prefix
        return self.directory / f"{prefix}{segment:06d}.jsonl"

    def _pump(self, cursor: _Cursor) -> bool:
        """Deliver one batch of a chain; True if anything moved."""
        path = self._path(cursor.chain, cursor.segment)
        if path is None or not path.exists():
            return False
        following = self._path(cursor.chain, cursor.segment + 1)
        next_exists = following is not None and following.exists()
        lines, offset = spool.read_lines(path, cursor.offset, self.sink.batch_size)
        if not lines:
            if next_exists:  # the writer moved on before we read: this segment is complete
                cursor.segment += 1
                cursor.offset = 0
                spool.save_offset(self.directory, self.sink.name, cursor.chain, cursor.segment, 0)
                return True
            return False
        records: list[AuditRecord] = []
        if getattr(self.sink, "signed_only", False):  # a witness: heads only, parsed only
            lines = [line for line in lines if b'"sig":"' in line]
        for line in lines:
            try:
                records.append(AuditRecord.parse(line))
            except ValueError:
                log.error("audit spool %s: unreadable line at byte %d skipped", path, cursor.offset)
        if records:
            self.sink.emit(records)
        self.delivered += len(records)
        cursor.offset = offset
        if any(r.kind == "close" for r in records):
            cursor.done = True
            spool.drop_offset(self.directory, self.sink.name, cursor.chain)
            self._on_done(cursor.chain)
        else:
            spool.save_offset(
                self.directory, self.sink.name, cursor.chain, cursor.segment, cursor.offset
            )
        return True

    def run(self) -> None:
        delay = 0.0
        while not self.stopping:
            with self.cond:
                self.passes += 1
                this_pass = self.passes
            moved = False
            try:
                with self.lock:
                    active = [c for c in self.cursors if not c.done]
                for cursor in active:
                    while not self.stopping and self._pump(cursor):
                        moved = True
                if self.failures:
                    log.warning(
                        "audit sink %s recovered after %d failed attempts",
                        self.sink.name,
                        self.failures,
                    )
                self.failures = 0
                delay = 0.0
            except Exception as exc:  # any sink failure: back off and retry the batch
                self.failures += 1
                delay = min(
                    self.sink.backoff_max, self.sink.backoff_initial * 2 ** (self.failures - 1)
                ) * random.uniform(0.5, 1.0)
                if self.failures == 1 or self.failures % 20 == 0:
                    log.warning(
                        "audit sink %s failed (%s); attempt %d, retrying in %.1fs",
                        self.sink.name,
                        exc,
                        self.failures,
                        delay,
                    )
            if moved:
                continue
            if not delay:
                with self.cond:
                    self.clean = this_pass
                    self.cond.notify_all()
            self.wake.wait(delay or 0.5)
            self.wake.clear()


class Forwarder:
    """The remote sinks' workers and the chains they follow."""

    def __init__(self, directory: Path, sinks: Sequence[AuditSink]) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._owners: dict[str, tuple[int, int]] = {}  # adopted chain -> (lock fd, open cursors)
        self.workers = [_Worker(directory, s, self._chain_done) for s in sinks]

    def follow(self, chain: str) -> None:
        """Start forwarding a new chain from its beginning (position persisted now)."""
        for w in self.workers:
            spool.save_offset(self.directory, w.sink.name, chain, 1, 0)
            w.add(_Cursor(chain, 1, 0))

    def adopt(self, chain: str, lock_fd: int) -> bool:
        """Take over a dead writer's chain where each sink left off; False if nothing to do."""
        positions = [
            (w, spool.load_offset(self.directory, w.sink.name, chain)) for w in self.workers
        ]
        todo = [(w, pos) for w, pos in positions if pos is not None]
        if not todo:
            return False
        with self._lock:
            self._owners[chain] = (lock_fd, len(todo))
        for w, pos in todo:
            assert pos is not None
            w.add(_Cursor(chain, *pos))
        return True

    def _chain_done(self, chain: str) -> None:
        with self._lock:
            owner = self._owners.get(chain)
            if owner is None:
                return
            fd, left = owner
            if left > 1:
                self._owners[chain] = (fd, left - 1)
                return
            del self._owners[chain]
        spool.release_lock(self.directory, chain, fd, remove=True)

    def start(self) -> None:
        """Start the worker threads."""
        for w in self.workers:
            w.start()

    def notify(self) -> None:
        """New records are in the spool."""
        for w in self.workers:
            w.wake.set()

    def drain(self, timeout: float) -> bool:
        """Wait until every sink has everything written before this call; False on timeout."""
        deadline = time.monotonic() + timeout
        for w in self.workers:
            with w.cond:
                target = w.passes + 1
                w.wake.set()
                if not w.cond.wait_for(
                    lambda w=w, t=target: w.clean >= t,  # type: ignore[misc]
                    max(0.0, deadline - time.monotonic()),
                ):
                    return False
        return True

    def chain_done(self, chain: str) -> bool:
        """True if every sink has delivered ``chain`` completely."""
        for w in self.workers:
            with w.lock:
                if any(c.chain == chain and not c.done for c in w.cursors):
                    return False
        return True

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the workers, close the sinks, release adopted chains not finished."""
        for w in self.workers:
            w.stopping = True
            w.wake.set()
        for w in self.workers:
            w.join(timeout)
            try:
                w.sink.close()
            except Exception as exc:  # pragma: no cover - best effort at shutdown
                log.warning("audit sink %s did not close cleanly: %s", w.sink.name, exc)
        with self._lock:
            owners, self._owners = self._owners, {}
        for chain, (fd, _) in owners.items():
            spool.release_lock(self.directory, chain, fd, remove=False)
