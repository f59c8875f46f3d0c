"""PII detectors: email, phone, payment card, IBAN, US SSN.

Checksums and numbering rules come from maintained libraries: ``stdnum.luhn``
(cards), ``stdnum.iban`` (mod 97 and each country's format), ``stdnum.us.ssn``
(area/group/serial rules) and ``phonenumbers`` (Google's numbering metadata).
Patterns are bounded: no nested quantifiers, no unbounded backtracking.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import phonenumbers
from stdnum import iban as std_iban
from stdnum import luhn
from stdnum.iso7064 import mod_97_10
from stdnum.us import ssn as std_ssn

from governed_db.masking.detectors.base import Detector, RegexDetector, Span, check_deadline

__all__ = ["CardDetector", "EmailDetector", "PhoneDetector", "iban_detector", "ssn_detector"]

# --- email ---------------------------------------------------------------------------------

_LOCAL = re.compile(r"[\w.%+-]{1,64}\Z")
_DOMAIN = re.compile(r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.){1,8}[^\W\d_]{2,63}(?![\w-])")


class EmailDetector(Detector):
    """``local@domain.tld``: anchored on each ``@``, expanded both ways within RFC limits."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("email", "email", [r"@[^\s@\x00.]+\.[^\s@\x00.]"])

    def find(self, text: str, deadline: float = float("inf")) -> list[Span]:
        spans: list[Span] = []
        at = text.find("@")
        count = 0
        while at >= 0:
            count += 1
            if count & 63 == 0:
                check_deadline(deadline)
            local = _LOCAL.search(text, max(0, at - 64), at) if at else None
            domain = _DOMAIN.match(text, at + 1)
            if local is not None and domain is not None:
                start = local.start()
                while start < at and text[start] == ".":
                    start += 1
                part = text[start:at]
                if part and not part.endswith(".") and ".." not in part:
                    spans.append((start, domain.end()))
            at = text.find("@", at + 1)
        return spans


# --- phone ---------------------------------------------------------------------------------

_INTL = re.compile(r"(?<![\w+])\+\d[\d ().-]{5,22}\d(?!\d)", re.ASCII)
_NANP = re.compile(
    r"(?<![\w+.-])(?:1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w-]|\.\d)",
    re.ASCII,
)
_NATIONAL = re.compile(
    r"(?<![\w+.-])\(?0\d{1,4}\)?[ .-]?\d{2,4}(?:[ .-]?\d{2,4}){1,3}(?![\w-])", re.ASCII
)
_SEPARATORS = re.compile(r"[ .-]")


def _valid_phone(candidate: str, region: str | None) -> bool:
    digits = sum(c.isdigit() for c in candidate)
    if not 7 <= digits <= 15 or candidate.count("(") != candidate.count(")"):
        return False
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(number))


def _shrink(candidate: str) -> list[str]:
    """The candidate, then without its last separated group(s): greedy matches overreach."""
    out = [candidate]
    for _ in range(3):
        cut = max((m.start() for m in _SEPARATORS.finditer(candidate)), default=-1)
        if cut <= 0:
            break
        candidate = candidate[:cut].rstrip(" .-(")
        out.append(candidate)
    return out


class PhoneDetector(Detector):
    """International numbers (``+CC ...``) for every country; national formats for ``regions``.

    National numbers must be written with separators (``(415) 555-2671``,
    ``020 7946 0958``): a bare run of digits is an id, not a phone. Every
    candidate must be a valid number by ``phonenumbers``.
    """

    __slots__ = ("regions",)

    def __init__(self, regions: Sequence[str] = ("US",)) -> None:
        self.regions = tuple(r.upper() for r in regions)
        triggers = [r"\+\d[\d ().-]{5}", r"\d{3}(?:\) ?|[ .-])\d{3}[ .-]\d{4}"]
        if any(r not in ("US", "CA") for r in self.regions):
            triggers.append(r"0\d{1,4}\)?[ .-]?\d{2,4}[ .-]?\d{2,4}")
        super().__init__("phone", "phone", triggers)

    def find(self, text: str, deadline: float = float("inf")) -> list[Span]:
        spans: list[Span] = []
        for m in _INTL.finditer(text):
            check_deadline(deadline)
            for cand in _shrink(m.group()):
                if _valid_phone(cand, None):
                    spans.append((m.start(), m.start() + len(cand)))
                    break
        if "US" in self.regions or "CA" in self.regions:
            for m in _NANP.finditer(text):
                check_deadline(deadline)
                if _valid_phone(m.group(), "US"):
                    spans.append(m.span())
        others = [r for r in self.regions if r not in ("US", "CA")]
        if others:
            for m in _NATIONAL.finditer(text):
                check_deadline(deadline)
                if sum(c.isdigit() for c in m.group()) >= 9 and any(
                    _valid_phone(m.group(), r) for r in others
                ):
                    spans.append(m.span())
        return spans


# --- payment cards -------------------------------------------------------------------------

# Issuer identification number ranges of the card brands in use (first 1-6 digits).
_IIN = re.compile(
    r"4"  # Visa
    r"|5[1-5]|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720"  # Mastercard
    r"|3[47]"  # American Express
    r"|6011|64[4-9]|65|62"  # Discover, UnionPay
    r"|35(?:2[89]|[3-8]\d)"  # JCB
    r"|3(?:0[0-59]|[689])"  # Diners Club
    r"|5[06-9]|6\d"  # Maestro and other 6-series
)
_CARD = re.compile(r"(?<![0-9A-Za-z-])\d{1,19}(?:[ -]\d{1,19}){0,39}(?![0-9A-Za-z])", re.ASCII)


def _valid_card(candidate: str) -> bool:
    seps = {c for c in candidate if not c.isdigit()}
    if len(seps) > 1:
        return False
    digits = candidate.replace(" ", "").replace("-", "")
    if not 13 <= len(digits) <= 19 or _IIN.match(digits) is None:
        return False
    if seps and any(len(g) < 3 for g in re.split(r"[ -]", candidate)):
        return False
    return bool(luhn.is_valid(digits))


_GROUP = re.compile(r"\d+")


def _card_spans(run: str) -> list[Span]:
    """Windows of whole digit groups in a run of groups that are valid card numbers.

    A run can hold a card between other numbers (``0000 4111 1111 1111 1111``):
    every window of 13-19 digits is checked, and the valid ones are returned.
    """
    if len(run) <= 23 and _valid_card(run):
        return [(0, len(run))]
    groups = [m.span() for m in _GROUP.finditer(run)]
    spans: list[Span] = []
    for i, (start, _) in enumerate(groups):
        digits = 0
        for j in range(i, len(groups)):
            digits += groups[j][1] - groups[j][0]
            if digits > 19:
                break
            if digits >= 13 and _valid_card(run[start : groups[j][1]]):
                spans.append((start, groups[j][1]))
    return spans


class CardDetector(Detector):
    """13-19 digits, optionally grouped by one kind of separator, not inside a word
    (a hex digest); brand prefix and Luhn."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("credit_card", "card", [r"\d(?:[ -]?\d){12}"])

    def find(self, text: str, deadline: float = float("inf")) -> list[Span]:
        spans: list[Span] = []
        for count, m in enumerate(_CARD.finditer(text)):
            if count & 63 == 63:
                check_deadline(deadline)
            spans.extend((m.start() + a, m.start() + b) for a, b in _card_spans(m.group()))
        return spans


# --- IBAN ----------------------------------------------------------------------------------


def _valid_iban(candidate: str) -> Span | bool:
    """Valid as matched, or after dropping trailing space-separated groups."""
    text = candidate
    while len(text) >= 15:
        compact = text.replace(" ", "")
        if mod_97_10.is_valid(compact[4:] + compact[:4]) and std_iban.is_valid(compact):
            return True if text == candidate else (0, len(text))
        cut = text.rfind(" ")
        if cut < 0:
            break
        text = text[:cut]
    return False


def iban_detector() -> RegexDetector:
    """IBAN, compact or grouped by spaces: ``stdnum.iban`` (mod 97 + country format)."""
    return RegexDetector(
        "iban",
        "iban",
        [r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){4}"],
        r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])",
        _valid_iban,
    )


# --- US SSN --------------------------------------------------------------------------------


def _valid_ssn(candidate: str) -> bool:
    return bool(std_ssn.is_valid(candidate[:3] + "-" + candidate[4:6] + "-" + candidate[7:]))


def ssn_detector() -> RegexDetector:
    """US SSN written ``123-45-6789`` (or with spaces); bare 9-digit runs are ids."""
    return RegexDetector(
        "us_ssn",
        "ssn",
        [r"\d{3}[- ]\d{2}[- ]\d{4}"],
        r"(?<![0-9A-Za-z-])\d{3}([- ])\d{2}\1\d{4}(?![0-9A-Za-z-])",
        _valid_ssn,
    )
