"""Approvals: a statement that needs one runs only with a signed grant bound to it exactly.

    store = open_store(policy.approvals.store)
    request = ApprovalRequest(...)              # the binding (see binding.py)
    decision = sign_decision(approver_key, approval_id=..., request_digest=request.digest, ...)
    store.add_decision(request.id, decision)
    verdict = judge(store.get(request.id), policy.approvals, rule, time.time())

Pieces: ``binding`` (the request and its digest), ``decisions`` (Ed25519-signed
grant/deny/revoke), ``verdict`` (which decisions count), ``store`` (the tiny
base and its in-memory twin), ``file_store`` and ``pg_store``, ``keys`` (the
parameters' HMAC key, approvers' private keys), ``webhook``. This room imports
``policy``, ``identity``, ``audit`` (canonical JSON, key locations) and ``errors``.
"""

from governed_db.approvals.binding import (
    ApprovalRequest,
    binding_key,
    new_approval_id,
    params_hmac,
    requester_fields,
    round_up,
)
from governed_db.approvals.deciding import (
    Decided,
    DecisionError,
    decide,
    find_approver,
    verdict_of,
)
from governed_db.approvals.decisions import SignedDecision, sign_decision
from governed_db.approvals.file_store import FileStore
from governed_db.approvals.keys import (
    init_approver_key,
    load_approver_key,
    load_params_key,
    public_text,
)
from governed_db.approvals.pg_store import PostgresStore
from governed_db.approvals.store import (
    ApprovalStore,
    ApprovalStoreError,
    MemoryStore,
    StoredApproval,
)
from governed_db.approvals.stores import default_root, open_store
from governed_db.approvals.verdict import STATES, Verdict, approval_rule, is_requester, judge
from governed_db.approvals.webhook import payload as webhook_payload
from governed_db.approvals.webhook import post as post_webhook

__all__ = [
    "STATES",
    "ApprovalRequest",
    "ApprovalStore",
    "ApprovalStoreError",
    "Decided",
    "DecisionError",
    "FileStore",
    "MemoryStore",
    "PostgresStore",
    "SignedDecision",
    "StoredApproval",
    "Verdict",
    "approval_rule",
    "binding_key",
    "decide",
    "default_root",
    "find_approver",
    "init_approver_key",
    "is_requester",
    "judge",
    "load_approver_key",
    "load_params_key",
    "new_approval_id",
    "open_store",
    "params_hmac",
    "post_webhook",
    "public_text",
    "requester_fields",
    "round_up",
    "sign_decision",
    "verdict_of",
    "webhook_payload",
]
