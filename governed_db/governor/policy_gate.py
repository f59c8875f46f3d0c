"""``PolicyGovernor``: analyze → decide → settle → audit for every statement.

Decisions are cached by query text (and environment, identity), so a repeated
statement costs a dictionary lookup. A refused statement raises before
anything is sent, with the rule, the reason and what to do instead. Allowed
writes carry the environment's limits on their ticket; the cursor enforces
them. When the policy configures audit, every step is written to the trail.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from governed_db.audit import AuditTrail
from governed_db.errors import BlastRadiusExceeded, GovernanceError, PolicyViolation
from governed_db.governor.approval_gate import ApprovalGate
from governed_db.governor.audit_bridge import AuditBridge, AuditOff
from governed_db.governor.base import (
    Call,
    ClientMerged,
    EstimateNeeded,
    Governor,
    RowMaker,
    Session,
    Ticket,
)
from governed_db.governor.masking_gate import MaskingGate
from governed_db.governor.planned import Planned, ends_transactions, row_limit_unenforceable
from governed_db.governor.session_rules import Changes, apply, hard_rule, with_prepared
from governed_db.identity import Identity, current_identity
from governed_db.masking import ColumnIdentity, MaskedValues
from governed_db.policy import Context, Decision, DecisionCache, Policy, decide, violation
from governed_db.sql import Facts, analyze, copy_shape

__all__ = ["PolicyGovernor"]

#: The type of a text column (what the server's free texts are masked as).
_TEXT_OID = 25

#: Decided statements kept per session (its own identity), before the cache starts over.
_SESSION_PLANS = 512

#: Operations whose affected rows count against ``max_rows_affected``.
BLAST_RADIUS_OPERATIONS = frozenset({"update", "delete", "merge"})


def _acting(session: Session, acting: Identity) -> Identity:
    """``acting``, unless an agent's connection claims a less supervised actor."""
    opener = session.identity
    if opener is not None and opener.kind == "agent" and acting.kind != "agent":
        raise GovernanceError(
            f"this connection was opened by agent {opener.name!r} and cannot act as the "
            f"{acting.kind} {acting.name!r}: acting_as() may not lift an agent's rules "
            "(refused, fail closed)",
            rule_id="identity-escalation",
            hint="Open the connection as the actor who acts, or act as another agent.",
        )
    return acting


class PolicyGovernor(Governor):
    """The gate for one policy, one default identity and (optionally) one audit trail.

    ``identity`` is who connected; ``acting_as`` overrides it per call.
    ``environment`` is the explicit environment, else it is matched from the
    DSN at connect. One governor may serve many connections (a pool).
    """

    __slots__ = (
        "_approvals",
        "_audit",
        "_audit_off",
        "_cache",
        "_contexts",
        "_environment",
        "_hot",
        "_identity",
        "_masking",
        "_policy",
        "_trail",
        "_warm",
    )

    _policy: Policy
    _identity: Identity
    _environment: str | None
    _trail: AuditTrail | None
    _audit: AuditBridge | None
    _audit_off: AuditOff | None
    _cache: DecisionCache
    _contexts: dict[tuple[str, Identity], Context]
    _hot: dict[tuple[str, str, Identity], Planned]
    _warm: dict[tuple[str, str, Identity], tuple[Decision, Planned]]
    _masking: MaskingGate
    _approvals: ApprovalGate

    masks = True

    @property
    def records_masked(self) -> bool:
        """Masked-value counts are recorded when the audit is on."""
        return self._audit is not None

    def __init__(
        self,
        policy: Policy,
        *,
        identity: Identity,
        environment: str | None = None,
        trail: AuditTrail | None = None,
        audit_off: AuditOff | None = None,
    ) -> None:
        if not isinstance(policy, Policy):
            raise TypeError(f"policy must be a governed_db.Policy, not {type(policy).__name__}")
        if not isinstance(identity, Identity):
            raise TypeError(
                f"identity must be a governed_db.Identity, not {type(identity).__name__}"
            )
        set_ = object.__setattr__
        set_(self, "_policy", policy)
        set_(self, "_identity", identity)
        set_(self, "_environment", environment)
        set_(self, "_trail", trail)
        set_(self, "_audit", AuditBridge(trail) if trail is not None else None)
        set_(self, "_audit_off", audit_off if trail is None else None)
        set_(self, "_cache", DecisionCache(policy))
        set_(self, "_contexts", {})
        # (query, environment, identity) -> the decided statement, for decisions that
        # hold until the policy changes (not timed, no estimate).
        set_(self, "_hot", {})
        # (query, environment, identity) -> (cached decision, its Planned) for decisions
        # that hold for a while (timed): reused while the cache hands back that decision.
        set_(self, "_warm", {})
        set_(self, "_masking", MaskingGate(policy))
        set_(self, "_approvals", ApprovalGate(policy))
        if environment is not None:
            policy.environment_for(environment)  # an unknown name fails at connect

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(
            f"PolicyGovernor is immutable once made: cannot set {name!r}. Open a new "
            "connection with the policy, identity or audit settings you want"
        )

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"PolicyGovernor is immutable: cannot delete {name!r}")

    @property
    def policy(self) -> Policy:
        """The policy every statement is decided by (read-only)."""
        return self._policy

    @property
    def identity(self) -> Identity:
        """Who connected (``acting_as`` overrides it per call)."""
        return self._identity

    @property
    def environment(self) -> str | None:
        """The explicit environment, or None (then matched from the DSN at connect)."""
        return self._environment

    @property
    def trail(self) -> AuditTrail | None:
        """The audit trail statements are written to, or None."""
        return self._trail

    @property
    def audit(self) -> AuditBridge | None:
        """The gate's side of the audit trail, or None."""
        return self._audit

    @property
    def cache(self) -> DecisionCache:
        """Decisions by query text."""
        return self._cache

    def application_name(self) -> str | None:
        return self.identity.application_name()

    def open_session(self, session: Session) -> Session:
        environment = self.policy.environment_for(self.environment, session.params)
        limits = self.policy.limits_for(environment)
        settings = {}
        if limits.statement_timeout_ms is not None:
            settings["statement_timeout"] = f"{limits.statement_timeout_ms}ms"
        session = replace(
            session,
            environment=environment,
            identity=self.identity,
            settings=settings,
            masked=MaskedValues(),
        )
        if self.audit is not None:
            session = replace(session, audit=self.audit.open(session))
        elif self._audit_off is not None:  # off: the session record still says so
            session = replace(session, audit=self._audit_off.open(session))
        return session

    def close_session(self, session: Session) -> None:
        self.end_session(session, "closed")

    def end_session(self, session: Session, reason: str) -> None:
        if self.audit is not None:
            self.audit.close(session, reason)
        elif self._audit_off is not None:
            self._audit_off.close(session, reason)

    def _context(self, environment: str, identity: Identity) -> Context:
        key = (environment, identity)
        contexts: dict[tuple[str, Identity], Context] = self._contexts
        context = contexts.get(key)
        if context is None:
            if len(contexts) > 1024:
                contexts.clear()
            context = contexts[key] = Context(environment, identity)
        return context

    def admit(
        self,
        session: Session,
        method: str,
        query: str,
        params: Any,
        cursor_name: str | None,
        estimated_rows: int | None = None,
    ) -> Ticket:
        acting = current_identity()
        identity = session.identity
        planned = None
        if acting is not None:
            try:
                identity = _acting(session, acting)
            except GovernanceError as exc:
                self.driver_refused(session, method, query, exc)
                raise
        elif estimated_rows is None:
            planned = session.plans.get(query)  # this session's own identity: one lookup
        if planned is None:
            planned = (
                self._hot.get((query, session.environment, identity))
                if estimated_rows is None
                else None
            )
            if planned is None:
                planned = self._plan(session.environment, identity, query, estimated_rows)
            if acting is None and planned.hot:
                plans = session.plans
                if len(plans) >= _SESSION_PLANS:
                    plans.clear()
                plans[query] = planned
        decision = planned.decision
        facts = planned.facts
        max_rows = planned.max_rows
        refuses = planned.refuses
        changes = None
        if planned.dynamic:
            planned, changes = self._prepared(session, identity, facts, estimated_rows)
            decision, facts, max_rows = planned.decision, planned.facts, planned.max_rows
            refuses = planned.refuses
        call = Call(session, method, query, params, cursor_name)
        audit = self._audit
        if planned.writes and session.masked and not refuses:
            decision = self._masked_write(session, facts, query, params) or decision
            refuses = decision.refuses
        if refuses:
            if decision.action == "require_approval" and self._approvals.configured:
                ticket = self._approved(
                    call, identity, facts, decision, estimated_rows, planned.lock_timeout
                )
                ticket.session_changes = changes
                ticket.planned = planned
                return ticket
            if audit is not None:
                audit.refused(session, identity, query, params, facts, decision)
            raise violation(decision, query, facts)
        ticket = Ticket(
            call, decision=decision, max_rows=max_rows, lock_timeout=planned.lock_timeout
        )
        ticket.session_changes = changes
        ticket.facts = facts
        ticket.planned = planned
        if audit is not None:
            ticket.ref = audit.intent(session, identity, query, params, facts, decision)
        return ticket

    def _approved(
        self,
        call: Call,
        identity: Identity,
        facts: Facts,
        decision: Decision,
        estimated_rows: int | None,
        lock_timeout: str | None,
    ) -> Ticket:
        """A ticket under a signed grant (``approval_gate``), or raise ApprovalRequired."""
        session, query, params = call.session, call.query, call.params
        gate, audit = self._approvals, self._audit
        if estimated_rows is None and gate.wants_estimate(facts):
            raise EstimateNeeded
        blocked = self._masked_write(session, facts, query, params) if session.masked else None
        try:
            if blocked is not None:
                raise violation(blocked, query, facts)
            grant = gate.settle(identity, query, params, facts, decision, estimated_rows)
            if grant.max_rows is not None and ends_transactions(facts):
                raise violation(row_limit_unenforceable(session.environment), query, facts)
        except (GovernanceError, PolicyViolation) as exc:
            if audit is not None:
                said = blocked or replace(decision, reason=exc.reason, hint=exc.hint)
                approval_id = getattr(exc, "approval_id", None)
                audit.refused(session, identity, query, params, facts, said, approval_id)
            raise
        allowed = grant.decision(decision)
        ticket = Ticket(call, decision=allowed, max_rows=grant.max_rows, lock_timeout=lock_timeout)
        ticket.facts = facts
        if audit is not None:
            ticket.ref = audit.intent(
                session, identity, query, params, facts, allowed, grant.approval_id
            )
        return ticket

    def _masked_write(
        self, session: Session, facts: Facts, query: str, params: Any
    ) -> Decision | None:
        """A refusal if the statement writes back a value masking emitted, else None."""
        values = params.params if type(params) is ClientMerged else params
        try:
            MaskingGate.check_write(session.masked, facts, query, values)
        except PolicyViolation as exc:
            return Decision(
                "block",
                exc.rule_id,
                exc.reason,
                exc.hint,
                session.environment,
                "block",
                cacheable=False,
            )
        return None

    def copy_out_masker(self, cursor: Any, tables: Any) -> Any:
        state = cursor._conn._gov_state
        if state is None:
            return None
        session: Session = state[1]
        identity = current_identity() or session.identity
        return self._masking.copy_out(cursor, tables, session.environment, identity, session.masked)

    def copy_out_shape(self, statement: str) -> Any:
        return copy_shape(statement)

    def copy_row_masker(self, cursor: Any, columns: list[Any]) -> Callable[[Any], Any] | None:
        state = cursor._conn._gov_state
        if state is None:
            return None
        session: Session = state[1]
        identity = current_identity() or session.identity
        rules = self._masking.rules(session.environment, identity)
        plan = rules.plan(self._masking.identities(cursor, columns))  # with their lineage
        with contextlib.suppress(AttributeError):  # a plain psycopg cursor has no room for it
            cursor._gov_plan = plan  # the audit's "which data they touched"
        if not plan.needs_masking:
            return None
        return plan.start(session.masked).apply

    def text_masker(self, session: Session) -> Callable[[str], str] | None:
        identity = current_identity() or session.identity
        rules = self._masking.rules(session.environment, identity)
        plan = rules.plan([ColumnIdentity("message", None, _TEXT_OID)])
        if not plan.needs_masking:
            return None
        masker = plan.start(session.masked)

        def mask(text: str) -> str:
            return masker.apply((text,))[0]  # type: ignore[no-any-return]

        return mask

    def shape_rows(self, cursor: Any, make_row: RowMaker) -> RowMaker:
        state = cursor._conn._gov_state
        if state is None:
            return make_row
        session: Session = state[1]
        identity = current_identity() or session.identity
        return self._masking.shape(  # type: ignore[no-any-return]
            cursor, make_row, session.environment, identity, session.masked
        )

    def _prepared(
        self, session: Session, identity: Identity, facts: Facts, estimated_rows: int | None
    ) -> tuple[Planned, Changes]:
        """Decide a statement that prepares, executes or deallocates on this session."""
        facts, changes = with_prepared(facts, session.prepared)
        context = self._context(session.environment, identity)
        decision = hard_rule(facts, session.environment) or self._decide(
            facts.text, facts, context, estimated_rows, cache=False
        )
        return Planned(decision, facts, *self._limits(facts, session.environment)), changes

    def _plan(
        self, environment: str, identity: Identity, query: str, estimated_rows: int | None
    ) -> Planned:
        context = self._context(environment, identity)
        facts = analyze(query)
        decision = self.cache.get(query, context) if estimated_rows is None else None
        key = (query, environment, identity)
        if decision is None:
            decision = hard_rule(facts, environment) or self._decide(
                query, facts, context, estimated_rows
            )
        else:
            warm = self._warm.get(key)
            if warm is not None and warm[0] is decision and warm[1].facts is facts:
                return warm[1]  # the same cached decision as last time: the same plan
        planned = Planned(decision, facts, *self._limits(facts, environment))
        if decision.cacheable and estimated_rows is None:
            if not decision.timed:
                planned.hot = True
                if len(self._hot) >= self.cache.maxsize:
                    self._hot.clear()
                self._hot[key] = planned
            else:
                if len(self._warm) >= self.cache.maxsize:
                    self._warm.clear()
                self._warm[key] = (decision, planned)
        return planned

    def _decide(
        self,
        query: str,
        facts: Facts,
        context: Context,
        estimated_rows: int | None,
        *,
        cache: bool = True,
    ) -> Decision:
        if estimated_rows is None:
            if self.policy.needs_estimate(facts, context) and facts.statement_count == 1:
                raise EstimateNeeded
            decision = decide(self.policy, facts, context)
            if cache:
                self.cache.put(query, context, decision)
            return decision
        if estimated_rows < 0 and not self.policy.needs_estimate(facts, context):
            return decide(self.policy, facts, context)  # asked for an approval request only
        if estimated_rows < 0:
            # A rule depends on the size and the planner could not say: fail closed.
            primary = facts.primary
            tables = ", ".join(sorted(primary.tables_written | primary.tables_read))
            return Decision(
                "observe" if self.policy.mode == "observe" else "block",
                "estimated-rows-unavailable",
                f"a rule of this policy depends on how many rows {primary.operation.upper()}"
                f" on {tables or 'its tables'} touches, and the planner could not estimate it"
                " (EXPLAIN failed, or the connection is in pipeline mode); refused, fail closed",
                "Run it outside a pipeline as a single plannable statement, or ask an operator.",
                context.environment,
                "block",
                cacheable=False,
            )
        return decide(self.policy, facts, replace(context, estimated_rows=estimated_rows))

    def _limits(self, facts: Facts, environment: str) -> tuple[int | None, str | None]:
        """``(max_rows, lock_timeout)`` for a statement in ``environment``."""
        limits = self.policy.limits_for(environment)
        statements = facts.statements
        max_rows = lock_timeout = None
        if limits.max_rows_affected is not None and any(
            s.operation in BLAST_RADIUS_OPERATIONS or s.effects & BLAST_RADIUS_OPERATIONS
            for s in statements
        ):
            max_rows = limits.max_rows_affected
        if limits.lock_timeout_ms is not None and any(
            s.statement_class == "ddl" for s in statements
        ):
            lock_timeout = f"{limits.lock_timeout_ms}ms"
        return max_rows, lock_timeout

    def driver_refused(
        self, session: Session, method: str, query: str | None, error: Exception
    ) -> None:
        if self.audit is None:
            return
        identity = current_identity() or session.identity
        text = query if query is not None else ""
        facts = analyze(text)
        rule_id = getattr(error, "rule_id", None) or "governance-error"
        decision = Decision(
            "block",
            rule_id,
            getattr(error, "reason", None) or str(error),
            getattr(error, "hint", ""),
            session.environment,
            "block",
            cacheable=False,
        )
        self.audit.refused(session, identity, text, None, facts, decision)

    def settle(
        self,
        ticket: Ticket,
        rowcount: int,
        error: BaseException | None,
        rows_returned: int | None = None,
    ) -> None:
        if ticket.session_changes:
            apply(ticket.call.session.prepared, ticket.session_changes, error is None)
        audit = self._audit
        if audit is not None:
            audit.outcome(ticket, rowcount, error, rows_returned)

    def masked(self, ticket: Ticket, counts: Sequence[Any]) -> None:
        audit = self._audit
        if audit is not None:
            audit.masked(ticket, counts)

    def exceeded(self, ticket: Ticket, affected: int) -> BaseException:
        facts = analyze(ticket.call.query)
        primary = facts.primary
        tables = ", ".join(sorted(primary.tables_written)) or "its tables"
        env = ticket.call.session.environment
        return BlastRadiusExceeded(
            f"{primary.operation.upper()} on {tables} affected {affected} rows, more than the "
            f"{ticket.max_rows} allowed in {env}; it was rolled back",
            rule_id="max_rows_affected",
            hint=(
                f"Narrow the WHERE clause so that at most {ticket.max_rows} rows match, "
                "or work in batches of that size."
            ),
            statement=ticket.call.query,
            facts=facts,
        )
