"""Audit on by default: where records go without configuration, and the first-use key.

Without an ``audit`` section (and without ``connect(audit=...)``) records go to
a spool in the user data directory with ``durability: batch`` and checkpoint
signing::

    $GOVERNED_DB_DATA_DIR/audit           when that variable is set
    $GOVERNED_DB_HOME/audit               else when that one is (where the masking and
                                          approvals rooms keep their data, and keys live)
    <platformdirs user data dir>/audit    else (~/.local/share/governed-db/audit)

Settings that name neither a path nor a sink would record nowhere: they get
the same default spool. A trail opened this way needs a signing key: if none
is found (see ``keys``), one is created on first use (keyring when it has a
backend, else a 0600 key file) and one line on stderr says where.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import platformdirs

from governed_db.audit.keys import (
    ENV_KEY,
    ENV_KEY_FILE,
    Signer,
    config_dir,
    init_key,
    load_signer,
    public_key_dir,
)
from governed_db.audit.settings import AuditSettings
from governed_db.errors import AuditError

__all__ = ["DATA_DIR_ENV", "default_spool", "ensure_signer", "with_default_path"]

#: Overrides the user data directory (the default spool is ``<it>/audit``).
DATA_DIR_ENV = "GOVERNED_DB_DATA_DIR"

_lock = threading.Lock()
_signers: dict[tuple[str, str, str], Signer] = {}


def default_spool(environ: Mapping[str, str] | None = None) -> Path:
    """The default spool: ``$GOVERNED_DB_DATA_DIR``, ``$GOVERNED_DB_HOME`` or the user data
    directory, then ``audit``."""
    env = os.environ if environ is None else environ
    base = (
        env.get(DATA_DIR_ENV)
        or env.get("GOVERNED_DB_HOME")
        or platformdirs.user_data_dir("governed-db", appauthor=False)
    )
    return Path(base) / "audit"


def with_default_path(
    raw: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], bool]:
    """``raw`` (validated) with the default spool filled in if it names no place to write.

    Returns the mapping and whether the default spool was filled in. Raises
    ``PolicyError`` for invalid settings.
    """
    values = dict(raw or {})
    settings = AuditSettings.from_mapping(values)
    if settings.path is None and not settings.sinks:
        values["path"] = str(default_spool(environ))
        return values, True
    return values, False


def ensure_signer(
    *, environ: Mapping[str, str] | None = None, stream: TextIO | None = None
) -> Signer:
    """The signing key (see ``keys.load_signer``); created on first use, with a notice.

    The notice is one line on ``stream`` (stderr): where the private key was
    stored and where its public key is. Loaded once per process and config
    directory. Raises ``AuditError`` if no key can be found or made.
    """
    env = os.environ if environ is None else environ
    where_from = (str(config_dir(env)), env.get(ENV_KEY, ""), env.get(ENV_KEY_FILE, ""))
    with _lock:
        found = _signers.get(where_from)
        if found is not None:
            return found
        signer = load_signer(environ=env)
        if signer is None:
            try:
                signer, where = init_key(environ=env)
            except (AuditError, OSError) as exc:
                signer = load_signer(environ=env)  # another process made one just now?
                if signer is None:
                    raise AuditError(
                        f"audit is on by default and needs a signing key: none was found and "
                        f"none could be created ({exc}). Run `governed-db keys init`, set "
                        f"{ENV_KEY}, or turn audit off explicitly with audit=False"
                    ) from exc
            else:
                public = public_key_dir(env) / f"{signer.kid}.pem"
                print(
                    f"governed-db: created audit signing key {signer.kid} in {where}; "
                    f"public key {public} (verify with it; see docs/audit.md)",
                    file=stream or sys.stderr,
                    flush=True,
                )
        _signers[where_from] = signer
        return signer


def open_trail(settings: Mapping[str, Any] | None, sinks: Sequence[Any] = ()) -> Any:
    """The shared trail for validated audit ``settings`` (the default spool if they name no
    place) with the signing key (created on first use, see ``ensure_signer``)."""
    from governed_db.audit.trail import AuditTrail

    values, defaulted = (dict(settings or {}), False) if sinks else with_default_path(settings)
    signer = ensure_signer()
    try:
        return AuditTrail.shared(values, sinks=sinks, signer=signer)
    except AuditError as exc:
        if not defaulted:
            raise
        raise AuditError(
            f"{exc}. Audit is on by default and writes to {values['path']}: set "
            f"{DATA_DIR_ENV} or the policy's audit.path to a writable directory, or turn "
            "audit off explicitly (connect(audit=False) or `audit: false` in the policy)"
        ) from exc
