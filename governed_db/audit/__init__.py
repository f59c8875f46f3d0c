"""The audit trail: signed, hash-chained records of everything the gate does.

Usage (the gate's side)::

    trail = AuditTrail.shared(policy_audit_mapping)
    session = trail.session(conn_info, identity, environment)
    plan = trail.prepare(facts, decision)  # once per statement plan (or facts=/decision=)
    ref = trail.intent(session, sql, normalized=..., prepared=plan)
    ...  # run the statement
    trail.outcome(ref, rowcount=..., rows_returned=..., duration_ms=...)
    trail.refused(session, sql, prepared=plan)  # for a blocked statement

Pieces: ``canonical`` (bytes that are hashed), ``chain`` (seq/prev/hash/sig),
``keys`` (Ed25519 keys: keyring, env or 0600 file), ``entries`` + ``writer``
(turning queued entries into sealed lines), ``recorder`` + ``background``
(write on the caller's thread, or queue for one writer thread), ``spool``
(JSON Lines segments, durability, rotation), ``forwarder`` + ``sinks``
(remote delivery), ``recovery`` (crashed writers), ``verify`` and ``reader``
(reading back).
Errors: ``AuditError`` when a record cannot be made durable (fail closed) or a
key is unusable; ``PolicyError`` (with ``key``) for invalid settings.
"""

from __future__ import annotations

from governed_db.audit.canonical import canonical_json, record_hash
from governed_db.audit.keys import Signer, init_key, load_signer
from governed_db.audit.records import AuditRecord, AuditSession, IntentRef, Prepared
from governed_db.audit.settings import AuditSettings
from governed_db.audit.sinks import AuditSink, MemorySink, StdoutSink
from governed_db.audit.trail import AuditTrail
from governed_db.audit.trust import PublicKeys
from governed_db.audit.verify import Problem, Verifier, VerifyReport, spool_files

__all__ = [
    "AuditRecord",
    "AuditSession",
    "AuditSettings",
    "AuditSink",
    "AuditTrail",
    "IntentRef",
    "MemorySink",
    "Prepared",
    "Problem",
    "PublicKeys",
    "Signer",
    "StdoutSink",
    "Verifier",
    "VerifyReport",
    "canonical_json",
    "init_key",
    "load_signer",
    "record_hash",
    "spool_files",
]
