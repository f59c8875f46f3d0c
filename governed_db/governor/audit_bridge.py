"""The gate's side of the audit trail: our values in, the trail's plain mappings out.

One audit session per connection, plus one per identity that acts through it
(``acting_as``), so every record says who acted. Error messages are never
recorded (they can quote row values); the SQLSTATE and the error's class are.
Role statements (``ALTER ROLE ... PASSWORD '...'``) are recorded without their
literals whatever ``redact_literals`` says.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from governed_db.audit import AuditSession, AuditTrail, IntentRef, Prepared
from governed_db.audit.canonical import CanonicalJSON, canonical_text
from governed_db.errors import GovernanceError
from governed_db.governor.base import ClientMerged, Session, Ticket
from governed_db.identity import Identity
from governed_db.masking import MaskCount
from governed_db.policy import Decision
from governed_db.sql import Facts

__all__ = ["AuditBridge", "AuditOff", "decision_fields", "facts_fields"]

log = logging.getLogger("governed_db.audit")
_perf_counter_ns = time.perf_counter_ns


def facts_fields(facts: Facts) -> dict[str, Any]:
    """What the analyzer saw, as the trail records it."""
    primary = facts.primary
    return {
        "operation": primary.operation,
        "statement_class": primary.statement_class,
        "statement_count": facts.statement_count,
        "tables_read": sorted(facts.tables_read),
        "tables_written": sorted(facts.tables_written),
        "functions": sorted(set().union(*(s.functions for s in facts.statements))),
        "opaque": facts.opaque,
        "has_where": primary.has_where,
        "where_is_trivial": primary.where_is_trivial,
        "has_limit": primary.has_limit,
        "fingerprint": facts.fingerprint,
        "backend": facts.backend,
    }


def decision_fields(decision: Decision, approval_id: str | None = None) -> dict[str, Any]:
    """What the policy decided, as the trail records it."""
    return {
        "action": decision.action,
        "would_be": decision.would_be,
        "rule_id": decision.rule_id,
        "reason": decision.reason,
        "hint": decision.hint,
        "approval_id": approval_id,
    }


# facts, decision (kept alive for the id keys), prepared fields, normalized text,
# and whether it is a role statement (recorded without literals).
_Fields = tuple[Facts, Decision, Prepared, str, bool]


def _normalized(facts: Facts) -> str:
    return "; ".join(s.normalized for s in facts.statements)


def _masking_fields(plan: Any) -> dict[str, Any]:
    """The result's columns (source or computed) and what masking does to each; no values."""
    return {"columns": plan.describe()}


class AuditBridge:
    """Feeds one ``AuditTrail`` from the gate."""

    __slots__ = ("_acting", "_fields", "_lock", "_masking", "_serial", "trail")

    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail
        self._lock = threading.Lock()
        self._acting: dict[tuple[str, Identity], AuditSession] = {}
        self._serial = itertools.count()  # suffixes of acting-identity session ids
        # id(facts), id(decision) -> the objects (kept alive), their prepared record
        # fields and normalized text: built once per statement plan.
        self._fields: dict[tuple[int, int], _Fields] = {}
        # id(mask plan) -> the plan (kept alive), its masking field in canonical form:
        # plans are frozen and shared between results, so this is encoded once per plan.
        self._masking: dict[int, tuple[Any, CanonicalJSON]] = {}

    def _masking_for(self, plan: Any) -> CanonicalJSON | None:
        if plan is None:
            return None
        found = self._masking.get(id(plan))
        if found is None or found[0] is not plan:
            if len(self._masking) > 4096:
                self._masking.clear()
            found = self._masking[id(plan)] = (plan, canonical_text(_masking_fields(plan)))
        return found[1]

    def _fields_for(self, facts: Facts, decision: Decision) -> _Fields:
        key = (id(facts), id(decision))
        found = self._fields.get(key)
        if found is None or found[0] is not facts or found[1] is not decision:
            prepared = self.trail.prepare(facts_fields(facts), decision_fields(decision))
            role = any(s.statement_class == "role" for s in facts.statements)
            found = (facts, decision, prepared, _normalized(facts), role)
            if len(self._fields) > 4096:
                self._fields.clear()
            self._fields[key] = found
        return found

    def open(self, session: Session) -> AuditSession:
        """The 'who connected' record; raises AuditError when fail_closed and not durable."""
        return self._session(session, session.identity, session.session_id)

    def _session(self, session: Session, identity: Identity, session_id: str) -> AuditSession:
        return self.trail.session(
            session.params, identity.as_dict(), session.environment, session_id=session_id
        )

    def _for(self, session: Session, identity: Identity) -> AuditSession:
        audit: AuditSession = session.audit
        if identity is session.identity or identity == session.identity:
            return audit
        key = (session.session_id, identity)
        with self._lock:
            found = self._acting.get(key)
        if found is None:
            found = self._session(session, identity, f"{session.session_id}.{next(self._serial)}")
            with self._lock:
                if len(self._acting) > 4096:
                    self._acting.clear()
                self._acting[key] = found
        return found

    def intent(
        self,
        session: Session,
        identity: Identity,
        query: str,
        params: Any,
        facts: Facts,
        decision: Decision,
        approval_id: str | None = None,
    ) -> IntentRef:
        """Write-ahead record; raises AuditError when fail_closed and it is not durable."""
        # The common case inline (a plan seen before, the session's own identity, no
        # approval, parameters sent apart): what _statement does, without its calls.
        found = self._fields.get((id(facts), id(decision)))
        if (
            found is not None
            and found[0] is facts
            and found[1] is decision
            and approval_id is None
            and identity is session.identity
            and type(params) is not ClientMerged
        ):
            return self.trail.intent(
                session.audit,
                found[3] if found[4] else query,  # role statements can carry passwords
                normalized=found[3],
                params=params,
                prepared=found[2],
            )
        ref: IntentRef = self._statement(
            self.trail.intent, session, identity, query, params, facts, decision, approval_id
        )
        return ref

    def refused(
        self,
        session: Session,
        identity: Identity,
        query: str,
        params: Any,
        facts: Facts,
        decision: Decision,
        approval_id: str | None = None,
    ) -> None:
        """The decision-only record of a refused statement."""
        self._statement(
            self.trail.refused, session, identity, query, params, facts, decision, approval_id
        )

    def _statement(
        self,
        write: Callable[..., Any],
        session: Session,
        identity: Identity,
        query: str,
        params: Any,
        facts: Facts,
        decision: Decision,
        approval_id: str | None = None,
    ) -> Any:
        _, _, prepared, normalized, role = self._fields_for(facts, decision)
        if approval_id is not None:  # not cached: one record per approval
            fields = decision_fields(decision, approval_id)
            prepared = self.trail.prepare(facts_fields(facts), fields)
        literal_params = False
        if type(params) is ClientMerged:
            # The values are literals in the text: record them only where parameters are.
            literal_params = self.trail.parameters != "plain"
            params = params.params
        return write(
            self._for(session, identity),
            # role statements can carry passwords; merged parameters, any value
            normalized if role or literal_params else query,
            normalized=normalized,
            params=params,
            prepared=prepared,
        )

    def outcome(
        self,
        ticket: Ticket,
        rowcount: int,
        error: BaseException | None,
        rows_returned: int | None,
    ) -> None:
        """How the statement ended (never raises for I/O: it already ran)."""
        # timed from admission, in whole µs (rounded), as Ticket.outcome() would
        duration_us = (_perf_counter_ns() - ticket.started_ns + 500) // 1000
        plan = ticket.mask_plan
        self.trail.outcome(
            ticket.ref,
            rowcount=rowcount if rowcount >= 0 else None,
            rows_returned=rows_returned,
            duration_us=duration_us,
            sqlstate=getattr(error, "sqlstate", None) if error is not None else None,
            error=type(error).__name__ if error is not None else None,
            masking=None if plan is None else self._masking_for(plan),
        )

    def masked(self, ticket: Ticket, counts: Sequence[MaskCount]) -> None:
        """What masking did to one fetched result: a ``masked`` record (none if nothing was).

        Called once the result's fetching is finished, after the outcome. Counts
        only (column, source, rule, method, values), never a value; never raises
        for I/O.
        """
        if counts and ticket.ref is not None:
            self.trail.masked(ticket.ref, counts)

    def close(self, session: Session, reason: str = "closed") -> None:
        """The session ended (``closed``, ``broken`` or ``exit``)."""
        self.trail.end_session(session.audit, reason)
        with self._lock:
            for key in [k for k in self._acting if k[0] == session.session_id]:
                self.trail.end_session(self._acting.pop(key), reason)


class AuditOff:
    """Audit turned off explicitly: no statement is recorded, but the connection is.

    Each connection's session record (and its end) still goes to the default
    spool, with ``"audit": "off"`` and ``"audit.off_by"`` naming what turned it
    off, so the trail shows every connection that ran unrecorded. That is best
    effort: if the default spool can't be written, the connection opens anyway
    (turning audit off must work where nothing can be written) and the reason
    is logged once at WARNING.
    """

    __slots__ = ("_failed", "_lock", "_open", "_trail", "by")

    def __init__(self, by: str, open_trail: Callable[[], AuditTrail]) -> None:
        self.by = by
        self._open = open_trail
        self._trail: AuditTrail | None = None
        self._failed = False
        self._lock = threading.Lock()

    def open(self, session: Session) -> AuditSession | None:
        """Write the 'connected, audit off' record; None if it could not be written."""
        try:
            with self._lock:
                if self._trail is None or self._trail.closed:
                    if self._failed:
                        return None
                    self._trail = self._open()
                trail = self._trail
            return trail.session(
                session.params,
                session.identity.as_dict() if session.identity is not None else {},
                session.environment,
                session_id=session.session_id,
                extra={"audit": "off", "audit.off_by": self.by},
            )
        except (GovernanceError, OSError) as exc:
            if not self._failed:
                log.warning(
                    "audit is off (%s) and that could not be recorded either: %s", self.by, exc
                )
            self._failed = True
            return None

    def close(self, session: Session, reason: str = "closed") -> None:
        """The session ended (recorded if its opening was)."""
        audit: AuditSession | None = session.audit
        trail = self._trail
        if audit is not None and trail is not None:
            trail.end_session(audit, reason)
