"""The ``approvals`` section (store, approvers, groups) and each rule's ``approval`` block.

Approvers are listed with their Ed25519 public keys (``key: "ed25519:BASE64"`` or
``key: "file:PATH"``, a path relative to the policy file); groups name approvers.
A guardrail whose action is ``require_approval`` may carry an ``approval``
mapping saying which group approves, how many signatures it needs and how a
grant may be had (see docs/approvals.md). Unknown approvers, groups or keys and
malformed keys fail to load, with the file and line.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import NoReturn
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from governed_db.policy.model import TimeWindow
from governed_db.policy.schema import Field, parse_duration

__all__ = [
    "KEY_PREFIX",
    "ApprovalRule",
    "ApprovalsSection",
    "Approver",
    "AutoApproval",
    "StoreConfig",
    "approval_rule_parser",
    "parse_approvals",
    "public_key_from_text",
]

KEY_PREFIX = "ed25519:"
STORE_TYPES = frozenset({"file", "postgres"})
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]*")
_DEFAULT_EXPIRES = 3600.0


@dataclass(frozen=True, slots=True)
class Approver:
    """A person who may sign approval decisions: a name and a raw Ed25519 public key."""

    name: str
    public_key: bytes
    email: str | None = None

    @property
    def key_text(self) -> str:
        """``ed25519:BASE64`` as written in the policy."""
        return KEY_PREFIX + base64.b64encode(self.public_key).decode("ascii")

    def verifier(self) -> Ed25519PublicKey:
        """The key as a cryptography object."""
        return Ed25519PublicKey.from_public_bytes(self.public_key)


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Where approval requests and decisions are kept: ``file`` (default) or ``postgres``."""

    type: str = "file"
    path: str | None = None
    dsn: str | None = None


@dataclass(frozen=True, slots=True)
class AutoApproval:
    """Conditions under which a request is approved at once (marked ``auto``).

    Every condition given must hold: ``window`` (a change window),
    ``estimated_rows_under`` (the planner's estimate is known and below N) and
    ``ticket_env`` (that environment variable is set and fully matches
    ``ticket_pattern``).
    """

    window: TimeWindow | None = None
    estimated_rows_under: int | None = None
    ticket_env: str | None = None
    ticket_pattern: re.Pattern[str] | None = None

    def holds(
        self, now: datetime, estimated_rows: int | None, environ: Mapping[str, str]
    ) -> str | None:
        """Why the request is approved automatically, or None when a condition fails."""
        reasons = []
        if self.window is not None:
            if not self.window.contains(now):
                return None
            reasons.append(f"change window {self.window.describe()}")
        if self.estimated_rows_under is not None:
            if estimated_rows is None or estimated_rows < 0:
                return None
            if estimated_rows >= self.estimated_rows_under:
                return None
            reasons.append(f"estimate {estimated_rows} < {self.estimated_rows_under} rows")
        if self.ticket_env is not None and self.ticket_pattern is not None:
            ticket = environ.get(self.ticket_env, "")
            if not ticket or self.ticket_pattern.fullmatch(ticket) is None:
                return None
            reasons.append(f"change ticket {self.ticket_env}={ticket}")
        return "; ".join(reasons)


@dataclass(frozen=True, slots=True)
class ApprovalRule:
    """How a ``require_approval`` rule is granted (the defaults when it says nothing).

    ``group`` None means any listed approver. ``requester`` is ``same`` (only
    the identity that asked may use the grant) or an actor group whose members
    may all use it. ``pin_policy`` False lets a grant outlive a policy change.
    """

    group: str | None = None
    min_approvals: int = 1
    expires: float = _DEFAULT_EXPIRES
    uses: int = 1
    self_approval: bool = False
    wait: float = 0.0
    requester: str = "same"
    pin_policy: bool = True
    auto: AutoApproval | None = None
    webhook: str | None = None


DEFAULT_RULE = ApprovalRule()


@dataclass(frozen=True, slots=True)
class ApprovalsSection:
    """The validated ``approvals`` section; ``configured`` False when the policy has none."""

    configured: bool = False
    store: StoreConfig = field(default_factory=StoreConfig)
    approvers: Mapping[str, Approver] = field(default_factory=lambda: MappingProxyType({}))
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def members(self, group: str | None) -> tuple[str, ...]:
        """The approvers of ``group`` (every approver for None)."""
        if group is None:
            return tuple(self.approvers)
        return self.groups.get(group, ())


def public_key_from_text(text: str) -> bytes:
    """The raw 32 bytes of an ``ed25519:BASE64`` key or PEM public key (ValueError if bad)."""
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(stripped.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the PEM key is not an Ed25519 public key")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if not stripped.startswith(KEY_PREFIX):
        raise ValueError(f"write the key as '{KEY_PREFIX}BASE64' (or file:PATH)")
    try:
        raw = base64.b64decode(stripped[len(KEY_PREFIX) :], validate=True)
    except binascii.Error:
        raise ValueError("the key after 'ed25519:' is not valid base64") from None
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, this one is {len(raw)}")
    Ed25519PublicKey.from_public_bytes(raw)
    return raw


def _key(item: Field) -> bytes:
    text = item.expect(str).strip()
    where = "key"
    if text.startswith("file:"):
        name = text[len("file:") :].strip()
        if not name:
            item.fail("file: names no file (write file:PATH)")
        path = Path(name)
        if not path.is_absolute() and item.path is not None:
            path = Path(item.path).parent / path
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            item.fail(f"cannot read approver key file {path}: {exc}")
        where = f"key file {path}"
    try:
        return public_key_from_text(text)
    except ValueError as exc:
        item.fail(f"malformed approver {where}: {exc}")


def _name(item: Field, name: str, what: str) -> str:
    if not _NAME.fullmatch(name):
        item.fail(f"bad {what} name {name!r}: use letters, digits, '-', '_', '.', '@'")
    return name


def _store(item: Field) -> StoreConfig:
    r = item.reader()
    kind = r.require("type").choice(STORE_TYPES, "approval store type")
    if kind == "file":
        path = r.get("path", str, "") or None
        r.finish()
        return StoreConfig("file", path=path)
    dsn = r.require("dsn").expect(str)
    r.finish()
    if not dsn.strip():
        item.fail("the postgres approval store needs a non-empty dsn")
    return StoreConfig("postgres", dsn=dsn)


def _approver(name: str, item: Field) -> Approver:
    r = item.reader()
    public_key = _key(r.require("key"))
    email = r.get("email", str, "") or None
    r.finish()
    return Approver(name, public_key, email)


def parse_approvals(item: Field | None) -> ApprovalsSection:
    """The ``approvals`` section (absent: not configured, nobody can grant)."""
    if item is None:
        return ApprovalsSection()
    r = item.reader()
    store = r.map("store", _store) or StoreConfig()
    approvers: dict[str, Approver] = {}
    seen_keys: dict[bytes, str] = {}
    listed = r.field("approvers")
    if listed is not None:
        for name, value in listed.reader().entries():
            _name(value, name, "approver")
            approver = _approver(name, value)
            if approver.public_key in seen_keys:
                other = seen_keys[approver.public_key]
                value.fail(f"approver {name!r} has the same key as {other!r}")
            seen_keys[approver.public_key] = name
            approvers[name] = approver
    groups: dict[str, tuple[str, ...]] = {}
    found = r.field("groups")
    if found is not None:
        for name, value in found.reader().entries():
            _name(value, name, "approver group")
            members = []
            for one in value.items():
                members.append(one.choice(approvers, "approver") if approvers else _no(one))
            if not members:
                value.fail("an approver group needs at least one approver")
            groups[name] = tuple(dict.fromkeys(members))
    r.finish()
    if not approvers:
        item.fail("list at least one approver under 'approvers' (name: {key: 'ed25519:...'})")
    return ApprovalsSection(True, store, MappingProxyType(approvers), MappingProxyType(groups))


def _no(one: Field) -> NoReturn:
    one.fail(f"unknown approver {one.value!r}: no approvers are listed")


def approval_rule_parser(
    section: ApprovalsSection,
    actor_groups: Collection[str],
    time_window: Callable[[Field], TimeWindow],
) -> Callable[[Field], ApprovalRule]:
    """A parser for one rule's ``approval`` block, checked against ``section``."""

    def parse(item: Field) -> ApprovalRule:
        if not section.configured:
            item.fail("this rule configures an approval, and the policy has no 'approvals' section")
        r = item.reader()
        group = r.map("group", lambda f: f.choice(section.groups, "approver group"))
        size = len(section.members(group))
        min_approvals = r.map("min_approvals", _positive) or 1
        if min_approvals > size:
            (r.field("min_approvals") or item).fail(
                f"min_approvals is {min_approvals}, and "
                f"{'group ' + repr(group) if group else 'the policy'} has only {size} approver(s)"
            )
        requester = r.map("requester", lambda f: _requester(f, actor_groups)) or "same"
        expires = r.map("expires", _positive_duration) or _DEFAULT_EXPIRES
        rule = ApprovalRule(
            group=group,
            min_approvals=min_approvals,
            expires=expires,
            uses=r.map("uses", _positive) or 1,
            self_approval=r.get("self_approval", bool, False),
            wait=r.map("wait", parse_duration) or 0.0,
            requester=requester,
            pin_policy=r.get("pin_policy", bool, True),
            auto=r.map("auto", lambda f: _auto(f, time_window)),
            webhook=r.map("webhook", _webhook),
        )
        r.finish()
        return rule

    return parse


def _positive(item: Field) -> int:
    value = item.expect(int)
    if value < 1:
        item.fail(f"must be ≥ 1, got {value}")
    return value


def _positive_duration(item: Field) -> float:
    value = parse_duration(item)
    if value <= 0:
        item.fail("must be a positive duration")
    return value


def _requester(item: Field, actor_groups: Collection[str]) -> str:
    value = item.expect(str)
    if value == "same":
        return value
    return item.choice(actor_groups, "requester ('same' or an actor group)")


def _auto(item: Field, time_window: Callable[[Field], TimeWindow]) -> AutoApproval:
    r = item.reader()
    window = r.map("window", time_window)
    under = r.map("estimated_rows_under", _positive)
    ticket_env = ticket_pattern = None
    ticket = r.field("ticket")
    if ticket is not None:
        tr = ticket.reader()
        ticket_env = tr.require("env").expect(str)
        pattern_field = tr.require("pattern")
        try:
            ticket_pattern = re.compile(pattern_field.expect(str))
        except re.error as exc:
            pattern_field.fail(f"bad regular expression: {exc}")
        tr.finish()
    r.finish()
    auto = AutoApproval(window, under, ticket_env, ticket_pattern)
    if auto == AutoApproval():
        item.fail("give at least one of window, estimated_rows_under, ticket")
    return auto


def _webhook(item: Field) -> str:
    url = item.expect(str).strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        item.fail(f"bad webhook URL {url!r}: write http(s)://host/path")
    return url
