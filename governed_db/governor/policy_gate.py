"""``PolicyGovernor``: analyze → decide → settle → audit for every statement.

Decisions are cached by query text (and environment, identity), so a repeated
statement costs a dictionary lookup. A refused statement raises before
anything is sent, with the rule, the reason and what to do instead. Allowed
writes carry the environment's limits on their ticket; the cursor enforces
them. When the policy configures audit, every step is written to the trail.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from governed_db.audit import AuditTrail
from governed_db.errors import BlastRadiusExceeded
from governed_db.governor.audit_bridge import AuditBridge
from governed_db.governor.base import Call, EstimateNeeded, Governor, Session, Ticket
from governed_db.identity import Identity, current_identity
from governed_db.policy import Context, Decision, DecisionCache, Policy, decide, violation
from governed_db.sql import Facts, analyze

__all__ = ["PolicyGovernor"]

_Plan = tuple[Decision, Facts, int | None, str | None]

#: Operations whose affected rows count against ``max_rows_affected``.
BLAST_RADIUS_OPERATIONS = frozenset({"update", "delete", "merge"})


class PolicyGovernor(Governor):
    """The gate for one policy, one default identity and (optionally) one audit trail.

    ``identity`` is who connected; ``acting_as`` overrides it per call.
    ``environment`` is the explicit environment, else it is matched from the
    DSN at connect. One governor may serve many connections (a pool).
    """

    __slots__ = (
        "_contexts",
        "_hot",
        "audit",
        "cache",
        "environment",
        "identity",
        "policy",
        "trail",
    )

    def __init__(
        self,
        policy: Policy,
        *,
        identity: Identity,
        environment: str | None = None,
        trail: AuditTrail | None = None,
    ) -> None:
        self.policy = policy
        self.identity = identity
        self.environment = environment
        self.trail = trail
        self.audit = AuditBridge(trail) if trail is not None else None
        self.cache = DecisionCache(policy)
        self._contexts: dict[tuple[str, Identity], Context] = {}
        # (query, environment, identity) -> (decision, facts, max_rows, lock_timeout) for
        # decisions that hold until the policy changes (not timed, no estimate).
        self._hot: dict[tuple[str, str, Identity], _Plan] = {}
        if environment is not None:
            policy.environment_for(environment)  # an unknown name fails at connect

    def application_name(self) -> str | None:
        return self.identity.application_name()

    def open_session(self, session: Session) -> Session:
        environment = self.policy.environment_for(self.environment, session.params)
        limits = self.policy.limits_for(environment)
        settings = {}
        if limits.statement_timeout_ms is not None:
            settings["statement_timeout"] = f"{limits.statement_timeout_ms}ms"
        session = replace(
            session, environment=environment, identity=self.identity, settings=settings
        )
        if self.audit is not None:
            session = replace(session, audit=self.audit.open(session))
        return session

    def close_session(self, session: Session) -> None:
        if self.audit is not None:
            self.audit.close(session)

    def _context(self, environment: str, identity: Identity) -> Context:
        key = (environment, identity)
        context = self._contexts.get(key)
        if context is None:
            if len(self._contexts) > 1024:
                self._contexts.clear()
            context = self._contexts[key] = Context(environment, identity)
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
        identity = current_identity() or session.identity
        plan = self._hot.get((query, session.environment, identity))
        if plan is None or estimated_rows is not None:
            plan = self._plan(session.environment, identity, query, estimated_rows)
        decision, facts, max_rows, lock_timeout = plan
        call = Call(session, method, query, params, cursor_name)
        if decision.refuses:
            if self.audit is not None:
                self.audit.refused(session, identity, query, params, facts, decision)
            raise violation(decision, query, facts)
        ticket = Ticket(call, decision=decision, max_rows=max_rows, lock_timeout=lock_timeout)
        if self.audit is not None:
            ticket.ref = self.audit.intent(session, identity, query, params, facts, decision)
        return ticket

    def _plan(
        self, environment: str, identity: Identity, query: str, estimated_rows: int | None
    ) -> _Plan:
        context = self._context(environment, identity)
        facts = analyze(query)
        decision = self.cache.get(query, context) if estimated_rows is None else None
        if decision is None:
            decision = self._decide(query, facts, context, estimated_rows)
        plan = (decision, facts, *self._limits(facts, environment))
        if decision.cacheable and not decision.timed and estimated_rows is None:
            if len(self._hot) >= self.cache.maxsize:
                self._hot.clear()
            self._hot[(query, environment, identity)] = plan
        return plan

    def _decide(
        self, query: str, facts: Facts, context: Context, estimated_rows: int | None
    ) -> Decision:
        if estimated_rows is None:
            if self.policy.needs_estimate(facts, context) and facts.statement_count == 1:
                raise EstimateNeeded
            decision = decide(self.policy, facts, context)
            self.cache.put(query, context, decision)
            return decision
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
            s.operation in BLAST_RADIUS_OPERATIONS for s in statements
        ):
            max_rows = limits.max_rows_affected
        if limits.lock_timeout_ms is not None and any(
            s.statement_class == "ddl" for s in statements
        ):
            lock_timeout = f"{limits.lock_timeout_ms}ms"
        return max_rows, lock_timeout

    def settle(
        self,
        ticket: Ticket,
        rowcount: int,
        error: BaseException | None,
        rows_returned: int | None = None,
    ) -> None:
        if self.audit is not None:
            self.audit.outcome(ticket, rowcount, error, rows_returned)

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
