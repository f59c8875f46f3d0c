"""Signed approval decisions: grant, deny or revoke, by an approver's Ed25519 key.

A decision's body names the approval id, the request digest it was made on,
the approver, the reason and, for a grant, the effect accepted (``max_rows``),
until when (``expires_at``) and how many uses. The signature is Ed25519 over
``b"governed-db approval v1\\x00"`` followed by the body's canonical JSON. A
decision counts only when the key of the approver it names, as listed in the
policy, verifies it.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from governed_db.audit import canonical_json

__all__ = ["KINDS", "SIGNATURE_CONTEXT", "SignedDecision", "sign_decision"]

SIGNATURE_CONTEXT = b"governed-db approval v1\x00"
_MEMO = 4096
#: (public key, signature, signed bytes) -> verified: a signature over given bytes is a fact.
_VERIFIED: dict[tuple[bytes, str, bytes], bool] = {}
KINDS = frozenset({"grant", "deny", "revoke"})


@dataclass(frozen=True, slots=True)
class SignedDecision:
    """A decision body and its base64 signature, as the store keeps them (untrusted)."""

    body: Mapping[str, Any]
    signature: str

    @property
    def kind(self) -> str:
        """``grant``, ``deny`` or ``revoke`` (as claimed: check ``verify`` first)."""
        return str(self.body.get("decision", ""))

    @property
    def approver(self) -> str:
        """The approver the body names."""
        return str(self.body.get("approver", ""))

    def get(self, name: str) -> Any:
        """A body field, or None."""
        return self.body.get(name)

    def verify(self, key: Ed25519PublicKey | bytes) -> bool:
        """True if ``key`` (or its 32 raw bytes) signed exactly this body (memoized)."""
        if isinstance(key, Ed25519PublicKey):
            key = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        try:
            message = SIGNATURE_CONTEXT + canonical_json(dict(self.body))
        except (TypeError, ValueError):
            return False
        memo = (key, self.signature, message)
        found = _VERIFIED.get(memo)
        if found is None:
            try:
                public = Ed25519PublicKey.from_public_bytes(key)
                public.verify(base64.b64decode(self.signature, validate=True), message)
                found = True
            except (InvalidSignature, binascii.Error, ValueError, TypeError):
                found = False
            if len(_VERIFIED) >= _MEMO:
                _VERIFIED.clear()
            _VERIFIED[memo] = found
        return found

    def as_json(self) -> dict[str, Any]:
        """``{"body": ..., "signature": ...}``."""
        return {"body": dict(self.body), "signature": self.signature}

    @classmethod
    def from_json(cls, data: Any) -> SignedDecision:
        """From ``as_json`` output (ValueError if malformed)."""
        if not isinstance(data, Mapping) or not isinstance(data.get("body"), Mapping):
            raise ValueError("not a signed decision")
        return cls(MappingProxyType(dict(data["body"])), str(data.get("signature", "")))


def sign_decision(
    key: Ed25519PrivateKey,
    *,
    approval_id: str,
    request_digest: str,
    decision: str,
    approver: str,
    reason: str,
    max_rows: int | None = None,
    expires_at: int | None = None,
    uses: int | None = None,
    break_glass: bool = False,
    decided_at: int | None = None,
) -> SignedDecision:
    """Make and sign a decision with the approver's private key."""
    if decision not in KINDS:
        raise ValueError(f"unknown decision {decision!r}: grant, deny or revoke")
    body: dict[str, Any] = {
        "v": 1,
        "approval_id": approval_id,
        "request_digest": request_digest,
        "decision": decision,
        "approver": approver,
        "reason": reason,
        "decided_at": int(time.time()) if decided_at is None else decided_at,
        "max_rows": max_rows,
        "expires_at": expires_at,
        "uses": uses,
        "break_glass": break_glass,
    }
    signature = base64.b64encode(key.sign(SIGNATURE_CONTEXT + canonical_json(body)))
    return SignedDecision(MappingProxyType(body), signature.decode("ascii"))
