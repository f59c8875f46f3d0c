"""The reference witness endpoint, run as a real process: ``governed-db audit witness-serve``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from governed_db.audit import PublicKeys, Signer, Verifier, spool_files
from governed_db.audit.spool import chain_segments
from governed_db.audit.witness import HttpWitness, read_witness
from governed_db.errors import AuditError
from tests.audit_helpers import cli, kinds, session, trail, workload

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "s3cret-witness-token"


class Served:
    def __init__(self, store: Path, token: bool) -> None:
        env = {**os.environ, "WITNESS_TOKEN": TOKEN}
        argv = [sys.executable, "-m", "governed_db.cli.main", "audit", "witness-serve"]
        argv += ["--store", str(store), "--port", "0"]
        if token:
            argv += ["--token-env", "WITNESS_TOKEN"]
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        assert first.startswith("witness listening on "), first
        self.url = first.split()[3] + "heads"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = Served(tmp_path / "heads.jsonl", token=True)
    yield server
    server.stop()


def test_witness_serve_end_to_end(
    tmp_path: Path, served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    signer = Signer.generate()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    path = tmp_path / "spool"
    t = trail(path, signer, [HttpWitness(served.url, headers=auth)], checkpoint_every=10)
    workload(t, session(t), 15)
    t.close(timeout=30)
    keys = PublicKeys([signer.public_key])
    witnessed = read_witness(served.url, headers=auth)
    assert not kinds(Verifier(keys, witness=witnessed).verify(spool_files(path)))
    with pytest.raises(AuditError, match="HTTP 401"):
        read_witness(served.url)

    # acknowledged heads survive a restart of the witness
    served.stop()
    again = Served(tmp_path / "heads.jsonl", token=False)
    try:
        for f in chain_segments(path)[t.chain.id]:
            f.unlink()
        other = trail(path, signer, checkpoint_every=10)
        workload(other, session(other), 2)
        other.close()
        pub = tmp_path / "pub.pem"
        pub.write_text(signer.public_pem())
        code = cli(["audit", "verify", str(path), "--trust", str(pub), "--witness", again.url])
        assert code == 1
        assert "missing-chain" in capsys.readouterr().out
    finally:
        again.stop()


def test_witness_serve_keeps_the_first_head(tmp_path: Path) -> None:
    from governed_db.audit.witness_server import HeadStore

    store = HeadStore(tmp_path / "h.jsonl")
    head = {"chain": "c" * 32, "seq": 5, "hash": "a" * 64, "kid": "k", "sig": "s", "kind": "x"}
    assert store.add([head]) == 1
    assert store.add([{**head, "hash": "b" * 64}, {"junk": 1}, "x"]) == 0
    with open(tmp_path / "h.jsonl", "ab") as f:
        f.write(b'{"chain": "torn')  # a crash mid-append
    reopened = HeadStore(tmp_path / "h.jsonl")
    assert [h["hash"] for h in reopened.all()] == ["a" * 64]


def test_witness_header_options_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOPE", raising=False)
    path = tmp_path / "spool"
    t = trail(path, Signer.generate())
    t.close()
    for header in ("no-colon", "Authorization: env:NOPE"):
        argv = ["audit", "verify", str(path), "--allow-unsigned", "--witness", "http://x/"]
        assert cli([*argv, "--witness-header", header]) == 2
        assert "--witness-header" in capsys.readouterr().err
