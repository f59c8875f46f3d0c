"""What masking emitted on a connection, so that writes carrying it can be refused.

A script that reads a masked row, changes one field and writes the row back
would store ``j***@example.com`` over the real address. The governor asks
:meth:`MaskedValues.find_in_params` and :meth:`MaskedValues.find_in_text` of
every write and refuses it (rule ``masked-value-write``) when either returns
something. Only text outputs are remembered (``null`` gives None, which can't
be told from a real NULL). Memory is bounded: two generations of at most
``capacity // 2`` values each; the oldest generation is dropped whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MaskedValues"]

# Tokens of SQL text or of a text parameter, and string literals of SQL text.
_TOKEN = re.compile(r"""[^\s'"(),;=|]+""")
_LITERAL = re.compile(r"'((?:[^']|'')*)'|\$([A-Za-z_]\w*|)\$(.*?)\$\2\$", re.DOTALL)
_TRIM = ".,:;!?<>[]{}`"


class MaskedValues:
    """A bounded memory of masked values (and masked-in fragments) a connection emitted."""

    __slots__ = ("_old", "_spaced", "_young", "capacity")

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = max(2, capacity)
        self._young: set[Any] = set()
        self._old: set[Any] = set()
        self._spaced: dict[str, None] = {}

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def __bool__(self) -> bool:
        return bool(self._young or self._old)

    def __contains__(self, value: object) -> bool:
        return isinstance(value, str) and (value in self._young or value in self._old)

    def _rotate(self) -> None:
        if len(self._young) > self.capacity // 2:
            self._old = self._young
            self._young = set()

    def add(self, value: Any) -> None:
        """Remember one emitted value (anything but text is ignored)."""
        if type(value) is str:
            self._young.add(value)
            if len(self._young) > self.capacity // 2:
                self._rotate()

    def update(self, values: Iterable[Any]) -> None:
        """Remember many emitted values at once (a masked column)."""
        young = self._young
        young.update(values)
        young.discard(None)
        self._rotate()

    def add_fragments(self, fragments: Iterable[str]) -> None:
        """Remember the masked pieces put inside a longer text (``j***@example.com``)."""
        for frag in fragments:
            if any(c.isspace() for c in frag):
                self._spaced[frag] = None
                while len(self._spaced) > max(16, self.capacity // 100):
                    del self._spaced[next(iter(self._spaced))]
            else:
                self.add(frag)

    def _in_text(self, text: str) -> str | None:
        if text in self:
            return text
        for m in _TOKEN.finditer(text):
            token = m.group()
            if token in self:
                return token
            trimmed = token.strip(_TRIM)
            if trimmed and trimmed in self:
                return trimmed
        return next((frag for frag in self._spaced if frag in text), None)

    def find_in_params(self, params: Any) -> str | None:
        """A masked value found in query parameters (nested sequences, mappings, Json), or None."""
        if not self:
            return None
        stack = [params]
        while stack:
            p = stack.pop()
            if isinstance(p, str):
                found = self._in_text(p)
                if found is not None:
                    return found
            elif isinstance(p, Mapping):
                stack.extend(p.keys())
                stack.extend(p.values())
            elif isinstance(p, list | tuple | set | frozenset):
                stack.extend(p)
            elif hasattr(p, "obj"):  # psycopg.types.json.Json / Jsonb wrappers
                stack.append(p.obj)
        return None

    def find_in_text(self, sql: str) -> str | None:
        """A masked value found in SQL text (a literal, or a token inside one), or None.

        Looks inside quoted and dollar-quoted literals; pass the text that is
        sent (with client-side bound parameters merged in).
        """
        if not self:
            return None
        for m in _LITERAL.finditer(sql):
            text = m.group(1).replace("''", "'") if m.group(1) is not None else m.group(3)
            found = self._in_text(text)
            if found is not None:
                return found
        return None
