"""``BackgroundWriter``: one thread per trail that drains a bounded queue of entries.

Callers append entries to ``queue`` under the trail's lock (so queue order is
chain order) and do not wake the writer: it takes what has queued up once per
``period`` (``batch_ms``), so a busy trail costs about 20 wake-ups a second
however many statements run, and each wake-up seals and writes hundreds of
records with one ``write`` per ``max_batch``. A writer that wrote during the
last period sleeps one period, unwoken; only one in a long sleep (idle:
nothing queued for a whole period) is woken by the caller that queues the
next entry (:attr:`asleep`), and one whose queue reaches ``wake_at``
entries. After writing, a tick (``tick``: fsync for ``batch``, time-based
checkpoints) runs once the period is over; it says when it is next needed
(None: nothing pending). Between batches the writer yields the CPU so that
callers waiting for the GIL get it; what trickles in while it writes waits
for the next period (unless someone waits in :meth:`drain`), so every wake-up
writes a period's worth, not a record or two. The queue holds at most about
``max_queue`` entries: callers past that block in :meth:`wait_for_room`. On
Linux the thread runs under ``SCHED_BATCH`` (see ``_batch_scheduling``).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable

from governed_db.audit.entries import Entry

__all__ = ["BackgroundWriter"]

log = logging.getLogger("governed_db.audit")


class BackgroundWriter:
    """The queue, the thread, and waiting for it (``drain``)."""

    def __init__(
        self,
        process: Callable[[list[Entry]], None],
        tick: Callable[[], float | None],
        *,
        period: float = 0.05,
        max_batch: int = 256,
        max_queue: int = 8192,
        name: str = "governed_db-audit-writer",
    ) -> None:
        self.queue: collections.deque[Entry] = collections.deque()
        self.enqueued = 0  # entries ever queued (under the trail's lock)
        self.done = 0  # entries ever processed (written or counted lost)
        self._process = process
        self._tick = tick
        self.period = period
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.wake_at = max(1, min(max_queue // 4, 2048))
        self._bell = threading.Lock()  # held while nobody rings: a binary semaphore
        self._bell.acquire()
        self._idle = False  # sleeping (any sleep)
        self.asleep = False  # sleeping longer than a period: the next entry must wake it
        self._cond = threading.Condition(threading.Lock())
        self._waiting = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Start the writer now if it is asleep (cheap when it is not)."""
        if self._idle:
            self._idle = self.asleep = False
            with contextlib.suppress(RuntimeError):  # already rung
                self._bell.release()

    def wait_for_room(self) -> None:
        """Block while the queue is full (the writer has fallen behind)."""
        with self._cond:
            self._waiting += 1
            try:
                while len(self.queue) >= self.max_queue and self._thread.is_alive():
                    self.wake()
                    self._cond.wait(0.05)
            finally:
                self._waiting -= 1

    def drain(self, timeout: float | None) -> bool:
        """Wait until everything queued before this call is processed; False on timeout."""
        target = self.enqueued
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._waiting += 1
            try:
                while self.done < target:
                    if not self._thread.is_alive():
                        return False
                    self.wake()
                    left = 0.05 if deadline is None else deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(min(left, 0.05))
            finally:
                self._waiting -= 1
        return True

    def stop(self, timeout: float | None = None) -> bool:
        """Process what is queued, then end the thread; False if it did not end in time."""
        self._stopping = True
        self._idle = True
        self.wake()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        """True while the thread runs."""
        return self._thread.is_alive()

    def _run(self) -> None:
        _batch_scheduling()
        queue, popleft, monotonic = self.queue, self.queue.popleft, time.monotonic
        period, max_batch = self.period, self.max_batch
        deadline: float | None = None  # when the tick is next due (None: nothing pending)
        busy = False  # wrote during the last period: sleep one period, unwoken
        while True:
            wrote = False
            while queue:
                batch = [popleft() for _ in range(min(len(queue), max_batch))]
                try:
                    self._process(batch)
                except Exception:  # a bug, not I/O (process reports I/O losses itself)
                    log.exception("audit writer: %d record(s) not written", len(batch))
                self.done += len(batch)
                wrote = True
                if self._waiting:
                    with self._cond:
                        self._cond.notify_all()
                elif len(queue) < max_batch and not self._stopping:
                    break  # a trickle queued meanwhile: it goes with the next period's
                os.sched_yield()  # let callers waiting for the GIL have it
            now = monotonic()
            if wrote:
                busy = True
                if deadline is None or now + period < deadline:
                    deadline = now + period  # fsync (batch) within a period of writing
            elif self._stopping and not queue:
                return
            if deadline is not None and now >= deadline:
                after = self._safe_tick()
                now = monotonic()
                deadline = None if after is None else now + after
            if queue and (self._waiting or self._stopping):
                continue
            # Busy: sleep one period (callers don't wake it); idle: until the tick or woken.
            if busy or queue:
                timeout = period if deadline is None else min(period, max(deadline - now, 0.0))
                busy = False
                self.asleep = False
            else:
                timeout = -1.0 if deadline is None else max(deadline - now, 0.0)
                self.asleep = timeout < 0 or timeout > period
            self._idle = True
            if not self._stopping and not (queue and self._waiting):
                self._bell.acquire(timeout=timeout)
            self._idle = self.asleep = False

    def _safe_tick(self) -> float | None:
        try:
            return self._tick()
        except Exception:
            log.exception("audit writer: periodic sync/checkpoint failed")
            return self.period


def _batch_scheduling() -> None:
    """Linux: never let waking this thread preempt the caller that queued a record.

    Woken at once, the writer would only block on the GIL the caller holds:
    two wasted context switches on the caller's path. Under ``SCHED_BATCH``
    it runs when the caller blocks (waiting for the database) instead; its
    share of the CPU is unchanged.
    """
    policy = getattr(os, "SCHED_BATCH", None)
    if policy is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, policy, os.sched_param(0))
