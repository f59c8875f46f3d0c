"""``AuditTrail``: the one object the gate talks to.

One trail is one chain: it numbers, links, hashes and signs every record it
writes, appends it to the local spool (and inline sinks) in chain order, and
lets the forwarder feed remote sinks from the spool. It is thread safe; every
connection of a process that uses the same settings shares one trail
(``AuditTrail.shared``).

With a spool at ``durability: batch`` or ``none`` the caller only queues a
cheap entry (under the trail's lock, so queue order is chain order) and one
writer thread per trail seals, encodes and writes (``background``, ``writer``).
``strict``, and trails without a spool, seal and write on the caller's thread
under the lock, as write-ahead as before.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from governed_db.audit import heads, keys, recovery
from governed_db.audit.canonical import CanonicalJSON, canonical_json, jsonable
from governed_db.audit.chain import Chain
from governed_db.audit.forwarder import Forwarder
from governed_db.audit.keys import Signer, load_signer
from governed_db.audit.recorder import Recorder
from governed_db.audit.records import (
    AuditSession,
    IntentRef,
    Prepared,
    PreparedCache,
    connection_fields,
    genesis_fields,
    masked_counts,
    parameter_fields,
    prepare,
)
from governed_db.audit.settings import AuditSettings
from governed_db.audit.sinks import AuditSink, build_sink
from governed_db.audit.spool import Spool
from governed_db.audit.writer import SpoolWriter
from governed_db.errors import AuditError

__all__ = ["EVENT_KINDS", "AuditTrail"]

#: Kinds of records ``AuditTrail.event`` writes (statements have their own).
EVENT_KINDS = ("approval",)
#: Names the chain gives every record; an event's fields may not use them.
_CHAIN_FIELDS = frozenset({"v", "kind", "chain", "seq", "ts", "prev", "hash", "kid", "sig"})

log = logging.getLogger("governed_db.audit")


class AuditTrail:
    """Writes session, intent, outcome, masked and refused records to one signed hash chain."""

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
        if signer is not None:
            _refuse_retired(signer)
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
        self._closing = threading.Lock()
        self._param_key = os.urandom(32)  # HMAC key for hashed parameters, never written
        self._redact = settings.redact_literals
        self._params = settings.parameters
        self._prepared = PreparedCache()
        self._wait = self._wait_for  # bound once: every queued intent's ref holds it
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
        writer = SpoolWriter(self.chain, self.spool, self._inline, redact=self._redact)
        self._rec = rec = Recorder(settings, writer, self.spool, self.forwarder)
        genesis = genesis_fields(
            self.chain.signing,
            settings.checkpoint_every,
            settings.durability if self.spool is not None else "memory",
        )
        genesis.update(_witnessed_facts(settings, self.chain.id, signer))
        try:
            rec.start(("body", time.time_ns(), genesis, True))
        except AuditError:
            if self.spool is not None:
                self.spool.close(keep_lock_file=True)
            raise
        if self.forwarder is not None:
            self.forwarder.start()
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

    @property
    def written(self) -> int:
        """Records written so far (checkpoints included)."""
        return self._rec.writer.written

    @property
    def lost(self) -> int:
        """Records that could not be written (each was logged at ERROR)."""
        return self._rec.lost

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._rec.closed

    @property
    def failure(self) -> BaseException | None:
        """The writer thread's first write error (the trail has failed), else None."""
        return self._rec.failure

    @staticmethod
    def prepare(facts: Mapping[str, Any] | None, decision: Mapping[str, Any]) -> Prepared:
        """The facts + decision part of intent/refused records, converted once.

        Pass it as ``prepared=`` to :meth:`intent` / :meth:`refused`; cache one
        per distinct statement plan. Raises ValueError if ``decision`` has no action.
        """
        return prepare(facts, decision)

    def session(
        self,
        conn_info: Mapping[str, Any],
        identity: Mapping[str, Any],
        environment: str,
        *,
        session_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> AuditSession:
        """Record who connected where; the handle goes into every later call.

        ``conn_info`` holds libpq names (host, port, dbname, user,
        application_name); ``extra`` adds fields (e.g. ``{"audit": "off"}``).
        Raises ``AuditError`` if the record can't be made durable (or, with a
        writer thread, an earlier one failed) and ``fail_closed`` is on.
        """
        fields = {
            **connection_fields(conn_info),
            "identity": jsonable(dict(identity)),
            "deployment.environment.name": environment,
            **jsonable(dict(extra or {})),
        }
        session = AuditSession(session_id or uuid.uuid4().hex, fields)
        self._rec.put("session", (session,), critical=True)
        return session

    def event(self, kind: str, fields: Mapping[str, Any]) -> None:
        """Record something that is not a statement, e.g. an approval decision (``approval``).

        ``kind`` must be one of ``EVENT_KINDS``; ``fields`` are JSON values and may not
        use the chain's own names. Written like an intent: durable per ``durability``,
        and under ``fail_closed`` an event that cannot be written raises ``AuditError``.
        """
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown audit event kind {kind!r}; expected one of {EVENT_KINDS}")
        body = jsonable(dict(fields))
        taken = sorted(set(body) & _CHAIN_FIELDS)
        if taken:
            raise ValueError(f"audit event fields may not be named {', '.join(taken)}")
        body["kind"] = kind
        self._rec.put("body", (body, False), critical=True)

    def end_session(self, session: AuditSession, reason: str = "closed") -> None:
        """Record that the session ended (best effort): ``closed``, ``broken`` or ``exit``."""
        self._rec.put("end", (session.id, reason), critical=False)

    def intent(
        self,
        session: AuditSession,
        statement: str,
        *,
        normalized: str | None = None,
        params: Any = None,
        facts: Mapping[str, Any] | None = None,
        decision: Mapping[str, Any] | None = None,
        prepared: Prepared | None = None,
    ) -> IntentRef:
        """Record a statement about to run; durable per ``durability`` when this returns.

        ``normalized`` is the analyzer's literal-free text, used instead of
        ``statement`` when ``redact_literals`` is on; ``prepared`` (from
        :meth:`prepare`) replaces ``facts`` and ``decision``. Raises
        ``AuditError`` when ``fail_closed`` is on and the record could not be
        written (strict) or the trail has failed: the caller must then not run
        the statement. With a writer thread the returned ref is filled in
        once the record is written; ``outcome()`` takes it at once.
        """
        if prepared is None:
            prepared = self._prepared.get(facts, decision)
        text = normalized if self._redact else statement
        extra = (
            None
            if params is None or self._params == "off"
            else parameter_fields(params, self._params, self._param_key)
        )
        rec = self._rec
        if rec.bg is None:
            ref = IntentRef(session.id, -1, "", self.chain.id)
        else:  # sealed on the writer thread: reading its seq/hash before then waits for it
            ref = IntentRef(session.id, -1, None, self.chain.id, wait=self._wait)
        if not rec.put("intent", (session, prepared, text, extra, ref), critical=True):
            ref.resolve(-1, "")
        return ref

    def outcome(
        self,
        ref: IntentRef,
        *,
        rowcount: int | None = None,
        rows_returned: int | None = None,
        duration_ms: float | None = None,
        sqlstate: str | None = None,
        error: str | None = None,
        masking: Mapping[str, Any] | CanonicalJSON | None = None,
        duration_us: int | None = None,
    ) -> None:
        """Record how a statement ended. Never raises for I/O (the statement already ran).

        The duration is given in ms (``duration_ms``) or whole µs (``duration_us``),
        not both. ``masking`` may be given pre-encoded (``canonical_text``) when it recurs.
        """
        if duration_ms is not None:
            if duration_us is not None:
                raise TypeError("give duration_ms or duration_us, not both")
            duration_us = round(duration_ms * 1000)
        if masking is not None and type(masking) is not CanonicalJSON:
            masking = jsonable(masking)
        self._rec.put(
            "outcome",
            (ref, rowcount, rows_returned, duration_us, sqlstate, error, masking),
            critical=False,
        )

    def masked(self, ref: IntentRef, counts: Sequence[Sequence[Any]]) -> None:
        """Record what masking did to one result of a statement: a ``masked`` record.

        Written once the result has been fetched (after the statement's outcome):
        per column, rule and method, how many values were masked, never a value.
        ``counts`` holds ``(column, source, rule_id, method, values)`` items (masking's
        ``MaskCount``; ``source`` None for a computed column). Never raises for I/O;
        raises TypeError for a malformed count.
        """
        self._rec.put("masked", (ref, masked_counts(counts)), critical=False)

    @property
    def parameters(self) -> str:
        """How statement parameters are recorded: ``off``, ``hash`` or ``plain``."""
        return self._params

    def refused(
        self,
        session: AuditSession,
        statement: str,
        *,
        normalized: str | None = None,
        params: Any = None,
        facts: Mapping[str, Any] | None = None,
        decision: Mapping[str, Any] | None = None,
        prepared: Prepared | None = None,
    ) -> None:
        """Record a refused statement (decision only; never raises for I/O)."""
        prepared, text, extra = self._parts(
            statement, normalized, params, facts, decision, prepared
        )
        self._rec.put("refused", (session, prepared, text, extra, None), critical=False)

    def _parts(
        self,
        statement: str,
        normalized: str | None,
        params: Any,
        facts: Mapping[str, Any] | None,
        decision: Mapping[str, Any] | None,
        prepared: Prepared | None,
    ) -> tuple[Prepared, str | None, Any]:
        """What intent and refused records share: prepared fields, text, parameters."""
        if prepared is None:
            prepared = self._prepared.get(facts, decision)
        text = normalized if self._redact else statement
        extra = (
            parameter_fields(params, self._params, self._param_key) if params is not None else None
        )
        return prepared, text, extra

    def sync(self) -> None:
        """Write out everything queued, then fsync the spool (whatever the durability)."""
        self._rec.drain(None)
        if self.spool is not None:
            self.spool.sync()

    def flush(self, timeout: float = 5.0) -> bool:
        """Write out everything queued so far, then wait for remote sinks; False on timeout.

        Readers of the spool (``iter_records``, ``verify``, ``audit tail``) see
        a record once it has been flushed.
        """
        deadline = time.monotonic() + timeout
        if not self._rec.drain(timeout):
            return False
        if self.forwarder is None:
            return True
        return self.forwarder.drain(max(0.0, deadline - time.monotonic()))

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued and the signed close record, flush remote sinks, stop.

        Queued records are always written (however long that takes); ``timeout``
        bounds the wait for remote sinks.
        """
        with self._closing:
            if self._rec.closed:
                return
            self._rec.close()
        if self.spool is not None:
            try:
                self.spool.sync()
            except OSError as exc:
                log.error("audit spool could not be synced at close: %s", exc)
        delivered = True
        if self.forwarder is not None:
            self.forwarder.notify()
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

    def _wait_for(self, ref: IntentRef) -> None:
        self._rec.drain(None)


def _witnessed_facts(
    settings: AuditSettings, chain_id: str, signer: Signer | None
) -> dict[str, Any]:
    """Genesis fields that others can check: closed chains seen, how our key came to be.

    ``spool_heads``: the close records of the other chains in the spool, so a
    chain that was closed normally and later cut and resealed by "recovery"
    no longer matches what this chain saw. ``key_rotations``: the rotation
    records that lead from an older key to ours, so a verifier that trusts
    the older key can trust ours.
    """
    out: dict[str, Any] = {}
    if settings.path is not None:
        try:
            seen = heads.closed_heads(settings.path, chain_id)
        except OSError as exc:
            log.warning("audit: could not list the spool's closed chains: %s", exc)
            seen = []
        if seen:
            out["spool_heads"] = seen
    if signer is not None:
        rotations = keys.rotations_to(signer.kid)
        if rotations:
            out["key_rotations"] = rotations
    return out


def _refuse_retired(signer: Signer) -> None:
    """A key retired by a rotation record may not start a new chain."""
    doc = keys.retired_by(signer.kid)
    if doc is not None:
        raise AuditError(
            f"signing key {signer.kid} ({signer.source}) was retired at {doc['not_before']} "
            f"when key {doc['new']} replaced it: chains it starts now fail verification. "
            "Load the new key (governed-db keys status)"
        )


if hasattr(os, "register_at_fork"):  # a child opens trails (chains) of its own
    os.register_at_fork(after_in_child=AuditTrail._shared.clear)


def _close_at_exit(ref: weakref.ref[AuditTrail]) -> None:
    trail = ref()
    if trail is not None and not trail.closed:
        trail.close(timeout=5.0)
