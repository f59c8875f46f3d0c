"""The local spool: JSON Lines segment files, one series per chain, in one directory.

Layout of a spool directory::

    audit-<UTC start>-<chain id>-<segment>.jsonl   records, one canonical JSON per line
    .locks/<chain id>.lock     held (flock) by the live writer; left behind while the
                               chain still needs attention (crashed, or not yet forwarded)
    .forward/<sink>.<chain id>.json   how far each remote sink has got in a chain

Segments roll over by size and age. ``durability`` decides when data reaches
the disk: with ``strict`` the trail fsyncs before ``intent()`` returns
(concurrent writers share one fsync, see :meth:`Spool.sync_to`), with ``batch``
its writer thread fsyncs every ``batch_ms``, with ``none`` never.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["Spool", "chain_segments", "read_lines"]

SEGMENT_RE = re.compile(r"^audit-(\d{8}T\d{6}Z)-([0-9a-f]{32})-(\d{6})\.jsonl$")
LOCKS = ".locks"
FORWARD = ".forward"


def chain_segments(directory: Path) -> dict[str, list[Path]]:
    """Segment files of every chain in ``directory``, in segment order."""
    found: dict[str, list[tuple[int, Path]]] = {}
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return {}
    for entry in entries:
        m = SEGMENT_RE.match(entry.name)
        if m:
            found.setdefault(m.group(2), []).append((int(m.group(3)), Path(entry.path)))
    return {chain: [p for _, p in sorted(files)] for chain, files in found.items()}


def segment_index(path: Path) -> int:
    """The segment number in a segment file name."""
    m = SEGMENT_RE.match(path.name)
    if not m:
        raise ValueError(f"{path.name} is not a spool segment name")
    return int(m.group(3))


def read_lines(path: Path, offset: int, max_lines: int) -> tuple[list[bytes], int]:
    """Up to ``max_lines`` complete lines from ``offset``; returns them and the new offset."""
    lines: list[bytes] = []
    with open(path, "rb") as f:
        f.seek(offset)
        pending = b""
        while len(lines) < max_lines:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            pending += chunk
            parts = pending.split(b"\n")
            pending = parts.pop()
            for part in parts:
                if len(lines) == max_lines:
                    return lines, offset
                lines.append(part)
                offset += len(part) + 1
    return lines, offset


def last_line(path: Path) -> tuple[bytes | None, int]:
    """The last complete line of a file and the size of any partial line after it."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        end = size
        data = b""
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            data = f.read(end - start) + data
            end = start
            cut = data.rfind(b"\n")
            if cut < 0:
                continue
            partial = len(data) - cut - 1
            prev = data.rfind(b"\n", 0, cut)
            if prev >= 0 or end == 0:
                return data[prev + 1 : cut], partial
        return None, len(data)


def try_lock(directory: Path, chain_id: str) -> int | None:
    """Take a chain's lock without waiting; the fd, or None if a live writer holds it."""
    lockdir = directory / LOCKS
    lockdir.mkdir(exist_ok=True)
    fd = os.open(lockdir / f"{chain_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def release_lock(directory: Path, chain_id: str, fd: int, *, remove: bool) -> None:
    """Drop a chain lock; ``remove`` deletes the lock file (the chain needs nothing more)."""
    if remove:
        (directory / LOCKS / f"{chain_id}.lock").unlink(missing_ok=True)
    os.close(fd)


def fsync_dir(directory: Path) -> None:
    """Make a new directory entry durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """The segment files of one chain, written in order by the trail (under its lock)."""

    def __init__(
        self,
        directory: Path,
        chain_id: str,
        *,
        durability: str = "batch",
        rotate_bytes: int = 64 * 1024**2,
        rotate_seconds: float = 86400.0,
    ) -> None:
        self.directory = directory
        self.chain_id = chain_id
        self.durability = durability
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self._stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        self._sync_lock = threading.Lock()
        self._fd = -1
        self._lock_fd = -1
        self.segment = 0
        self._size = 0
        self._opened = 0.0
        self._written = 0  # bytes written over all segments: the group-commit clock
        self._synced = 0
        self._pid = os.getpid()  # a forked child closes its copies and leaves the rest

    def path(self, segment: int) -> Path:
        """The file of one segment."""
        return self.directory / f"audit-{self._stamp}-{self.chain_id}-{segment:06d}.jsonl"

    def open(self) -> None:
        """Create the directory, take the chain lock, open segment 1."""
        self._pid = os.getpid()
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = try_lock(self.directory, self.chain_id)
        if fd is None:  # pragma: no cover - chain ids are random
            raise OSError(f"chain {self.chain_id} is locked by another writer")
        self._lock_fd = fd
        self._next_segment()

    def _next_segment(self) -> None:
        self.segment += 1
        self._fd = os.open(
            self.path(self.segment), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o640
        )
        self._size = 0
        self._opened = time.monotonic()
        if self.durability != "none":
            fsync_dir(self.directory)

    def due_for_rotation(self, upcoming: int) -> bool:
        """True if writing ``upcoming`` more bytes should go to a new segment."""
        if self._size == 0 and upcoming == 0:
            return False
        return (
            self._size + upcoming > self.rotate_bytes
            or time.monotonic() - self._opened >= self.rotate_seconds
        )

    def room(self) -> int:
        """Bytes that may still be added before :meth:`due_for_rotation` says so (0: aged)."""
        if time.monotonic() - self._opened >= self.rotate_seconds:
            return 0
        return self.rotate_bytes - self._size

    def rotate(self) -> None:
        """Seal the current segment (fsync unless durability none) and open the next."""
        with self._sync_lock:
            if self.durability != "none":
                os.fsync(self._fd)
            os.close(self._fd)
            self._synced = self._written
            self._next_segment()

    def write(self, line: bytes) -> int:
        """Append one line; returns the group-commit token to pass to :meth:`sync_to`."""
        return self.write_many((line,))

    def write_many(self, lines: Sequence[bytes]) -> int:
        """Append lines (one ``os.write`` when the OS takes it all); the sync token.

        On failure the segment is cut back to where it was, so no partial line
        is left behind, and the OSError propagates.
        """
        data = b"\n".join(lines) + b"\n"
        start = self._size
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
            raise
        self._size += len(data)
        self._written += len(data)
        return self._written

    def sync_to(self, token: int) -> None:
        """fsync unless someone already did since ``token`` was handed out."""
        with self._sync_lock:
            if self._synced >= token or self._fd < 0:
                return
            target = self._written
            os.fsync(self._fd)
            self._synced = target

    def sync(self) -> None:
        """fsync whatever has been written (the batch timer calls this)."""
        self.sync_to(self._written)

    def close(self, *, keep_lock_file: bool) -> None:
        """fsync, close, and release the chain lock.

        In a process forked from the writer only the inherited descriptors are
        closed: the lock (shared with the parent) and its file stay the parent's.
        """
        if os.getpid() != self._pid:
            for fd in (self._fd, self._lock_fd):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._fd = self._lock_fd = -1
            return
        with self._sync_lock:
            if self._fd >= 0:
                if self.durability != "none":
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1
        if self._lock_fd >= 0:
            release_lock(self.directory, self.chain_id, self._lock_fd, remove=not keep_lock_file)
            self._lock_fd = -1


def load_offset(directory: Path, sink: str, chain_id: str) -> tuple[int, int] | None:
    """(segment, byte offset) a sink has reached in a chain, or None if not tracked."""
    try:
        data = json.loads((directory / FORWARD / f"{sink}.{chain_id}.json").read_text())
        return int(data["segment"]), int(data["offset"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_offset(directory: Path, sink: str, chain_id: str, segment: int, offset: int) -> None:
    """Persist a sink's position (write to a temp file, then rename)."""
    folder = directory / FORWARD
    folder.mkdir(exist_ok=True)
    path = folder / f"{sink}.{chain_id}.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"segment": segment, "offset": offset}))
    os.replace(tmp, path)


def drop_offset(directory: Path, sink: str, chain_id: str) -> None:
    """The sink has the whole chain: forget it."""
    (directory / FORWARD / f"{sink}.{chain_id}.json").unlink(missing_ok=True)


def pending_offsets(directory: Path) -> Iterator[tuple[str, str]]:
    """(sink, chain id) pairs with forwarding still to do."""
    try:
        names = os.listdir(directory / FORWARD)
    except FileNotFoundError:
        return
    for name in names:
        m = re.fullmatch(r"(.+)\.([0-9a-f]{32})\.json", name)
        if m:
            yield m.group(1), m.group(2)
