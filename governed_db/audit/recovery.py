"""Crash recovery: seal chains whose writer died, and resume their forwarding.

A chain's lock file stays in ``.locks/`` while the chain needs attention. At
start, every trail tries each lock it finds: one it can take belongs to a dead
writer. If that chain has no close record, the trail appends one (``reason:
"recovered"``), signed with its own key, saying which chain recovered it, the
unsigned tail it found (records after the last signature, which only this
close record now vouches for) and any partial last line it cut off. Then the
forwarder adopts the chain where each sink left off.

A chain that another chain's genesis saw *closed* (``spool_heads``) but that
now has no close record was cut after closing: it is not resealed (that
would dress the cut up as a crash); the error is logged at every start and
``verify`` reports the truncation.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from governed_db.audit import spool
from governed_db.audit.chain import Chain
from governed_db.audit.keys import Signer
from governed_db.audit.records import AuditRecord
from governed_db.audit.verify_lines import decode

if TYPE_CHECKING:
    from governed_db.audit.forwarder import Forwarder

__all__ = ["recover_orphans", "seal_orphan"]

log = logging.getLogger("governed_db.audit")


def recover_orphans(
    directory: Path, own_chain: str, signer: Signer | None, forwarder: Forwarder | None
) -> list[str]:
    """Seal and adopt every dead writer's chain in ``directory``; return their ids."""
    try:
        names = os.listdir(directory / spool.LOCKS)
    except FileNotFoundError:
        return []
    found = []
    for name in sorted(names):
        chain = name.removesuffix(".lock")
        if chain == own_chain or not name.endswith(".lock"):
            continue
        fd = spool.try_lock(directory, chain)
        if fd is None:
            continue  # a live writer
        try:
            seal_orphan(directory, chain, signer, recovered_by=own_chain)
        except (OSError, ValueError) as exc:
            log.error("audit: could not recover chain %s: %s", chain, exc)
            spool.release_lock(directory, chain, fd, remove=False)
            continue
        found.append(chain)
        if forwarder is None or not forwarder.adopt(chain, fd):
            spool.release_lock(directory, chain, fd, remove=True)
    return found


def seal_orphan(
    directory: Path, chain_id: str, signer: Signer | None, *, recovered_by: str
) -> AuditRecord | None:
    """Append a signed ``close`` record to a dead writer's chain (None if already closed)."""
    segments = spool.chain_segments(directory).get(chain_id)
    if not segments:
        return None
    target = segments[-1]
    discarded = b""
    last: bytes | None = None
    for path in reversed(segments):
        line, partial = spool.last_line(path)
        if partial and path == segments[-1]:
            size = path.stat().st_size
            with open(path, "r+b") as f:
                f.seek(size - partial)
                discarded = f.read()
                f.truncate(size - partial)
        if line is not None:
            last = line
            target = path
            break
    if last is None:
        return None
    record = AuditRecord.parse(last)
    if record.kind == "close":
        return None
    seen = _seen_closed(directory, chain_id)
    if seen is not None:
        seq, by = seen
        raise ValueError(
            f"it was closed at seq {seq} (chain {by}'s genesis saw its close record) but now "
            f"ends at seq {record.seq} without one: it was cut after closing. Not resealing it; "
            "run `governed-db audit verify` on the spool"
        )
    unsigned_from = None if "sig" in record.data else _unsigned_from(target, record.seq)
    chain = Chain(signer, chain_id=chain_id, last_seq=record.seq, last_hash=record.hash)
    body = {
        "kind": "close",
        "reason": "recovered",
        "recovered_by": recovered_by,
        "records": record.seq + 2,
        "unsigned_tail": None if unsigned_from is None else [unsigned_from, record.seq],
        "discarded_bytes": len(discarded),
        "discarded_sha256": hashlib.sha256(discarded).hexdigest() if discarded else None,
    }
    close = chain.seal(body, sign=True)
    fd = os.open(target, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, close.line + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    log.warning(
        "audit: chain %s had no close record (its writer died); sealed it at seq %d%s",
        chain_id,
        close.seq,
        f", unsigned tail {unsigned_from}..{record.seq}" if unsigned_from is not None else "",
    )
    return close


def _seen_closed(directory: Path, chain_id: str) -> tuple[int, str] | None:
    """(seq, onlooker) if another chain's genesis saw ``chain_id`` closed (``spool_heads``)."""
    for other, files in spool.chain_segments(directory).items():
        if other == chain_id:
            continue
        try:
            with open(files[0], "rb") as f:
                first = f.readline(1 << 20)
        except OSError:
            continue
        if b'"spool_heads"' not in first or chain_id.encode() not in first:
            continue
        genesis = decode(first.rstrip(b"\n"))
        if not isinstance(genesis, dict) or genesis.get("kind") != "genesis":
            continue
        for entry in genesis.get("spool_heads") or ():
            if isinstance(entry, list) and entry and entry[0] == chain_id:
                return int(entry[1]), other
    return None


def _unsigned_from(path: Path, last_seq: int) -> int:
    """First seq after the last signed record in a segment (its first seq if none is signed)."""
    first = None
    after_sig = None
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            record = AuditRecord.parse(line)
            if first is None:
                first = record.seq
            if "sig" in record.data:
                after_sig = record.seq + 1
    if after_sig is not None:
        return after_sig
    return first if first is not None else last_seq
