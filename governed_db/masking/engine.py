"""The trigger engine: which of many texts might hold something, in one pass.

Every detector's triggers are joined into one alternation and run over all the
texts of a batch at once, joined by NUL (which PostgreSQL text can't contain).
With `google-re2` installed (a DFA, linear time, ~1-2 ns a byte) this is one
C-level scan per batch; without it, Python's ``re`` runs each trigger over the
joined text, correct but several times slower. :data:`ENGINE` says which.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["ENGINE", "TriggerEngine", "as_text"]

_re2: Any
try:
    _re2 = importlib.import_module("re2")
except ImportError:  # pragma: no cover - depends on the install
    _re2 = None

#: ``"re2"`` or ``"re"``: the library that runs the triggers.
ENGINE = "re2" if _re2 is not None else "re"

_SEP = "\x00"
_BSEP = b"\x00"


def as_text(value: Any) -> str:
    """How the triggers read a value that is not a ``str``.

    Bytes (bytea, or text a custom loader returns as bytes) as UTF-8, else as
    latin-1 (every byte a character); None as ""; anything else as ``str()``.
    """
    if value is None:
        return ""
    t = type(value)
    if t is bytes or t is bytearray or t is memoryview:
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    return str(value)


def _options(*, capture: bool) -> Any:
    opts = _re2.Options()
    opts.max_mem = 64 << 20
    opts.log_errors = False
    opts.never_capture = not capture
    return opts


class TriggerEngine:
    """Compiled triggers, each owned by an index (the detector entry it stands for)."""

    __slots__ = ("_owners", "_patterns", "_re2_any", "_re2_match", "_re2_set", "_sre", "fires")

    def __init__(self, triggers: Sequence[tuple[str, int]]) -> None:
        self._owners = tuple(owner for _, owner in triggers)
        self._patterns = tuple(p for p, _ in triggers)
        self._re2_any: Any = None
        self._re2_match: Any = None
        self._re2_set: Any = None
        self._sre = tuple(re.compile(p) for p in self._patterns)
        self.fires: Callable[[Sequence[Any]], bool] = self._fires
        if _re2 is not None and self._patterns:
            combined = "|".join(f"(?:{p})" for p in self._patterns)
            self._re2_any = _re2.compile(combined, options=_options(capture=False))
            regexp = getattr(self._re2_any, "_regexp", None)
            anchor = getattr(getattr(_re2, "_Anchor", None), "UNANCHORED", None)
            if regexp is not None and anchor is not None and hasattr(regexp, "Match"):
                raw_match = regexp.Match

                def match(buf: bytes, pos: int) -> tuple[int, int] | None:
                    span: tuple[int, int] = raw_match(anchor, buf, pos, len(buf))[0]
                    return None if span[0] < 0 else span

                self._re2_match = match

                def fires(texts: Sequence[Any]) -> bool:
                    try:
                        joined = _SEP.join(texts)
                    except TypeError:
                        joined = _SEP.join(map(as_text, texts))
                    buf = joined.encode("utf-8", "surrogatepass")
                    return bool(raw_match(anchor, buf, 0, len(buf))[0][0] >= 0)

                self.fires = fires
            self._re2_set = _re2.Set.SearchSet(_options(capture=False))
            for p in self._patterns:
                self._re2_set.Add(p)
            self._re2_set.Compile()

    def _search(self, buf: bytes, pos: int) -> tuple[int, int] | None:
        if self._re2_match is not None:
            result: tuple[int, int] | None = self._re2_match(buf, pos)
            return result
        m = self._re2_any.search(buf, pos)
        return None if m is None else (m.start(), m.end())

    def candidates(self, texts: Sequence[Any], *, trusted: bool = False) -> list[int]:
        """Indices (ascending) of the texts where some trigger fires.

        Items that are not ``str`` are read by :func:`as_text` (bytes decoded,
        None as ""). ``trusted`` says no text contains NUL (true of PostgreSQL
        text); else that is checked, and texts holding NUL are always candidates.
        """
        if not texts or not self._patterns:
            return []
        try:
            joined = _SEP.join(texts)
        except TypeError:  # None (NULL), bytes or another type among the texts
            texts = [as_text(t) for t in texts]
            joined = _SEP.join(texts)
            trusted = False  # decoded bytes may hold NUL
        if not trusted and joined.count(_SEP) != len(texts) - 1:
            return [i for i, t in enumerate(texts) if _SEP in t or self.owners(as_text(t))]
        if self._re2_any is None:
            return self._sre_candidates(joined)
        buf = joined.encode("utf-8", "surrogatepass")
        out: list[int] = []
        pos = last = idx = 0
        while (span := self._search(buf, pos)) is not None:
            start = span[0]
            idx += buf.count(_BSEP, last, start)
            last = start
            out.append(idx)
            nxt = buf.find(_BSEP, start)
            if nxt < 0:
                break
            pos = nxt + 1
        return out

    def _fires(self, texts: Sequence[Any]) -> bool:
        """True if a trigger fires in any of a few texts (one row's); Nones are skipped.

        Also available as ``fires``, which is a tighter closure when re2 is there.
        """
        if not self._patterns:
            return False
        try:
            joined = _SEP.join(texts)
        except TypeError:
            joined = _SEP.join(map(as_text, texts))
        if self._re2_any is None:
            return any(p.search(joined) is not None for p in self._sre)
        buf = joined.encode("utf-8", "surrogatepass")
        return self._search(buf, 0) is not None

    def _sre_candidates(self, joined: str) -> list[int]:
        found: set[int] = set()
        for pattern in self._sre:
            pos = last = idx = 0
            while (m := pattern.search(joined, pos)) is not None:
                start = m.start()
                idx += joined.count(_SEP, last, start)
                last = start
                found.add(idx)
                nxt = joined.find(_SEP, start)
                if nxt < 0:
                    break
                pos = nxt + 1
        return sorted(found)

    def owners(self, text: str) -> frozenset[int]:
        """The owners whose triggers fire somewhere in ``text``."""
        if not self._patterns:
            return frozenset()
        if self._re2_set is not None:
            hits = self._re2_set.Match(text.encode("utf-8", "surrogatepass"))
            return frozenset(self._owners[i] for i in hits) if hits else frozenset()
        return frozenset(
            self._owners[i] for i, p in enumerate(self._sre) if p.search(text) is not None
        )
