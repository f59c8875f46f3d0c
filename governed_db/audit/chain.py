"""One hash chain: numbering, linking, hashing and signing of records.

A chain belongs to one ``AuditTrail`` (one process, one spool). Not thread
safe by itself: the trail serialises ``seal``/``commit`` under its lock, and
writes records in the order they were sealed.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from bisect import bisect_left
from typing import Any

from governed_db.audit.canonical import GENESIS_PREV, canonical_json, utc_timestamp
from governed_db.audit.keys import Signer
from governed_db.audit.records import SCHEMA_VERSION, AuditRecord

__all__ = ["Chain", "ChainState"]

#: (last_seq, last_hash, unsigned_from, unsigned_since): enough to undo commits.
ChainState = tuple[int, str, int | None, float]
_sha256 = hashlib.sha256


class Chain:
    """Seals record bodies into linked, hashed (and when due, signed) records."""

    __slots__ = (
        "_head",
        "checkpoint_every",
        "checkpoint_seconds",
        "id",
        "last_hash",
        "last_seq",
        "signer",
        "signing",
        "unsigned_from",
        "unsigned_since",
    )

    def __init__(
        self,
        signer: Signer | None,
        *,
        signing: str = "checkpoint",
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 5.0,
        chain_id: str | None = None,
        last_seq: int = -1,
        last_hash: str = GENESIS_PREV,
    ) -> None:
        self.id = chain_id or uuid.uuid4().hex
        self.signer = signer
        self.signing = signing if signer is not None else "none"
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.last_seq = last_seq
        self.last_hash = last_hash
        self.unsigned_from: int | None = None  # first seq not yet covered by a signature
        self.unsigned_since = 0.0  # monotonic time it was written
        self._head = (f'"chain":"{self.id}"', f'"v":{SCHEMA_VERSION}')

    def seal(self, body: dict[str, Any], *, sign: bool = False) -> AuditRecord:
        """Number, link, hash and (if ``sign`` or signing every record) sign ``body``.

        Does not advance the chain: call :meth:`commit` once the record is written.
        """
        body["v"] = SCHEMA_VERSION
        body["chain"] = self.id
        body["seq"] = self.last_seq + 1
        body["prev"] = self.last_hash
        body.setdefault("ts", utc_timestamp())
        signed = self.signer is not None and (sign or self.signing == "every")
        if signed:
            assert self.signer is not None
            body["kid"] = self.signer.kid
        digest = hashlib.sha256(canonical_json(body)).hexdigest()
        body["hash"] = digest
        if signed:
            assert self.signer is not None
            body["sig"] = self.signer.sign(digest)
        return AuditRecord(body, canonical_json(body))

    def seal_fragments(
        self, frags: list[str], *, sign: bool = False
    ) -> tuple[int, str, bytes, bool]:
        """:meth:`seal` for a record given as fragments (``canonical``); the same bytes.

        ``frags`` holds every member but ``v``, ``chain``, ``seq``, ``prev``,
        ``kid``, ``hash`` and ``sig`` (``ts`` included); it is used up. Returns
        (seq, hash, line, signed). Raises UnicodeEncodeError for a lone surrogate: seal
        the record's fields with :meth:`seal` then. Does not advance the chain.
        """
        seq = self.last_seq + 1
        frags.extend(self._head)
        frags.append(f'"seq":{seq}')
        frags.append(f'"prev":"{self.last_hash}"')
        signer = self.signer
        signed = signer is not None and (sign or self.signing == "every")
        if signed:
            assert signer is not None
            frags.append(f'"kid":"{signer.kid}"')
        frags.sort()
        at = bisect_left(frags, '"hash"')
        left = ",".join(frags[:at])
        if not signed:
            right = ",".join(frags[at:])
            digest = _sha256(f"{{{left},{right}}}".encode()).hexdigest()
            return seq, digest, f'{{{left},"hash":"{digest}",{right}}}'.encode(), False
        assert signer is not None
        cut = bisect_left(frags, '"sig"', at)
        middle = ",".join(frags[at:cut])
        tail = ",".join(frags[cut:])
        digest = _sha256(f"{{{left},{middle},{tail}}}".encode()).hexdigest()
        sig = signer.sign(digest)
        line = f'{{{left},"hash":"{digest}",{middle},"sig":"{sig}",{tail}}}'
        return seq, digest, line.encode(), True

    def commit(self, record: AuditRecord) -> None:
        """Advance the chain past a record that has been written."""
        self.advance(record.seq, record.hash, "sig" in record.data)

    def advance(self, seq: int, digest: str, signed: bool) -> None:
        """Advance the chain past a written record (``commit`` without the record)."""
        self.last_seq = seq
        self.last_hash = digest
        if signed:
            self.unsigned_from = None
        elif self.unsigned_from is None:
            self.unsigned_from = seq
            self.unsigned_since = time.monotonic()

    def state(self) -> ChainState:
        """Where the chain is, to :meth:`restore` if the records after it are not written."""
        return self.last_seq, self.last_hash, self.unsigned_from, self.unsigned_since

    def restore(self, state: ChainState) -> None:
        """Go back to a :meth:`state`."""
        self.last_seq, self.last_hash, self.unsigned_from, self.unsigned_since = state

    def checkpoint_due(self, now: float | None = None) -> bool:
        """True if the unsigned tail is N records long or T seconds old."""
        if self.signing != "checkpoint" or self.unsigned_from is None:
            return False
        if self.last_seq - self.unsigned_from + 1 >= self.checkpoint_every:
            return True
        now = time.monotonic() if now is None else now
        return now - self.unsigned_since >= self.checkpoint_seconds

    def checkpoint_count_due(self) -> bool:
        """True if the unsigned tail is ``checkpoint_every`` records long (no clock read)."""
        return (
            self.unsigned_from is not None
            and self.last_seq - self.unsigned_from + 1 >= self.checkpoint_every
            and self.signing == "checkpoint"
        )

    def checkpoint_body(self) -> dict[str, Any]:
        """A checkpoint record body covering the unsigned tail."""
        first = self.unsigned_from if self.unsigned_from is not None else self.last_seq + 1
        return {"kind": "checkpoint", "covers": [first, self.last_seq]}
