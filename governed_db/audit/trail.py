"""``AuditTrail``: the one object the gate talks to.

One trail is one chain: it numbers, links, hashes and signs every record it
writes, appends it to the local spool (and inline sinks) in chain order, and
lets the forwarder feed remote sinks from the spool. It is thread safe; every
connection of a process that uses the same settings shares one trail
(``AuditTrail.shared``).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import uuid
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from governed_db.audit import recovery
from governed_db.audit.canonical import canonical_json, jsonable
from governed_db.audit.chain import Chain
from governed_db.audit.forwarder import Forwarder
from governed_db.audit.keys import Signer, load_signer
from governed_db.audit.records import (
    AuditRecord,
    AuditSession,
    IntentRef,
    connection_fields,
    genesis_fields,
    outcome_fields,
    statement_body,
)
from governed_db.audit.settings import AuditSettings
from governed_db.audit.sinks import AuditSink, build_sink
from governed_db.audit.spool import Spool
from governed_db.errors import AuditError

__all__ = ["AuditTrail"]

log = logging.getLogger("governed_db.audit")


class AuditTrail:
    """Writes intent, outcome, refused and session records to one signed hash chain."""

    _shared: ClassVar[dict[bytes, AuditTrail]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        settings: AuditSettings | None = None,
        *,
        sinks: Sequence[AuditSink] = (),
        signer: Signer | None = None,
        load_key: bool = True,
    ) -> None:
        self.settings = settings = settings or AuditSettings()
        built = [build_sink(spec) for spec in settings.sinks]
        all_sinks = [*built, *sinks]
        self.sinks = tuple(all_sinks)
        self._inline = [s for s in all_sinks if not s.remote]
        remote = [s for s in all_sinks if s.remote]
        if remote and settings.path is None:
            raise AuditError("remote audit sinks are fed from the local spool: set audit.path")
        if signer is None and load_key:
            signer = load_signer()
        self.signer = signer
        if signer is None:
            log.warning(
                "audit records will NOT be signed: no signing key found "
                "(run `governed-db keys init` or set GOVERNED_DB_SIGNING_KEY)"
            )
        else:
            log.info("audit: signing with key %s from %s", signer.kid, signer.source)
        self.chain = Chain(
            signer,
            signing=settings.signing,
            checkpoint_every=settings.checkpoint_every,
            checkpoint_seconds=settings.checkpoint_seconds,
        )
        self.lost = 0  # records that could not be written
        self.written = 0
        self.closed = False
        self._lock = threading.Lock()
        self._param_key = os.urandom(32)  # HMAC key for hashed parameters, never written
        self._stop = threading.Event()
        self.spool: Spool | None = None
        self.forwarder: Forwarder | None = None
        if settings.path is not None:
            self.spool = Spool(
                settings.path,
                self.chain.id,
                durability=settings.durability,
                rotate_bytes=settings.rotate_bytes,
                rotate_seconds=settings.rotate_seconds,
            )
            try:
                self.spool.open()
            except OSError as exc:
                raise AuditError(f"audit spool {settings.path} cannot be opened: {exc}") from exc
            self.forwarder = Forwarder(settings.path, remote) if remote else None
            recovery.recover_orphans(settings.path, self.chain.id, signer, self.forwarder)
            if self.forwarder is not None:
                self.forwarder.follow(self.chain.id)
        try:
            self._genesis()
        except AuditError:
            if self.spool is not None:
                self.spool.close(keep_lock_file=True)
            raise
        if self.forwarder is not None:
            self.forwarder.start()
        self._ticker = threading.Thread(target=self._tick, name="governed_db-audit", daemon=True)
        self._ticker.start()
        atexit.register(_close_at_exit, weakref.ref(self))

    # -- construction -------------------------------------------------------

    @classmethod
    def from_settings(
        cls,
        settings: Mapping[str, Any] | AuditSettings | None,
        *,
        sinks: Sequence[AuditSink] = (),
        signer: Signer | None = None,
    ) -> AuditTrail:
        """A new trail from the policy file's ``audit`` mapping (validated here)."""
        if not isinstance(settings, AuditSettings):
            settings = AuditSettings.from_mapping(settings)
        return cls(settings, sinks=sinks, signer=signer)

    @classmethod
    def shared(
        cls,
        settings: Mapping[str, Any] | None,
        *,
        sinks: Sequence[AuditSink] = (),
        signer: Signer | None = None,
    ) -> AuditTrail:
        """The open trail for these settings (and sink objects), creating it once per process."""
        key = canonical_json(
            [jsonable(settings or {}), [id(s) for s in sinks], signer.kid if signer else None]
        )
        with cls._shared_lock:
            trail = cls._shared.get(key)
            if trail is None or trail.closed:
                trail = cls._shared[key] = cls.from_settings(settings, sinks=sinks, signer=signer)
            return trail

    # -- the gate's API -----------------------------------------------------

    def session(
        self,
        conn_info: Mapping[str, Any],
        identity: Mapping[str, Any],
        environment: str,
        *,
        session_id: str | None = None,
    ) -> AuditSession:
        """Record who connected where; the handle goes into every later call.

        ``conn_info`` holds libpq names (host, port, dbname, user,
        application_name). Raises ``AuditError`` if the record can't be made
        durable and ``fail_closed`` is on.
        """
        fields = {
            **connection_fields(conn_info),
            "identity": jsonable(dict(identity)),
            "deployment.environment.name": environment,
        }
        session = AuditSession(session_id or uuid.uuid4().hex, fields)
        self._write({"kind": "session", "session.id": session.id, **fields}, critical=True)
        return session

    def end_session(self, session: AuditSession) -> None:
        """Record that the connection closed (best effort)."""
        self._write({"kind": "end", "session.id": session.id}, critical=False)

    def intent(
        self,
        session: AuditSession,
        statement: str,
        *,
        normalized: str | None = None,
        params: Any = None,
        facts: Mapping[str, Any] | None = None,
        decision: Mapping[str, Any],
    ) -> IntentRef:
        """Record a statement about to run; durable per ``durability`` when this returns.

        ``normalized`` is the analyzer's literal-free text, used instead of
        ``statement`` when ``redact_literals`` is on. Raises ``AuditError`` if
        the record could not be written and ``fail_closed`` is on: the caller
        must then not run the statement.
        """
        body = self._body("intent", session, statement, normalized, params, facts, decision)
        record = self._write(body, critical=True)
        if record is None:
            return IntentRef(session.id, -1, "", self.chain.id)
        return IntentRef(session.id, record.seq, record.hash, self.chain.id)

    def outcome(
        self,
        ref: IntentRef,
        *,
        rowcount: int | None = None,
        rows_returned: int | None = None,
        duration_ms: float | None = None,
        sqlstate: str | None = None,
        error: str | None = None,
        masking: Mapping[str, Any] | None = None,
    ) -> None:
        """Record how a statement ended. Never raises for I/O (the statement already ran)."""
        body = outcome_fields(
            ref,
            rowcount=rowcount,
            rows_returned=rows_returned,
            duration_ms=duration_ms,
            sqlstate=sqlstate,
            error=error,
            masking=masking,
        )
        self._write(body, critical=False)

    def refused(
        self,
        session: AuditSession,
        statement: str,
        *,
        normalized: str | None = None,
        params: Any = None,
        facts: Mapping[str, Any] | None = None,
        decision: Mapping[str, Any],
    ) -> None:
        """Record a refused statement (decision only; never raises for I/O)."""
        body = self._body("refused", session, statement, normalized, params, facts, decision)
        self._write(body, critical=False)

    def sync(self) -> None:
        """fsync the spool now (whatever the durability setting)."""
        if self.spool is not None:
            self.spool.sync()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until remote sinks have everything written so far; False on timeout."""
        if self.forwarder is None:
            return True
        return self.forwarder.drain(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write the signed close record, flush remote sinks (up to ``timeout``), stop."""
        with self._lock:
            if self.closed:
                return
            try:
                self._append_locked(
                    {"kind": "close", "reason": "closed", "records": self.chain.last_seq + 2}
                )
            except OSError as exc:
                self.lost += 1
                log.error("audit: close record could not be written: %s", exc)
            self.closed = True
        self._stop.set()
        if self.spool is not None:
            try:
                self.spool.sync()
            except OSError as exc:
                log.error("audit spool could not be synced at close: %s", exc)
        delivered = True
        if self.forwarder is not None:
            delivered = self.forwarder.drain(timeout) and self.forwarder.chain_done(self.chain.id)
            if not delivered:
                log.warning(
                    "audit: remote sinks not caught up after %.1fs; they resume from "
                    "the spool at the next start",
                    timeout,
                )
            self.forwarder.stop()
        if self.spool is not None:
            self.spool.close(keep_lock_file=not delivered)
        for sink in self._inline:
            sink.close()

    def __enter__(self) -> AuditTrail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------

    def _body(self, kind: str, session: AuditSession, *rest: Any) -> dict[str, Any]:
        s = self.settings
        return statement_body(
            kind,
            session,
            *rest,
            redact=s.redact_literals,
            parameters=s.parameters,
            param_key=self._param_key,
        )

    def _genesis(self) -> None:
        s = self.settings
        body = genesis_fields(
            self.chain.signing,
            s.checkpoint_every,
            s.durability if self.spool is not None else "memory",
        )
        with self._lock:
            try:
                self._append_locked(body, sign=True)
            except OSError as exc:
                raise AuditError(f"audit spool {s.path} is not writable: {exc}") from exc

    def _append_locked(
        self, body: dict[str, Any], *, sign: bool = True, rotate: bool = True
    ) -> tuple[AuditRecord, int]:
        """Seal, write, commit (lock held). Raises OSError; the chain is unchanged then.

        A segment due for rotation is first sealed with a checkpoint (when the
        chain has an unsigned tail), so every closed segment ends signed.
        """
        spool = self.spool
        if rotate and spool is not None and spool.due_for_rotation(0):
            if self.chain.unsigned_from is not None and self.chain.signing != "none":
                self._append_locked(self.chain.checkpoint_body(), rotate=False)
            spool.rotate()
        record = self.chain.seal(body, sign=sign)
        token = spool.write(record.line) if spool is not None else 0
        for sink in self._inline:
            try:
                sink.emit((record,))
            except Exception as exc:
                if spool is None:
                    raise OSError(f"sink {sink.name}: {exc}") from exc
                log.error("audit sink %s failed: %s", sink.name, exc)
        self.chain.commit(record)
        self.written += 1
        return record, token

    def _write(self, body: dict[str, Any], *, critical: bool) -> AuditRecord | None:
        fail_closed = critical and self.settings.fail_closed
        try:
            with self._lock:
                if self.closed:
                    raise OSError("the audit trail is closed")
                record, token = self._append_locked(body, sign=False)
                if self.chain.checkpoint_due():
                    self._append_locked(self.chain.checkpoint_body())
            if self.spool is not None and self.settings.durability == "strict":
                self.spool.sync_to(token)
        except OSError as exc:
            with self._lock:
                self.lost += 1
            where = self.settings.path or "inline sinks"
            if fail_closed:
                raise AuditError(
                    f"audit record could not be made durable in {where}: {exc}. "
                    "fail_closed is on, so the statement was not run."
                ) from exc
            log.error(
                "audit: %s record LOST (%s): %s; %d lost so far",
                body.get("kind"),
                where,
                exc,
                self.lost,
            )
            return None
        if self.forwarder is not None:
            self.forwarder.notify()
        return record

    def _tick(self) -> None:
        s = self.settings
        period = min(
            s.batch_ms / 1000 if s.durability == "batch" else 1.0, s.checkpoint_seconds / 4, 1.0
        )
        while not self._stop.wait(period):
            try:
                if self.spool is not None and s.durability == "batch":
                    self.spool.sync()
                with self._lock:
                    if not self.closed and self.chain.checkpoint_due():
                        self._append_locked(self.chain.checkpoint_body())
            except OSError as exc:
                log.error("audit: background sync/checkpoint failed: %s", exc)


def _close_at_exit(ref: weakref.ref[AuditTrail]) -> None:
    trail = ref()
    if trail is not None and not trail.closed:
        trail.close(timeout=5.0)
