"""Deciding a request as an approver: the checks, the signature, the store (CLI and Python).

``decide(policy, approval_id, "grant", reason=...)`` finds the approver's key
(``approver``, ``$GOVERNED_DB_APPROVER``, else the first of the rule's group whose
key is here), checks that the key is the one the policy lists for them, that
they approve for the request's rule, and that the request is still open; then
signs and stores the decision. A self-approval needs the rule's
``self_approval``, a human's request, a person at a terminal or in a notebook,
and a reason; it is marked ``break_glass``. Every refusal is a ``DecisionError``
with one clear line.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governed_db.approvals.binding import ApprovalRequest, round_up
from governed_db.approvals.decisions import SignedDecision, sign_decision
from governed_db.approvals.keys import (
    APPROVER_ENV,
    approver_key_file,
    load_approver_key,
    public_text,
)
from governed_db.approvals.stores import open_store
from governed_db.approvals.verdict import Verdict, approval_rule, is_requester, judge
from governed_db.audit.defaults import open_trail
from governed_db.errors import GovernanceError
from governed_db.policy import Policy

__all__ = ["Decided", "DecisionError", "decide", "find_approver", "verdict_of"]

_ROW_OPERATIONS = frozenset({"insert", "update", "delete", "merge"})


class DecisionError(GovernanceError):
    """An approver's decision was refused (unknown id, already decided, not an approver...)."""

    __module__ = "governed_db.approvals"


@dataclass(frozen=True, slots=True)
class Decided:
    """What ``decide`` did: the signed decision, and the request's verdict afterwards."""

    decision: SignedDecision
    verdict: Verdict
    approver: str


def verdict_of(policy: Policy, approval_id: str) -> Verdict:
    """The request's verdict now (``DecisionError`` for an unknown id)."""
    stored = open_store(policy.approvals.store).get(approval_id)
    if stored is None:
        raise DecisionError(
            f"unknown approval id {approval_id!r} (see `governed-db approvals list`)"
        )
    rule = approval_rule(policy, stored.request.rule_id)
    return judge(stored, policy.approvals, rule, time.time())


def find_approver(
    policy: Policy,
    name: str | None = None,
    *,
    key_file: str | os.PathLike[str] | None = None,
    prefer: tuple[str, ...] = (),
) -> tuple[str, Ed25519PrivateKey]:
    """``(name, key)`` of the approver acting, whose key the policy lists for them."""
    name = name or os.environ.get(APPROVER_ENV) or None
    approvers = policy.approvals.approvers
    if name is not None and name not in approvers:
        raise DecisionError(f"{name!r} is not an approver in {policy.source}")
    found = load_approver_key(name, key_file=key_file)
    if found is None and name is None:
        for candidate in (*prefer, *approvers):
            if approver_key_file(candidate).exists():
                found = load_approver_key(candidate)
                break
    if found is None:
        who = name or "NAME"
        raise DecisionError(
            f"no approver key found for {who}: create one with "
            f"`governed-db keys init --approver {who}` and list its public key in the policy"
        )
    key, where = found
    text = public_text(key)
    match = next((a.name for a in approvers.values() if a.key_text == text), None)
    if match is None or (name is not None and match != name):
        whose = f"the key of {name!r}" if name else "a key"
        raise DecisionError(f"the key from {where} is not {whose} listed in {policy.source}")
    return match, key


def decide(
    policy: Policy,
    approval_id: str,
    kind: str,
    *,
    reason: str,
    approver: str | None = None,
    key_file: str | os.PathLike[str] | None = None,
    max_rows: int | None = None,
    expires: float | None = None,
) -> Decided:
    """Sign and store a ``grant``, ``deny`` or ``revoke`` of request ``approval_id``."""
    if not policy.approvals.configured:
        raise DecisionError(f"the policy {policy.source} has no 'approvals' section")
    verdict = verdict_of(policy, approval_id)
    request = verdict.request
    rule = approval_rule(policy, request.rule_id)
    members = policy.approvals.members(rule.group)
    name, key = find_approver(policy, approver, key_file=key_file, prefer=members)
    if name not in members:
        raise DecisionError(
            f"{name} is not an approver for rule {request.rule_id} "
            f"(group {rule.group!r}: {', '.join(members)})"
        )
    _still_open(verdict, kind, name)
    if kind in ("grant", "deny") and not reason.strip():
        raise DecisionError("a reason is required: say why")
    terms: dict[str, Any] = {}
    if kind == "grant":
        terms = _terms(request, max_rows, expires if expires is not None else rule.expires)
        if is_requester(policy.approvals.approvers[name], request.requester):
            _self_approval(rule.self_approval, request, reason)
            terms["break_glass"] = True
    signed = sign_decision(
        key,
        approval_id=request.id,
        request_digest=request.digest,
        decision=kind,
        approver=name,
        reason=reason,
        **terms,
    )
    store = open_store(policy.approvals.store)
    store.add_decision(request.id, signed)
    after = verdict_of(policy, request.id)
    _record(policy, request, signed.body, after.state)
    return Decided(signed, after, name)


def _record(policy: Policy, request: ApprovalRequest, body: Mapping[str, Any], state: str) -> None:
    """The decision as an audit record, in the policy's trail (unless audit is off)."""
    if not policy.audit_enabled:
        return
    fields = {
        "approval.id": request.id,
        "approval.event": body["decision"],
        "approval.state": state,
        "approver": body["approver"],
        "reason": body["reason"],
        "max_rows": body["max_rows"],
        "expires_at": body["expires_at"],
        "uses": body["uses"],
        "break_glass": body["break_glass"],
        "rule_id": request.rule_id,
        "requester": dict(request.requester),
        "deployment.environment.name": request.environment,
        "fingerprint": request.fingerprint,
    }
    open_trail(policy.audit).event("approval", fields)


def _still_open(verdict: Verdict, kind: str, name: str) -> None:
    request_id = verdict.request.id
    if verdict.state in ("denied", "revoked"):
        raise DecisionError(f"approval {request_id} is already decided: {verdict.state}")
    if kind == "revoke":
        if verdict.state not in ("granted", "pending"):
            raise DecisionError(f"approval {request_id} is {verdict.state}: nothing to revoke")
    elif verdict.state == "expired":
        raise DecisionError(f"approval {request_id} has expired; the statement must be asked again")
    elif verdict.state in ("granted", "used"):
        raise DecisionError(f"approval {request_id} is already decided: {verdict.state}")
    elif name in verdict.signers:
        raise DecisionError(f"you ({name}) already approved {request_id}")


def _terms(request: ApprovalRequest, max_rows: int | None, expires: float) -> dict[str, Any]:
    if max_rows is not None and max_rows < 0:
        raise DecisionError("max_rows must be ≥ 0")
    if max_rows is None:
        max_rows = round_up(request.estimated_rows)
        if max_rows is None and request.operation in _ROW_OPERATIONS:
            raise DecisionError(
                f"the planner gave no estimate for this {request.operation.upper()}: "
                "give --max-rows N (the most rows you accept it touching)"
            )
    if expires <= 0:
        raise DecisionError("a grant must expire in the future")
    return {"max_rows": max_rows, "expires_at": int(time.time() + expires), "uses": request.uses}


def _self_approval(allowed: bool, request: ApprovalRequest, reason: str) -> None:
    if not allowed:
        raise DecisionError(
            f"you asked for {request.id} yourself, and rule {request.rule_id} does not allow "
            "self-approval; ask another approver"
        )
    if request.requester.get("kind") != "human":
        raise DecisionError("self-approval is only for a human's own request")
    if not (sys.stdin.isatty() or "ipykernel" in sys.modules):
        raise DecisionError("self-approval (break glass) needs a person at a terminal or notebook")
    if not reason.strip():
        raise DecisionError("self-approval (break glass) needs a reason")
