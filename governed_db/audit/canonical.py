"""Canonical JSON and record hashing: the bytes every signature and hash is over.

The canonical form of a record is::

    json.dumps(value, sort_keys=True, separators=(",", ":"),
               ensure_ascii=False, allow_nan=False).encode("utf-8")

* object keys sorted by code point (all keys we write are ASCII, so this equals
  RFC 8785's UTF-16 ordering), no whitespace anywhere;
* strings as raw UTF-8; only ``"``, ``\\`` and control characters below U+0020
  are escaped (``\\b \\f \\n \\r \\t``, else ``\\u00xx`` in lower-case hex);
* **no floats**: records hold only strings, integers with ``|n| < 2**53``,
  booleans, null, arrays and objects. :func:`jsonable` turns anything else
  (floats, big integers, decimals, dates, bytes, ...) into a string first.

For that value domain the output is identical to RFC 8785 (JCS), so any JCS
library can re-derive it. A record's ``hash`` is the lower-case hex SHA-256 of
the canonical form of the record *without* its ``hash`` and ``sig`` members.

The writer builds the same bytes faster from *fragments* (``"key":value``,
each value encoded as ``json.dumps`` would inside the object): constant parts
of a record are encoded once, and because every top-level key is made of
characters above ``"``, sorting the fragment strings sorts them by key. So
``"{" + ",".join(sorted(fragments)) + "}"`` equals ``canonical_json`` of the
whole record (tests/test_audit_canonical.py checks it byte for byte).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import time
import uuid
from collections.abc import Mapping
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any

__all__ = [
    "GENESIS_PREV",
    "UNHASHED_FIELDS",
    "CanonicalJSON",
    "canonical_json",
    "canonical_text",
    "encode_value",
    "fragment",
    "fragments",
    "jsonable",
    "quoted_timestamp_ns",
    "record_hash",
    "timestamp_ns",
    "utc_timestamp",
]

#: The ``prev`` of a genesis record.
GENESIS_PREV = "0" * 64
#: Members left out of the bytes a record's hash is computed over.
UNHASHED_FIELDS = frozenset({"hash", "sig"})

_MAX_SAFE_INT = 2**53 - 1
_encode = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


#: Top-level keys whose fragments sort like the keys: no character at or below ``"``,
#: nothing JSON would escape.
_SAFE_KEY = re.compile(r"[#-\[\]-~]+")
_safe_keys: set[str] = set()


def canonical_json(value: Any) -> bytes:
    """The canonical UTF-8 bytes of a JSON-able value (see the module docstring)."""
    text = _encode(value)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate somewhere: replace it, keep going
        return _encode(jsonable(value)).encode("utf-8")


class CanonicalJSON(str):
    """Text that already is the canonical JSON of a value (see :func:`canonical_text`).

    Record builders write it into a record as it is instead of encoding it
    again: made once per value that recurs (e.g. a result's masking columns),
    it saves converting and encoding that value for every record.
    """

    __slots__ = ()


def canonical_text(value: Any) -> CanonicalJSON:
    """``value`` reduced by :func:`jsonable` and encoded in canonical form, as text."""
    text = _encode(jsonable(value))
    return CanonicalJSON(text)


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical form of ``record`` minus ``hash`` and ``sig``."""
    body = {k: v for k, v in record.items() if k not in UNHASHED_FIELDS}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def encode_value(value: Any) -> str:
    """``value`` as ``canonical_json`` writes it inside an object (as text, not bytes)."""
    kind = type(value)
    if kind is str:
        return encode_basestring(value)
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is CanonicalJSON:
        encoded: str = value
        return encoded
    return _encode(value)


def fragment(key: str, value: Any) -> str:
    """``"key":value`` for a safe top-level key (see :func:`fragments`)."""
    return f'"{key}":{encode_value(value)}'


def fragments(mapping: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The fragments of a mapping's members, or None if a key is not fragment-safe."""
    out = []
    for key, value in mapping.items():
        if key not in _safe_keys:
            if type(key) is not str or not _SAFE_KEY.fullmatch(key):
                return None
            if len(_safe_keys) < 4096:
                _safe_keys.add(key)
        out.append(f'"{key}":{encode_value(value)}')
    return tuple(out)


def _text(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


def jsonable(value: Any) -> Any:
    """``value`` reduced to the canonical value domain (no floats, no big ints).

    Mappings get string keys, sequences become lists, floats / decimals /
    integers beyond 2**53 become their ``str``, dates ISO 8601, bytes
    ``\\x``-prefixed hex (PostgreSQL's bytea form), anything else ``str()``.
    """
    kind = type(value)
    if kind is str:
        return _text(value)
    if value is None or kind is bool:
        return value
    if kind is dict:
        return {_text(str(k)): jsonable(v) for k, v in value.items()}
    if kind is list:
        return [jsonable(v) for v in value]
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, int):
        return value if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT else str(value)
    if isinstance(value, float | Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {_text(str(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        if isinstance(value, set | frozenset):
            items.sort(key=canonical_json)
        return items
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    return _text(str(value))


def utc_timestamp(when: dt.datetime | None = None) -> str:
    """RFC 3339 UTC timestamp with microseconds, e.g. ``2024-05-01T12:00:00.000001Z``."""
    if when is None:
        return timestamp_ns(time.time_ns())
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_second: list[tuple[int, str]] = [(-1, "")]  # the last second formatted, and its text
_quoted: list[tuple[int, str]] = [(-1, "")]  # the same for quoted_timestamp_ns


def timestamp_ns(ns: int) -> str:
    """:func:`utc_timestamp` of a ``time.time_ns()`` value (the date part cached per second)."""
    seconds, micros = divmod(ns // 1000, 1_000_000)
    cached, prefix = _second[0]
    if cached != seconds:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds))
        _second[0] = (seconds, prefix)
    return f"{prefix}{micros:06d}Z"


def quoted_timestamp_ns(ns: int, _cache: list[tuple[int, str]] = _quoted) -> str:
    """``encode_value(timestamp_ns(ns))``: the timestamp as a JSON string (the writer's).

    The cache holds one (second, prefix) tuple, replaced whole: threads of
    several trails may share it.
    """
    seconds, rest = divmod(ns, 1_000_000_000)
    cached, prefix = _cache[0]
    if cached != seconds:
        prefix = time.strftime('"%Y-%m-%dT%H:%M:%S.', time.gmtime(seconds))
        _cache[0] = (seconds, prefix)
    return f'{prefix}{rest // 1000:06d}Z"'


def b64(data: bytes) -> str:
    """Standard base64 with padding (the encoding of ``sig``)."""
    return base64.b64encode(data).decode("ascii")
