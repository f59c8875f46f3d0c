"""OTLP sink: records as OpenTelemetry log records (needs the ``otel`` extra).

Each record becomes one log record whose body is the canonical JSON and whose
attributes are the record's flat ``db.*``/``server.*`` fields plus
``audit.hash``/``audit.kind``; its timestamp is the record's ``ts``. Export
uses ``opentelemetry-sdk`` (>= 1.39) with the OTLP/HTTP log exporter
(``opentelemetry-exporter-otlp-proto-http``): each batch the forwarder hands
over is sent as one ``ExportLogsServiceRequest``, synchronously, and anything
but success (collector down, HTTP 4xx/5xx once the exporter's own retries of
429/502/503/504 are spent) raises, so the forwarder retries the batch. The
resource comes from the standard ``OTEL_SERVICE_NAME`` /
``OTEL_RESOURCE_ATTRIBUTES`` variables; ``endpoint`` is the full URL
(``http://collector:4318/v1/logs``), else ``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT``
or ``OTEL_EXPORTER_OTLP_ENDPOINT`` apply.

A ``LoggerProvider`` can be passed in code instead: records are emitted on
its logger and the provider is flushed per batch; a failure is then seen only
if its ``force_flush`` reports one (the SDK's ``SimpleLogRecordProcessor``
swallows export errors), and the provider is flushed, not shut down, at close.
"""

from __future__ import annotations

import calendar
import datetime as dt
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from governed_db.audit.records import AuditRecord
from governed_db.audit.sinks.base import AuditSink
from governed_db.errors import AuditError

if TYPE_CHECKING:
    from opentelemetry._logs import Logger, LoggerProvider, LogRecord
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.util.types import AttributeValue

__all__ = ["OtlpSink"]

SCOPE = "governed_db.audit"

_MISSING = (
    "the otlp audit sink needs OpenTelemetry: pip install 'governed-db[otel]' "
    "(opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http)"
)


def _missing(exc: ImportError) -> AuditError:
    return AuditError(f"{_MISSING} ({exc})")


class OtlpSink(AuditSink):
    """Exports each batch of records as OTel log records; raises if the export fails."""

    remote = True

    def __init__(
        self,
        *,
        name: str | None = None,
        endpoint: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        logger_provider: LoggerProvider | None = None,
        batch_size: int = 200,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        super().__init__(
            name or "otlp",
            batch_size=batch_size,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
        )
        self.timeout = timeout
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self._provider = logger_provider
        self._logger: Logger | None = None
        self._exporter: OTLPLogExporter | None = None
        try:
            from opentelemetry._logs import LogRecord

            self._log_record: type[LogRecord] = LogRecord
            if logger_provider is not None:
                self._logger = logger_provider.get_logger(SCOPE)
                return
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
            from opentelemetry.sdk._logs import ReadableLogRecord
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        except ImportError as exc:
            raise _missing(exc) from None
        self._readable: type[ReadableLogRecord] = ReadableLogRecord
        self._resource: Resource = Resource.create()
        self._scope: InstrumentationScope = InstrumentationScope(SCOPE)
        self._exporter = OTLPLogExporter(
            endpoint=endpoint or None, headers=dict(headers or {}) or None, timeout=timeout
        )

    def _record(self, r: AuditRecord) -> LogRecord:
        attrs: dict[str, AttributeValue] = {
            k: v
            for k, v in r.data.items()
            if isinstance(v, str | int | bool) and ("." in k or k in ("kind", "seq", "chain"))
        }
        attrs["audit.hash"] = r.hash
        attrs["audit.kind"] = r.kind
        return self._log_record(
            timestamp=_ts_nanos(r.data.get("ts")),
            body=r.line.decode("utf-8"),
            attributes=attrs,
        )

    def emit(self, records: Sequence[AuditRecord]) -> None:
        """Export one batch (one OTLP request); raise unless the collector accepted it."""
        with self._lock:
            if self._exporter is None:
                self._emit_to_provider(records)
                return
            from opentelemetry.context import (
                _SUPPRESS_INSTRUMENTATION_KEY,
                attach,
                detach,
                set_value,
            )
            from opentelemetry.sdk._logs.export import LogRecordExportResult

            batch = [
                self._readable(
                    log_record=self._record(r),
                    resource=self._resource,
                    instrumentation_scope=self._scope,
                )
                for r in records
            ]
            # As the SDK's own processors do: no telemetry about the export's HTTP call.
            token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
            try:
                result = self._exporter.export(batch)
            except Exception as exc:  # older exporters let connection errors escape
                raise OSError(f"{self._failed(len(batch))}: {exc}") from None
            finally:
                detach(token)
        if result is not LogRecordExportResult.SUCCESS:
            raise OSError(self._failed(len(batch)))

    def _failed(self, n: int) -> str:
        where = self.endpoint or "the OTEL_EXPORTER_OTLP_* endpoint"
        return f"otlp sink {self.name}: export of {n} records to {where} failed"

    def _emit_to_provider(self, records: Sequence[AuditRecord]) -> None:
        assert self._logger is not None
        for r in records:
            self._logger.emit(self._record(r))
        flush: Any = getattr(self._provider, "force_flush", None)
        if flush is not None and flush(int(self.timeout * 1000)) is False:
            raise OSError(f"otlp sink {self.name}: logger provider did not flush")

    def close(self) -> None:
        """Shut our exporter down; a provider passed in code is only flushed."""
        if self._exporter is not None:
            self._exporter.shutdown()  # type: ignore[no-untyped-call]  # untyped in the SDK
            return
        flush: Any = getattr(self._provider, "force_flush", None)
        if flush is not None:
            flush(int(self.timeout * 1000))


def _ts_nanos(ts: object) -> int | None:
    """``2024-05-01T12:00:00.500000Z`` as nanoseconds since the epoch (None if not that)."""
    try:
        when = dt.datetime.strptime(str(ts), "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return None
    return calendar.timegm(when.timetuple()) * 1_000_000_000 + when.microsecond * 1000
