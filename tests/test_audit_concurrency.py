"""Many threads, one shared trail: one chain that verifies, exact counts."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from governed_db.audit import AuditTrail, MemorySink, Signer
from governed_db.audit.reader import iter_records
from tests.audit_helpers import ALLOW, CONN, FACTS, verify

THREADS, PER_THREAD = 8, 2000  # records per thread: 1000 intent + 1000 outcome


def test_eight_threads_share_one_chain(tmp_path: Path) -> None:
    signer = Signer.generate()
    mem = MemorySink()
    settings = {"path": str(tmp_path / "spool"), "durability": "batch", "checkpoint_every": 500}
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def work(n: int) -> None:
        try:
            t = AuditTrail.shared(settings, sinks=[mem], signer=signer)
            s = t.session(CONN, {"user": f"thread-{n}"}, "test")
            start.wait()
            for i in range(PER_THREAD // 2):
                ref = t.intent(s, f"SELECT {n}, {i}", facts=FACTS, decision=ALLOW)
                t.outcome(ref, rowcount=1, rows_returned=1, duration_ms=0.01)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    trail = AuditTrail.shared(settings, sinks=[mem], signer=signer)
    trail.close()

    report = verify(tmp_path / "spool", signer)
    assert report.ok, report.problems[:5]
    assert len(report.chains) == 1
    records = list(iter_records(tmp_path / "spool"))
    counts = Counter(r["kind"] for r in records)
    assert counts["intent"] == counts["outcome"] == THREADS * PER_THREAD // 2
    assert counts["session"] == THREADS
    assert counts["close"] == 1
    by_session = Counter(r["session.id"] for r in records if r["kind"] == "intent")
    assert sorted(by_session.values()) == [PER_THREAD // 2] * THREADS
    intents = {r["hash"]: r for r in records if r["kind"] == "intent"}
    assert all(r["intent"] in intents for r in records if r["kind"] == "outcome")
    assert [r["seq"] for r in records] == list(range(len(records)))
    assert mem.lines == [
        line.rstrip(b"\n")
        for line in (tmp_path / "spool").glob("*.jsonl").__next__().read_bytes().splitlines()
    ]
