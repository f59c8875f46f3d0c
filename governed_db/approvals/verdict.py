"""Judging a stored request: which decisions count, and whether it is granted.

A decision counts only when it is signed by the key the policy lists for the
approver it names, made on this request's digest, by a member of the rule's
group. A self-approval (the approver is the requester) counts only where the
rule allows it, and only when it was made as ``break_glass``. A valid revoke
or deny ends the request; a grant needs ``min_approvals`` distinct approvers,
and lasts until the earliest expiry and the fewest uses any of them accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from governed_db.approvals.binding import ApprovalRequest
from governed_db.approvals.decisions import SignedDecision
from governed_db.approvals.store import StoredApproval
from governed_db.policy import ApprovalRule, ApprovalsSection, Approver, Policy

__all__ = ["Verdict", "approval_rule", "is_requester", "judge"]

_DEFAULT = ApprovalRule()


def approval_rule(policy: Policy, rule_id: str | None) -> ApprovalRule:
    """The ``approval`` settings of rule ``rule_id`` (the defaults if it has none)."""
    found = policy.rule(rule_id)
    approval = found.approval if found is not None else None
    return approval if isinstance(approval, ApprovalRule) else _DEFAULT


#: States of a request, as ``Verdict.state`` and the CLI show them.
STATES = ("pending", "granted", "denied", "revoked", "expired", "used")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a request amounts to now.

    ``signers`` are the approvers whose valid grants count; ``rejected`` how
    many decision rows counted for nothing (bad signature, unknown approver,
    other request, not in the group, self-approval not allowed).
    """

    state: str
    request: ApprovalRequest
    signers: tuple[str, ...] = ()
    max_rows: int | None = None
    uses: int = 0
    used: int = 0
    expires_at: int = 0
    break_glass: bool = False
    by: tuple[str, ...] = ()
    reason: str = ""
    rejected: int = 0

    @property
    def uses_left(self) -> int:
        """Uses a grant still allows."""
        return max(self.uses - self.used, 0) if self.state == "granted" else 0


def is_requester(approver: Approver, requester: Mapping[str, Any]) -> bool:
    """True when the approver is the person who asked (by name or email)."""
    if approver.name == requester.get("name"):
        return True
    email = requester.get("email")
    return approver.email is not None and email is not None and approver.email == email


def _valid(
    decision: SignedDecision,
    request: ApprovalRequest,
    section: ApprovalsSection,
    rule: ApprovalRule,
    members: tuple[str, ...],
) -> Approver | None:
    approver = section.approvers.get(decision.approver)
    if approver is None or decision.approver not in members:
        return None
    if decision.get("approval_id") != request.id:
        return None
    if decision.get("request_digest") != request.digest:
        return None
    if not decision.verify(approver.public_key):
        return None
    if decision.kind == "grant" and is_requester(approver, request.requester):
        allowed = rule.self_approval and request.requester.get("kind") == "human"
        if not allowed or decision.get("break_glass") is not True:
            return None
    return approver


def judge(
    stored: StoredApproval, section: ApprovalsSection, rule: ApprovalRule, now: float
) -> Verdict:
    """The verdict on ``stored`` under the policy's approvers and the rule, at ``now``."""
    request = stored.request
    members = section.members(rule.group)
    grants: dict[str, SignedDecision] = {}
    rejected = 0
    for decision in stored.decisions:
        if _valid(decision, request, section, rule, members) is None:
            rejected += 1
            continue
        if decision.kind in ("revoke", "deny"):
            state = "revoked" if decision.kind == "revoke" else "denied"
            return Verdict(
                state,
                request,
                by=(decision.approver,),
                reason=str(decision.get("reason") or ""),
                used=stored.used,
                rejected=rejected,
            )
        if decision.kind == "grant":
            grants.setdefault(decision.approver, decision)
    if len(grants) < rule.min_approvals:
        state = "expired" if now >= request.expires_at else "pending"
        return Verdict(
            state,
            request,
            signers=tuple(grants),
            used=stored.used,
            expires_at=request.expires_at,
            rejected=rejected,
        )
    chosen = list(grants.values())
    expires_at = min(_int(d.get("expires_at"), request.expires_at) for d in chosen)
    uses = min(_int(d.get("uses"), request.uses) for d in chosen)
    limits = [d.get("max_rows") for d in chosen if isinstance(d.get("max_rows"), int)]
    verdict = Verdict(
        "granted",
        request,
        signers=tuple(sorted(grants)),
        max_rows=min(limits) if limits else None,
        uses=uses,
        used=stored.used,
        expires_at=expires_at,
        break_glass=any(d.get("break_glass") is True for d in chosen),
        reason="; ".join(str(d.get("reason") or "") for d in chosen),
        rejected=rejected,
    )
    if now >= expires_at:
        return _replace(verdict, "expired")
    if stored.used >= uses:
        return _replace(verdict, "used")
    return verdict


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _replace(verdict: Verdict, state: str) -> Verdict:
    from dataclasses import replace

    return replace(verdict, state=state)
