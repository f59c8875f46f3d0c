"""HTTP sink: batched JSON POSTs, generic or Splunk HEC, over the standard library."""

from __future__ import annotations

import datetime as dt
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

from governed_db.audit.records import AuditRecord
from governed_db.audit.sinks.base import AuditSink

__all__ = ["HttpSink"]


class HttpSink(AuditSink):
    """POSTs batches of records to ``url``.

    ``generic``: ``{"records": [...]}`` with header ``Idempotency-Key`` (the
    hash of the batch's last record); receivers dedupe on each record's
    ``hash``. ``splunk_hec``: concatenated HEC events
    ``{"time", "host", "source", "sourcetype", "event"}`` for
    ``/services/collector/event``. Any non-2xx answer or network error raises,
    so the forwarder retries the batch with backoff.
    """

    remote = True

    def __init__(
        self,
        url: str,
        *,
        name: str | None = None,
        format: str = "generic",
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        batch_size: int = 200,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        super().__init__(
            name or "http",
            batch_size=batch_size,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
        )
        self.url = url
        self.format = format
        self.headers = dict(headers or {})
        self.timeout = timeout
        self._host = socket.gethostname()

    def payload(self, records: Sequence[AuditRecord]) -> bytes:
        """The request body for a batch."""
        if self.format == "splunk_hec":
            events = []
            for r in records:
                event = {
                    "time": _epoch(str(r.data.get("ts", ""))),
                    "host": self._host,
                    "source": "governed_db",
                    "sourcetype": "governed_db:audit",
                    "fields": {"audit_hash": r.hash, "audit_kind": r.kind},
                    "event": "",
                }
                head = json.dumps(event, separators=(",", ":"))
                # Splice the record's canonical bytes in, untouched, as the event.
                events.append(head[: -len('""}')].encode() + r.line + b"}")
            return b"\n".join(events)
        return b'{"records":[' + b",".join(r.line for r in records) + b"]}"

    def emit(self, records: Sequence[AuditRecord]) -> None:
        """POST one batch; raise on anything but 2xx."""
        request = urllib.request.Request(self.url, data=self.payload(records), method="POST")
        request.add_header("Content-Type", "application/json")
        request.add_header("Idempotency-Key", records[-1].hash)
        for key, value in self.headers.items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            raise OSError(f"{self.url} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OSError(f"{self.url}: {reason}") from None


def _epoch(ts: str) -> float | None:
    try:
        when = dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return round(when.timestamp(), 6)
