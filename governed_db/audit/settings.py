"""The ``audit`` section: a plain mapping in, validated ``AuditSettings`` out.

Every problem is a ``PolicyError`` whose ``key`` names the setting, e.g.
``audit.sinks[1].url``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from governed_db.errors import PolicyError

__all__ = [
    "SETTINGS_KEYS",
    "AuditSettings",
    "SinkSpec",
    "check_keys",
    "parse_duration",
    "parse_size",
]

DURABILITY = ("strict", "batch", "none")
PARAMETERS = ("off", "hash", "plain")
SIGNING = ("every", "checkpoint")
SINK_TYPES = ("file", "http", "syslog", "postgres", "otlp", "witness", "stdout", "memory")
REMOTE_TYPES = frozenset({"file", "http", "syslog", "postgres", "otlp", "witness"})

#: The keys of the ``audit`` mapping.
SETTINGS_KEYS = (
    "path",
    "durability",
    "batch_ms",
    "fail_closed",
    "redact_literals",
    "parameters",
    "signing",
    "checkpoint_every",
    "checkpoint_seconds",
    "rotate",
    "sinks",
)
_ROTATE_KEYS = ("max_bytes", "max_age")
_COMMON = {"type", "name"}
_REMOTE = {"batch_size", "backoff_initial", "backoff_max"}
_SINK_KEYS: dict[str, set[str]] = {
    "file": {"path", "durability", "batch_ms", "rotate"},
    "http": {"url", "format", "headers", "timeout"} | _REMOTE,
    "syslog": {"address", "facility", "app_name", "timeout"} | _REMOTE,
    "postgres": {"dsn", "table"} | _REMOTE,
    "otlp": {"endpoint", "headers", "timeout"} | _REMOTE,
    "witness": {"url", "table", "headers", "timeout"} | _REMOTE,
    "stdout": {"format"},
    "memory": set(),
}
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
}
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def parse_size(value: Any, key: str) -> int:
    """``1048576``, ``"64MB"``, ``"1GiB"`` -> bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", value)
        if m and m.group(2).lower() in _UNITS and int(m.group(1)) > 0:
            return int(m.group(1)) * _UNITS[m.group(2).lower()]
    raise _error(f'{value!r} is not a size (e.g. 67108864 or "64MB")', key=key)


def parse_duration(value: Any, key: str) -> float:
    """``30``, ``"500ms"``, ``"12h"``, ``"1d"`` -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*", value)
        if m and float(m.group(1)) > 0:
            return float(m.group(1)) * _SECONDS[m.group(2) or "s"]
    raise _error(f'{value!r} is not a duration (e.g. 30, "500ms", "1d")', key=key)


def _error(message: str, *, key: str) -> PolicyError:
    """A PolicyError whose message starts with the setting's dotted key."""
    return PolicyError(f"{key}: {message}", key=key)


def _choice(value: Any, choices: Sequence[str], key: str) -> str:
    if not isinstance(value, str) or value not in choices:
        close = []
        if isinstance(value, str):
            close = difflib.get_close_matches(value, list(choices), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise _error(f"{value!r} is not one of {', '.join(choices)}{hint}", key=key)
    return value


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise _error(f"{value!r} is not true or false", key=key)
    return value


def _int(value: Any, key: str, low: int = 1, high: int = 10**9) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _error(f"{value!r} is not an integer between {low} and {high}", key=key)
    return value


def _str(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise _error(f"{value!r} is not a non-empty string", key=key)
    return value


def _path(value: Any, key: str) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    return _str(value, key)


def check_keys(raw: Mapping[Any, Any], allowed: Sequence[str], key: str, what: str) -> None:
    """Reject a key not in ``allowed``, suggesting the closest one ("did you mean").

    ``key`` is the mapping's own dotted key; the error names ``key.<bad key>``.
    """
    for name in raw:
        if isinstance(name, str) and name in allowed:
            continue
        where = f"{key}.{name}"
        if not isinstance(name, str):
            raise _error(f"keys of {what} are strings, got {name!r}", key=where)
        close = difflib.get_close_matches(name, list(allowed), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise _error(
            f"unknown key {name!r} in {what}{hint}; known keys: {', '.join(sorted(allowed))}",
            key=where,
        )


def _mapping(value: Any, key: str, what: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise _error(f"{what} is a mapping, not {_describe(value)}", key=key)
    return value


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return f"a {type(value).__name__}"


def resolve_secret(value: Any, key: str, environ: Mapping[str, str] | None = None) -> str:
    """A literal, ``env:NAME`` or ``keyring:SERVICE/USER`` -> the value it names."""
    text = _str(value, key)
    env = os.environ if environ is None else environ
    if text.startswith("env:"):
        name = text[4:]
        if not env.get(name):
            raise _error(f"environment variable {name} is not set", key=key)
        return env[name]
    if text.startswith("keyring:"):
        service, _, user = text[8:].partition("/")
        import keyring
        from keyring.errors import KeyringError

        try:
            secret = keyring.get_password(service, user) if user else None
        except KeyringError as exc:
            raise _error(f"keyring lookup {text!r} failed: {exc}", key=key) from exc
        if not secret:
            raise _error(f"nothing stored in keyring under {text[8:]!r}", key=key)
        return str(secret)
    return text


@dataclass(frozen=True, slots=True)
class SinkSpec:
    """One validated entry of ``audit.sinks``; ``key`` locates it for error messages."""

    type: str
    name: str
    options: Mapping[str, Any]
    key: str

    @property
    def remote(self) -> bool:
        """Fed by the forwarder from the spool (as opposed to written inline)."""
        return self.type in REMOTE_TYPES


def _check_sink(raw: Any, key: str) -> tuple[str, dict[str, Any]]:
    raw = _mapping(raw, key, "a sink (with a 'type')")
    if "type" not in raw:
        raise _error(f"a sink needs a type: one of {', '.join(SINK_TYPES)}", key=f"{key}.type")
    kind = _choice(raw["type"], SINK_TYPES, f"{key}.type")
    opts = dict(raw)
    check_keys(opts, sorted(_COMMON | _SINK_KEYS[kind]), key, f"a sink of type {kind}")
    if "name" in opts:
        _str(opts["name"], f"{key}.name")
    if "batch_size" in opts:
        _int(opts["batch_size"], f"{key}.batch_size", 1, 100_000)
    for name in ("backoff_initial", "backoff_max", "timeout"):
        if name in opts:
            parse_duration(opts[name], f"{key}.{name}")
    if kind == "http":
        url = _str(opts.get("url"), f"{key}.url")
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise _error(f"{url!r} is not an http(s) URL", key=f"{key}.url")
        _choice(opts.get("format", "generic"), ("generic", "splunk_hec"), f"{key}.format")
    if kind in ("http", "otlp") and "headers" in opts:
        headers = _mapping(opts["headers"], f"{key}.headers", "headers (name: value)")
        for hname, hvalue in headers.items():
            _str(hname, f"{key}.headers")
            _str(hvalue, f"{key}.headers.{hname}")
    if kind == "otlp" and "endpoint" in opts:
        endpoint = _str(opts["endpoint"], f"{key}.endpoint")
        if urlsplit(endpoint).scheme not in ("http", "https") or not urlsplit(endpoint).netloc:
            raise _error(f"{endpoint!r} is not an http(s) URL", key=f"{key}.endpoint")
    if kind == "syslog":
        addr = _str(opts.get("address"), f"{key}.address")
        parts = urlsplit(addr)
        ok = (parts.scheme in ("udp", "tcp") and parts.hostname and parts.port) or (
            parts.scheme == "unix" and parts.path
        )
        if not ok:
            raise _error(
                f"{addr!r} is not udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH",
                key=f"{key}.address",
            )
        if "facility" in opts:
            from governed_db.audit.sinks.syslog import FACILITIES

            _choice(opts["facility"], tuple(FACILITIES), f"{key}.facility")
        if "app_name" in opts:
            _str(opts["app_name"], f"{key}.app_name")
    if kind == "postgres":
        _str(opts.get("dsn"), f"{key}.dsn")
        table = opts.get("table", "governed_db_audit")
        if not isinstance(table, str) or not _IDENT.match(table):
            raise _error(f"{table!r} is not a table name (schema.table)", key=f"{key}.table")
    if kind == "witness":
        _check_witness(opts, key)
    if kind == "stdout":
        _choice(opts.get("format", "json"), ("json", "rich"), f"{key}.format")
    if kind == "file":
        _str(opts.get("path"), f"{key}.path")
    return kind, opts


def witness_kind(url: str) -> str | None:
    """``postgres`` or ``http`` for a witness address, None if it is neither.

    A PostgreSQL address is a ``postgresql://`` URL or a ``key=value`` conninfo.
    """
    scheme = urlsplit(url).scheme
    if scheme in ("postgresql", "postgres"):
        return "postgres"
    if scheme in ("http", "https") and urlsplit(url).netloc:
        return "http"
    if "=" in url and "://" not in url:
        from psycopg.conninfo import conninfo_to_dict

        try:
            conninfo_to_dict(url)
        except Exception:  # psycopg.ProgrammingError: not a conninfo
            return None
        return "postgres"
    return None


def _check_witness(opts: Mapping[str, Any], key: str) -> None:
    """A witness: a PostgreSQL DSN (``table``) or an http(s) URL (``headers``, ``timeout``)."""
    url = _str(opts.get("url"), f"{key}.url")
    secret = url.startswith(("env:", "keyring:"))  # resolved when the sink is built
    kind = None if secret else witness_kind(url)
    if kind is None and not secret:
        raise _error(
            f"{url!r} is not a witness address: a PostgreSQL DSN (postgresql://... or "
            "key=value; a witness table) or an http(s):// URL (a witness endpoint), or "
            "env:NAME / keyring:NAME holding one",
            key=f"{key}.url",
        )
    table = opts.get("table")
    if table is not None:
        if kind == "http":
            raise _error("'table' is for a PostgreSQL witness, not an HTTP one", key=f"{key}.table")
        if not isinstance(table, str) or not _IDENT.match(table):
            raise _error(f"{table!r} is not a table name (schema.table)", key=f"{key}.table")
    for name in ("headers", "timeout"):
        if name in opts and kind == "postgres":
            raise _error(
                f"{name!r} is for an HTTP witness, not a PostgreSQL one", key=f"{key}.{name}"
            )
    if "headers" in opts:
        headers = _mapping(opts["headers"], f"{key}.headers", "headers (name: value)")
        for hname, hvalue in headers.items():
            _str(hname, f"{key}.headers")
            _str(hvalue, f"{key}.headers.{hname}")


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """Validated audit settings (defaults are the documented ones)."""

    path: Path | None = None
    durability: str = "batch"
    batch_ms: int = 50
    fail_closed: bool = True
    redact_literals: bool = False
    parameters: str = "off"
    signing: str = "checkpoint"
    checkpoint_every: int = 1000
    checkpoint_seconds: float = 5.0
    rotate_bytes: int = 64 * 1024**2
    rotate_seconds: float = 86400.0
    sinks: tuple[SinkSpec, ...] = field(default_factory=tuple)

    @property
    def remote_sinks(self) -> tuple[SinkSpec, ...]:
        """Sinks fed from the spool by the forwarder."""
        return tuple(s for s in self.sinks if s.remote and s.type != "file")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None, key: str = "audit") -> AuditSettings:
        """Validate the ``audit`` mapping (None or empty: in-memory defaults).

        Every key is checked (an unknown one is an error with the closest known
        key suggested) and so is every value's type: a misspelt setting never
        silently leaves the default in place.
        """
        raw = dict(_mapping(raw if raw is not None else {}, key, "the audit settings"))
        check_keys(raw, SETTINGS_KEYS, key, "the audit settings")
        values: dict[str, Any] = {}
        if raw.get("path") is not None:
            values["path"] = Path(_path(raw["path"], f"{key}.path"))
        if "durability" in raw:
            values["durability"] = _choice(raw["durability"], DURABILITY, f"{key}.durability")
        if "batch_ms" in raw:
            values["batch_ms"] = _int(raw["batch_ms"], f"{key}.batch_ms", 1, 60_000)
        for name in ("fail_closed", "redact_literals"):
            if name in raw:
                values[name] = _bool(raw[name], f"{key}.{name}")
        if "parameters" in raw:
            values["parameters"] = _choice(raw["parameters"], PARAMETERS, f"{key}.parameters")
        if "signing" in raw:
            values["signing"] = _choice(raw["signing"], SIGNING, f"{key}.signing")
        if "checkpoint_every" in raw:
            values["checkpoint_every"] = _int(raw["checkpoint_every"], f"{key}.checkpoint_every")
        if "checkpoint_seconds" in raw:
            values["checkpoint_seconds"] = parse_duration(
                raw["checkpoint_seconds"], f"{key}.checkpoint_seconds"
            )
        rotate = raw.get("rotate")
        rotate = {} if rotate is None else _mapping(rotate, f"{key}.rotate", "rotate")
        check_keys(rotate, _ROTATE_KEYS, f"{key}.rotate", "rotate")
        if "max_bytes" in rotate:
            values["rotate_bytes"] = parse_size(rotate["max_bytes"], f"{key}.rotate.max_bytes")
        if "max_age" in rotate:
            values["rotate_seconds"] = parse_duration(rotate["max_age"], f"{key}.rotate.max_age")
        sinks = raw.get("sinks")
        values["sinks"] = cls._sinks([] if sinks is None else sinks, values, key)
        inline = {"memory", "stdout"}
        if "path" not in values and any(s.type not in inline for s in values["sinks"]):
            raise _error(
                "remote sinks are fed from the local spool: set audit.path "
                "(or add a sink of type file)",
                key=f"{key}.path",
            )
        return cls(**values)

    @staticmethod
    def _sinks(raw: Any, values: dict[str, Any], where: str) -> tuple[SinkSpec, ...]:
        if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
            raise _error(f"sinks is a list of mappings, not {_describe(raw)}", key=f"{where}.sinks")
        specs: list[SinkSpec] = []
        names: set[str] = set()
        for i, item in enumerate(raw):
            key = f"{where}.sinks[{i}]"
            kind, opts = _check_sink(item, key)
            if kind == "file":  # the file sink *is* the spool
                if "path" in values:
                    raise _error(
                        "the file sink is the local spool; give either audit.path or one "
                        "file sink, not both",
                        key=f"{key}.path",
                    )
                values["path"] = Path(opts["path"])
                sub = {k: v for k, v in opts.items() if k in ("durability", "batch_ms", "rotate")}
                merged = AuditSettings.from_mapping(sub, key)
                for name in ("durability", "batch_ms", "rotate_bytes", "rotate_seconds"):
                    if name in sub or (name.startswith("rotate") and "rotate" in sub):
                        values[name] = getattr(merged, name)
                continue
            name = str(opts.get("name") or kind)
            if name in names:
                if "name" in opts:
                    raise _error(f"two sinks are named {name!r}", key=f"{key}.name")
                name = f"{kind}{i}"
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                raise _error(f"{name!r}: use letters, digits, _ . -", key=f"{key}.name")
            names.add(name)
            specs.append(SinkSpec(kind, name, opts, key))
        return tuple(specs)
