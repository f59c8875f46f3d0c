"""Trust for verification: the public keys an auditor trusts, rotations and revocations.

Verify trusts only keys it is told to trust: ``--trust FILE|DIR`` (PEM public
keys, and ``*.rotation.json`` rotation records in a directory), or the keys
pinned in the trust config, ``trust.toml`` in the user config directory
(``$GOVERNED_DB_HOME`` if set, else platformdirs' ``user_config_dir("governed-db")``)::

    [[key]]
    file = "/etc/audit-keys/9f2c0e51d8a4b7e3.pem"   # a PEM file, or a directory of them
    [[key]]
    public = "MCowBQYDK2VwAyEA..."                   # or PEM text / base64 SPKI DER
    kid = "9f2c0e51d8a4b7e3"                         # optional: checked
    [[revoked]]
    kid = "0123456789abcdef"
    at = "2026-03-01T00:00:00Z"                      # optional: from then on (else always)

A rotation record signed by a trusted key makes the key it introduces trusted
too (from its ``not_before``) and retires the old key at that time.
"""

from __future__ import annotations

import base64
import binascii
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from governed_db.audit.keys import (
    check_rotation,
    key_id,
    read_rotation,
    rotation_message,
    signed_message,
)
from governed_db.errors import AuditError

__all__ = ["PublicKeys", "load_trust", "trust_config_path"]

TRUST_FILE = "trust.toml"


class PublicKeys:
    """Trusted public keys by key id, with their validity: load files, directories or PEM.

    Besides keys, it holds what rotation records and revocations say: the
    time a key was retired (a rotation record signed by it introduced its
    successor) or revoked (the trust config says so).
    """

    __slots__ = ("_keys", "_retired", "_revoked", "rotations")

    def __init__(self, keys: Iterable[Ed25519PublicKey] = ()) -> None:
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._retired: dict[str, str] = {}
        self._revoked: dict[str, str] = {}
        self.rotations: list[dict[str, Any]] = []  # the rotation records accepted
        for key in keys:
            self.add(key)

    def add(self, key: Ed25519PublicKey) -> str:
        """Add a key; return its id."""
        kid = key_id(key)
        self._keys[kid] = key
        return kid

    def add_pem(self, pem: str | bytes, where: str = "PEM text") -> str:
        """Add a PEM public key (or the public half of a PEM private key)."""
        data = pem.encode() if isinstance(pem, str) else pem
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError:
            try:
                priv = serialization.load_pem_private_key(data, password=None)
            except (ValueError, TypeError) as exc:
                raise AuditError(f"{where}: not an Ed25519 PEM key") from exc
            if not isinstance(priv, Ed25519PrivateKey):
                raise AuditError(f"{where}: not an Ed25519 key") from None
            return self.add(priv.public_key())
        if not isinstance(key, Ed25519PublicKey):
            raise AuditError(f"{where}: not an Ed25519 public key")
        return self.add(key)

    def load(self, path: str | os.PathLike[str]) -> list[str]:
        """Add the key in a file, or every ``*.pem``/``*.pub`` file in a directory.

        A directory's ``*.rotation.json`` records are then applied: each one
        signed by a key already held adds the key it introduces.
        """
        p = Path(path)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix in (".pem", ".pub"))
        elif p.exists():
            files = [p]
        else:
            raise AuditError(f"public key {p} does not exist")
        kids = [self.add_pem(f.read_bytes(), str(f)) for f in files]
        if p.is_dir():
            docs = [read_rotation(f) for f in sorted(p.glob("*.rotation.json"))]
            kids += self.add_rotations([d for d in docs if d is not None])
        return kids

    def add_rotations(self, docs: Iterable[dict[str, Any]]) -> list[str]:
        """Apply rotation records in any order (chains of them too); the kids added."""
        before = set(self._keys)
        pending = list(docs)
        while pending:
            left = [d for d in pending if self.add_rotation(d) is not None]
            if len(left) == len(pending):
                break
            pending = left
        return [kid for kid in self._keys if kid not in before]

    def add_rotation(self, doc: Mapping[str, Any]) -> str | None:
        """Accept a rotation record signed by a held key: None, else why not."""
        problem = check_rotation(doc)
        if problem is not None:
            return problem
        old, new = str(doc["old"]), str(doc["new"])
        old_key = self._keys.get(old)
        if old_key is None:
            return f"rotation record signed by key {old}, which is not trusted"
        try:
            old_key.verify(base64.b64decode(str(doc["sig"]), validate=True), rotation_message(doc))
        except (InvalidSignature, binascii.Error, ValueError):
            return f"rotation record {old} -> {new}: the signature does not verify"
        when = str(doc["not_before"])
        if new not in self._keys:
            raw = base64.b64decode(str(doc["public"]))
            self._keys[new] = Ed25519PublicKey.from_public_bytes(raw)
        if old not in self._retired or when < self._retired[old]:
            self._retired[old] = when
        if dict(doc) not in self.rotations:
            self.rotations.append(dict(doc))
        return None

    def revoke(self, kid: str, at: str | None = None) -> None:
        """Distrust ``kid`` for chains started at or after ``at`` (always, if None)."""
        self._revoked[kid] = at or ""

    def retired_at(self, kid: str) -> str | None:
        """When a rotation record retired ``kid`` (RFC 3339), or None."""
        return self._retired.get(kid)

    def revoked_at(self, kid: str) -> str | None:
        """When ``kid`` was revoked ("" for always), or None."""
        return self._revoked.get(kid)

    def verify(self, kid: str, record_hash: str, signature: str) -> bool | None:
        """True if valid, False if invalid, None if ``kid`` is unknown."""
        key = self._keys.get(kid)
        if key is None:
            return None
        try:
            key.verify(base64.b64decode(signature, validate=True), signed_message(record_hash))
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def kids(self) -> list[str]:
        """The known key ids."""
        return sorted(self._keys)


def trust_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``trust.toml`` in ``$GOVERNED_DB_HOME``, else in the platform's user config directory."""
    env = os.environ if environ is None else environ
    if env.get("GOVERNED_DB_HOME"):
        return Path(env["GOVERNED_DB_HOME"]) / TRUST_FILE
    import platformdirs

    return Path(platformdirs.user_config_dir("governed-db")) / TRUST_FILE


def _config_key(keys: PublicKeys, entry: Mapping[str, Any], where: str, base: Path) -> None:
    if "file" in entry:
        target = Path(str(entry["file"])).expanduser()
        keys.load(target if target.is_absolute() else base / target)
        return
    text = entry.get("public")
    if not isinstance(text, str):
        raise AuditError(f"{where}: a [[key]] needs file = ... or public = ...")
    if "BEGIN" in text:
        kid = keys.add_pem(text, where)
    else:
        try:
            der = base64.b64decode(text, validate=True)
            loaded = serialization.load_der_public_key(der)
        except (binascii.Error, ValueError) as exc:
            raise AuditError(f"{where}: public is neither PEM nor base64 DER") from exc
        if not isinstance(loaded, Ed25519PublicKey):
            raise AuditError(f"{where}: not an Ed25519 public key")
        kid = keys.add(loaded)
    if "kid" in entry and entry["kid"] != kid:
        raise AuditError(f"{where}: kid {entry['kid']} does not match the key ({kid})")


def load_config(keys: PublicKeys, path: Path, *, pinned: bool = True) -> list[str]:
    """Add the revocations (and with ``pinned`` the keys) in a trust config; their sources."""
    try:
        config = tomllib.loads(path.read_text())
    except OSError as exc:
        raise AuditError(f"trust config {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise AuditError(f"trust config {path}: {exc}") from exc
    unknown = set(config) - {"key", "revoked"}
    if unknown:
        raise AuditError(f"trust config {path}: unknown section(s) {', '.join(sorted(unknown))}")
    sources = []
    for i, entry in enumerate(config.get("key", []) if pinned else ()):
        where = f"{path} [[key]] #{i + 1}"
        if not isinstance(entry, dict):
            raise AuditError(f"{where}: not a table")
        _config_key(keys, entry, where, path.parent)
        sources.append(where)
    for i, entry in enumerate(config.get("revoked", [])):
        where = f"{path} [[revoked]] #{i + 1}"
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            raise AuditError(f"{where}: needs kid = ...")
        at = entry.get("at")
        keys.revoke(entry["kid"], None if at is None else _timestamp(at, where))
    return sources


def _timestamp(value: Any, where: str) -> str:
    import datetime as dt

    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise AuditError(f"{where}: at = {value!r} is not an RFC 3339 time") from exc
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return str(value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    raise AuditError(f"{where}: at must be a time")


def load_trust(
    paths: Iterable[str | os.PathLike[str]] = (),
    *,
    config: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[PublicKeys, list[str]]:
    """The trusted keys: from ``paths`` if any, else from the trust config if it exists.

    Returns the keys and where they came from (empty: nothing is trusted).
    """
    keys = PublicKeys()
    sources: list[str] = []
    given = list(paths)
    for item in given:
        keys.load(item)
        sources.append(str(item))
    path = config or trust_config_path(environ)
    if path.exists():  # its revocations apply whatever is trusted
        sources += load_config(keys, path, pinned=not given)
    return keys, sources
