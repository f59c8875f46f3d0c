"""Settling a ``require_approval`` decision: a valid signed grant, or ``ApprovalRequired``.

``ApprovalGate.settle`` looks the statement's binding up in the store. A grant
that is signed by enough of the rule's approvers, bound to this exact text,
parameters, environment, requester and policy, not expired, revoked or denied,
with a use left, is consumed (atomically) and the statement runs under its
``max_rows``. Otherwise the pending request is found or made (announced to the
rule's webhook when new), optionally waited for, and ``ApprovalRequired``
carries its id and the command that approves it. A rule's ``auto`` conditions
approve at once (marked ``auto``). A store that cannot be reached refuses.
"""

from __future__ import annotations

import os
import shlex
import sys
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from governed_db.approvals import (
    ApprovalRequest,
    ApprovalStore,
    StoredApproval,
    Verdict,
    approval_rule,
    binding_key,
    judge,
    load_params_key,
    new_approval_id,
    open_store,
    params_hmac,
    post_webhook,
    requester_fields,
    round_up,
)
from governed_db.errors import ApprovalRequired
from governed_db.governor.base import ClientMerged
from governed_db.identity import Identity
from governed_db.policy import ApprovalRule, Decision, Policy
from governed_db.sql import Facts

__all__ = ["ApprovalGate", "Grant"]

_POLL_SECONDS = 0.2
#: Operations EXPLAIN can estimate (the estimate is asked for only on the approval path).
ESTIMABLE = frozenset({"select", "insert", "update", "delete", "merge"})


@dataclass(frozen=True, slots=True)
class Grant:
    """What lets one statement run: the approval id, who signed, and the effect limit."""

    approval_id: str
    signers: tuple[str, ...]
    max_rows: int | None
    kind: str  # signed | auto | break_glass
    note: str

    def decision(self, decision: Decision) -> Decision:
        """The decision the statement runs under (allow; for the audit's intent record)."""
        return replace(
            decision,
            action="allow",
            reason=f"{decision.reason}; {self.note}",
            cacheable=False,
        )


class ApprovalGate:
    """The approvals side of one ``PolicyGovernor`` (store and key opened on first need)."""

    __slots__ = ("_key", "_lock", "_policy", "_store")

    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._store: ApprovalStore | None = None
        self._key: bytes | None = None
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        """Whether the policy lists approvers (else require_approval just refuses)."""
        return self._policy.approvals.configured

    def wants_estimate(self, facts: Facts) -> bool:
        """Whether to ask the planner before settling (one plannable statement)."""
        return facts.statement_count == 1 and facts.primary.operation in ESTIMABLE

    def store(self) -> ApprovalStore:
        """The policy's store."""
        with self._lock:
            if self._store is None:
                self._store = open_store(self._policy.approvals.store)
            return self._store

    def _params_key(self) -> bytes:
        with self._lock:
            if self._key is None:
                self._key = load_params_key()[0]
            return self._key

    def rule(self, decision: Decision) -> ApprovalRule:
        """The approval settings of the rule that decided (the defaults if it has none)."""
        return approval_rule(self._policy, decision.rule_id)

    def approve_command(self, approval_id: str) -> str:
        """The exact command an approver runs."""
        source = self._policy.source
        policy = f" --policy {shlex.quote(source)}" if not source.startswith("<") else ""
        return f"governed-db approvals approve {approval_id}{policy} --reason '...'"

    def settle(
        self,
        identity: Identity,
        query: str,
        params: Any,
        facts: Facts,
        decision: Decision,
        estimated_rows: int | None,
    ) -> Grant:
        """A grant for this statement, or raise ``ApprovalRequired`` (or a store error)."""
        rule = self.rule(decision)
        estimate = estimated_rows if estimated_rows is not None and estimated_rows >= 0 else None
        if rule.auto is not None:
            why = rule.auto.holds(datetime.now(UTC), estimate, os.environ)
            if why is not None:
                return Grant(
                    f"auto-{new_approval_id()}",
                    (),
                    round_up(estimate),
                    "auto",
                    f"approved automatically (auto: {why})",
                )
        values = params.params if type(params) is ClientMerged else params
        digest = params_hmac(values, self._params_key()) if values is not None else None
        match = rule.requester
        groups = self._policy.actor_groups(identity)
        requester: Any = requester_fields(identity)
        if match != "same" and match in groups:
            requester = f"group:{match}"
        else:
            match = "same"
        pinned = self._policy.digest if rule.pin_policy else None
        rule_id = decision.rule_id or "policy"
        key = binding_key(query, digest, decision.environment, requester, rule_id, pinned)
        store = self.store()
        now = time.time()
        pending: StoredApproval | None = None
        ended: Verdict | None = None
        for stored in reversed(store.find(key)):
            if not self._same(stored.request, query, digest, decision, identity, match, pinned):
                continue
            verdict = judge(stored, self._policy.approvals, rule, now)
            if verdict.state == "granted":
                grant = self._consume(store, verdict)
                if grant is not None:
                    return grant
                verdict = replace(verdict, state="used")
            if verdict.state == "pending" and pending is None:
                pending = stored
            elif ended is None and verdict.state != "pending":
                ended = verdict
        note = ""
        if pending is None:
            request = ApprovalRequest(
                id=new_approval_id(),
                binding=key,
                statement=query,
                fingerprint=facts.fingerprint,
                params_hmac=digest,
                operation=facts.primary.operation,
                tables_written=tuple(sorted(facts.tables_written)),
                requester=requester_fields(identity),
                requester_match=match,
                environment=decision.environment,
                rule_id=rule_id,
                reason=decision.reason,
                estimated_rows=estimate,
                policy_digest=self._policy.digest,
                pinned=rule.pin_policy,
                requested_at=int(now),
                expires_at=int(now + rule.expires),
                uses=rule.uses,
                group=rule.group,
                min_approvals=rule.min_approvals,
            )
            store.add_request(request)
            if rule.webhook is not None:
                failed = post_webhook(rule.webhook, request, self.approve_command(request.id))
                note = f" ({failed}; the request stands)" if failed else ""
        else:
            request = pending.request
        if rule.wait > 0:
            grant = self._wait(store, request, rule)
            if grant is not None:
                return grant
        raise self._required(request, rule, decision, query, facts, ended, note)

    @staticmethod
    def _same(
        request: ApprovalRequest,
        query: str,
        digest: str | None,
        decision: Decision,
        identity: Identity,
        match: str,
        pinned: str | None,
    ) -> bool:
        """The stored request is for exactly this call (the binding key is not trusted)."""
        if (
            request.statement != query
            or request.params_hmac != digest
            or request.environment != decision.environment
            or request.rule_id != (decision.rule_id or "policy")
            or request.requester_match != match
        ):
            return False
        if pinned is not None and (not request.pinned or request.policy_digest != pinned):
            return False
        return match != "same" or dict(request.requester) == requester_fields(identity)

    def _consume(self, store: ApprovalStore, verdict: Verdict) -> Grant | None:
        if not store.consume(verdict.request.id, verdict.uses):
            return None
        kind = "break_glass" if verdict.break_glass else "signed"
        limit = "no row limit" if verdict.max_rows is None else f"max_rows {verdict.max_rows}"
        note = (
            f"approval {verdict.request.id} granted by {', '.join(verdict.signers)} "
            f"({limit}; use {verdict.used + 1} of {verdict.uses})"
        )
        if kind == "break_glass":
            note += " [break_glass self-approval]"
        return Grant(verdict.request.id, verdict.signers, verdict.max_rows, kind, note)

    def _wait(
        self, store: ApprovalStore, request: ApprovalRequest, rule: ApprovalRule
    ) -> Grant | None:
        """Poll the store up to ``rule.wait`` seconds (a spinner on a terminal)."""
        deadline = time.monotonic() + rule.wait
        status: Any = None
        if sys.stderr.isatty():
            from rich.console import Console

            status = Console(stderr=True).status(
                f"waiting up to {rule.wait:g}s for approval {request.id}: "
                f"{self.approve_command(request.id)}"
            )
            status.start()
        try:
            while time.monotonic() < deadline:
                time.sleep(min(_POLL_SECONDS, max(deadline - time.monotonic(), 0)))
                stored = store.get(request.id)
                if stored is None:
                    return None
                verdict = judge(stored, self._policy.approvals, rule, time.time())
                if verdict.state == "granted":
                    return self._consume(store, verdict)
                if verdict.state != "pending":
                    return None
            return None
        finally:
            if status is not None:
                status.stop()

    def _required(
        self,
        request: ApprovalRequest,
        rule: ApprovalRule,
        decision: Decision,
        query: str,
        facts: Facts,
        ended: Verdict | None,
        note: str,
    ) -> ApprovalRequired:
        command = self.approve_command(request.id)
        group = f"group {rule.group!r}" if rule.group else "an approver"
        plural = "s" if rule.min_approvals != 1 else ""
        need = f"{rule.min_approvals} signature{plural} from {group}"
        previous = ""
        if ended is not None:
            who = f" by {', '.join(ended.by)}" if ended.by else ""
            said = ended.reason and ended.state in ("denied", "revoked")
            why = f": {ended.reason}" if said else ""
            previous = f"; the earlier approval {ended.request.id} was {ended.state}{who}{why}"
        reason = (
            f"{decision.reason}; approval {request.id} is pending ({need} needed){previous}{note}"
        )
        hint = (
            f"Ask {group} to run: {command} — then retry the same statement after approval "
            "(the same text, parameters and environment)."
        )
        return ApprovalRequired(
            reason,
            rule_id=decision.rule_id or "policy",
            hint=hint,
            statement=query,
            facts=facts,
            approval_id=request.id,
            approve_command=command,
        )
