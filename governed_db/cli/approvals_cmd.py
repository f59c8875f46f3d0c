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
import time
from typing import Any

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
    decide,
    judge,
    open_store,
    verdict_of,
)
from governed_db.approvals.keys import APPROVER_ENV
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


def _one(policy: governed_db.Policy, approval_id: str) -> Verdict:
    return verdict_of(policy, approval_id)


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
    v = _one(policy, args.id)
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


def _decide(args: argparse.Namespace, kind: str) -> int:
    policy = _policy(args)
    expires = _duration(args.expires) if getattr(args, "expires", None) else None
    done = decide(
        policy,
        args.id,
        kind,
        reason=args.reason or "",
        approver=args.approver,
        key_file=args.key_file,
        max_rows=getattr(args, "max_rows", None),
        expires=expires,
    )
    body, after, name = done.decision.body, done.verdict, done.approver
    request = after.request
    console = Console()
    if kind == "grant":
        limit = "no row limit" if body["max_rows"] is None else f"max_rows {body['max_rows']}"
        glass = " [bold red]break glass[/]" if body["break_glass"] else ""
        console.print(
            f"[green]approved[/] {request.id} as {name}{glass} ({limit}, {body['uses']} "
            f"use(s), expires {_age(body['expires_at'])}); now {after.state} "
            f"({len(after.signers)} of {request.min_approvals} signatures)"
        )
        if after.state == "granted":
            console.print("the requester may retry the same statement now")
    else:
        console.print(f"[red]{after.state}[/] {request.id} as {name}")
    return 0


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
    return _decide(args, "grant")


def deny_cmd(args: argparse.Namespace) -> int:
    """``approvals deny ID --reason TEXT``."""
    return _decide(args, "deny")


def revoke_cmd(args: argparse.Namespace) -> int:
    """``approvals revoke ID``."""
    return _decide(args, "revoke")
