"""``Recorder``: the write side of a trail, on the caller's thread or a writer thread.

``durability: strict`` and trails without a spool seal and write on the
caller's thread under the lock (strict: fsync before returning, concurrent
callers sharing one fsync). ``batch`` and ``none`` queue entries under the
lock, so queue order is chain order, for a ``BackgroundWriter``, which
takes them once per ``batch_ms`` (callers wake it only from a long sleep). Its first
write error fails the recorder: from then on critical records (session,
intent) raise ``AuditError`` when ``fail_closed`` is on. Every lost record is
counted (``lost``) and logged at ERROR.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

from governed_db.audit.background import BackgroundWriter
from governed_db.audit.entries import Entry
from governed_db.audit.forwarder import Forwarder
from governed_db.audit.settings import AuditSettings
from governed_db.audit.spool import Spool
from governed_db.audit.writer import SpoolWriter
from governed_db.errors import AuditError

__all__ = ["Recorder"]

log = logging.getLogger("governed_db.audit")
_time_ns = time.time_ns


class Recorder:
    """Queues or writes entries; counts and reports what could not be written."""

    def __init__(
        self,
        settings: AuditSettings,
        writer: SpoolWriter,
        spool: Spool | None,
        forwarder: Forwarder | None,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.spool = spool
        self.forwarder = forwarder
        self.lost = 0
        self.closed = False
        self.failure: BaseException | None = None
        self.blocked = False  # closed or failed: checked before anything is queued
        self.forked = False  # inherited through fork(): the chain is the parent's
        self.lock = threading.Lock()
        self.where = str(settings.path or "inline sinks")
        self.strict = spool is not None and settings.durability == "strict"
        self.period = min(
            settings.batch_ms / 1000 if settings.durability == "batch" else 1.0,
            settings.checkpoint_seconds / 4,
            1.0,
        )
        self.bg: BackgroundWriter | None = None
        self._stop = threading.Event()
        writer.on_lost = self.count_lost
        if hasattr(os, "register_at_fork"):
            me = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _forked(me))

    def start(self, genesis: Entry) -> None:
        """Write the genesis record (raises AuditError), then start the writer or ticker."""
        with self.lock:
            try:
                self.writer.append(genesis)
            except OSError as exc:
                raise AuditError(f"audit spool {self.where} is not writable: {exc}") from exc
        if self.spool is not None and self.settings.durability != "strict":
            self.bg = BackgroundWriter(self._process, self._tick_once, period=self.period)
        else:
            threading.Thread(target=self._tick, name="governed_db-audit", daemon=True).start()

    def put(self, kind: str, values: tuple[Any, ...], *, critical: bool) -> bool:
        """Queue (or write) one entry; False if it was lost. Critical ones wake the writer.

        Raises AuditError for a critical entry when ``fail_closed`` is on and the
        record can't be written (strict), or the trail is closed or failed.
        """
        bg = self.bg
        if bg is None:
            return self.write_sync((kind, _time_ns(), *values), critical=critical)
        queue = bg.queue
        if len(queue) >= bg.max_queue:
            bg.wait_for_room()
        with self.lock:
            if self.blocked and self._refuse(kind, critical=critical):
                return False
            queue.append((kind, _time_ns(), *values))
            bg.enqueued += 1
        if bg.asleep or len(queue) >= bg.wake_at:
            bg.wake()
        return True

    def _refuse(self, kind: str, *, critical: bool) -> bool:
        """Closed or failed (lock held): raise, or True to drop the record, False to queue it."""
        fail_closed = critical and self.settings.fail_closed
        if self.closed:
            if fail_closed:
                raise AuditError(
                    f"audit record could not be made durable in {self.where}: the audit "
                    "trail is closed. fail_closed is on, so the statement was not run."
                )
            self.lost += 1
            log.error("audit: %s record LOST: the audit trail is closed", kind)
            return True
        if self.bg is not None and not self.bg.alive:  # inherited through fork()
            if fail_closed:
                raise AuditError(
                    f"audit record could not be made durable in {self.where}: {self.failure}. "
                    "fail_closed is on, so the statement was not run."
                )
            self.lost += 1
            log.error("audit: %s record LOST: %s", kind, self.failure)
            return True
        if fail_closed:
            raise AuditError(
                f"audit record could not be made durable in {self.where}: an earlier record "
                f"failed: {self.failure}. fail_closed is on, so the statement was not run "
                "(the trail stays failed; open a new one once the spool is fixed)."
            ) from self.failure
        return False

    def write_sync(self, entry: Entry, *, critical: bool) -> bool:
        """Seal and write on this thread (strict, or no spool); fsync first if strict."""
        try:
            with self.lock:
                if self.forked:
                    raise OSError(str(self.failure))
                if self.closed:
                    raise OSError("the audit trail is closed")
                token = self.writer.append(entry)[2]
                token = self.writer.checkpoint_if_due() or token
            if self.strict:
                assert self.spool is not None
                self.spool.sync_to(token)
        except OSError as exc:
            if critical and self.settings.fail_closed:
                with self.lock:
                    self.lost += 1
                raise AuditError(
                    f"audit record could not be made durable in {self.where}: {exc}. "
                    "fail_closed is on, so the statement was not run."
                ) from exc
            self.count_lost([entry], exc)
            return False
        if self.forwarder is not None:
            self.forwarder.notify()
        return True

    def count_lost(self, entries: Sequence[Entry], exc: BaseException) -> None:
        """Count and log records that could not be written; the writer thread's first fails us."""
        self.lost += len(entries)
        if self.failure is None and self.bg is not None:
            self.failure = exc
            self.blocked = True
        log.error(
            "audit: %s record LOST (%s): %s; %d lost so far",
            ", ".join(str(e[0]) for e in entries),
            self.where,
            exc,
            self.lost,
        )

    def drain(self, timeout: float | None) -> bool:
        """Wait until everything queued so far is written (or lost); False on timeout."""
        return True if self.bg is None else self.bg.drain(timeout)

    def close(self) -> None:
        """Write what is queued and the signed close record; stop the writer or ticker."""
        bg = self.bg
        with self.lock:
            if self.closed:
                return
            self.closed = self.blocked = True
            if bg is not None:
                bg.queue.append(("close", _time_ns(), "closed"))
                bg.enqueued += 1
            else:
                try:
                    self.writer.append(("close", _time_ns(), "closed"))
                except OSError as exc:
                    self.count_lost([("close", 0)], exc)
        self._stop.set()
        if bg is not None:
            while not bg.stop(60.0):
                log.error("audit: writer still busy at close: %d records queued", len(bg.queue))

    def _process(self, batch: list[Entry]) -> None:
        self.writer.append_many(batch)
        if self.forwarder is not None:
            self.forwarder.notify()

    def _tick_once(self) -> float | None:
        """Writer thread, ``period`` after it wrote: fsync (batch), time-based checkpoint.

        Returns the seconds until it is needed again (the next checkpoint), or
        None when nothing is pending.
        """
        if self.spool is not None and self.settings.durability == "batch":
            self.spool.sync()
        if self.writer.checkpoint_if_due() and self.forwarder is not None:
            self.forwarder.notify()
        chain = self.writer.chain
        if chain.signing != "checkpoint" or chain.unsigned_from is None:
            return None
        due = chain.unsigned_since + chain.checkpoint_seconds - time.monotonic()
        return max(due, 0.001)

    def _tick(self) -> None:
        """Without a writer thread: time-based checkpoints."""
        while not self._stop.wait(self.period):
            try:
                with self.lock:
                    token = 0 if self.closed else self.writer.checkpoint_if_due()
                if token and self.strict:
                    assert self.spool is not None
                    self.spool.sync_to(token)
                if token and self.forwarder is not None:
                    self.forwarder.notify()
            except OSError as exc:
                log.error("audit: background sync/checkpoint failed: %s", exc)


def _forked(ref: weakref.ref[Recorder]) -> None:
    """In a child process: the chain (and any writer thread) is the parent's: refuse records.

    Two processes appending to one chain would fork it. New connections in
    the child get a trail of their own (``AuditTrail.shared`` forgets the
    parent's at fork), with its own chain in the same spool.
    """
    rec = ref()
    if rec is not None and rec.spool is not None and not rec.closed:
        rec.lock = threading.Lock()
        rec.failure = OSError("the audit trail was inherited through fork(); open one per process")
        rec.blocked = rec.forked = True
