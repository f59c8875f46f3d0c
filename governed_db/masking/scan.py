"""The scanner: masks what the detectors find inside values, keeping their shape.

Text keeps everything but the sensitive substrings. JSON (``dict``/``list``
from json/jsonb, or text that is JSON) and arrays (``list``/``tuple``) keep
their structure: each string inside is scanned, keys included, and a key that
a column-name rule matches has its value masked whole. Many values are
scanned at once (:meth:`Scanner.scan_values`): one trigger pass over all of
them, then the precise detectors only where a trigger fired.

Where a trigger fires in a value longer than ``max_chars``, or the detectors
run past ``budget`` seconds on a value, it is masked whole
(``[REDACTED:unscanned]``): fail closed. (A value where no trigger fires is
clean whatever its length: the trigger pass is linear.)
"""

from __future__ import annotations

import bisect
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from governed_db.masking.detectors import Detector, ScanTimeout
from governed_db.masking.detectors.pii import _valid_card
from governed_db.masking.engine import TriggerEngine
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
            elif t is int and self._card is not None and abs(v) >= 10**12:
                rewrite.add(i)
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
            elif t is int and self._card is not None and abs(v) >= 10**12:
                needs = True
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
        if t is int and self._card is not None and abs(v) >= 10**12:
            digits = str(abs(v))
            if len(digits) <= 19 and _valid_card(digits):
                card = self._card
                acc.hits |= {(card.rule_id, card.method)}
                masked = self._apply(card.mask, str(v), card.rule_id, card.method)
                acc.fragments.append(masked)
                return masked
        return v

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
        if len(text) > self.max_chars:
            return Found(UNSCANNED, frozenset([self._fallback]), [UNSCANNED])
        owners = self._engine.owners(text)
        if not owners:
            return None
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
        deadline = time.perf_counter() + self.budget
        spans: list[tuple[int, int, int]] = []
        try:
            for k in owners:
                if k != _JSON:
                    spans.extend((s, e, k) for s, e in self._rules[k].detector.find(text, deadline))
        except ScanTimeout:
            return Found(UNSCANNED, frozenset([self._fallback]), [UNSCANNED])
        if not spans:
            return None
        return self._replace(text, spans)

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
