"""What a detector is: a cheap trigger that says "maybe here", and a precise check.

A detector's ``triggers`` are regular expressions in the common subset of RE2
and Python's ``re`` (no look-arounds, no back-references). The scanning engine
runs every detector's triggers over many values at once and calls
:meth:`Detector.find` only on the values where one fired, so a trigger must
match wherever ``find`` would find something. ``find`` may use any bounded
Python pattern plus a structural or checksum validation.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

__all__ = ["Detector", "RegexDetector", "ScanTimeout", "Span"]

#: (start, end) of a sensitive substring.
Span = tuple[int, int]


class ScanTimeout(Exception):
    """A detector ran past its time budget; the caller masks the whole value."""


def check_deadline(deadline: float) -> None:
    """Raise :class:`ScanTimeout` once ``time.perf_counter()`` passes ``deadline``."""
    if time.perf_counter() > deadline:
        raise ScanTimeout


class Detector:
    """Finds one kind of sensitive value (``category``) in text."""

    __slots__ = ("category", "name", "triggers")

    def __init__(self, name: str, category: str, triggers: Sequence[str]) -> None:
        self.name = name
        self.category = category
        self.triggers = tuple(triggers)

    def find(self, text: str, deadline: float = float("inf")) -> list[Span]:
        """The spans of ``text`` that hold a sensitive value."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class RegexDetector(Detector):
    """A bounded pattern whose matches (group ``group``) pass ``validate``."""

    __slots__ = ("_group", "_pattern", "_validate")

    def __init__(
        self,
        name: str,
        category: str,
        triggers: Sequence[str],
        pattern: str,
        validate: Callable[[str], Span | bool] | None = None,
        *,
        group: int | str = 0,
        flags: int = re.ASCII,
    ) -> None:
        super().__init__(name, category, triggers)
        self._pattern = re.compile(pattern, flags)
        self._validate = validate
        self._group = group

    def find(self, text: str, deadline: float = float("inf")) -> list[Span]:
        spans: list[Span] = []
        for count, m in enumerate(self._pattern.finditer(text)):
            if count & 63 == 63:
                check_deadline(deadline)
            start, end = m.span(self._group)
            if start < 0:
                continue
            if self._validate is None:
                spans.append((start, end))
                continue
            verdict = self._validate(text[start:end])
            if verdict is True:
                spans.append((start, end))
            elif verdict:
                # a narrower (start, end) inside the match, relative to it
                spans.append((start + verdict[0], start + verdict[1]))
        return spans
