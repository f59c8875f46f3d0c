"""The masking key: the HMAC key behind ``hash`` pseudonyms. Never the audit key.

Looked for, in order:

1. ``GOVERNED_DB_MASKING_KEY`` — the key itself (base64 of at least 32 bytes);
2. ``GOVERNED_DB_MASKING_KEY_FILE`` — a key file;
3. the OS keyring, service ``governed-db``, user ``masking-key`` (when keyring
   has a real backend);
4. the default key file ``<data>/masking-key``, where ``<data>`` is
   ``$GOVERNED_DB_HOME`` or else the user data directory from platformdirs.

Key files must be readable by their owner only (0600). :attr:`MaskingKey.source`
says where the key came from. A key equal to the audit signing key, or a PEM
signing key, is refused: the two must never be the same secret.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from governed_db.errors import GovernanceError

__all__ = [
    "ENV_KEY",
    "ENV_KEY_FILE",
    "KEYRING_SERVICE",
    "KEYRING_USER",
    "MaskingKey",
    "data_dir",
    "default_key_file",
    "init_masking_key",
    "load_masking_key",
]

KEYRING_SERVICE = "governed-db"
KEYRING_USER = "masking-key"
ENV_KEY = "GOVERNED_DB_MASKING_KEY"
ENV_KEY_FILE = "GOVERNED_DB_MASKING_KEY_FILE"
_AUDIT_ENV_KEY = "GOVERNED_DB_SIGNING_KEY"
_MIN_BYTES = 32


class MaskingKey:
    """The HMAC key and a note of where it came from."""

    __slots__ = ("key", "source")

    def __init__(self, key: bytes, source: str = "in memory") -> None:
        if len(key) < _MIN_BYTES:
            raise GovernanceError(f"a masking key needs at least {_MIN_BYTES} bytes")
        self.key = key
        self.source = source

    @classmethod
    def generate(cls) -> MaskingKey:
        """A fresh random key held in memory only (tests, ephemeral processes)."""
        return cls(secrets.token_bytes(32), "generated in memory")

    def text(self) -> str:
        """Base64 of the key: the value for ``GOVERNED_DB_MASKING_KEY``."""
        return base64.b64encode(self.key).decode("ascii")

    def __repr__(self) -> str:
        return f"MaskingKey(source={self.source!r})"


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$GOVERNED_DB_HOME``, else the platform's user data directory for governed-db."""
    env = os.environ if environ is None else environ
    if env.get("GOVERNED_DB_HOME"):
        return Path(env["GOVERNED_DB_HOME"])
    import platformdirs

    return Path(platformdirs.user_data_dir("governed-db", appauthor=False))


def default_key_file(environ: Mapping[str, str] | None = None) -> Path:
    """``<data>/masking-key``."""
    return data_dir(environ) / "masking-key"


def _parse(text: str | bytes, where: str, env: Mapping[str, str]) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    stripped = data.strip()
    if stripped.startswith(b"-----BEGIN"):
        raise GovernanceError(
            f"{where} holds a PEM key: that looks like a signing key. The masking key is "
            "a separate random secret; create one with governed_db.masking.init_masking_key()"
        )
    audit = env.get(_AUDIT_ENV_KEY, "").strip().encode()
    if audit and stripped == audit:
        raise GovernanceError(f"{where} is the audit signing key: the masking key must differ")
    try:
        raw = base64.b64decode(stripped, validate=True)
    except binascii.Error as exc:
        raise GovernanceError(f"{where}: the masking key must be base64") from exc
    if len(raw) < _MIN_BYTES:
        raise GovernanceError(f"{where}: a masking key needs at least {_MIN_BYTES} bytes")
    return raw


def _read_file(path: Path, env: Mapping[str, str]) -> bytes:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        data = path.read_bytes()
    except OSError as exc:
        raise GovernanceError(f"masking key file {path}: {exc.strerror or exc}") from exc
    if mode & 0o077:
        raise GovernanceError(
            f"masking key file {path} has mode {mode:04o}: it must be readable by its owner "
            f"only. Run: chmod 600 {path}"
        )
    return _parse(data, f"masking key file {path}", env)


def _keyring_available() -> bool:
    try:
        import keyring
        from keyring.backends import fail, null
    except ImportError:  # pragma: no cover - keyring is a dependency
        return False
    backend = keyring.get_keyring()
    return not isinstance(backend, fail.Keyring | null.Keyring)


def _from_keyring() -> str | None:
    import keyring
    from keyring.errors import KeyringError

    try:
        value: str | None = keyring.get_password(KEYRING_SERVICE, KEYRING_USER)
    except KeyringError as exc:
        raise GovernanceError(f"keyring ({KEYRING_SERVICE}) could not be read: {exc}") from exc
    return value


def load_masking_key(
    *, key_file: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> MaskingKey | None:
    """The masking key from the first source that has one (see the module doc), or None."""
    env = os.environ if environ is None else environ
    if key_file is not None:
        return MaskingKey(_read_file(Path(key_file), env), f"key file {key_file}")
    if env.get(ENV_KEY):
        return MaskingKey(_parse(env[ENV_KEY], ENV_KEY, env), f"environment variable {ENV_KEY}")
    if env.get(ENV_KEY_FILE):
        named = Path(env[ENV_KEY_FILE])
        return MaskingKey(_read_file(named, env), f"key file {named} (from {ENV_KEY_FILE})")
    if _keyring_available():
        text = _from_keyring()
        if text:
            return MaskingKey(_parse(text, "keyring", env), f"keyring service {KEYRING_SERVICE!r}")
    path = default_key_file(env)
    if path.exists():
        return MaskingKey(_read_file(path, env), f"key file {path}")
    return None


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def init_masking_key(
    *,
    store: str = "auto",
    key_file: str | os.PathLike[str] | None = None,
    rotate: bool = False,
    environ: Mapping[str, str] | None = None,
) -> tuple[MaskingKey, str]:
    """Create and store a masking key; return ``(key, where)``.

    ``store`` is ``auto`` (keyring when it has a backend, else the key file),
    ``keyring``, ``file`` or ``none`` (set ``GOVERNED_DB_MASKING_KEY`` yourself).
    An existing key is replaced only with ``rotate=True``; rotating changes
    every pseudonym.
    """
    if store not in ("auto", "keyring", "file", "none"):
        raise GovernanceError(f"unknown key store {store!r}: use auto, keyring, file or none")
    if store == "auto":
        store = "keyring" if _keyring_available() and key_file is None else "file"
    if store == "keyring" and not _keyring_available():
        raise GovernanceError(
            "keyring has no usable backend on this machine; use store='file' (a 0600 key "
            f"file) or the {ENV_KEY} environment variable"
        )
    path = Path(key_file) if key_file is not None else default_key_file(environ)
    exists = (store == "keyring" and _from_keyring()) or (store == "file" and path.exists())
    if exists and not rotate:
        raise GovernanceError("a masking key already exists; pass rotate=True to replace it")
    key = MaskingKey.generate()
    if store == "keyring":
        import keyring

        keyring.set_password(KEYRING_SERVICE, KEYRING_USER, key.text())
        where = f"keyring service {KEYRING_SERVICE!r}"
    elif store == "file":
        _write_private(path, key.text())
        where = f"key file {path} (mode 0600)"
    else:
        where = f"nowhere (set it as {ENV_KEY} yourself)"
    key.source = where
    return key, where
