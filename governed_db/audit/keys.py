"""Ed25519 signing keys: where the private key lives, and the public keys verify uses.

The private key is looked for, in order:

1. ``GOVERNED_DB_SIGNING_KEY`` — the key itself (base64 of the 32-byte seed, or PEM);
2. ``GOVERNED_DB_SIGNING_KEY_FILE`` — a key file;
3. the OS keyring, service ``governed-db``, user ``signing-key`` (when keyring
   has a real backend; on headless Linux it usually has none);
4. the default key file ``<config>/signing-key.pem``.

``<config>`` is ``$GOVERNED_DB_HOME``, else ``$XDG_CONFIG_HOME/governed-db``, else
``~/.config/governed-db``. Key files must be readable by their owner only
(mode 0600); anything looser is refused. :attr:`Signer.source` says which
source is in use. Public keys are PEM (SubjectPublicKeyInfo) files kept in
``<config>/public-keys/<kid>.pem``; rotation adds a file there, so records
signed by an older key still verify, and a **rotation record**
``<new kid>.rotation.json`` signed by the old key that introduces the new one
(``not_before``: the old key's retirement, the new key's start). A verifier
that trusts the old key trusts the new one through it, and refuses the old key
on chains that start after its retirement.

A key id (``kid``) is the first 16 hex digits of SHA-256 over the raw 32-byte
public key. A signature is Ed25519 over ``b"governed-db audit v1\\x00"``
followed by the 32 raw bytes of the record's SHA-256.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from governed_db.audit.canonical import canonical_json, utc_timestamp
from governed_db.errors import AuditError

__all__ = [
    "ENV_KEY",
    "ENV_KEY_FILE",
    "KEYRING_SERVICE",
    "Signer",
    "check_rotation",
    "config_dir",
    "init_key",
    "keyring_available",
    "load_signer",
    "read_rotation",
    "retired_by",
    "rotation_message",
    "rotation_record",
    "rotations_to",
]

KEYRING_SERVICE = "governed-db"
KEYRING_USER = "signing-key"
ENV_KEY = "GOVERNED_DB_SIGNING_KEY"
ENV_KEY_FILE = "GOVERNED_DB_SIGNING_KEY_FILE"
SIGNATURE_CONTEXT = b"governed-db audit v1\x00"
ROTATION_CONTEXT = b"governed-db key rotation v1\x00"
ROTATION_TYPE = "governed-db key rotation"


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where keys live: ``$GOVERNED_DB_HOME`` or the XDG config directory."""
    env = os.environ if environ is None else environ
    if env.get("GOVERNED_DB_HOME"):
        return Path(env["GOVERNED_DB_HOME"])
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "governed-db"


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key id: 16 hex digits of SHA-256 over the raw public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signed_message(record_hash: str) -> bytes:
    return SIGNATURE_CONTEXT + bytes.fromhex(record_hash)


class Signer:
    """An Ed25519 private key with its id and a note of where it came from."""

    __slots__ = ("_key", "kid", "source")

    def __init__(self, key: Ed25519PrivateKey, source: str = "in memory") -> None:
        self._key = key
        self.kid = key_id(key.public_key())
        self.source = source

    @classmethod
    def generate(cls) -> Signer:
        """A fresh key held in memory only (tests, ephemeral processes)."""
        return cls(Ed25519PrivateKey.generate(), "generated in memory")

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The public half."""
        return self._key.public_key()

    def sign(self, record_hash: str) -> str:
        """Base64 signature over a record hash (hex)."""
        return base64.b64encode(self._key.sign(signed_message(record_hash))).decode("ascii")

    def public_pem(self) -> str:
        """The public key as PEM text."""
        return _public_pem(self.public_key)

    def private_text(self) -> str:
        """Base64 of the 32-byte seed: the value for ``GOVERNED_DB_SIGNING_KEY``."""
        raw = self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return base64.b64encode(raw).decode("ascii")

    def __repr__(self) -> str:
        return f"Signer(kid={self.kid!r}, source={self.source!r})"


def _public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _rotation_body(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: doc[k] for k in ("type", "v", "old", "new", "public", "not_before")}


def rotation_message(doc: Mapping[str, Any]) -> bytes:
    """The bytes a rotation record's ``sig`` is over."""
    return ROTATION_CONTEXT + canonical_json(_rotation_body(doc))


def check_rotation(doc: Mapping[str, Any]) -> str | None:
    """Why ``doc`` is not a well-formed rotation record (None if it is; signature unchecked)."""
    if not isinstance(doc, Mapping) or doc.get("type") != ROTATION_TYPE or doc.get("v") != 1:
        return "not a key rotation record"
    for name in ("old", "new", "public", "not_before", "sig"):
        if not isinstance(doc.get(name), str):
            return f"rotation record: {name} missing"
    try:
        raw = base64.b64decode(str(doc["public"]), validate=True)
        key = Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        return "rotation record: public is not a base64 Ed25519 public key"
    if key_id(key) != doc["new"]:
        return "rotation record: new does not name the key it carries"
    return None


def rotation_record(
    old: Signer, new: Ed25519PublicKey, not_before: str | None = None
) -> dict[str, Any]:
    """A rotation record: ``old`` retires at ``not_before`` (now) and introduces ``new``."""
    doc: dict[str, Any] = {
        "type": ROTATION_TYPE,
        "v": 1,
        "old": old.kid,
        "new": key_id(new),
        "public": base64.b64encode(_raw_public(new)).decode("ascii"),
        "not_before": not_before or utc_timestamp(),
    }
    doc["sig"] = base64.b64encode(old._key.sign(rotation_message(doc))).decode("ascii")
    return doc


def read_rotation(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def rotations_to(kid: str, environ: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The rotation records that lead to ``kid``, oldest first (from the public-key dir)."""
    directory = public_key_dir(environ)
    by_new: dict[str, dict[str, Any]] = {}
    try:
        files = sorted(directory.glob("*.rotation.json"))
    except OSError:
        return []
    for f in files:
        doc = read_rotation(f)
        if doc is not None and check_rotation(doc) is None:
            by_new[str(doc["new"])] = doc
    out: list[dict[str, Any]] = []
    seen = {kid}
    while kid in by_new:
        doc = by_new[kid]
        out.append(doc)
        kid = str(doc["old"])
        if kid in seen:
            break
        seen.add(kid)
    return out[::-1]


def retired_by(kid: str, environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The local rotation record that retired ``kid``, if any."""
    directory = public_key_dir(environ)
    try:
        files = sorted(directory.glob("*.rotation.json"))
    except OSError:
        return None
    for f in files:
        doc = read_rotation(f)
        if doc is not None and doc.get("old") == kid and check_rotation(doc) is None:
            return doc
    return None


def _parse_private(text: str | bytes, where: str) -> Ed25519PrivateKey:
    data = text.encode() if isinstance(text, str) else text
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise AuditError(f"{where}: not an unencrypted PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise AuditError(f"{where}: not an Ed25519 private key")
        return key
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except binascii.Error as exc:
        raise AuditError(f"{where}: neither PEM nor base64") from exc
    if len(raw) != 32:
        raise AuditError(f"{where}: an Ed25519 seed is 32 bytes, got {len(raw)}")
    return Ed25519PrivateKey.from_private_bytes(raw)


def read_key_file(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """Load a private key file, refusing one that others can read."""
    p = Path(path)
    try:
        mode = stat.S_IMODE(p.stat().st_mode)
        data = p.read_bytes()
    except OSError as exc:
        raise AuditError(f"signing key file {p}: {exc.strerror or exc}") from exc
    if mode & 0o077:
        raise AuditError(
            f"signing key file {p} has mode {mode:04o}: it must be readable by its "
            f"owner only. Run: chmod 600 {p}"
        )
    return _parse_private(data, f"signing key file {p}")


def keyring_available() -> bool:
    """True if keyring has a usable backend (not the 'fail' or 'null' one)."""
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
        raise AuditError(f"keyring ({KEYRING_SERVICE}) could not be read: {exc}") from exc
    return value


def default_key_file(environ: Mapping[str, str] | None = None) -> Path:
    """``<config>/signing-key.pem``."""
    return config_dir(environ) / "signing-key.pem"


def public_key_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``<config>/public-keys``: every public key ever created here."""
    return config_dir(environ) / "public-keys"


def load_signer(
    *, key_file: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Signer | None:
    """The signing key from the first source that has one (see module doc), or None."""
    env = os.environ if environ is None else environ
    if key_file is not None:
        return Signer(read_key_file(key_file), f"key file {key_file}")
    if env.get(ENV_KEY):
        return Signer(_parse_private(env[ENV_KEY], ENV_KEY), f"environment variable {ENV_KEY}")
    if env.get(ENV_KEY_FILE):
        named = env[ENV_KEY_FILE]
        return Signer(read_key_file(named), f"key file {named} (from {ENV_KEY_FILE})")
    if keyring_available():
        text = _from_keyring()
        if text:
            return Signer(_parse_private(text, "keyring"), f"keyring service {KEYRING_SERVICE!r}")
    path = default_key_file(env)
    if path.exists():
        return Signer(read_key_file(path), f"key file {path}")
    return None


def _write_private(path: Path, text: str, *, replace: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    if not replace and path.exists():
        tmp.unlink()
        raise AuditError(f"{path} already exists")
    os.replace(tmp, path)


def init_key(
    *,
    store: str = "auto",
    key_file: str | os.PathLike[str] | None = None,
    rotate: bool = False,
    environ: Mapping[str, str] | None = None,
) -> tuple[Signer, str]:
    """Create a key pair, store the private key, keep the public key; return (signer, where).

    ``store`` is ``auto`` (keyring when it has a backend, else the key file),
    ``keyring``, ``file`` or ``none`` (print it yourself, e.g. for a CI secret).
    An existing key is replaced only with ``rotate=True``; its public key stays
    in the public-key directory so older records keep verifying.
    """
    if store not in ("auto", "keyring", "file", "none"):
        raise AuditError(f"unknown key store {store!r}")
    if store == "auto":
        store = "keyring" if keyring_available() and key_file is None else "file"
    if store == "keyring" and not keyring_available():
        raise AuditError(
            "keyring has no usable backend on this machine; use --store file "
            f"(a 0600 key file) or the {ENV_KEY} environment variable"
        )
    path = Path(key_file) if key_file is not None else default_key_file(environ)
    existing = _existing(store, path)
    if existing and not rotate:
        raise AuditError(
            f"a signing key already exists in the {existing}; use --rotate to replace it"
        )
    previous = _previous_signer(environ) if rotate else None
    signer = Signer(Ed25519PrivateKey.generate(), "new key")
    if store == "keyring":
        import keyring

        keyring.set_password(KEYRING_SERVICE, KEYRING_USER, signer.private_text())
        where = f"keyring service {KEYRING_SERVICE!r}"
    elif store == "file":
        pem = signer._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        _write_private(path, pem, replace=True)
        where = f"key file {path} (mode 0600)"
    else:
        where = "nowhere (set it as GOVERNED_DB_SIGNING_KEY yourself)"
    signer.source = where
    save_public(signer, environ)
    if previous is not None and previous.kid != signer.kid:
        doc = rotation_record(previous, signer.public_key)
        path = public_key_dir(environ) / f"{signer.kid}.rotation.json"
        path.write_text(json.dumps(doc, indent=2) + "\n")
        where += f"; rotation record {path} (signed by the old key {previous.kid})"
    return signer, where


def _previous_signer(environ: Mapping[str, str] | None) -> Signer | None:
    """The key being rotated out (None if it cannot be loaded: then no rotation record)."""
    try:
        return load_signer(environ=environ)
    except AuditError:
        return None


def _existing(store: str, path: Path) -> str | None:
    if store == "keyring" and _from_keyring():
        return f"keyring service {KEYRING_SERVICE!r}"
    if store == "file" and path.exists():
        return f"key file {path}"
    return None


def save_public(signer: Signer, environ: Mapping[str, str] | None = None) -> Path:
    """Write the signer's public key to ``<config>/public-keys/<kid>.pem``."""
    directory = public_key_dir(environ)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{signer.kid}.pem"
    path.write_text(signer.public_pem())
    return path
