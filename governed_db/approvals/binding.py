"""An approval request: everything it is bound to, as a frozen value with a digest.

A request records the exact statement text, its fingerprint, an HMAC of its
parameters (when given), what it does (operation, tables written), who asked,
where, under which rule and policy digest, the planner's estimate, when it was
asked and until when it may be granted, and how many uses a grant allows.
``digest`` is SHA-256 over its canonical JSON: approvers sign it, so a request
row edited in the store no longer matches any signature.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from governed_db.audit import canonical_json
from governed_db.audit.canonical import jsonable
from governed_db.identity import Identity

__all__ = [
    "ApprovalRequest",
    "binding_key",
    "new_approval_id",
    "params_hmac",
    "requester_fields",
    "round_up",
]

VERSION = 1


def new_approval_id() -> str:
    """A fresh random approval id (20 hex digits)."""
    return secrets.token_hex(10)


def params_hmac(params: Any, key: bytes) -> str | None:
    """HMAC-SHA256 of the parameters' canonical JSON, or None when none were given."""
    if params is None:
        return None
    return hmac.new(key, canonical_json(jsonable(params)), hashlib.sha256).hexdigest()


def requester_fields(identity: Identity) -> dict[str, Any]:
    """The parts of an identity a request is bound to (not its per-process session id)."""
    return {
        "kind": identity.kind,
        "name": identity.name,
        "email": identity.email,
        "on_behalf_of": identity.on_behalf_of,
    }


def binding_key(
    statement: str,
    params_digest: str | None,
    environment: str,
    requester: Mapping[str, Any] | str,
    rule_id: str,
    policy_digest: str | None,
) -> str:
    """What a retry of the same statement looks requests up by (hex SHA-256).

    ``requester`` is the requester's fields, or ``group:NAME`` when any member
    of an actor group may use the grant; ``policy_digest`` None when not pinned.
    """
    body = {
        "statement": statement,
        "params_hmac": params_digest,
        "environment": environment,
        "requester": requester,
        "rule_id": rule_id,
        "policy_digest": policy_digest,
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


def round_up(estimate: int | None) -> int | None:
    """The default ``max_rows`` of a grant: the estimate rounded up to two significant digits."""
    if estimate is None or estimate < 0:
        return None
    if estimate < 100:
        return max(estimate, 1)
    scale = 10 ** (len(str(estimate)) - 2)
    return int(math.ceil(estimate / scale) * scale)


@dataclass(frozen=True)
class ApprovalRequest:
    """One request for approval (see the module docstring). Times are epoch seconds."""

    id: str
    binding: str
    statement: str
    fingerprint: str
    params_hmac: str | None
    operation: str
    tables_written: tuple[str, ...]
    requester: Mapping[str, Any]
    requester_match: str
    environment: str
    rule_id: str
    reason: str
    estimated_rows: int | None
    policy_digest: str
    pinned: bool
    requested_at: int
    expires_at: int
    uses: int
    group: str | None
    min_approvals: int
    version: int = VERSION

    def body(self) -> dict[str, Any]:
        """The request as a JSON object (what stores keep)."""
        data = {name: getattr(self, name) for name in _FIELDS}
        data["tables_written"] = list(self.tables_written)
        data["requester"] = dict(self.requester)
        return data

    @functools.cached_property
    def digest(self) -> str:
        """SHA-256 (hex) of the canonical JSON of ``body()``: what approvers sign."""
        return hashlib.sha256(canonical_json(self.body())).hexdigest()

    @classmethod
    def from_body(cls, data: Mapping[str, Any]) -> ApprovalRequest:
        """A request from a stored body (ValueError if it is not one)."""
        try:
            values = dict(data)
            values["tables_written"] = tuple(values["tables_written"])
            values["requester"] = dict(values["requester"])
            request = cls(**values)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an approval request: {exc}") from None
        if request.version != VERSION:
            raise ValueError(f"unknown approval request version {request.version!r}")
        return request

    @property
    def requester_label(self) -> str:
        """``kind:name`` (and email) of who asked."""
        who = f"{self.requester.get('kind')}:{self.requester.get('name')}"
        email = self.requester.get("email")
        return f"{who} <{email}>" if email else who


_FIELDS = tuple(f.name for f in fields(ApprovalRequest))
