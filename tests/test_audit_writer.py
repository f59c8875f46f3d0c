"""The background writer (durability batch/none): order, draining, back-pressure, failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from governed_db.audit import AuditTrail, IntentRef, Signer
from governed_db.audit.reader import iter_records
from governed_db.errors import AuditError
from tests.audit_helpers import ALLOW, CONN, FACTS, IDENTITY, trail, verify, workload

ROOT = Path(__file__).resolve().parent.parent
KEY = Signer.generate()


def test_eight_threads_one_chain_in_queue_order(tmp_path: Path) -> None:
    t = trail(tmp_path / "s", KEY, durability="batch", checkpoint_every=300)
    assert t._rec.bg is not None  # the writer thread is in use
    prepared = t.prepare(FACTS, ALLOW)
    threads, per_thread = 8, 1500
    refs: dict[int, list[IntentRef]] = {}
    start = threading.Barrier(threads)

    def work(n: int) -> None:
        s = t.session(CONN, {"user": f"thread-{n}"}, "test")
        mine = refs.setdefault(n, [])
        start.wait()
        for i in range(per_thread):
            ref = t.intent(s, f"SELECT {n}, {i}", prepared=prepared)
            t.outcome(ref, rowcount=i, duration_ms=0.01)
            mine.append(ref)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    t.close()
    assert t.lost == 0

    report = verify(tmp_path / "s", KEY)
    assert report.ok, report.problems[:5]
    assert len(report.chains) == 1
    records = list(iter_records(tmp_path / "s"))
    assert [r["seq"] for r in records] == list(range(len(records)))
    counts = Counter(r["kind"] for r in records)
    assert counts["intent"] == counts["outcome"] == threads * per_thread
    assert counts["session"] == threads
    assert counts["close"] == 1
    assert counts["checkpoint"] >= (2 * threads * per_thread) // 300
    by_hash = {r["hash"]: r for r in records}
    for r in records:
        if r["kind"] == "outcome":
            intent = by_hash[r["intent"]]
            assert intent["seq"] == r["intent_seq"] < r["seq"]
            assert intent["session.id"] == r["session.id"]
    for n, mine in refs.items():  # each thread's records in its own order, refs resolved
        seqs = [ref.seq for ref in mine]
        assert seqs == sorted(seqs)
        for i, ref in enumerate(mine):
            assert by_hash[ref.hash]["db.query.text"] == f"SELECT {n}, {i}"


def test_flush_makes_records_visible_and_close_drains(tmp_path: Path) -> None:
    t = trail(tmp_path / "s", KEY, durability="none")
    s = t.session(CONN, IDENTITY, "test")
    workload(t, s, 500)
    assert t.flush(10.0)
    kinds = Counter(r["kind"] for r in iter_records(tmp_path / "s"))
    assert kinds["intent"] == kinds["outcome"] == 500
    workload(t, s, 300, tag="b")
    t.close()  # no flush: close writes what is queued, then the close record
    records = list(iter_records(tmp_path / "s"))
    assert Counter(r["kind"] for r in records)["intent"] == 800
    assert records[-1]["kind"] == "close"
    assert records[-1]["records"] == len(records)
    assert verify(tmp_path / "s", KEY).ok


def test_sync_drains_then_fsyncs(tmp_path: Path) -> None:
    t = trail(tmp_path / "s", KEY, durability="batch", batch_ms=60_000)
    workload(t, t.session(CONN, IDENTITY, "test"), 50)
    t.sync()
    assert Counter(r["kind"] for r in iter_records(tmp_path / "s"))["outcome"] == 50
    t.close()


def test_intent_ref_waits_for_the_writer(tmp_path: Path) -> None:
    t = trail(tmp_path / "s", KEY, durability="batch")
    s = t.session(CONN, IDENTITY, "test")
    ref = t.intent(s, "SELECT 1", facts=FACTS, decision=ALLOW)
    assert ref.seq == 2  # genesis, session, intent: reading it waits until written
    assert ref.written
    t.outcome(ref, rowcount=1)
    t.close()
    intent, outcome = [
        r for r in iter_records(tmp_path / "s") if r["kind"] in ("intent", "outcome")
    ]
    assert ref.hash == intent["hash"] == outcome["intent"]
    assert outcome["intent_seq"] == 2


def test_queue_is_bounded(tmp_path: Path) -> None:
    t = trail(tmp_path / "s", KEY, durability="none")
    bg = t._rec.bg
    assert bg is not None
    bg.max_queue = 16
    s = t.session(CONN, IDENTITY, "test")
    longest = 0
    for i in range(2000):
        t.outcome(t.intent(s, f"SELECT {i}", decision=ALLOW), rowcount=1)
        longest = max(longest, len(bg.queue))
    t.close()
    assert longest <= 16 + 2
    assert Counter(r["kind"] for r in iter_records(tmp_path / "s"))["outcome"] == 2000


def test_prepared_equals_facts_and_decision(tmp_path: Path) -> None:
    t = trail(tmp_path / "s", KEY)
    s = t.session(CONN, IDENTITY, "test")
    facts = dict(FACTS)
    t.intent(s, "UPDATE x", facts=facts, decision=ALLOW)
    t.intent(s, "UPDATE x", prepared=t.prepare(facts, ALLOW))
    facts["tables_written"] = ["public.other"]  # a changed mapping is never served stale
    t.intent(s, "UPDATE x", facts=facts, decision=ALLOW)
    t.refused(s, "UPDATE x", prepared=t.prepare(FACTS, {"action": "block"}))
    t.close()
    records = [r for r in iter_records(tmp_path / "s") if r["kind"] in ("intent", "refused")]
    volatile = {"seq", "prev", "hash", "ts"}
    first, second, third, refused = (
        {k: v for k, v in r.items() if k not in volatile} for r in records
    )
    assert first == second
    assert third["tables_written"] == ["public.other"]
    assert refused["decision"] == {"action": "block"}
    with pytest.raises(TypeError, match="decision"):
        t.intent(s, "SELECT 1")


def test_closed_trail_refuses_intents(tmp_path: Path) -> None:
    t = trail(tmp_path / "s", KEY)
    s = t.session(CONN, IDENTITY, "test")
    t.close()
    with pytest.raises(AuditError, match="closed"):
        t.intent(s, "SELECT 1", decision=ALLOW)
    t.end_session(s)  # best effort: counted, not raised
    assert t.lost == 1


FULL_DISK = """
import json, resource, signal, sys, time
from governed_db.audit import AuditTrail
from governed_db.errors import AuditError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG like a full disk, not a signal
path, fail_closed = sys.argv[1], sys.argv[2] == "1"
t = AuditTrail.from_settings(
    {"path": path, "durability": "batch", "fail_closed": fail_closed})
s = t.session({"dbname": "app"}, {"user": "w"}, "test")
resource.setrlimit(resource.RLIMIT_FSIZE, (16000, 16000))
ran = 0
for i in range(400):
    try:
        ref = t.intent(s, f"SELECT {i} /* " + "x" * 150 + " */", decision={"action": "allow"})
    except AuditError as exc:
        print(json.dumps({"error": str(exc), "ran": ran, "lost": t.lost}))
        sys.exit(0)
    t.outcome(ref, rowcount=1)
    ran += 1
    if i % 10 == 0:
        t.flush()
t.flush()
print(json.dumps({"ran": ran, "lost": t.lost, "failure": str(t.failure)}))
"""


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


def test_batch_fail_closed_after_a_write_error(tmp_path: Path) -> None:
    proc = _python(FULL_DISK, str(tmp_path / "s"), "1")
    out = json.loads(proc.stdout)
    assert "could not be made durable" in out["error"]
    assert "File too large" in out["error"]  # names the original error
    assert "statement was not run" in out["error"]
    assert 10 < out["ran"] < 400
    assert out["lost"] > 0
    assert "record LOST" in proc.stderr
    intents = [r for r in iter_records(tmp_path / "s") if r["kind"] == "intent"]
    assert out["ran"] - out["lost"] <= len(intents) <= out["ran"]
    report = verify(tmp_path / "s", KEY, partial=True)  # what was written is one sound chain
    assert report.ok, report.problems


def test_batch_fail_open_counts_and_logs(tmp_path: Path) -> None:
    proc = _python(FULL_DISK, str(tmp_path / "s"), "0")
    out = json.loads(proc.stdout)
    assert out["ran"] == 400
    assert out["lost"] > 0
    assert "File too large" in out["failure"]
    assert "intent record LOST" in proc.stderr
    records = list(iter_records(tmp_path / "s"))
    assert len(records) + out["lost"] >= 2 + 800  # every record written or counted lost


EXIT_WITHOUT_CLOSE = """
import sys
from governed_db.audit import AuditTrail
t = AuditTrail.from_settings({"path": sys.argv[1], "durability": "batch", "batch_ms": 60000})
s = t.session({"dbname": "app"}, {"user": "w"}, "test")
for i in range(3000):
    t.outcome(t.intent(s, f"SELECT {i}", decision={"action": "allow"}), rowcount=1)
"""


def test_normal_exit_writes_everything_queued(tmp_path: Path) -> None:
    _python(EXIT_WITHOUT_CLOSE, str(tmp_path / "s"))
    records = list(iter_records(tmp_path / "s"))
    kinds = Counter(r["kind"] for r in records)
    assert kinds["intent"] == kinds["outcome"] == 3000
    assert records[-1]["kind"] == "close"
    assert verify(tmp_path / "s", KEY).ok


def test_memory_only_trail_writes_inline(tmp_path: Path) -> None:
    t = AuditTrail.from_settings(None, signer=KEY)
    assert t._rec.bg is None  # no spool: sinks are called on the caller's thread
    t.close()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() with threads, 3.12+
def test_forked_child_refuses_instead_of_losing_silently(tmp_path: Path) -> None:
    t = trail(tmp_path / "s", KEY, durability="batch")
    s = t.session(CONN, IDENTITY, "test")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            t.intent(s, "SELECT 1", decision=ALLOW)
            code = 1
        except AuditError as exc:
            code = 0 if "fork" in str(exc) else 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    t.close()
    assert verify(tmp_path / "s", KEY).ok
