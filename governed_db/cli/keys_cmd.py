"""``governed-db keys``: create, rotate, show and export the audit signing key.

``keys init --approver NAME`` instead makes an approver's key (for signing
approval decisions) and prints the line to paste into the policy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from governed_db.approvals import init_approver_key, public_text
from governed_db.audit import keys
from governed_db.cli.errors import one_line_errors
from governed_db.errors import AuditError, GovernanceError

__all__ = ["register"]

_guard = one_line_errors("keys", AuditError, GovernanceError, OSError)


def register(subparsers: Any) -> None:
    """Add ``keys init|export-public|status`` to the top-level parser."""
    parser = subparsers.add_parser("keys", help="the Ed25519 key that signs audit records")
    sub = parser.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)

    p = sub.add_parser("init", help="create a signing key pair")
    p.add_argument(
        "--store",
        choices=["auto", "keyring", "file", "none"],
        default="auto",
        help="where the private key goes: keyring (service governed-db), a 0600 "
        "key file, or none (printed for a CI secret); auto = keyring if this "
        "machine has a keyring backend, else the file",
    )
    p.add_argument(
        "--key-file", metavar="PATH", help="key file path (default <config>/signing-key.pem)"
    )
    p.add_argument(
        "--rotate",
        action="store_true",
        help="replace an existing key; its public key is kept so old records verify",
    )
    p.add_argument(
        "--approver",
        metavar="NAME",
        help="make approver NAME's key for signing approval decisions instead "
        "(keyring user approver:NAME, or <config>/approvers/NAME.key)",
    )
    p.set_defaults(func=_guard(init_cmd))

    p = sub.add_parser("export-public", help="print the signing key's public key (PEM)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--key-file", metavar="PATH", help="read this private key file")
    p.set_defaults(func=_guard(export_public_cmd))

    p = sub.add_parser("status", help="say which signing key is in use and where it comes from")
    p.set_defaults(func=_guard(status_cmd))


def init_cmd(args: argparse.Namespace) -> int:
    """``keys init``."""
    if args.approver:
        return _init_approver(args)
    signer, where = keys.init_key(store=args.store, key_file=args.key_file, rotate=args.rotate)
    print(f"created signing key {signer.kid}")
    print(f"  private key: {where}")
    print(f"  public key:  {keys.public_key_dir() / (signer.kid + '.pem')}")
    if args.store == "none":
        print("Set this secret in the environment of every process that writes audit records:")
        print(f"{keys.ENV_KEY}={signer.private_text()}")
    elif args.store == "auto" and not keys.keyring_available():
        print(
            "  (this machine has no keyring backend, so the key is in a 0600 file;"
            f" {keys.ENV_KEY} overrides it)"
        )
    return 0


def export_public_cmd(args: argparse.Namespace) -> int:
    """``keys export-public``."""
    signer = keys.load_signer(key_file=args.key_file)
    if signer is None:
        print(
            "governed-db keys: no signing key found; run `governed-db keys init`", file=sys.stderr
        )
        return 2
    pem = signer.public_pem()
    if args.output:
        Path(args.output).write_text(pem)
        print(f"public key {signer.kid} written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(pem)
    print(f"(key {signer.kid} from {signer.source})", file=sys.stderr)
    return 0


def status_cmd(args: argparse.Namespace) -> int:
    """``keys status``: 0 if a key is usable, 1 if none."""
    backend = "available" if keys.keyring_available() else "no backend (headless)"
    print(f"keyring: {backend}")
    signer = keys.load_signer()
    if signer is None:
        print("signing key: none; audit records will not be signed. Run `governed-db keys init`.")
        return 1
    print(f"signing key: {signer.kid} from {signer.source}")
    return 0


def _init_approver(args: argparse.Namespace) -> int:
    name = args.approver
    key, where = init_approver_key(
        name, store=args.store, key_file=args.key_file, rotate=args.rotate
    )
    print(f"created approver key for {name}")
    print(f"  private key: {where}")
    print("Paste this under approvals.approvers in the policy:")
    print(f'  {name}: {{key: "{public_text(key)}"}}')
    return 0
