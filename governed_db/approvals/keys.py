"""Keys of the approvals room: the parameters' HMAC key, and approvers' private keys.

The **parameters key** binds a request to its parameters without storing them:
HMAC-SHA256 under a random secret that is neither the audit nor the masking key.
Looked for in ``GOVERNED_DB_APPROVALS_KEY`` (base64, ≥ 32 bytes),
``GOVERNED_DB_APPROVALS_KEY_FILE``, the keyring (service ``governed-db``, user
``approvals-key``), then ``<data>/approvals-key``, which is created (0600) on
first use when none exists.

An **approver key** is an Ed25519 private key that signs decisions. It lives
in ``GOVERNED_DB_APPROVER_KEY`` (base64 seed), ``GOVERNED_DB_APPROVER_KEY_FILE``,
the keyring (user ``approver:NAME``), or ``<config>/approvers/NAME.key`` (0600).
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governed_db.audit.keys import KEYRING_SERVICE, config_dir, keyring_available
from governed_db.errors import GovernanceError

__all__ = [
    "APPROVER_ENV",
    "APPROVER_KEY_ENV",
    "APPROVER_KEY_FILE_ENV",
    "PARAMS_KEY_ENV",
    "approver_key_file",
    "data_dir",
    "init_approver_key",
    "load_approver_key",
    "load_params_key",
    "public_text",
]

PARAMS_KEY_ENV = "GOVERNED_DB_APPROVALS_KEY"
PARAMS_KEY_FILE_ENV = "GOVERNED_DB_APPROVALS_KEY_FILE"
APPROVER_ENV = "GOVERNED_DB_APPROVER"
APPROVER_KEY_ENV = "GOVERNED_DB_APPROVER_KEY"
APPROVER_KEY_FILE_ENV = "GOVERNED_DB_APPROVER_KEY_FILE"
_PARAMS_USER = "approvals-key"
_OTHER_SECRETS = ("GOVERNED_DB_SIGNING_KEY", "GOVERNED_DB_MASKING_KEY")
_MIN_BYTES = 32


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$GOVERNED_DB_HOME``, else the platform's user data directory for governed-db."""
    env = os.environ if environ is None else environ
    if env.get("GOVERNED_DB_HOME"):
        return Path(env["GOVERNED_DB_HOME"])
    import platformdirs

    return Path(platformdirs.user_data_dir("governed-db", appauthor=False))


def _private_file(path: Path, what: str) -> bytes:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        data = path.read_bytes()
    except OSError as exc:
        raise GovernanceError(f"{what} {path}: {exc.strerror or exc}") from exc
    if mode & 0o077:
        raise GovernanceError(
            f"{what} {path} has mode {mode:04o}: it must be readable by its owner only. "
            f"Run: chmod 600 {path}"
        )
    return data


def _write_private(path: Path, text: str, *, exclusive: bool) -> bool:
    """Write a 0600 file atomically; with ``exclusive`` keep an existing one (False)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())
    if exclusive:
        try:
            os.link(tmp, path)  # fails if another process made it first
        except FileExistsError:
            return False
        finally:
            tmp.unlink()
        return True
    os.replace(tmp, path)
    return True


def _keyring_get(user: str) -> str | None:
    if not keyring_available():
        return None
    import keyring
    from keyring.errors import KeyringError

    try:
        value: str | None = keyring.get_password(KEYRING_SERVICE, user)
    except KeyringError as exc:
        raise GovernanceError(f"keyring ({KEYRING_SERVICE}) could not be read: {exc}") from exc
    return value


def _params_key(text: bytes | str, where: str, env: Mapping[str, str]) -> bytes:
    data = (text.encode() if isinstance(text, str) else text).strip()
    for other in _OTHER_SECRETS:
        if env.get(other) and env[other].strip().encode() == data:
            raise GovernanceError(f"{where} is the same secret as {other}: it must differ")
    try:
        raw = base64.b64decode(data, validate=True)
    except binascii.Error:
        raise GovernanceError(f"{where}: the approvals key must be base64") from None
    if len(raw) < _MIN_BYTES:
        raise GovernanceError(f"{where}: the approvals key needs at least {_MIN_BYTES} bytes")
    return raw


def load_params_key(environ: Mapping[str, str] | None = None) -> tuple[bytes, str]:
    """``(key, where)``: the parameters' HMAC key, created in the data directory if none."""
    env = os.environ if environ is None else environ
    if env.get(PARAMS_KEY_ENV):
        return _params_key(env[PARAMS_KEY_ENV], PARAMS_KEY_ENV, env), PARAMS_KEY_ENV
    if env.get(PARAMS_KEY_FILE_ENV):
        path = Path(env[PARAMS_KEY_FILE_ENV])
        return _params_key(_private_file(path, "approvals key file"), str(path), env), str(path)
    text = _keyring_get(_PARAMS_USER)
    if text:
        return _params_key(text, "keyring", env), f"keyring service {KEYRING_SERVICE!r}"
    path = data_dir(env) / "approvals-key"
    if not path.exists():
        _write_private(path, base64.b64encode(secrets.token_bytes(32)).decode(), exclusive=True)
    return _params_key(_private_file(path, "approvals key file"), str(path), env), str(path)


def approver_key_file(name: str, environ: Mapping[str, str] | None = None) -> Path:
    """``<config>/approvers/NAME.key``."""
    return config_dir(environ) / "approvers" / f"{name}.key"


def _private_key(data: bytes | str, where: str) -> Ed25519PrivateKey:
    raw_text = (data.encode() if isinstance(data, str) else data).strip()
    if raw_text.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(raw_text, password=None)
        except (ValueError, TypeError) as exc:
            raise GovernanceError(f"{where}: not an unencrypted PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise GovernanceError(f"{where}: not an Ed25519 private key")
        return key
    try:
        raw = base64.b64decode(raw_text, validate=True)
    except binascii.Error:
        raise GovernanceError(f"{where}: an approver key is base64 of a 32-byte seed") from None
    if len(raw) != 32:
        raise GovernanceError(f"{where}: an Ed25519 seed is 32 bytes, got {len(raw)}")
    return Ed25519PrivateKey.from_private_bytes(raw)


def load_approver_key(
    name: str | None,
    *,
    key_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Ed25519PrivateKey, str] | None:
    """``(key, where)`` for approver ``name`` from the first source that has one, or None."""
    env = os.environ if environ is None else environ
    if key_file is not None:
        path = Path(key_file)
        return _private_key(_private_file(path, "approver key file"), str(path)), str(path)
    if env.get(APPROVER_KEY_ENV):
        return _private_key(env[APPROVER_KEY_ENV], APPROVER_KEY_ENV), APPROVER_KEY_ENV
    if env.get(APPROVER_KEY_FILE_ENV):
        path = Path(env[APPROVER_KEY_FILE_ENV])
        return _private_key(_private_file(path, "approver key file"), str(path)), str(path)
    if name is None:
        return None
    text = _keyring_get(f"approver:{name}")
    if text:
        return _private_key(text, "keyring"), f"keyring service {KEYRING_SERVICE!r}"
    path = approver_key_file(name, env)
    if path.exists():
        return _private_key(_private_file(path, "approver key file"), str(path)), str(path)
    return None


def _seed(key: Ed25519PrivateKey) -> str:
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw).decode("ascii")


def public_text(key: Ed25519PrivateKey) -> str:
    """``ed25519:BASE64`` of the public half (the line to paste into the policy)."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + base64.b64encode(raw).decode("ascii")


def init_approver_key(
    name: str,
    *,
    store: str = "auto",
    key_file: str | os.PathLike[str] | None = None,
    rotate: bool = False,
    environ: Mapping[str, str] | None = None,
) -> tuple[Ed25519PrivateKey, str]:
    """Create approver ``name``'s key; return ``(key, where)``.

    ``store``: ``auto`` (keyring when it has a backend, else a 0600 file),
    ``keyring``, ``file`` or ``none`` (print the seed for a secret store).
    """
    if store not in ("auto", "keyring", "file", "none"):
        raise GovernanceError(f"unknown key store {store!r}: use auto, keyring, file or none")
    if store == "auto":
        store = "keyring" if keyring_available() and key_file is None else "file"
    if store == "keyring" and not keyring_available():
        raise GovernanceError(
            "keyring has no usable backend on this machine; use --store file (a 0600 key file)"
        )
    key = Ed25519PrivateKey.generate()
    if store == "keyring":
        import keyring

        if _keyring_get(f"approver:{name}") and not rotate:
            raise GovernanceError(
                f"approver {name!r} already has a key in the keyring; use --rotate to replace it"
            )
        keyring.set_password(KEYRING_SERVICE, f"approver:{name}", _seed(key))
        return key, f"keyring service {KEYRING_SERVICE!r}, user 'approver:{name}'"
    if store == "file":
        path = Path(key_file) if key_file is not None else approver_key_file(name, environ)
        if path.exists() and not rotate:
            raise GovernanceError(f"{path} already exists; use --rotate to replace it")
        _write_private(path, _seed(key), exclusive=False)
        return key, f"key file {path} (mode 0600)"
    return key, f"nowhere: set {APPROVER_KEY_ENV}={_seed(key)} in the approver's environment"
