"""OTLP sink: records as OpenTelemetry log records (needs the ``otel`` extra).

Each record becomes one log record whose body is the canonical JSON and whose
attributes are the record's flat ``db.*``/``server.*`` fields plus
``audit.hash``/``audit.kind``. Export uses ``opentelemetry-sdk`` with the OTLP
HTTP log exporter (``opentelemetry-exporter-otlp-proto-http``), or any
``LoggerProvider`` passed in code.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from governed_db.audit.records import AuditRecord
from governed_db.audit.sinks.base import AuditSink
from governed_db.errors import AuditError

__all__ = ["OtlpSink"]

_MISSING = (
    "the otlp audit sink needs OpenTelemetry: pip install 'governed-db[otel]' "
    "(opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http)"
)


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise AuditError(f"{_MISSING} ({exc})") from None


class OtlpSink(AuditSink):
    """Emits each record as an OTel log record and flushes the provider per batch."""

    remote = True

    def __init__(
        self,
        *,
        name: str | None = None,
        endpoint: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        logger_provider: Any = None,
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
        sdk_logs = _import("opentelemetry.sdk._logs")
        self._log_record = sdk_logs.LogRecord
        if logger_provider is None:
            export = _import("opentelemetry.sdk._logs.export")
            exporter_mod = _import("opentelemetry.exporter.otlp.proto.http._log_exporter")
            kwargs: dict[str, Any] = {"timeout": timeout}
            if endpoint:
                kwargs["endpoint"] = endpoint
            if headers:
                kwargs["headers"] = dict(headers)
            logger_provider = sdk_logs.LoggerProvider()
            logger_provider.add_log_record_processor(
                export.SimpleLogRecordProcessor(exporter_mod.OTLPLogExporter(**kwargs))
            )
        self._provider = logger_provider
        self._logger = logger_provider.get_logger("governed_db.audit")

    def emit(self, records: Sequence[AuditRecord]) -> None:
        """Emit, then force a flush so a failure surfaces here and the batch is retried."""
        for r in records:
            attrs = {
                k: v
                for k, v in r.data.items()
                if isinstance(v, str | int | bool) and ("." in k or k in ("kind", "seq", "chain"))
            }
            attrs["audit.hash"] = r.hash
            attrs["audit.kind"] = r.kind
            self._logger.emit(self._log_record(body=r.line.decode("utf-8"), attributes=attrs))
        if self._provider.force_flush(int(self.timeout * 1000)) is False:
            raise OSError(f"otlp sink {self.name}: export did not complete")

    def close(self) -> None:
        """Shut the provider down."""
        self._provider.shutdown()
