"""The scanner: masks what the detectors find inside values, keeping their shape.

Text keeps everything but the sensitive substrings. JSON (``dict``/``list``
from json/jsonb, or text that is JSON) and arrays (``list``/``tuple``) keep
their structure: each string inside is scanned, keys included, and a key that
a column-name rule matches has its value masked whole. Bytes (bytea, or text a
custom loader returns as bytes) that are UTF-8 are masked like text and
encoded back; other bytes are masked whole when a detector finds something in
their ASCII. A value of another type is scanned by its ``str()``, which stands
for it once masked. Many values are scanned at once
(:meth:`Scanner.scan_values`): one trigger pass over all of them, then the
precise detectors only where a trigger fired.

Where a trigger fires in a value longer than ``max_chars``, or the detectors
run past ``budget`` seconds on a value, it is masked whole
(``[REDACTED:unscanned]``): fail closed. (A value where no trigger fires is
clean whatever its length: the trigger pass is linear.)
"""

from __future__ import annotations

import bisect
import datetime
import decimal
import json
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from governed_db.masking.detectors import Detector, ScanTimeout
from governed_db.masking.detectors.pii import _valid_card
from governed_db.masking.engine import TriggerEngine, as_text
from governed_db.masking.methods import MaskFn, MaskingError
from governed_db.masking.rules import Globs

__all__ = ["Found", "Hits", "KeyRule", "Scanner", "SpanRule"]

#: The (rule id, method) pairs that masked something in one value.
Hits = frozenset[tuple[str, str]]


class Found:
    """A masked value, the (rule, method) pairs that masked it, and the masked-in pieces."""

    __slots__ = ("fragments", "hits", "value")

    def __init__(self, value: Any, hits: Hits = frozenset(), fragments: list[str] | None = None):
        self.value = value
        self.hits = hits
        self.fragments: list[str] = [] if fragments is None else fragments


_JSON = -1  # owner id of the JSON triggers
UNSCANNED = "[REDACTED:unscanned]"
_BYTES = (bytes, bytearray, memoryview)
#: Types whose values hold no text a detector could find (ints are checked for cards).
_NO_TEXT = frozenset({
    type(None), bool, float, decimal.Decimal, datetime.date, datetime.datetime, datetime.time,
    datetime.timedelta, uuid.UUID,
})  # fmt: skip


_ASCII = bytes(range(128)) + bytes(128)  # bytes.translate: non-ASCII bytes to NUL


_SPACES = bytes(range(1, 128)).rjust(128, b" ") + b" " * 128  # NUL, non-ASCII to space


def _bytes_trigger_text(v: bytes | bytearray | memoryview) -> str:
    """What the trigger pass reads of bytes (NUL separates values there).

    UTF-8 text as it is, NUL as SOH; other bytes as their ASCII, the rest spaces
    (the detectors read only their ASCII). Either lets triggers fire only more
    than on what the detectors read, never less.
    """
    raw = bytes(v)
    try:
        return raw.decode("utf-8").replace("\x00", "\x01")
    except UnicodeDecodeError:
        return raw.translate(_SPACES).decode("ascii")


class SpanRule:
    """A detector and the method that masks what it finds, for one rule."""

    __slots__ = ("detector", "mask", "method", "rule_id")

    def __init__(self, detector: Detector, mask: MaskFn, rule_id: str, method: str) -> None:
        self.detector = detector
        self.mask = mask
        self.rule_id = rule_id
        self.method = method


class KeyRule:
    """A column-name rule applied to JSON object keys: mask the key's value whole, or reveal."""

    __slots__ = ("globs", "mask", "method", "rule_id")

    def __init__(self, globs: Globs, mask: MaskFn | None, rule_id: str, method: str) -> None:
        self.globs = globs
        self.mask = mask  # None: reveal
        self.rule_id = rule_id
        self.method = method


def _key_trigger(globs: Globs) -> str:
    """A trigger for ``"key":`` in JSON text, for keys matching ``globs``."""
    alts = []
    for p in globs.patterns:
        body = "".join(
            r'[^"\x00]*' if c == "*" else r'[^"\x00]' if c == "?" else _escape(c) for c in p
        )
        alts.append(body)
    return '"(?i:' + "|".join(alts) + r')"\s*:'


def _escape(c: str) -> str:
    return c if c.isalnum() or c == "_" else "\\" + c if c.isascii() else c


class Scanner:
    """Detectors with their methods, and JSON key rules, compiled for scanning."""

    __slots__ = ("_card", "_engine", "_fallback", "_key_cache", "_keys", "_rules",
                 "budget", "max_chars")  # fmt: skip

    def __init__(
        self,
        rules: Sequence[SpanRule],
        key_rules: Sequence[KeyRule] = (),
        *,
        max_chars: int = 1_000_000,
        budget: float = 0.25,
    ) -> None:
        self._rules = tuple(rules)
        self._keys = tuple(key_rules)
        self._key_cache: dict[str, KeyRule | None] = {}
        self.max_chars = max_chars
        self.budget = budget
        fallback = self._rules[0] if self._rules else None
        self._fallback: tuple[str, str] = (
            (fallback.rule_id, "redact") if fallback else ("unscanned", "redact")
        )
        self._card = next((r for r in self._rules if r.detector.name == "credit_card"), None)
        triggers = [(t, i) for i, r in enumerate(self._rules) for t in r.detector.triggers]
        if any(k.mask is not None for k in self._keys):
            triggers += [(_key_trigger(k.globs), _JSON) for k in self._keys if k.mask]
        triggers.append((r"\\u00[2-7][0-9a-fA-F]", _JSON))
        self._engine = TriggerEngine(triggers)

    # --- many values at once -------------------------------------------------------------

    def scan_texts(self, texts: Sequence[Any], *, trusted: bool = False) -> dict[int, Found]:
        """Masked values by index, for the strings (or Nones) in ``texts`` that changed.

        Each entry is a :class:`Found`. A value that is not a ``str`` (a custom
        loader's) is read as ``str(value)`` by the triggers and walked like JSON.
        ``trusted``: no text holds NUL (PostgreSQL text can't).
        """
        out: dict[int, Found] = {}
        for i in self._engine.candidates(texts, trusted=trusted):
            text = texts[i]
            found = self.mask_text(text) if type(text) is str else self.mask_value(text)
            if found is not None:
                out[i] = found
        return out

    @property
    def fires(self) -> Callable[[Sequence[Any]], bool]:
        """``fires(texts)``: True if a trigger fires in any of a row's texts (or Nones)."""
        return self._engine.fires

    def scan_values(self, values: Sequence[Any]) -> dict[int, Found]:
        """Like :meth:`scan_texts` for values of any type: text, JSON, arrays, numbers."""
        texts: list[str] = []
        ends: list[int] = []
        owners: list[int] = []
        rewrite: set[int] = set()
        for i, v in enumerate(values):
            t = type(v)
            if t is str:
                if "\x00" in v:
                    rewrite.add(i)
                    continue
                texts.append(v)
                ends.append(len(texts))
                owners.append(i)
            elif t is dict or t is list or t is tuple:
                if self._leaves(v, texts):
                    rewrite.add(i)
                ends.append(len(texts))
                owners.append(i)
            elif t is int:
                if self._card is not None and abs(v) >= 10**12:
                    rewrite.add(i)
            elif t not in _NO_TEXT:
                if self._leaves(v, texts):
                    rewrite.add(i)
                ends.append(len(texts))
                owners.append(i)
        for leaf in self._engine.candidates(texts, trusted=True):
            rewrite.add(owners[bisect.bisect_right(ends, leaf)])
        out: dict[int, Found] = {}
        for i in sorted(rewrite):
            found = self.mask_value(values[i])
            if found is not None:
                out[i] = found
        return out

    def _leaves(self, value: Any, into: list[str]) -> bool:
        """Append the strings inside ``value``; True if a key rule or a NUL needs a rewrite."""
        needs = False
        stack = [value]
        while stack:
            v = stack.pop()
            t = type(v)
            if t is str:
                if "\x00" in v:
                    needs = True
                else:
                    into.append(v)
            elif t is dict:
                for k, x in v.items():
                    if type(k) is str:
                        if self._keys and self._key_rule(k) is not None:
                            needs = True
                        stack.append(k)
                    stack.append(x)
            elif t is list or t is tuple:
                stack.extend(v)
            elif t is int:
                if self._card is not None and abs(v) >= 10**12:
                    needs = True
            elif t in _NO_TEXT:
                pass
            elif isinstance(v, dict):  # subclasses, walked as their base
                stack.append(dict(v))
            elif isinstance(v, list | tuple):
                stack.extend(v)
            elif isinstance(v, _BYTES):
                into.append(_bytes_trigger_text(v))
            else:  # str subclasses, other types: by their text
                text = as_text(v)
                if "\x00" in text:
                    needs = True
                else:
                    into.append(text)
        return needs

    # --- one value ---------------------------------------------------------------------------

    def mask_value(self, value: Any) -> Found | None:
        """What masking ``value`` (of any type) gives, or None if nothing in it is sensitive."""
        found = Found(value)
        new = self._walk(value, found)
        if new is value and not found.hits:
            return None
        found.value = new
        return found

    def _walk(self, v: Any, acc: Found) -> Any:
        t = type(v)
        if t is str:
            found = self.mask_text(v)
            if found is None:
                return v
            acc.hits |= found.hits
            acc.fragments.extend(found.fragments)
            return found.value
        if t is dict:
            out = {}
            changed = False
            for k, x in v.items():
                nk = self._walk(k, acc) if type(k) is str else k
                rule = self._key_rule(k) if type(k) is str and self._keys else None
                if rule is None:
                    nx = self._walk(x, acc)
                elif rule.mask is None or x is None:
                    nx = x
                else:
                    nx = self._apply(rule.mask, x, rule.rule_id, rule.method)
                    acc.hits |= {(rule.rule_id, rule.method)}
                    if isinstance(nx, str):
                        acc.fragments.append(nx)
                changed = changed or nk is not k or nx is not x
                out[nk] = nx
            return out if changed else v
        if t is list or t is tuple:
            items = [self._walk(x, acc) for x in v]
            if all(a is b for a, b in zip(items, v, strict=True)):
                return v
            return items if t is list else tuple(items)
        if t is int:
            if self._card is not None and abs(v) >= 10**12:
                digits = str(abs(v))
                if len(digits) <= 19 and _valid_card(digits):
                    card = self._card
                    acc.hits |= {(card.rule_id, card.method)}
                    masked = self._apply(card.mask, str(v), card.rule_id, card.method)
                    acc.fragments.append(masked)
                    return masked
            return v
        if t in _NO_TEXT:
            return v
        if isinstance(v, _BYTES):
            return self._walk_bytes(v, acc)
        # A subclass of str, dict, list or tuple is walked as its base; another type
        # (a custom loader's) by its text. Where something is found, the masked base
        # value (or text) stands for it; a namedtuple (a composite type) is rebuilt.
        if isinstance(v, dict):
            base: Any = dict(v)
        elif isinstance(v, list):
            base = list(v)
        elif isinstance(v, tuple):
            base = tuple(v)
        else:
            base = str(v)
        new = self._walk(base, acc)
        if new is base:
            return v
        make = getattr(type(v), "_make", None)
        return make(new) if isinstance(v, tuple) and make is not None else new

    def _walk_bytes(self, v: bytes | bytearray | memoryview, acc: Found) -> Any:
        """Bytes that are UTF-8 text are masked in place and encoded back. Other bytes
        are read as latin-1 (every byte a character): where a trigger fires and a
        detector finds something in their ASCII (the rest read as NUL), they are
        masked whole (``[REDACTED:<category>]`` as bytes): fail closed."""
        raw = bytes(v)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            found = self.mask_text(text)
            if found is None:
                return v
            acc.hits |= found.hits
            acc.fragments.extend(found.fragments)
            masked: str = found.value
            return masked.encode("utf-8")
        ascii_text = raw.translate(_ASCII).decode("ascii")
        owners = self._engine.owners(ascii_text)
        if not owners:
            return v
        spans = None if len(raw) > self.max_chars else self._binary_spans(ascii_text, owners)
        if spans is None:
            token, hit = UNSCANNED, self._fallback
        elif spans:
            rule = self._rules[min(spans)[2]]
            token, hit = f"[REDACTED:{rule.detector.category}]", (rule.rule_id, "redact")
        else:
            return v
        acc.hits |= {hit}
        acc.fragments.append(token)
        return token.encode()

    def _binary_spans(
        self, ascii_text: str, owners: frozenset[int]
    ) -> list[tuple[int, int, int]] | None:
        """What the detectors find in the ASCII of bytes that are not text.

        Other bytes become NUL, which no pattern crosses: what random binary data
        holds by chance leans on bytes text would not have (an "email" of latin-1
        letters), and on mixed case (``f@f.VsJogZ``), so an email whose top-level
        domain mixes cases doesn't count here.
        """
        spans = self._spans(ascii_text, owners)
        if not spans:
            return spans
        out = []
        for s, e, k in spans:
            if self._rules[k].detector.name == "email":
                tld = ascii_text[s:e].rsplit(".", 1)[-1]
                if not (tld.islower() or tld.isupper()):
                    continue
            out.append((s, e, k))
        return out

    def _key_rule(self, key: str) -> KeyRule | None:
        cache = self._key_cache
        if key in cache:
            return cache[key]
        found = next((k for k in self._keys if k.globs.match(key)), None)
        if len(cache) >= 4096:
            cache.clear()
        cache[key] = found
        return found

    @staticmethod
    def _apply(mask: MaskFn, value: Any, rule_id: str, method: str) -> Any:
        try:
            return mask(value)
        except MaskingError:
            raise
        except Exception as exc:
            raise MaskingError(rule_id, method, f"the method raised {type(exc).__name__}") from None

    def mask_text(self, text: str) -> Found | None:
        """What masking one string gives, or None if nothing in it is sensitive."""
        owners = self._engine.owners(text)
        if not owners:
            return None
        if len(text) > self.max_chars:
            return Found(UNSCANNED, frozenset([self._fallback]), [UNSCANNED])
        if _JSON in owners and text.lstrip()[:1] in ("{", "["):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict | list):
                found = self.mask_value(parsed)
                if found is not None:
                    found.value = json.dumps(found.value, ensure_ascii="\\u" in text)
                return found
        spans = self._spans(text, owners)
        if spans is None:
            return Found(UNSCANNED, frozenset([self._fallback]), [UNSCANNED])
        if not spans:
            return None
        return self._replace(text, spans)

    def _spans(self, text: str, owners: frozenset[int]) -> list[tuple[int, int, int]] | None:
        """What the detectors whose triggers fired find: (start, end, rule); None on timeout."""
        deadline = time.perf_counter() + self.budget
        spans: list[tuple[int, int, int]] = []
        try:
            for k in owners:
                if k != _JSON:
                    spans.extend((s, e, k) for s, e in self._rules[k].detector.find(text, deadline))
        except ScanTimeout:
            return None
        return spans

    def _replace(self, text: str, spans: list[tuple[int, int, int]]) -> Found:
        spans.sort(key=lambda s: (s[0], -s[1]))
        merged: list[list[int]] = []
        for s, e, k in spans:
            if merged and s < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e, k])
        in_json = text.lstrip()[:1] in ("{", "[")
        parts: list[str] = []
        found = Found(text)
        pos = 0
        for s, e, k in merged:
            rule = self._rules[k]
            rep = self._apply(rule.mask, text[s:e], rule.rule_id, rule.method)
            if not isinstance(rep, str):
                raise MaskingError(rule.rule_id, rule.method, "the method did not return text")
            if in_json and ('"' in rep or "\\" in rep):
                rep = json.dumps(rep)[1:-1]
            parts.append(text[pos:s])
            parts.append(rep)
            found.hits |= {(rule.rule_id, rule.method)}
            found.fragments.append(rep)
            pos = e
        parts.append(text[pos:])
        found.value = "".join(parts)
        return found
