"""Key trust: only trusted keys count; rotations carry trust; retired and revoked keys fail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from governed_db.audit import AuditTrail, PublicKeys, Signer, Verifier, spool_files
from governed_db.audit.keys import public_key_dir, rotation_record
from governed_db.audit.trust import load_trust
from governed_db.errors import AuditError
from tests.audit_helpers import cli, kinds, session, trail, workload

PAST = "2000-01-01T00:00:00.000000Z"
FUTURE = "2999-01-01T00:00:00.000000Z"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("GOVERNED_DB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.delenv("GOVERNED_DB_SIGNING_KEY", raising=False)
    monkeypatch.delenv("GOVERNED_DB_SIGNING_KEY_FILE", raising=False)
    old = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield tmp_path / "home"
    keyring.set_keyring(old)


def chain(path: Path, signer: Signer) -> str:
    t = trail(path, signer)
    workload(t, session(t), 3)
    t.close()
    return t.chain.id


def trust_dir(
    tmp_path: Path, *signers: Signer, rotations: tuple[dict[str, object], ...] = ()
) -> Path:
    d = tmp_path / "auditor-keys"
    d.mkdir(exist_ok=True)
    for s in signers:
        (d / f"{s.kid}.pem").write_text(s.public_pem())
    for doc in rotations:
        (d / f"{doc['new']}.rotation.json").write_text(json.dumps(doc))
    return d


def check(path: Path, keys: PublicKeys, **kw: bool) -> set[tuple[str, int | None]]:
    return kinds(Verifier(keys, **kw).verify(spool_files(path)))


def test_a_rotation_record_makes_the_new_key_trusted(tmp_path: Path) -> None:
    old, new = Signer.generate(), Signer.generate()
    chain(tmp_path / "s", old)
    chain(tmp_path / "s", new)
    keys, _ = load_trust([trust_dir(tmp_path, old)])
    assert {k for k, _ in check(tmp_path / "s", keys)} == {"unknown-key"}
    doc = rotation_record(old, new.public_key, FUTURE)
    keys, _ = load_trust([trust_dir(tmp_path, old, rotations=(doc,))])
    assert new.kid in keys
    assert not check(tmp_path / "s", keys)


def test_a_retired_key_cannot_sign_a_chain_that_starts_after_retirement(tmp_path: Path) -> None:
    old, new = Signer.generate(), Signer.generate()
    doc = rotation_record(old, new.public_key, PAST)
    chain(tmp_path / "s", new)
    forged = chain(tmp_path / "s", old)  # someone still holding the old key starts a chain
    keys, _ = load_trust([trust_dir(tmp_path, old, rotations=(doc,))])
    report = Verifier(keys).verify(spool_files(tmp_path / "s"))
    assert {(p.kind, p.chain) for p in report.errors} == {("retired-key", forged)}
    assert PAST in report.errors[0].message


def test_rotation_records_travel_in_the_genesis(tmp_path: Path, home: Path) -> None:
    assert cli(["keys", "init"]) == 0
    old_pub = tmp_path / "old.pem"
    assert cli(["keys", "export-public", "-o", str(old_pub)]) == 0
    assert cli(["keys", "init", "--rotate"]) == 0
    (rotation,) = public_key_dir().glob("*.rotation.json")
    t = AuditTrail.from_settings({"path": str(tmp_path / "s")})  # signs with the new key
    workload(t, session(t), 2)
    t.close()
    genesis = json.loads(next(iter(spool_files(tmp_path / "s"))).read_bytes().splitlines()[0])
    assert genesis["key_rotations"] == [json.loads(rotation.read_text())]
    keys, _ = load_trust([old_pub])  # the auditor only ever pinned the old key
    assert not check(tmp_path / "s", keys)


def test_the_writer_refuses_a_retired_key(tmp_path: Path, home: Path) -> None:
    assert cli(["keys", "init"]) == 0
    old_text = (home / "signing-key.pem").read_text()
    assert cli(["keys", "init", "--rotate"]) == 0
    stale = tmp_path / "stale.pem"
    stale.write_text(old_text)
    stale.chmod(0o600)
    from governed_db.audit.keys import load_signer

    old = load_signer(key_file=stale)
    assert old is not None
    with pytest.raises(AuditError, match="was retired"):
        AuditTrail.from_settings({"path": str(tmp_path / "s")}, signer=old)


def test_a_forged_rotation_record_introduces_nothing(tmp_path: Path) -> None:
    old, new, mallory = Signer.generate(), Signer.generate(), Signer.generate()
    chain(tmp_path / "s", new)
    forged = rotation_record(mallory, new.public_key, PAST)
    forged["old"] = old.kid  # claims to come from the trusted key
    keys, _ = load_trust([trust_dir(tmp_path, old, rotations=(forged,))])
    assert new.kid not in keys
    assert {k for k, _ in check(tmp_path / "s", keys)} == {"unknown-key"}
    tampered = rotation_record(old, new.public_key, FUTURE)
    tampered["not_before"] = PAST  # the window moved after signing
    assert PublicKeys([old.public_key]).add_rotation(tampered) is not None


def test_revocation_in_the_trust_config(tmp_path: Path, home: Path) -> None:
    good, stolen = Signer.generate(), Signer.generate()
    chain(tmp_path / "s", good)
    bad = chain(tmp_path / "s", stolen)
    home.mkdir(parents=True, exist_ok=True)
    (home / "trust.toml").write_text(
        "[[key]]\n"
        f'public = """{good.public_pem()}"""\n'
        f'kid = "{good.kid}"\n'
        "[[key]]\n"
        f'file = "{trust_dir(tmp_path, stolen) / (stolen.kid + ".pem")}"\n'
        "[[revoked]]\n"
        f'kid = "{stolen.kid}"\n'
        'at = "2001-01-01T00:00:00Z"\n'
    )
    keys, sources = load_trust()
    assert len(sources) == 2
    report = Verifier(keys).verify(spool_files(tmp_path / "s"))
    assert {(p.kind, p.chain) for p in report.errors} == {("revoked-key", bad)}
    # revocations apply even when --trust names the keys
    keys, _ = load_trust([trust_dir(tmp_path, good, stolen)])
    assert {k for k, _ in kinds(Verifier(keys).verify(spool_files(tmp_path / "s")))} == {
        "revoked-key"
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("[[key]]\nkid = 'x'\n", "needs file"),
        ("[[key]]\npublic = 'bm90IGEga2V5'\n", "neither PEM nor"),
        ("[whatever]\n", "unknown section"),
        ("[[key]\n", "trust config"),
        ("[[revoked]]\nat = 1\n", "needs kid"),
        ("[[revoked]]\nkid = 'k'\nat = 'yesterday'\n", "not an RFC 3339"),
    ],
)
def test_bad_trust_configs_are_clear_errors(
    home: Path, tmp_path: Path, config: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "trust.toml").write_text(config)
    with pytest.raises(AuditError, match=message):
        load_trust()
    chain(tmp_path / "s", Signer.generate())
    assert cli(["audit", "verify", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "trust.toml" in err
    assert "Traceback" not in err


def test_unanchored_unless_told_what_to_trust(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["keys", "init"]) == 0
    t = AuditTrail.from_settings({"path": str(tmp_path / "s")})
    workload(t, session(t), 2)
    t.close()
    capsys.readouterr()
    assert cli(["audit", "verify", str(tmp_path / "s")]) == 0
    assert "UNANCHORED" in capsys.readouterr().out
    assert cli(["audit", "verify", str(tmp_path / "s"), "--strict"]) == 1
    assert "FAILED (--strict) unanchored" in capsys.readouterr().out
    # naming the writer's own key directory is no anchor either
    assert cli(["audit", "verify", str(tmp_path / "s"), "--trust", str(public_key_dir())]) == 0
    assert "UNANCHORED" in capsys.readouterr().out
    # a key file inside the spool is refused outright
    inside = tmp_path / "s" / "key.pem"
    inside.write_text(next(public_key_dir().glob("*.pem")).read_text())
    assert cli(["audit", "verify", str(tmp_path / "s"), "--trust", str(inside)]) == 2
    assert "no trust root" in capsys.readouterr().err
    inside.unlink()
    # an auditor's own copy anchors it
    auditor = tmp_path / "auditor.pem"
    auditor.write_text(next(public_key_dir().glob("*.pem")).read_text())
    assert cli(["audit", "verify", str(tmp_path / "s"), "--trust", str(auditor), "--strict"]) == 0
    assert "UNANCHORED" not in capsys.readouterr().out
    # so does a key pinned in the trust config
    (home / "trust.toml").write_text(f'[[key]]\nfile = "{auditor}"\n')
    assert cli(["audit", "verify", str(tmp_path / "s"), "--strict", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["anchored"] is True
    assert doc["trust"] == [f"{home / 'trust.toml'} [[key]] #1"]


def test_a_chain_of_rotations_carries_trust_and_retires_each_key(tmp_path: Path) -> None:
    first, second, third = Signer.generate(), Signer.generate(), Signer.generate()
    one = rotation_record(first, second.public_key, PAST)
    two = rotation_record(second, third.public_key, FUTURE)
    chain(tmp_path / "s", third)
    keys = PublicKeys([first.public_key])
    assert keys.add_rotations([two, one]) == [second.kid, third.kid]  # any order
    assert keys.retired_at(first.kid) == PAST
    assert keys.retired_at(second.kid) == FUTURE
    assert not check(tmp_path / "s", keys)
    late = chain(tmp_path / "s", first)  # the first key, long retired
    report = Verifier(keys).verify(spool_files(tmp_path / "s"))
    assert {(p.kind, p.chain) for p in report.errors} == {("retired-key", late)}


def test_a_rotation_record_without_its_old_key_trusted_introduces_nothing(tmp_path: Path) -> None:
    old, new = Signer.generate(), Signer.generate()
    keys = PublicKeys()
    assert "not trusted" in str(keys.add_rotation(rotation_record(old, new.public_key)))
    assert new.kid not in keys
    bad = rotation_record(old, new.public_key)
    bad["new"] = old.kid  # names a key it does not carry
    assert "does not name" in str(PublicKeys([old.public_key]).add_rotation(bad))
    assert "not a key rotation" in str(PublicKeys().add_rotation({"type": "x"}))
