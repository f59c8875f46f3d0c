"""OTLP sink: behind the optional ``otel`` extra."""

from __future__ import annotations

import importlib.util

import pytest

from governed_db.audit import AuditSettings, Signer
from governed_db.audit.sinks import build_sink
from governed_db.errors import AuditError
from tests.audit_helpers import trail


@pytest.mark.skipif(
    importlib.util.find_spec("opentelemetry") is not None, reason="opentelemetry is installed"
)
def test_missing_extra_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = AuditSettings.from_mapping(
        {"path": "x", "sinks": [{"type": "otlp", "endpoint": "http://127.0.0.1:4318/v1/logs"}]}
    )
    with pytest.raises(AuditError, match=r"pip install 'governed-db\[otel\]'"):
        build_sink(settings.sinks[0])
    with pytest.raises(AuditError, match="otel"):
        trail(tmp_path / "s", Signer.generate(), sinks=[{"type": "otlp"}])
