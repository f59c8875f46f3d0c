"""``build_governor``: the gate for a new connection, from ``connect()``'s keywords.

Connections opened with the same policy, identity and environment share one
governor (and so one decision cache): a pool decides each statement once.
Policy files are re-read only when they change.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from governed_db.audit import AuditSink, AuditTrail
from governed_db.audit.defaults import open_trail
from governed_db.governor.audit_bridge import AuditOff
from governed_db.governor.base import Governor
from governed_db.governor.policy_gate import PolicyGovernor
from governed_db.identity import Identity, detect_identity
from governed_db.policy import Policy, load_policy

__all__ = ["build_governor"]

_lock = threading.Lock()
_files: dict[tuple[str, int, int], Policy] = {}
_shared: dict[tuple[int, Identity, str | None, int, str | None], PolicyGovernor] = {}
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


def _trail(policy: Policy, audit: Any) -> tuple[AuditTrail | None, str | None]:
    """The audit trail and, when audit is explicitly off, who turned it off.

    ``audit=`` wins over the policy: False (off), True or None (the policy's
    ``audit`` section; None also honours ``audit: false``), an AuditTrail, a
    settings mapping, or sinks (added to the policy's settings). Without any
    configuration records go to the default spool (``audit.defaults``).
    """
    if audit is False:
        return None, "connect(audit=False)"
    if audit is None and not policy.audit_enabled:
        return None, f"policy {policy.source} (audit: false)"
    if audit is None or audit is True:
        return open_trail(policy.audit if policy.audit_enabled else None), None
    if isinstance(audit, AuditTrail):
        return audit, None
    if isinstance(audit, Mapping):
        return open_trail(audit), None
    if isinstance(audit, str | bytes) or not isinstance(audit, AuditSink | Iterable):
        raise TypeError(
            "audit= takes an AuditTrail, an audit settings mapping, an AuditSink or a list of "
            f"them, True (on, the default) or False (off); not {type(audit).__name__}"
        )
    sinks = [audit] if isinstance(audit, AuditSink) else list(audit)
    if not all(isinstance(s, AuditSink) for s in sinks):
        raise TypeError(
            "audit= takes an AuditTrail, an audit settings mapping, an AuditSink or a list of "
            "them, True (on, the default) or False (off)"
        )
    return open_trail(policy.audit if policy.audit_enabled else None, sinks), None


def _off(by: str | None) -> AuditOff | None:
    return None if by is None else AuditOff(by, lambda: open_trail(None))


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
    trail, off_by = _trail(loaded, audit)
    key = (id(loaded), actor, environment, id(trail), off_by)
    with _lock:
        gate = _shared.get(key)
        if gate is not None and gate.policy is loaded and gate.trail is trail:
            return gate
    gate = PolicyGovernor(
        loaded, identity=actor, environment=environment, trail=trail, audit_off=_off(off_by)
    )
    with _lock:
        if len(_shared) >= _MAX:
            _shared.clear()
        _shared[key] = gate
    return gate
