"""Write-ahead durability: fail closed when the spool can't take a record, kill -9 safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from governed_db.audit import AuditTrail, Signer
from governed_db.audit.reader import iter_records
from governed_db.errors import AuditError
from tests.audit_helpers import verify

ROOT = Path(__file__).resolve().parent.parent

FULL_DISK = """
import json, resource, signal, sys
from governed_db.audit import AuditTrail
from governed_db.errors import AuditError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG like a full disk, not a signal
path, fail_closed = sys.argv[1], sys.argv[2] == "1"
t = AuditTrail.from_settings(
    {"path": path, "durability": "strict", "fail_closed": fail_closed})
s = t.session({"dbname": "app"}, {"user": "w"}, "test")
resource.setrlimit(resource.RLIMIT_FSIZE, (16000, 16000))
ran = 0
for i in range(400):
    try:
        t.intent(s, f"SELECT {i} /* " + "x" * 150 + " */", decision={"action": "allow"})
    except AuditError as exc:
        print(json.dumps({"error": str(exc), "ran": ran, "lost": t.lost}))
        sys.exit(0)
    ran += 1
print(json.dumps({"ran": ran, "lost": t.lost}))
"""

WORKER = """
import os, sys, time
from governed_db.audit import AuditTrail
path, side = sys.argv[1], sys.argv[2]
t = AuditTrail.from_settings({"path": path, "durability": "strict"})  # key from the env
s = t.session({"dbname": "app"}, {"user": "worker"}, "test")
fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
i = 0
while True:
    ref = t.intent(s, f"UPDATE t SET v = v + 1 WHERE id = {i}", decision={"action": "allow"})
    os.write(fd, f"{i}\\n".encode())  # "about to run statement i"
    t.outcome(ref, rowcount=1, duration_ms=0.1)
    i += 1
"""


KEY = Signer.generate()


def _python(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOVERNED_DB_SIGNING_KEY": KEY.private_text()}
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=True,
        env=env,
    )


def test_fail_closed_refuses_when_the_spool_is_full(tmp_path: Path) -> None:
    out = json.loads(_python(FULL_DISK, str(tmp_path / "s"), "1").stdout)
    assert "could not be made durable" in out["error"]
    assert "File too large" in out["error"]
    assert "statement was not run" in out["error"]
    assert 10 < out["ran"] < 400
    intents = [r for r in iter_records(tmp_path / "s") if r["kind"] == "intent"]
    assert len(intents) == out["ran"]  # every intent that returned is on disk, no partial line
    report = verify(tmp_path / "s", KEY, partial=True)
    assert report.ok, report.problems


def test_fail_open_counts_and_logs_the_loss(tmp_path: Path) -> None:
    proc = _python(FULL_DISK, str(tmp_path / "s"), "0")
    out = json.loads(proc.stdout)
    assert out["ran"] == 400
    assert out["lost"] > 0
    assert "intent record LOST" in proc.stderr
    intents = [r for r in iter_records(tmp_path / "s") if r["kind"] == "intent"]
    assert len(intents) == 400 - out["lost"]


def test_unwritable_spool_fails_at_start(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AuditError, match="cannot be opened"):
        AuditTrail.from_settings({"path": str(blocker / "spool")}, signer=Signer.generate())


def test_kill_9_every_reported_intent_is_on_disk(tmp_path: Path) -> None:
    spool, side = tmp_path / "spool", tmp_path / "side"
    signer = Signer.generate()
    env = {**os.environ, "GOVERNED_DB_SIGNING_KEY": signer.private_text()}
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(spool), str(side)], cwd=ROOT, env=env
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if side.exists() and side.read_bytes().count(b"\n") >= 300:
                break
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    reported = {int(x) for x in side.read_text().split()}
    assert len(reported) >= 300
    on_disk = {r["db.query.text"] for r in iter_records(spool) if r["kind"] == "intent"}
    missing = [i for i in reported if f"UPDATE t SET v = v + 1 WHERE id = {i}" not in on_disk]
    assert not missing

    # The crashed chain has no close record: verify says so...
    assert {p.kind for p in verify(spool, signer).errors} == {"truncated"}
    # ...until the next trail on the same spool seals it with a signed close record.
    AuditTrail.from_settings({"path": str(spool)}, signer=signer).close()
    report = verify(spool, signer)
    assert report.ok, report.problems
    assert [p.kind for p in report.problems] == ["recovered"]
    assert not list((spool / ".locks").iterdir())
