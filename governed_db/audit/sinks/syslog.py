"""Syslog sink: RFC 5424 messages over UDP, TCP (RFC 6587 octet counting) or a unix socket."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Sequence
from urllib.parse import urlsplit

from governed_db.audit.records import AuditRecord
from governed_db.audit.sinks.base import AuditSink

__all__ = ["FACILITIES", "SyslogSink", "format_5424"]

FACILITIES = {
    "kern": 0,
    "user": 1,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "authpriv": 10,
    "local0": 16,
    "local1": 17,
    "local2": 18,
    "local3": 19,
    "local4": 20,
    "local5": 21,
    "local6": 22,
    "local7": 23,
}
_INFO, _NOTICE = 6, 5
_BOM = b"\xef\xbb\xbf"


def _sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def format_5424(
    record: AuditRecord, *, facility: int, hostname: str, app_name: str, procid: str
) -> bytes:
    """One RFC 5424 message: the record's canonical JSON is the (BOM-prefixed UTF-8) MSG.

    Refused statements are severity notice, everything else info. MSGID is the
    record kind; structured data ``[audit@32473 chain= seq= hash=]`` lets a
    collector dedupe without parsing the JSON (32473 is the documentation PEN).
    """
    severity = _NOTICE if record.kind == "refused" else _INFO
    ts = str(record.data.get("ts", "-"))
    sd = (
        f'[audit@32473 chain="{_sd_escape(record.chain)}" seq="{record.seq}" '
        f'hash="{_sd_escape(record.hash)}"]'
    )
    header = (
        f"<{facility * 8 + severity}>1 {ts} {hostname or '-'} {app_name or '-'} "
        f"{procid or '-'} {record.kind} {sd} "
    )
    return header.encode("ascii", "replace") + _BOM + record.line


class SyslogSink(AuditSink):
    """Sends each record as one RFC 5424 message to ``udp://``, ``tcp://`` or ``unix://``."""

    remote = True

    def __init__(
        self,
        address: str,
        *,
        name: str | None = None,
        facility: str = "local0",
        app_name: str = "governed-db",
        timeout: float = 5.0,
        batch_size: int = 200,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        super().__init__(
            name or "syslog",
            batch_size=batch_size,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
        )
        parts = urlsplit(address)
        self.transport = parts.scheme
        self.target: str | tuple[str, int] = (
            parts.path if parts.scheme == "unix" else (parts.hostname or "", parts.port or 514)
        )
        self.facility = FACILITIES[facility]
        self.app_name = app_name
        self.timeout = timeout
        self._hostname = socket.gethostname()
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        if self.transport == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                sock.connect(str(self.target))
            except OSError as exc:
                sock.close()
                if exc.errno != 91:  # EPROTOTYPE: a stream socket; retry as one
                    raise
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(str(self.target))
                self.transport = "unix-stream"
        else:
            assert isinstance(self.target, tuple)
            kind = socket.SOCK_DGRAM if self.transport == "udp" else socket.SOCK_STREAM
            infos = socket.getaddrinfo(*self.target, type=kind)
            sock = socket.socket(infos[0][0], kind)
            sock.settimeout(self.timeout)
            try:
                sock.connect(infos[0][4])
            except OSError:
                sock.close()
                raise
        sock.settimeout(self.timeout)
        self._sock = sock
        return sock

    def emit(self, records: Sequence[AuditRecord]) -> None:
        """Send; on a socket error drop the connection and raise (the batch is retried)."""
        procid = str(os.getpid())
        with self._lock:
            sock = self._connect()
            try:
                for record in records:
                    msg = format_5424(
                        record,
                        facility=self.facility,
                        hostname=self._hostname,
                        app_name=self.app_name,
                        procid=procid,
                    )
                    if self.transport in ("tcp", "unix-stream"):
                        sock.sendall(str(len(msg)).encode() + b" " + msg)
                    else:
                        sock.send(msg)
            except OSError:
                self._drop()
                raise

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        """Close the socket."""
        with self._lock:
            self._drop()
