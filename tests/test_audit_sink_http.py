"""HTTP sink against a real local server that fails, is slow, goes away and comes back."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from governed_db.audit import AuditRecord, Signer
from governed_db.audit.sinks.http import HttpSink
from tests.audit_helpers import session, trail, verify, workload


class Receiver:
    """A collector whose behaviour the test switches: ok, 500 or slow."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.lock = threading.Lock()
        self.lines: list[bytes] = []
        self.posts = 0
        self.headers: list[dict[str, str]] = []

    def __call__(self, request: Request) -> Response:
        with self.lock:
            self.posts += 1
            self.headers.append(dict(request.headers))
        if self.mode == "500":
            return Response("boom", status=500)
        body = json.loads(request.get_data())
        if self.mode == "slow":
            time.sleep(0.6)  # longer than the sink's timeout: the sender retries
        with self.lock:
            self.lines.extend(json.dumps(r, sort_keys=True).encode() for r in body["records"])
        return Response("{}", status=200, content_type="application/json")


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    srv.start()
    yield srv
    if srv.is_running():
        srv.stop()


def wait_for(cond, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_outage_500_slow_then_everything_arrives_once(
    tmp_path: Path, server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = Receiver()
    server.expect_request("/ingest", method="POST").respond_with_handler(receiver)
    signer = Signer.generate()
    sink = {
        "type": "http",
        "url": server.url_for("/ingest"),
        "batch_size": 40,
        "timeout": 0.3,
        "backoff_initial": 0.02,
        "backoff_max": 0.1,
        "headers": {"Authorization": "env:AUDIT_TEST_TOKEN"},
    }
    monkeypatch.setenv("AUDIT_TEST_TOKEN", "Bearer t0ken")
    t = trail(tmp_path / "spool", signer, sinks=[sink])
    s = session(t)
    receiver.mode = "500"
    workload(t, s, 50)
    wait_for(lambda: receiver.posts >= 3)
    receiver.mode = "slow"
    workload(t, s, 50)
    wait_for(lambda: len(receiver.lines) >= 40)
    server.stop()  # the collector goes away
    workload(t, s, 50)
    time.sleep(0.3)
    server.start()  # ...and comes back on the same port
    receiver.mode = "ok"
    workload(t, s, 50)
    assert t.flush(timeout=20)
    t.close(timeout=20)

    spool_hashes = [
        json.loads(line)["hash"]
        for f in sorted((tmp_path / "spool").glob("*.jsonl"))
        for line in f.read_bytes().splitlines()
    ]
    received = {json.loads(line)["hash"]: line for line in receiver.lines}
    assert len(receiver.lines) > len(received)  # slow answers were retried: duplicates on the wire
    assert set(received) == set(spool_hashes)  # no gaps
    # deduplicated by the idempotency key, the received records form the intact chain
    records = sorted((json.loads(x) for x in received.values()), key=lambda r: r["seq"])
    assert [r["seq"] for r in records] == list(range(len(spool_hashes)))
    out = tmp_path / "received.jsonl"
    out.write_bytes(
        b"".join(
            json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
            + b"\n"
            for r in records
        )
    )
    assert verify(out, signer).ok
    assert all(h.get("Authorization") == "Bearer t0ken" for h in receiver.headers)
    assert all(len(h.get("Idempotency-Key", "")) == 64 for h in receiver.headers)


def test_splunk_hec_payload_embeds_the_exact_record() -> None:
    sink = HttpSink("http://127.0.0.1:9/services/collector/event", format="splunk_hec")
    rec = AuditRecord.parse(
        b'{"chain":"c","hash":"h","kind":"intent","seq":1,'
        b'"ts":"2024-05-01T12:00:00.500000Z","x":"\xc3\xa9"}'
    )
    events = [json.loads(x) for x in sink.payload([rec, rec]).split(b"\n")]
    assert len(events) == 2
    assert events[0]["time"] == 1714564800.5
    assert events[0]["sourcetype"] == "governed_db:audit"
    assert events[0]["event"] == json.loads(rec.line)
    assert events[0]["fields"] == {"audit_hash": "h", "audit_kind": "intent"}
