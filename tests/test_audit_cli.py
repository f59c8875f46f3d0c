"""``governed-db audit ...`` and ``governed-db keys ...`` end to end."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from governed_db.audit import AuditTrail
from tests.audit_helpers import cli, only_file, session, workload


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


@pytest.fixture
def spool(tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert cli(["keys", "init"]) == 0
    out = capsys.readouterr().out
    assert "key file" in out
    assert "no keyring backend" in out
    t = AuditTrail.from_settings({"path": str(tmp_path / "spool")})  # key found in the key file
    s = session(t)
    workload(t, s, 5)
    t.refused(
        s,
        "DELETE FROM orders",
        facts={"operation": "delete", "tables_written": ["public.orders"]},
        decision={"action": "block", "rule_id": "no-unbounded-delete"},
    )
    t.close()
    return tmp_path / "spool"


def test_keys_commands(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["keys", "status"]) == 1
    assert "none" in capsys.readouterr().out
    assert cli(["keys", "init"]) == 0
    assert cli(["keys", "init"]) == 2
    assert "--rotate" in capsys.readouterr().err
    assert cli(["keys", "status"]) == 0
    assert "signing-key.pem" in capsys.readouterr().out
    assert cli(["keys", "export-public", "-o", str(tmp_path / "pub.pem")]) == 0
    assert (tmp_path / "pub.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert cli(["keys", "init", "--rotate"]) == 0
    assert len(list((home / "public-keys").glob("*.pem"))) == 2
    assert len(list((home / "public-keys").glob("*.rotation.json"))) == 1
    assert cli(["keys", "init", "--store", "keyring", "--rotate"]) == 2
    assert "no usable backend" in capsys.readouterr().err
    (home / "signing-key.pem").chmod(0o644)
    assert cli(["keys", "export-public"]) == 2
    assert "chmod 600" in capsys.readouterr().err


def test_verify_exit_codes(
    spool: Path, tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["audit", "verify", str(spool)]) == 0
    assert "OK: 14 records in 1 chain(s)" in capsys.readouterr().out
    pub = next((home / "public-keys").iterdir())
    assert cli(["audit", "verify", str(spool), "--public-key", str(pub)]) == 0
    capsys.readouterr()
    f = only_file(spool)
    lines = f.read_bytes().splitlines(keepends=True)
    lines[4] = lines[4].replace(b"WHERE id = ", b"WHERE id <> ")
    f.write_bytes(b"".join(lines))
    assert cli(["audit", "verify", str(spool)]) == 1
    out = capsys.readouterr().out
    assert "TAMPERED modified" in out
    assert "seq 4" in out
    assert ":5)" in out
    assert cli(["audit", "verify", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli(["audit", "verify", str(spool), "--public-key", str(tmp_path / "none.pem")]) == 2
    for p in (home / "public-keys").iterdir():
        p.unlink()
    assert cli(["audit", "verify", str(spool)]) == 2
    assert "--trust" in capsys.readouterr().err


def test_tail_show_export(spool: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["audit", "tail", str(spool), "--decision", "block"]) == 0
    out = capsys.readouterr().out
    assert "refused" in out
    assert "DELETE FROM orders" in out
    assert "intent" not in out
    assert (
        cli(
            [
                "audit",
                "tail",
                str(spool),
                "--table",
                "orders",
                "--actor",
                "ali",
                "--since",
                "1h",
                "-n",
                "3",
                "--kind",
                "intent",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.count("intent") == 3

    intent = next(
        json.loads(x)
        for x in only_file(spool).read_text().splitlines()
        if json.loads(x)["kind"] == "intent"
    )
    assert cli(["audit", "show", intent["hash"][:10], str(spool)]) == 0
    out = capsys.readouterr().out
    assert intent["hash"] in out
    assert "outcome" in out
    assert cli(["audit", "show", f"{intent['chain'][:8]}:{intent['seq']}", str(spool)]) == 0
    capsys.readouterr()
    assert cli(["audit", "show", "abc", str(spool)]) == 2
    assert cli(["audit", "show", "ffffffffff", str(spool)]) == 1

    assert cli(["audit", "export", str(spool), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 14
    assert rows[2]["kind"] == "intent"
    assert rows[2]["actor"] == "alice"
    assert cli(["audit", "export", str(spool), "--decision", "block"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["kind"] == "refused"


def test_default_path_is_the_default_spool(
    tmp_path: Path,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from governed_db.audit.defaults import default_spool

    monkeypatch.setenv("GOVERNED_DB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("GOVERNED_DB_AUDIT_PATH", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./audit here
    assert cli(["keys", "init"]) == 0
    t = AuditTrail.from_settings({"path": str(default_spool())})
    workload(t, session(t), 2)
    t.close()
    capsys.readouterr()
    assert cli(["audit", "verify"]) == 0
    assert "OK: 7 records" in capsys.readouterr().out
    assert cli(["audit", "tail"]) == 0
    assert "UPDATE orders" in capsys.readouterr().out
