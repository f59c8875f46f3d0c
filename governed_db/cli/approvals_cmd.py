"""``governed-db approvals``: list, show, approve, deny and revoke approval requests.

Every command reads the policy (``--policy`` or ``$GOVERNED_DB_POLICY``): it
names the store, the approvers and their keys, and each rule's group. A
decision is signed with the approver's own key (``governed-db keys init
--approver NAME``); which approver you are is ``--approver``,
``$GOVERNED_DB_APPROVER``, or the one listed approver whose key you hold.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

import governed_db
from governed_db.approvals import (
    ApprovalStore,
    StoredApproval,
    Verdict,
    approval_rule,
    is_requester,
    judge,
    load_approver_key,
    open_store,
    public_text,
    round_up,
    sign_decision,
)
from governed_db.approvals.keys import APPROVER_ENV, approver_key_file
from governed_db.cli.errors import one_line_errors
from governed_db.errors import GovernanceError

__all__ = ["register"]

_COLORS = {
    "pending": "yellow",
    "granted": "green",
    "denied": "red",
    "revoked": "red",
    "expired": "dim",
    "used": "dim",
}
_DURATION = re.compile(r"(\d+)(s|m|h|d)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_ROW_OPERATIONS = frozenset({"insert", "update", "delete", "merge"})


class CommandError(Exception):
    """A clear, expected failure of an approvals command (one line, exit 1)."""


_guard = one_line_errors("approvals", CommandError, GovernanceError, OSError, code=1)


def register(subparsers: Any) -> None:
    """Add ``approvals list|show|approve|deny|revoke`` to the top-level parser."""
    parser = subparsers.add_parser("approvals", help="list, show and decide approval requests")
    sub = parser.add_subparsers(dest="approvals_command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        p.add_argument("--policy", metavar="FILE", help="policy file (default $GOVERNED_DB_POLICY)")
        return p

    p = command("list", "list approval requests")
    p.add_argument("--pending", action="store_true", help="only requests waiting for a decision")
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    p.set_defaults(func=_guard(list_cmd))

    p = command("show", "show one request: statement, facts, estimate, requester, rule")
    p.add_argument("id", metavar="ID")
    p.set_defaults(func=_guard(show_cmd))

    def decide(name: str, help_text: str, reason_required: bool) -> argparse.ArgumentParser:
        p = command(name, help_text)
        p.add_argument("id", metavar="ID")
        p.add_argument("--reason", required=reason_required, help="why (recorded and signed)")
        p.add_argument("--approver", metavar="NAME", help=f"who you are (default ${APPROVER_ENV})")
        p.add_argument("--key-file", metavar="PATH", help="your approver key file")
        return p

    p = decide("approve", "grant a request with your signature", True)
    p.add_argument(
        "--max-rows", type=int, metavar="N", help="rows it may touch (default: the estimate)"
    )
    p.add_argument("--expires", metavar="DURATION", help="how long the grant lasts (e.g. 1h)")
    p.set_defaults(func=_guard(approve_cmd))
    p = decide("deny", "refuse a request with your signature", True)
    p.set_defaults(func=_guard(deny_cmd))
    p = decide("revoke", "withdraw a grant with your signature", False)
    p.set_defaults(func=_guard(revoke_cmd))


def _policy(args: argparse.Namespace) -> governed_db.Policy:
    source = args.policy or os.environ.get("GOVERNED_DB_POLICY")
    if not source:
        raise CommandError("give --policy FILE (or set GOVERNED_DB_POLICY): it lists the approvers")
    policy = governed_db.load_policy(source)
    if not policy.approvals.configured:
        raise CommandError(f"the policy {policy.source} has no 'approvals' section")
    return policy


def _store(policy: governed_db.Policy) -> ApprovalStore:
    return open_store(policy.approvals.store)


def _verdicts(policy: governed_db.Policy, stored: list[StoredApproval]) -> list[Verdict]:
    now = time.time()
    return [
        judge(s, policy.approvals, approval_rule(policy, s.request.rule_id), now) for s in stored
    ]


def _one(policy: governed_db.Policy, approval_id: str) -> tuple[StoredApproval, Verdict]:
    stored = _store(policy).get(approval_id)
    if stored is None:
        raise CommandError(
            f"unknown approval id {approval_id!r} (see `governed-db approvals list`)"
        )
    return stored, _verdicts(policy, [stored])[0]


def _age(ts: int) -> str:
    delta = int(time.time()) - ts
    sign = "ago" if delta >= 0 else "from now"
    delta = abs(delta)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            return f"{delta // size}{unit} {sign}"
    return f"{delta}s {sign}"


def _as_json(v: Verdict) -> dict[str, Any]:
    r = v.request
    return {
        "id": r.id,
        "state": v.state,
        "statement": r.statement,
        "operation": r.operation,
        "tables_written": list(r.tables_written),
        "estimated_rows": r.estimated_rows,
        "requester": dict(r.requester),
        "environment": r.environment,
        "rule_id": r.rule_id,
        "reason": r.reason,
        "requested_at": r.requested_at,
        "expires_at": v.expires_at or r.expires_at,
        "signers": list(v.signers),
        "min_approvals": r.min_approvals,
        "max_rows": v.max_rows,
        "uses": v.uses or r.uses,
        "used": v.used,
    }


def list_cmd(args: argparse.Namespace) -> int:
    """``approvals list``."""
    policy = _policy(args)
    verdicts = _verdicts(policy, _store(policy).all())
    if args.pending:
        verdicts = [v for v in verdicts if v.state == "pending"]
    if args.json:
        for v in verdicts:
            print(json.dumps(_as_json(v), sort_keys=True))
        return 0
    table = Table(title=f"approvals ({policy.approvals.store.type} store)")
    for column in ("id", "state", "requested", "requester", "env", "rule", "does", "estimate"):
        table.add_column(column, overflow="fold")
    for v in verdicts:
        r = v.request
        color = _COLORS.get(v.state, "")
        signed = f" {len(v.signers)}/{r.min_approvals}" if v.state == "pending" else ""
        table.add_row(
            r.id,
            f"[{color}]{v.state}{signed}[/]",
            _age(r.requested_at),
            escape(r.requester_label),
            r.environment,
            escape(r.rule_id),
            escape(f"{r.operation.upper()} {', '.join(r.tables_written)}".strip()),
            "?" if r.estimated_rows is None else str(r.estimated_rows),
        )
    Console().print(table)
    if not verdicts:
        print("no approval requests" + (" pending" if args.pending else ""))
    return 0


def show_cmd(args: argparse.Namespace) -> int:
    """``approvals show ID``."""
    policy = _policy(args)
    _, v = _one(policy, args.id)
    r = v.request
    rule = approval_rule(policy, r.rule_id)
    console = Console()
    console.print(Syntax(r.statement, "sql", word_wrap=True, theme="ansi_dark"))
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    group = rule.group or "any approver"
    signed = ", ".join(v.signers) or "-"
    rows = [
        ("id", r.id),
        ("state", f"[{_COLORS.get(v.state, '')}]{v.state}[/]"),
        ("operation", r.operation.upper()),
        ("tables written", ", ".join(r.tables_written) or "-"),
        ("estimate", "unknown" if r.estimated_rows is None else f"{r.estimated_rows} rows"),
        ("requester", escape(r.requester_label)),
        ("environment", r.environment),
        ("rule", f"{escape(r.rule_id)}: {escape(r.reason)}"),
        ("approvers", f"{group}, {rule.min_approvals} needed; signed: {signed}"),
        ("parameters", "HMAC " + r.params_hmac[:16] + "…" if r.params_hmac else "none"),
        ("requested", _age(r.requested_at)),
        ("expires", _age(v.expires_at or r.expires_at)),
        ("uses", f"{v.used} of {v.uses or r.uses}"),
    ]
    if v.max_rows is not None:
        rows.append(("max rows", str(v.max_rows)))
    if v.by:
        rows.append((v.state + " by", f"{', '.join(v.by)}: {escape(v.reason)}"))
    if v.rejected:
        rows.append(("ignored", f"{v.rejected} decision(s) without a valid listed signature"))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    return 0


def _approver(
    policy: governed_db.Policy, args: argparse.Namespace, members: tuple[str, ...]
) -> tuple[str, Ed25519PrivateKey, str]:
    """(name, key, where): the approver acting, with a key that the policy lists for them.

    Without ``--approver``, the first of the rule's ``members`` (then any approver)
    whose key file is here.
    """
    name = args.approver or os.environ.get(APPROVER_ENV) or None
    approvers = policy.approvals.approvers
    if name is not None and name not in approvers:
        raise CommandError(f"{name!r} is not an approver in {policy.source}")
    found = load_approver_key(name, key_file=args.key_file)
    if found is None and name is None:
        for candidate in (*members, *approvers):
            if approver_key_file(candidate).exists():
                found = load_approver_key(candidate)
                break
    if found is None:
        who = name or "NAME"
        raise CommandError(
            f"no approver key found for {who}: create one with "
            f"`governed-db keys init --approver {who}` and list its public key in the policy"
        )
    key, where = found
    text = public_text(key)
    match = next((a.name for a in approvers.values() if a.key_text == text), None)
    if match is None or (name is not None and match != name):
        raise CommandError(
            f"the key from {where} is not {'the key of ' + repr(name) if name else 'a key'} "
            f"listed in {policy.source}"
        )
    return match, key, where


def _decide(args: argparse.Namespace, kind: str) -> int:
    policy = _policy(args)
    stored, verdict = _one(policy, args.id)
    request = stored.request
    rule = approval_rule(policy, request.rule_id)
    name, key, _ = _approver(policy, args, policy.approvals.members(rule.group))
    if name not in policy.approvals.members(rule.group):
        raise CommandError(
            f"{name} is not an approver for rule {request.rule_id} "
            f"(group {rule.group!r}: {', '.join(policy.approvals.members(rule.group))})"
        )
    if verdict.state in ("denied", "revoked"):
        raise CommandError(f"approval {request.id} is already decided: {verdict.state}")
    if kind == "revoke":
        if verdict.state not in ("granted", "pending"):
            raise CommandError(f"approval {request.id} is {verdict.state}: nothing to revoke")
    elif verdict.state == "expired":
        raise CommandError(f"approval {request.id} has expired; the statement must be asked again")
    elif verdict.state in ("granted", "used"):
        raise CommandError(f"approval {request.id} is already decided: {verdict.state}")
    elif name in verdict.signers:
        raise CommandError(f"you ({name}) already approved {request.id}")
    extra: dict[str, Any] = {}
    approver = policy.approvals.approvers[name]
    if kind == "grant":
        extra = _grant_terms(args, request, rule.expires)
        if is_requester(approver, request.requester):
            _self_approval(rule.self_approval, request, args.reason)
            extra["break_glass"] = True
    signed = sign_decision(
        key,
        approval_id=request.id,
        request_digest=request.digest,
        decision=kind,
        approver=name,
        reason=args.reason or "",
        **extra,
    )
    store = _store(policy)
    store.add_decision(request.id, signed)
    after = _verdicts(policy, [store.get(request.id) or stored])[0]
    console = Console()
    if kind == "grant":
        limit = "no row limit" if extra["max_rows"] is None else f"max_rows {extra['max_rows']}"
        console.print(
            f"[green]approved[/] {request.id} as {name} ({limit}, {extra['uses']} use(s), "
            f"expires {_age(extra['expires_at'])}); now {after.state} "
            f"({len(after.signers)} of {request.min_approvals} signatures)"
        )
        if after.state == "granted":
            console.print("the requester may retry the same statement now")
    else:
        console.print(f"[red]{after.state}[/] {request.id} as {name}")
    return 0


def _grant_terms(args: argparse.Namespace, request: Any, default_expires: float) -> dict[str, Any]:
    max_rows = args.max_rows
    if max_rows is not None and max_rows < 0:
        raise CommandError("--max-rows must be ≥ 0")
    if max_rows is None:
        max_rows = round_up(request.estimated_rows)
        if max_rows is None and request.operation in _ROW_OPERATIONS:
            raise CommandError(
                f"the planner gave no estimate for this {request.operation.upper()}: "
                "give --max-rows N (the most rows you accept it touching)"
            )
    seconds = _duration(args.expires) if args.expires else default_expires
    return {
        "max_rows": max_rows,
        "expires_at": int(time.time() + seconds),
        "uses": request.uses,
    }


def _self_approval(allowed: bool, request: Any, reason: str) -> None:
    if not allowed:
        raise CommandError(
            f"you asked for {request.id} yourself, and rule {request.rule_id} does not allow "
            "self-approval; ask another approver"
        )
    if request.requester.get("kind") != "human":
        raise CommandError("self-approval is only for a human's own request")
    if not (sys.stdin.isatty() or "ipykernel" in sys.modules):
        raise CommandError("self-approval (break glass) needs a person at a terminal or notebook")
    if not reason.strip():
        raise CommandError("self-approval (break glass) needs a --reason")


def _duration(text: str) -> float:
    pos, total = 0, 0
    for match in _DURATION.finditer(text.strip()):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(text.strip()) or total <= 0:
        raise CommandError(f"bad duration {text!r}: write e.g. 30m, 1h, 2h30m or 1d")
    return float(total)


def approve_cmd(args: argparse.Namespace) -> int:
    """``approvals approve ID --reason TEXT``."""
    if not args.reason.strip():
        raise CommandError("--reason must say why")
    return _decide(args, "grant")


def deny_cmd(args: argparse.Namespace) -> int:
    """``approvals deny ID --reason TEXT``."""
    if not args.reason.strip():
        raise CommandError("--reason must say why")
    return _decide(args, "deny")


def revoke_cmd(args: argparse.Namespace) -> int:
    """``approvals revoke ID``."""
    return _decide(args, "revoke")
