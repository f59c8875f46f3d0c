"""What masking emitted on a connection, so that writes carrying it can be refused.

A script that reads a masked row, changes one field and writes the row back
would store ``j***@example.com`` over the real address. The governor asks
:meth:`MaskedValues.find_in_params` and :meth:`MaskedValues.find_in_text` of
every write and refuses it (rule ``masked-value-write``) when either returns
something. Only text outputs are remembered (``null`` gives None, which can't
be told from a real NULL). Memory is bounded: values are hashed (when a
write is checked) into two generations of ``capacity // 2``, the oldest dropped
whole; not yet hashed, at most about twice ``capacity`` are kept, newest first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["MaskedValues"]

# Tokens of SQL text or of a text parameter, and string literals of SQL text.
_TOKEN = re.compile(r"""[^\s'"(),;=|]+""")
_LITERAL = re.compile(r"'((?:[^']|'')*)'|\$([A-Za-z_]\w*|)\$(.*?)\$\2\$", re.DOTALL)
_TRIM = ".,:;!?<>[]{}`"


class MaskedValues:
    """A bounded memory of masked values (and masked-in fragments) a connection emitted."""

    __slots__ = ("_batches", "_batches_n", "_old", "_singles", "_spaced", "_young", "capacity")

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = max(2, capacity)
        self._young: set[Any] = set()
        self._old: set[Any] = set()
        self._spaced: dict[str, None] = {}
        # What the fetch path emits lands here first, unhashed (a list append, or a
        # masked column kept by reference); it is hashed into the sets only when a
        # write is checked. The oldest is dropped unhashed to stay bounded.
        self._singles: list[Any] = []
        self._batches: list[list[Any]] = []
        self._batches_n = 0

    def _flush(self) -> None:
        singles = self._singles[:]
        del self._singles[:]  # the same list: emitters hold its append
        batches, self._batches, self._batches_n = self._batches, [], 0
        half = self.capacity // 2
        for items in [*batches, singles]:
            for start in range(0, len(items), half):
                young = self._young
                young.update(items[start : start + half])
                young.discard(None)
                if len(young) >= half:
                    self._old = young
                    self._young = set()

    def __len__(self) -> int:
        self._flush()
        return len(self._young) + len(self._old)

    def __bool__(self) -> bool:
        return bool(self._singles or self._batches or self._young or self._old)

    def __contains__(self, value: object) -> bool:
        if self._singles or self._batches:
            self._flush()
        return isinstance(value, str) and (value in self._young or value in self._old)

    def add(self, value: Any) -> None:
        """Remember one emitted value (anything but text is ignored)."""
        if type(value) is str:
            self._singles.append(value)
            if len(self._singles) > 2 * self.capacity:
                self._trim()

    def update(self, values: Iterable[Any]) -> None:
        """Remember many emitted values at once (a masked column, kept by reference)."""
        items = values if type(values) is list else list(values)
        self._batches.append(items)
        self._batches_n += len(items)
        while len(self._batches) > 1 and self._batches_n - len(self._batches[0]) >= self.capacity:
            self._batches_n -= len(self._batches.pop(0))

    def _trim(self) -> None:
        if len(self._singles) > 2 * self.capacity:
            del self._singles[: len(self._singles) - self.capacity]

    def emitter(self) -> tuple[Callable[[Any], None], Callable[[], None]]:
        """``(emit, trim)`` for a hot loop: ``emit(value)`` remembers one value
        (any type; only text is ever matched), ``trim()`` keeps memory bounded
        and is to be called every few thousand values."""

        return self._singles.append, self._trim

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
            elif isinstance(p, bytes | bytearray | memoryview):  # a masked bytea value
                found = self._in_text(bytes(p).decode("utf-8", "replace"))
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
