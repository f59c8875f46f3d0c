"""``build_governor``: the gate for a new connection, from ``connect()``'s keywords.

Connections opened with the same policy, identity and environment share one
governor (and so one decision cache): a pool decides each statement once.
Policy files are re-read only when they change.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from governed_db.audit import AuditSink, AuditTrail
from governed_db.governor.base import Governor
from governed_db.governor.policy_gate import PolicyGovernor
from governed_db.identity import Identity, detect_identity
from governed_db.policy import Policy, load_policy

__all__ = ["build_governor"]

_lock = threading.Lock()
_files: dict[tuple[str, int, int], Policy] = {}
_shared: dict[tuple[int, Identity, str | None, int], PolicyGovernor] = {}
_MAX = 64


def _identity(value: Any) -> Identity:
    if value is None or isinstance(value, Identity):
        return detect_identity(value)
    if isinstance(value, str):
        return Identity.parse(value)
    raise TypeError(
        "identity= must be a governed_db.Identity, a string such as 'agent:claude', or None; "
        f"not {type(value).__name__}"
    )


def _policy(source: Any) -> Policy:
    if isinstance(source, str | os.PathLike):
        path = os.path.abspath(os.fspath(source))
        try:
            st = os.stat(path)
        except OSError:
            return load_policy(source)  # raises PolicyError naming the path
        key = (path, st.st_mtime_ns, st.st_size)
        with _lock:
            found = _files.get(key)
        if found is None:
            found = load_policy(source)
            with _lock:
                if len(_files) >= _MAX:
                    _files.clear()
                _files[key] = found
        return found
    return load_policy(source)


def _trail(policy: Policy, audit: Any) -> AuditTrail | None:
    """The audit trail: ``audit=`` if given, else the policy's ``audit`` section, else none."""
    if audit is False:
        return None
    if audit is None:
        return AuditTrail.shared(policy.audit) if policy.audit else None
    if isinstance(audit, AuditTrail):
        return audit
    if isinstance(audit, Mapping):
        return AuditTrail.shared(audit)
    sinks = [audit] if isinstance(audit, AuditSink) else list(audit)
    if not all(isinstance(s, AuditSink) for s in sinks):
        raise TypeError(
            "audit= takes an AuditTrail, an audit settings mapping, an AuditSink or a list of "
            "them, or False to turn audit off"
        )
    return AuditTrail.shared(policy.audit or {}, sinks=sinks)


def build_governor(
    *,
    policy: Any = None,
    identity: Any = None,
    environment: str | None = None,
    audit: Any = None,
    governor: Governor | None = None,
) -> Governor:
    """``governor`` as given, else a gate for ``policy`` (see ``governed_db.connect``)."""
    if governor is not None:
        if policy is not None or audit is not None or identity is not None or environment:
            raise TypeError(
                "connect() takes either governor= or policy=/audit=/identity=/environment=, "
                "not both: a governor= decides by its own policy and identity"
            )
        if not isinstance(governor, Governor):
            raise TypeError(
                f"governor= must be a governed_db.Governor, not {type(governor).__name__}"
            )
        return governor
    if environment is not None and not isinstance(environment, str):
        raise TypeError(f"environment= must be a string, not {type(environment).__name__}")
    loaded = _policy(policy)
    actor = _identity(identity)
    trail = _trail(loaded, audit)
    key = (id(loaded), actor, environment, id(trail))
    with _lock:
        gate = _shared.get(key)
        if gate is not None and gate.policy is loaded and gate.trail is trail:
            return gate
    gate = PolicyGovernor(loaded, identity=actor, environment=environment, trail=trail)
    with _lock:
        if len(_shared) >= _MAX:
            _shared.clear()
        _shared[key] = gate
    return gate
