"""Syslog sink: RFC 5424 to real UDP, TCP (octet counting) and unix-socket listeners."""

from __future__ import annotations

import json
import re
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from governed_db.audit import Signer
from tests.audit_helpers import session, trail, verify, workload

HEADER = re.compile(
    rb"^<(\d+)>1 (\S+) (\S+) governed-db (\d+) (\w+) "
    rb'\[audit@32473 chain="([0-9a-f]{32})" seq="(\d+)" hash="([0-9a-f]{64})"\] \xef\xbb\xbf'
)


def check(messages: list[bytes], spool: Path, signer: Signer) -> None:
    records = []
    for msg in messages:
        m = HEADER.match(msg)
        assert m, msg[:120]
        record = json.loads(msg[m.end() :])
        assert m.group(5).decode() == record["kind"]
        assert m.group(8).decode() == record["hash"]
        assert int(m.group(1)) == 16 * 8 + (5 if record["kind"] == "refused" else 6)
        records.append(msg[m.end() :])
    lines = [x for f in sorted(spool.glob("*.jsonl")) for x in f.read_bytes().splitlines()]
    assert records == lines  # in order, complete, byte for byte
    assert verify(spool, signer).ok


def run(tmp_path: Path, address: str) -> Path:
    signer = Signer.generate()
    t = trail(
        tmp_path / "spool", signer, sinks=[{"type": "syslog", "address": address, "batch_size": 25}]
    )
    s = session(t)
    workload(t, s, 30)
    t.refused(s, "DROP TABLE orders", decision={"action": "block", "rule_id": "no-drop"})
    t.close(timeout=10)
    run.signer = signer  # type: ignore[attr-defined]
    return tmp_path / "spool"


def test_udp(tmp_path: Path) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    spool = run(tmp_path, f"udp://127.0.0.1:{sock.getsockname()[1]}")
    messages = [sock.recv(65535) for _ in range(64)]
    sock.close()
    check(messages, spool, run.signer)  # type: ignore[attr-defined]


@pytest.fixture
def tcp_listener() -> Iterator[tuple[int, list[bytes]]]:
    server = socket.create_server(("127.0.0.1", 0))
    messages: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        buf = b""
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                buf += data
                while b" " in buf:
                    length, _, rest = buf.partition(b" ")
                    if len(rest) < int(length):
                        break
                    messages.append(rest[: int(length)])
                    buf = rest[int(length) :]

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], messages
    server.close()


def test_tcp_octet_counting(tmp_path: Path, tcp_listener: tuple[int, list[bytes]]) -> None:
    port, messages = tcp_listener
    spool = run(tmp_path, f"tcp://127.0.0.1:{port}")
    import time

    deadline = time.monotonic() + 5
    while len(messages) < 64 and time.monotonic() < deadline:
        time.sleep(0.01)
    check(messages, spool, run.signer)  # type: ignore[attr-defined]


def test_unix_socket(tmp_path: Path) -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as d:  # short path: AF_UNIX limit
        path = str(Path(d) / "log")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(5)
        messages: list[bytes] = []  # read as a syslog daemon would: unix datagrams back-pressure
        reader = threading.Thread(
            target=lambda: messages.extend(sock.recv(65535) for _ in range(64))
        )
        reader.start()
        spool = run(tmp_path, f"unix://{path}")
        reader.join()
        sock.close()
    check(messages, spool, run.signer)  # type: ignore[attr-defined]
