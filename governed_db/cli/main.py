"""``governed-db``: one entry point, one small module per subcommand family.

Each module exposes ``register(subparsers)``; its handlers take the parsed
arguments and return the exit code. Errors are printed as one clear line,
never as a traceback: exit 1 for a failure, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import psycopg

import governed_db
from governed_db.cli import approvals_cmd, audit_cmd, check_cmd, demo_cmd, keys_cmd, policy_cmd

_FAMILIES = (demo_cmd, policy_cmd, check_cmd, audit_cmd, keys_cmd, approvals_cmd)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="governed-db",
        description="Database governance inside the driver: guardrails, masking, approvals, audit.",
    )
    parser.add_argument("--version", action="version", version=governed_db.__version__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for family in _FAMILIES:
        family.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "func", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = handler(args)
    except KeyboardInterrupt:
        print("governed-db: interrupted", file=sys.stderr)
        return 130
    except (psycopg.Error, OSError, ValueError) as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), repr(exc))
        print(f"governed-db: error: {first}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
