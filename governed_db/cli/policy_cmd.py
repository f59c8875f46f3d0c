"""``governed-db policy validate FILE`` and ``governed-db policy explain [FILE]``.

Exit 0 for a valid policy, 1 for an invalid one (``FILE:LINE: message``), 2 when
the named file (or ``$GOVERNED_DB_POLICY``'s) cannot be read at all.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

import governed_db

_ACTION_STYLE = {
    "block": "bold red",
    "require_approval": "yellow",
    "observe": "cyan",
    "allow": "green",
}


def register(subparsers: Any) -> None:
    """Add ``policy validate`` and ``policy explain``."""
    parser = subparsers.add_parser(
        "policy",
        help="validate or explain a policy file",
        description="Check a governed_db policy file, or show its rules as tables.",
    )
    actions = parser.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    validate_parser = actions.add_parser(
        "validate",
        help="check a policy file; exit 1 with FILE:LINE: message if it is invalid",
    )
    validate_parser.add_argument("file", metavar="FILE", help="the policy YAML file")
    validate_parser.set_defaults(func=validate)
    explain_parser = actions.add_parser(
        "explain", help="print the environments, actors, limits and rules as tables"
    )
    explain_parser.add_argument(
        "file",
        metavar="FILE",
        nargs="?",
        help="the policy YAML file (default: $GOVERNED_DB_POLICY, else the built-in baseline)",
    )
    explain_parser.set_defaults(func=explain)


def validate(args: argparse.Namespace) -> int:
    """Exit 0 and a one-line summary if the file is valid, else 1 and FILE:LINE: message."""
    policy = _load(args.file)
    if isinstance(policy, int):
        return policy
    print(f"{args.file}: ok ({_summary(policy)})")
    return 0


def explain(args: argparse.Namespace) -> int:
    """Print the policy as rich tables; exit 1 if it is invalid."""
    policy = _load(args.file)
    if isinstance(policy, int):
        return policy
    console = Console(highlight=False)
    console.print(f"[bold]{escape(policy.source)}[/]: {_summary(policy)}")
    if policy.description:
        console.print(Text(policy.description))
    console.print(_environments(policy))
    if policy.actors:
        console.print(_actors(policy))
    console.print(_rules(policy))
    console.print(
        "Rules are tried top to bottom; the first whose conditions all hold decides."
        " No match: allow. Several statements: the strictest decision wins.",
        style="dim",
    )
    return 0


def _load(path: str | None) -> governed_db.Policy | int:
    """The policy, or an exit code after printing one line to stderr: 2 if the
    file cannot be read (missing, a directory, not text), 1 if it is invalid."""
    if path is not None and not path.strip():
        print("governed-db policy: error: the policy file name is empty", file=sys.stderr)
        return 2
    try:
        return governed_db.load_policy(path)
    except governed_db.PolicyError as exc:
        if exc.path is not None and exc.line is None and not os.path.isfile(exc.path):
            print(f"governed-db policy: error: {exc}", file=sys.stderr)
            return 2
        print(exc, file=sys.stderr)
        return 1


def _summary(policy: governed_db.Policy) -> str:
    return (
        f"version {policy.version}, mode {policy.mode}, {len(policy.rules)} rules, "
        f"{len(policy.environment_names)} environments, {len(policy.actors)} actor groups"
    )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:g}s"


def _environments(policy: governed_db.Policy) -> Table:
    table = Table(title="Environments (first match wins)", title_justify="left")
    for column in ("environment", "matched by", "max rows", "statement timeout", "lock timeout"):
        table.add_column(column)
    rows = [(e.name, e.match) for e in policy.environments]
    if policy.default_environment not in {name for name, _ in rows}:
        rows.append((policy.default_environment, ()))
    for name, matchers in rows:
        how = [
            " ".join(
                f"{key}={','.join(globs.patterns)}"
                for key, globs in (("host", m.host), ("dbname", m.dbname), ("port", m.port))
                if globs is not None
            )
            for m in matchers
        ]
        if name == policy.default_environment:
            how.append("(default)")
        limits = policy.limits_for(name)
        table.add_row(
            Text(name),
            Text("\n".join(how) or "name only"),
            "-" if limits.max_rows_affected is None else str(limits.max_rows_affected),
            _seconds(limits.statement_timeout),
            _seconds(limits.lock_timeout),
        )
    return table


def _actors(policy: governed_db.Policy) -> Table:
    table = Table(title="Actor groups", title_justify="left")
    table.add_column("group")
    table.add_column("members (any of)")
    for group in policy.actors:
        entries = []
        for m in group.members:
            parts = [f"kind={','.join(sorted(m.kinds))}"] if m.kinds else []
            for key, globs in (
                ("name", m.name),
                ("email", m.email),
                ("on_behalf_of", m.on_behalf_of),
                ("name or email", m.who),
            ):
                if globs is not None:
                    parts.append(f"{key}={','.join(globs.patterns)}")
            entries.append(" ".join(parts))
        table.add_row(Text(group.name), Text("\n".join(entries)))
    return table


def _rules(policy: governed_db.Policy) -> Table:
    table = Table(title=f"Guardrails ({policy.mode} mode)", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("id", no_wrap=True)
    table.add_column("action", no_wrap=True)
    table.add_column("when", overflow="fold", ratio=1)
    table.add_column("message / hint", overflow="fold", ratio=2)
    for number, rule in enumerate(policy.rules, 1):
        text = "\n".join(t for t in (rule.message, rule.hint, rule.description) if t)
        style = _ACTION_STYLE.get(rule.action, "")
        table.add_row(
            str(number),
            Text(rule.id),
            Text(rule.action, style=style),
            Text("\n".join(rule.when.describe()) or "always"),
            Text(text),
        )
    return table
