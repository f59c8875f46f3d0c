"""``SpoolWriter``: seals entries into the chain and writes them out, in order.

Used by one thread at a time: under the trail's lock (``durability: strict``,
and trails without a spool), or by the trail's background writer thread
(``batch`` / ``none``). ``append`` writes one record and raises ``OSError``;
``append_many`` seals a run of records, writes them with one ``os.write`` and,
if that fails, undoes the run and retries record by record so that whatever
can be written is, and the chain stays linear: a lost record never takes a seq.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from governed_db.audit.chain import Chain, ChainState
from governed_db.audit.entries import Entry, render
from governed_db.audit.records import AuditRecord, IntentRef
from governed_db.audit.sinks import AuditSink
from governed_db.audit.spool import Spool

__all__ = ["SpoolWriter"]

log = logging.getLogger("governed_db.audit")

#: (seq, hash, line, signed)
Sealed = tuple[int, str, bytes, bool]
_CHECKPOINT = "checkpoint"


class SpoolWriter:
    """Chain + spool + inline sinks; ``on_lost(entries, error)`` hears of every loss."""

    def __init__(
        self,
        chain: Chain,
        spool: Spool | None,
        sinks: Sequence[AuditSink],
        *,
        redact: bool,
        on_lost: Callable[[Sequence[Entry], BaseException], None] | None = None,
    ) -> None:
        self.chain = chain
        self.spool = spool
        self.sinks = tuple(sinks)
        self.redact = redact
        self.on_lost = on_lost or _log_lost
        self.written = 0
        self._intents: dict[int, tuple[int, str]] = {}  # sealed in this run, not yet resolved

    # -- one record ----------------------------------------------------------

    def append(self, entry: Entry) -> tuple[int, str, int]:
        """Seal and write one entry; (seq, hash, sync token). Raises OSError, chain unchanged.

        A segment due for rotation is first sealed with a checkpoint, so every
        closed segment ends signed.
        """
        spool = self.spool
        if spool is not None and spool.due_for_rotation(0):
            self._rotate()
        seq, digest, line, signed = self._seal(entry)
        token = spool.write_many((line,)) if spool is not None else 0
        self._emit(((seq, digest, line, signed),), strict=spool is None)
        self.chain.advance(seq, digest, signed)
        self.written += 1
        if entry[0] == "intent" and entry[6] is not None:
            entry[6].resolve(seq, digest)
        return seq, digest, token

    def checkpoint_if_due(self) -> int:
        """Append a checkpoint if one is due; its sync token (0: none, or it was lost)."""
        if not self.chain.checkpoint_due():
            return 0
        try:
            return self.append((_CHECKPOINT, time.time_ns()))[2]
        except OSError as exc:
            self.on_lost([(_CHECKPOINT, 0)], exc)
            return 0

    def _rotate(self) -> None:
        chain, spool = self.chain, self.spool
        assert spool is not None
        if chain.unsigned_from is not None and chain.signing != "none":
            seq, digest, line, signed = self._seal((_CHECKPOINT, time.time_ns()))
            spool.write_many((line,))
            self._emit(((seq, digest, line, signed),), strict=False)
            chain.advance(seq, digest, signed)
            self.written += 1
        spool.rotate()

    # -- many records ----------------------------------------------------------

    def append_many(self, entries: Sequence[Entry]) -> None:
        """Seal and write entries in order, batching writes; losses go to ``on_lost``."""
        chain, spool = self.chain, self.spool
        run_entries: list[Entry] = []
        run: list[Sealed] = []
        state = chain.state()
        size = 0
        room = spool.room() if spool is not None else 1 << 62
        seal, intents = self._seal, self._intents
        for entry in entries:
            if size > room and spool is not None and (spool.due_for_rotation(size)):
                self._write_run(run_entries, run, state)
                run_entries, run, size = [], [], 0
                try:
                    self._rotate()
                except OSError as exc:
                    self.on_lost([(_CHECKPOINT, 0)], exc)
                state, room = chain.state(), spool.room()
            try:
                sealed = seal(entry)
            except Exception as exc:  # not encodable: lose this one record, say so
                self.on_lost([entry], exc)
                self._resolve_lost(entry)
                continue
            seq, digest, line, signed = sealed
            chain.advance(seq, digest, signed)
            if entry[0] == "intent" and entry[6] is not None:
                intents[id(entry[6])] = (seq, digest)
            run_entries.append(entry)
            run.append(sealed)
            size += len(line) + 1
            if chain.checkpoint_count_due():
                cp = seal((_CHECKPOINT, time.time_ns()))
                chain.advance(cp[0], cp[1], cp[3])
                run.append(cp)
                size += len(cp[2]) + 1
        self._write_run(run_entries, run, state)

    def _write_run(self, entries: list[Entry], run: list[Sealed], state: ChainState) -> None:
        if not run:
            return
        intents = self._intents
        try:
            if self.spool is not None:
                self.spool.write_many([s[2] for s in run])
        except OSError:
            self.chain.restore(state)
            intents.clear()
            self._one_by_one(entries)
            return
        self.written += len(run)
        for entry in entries:
            if entry[0] == "intent" and entry[6] is not None:
                ref: IntentRef = entry[6]
                ref.resolve(*intents[id(ref)])
        intents.clear()
        self._emit(run, strict=False)

    def _one_by_one(self, entries: list[Entry]) -> None:
        for entry in entries:
            try:
                self.append(entry)
            except Exception as exc:
                self.on_lost([entry], exc)
                self._resolve_lost(entry)
                continue
            self.checkpoint_if_due()

    @staticmethod
    def _resolve_lost(entry: Entry) -> None:
        if entry[0] == "intent" and entry[6] is not None:
            ref: IntentRef = entry[6]
            ref.resolve(-1, "")

    # -- sealing and sinks ------------------------------------------------------

    def _seal(self, entry: Entry) -> Sealed:
        chain = self.chain
        frags, fields, sign = render(
            entry, chain, redact=self.redact, intents=self._intents, need_fields=False
        )
        if frags is not None:
            try:
                return chain.seal_fragments(frags, sign=sign)
            except UnicodeEncodeError:  # a lone surrogate: the reference path replaces it
                _, fields, sign = render(
                    entry, chain, redact=self.redact, intents=self._intents, need_fields=True
                )
        assert fields is not None
        record = chain.seal(fields, sign=sign)
        return record.seq, record.hash, record.line, "sig" in record.data

    def _emit(self, run: Sequence[Sealed], *, strict: bool) -> None:
        if not self.sinks:
            return
        records = [AuditRecord(_parse(line), line) for _, _, line, _ in run]
        for sink in self.sinks:
            try:
                sink.emit(records)
            except Exception as exc:
                if strict:
                    raise OSError(f"sink {sink.name}: {exc}") from exc
                log.error("audit sink %s failed: %s", sink.name, exc)


def _log_lost(entries: Sequence[Entry], exc: BaseException) -> None:
    log.error("audit: %d record(s) LOST: %s", len(entries), exc)


def _parse(line: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(line)
    return data
