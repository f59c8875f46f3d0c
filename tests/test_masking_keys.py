"""The masking key store: sources in order, 0600 files, and never the audit key."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from governed_db.errors import GovernanceError
from governed_db.masking import MaskingKey, init_masking_key, load_masking_key
from governed_db.masking.keys import ENV_KEY, ENV_KEY_FILE, default_key_file

KEY_TEXT = base64.b64encode(b"m" * 32).decode()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr("governed_db.masking.keys._keyring_available", lambda: False)
    return tmp_path


def env(home: Path, **extra: str) -> dict[str, str]:
    return {"GOVERNED_DB_HOME": str(home), **extra}


def test_no_key_anywhere(home: Path) -> None:
    assert load_masking_key(environ=env(home)) is None


def test_env_key_comes_first(home: Path) -> None:
    key = load_masking_key(environ=env(home, **{ENV_KEY: KEY_TEXT}))
    assert key is not None
    assert key.key == b"m" * 32
    assert ENV_KEY in key.source


def test_init_writes_a_0600_file_and_loads_it(home: Path) -> None:
    key, where = init_masking_key(store="auto", environ=env(home))
    path = default_key_file(env(home))
    assert path.parent == home
    assert str(path) in where
    assert (path.stat().st_mode & 0o777) == 0o600
    loaded = load_masking_key(environ=env(home))
    assert loaded is not None
    assert loaded.key == key.key
    with pytest.raises(GovernanceError, match="already exists"):
        init_masking_key(store="file", environ=env(home))
    rotated, _ = init_masking_key(store="file", rotate=True, environ=env(home))
    assert rotated.key != key.key


def test_key_file_named_by_env(home: Path) -> None:
    path = home / "k"
    path.write_text(KEY_TEXT)
    path.chmod(0o600)
    key = load_masking_key(environ=env(home, **{ENV_KEY_FILE: str(path)}))
    assert key is not None
    assert ENV_KEY_FILE in key.source


def test_readable_key_file_is_refused(home: Path) -> None:
    path = home / "k"
    path.write_text(KEY_TEXT)
    path.chmod(0o644)
    with pytest.raises(GovernanceError, match="chmod 600"):
        load_masking_key(key_file=path, environ=env(home))


def test_the_audit_key_is_never_the_masking_key(home: Path) -> None:
    with pytest.raises(GovernanceError, match="audit signing key"):
        load_masking_key(
            environ=env(home, **{ENV_KEY: KEY_TEXT, "GOVERNED_DB_SIGNING_KEY": KEY_TEXT})
        )
    pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"
    with pytest.raises(GovernanceError, match="signing key"):
        load_masking_key(environ=env(home, **{ENV_KEY: pem}))


@pytest.mark.parametrize("text", ["not base64!", base64.b64encode(b"short").decode()])
def test_bad_keys(home: Path, text: str) -> None:
    with pytest.raises(GovernanceError):
        load_masking_key(environ=env(home, **{ENV_KEY: text}))
    with pytest.raises(GovernanceError):
        MaskingKey(b"short")


def test_store_none_and_unknown(home: Path) -> None:
    key, where = init_masking_key(store="none", environ=env(home))
    assert ENV_KEY in where
    assert not default_key_file(env(home)).exists()
    assert load_masking_key(environ=env(home, **{ENV_KEY: key.text()})) is not None
    with pytest.raises(GovernanceError, match="unknown key store"):
        init_masking_key(store="vault", environ=env(home))
    with pytest.raises(GovernanceError, match="keyring has no usable backend"):
        init_masking_key(store="keyring", environ=env(home))


def test_default_dir_without_home_uses_platformdirs(monkeypatch: pytest.MonkeyPatch) -> None:
    path = default_key_file({})
    assert path.name == "masking-key"
    assert "governed-db" in str(path)
    assert os.path.isabs(path)
