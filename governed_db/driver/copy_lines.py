"""COPY's text and CSV lines (PostgreSQL's default layout) split into values and back.

Only the defaults are read: text with tab delimiters, ``\\N`` for NULL and
backslash escapes; CSV with ``,``, ``"`` quoting (doubled to escape) and an
unquoted empty field for NULL. In COPY TO output a tab inside a text value is
always escaped, so splitting on tabs is exact. Masked values are written back
in the same layout (CSV values always quoted).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["LineMasker", "csv_line_masker", "text_line_masker"]

LineMasker = Callable[[str], str]
RowMasker = Callable[[tuple[Any, ...]], tuple[Any, ...]]

_UNESCAPE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_TEXT_ESCAPE = re.compile(r"\\(?:([bfnrtv\\])|([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.S)
_ESCAPE = str.maketrans(
    {"\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
)


def _unescape(match: re.Match[str]) -> str:
    simple, octal, hexa, other = match.groups()
    if simple is not None:
        return _UNESCAPE[simple]
    if octal is not None:
        return chr(int(octal, 8))
    if hexa is not None:
        return chr(int(hexa, 16))
    return str(other)


def _text_value(field: str) -> str | None:
    if field == "\\N":
        return None
    return _TEXT_ESCAPE.sub(_unescape, field) if "\\" in field else field


def _text_field(value: Any) -> str:
    return "\\N" if value is None else str(value).translate(_ESCAPE)


def text_line_masker(mask_row: RowMasker) -> LineMasker:
    """Mask one line of COPY text output (``a\\tb\\n``) value by value."""

    def mask(line: str) -> str:
        body, newline = (line[:-1], "\n") if line.endswith("\n") else (line, "")
        fields = body.split("\t")
        values = tuple(_text_value(f) for f in fields)
        masked = mask_row(values)
        if masked == values:
            return line
        out = [
            f if m is v else _text_field(m) for f, v, m in zip(fields, values, masked, strict=True)
        ]
        return "\t".join(out) + newline

    return mask


def _csv_fields(body: str) -> list[tuple[str | None, bool]] | None:
    """``[(value, quoted)]`` of one CSV record, or None if it is not well formed."""
    fields: list[tuple[str | None, bool]] = []
    i, n = 0, len(body)
    while True:
        if i < n and body[i] == '"':
            parts, i = [], i + 1
            while True:
                end = body.find('"', i)
                if end < 0:
                    return None
                parts.append(body[i:end])
                if end + 1 < n and body[end + 1] == '"':
                    parts.append('"')
                    i = end + 2
                    continue
                i = end + 1
                break
            fields.append(("".join(parts), True))
        else:
            end = body.find(",", i)
            end = n if end < 0 else end
            raw = body[i:end]
            if '"' in raw:
                return None
            fields.append((raw if raw else None, False))
            i = end
        if i == n:
            return fields
        if body[i] != ",":
            return None
        i += 1
        if i == n:
            fields.append((None, False))
            return fields


def csv_line_masker(mask_row: RowMasker, header: bool) -> LineMasker:
    """Mask one line of COPY CSV output value by value (the header line passes as is)."""
    state = {"header": header}

    def mask(line: str) -> str:
        if state["header"]:
            state["header"] = False
            return line
        body, newline = (line[:-1], "\n") if line.endswith("\n") else (line, "")
        fields = _csv_fields(body)
        if fields is None:
            raise ValueError("a COPY CSV line that is not well formed")
        values = tuple(v for v, _ in fields)
        masked = mask_row(values)
        if masked == values:
            return line
        out = []
        for (value, quoted), new in zip(fields, masked, strict=True):
            if new is None:
                out.append("")
            elif new is value and not quoted:
                out.append(str(value))
            else:
                out.append('"' + str(new).replace('"', '""') + '"')
        return ",".join(out) + newline

    return mask
