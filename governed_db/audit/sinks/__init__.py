"""Audit sinks, and ``build_sink`` to make one from a validated ``audit.sinks`` entry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from governed_db.audit.settings import SinkSpec, parse_duration, resolve_secret, witness_kind
from governed_db.audit.sinks.base import AuditSink, MemorySink, StdoutSink

__all__ = ["AuditSink", "MemorySink", "StdoutSink", "build_sink"]


def _retry_opts(spec: SinkSpec) -> dict[str, Any]:
    o = spec.options
    out: dict[str, Any] = {"name": spec.name}
    if "batch_size" in o:
        out["batch_size"] = o["batch_size"]
    for key in ("backoff_initial", "backoff_max", "timeout"):
        if key in o:
            out[key] = parse_duration(o[key], f"{spec.key}.{key}")
    return out


def _headers(spec: SinkSpec, environ: Mapping[str, str] | None) -> dict[str, str]:
    raw = spec.options.get("headers") or {}
    return {str(k): resolve_secret(v, f"{spec.key}.headers.{k}", environ) for k, v in raw.items()}


def build_sink(spec: SinkSpec, environ: Mapping[str, str] | None = None) -> AuditSink:
    """Construct the sink a validated spec describes (secrets resolved now)."""
    o = spec.options
    if spec.type == "memory":
        return MemorySink(spec.name)
    if spec.type == "stdout":
        return StdoutSink(spec.name, format=o.get("format", "json"))
    if spec.type == "http":
        from governed_db.audit.sinks.http import HttpSink

        return HttpSink(
            o["url"],
            format=o.get("format", "generic"),
            headers=_headers(spec, environ),
            **_retry_opts(spec),
        )
    if spec.type == "syslog":
        from governed_db.audit.sinks.syslog import FACILITIES, SyslogSink
        from governed_db.errors import PolicyError

        facility = o.get("facility", "local0")
        if facility not in FACILITIES:
            raise PolicyError(f"unknown syslog facility {facility!r}", key=f"{spec.key}.facility")
        return SyslogSink(
            o["address"],
            facility=facility,
            app_name=o.get("app_name", "governed-db"),
            **_retry_opts(spec),
        )
    if spec.type == "postgres":
        from governed_db.audit.sinks.postgres import PostgresSink

        opts = _retry_opts(spec)
        opts.pop("timeout", None)
        return PostgresSink(
            resolve_secret(o["dsn"], f"{spec.key}.dsn", environ),
            table=o.get("table", "governed_db_audit"),
            **opts,
        )
    if spec.type == "otlp":
        from governed_db.audit.sinks.otlp import OtlpSink

        return OtlpSink(
            endpoint=o.get("endpoint"), headers=_headers(spec, environ), **_retry_opts(spec)
        )
    if spec.type == "witness":
        return _witness(spec, environ)
    raise ValueError(f"no sink for type {spec.type!r}")  # pragma: no cover - validated


def _witness(spec: SinkSpec, environ: Mapping[str, str] | None) -> AuditSink:
    """A ``PostgresWitness`` or an ``HttpWitness``, by the (resolved) address."""
    from governed_db.audit.witness import DEFAULT_TABLE, HttpWitness, PostgresWitness
    from governed_db.errors import PolicyError

    o = spec.options
    url = resolve_secret(o["url"], f"{spec.key}.url", environ)
    kind = witness_kind(url)
    opts = _retry_opts(spec)
    if kind == "postgres":
        if "headers" in o or "timeout" in o:
            raise PolicyError(
                "'headers' and 'timeout' are for an HTTP witness, but the address is a "
                "PostgreSQL DSN",
                key=f"{spec.key}.url",
            )
        opts.pop("timeout", None)
        return PostgresWitness(url, table=o.get("table", DEFAULT_TABLE), **opts)
    if kind == "http":
        if "table" in o:
            raise PolicyError(
                "'table' is for a PostgreSQL witness, but the address is an http(s) URL",
                key=f"{spec.key}.url",
            )
        return HttpWitness(url, headers=_headers(spec, environ), **opts)
    raise PolicyError(  # the secret held something else (never shown: it may be a password)
        "the witness address is neither a PostgreSQL DSN nor an http(s):// URL",
        key=f"{spec.key}.url",
    )
