"""``SpoolWriter``: seals entries into the chain and writes them out, in order.

Used by one thread at a time: under the trail's lock (``durability: strict``,
and trails without a spool), or by the trail's background writer thread
(``batch`` / ``none``). ``append`` writes one record and raises ``OSError``;
``append_many`` seals a run of records, writes them with one ``os.write`` and,
if that fails, undoes the run and retries record by record so that whatever
can be written is, and the chain stays linear: a lost record never takes a seq.
Unsigned intent, refused, outcome and masked records are sealed from templates
(``templates``); everything else, and any record holding a lone surrogate, by
``entries.render`` + ``Chain`` (the same bytes, see tests/test_audit_canonical.py).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from governed_db.audit.canonical import encode_value, quoted_timestamp_ns
from governed_db.audit.chain import Chain, ChainState
from governed_db.audit.entries import KIND_FRAGMENTS, REDACTED, Entry, render
from governed_db.audit.records import SCHEMA_VERSION, AuditRecord, IntentRef, masked_fields
from governed_db.audit.sinks import AuditSink
from governed_db.audit.spool import Spool
from governed_db.audit.templates import (
    Fill,
    Template,
    masked_template,
    outcome_template,
    statement_template,
)

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
        # Templates (see ``templates``) for unsigned intent/refused and outcome records.
        head = (f'"chain":"{chain.id}"', f'"v":{SCHEMA_VERSION}')
        self._head = head
        self._outcome = outcome_template(head).fill
        self._succeeded = outcome_template(head, succeeded=True).fill
        self._masked = masked_template(head).fill
        self._counts: dict[tuple[Any, ...], str] = {}  # masked counts -> their encoding
        self._sid: tuple[Any, str] = (None, "null")  # the last outcome's session id, encoded
        self._statements: dict[tuple[Any, ...], tuple[Any, Any, Template]] = {}
        # the last statement template used (session, prepared, kind, fill): a run of
        # one statement skips the lookup
        self._last: tuple[Any, Any, str, Fill] = (None, None, "", self._outcome)

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
        self._emit((line,), strict=spool is None)
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
            self._emit((line,), strict=False)
            chain.advance(seq, digest, signed)
            self.written += 1
        spool.rotate()

    # -- many records ----------------------------------------------------------

    def append_many(self, entries: Sequence[Entry]) -> None:
        """Seal and write entries in order, batching writes; losses go to ``on_lost``.

        The chain's position is kept in locals while intents and outcomes are
        sealed from their templates, and written back to the chain before
        anything else is sealed and at the end of each run.
        """
        chain, spool = self.chain, self.spool
        state = chain.state()
        run_entries: list[Entry] = []
        lines: list[bytes] = []
        refs: list[IntentRef] = []
        size = 0
        room = spool.room() if spool is not None else 1 << 62
        intents = self._intents
        fast = chain.signing != "every"
        every = chain.checkpoint_every if chain.signing == "checkpoint" else 0
        seal_outcome, seal_statement = self._seal_outcome, self._seal_statement
        seq, prev, unsigned = chain.last_seq, chain.last_hash, chain.unsigned_from
        for entry in entries:
            if size > room and spool is not None and spool.due_for_rotation(size):
                self._set_chain(seq, prev, unsigned)
                self._write_run(run_entries, lines, refs, state)
                run_entries, lines, refs, size = [], [], [], 0
                try:
                    self._rotate()
                except OSError as exc:
                    self.on_lost([(_CHECKPOINT, 0)], exc)
                state, room = chain.state(), spool.room()
                seq, prev, unsigned = chain.last_seq, chain.last_hash, chain.unsigned_from
            kind = entry[0]
            sealed: tuple[str, bytes] | None = None
            signed = False
            try:
                if fast:
                    if kind == "outcome":
                        sealed = seal_outcome(entry, seq + 1, prev)
                    elif kind in {"intent", "refused"}:
                        sealed = seal_statement(entry, seq + 1, prev)
                    elif kind == "masked":
                        sealed = self._seal_masked(entry, seq + 1, prev)
            except UnicodeEncodeError:  # a lone surrogate: the reference path replaces it
                sealed = None
            if sealed is None:
                self._set_chain(seq, prev, unsigned)
                try:
                    _, digest, line, signed = self._seal(entry)
                except Exception as exc:  # not encodable: lose this one record, say so
                    self.on_lost([entry], exc)
                    self._resolve_lost(entry)
                    continue
            else:
                digest, line = sealed
            seq += 1
            prev = digest
            if signed:
                unsigned = None
            elif unsigned is None:
                unsigned = seq
                chain.unsigned_since = time.monotonic()
            if kind == "intent":
                ref = entry[6]
                if ref is not None:
                    intents[id(ref)] = (seq, digest)
                    refs.append(ref)
            run_entries.append(entry)
            lines.append(line)
            size += len(line) + 1
            if every and unsigned is not None and seq - unsigned + 1 >= every:
                self._set_chain(seq, prev, unsigned)
                cp = self._seal((_CHECKPOINT, time.time_ns()))
                seq, prev, unsigned = cp[0], cp[1], (None if cp[3] else unsigned)
                lines.append(cp[2])
                size += len(cp[2]) + 1
        self._set_chain(seq, prev, unsigned)
        self._write_run(run_entries, lines, refs, state)

    def _set_chain(self, seq: int, prev: str, unsigned: int | None) -> None:
        chain = self.chain
        chain.last_seq, chain.last_hash, chain.unsigned_from = seq, prev, unsigned

    def _write_run(
        self, entries: list[Entry], lines: list[bytes], refs: list[IntentRef], state: ChainState
    ) -> None:
        if not lines:
            return
        intents = self._intents
        try:
            if self.spool is not None:
                self.spool.write_many(lines)
        except OSError:
            self.chain.restore(state)
            intents.clear()
            self._one_by_one(entries)
            return
        self.written += len(lines)
        for ref in refs:
            ref._seq, ref._hash = intents[id(ref)]  # IntentRef.resolve, inlined
        intents.clear()
        self._emit(lines, strict=False)

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
        if chain.signing != "every":
            kind = entry[0]
            try:
                seq, prev = chain.last_seq + 1, chain.last_hash
                if kind == "outcome":
                    return (seq, *self._seal_outcome(entry, seq, prev), False)
                if kind == "masked":
                    return (seq, *self._seal_masked(entry, seq, prev), False)
                if kind in {"intent", "refused"}:
                    sealed = self._seal_statement(entry, seq, prev)
                    if sealed is not None:
                        return (seq, *sealed, False)
            except UnicodeEncodeError:  # a lone surrogate: the reference path replaces it
                pass
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

    def _seal_statement(self, entry: Entry, seq: int, prev: str) -> tuple[str, bytes] | None:
        """An unsigned intent/refused record from its statement plan's template (None: can't)."""
        kind, ns, session, prepared, text, extra, _ = entry
        last = self._last
        if last[0] is session and last[1] is prepared and last[2] == kind and not extra:
            fill = last[3]
        else:
            found = self._statement_fill(kind, session, prepared, extra)
            if found is None:
                return None
            fill = found
        if extra:
            return fill(
                encode_value(text),
                quoted_timestamp_ns(ns),
                str(seq),
                f'"{prev}"',
                *[encode_value(v) for v in extra.values()],
            )
        sealed: tuple[str, bytes] = fill(
            encode_value(text), quoted_timestamp_ns(ns), str(seq), f'"{prev}"'
        )
        return sealed

    def _statement_fill(self, kind: str, session: Any, prepared: Any, extra: Any) -> Fill | None:
        """The template of this session's records of this statement plan (None: can't)."""
        key = (id(session), id(prepared), kind, tuple(extra) if extra else ())
        found = self._statements.get(key)
        if found is None or found[0] is not session or found[1] is not prepared:
            if session.frags is None or prepared.frags is None:
                return None
            static = [*session.frags, *prepared.frags, KIND_FRAGMENTS[kind]]
            if self.redact:
                static.append(REDACTED)
            if len(self._statements) >= 4096:
                self._statements.clear()
            template = statement_template(self._head, static, key[3])
            found = self._statements[key] = (session, prepared, template)
        fill = found[2].fill
        if not extra:
            self._last = (session, prepared, kind, fill)
        return fill

    def _seal_outcome(self, entry: Entry, seq: int, prev: str) -> tuple[str, bytes]:
        """An unsigned outcome record from the chain's outcome template.

        A statement that succeeded (no SQLSTATE, no error) uses a template with
        those two members constant: the common case fills ten slots, not twelve.
        """
        _, ns, ref, rowcount, rows_returned, duration_us, sqlstate, error, masking = entry
        intent = self._intents.get(id(ref))
        if intent is None:
            intent = (ref._seq, ref._hash or "")
        session_id = ref.session_id
        sid = self._sid
        if sid[0] is not session_id:  # runs of one session's statements encode it once
            sid = self._sid = (session_id, encode_value(session_id))
        if sqlstate is None and error is None:
            return self._succeeded(
                sid[1],
                f'"{intent[1]}"',
                str(intent[0]),
                "null" if rowcount is None or rowcount < 0 else str(rowcount),
                str(rows_returned) if type(rows_returned) is int else encode_value(rows_returned),
                "null" if duration_us is None else str(duration_us),
                "null" if masking is None else encode_value(masking),
                quoted_timestamp_ns(ns),
                str(seq),
                f'"{prev}"',
            )
        return self._outcome(
            encode_value(session_id),
            f'"{intent[1]}"',
            str(intent[0]),
            "null" if rowcount is None or rowcount < 0 else str(rowcount),
            "null" if rows_returned is None else encode_value(rows_returned),
            "null" if duration_us is None else str(duration_us),
            "null" if masking is None else encode_value(masking),
            quoted_timestamp_ns(ns),
            str(seq),
            f'"{prev}"',
            "null" if sqlstate is None else encode_value(sqlstate),
            "null" if error is None else encode_value(error),
        )

    def _seal_masked(self, entry: Entry, seq: int, prev: str) -> tuple[str, bytes]:
        """An unsigned masked record from the chain's masked template.

        The ``counts`` member is encoded once per distinct list of counts (a
        statement run again usually masks as many values as before).
        """
        _, ns, ref, counts = entry
        intent = self._intents.get(id(ref))
        if intent is None:
            intent = (ref._seq, ref._hash or "")
        encoded = self._counts.get(counts)
        if encoded is None:
            if len(self._counts) >= 4096:
                self._counts.clear()
            encoded = self._counts[counts] = encode_value(masked_fields(counts))
        return self._masked(
            encode_value(ref.session_id),
            f'"{intent[1]}"',
            str(intent[0]),
            encoded,
            quoted_timestamp_ns(ns),
            str(seq),
            f'"{prev}"',
        )

    def _emit(self, lines: Sequence[bytes], *, strict: bool) -> None:
        if not self.sinks:
            return
        records = [AuditRecord(_parse(line), line) for line in lines]
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
