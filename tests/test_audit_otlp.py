"""OTLP sink against a real OTLP/HTTP receiver (protobuf POSTs to /v1/logs).

The receiver is a local pytest-httpserver; what the real OpenTelemetry exporter
sends is decoded with the OTLP protobuf definitions (``opentelemetry-proto``).
The otel packages are part of the ``dev`` extra: a missing one fails collection
loudly instead of skipping. The missing-extra error is checked in a subprocess
with every ``opentelemetry`` import blocked.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from governed_db.audit import AuditRecord, Signer
from governed_db.audit.sinks.otlp import OtlpSink
from tests.audit_helpers import session, trail, verify, workload

ROOT = Path(__file__).resolve().parent.parent


def value(v: AnyValue) -> Any:
    """The Python value of an OTLP AnyValue (scalars only: that is all the sink sends)."""
    which = v.WhichOneof("value")
    assert which in ("string_value", "int_value", "bool_value", "double_value"), which
    return getattr(v, which)


class Collector:
    """An OTLP/HTTP logs endpoint whose behaviour the test switches: ok or 500."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.lock = threading.Lock()
        self.posts = 0
        self.accepted = 0
        self.headers: list[dict[str, str]] = []
        self.resources: list[dict[str, Any]] = []
        self.scopes: list[str] = []
        self.logs: list[dict[str, Any]] = []  # body, attributes, time_unix_nano

    def __call__(self, request: Request) -> Response:
        with self.lock:
            self.posts += 1
            self.headers.append(dict(request.headers))
        if self.mode == "500":
            return Response("collector on fire", status=500)
        export = ExportLogsServiceRequest()
        export.ParseFromString(request.get_data())
        with self.lock:
            self.accepted += 1
            for rl in export.resource_logs:
                self.resources.append({a.key: value(a.value) for a in rl.resource.attributes})
                for sl in rl.scope_logs:
                    self.scopes.append(sl.scope.name)
                    for lr in sl.log_records:
                        self.logs.append(
                            {
                                "body": value(lr.body),
                                "attributes": {a.key: value(a.value) for a in lr.attributes},
                                "time_unix_nano": lr.time_unix_nano,
                            }
                        )
        return Response(
            ExportLogsServiceResponse().SerializeToString(),
            status=200,
            content_type="application/x-protobuf",
        )

    def by_hash(self) -> dict[str, dict[str, Any]]:
        """Received log records deduplicated by ``audit.hash`` (copies must be identical)."""
        out: dict[str, dict[str, Any]] = {}
        with self.lock:
            for log in self.logs:
                key = log["attributes"]["audit.hash"]
                assert out.setdefault(key, log) == log, f"two different exports of {key}"
        return out


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    srv.start()
    yield srv
    if srv.is_running():
        srv.stop()


@pytest.fixture
def collector(server: HTTPServer) -> Collector:
    c = Collector()
    server.expect_request("/v1/logs", method="POST").respond_with_handler(c)
    return c


def wait_for(cond, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def spool_lines(path: Path) -> list[bytes]:
    return [line for f in sorted(path.glob("*.jsonl")) for line in f.read_bytes().splitlines()]


def expected_attributes(data: dict[str, Any]) -> dict[str, Any]:
    """The documented attributes: flat dotted scalars, kind/seq/chain, audit.hash/kind."""
    attrs = {
        k: v
        for k, v in data.items()
        if ("." in k or k in ("kind", "seq", "chain")) and isinstance(v, str | int | bool)
    }
    attrs["audit.hash"] = data["hash"]
    attrs["audit.kind"] = data["kind"]
    return attrs


def ts_nanos(ts: str) -> int:
    when = dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
    return calendar.timegm(when.timetuple()) * 1_000_000_000 + when.microsecond * 1000


def assert_delivered(collector: Collector, spool: Path, signer: Signer, out: Path) -> None:
    """Every spool record arrived (once, after dedup) with the right body and attributes."""
    lines = spool_lines(spool)
    received = collector.by_hash()
    assert len(received) == len(lines)
    for line in lines:
        data = json.loads(line)
        log = received[data["hash"]]
        assert log["body"] == line.decode("utf-8")  # the exact canonical line
        assert log["attributes"] == expected_attributes(data)
        assert log["time_unix_nano"] == ts_nanos(data["ts"])
    # the bodies, deduplicated and in chain order, are the intact signed chain
    bodies = sorted(received.values(), key=lambda log: log["attributes"]["seq"])
    assert [b["attributes"]["seq"] for b in bodies] == list(range(len(lines)))
    out.write_bytes(b"".join(b["body"].encode("utf-8") + b"\n" for b in bodies))
    assert verify(out, signer).ok


def test_every_record_arrives_as_a_log_record(
    tmp_path: Path, server: HTTPServer, collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_TEST_TOKEN", "Bearer t0ken")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "billing-api")
    signer = Signer.generate()
    sink = {
        "type": "otlp",
        "endpoint": server.url_for("/v1/logs"),
        "headers": {"Authorization": "env:AUDIT_TEST_TOKEN"},
        "batch_size": 7,
        "timeout": 5,
    }
    t = trail(tmp_path / "spool", signer, sinks=[sink])
    s = session(t)
    workload(t, s, 20)
    assert t.flush(timeout=20)
    t.close(timeout=20)

    assert_delivered(collector, tmp_path / "spool", signer, tmp_path / "received.jsonl")
    lines = spool_lines(tmp_path / "spool")
    assert collector.posts == collector.accepted >= -(-len(lines) // 7)  # batched, no retries
    assert len(collector.logs) == len(lines)  # nothing failed, so nothing was sent twice
    assert set(collector.scopes) == {"governed_db.audit"}
    assert all(r["service.name"] == "billing-api" for r in collector.resources)
    for h in collector.headers:
        assert h["Content-Type"] == "application/x-protobuf"
        assert h["Authorization"] == "Bearer t0ken"
    # spot checks of the documented attributes on real records
    logs = collector.by_hash().values()
    intent = next(x["attributes"] for x in logs if x["attributes"]["audit.kind"] == "intent")
    assert intent["db.query.text"].startswith("UPDATE orders SET note")
    assert intent["server.address"] == "db.internal"
    assert intent["server.port"] == 5432
    assert intent["db.namespace"] == "app"
    assert "decision" not in intent  # nested objects stay in the body only


def test_collector_500_then_down_then_back_everything_arrives(
    tmp_path: Path, server: HTTPServer, collector: Collector
) -> None:
    signer = Signer.generate()
    sink = {
        "type": "otlp",
        "endpoint": server.url_for("/v1/logs"),
        "batch_size": 30,
        "timeout": 0.5,
        "backoff_initial": 0.02,
        "backoff_max": 0.1,
    }
    t = trail(tmp_path / "spool", signer, sinks=[sink])
    s = session(t)
    collector.mode = "500"
    workload(t, s, 40)
    wait_for(lambda: collector.posts >= 3)  # the forwarder keeps retrying the same batch
    assert collector.logs == []
    server.stop()  # the collector goes away: connection refused
    workload(t, s, 40)
    time.sleep(0.3)
    server.start()  # ...and comes back on the same port, healthy
    collector.mode = "ok"
    workload(t, s, 40)
    assert t.flush(timeout=30)
    t.close(timeout=30)

    assert collector.posts > collector.accepted  # failed attempts really happened
    assert_delivered(collector, tmp_path / "spool", signer, tmp_path / "received.jsonl")


def test_emit_raises_on_http_500_and_succeeds_once_the_collector_recovers(
    server: HTTPServer, collector: Collector
) -> None:
    rec = AuditRecord.parse(
        b'{"chain":"c","db.user":"app_rw","hash":"h1","kind":"intent","seq":7,'
        b'"server.port":5432,"ts":"2024-05-01T12:00:00.500000Z","x":{"y":1}}'
    )
    sink = OtlpSink(endpoint=server.url_for("/v1/logs"), timeout=2)
    try:
        collector.mode = "500"
        with pytest.raises(OSError, match="export of 1 records"):
            sink.emit([rec])
        assert collector.posts >= 1  # (exporters before 1.4x also retried a 500 themselves)
        collector.mode = "ok"
        sink.emit([rec, rec])
    finally:
        sink.close()
    assert [log["body"] for log in collector.logs] == [rec.line.decode()] * 2
    assert collector.logs[0]["attributes"] == {
        "chain": "c",
        "db.user": "app_rw",
        "kind": "intent",
        "seq": 7,
        "server.port": 5432,
        "audit.hash": "h1",
        "audit.kind": "intent",
    }
    assert collector.logs[0]["time_unix_nano"] == 1714564800_500000000


def test_emit_raises_when_nothing_listens() -> None:
    with HTTPServer(host="127.0.0.1", port=0) as srv:
        url = srv.url_for("/v1/logs")  # a port that was just free: now nothing listens
    sink = OtlpSink(endpoint=url, timeout=0.5)
    try:
        with pytest.raises(OSError, match="failed"):
            sink.emit([AuditRecord.parse(b'{"chain":"c","hash":"h","kind":"intent","seq":1}')])
    finally:
        sink.close()


def test_logger_provider_passed_in_code() -> None:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    sink = OtlpSink(logger_provider=provider)
    rec = AuditRecord.parse(b'{"chain":"c","hash":"h","kind":"session","seq":1,"server.port":1}')
    sink.emit([rec])
    sink.close()
    (got,) = exporter.get_finished_logs()
    assert got.log_record.body == rec.line.decode()
    assert dict(got.log_record.attributes or {})["audit.hash"] == "h"
    assert got.instrumentation_scope is not None
    assert got.instrumentation_scope.name == "governed_db.audit"
    provider.shutdown()


BLOCKED = textwrap.dedent(
    """
    import sys

    class Block:  # as if the otel extra were not installed
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Block())

    import pathlib
    import tempfile

    import pytest

    from governed_db.audit import AuditSettings, Signer
    from governed_db.audit.sinks import build_sink
    from governed_db.errors import AuditError
    from tests.audit_helpers import trail

    settings = AuditSettings.from_mapping(
        {"path": "x", "sinks": [{"type": "otlp", "endpoint": "http://127.0.0.1:4318/v1/logs"}]}
    )
    with pytest.raises(AuditError, match=r"pip install 'governed-db\\[otel\\]'"):
        build_sink(settings.sinks[0])
    with pytest.raises(AuditError, match="otel"):
        trail(pathlib.Path(tempfile.mkdtemp()) / "s", Signer.generate(), sinks=[{"type": "otlp"}])
    assert not any(m.startswith("opentelemetry") for m in sys.modules)
    print("missing-extra-ok")
    """
)


def test_missing_extra_is_a_clear_error() -> None:
    # A fresh interpreter with every opentelemetry import blocked.
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", BLOCKED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "missing-extra-ok"
