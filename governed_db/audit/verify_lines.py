"""Reading spool lines for verification: safe decoding and the canonical-form check.

Every line must be *exactly* the canonical form of the record it holds
(``canonical.canonical_json``): anything else — a duplicate key (readers
disagree on which one wins), whitespace, reordered keys, an escape where the
canonical form has the raw character, a number out of the value domain — could
make two readers see two different records, and is reported as tampering.

Decoding never recurses and never accepts ``NaN``/``Infinity`` (not JSON):
orjson parses without recursion and refuses more than 1024 levels; a line it
refuses, or one the slower checks would look into, is first measured with
:func:`too_deep` (no recursion either), so a hostile line yields a
*malformed* or *non-canonical* finding, never a crash.

Speed: lines are decoded one by one with orjson (exact line boundaries) and
re-encoded a batch at a time with orjson (keys sorted, integers beyond 2**53
refused); the batch passes when its re-encoding equals ``[`` + the lines joined
by ``,`` + ``]`` (each line being one complete JSON object, equal
concatenations mean equal lines). For strings (tests compare every code
point), integers, booleans, null, arrays and objects orjson writes exactly
``canonical_json``'s bytes. Any other batch is checked line by line, and a line
orjson does not reproduce is judged by ``canonical_json`` itself (and the value
domain). Known gap of the fast path: a float written in orjson's shortest
round-trip form passes (every correct JSON reader decodes it to the same
value); the writer never writes floats.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from governed_db.audit.canonical import canonical_json

__all__ = ["MAX_DEPTH", "Batch", "decode", "noncanonical", "read_batches"]

#: Deepest nesting a record may have (records nest 3-4 levels; identities a few more).
MAX_DEPTH = 64
_BATCH = 4096
_CHUNK = 8 << 20
_MAX_SAFE = 2**53 - 1
_FAST = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_loads = orjson.loads
_dumps = orjson.dumps
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def too_deep(line: bytes, limit: int = MAX_DEPTH) -> bool:
    """True if ``line`` nests arrays/objects more than ``limit`` deep (no recursion)."""
    if line.count(b"[") + line.count(b"{") <= limit:
        return False
    outside = _STRING.sub(b"", line)
    steps = (_STEP[m[0]] for m in _BRACKET.findall(outside))
    return max(itertools.accumulate(steps, initial=0)) > limit


def decode(line: bytes) -> dict[str, Any] | str:
    """The record a line holds, or why it is not one (a short reason)."""
    if too_deep(line):
        return f"nested more than {MAX_DEPTH} levels deep"
    try:
        value = _loads(line)
    except orjson.JSONDecodeError as exc:
        if b"NaN" in line or b"Infinity" in line:
            return "holds NaN or Infinity, which are not JSON"
        return f"not valid JSON ({str(exc).split(':', 1)[0]})"
    if type(value) is not dict:
        return "not a JSON object"
    return value


def in_domain(value: Any, depth: int = 0) -> bool:
    """True if ``value`` holds only strings, ints with |n| < 2**53, bools, null, lists, dicts."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-_MAX_SAFE <= value <= _MAX_SAFE)
    if depth > MAX_DEPTH:
        return False
    if kind is list:
        return all(in_domain(v, depth + 1) for v in value)
    if kind is dict:
        return all(in_domain(v, depth + 1) for v in value.values())
    return False


def is_canonical(line: bytes, value: dict[str, Any]) -> bool:
    """True if ``line`` is exactly ``canonical_json(value)`` and ``value`` is in the domain."""
    try:
        return canonical_json(value) == line and in_domain(value)
    except (ValueError, TypeError, OverflowError):
        return False


def noncanonical(lines: list[bytes], values: list[Any]) -> list[int]:
    """Indexes of the lines that are not the canonical form of their decoded value.

    ``values[i]`` is the decoded record of ``lines[i]``, or a str (not decoded: skipped).
    """
    picked = [i for i, v in enumerate(values) if type(v) is dict]
    if not picked:
        return []
    if len(picked) == len(lines):
        joined = b"[" + b",".join(lines) + b"]"
        objects = values
    else:
        joined = b"[" + b",".join([lines[i] for i in picked]) + b"]"
        objects = [values[i] for i in picked]
    try:
        if _dumps(objects, option=_FAST) == joined:
            return []
    except (orjson.JSONEncodeError, TypeError):
        pass
    return [i for i in picked if not _line_canonical(lines[i], values[i])]


def _line_canonical(line: bytes, value: dict[str, Any]) -> bool:
    try:
        if _dumps(value, option=_FAST) == line:
            return True
    except (orjson.JSONEncodeError, TypeError):
        pass
    return not too_deep(line) and is_canonical(line, value)


class Batch:
    """Up to a few thousand complete lines of one file, and where they start."""

    __slots__ = ("first_lineno", "lines", "partial")

    def __init__(self, first_lineno: int, lines: list[bytes], partial: bytes) -> None:
        self.first_lineno = first_lineno
        self.lines = lines
        self.partial = partial  # an incomplete last line of the file (only in the last batch)


def read_batches(path: Path) -> Iterator[Batch]:
    """The file's complete lines in batches; the last batch carries any partial last line."""
    lineno = 1
    pending = b""
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            data = pending + chunk if pending else chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                pending = data
                continue
            pending = data[cut + 1 :]
            lines = data[:cut].split(b"\n")
            for start in range(0, len(lines), _BATCH):
                part = lines[start : start + _BATCH]
                yield Batch(lineno, part, b"")
                lineno += len(part)
    if pending:
        yield Batch(lineno, [], pending)
