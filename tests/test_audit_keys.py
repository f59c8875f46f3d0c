"""Signing keys: keyring, env variable, 0600 key file; rotation; public keys."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail

from governed_db.audit import AuditTrail, PublicKeys, Signer, init_key, load_signer
from governed_db.audit import keys as keys_mod
from governed_db.errors import AuditError


class DictKeyring(KeyringBackend):
    """A real (in-process) keyring backend, standing in for the OS one."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.data.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.data[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.data.pop((service, username), None)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GOVERNED_DB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(keys_mod.ENV_KEY, raising=False)
    monkeypatch.delenv(keys_mod.ENV_KEY_FILE, raising=False)
    return tmp_path / "home"


@pytest.fixture
def headless() -> Iterator[None]:
    old = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(old)


@pytest.fixture
def dict_keyring() -> Iterator[DictKeyring]:
    old = keyring.get_keyring()
    backend = DictKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(old)


@pytest.mark.usefixtures("headless")
def test_headless_init_uses_a_0600_file(home: Path) -> None:
    assert not keys_mod.keyring_available()
    signer, where = init_key()
    key_file = home / "signing-key.pem"
    assert where == f"key file {key_file} (mode 0600)"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    loaded = load_signer()
    assert loaded is not None
    assert loaded.kid == signer.kid
    assert loaded.source == f"key file {key_file}"
    assert (home / "public-keys" / f"{signer.kid}.pem").exists()


@pytest.mark.usefixtures("headless")
def test_init_refuses_to_overwrite_and_rotation_keeps_old_public_keys(home: Path) -> None:
    first, _ = init_key()
    with pytest.raises(AuditError, match="--rotate"):
        init_key()
    second, _ = init_key(rotate=True)
    assert first.kid != second.kid
    assert load_signer().kid == second.kid  # type: ignore[union-attr]
    keys = PublicKeys()
    assert sorted(keys.load(home / "public-keys")) == sorted([first.kid, second.kid])


@pytest.mark.usefixtures("headless")
def test_keyring_store_refused_without_backend() -> None:
    with pytest.raises(AuditError, match="no usable backend"):
        init_key(store="keyring")


def test_keyring_store(dict_keyring: DictKeyring) -> None:
    signer, where = init_key()
    assert where == "keyring service 'governed-db'"
    assert ("governed-db", "signing-key") in dict_keyring.data
    loaded = load_signer()
    assert loaded is not None
    assert loaded.kid == signer.kid
    assert loaded.source == "keyring service 'governed-db'"


@pytest.mark.usefixtures("headless")
def test_world_readable_key_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "k.pem"
    init_key(key_file=path)
    os.chmod(path, 0o644)
    with pytest.raises(AuditError, match=r"mode 0644.*chmod 600"):
        load_signer(key_file=path)
    monkeypatch.setenv(keys_mod.ENV_KEY_FILE, str(path))
    with pytest.raises(AuditError, match="readable by its owner only"):
        AuditTrail.from_settings(None)


@pytest.mark.usefixtures("headless")
def test_env_variable_wins_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    init_key()
    env_key = Signer.generate()
    monkeypatch.setenv(keys_mod.ENV_KEY, env_key.private_text())
    loaded = load_signer()
    assert loaded is not None
    assert loaded.kid == env_key.kid
    assert loaded.source == "environment variable GOVERNED_DB_SIGNING_KEY"
    monkeypatch.setenv(keys_mod.ENV_KEY, "not base64 !")
    with pytest.raises(AuditError, match="GOVERNED_DB_SIGNING_KEY"):
        load_signer()


def test_signature_round_trip_and_public_key_forms(tmp_path: Path) -> None:
    signer = Signer.generate()
    digest = "ab" * 32
    sig = signer.sign(digest)
    keys = PublicKeys()
    pub = tmp_path / "k.pub"
    pub.write_text(signer.public_pem())
    assert keys.load(pub) == [signer.kid]
    assert keys.verify(signer.kid, digest, sig) is True
    assert keys.verify(signer.kid, "cd" * 32, sig) is False
    assert keys.verify("0" * 16, digest, sig) is None
    bad = tmp_path / "bad.pem"
    bad.write_text("hello")
    with pytest.raises(AuditError, match="not an Ed25519 PEM key"):
        keys.load(bad)
