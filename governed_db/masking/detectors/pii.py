"""PII detectors: email, phone, payment card, IBAN, US SSN.

Checksums and numbering rules come from maintained libraries: ``stdnum.luhn``
(cards), ``stdnum.iban`` (mod 97 and each country's format), ``stdnum.us.ssn``
(area/group/serial rules) and ``phonenumbers`` (Google's numbering metadata).
Patterns are bounded: no nested quantifiers, no unbounded backtracking.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import phonenumbers
from stdnum import iban as std_iban
from stdnum import luhn
from stdnum.iso7064 import mod_97_10
from stdnum.us import ssn as std_ssn

from governed_db.masking.detectors.base import Detector, RegexDetector, Span, check_deadline

__all__ = [
    "CardDetector",
    "EmailDetector",
    "IbanDetector",
    "PhoneDetector",
    "iban_detector",
    "ssn_detector",
]

# --- email ---------------------------------------------------------------------------------

_LOCAL = re.compile(r"[\w.%+-]{1,64}\Z")
# The top-level domain is letters only, so what follows it (a digit, ``-``, ``_``: glued by
# concatenation, ``alice@example.com-ref``) is not part of the address.
_DOMAIN = re.compile(r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.){1,8}[^\W\d_]{2,63}")


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

# Numbers are found glued to letters, ``_`` and ``-`` on either side (``'x' || phone``,
# ``concat_ws('-', label, phone, id)``) and to one digit on the right (``phone || '1'``,
# then trimmed). On the left, a digit, ``+`` or ``.`` (or a digit and ``-``) continues
# another number (an IP address, a version, a part number): no phone starts there.
_INTL = re.compile(r"(?<![+\d])\+\d[\d ().-]{5,22}\d", re.ASCII)
_NANP = re.compile(
    r"(?<![\d+.])(?<!\d-)(?:1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}(?!\.\d|\d\d)",
    re.ASCII,
)
_NATIONAL = re.compile(
    r"(?<![\d+.])(?<!\d-)\(?0\d{1,4}\)?[ .-]?\d{2,4}(?:[ .-]?\d{2,4}){1,3}", re.ASCII
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


def _covered(spans: list[Span], start: int, end: int) -> bool:
    """True if ``start:end`` lies inside one of ``spans``."""
    return any(s <= start and end <= e for s, e in spans)


def _shrink(candidate: str) -> list[str]:
    """The candidate, then without a digit glued on the right, then without its last
    separated group(s): greedy matches overreach."""
    out = [candidate]
    if len(candidate) > 2 and candidate[-2:].isdigit():
        out.append(candidate[:-1])
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
        # A national match inside a number already found (``+1 415-555-2671`` holds
        # ``415-555-2671``) would mask nothing more: it is not validated again.
        if "US" in self.regions or "CA" in self.regions:
            for m in _NANP.finditer(text):
                check_deadline(deadline)
                if not _covered(spans, *m.span()) and _valid_phone(m.group(), "US"):
                    spans.append(m.span())
        others = [r for r in self.regions if r not in ("US", "CA")]
        if others:
            for m in _NATIONAL.finditer(text):
                check_deadline(deadline)
                if _covered(spans, *m.span()):
                    continue
                for cand in _shrink(m.group()):
                    if sum(c.isdigit() for c in cand) >= 9 and any(
                        _valid_phone(cand, r) for r in others
                    ):
                        spans.append((m.start(), m.start() + len(cand)))
                        break
        return spans


# --- payment cards -------------------------------------------------------------------------

# Issuer identification number ranges of the card brands in use (first 1-6 digits), and
# the lengths each brand issues.
_BRANDS: tuple[tuple[re.Pattern[str], frozenset[int]], ...] = tuple(
    (re.compile(prefix), frozenset(lengths))
    for prefix, lengths in (
        (r"4", (13, 16, 19)),  # Visa
        (r"5[1-5]|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720", (16,)),  # Mastercard
        (r"3[47]", (15,)),  # American Express
        (r"35(?:2[89]|[3-8]\d)", range(16, 20)),  # JCB
        (r"3(?:0[0-59]|[689])", range(14, 20)),  # Diners Club
        (r"6|5[06-9]", range(13, 20)),  # Discover, UnionPay, Maestro and other 6-series
    )
)
# A run of digits, in groups joined by single spaces or hyphens.
_RUN = re.compile(r"\d(?:[ -]?\d)*")
_GROUP = re.compile(r"\d+")
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_HEX = frozenset("0123456789abcdefABCDEF")


def _card_grouping(groups: list[str]) -> bool:
    """How card numbers are printed: groups of 4 (the last 1-4), or 4-6-5 / 4-6-4."""
    sizes = [len(g) for g in groups]
    if all(n == 4 for n in sizes[:-1]) and 1 <= sizes[-1] <= 4:
        return True
    return sizes in ([4, 6, 5], [4, 6, 4])


def _valid_card(candidate: str) -> bool:
    """13-19 digits of a brand's length that pass Luhn; if separated, by one kind of
    separator and grouped as cards are printed."""
    seps = {c for c in candidate if not c.isdigit()}
    if len(seps) > 1:
        return False
    digits = candidate.replace(" ", "").replace("-", "")
    if not 13 <= len(digits) <= 19:
        return False
    for prefix, lengths in _BRANDS:
        if prefix.match(digits) is not None:
            if len(digits) not in lengths:
                return False
            break
    else:
        return False
    if seps and not _card_grouping(re.split(r"[ -]", candidate)):
        return False
    return bool(luhn.is_valid(digits))


def _card_spans(run: str, deadline: float = float("inf")) -> list[Span]:
    """Windows of a run of digit groups that are valid card numbers.

    A run can hold a card between other numbers (``0000 4111 1111 1111 1111``):
    every window of whole groups with 13-19 digits is checked. Concatenation can
    glue a digit after a card (``'4111 1111 1111 1111' || '1'``): a window may
    also end one digit short of its last group (a group of 4 or more if the
    window has several: ``3700 0000 0000 002`` || ``1``). Not on the left: ids with a
    leading digit (a GTIN-14's indicator, the century of a timestamp, a
    snowflake) would pass as a card glued to a digit several times as often
    (see tests/test_masking_false_positives_glued.py).
    """
    if _valid_card(run):
        return [(0, len(run))]
    groups = [m.span() for m in _GROUP.finditer(run)]
    spans: list[Span] = []
    for i, (start, _) in enumerate(groups):
        if i & 63 == 63:
            check_deadline(deadline)
        digits = 0
        for group_start, end in itertools.islice(groups, i, None):
            digits += end - group_start
            if digits > 20:
                break
            if 13 <= digits <= 19 and _valid_card(run[start:end]):
                spans.append((start, end))
            elif (
                digits >= 14
                and end - group_start > (1 if group_start == start else 3)
                and _valid_card(run[start : end - 1])
            ):
                spans.append((start, end - 1))
    return spans


def _hex_blob(text: str, start: int, end: int) -> bool:
    """True if the digits at ``start:end`` lie in a hex word of 20+ characters (a digest)."""
    a, b = start, end
    while a > 0 and text[a - 1].isalnum():
        a -= 1
    while b < len(text) and text[b].isalnum():
        b += 1
    if (a, b) == (start, end) or b - a < 20:
        return False
    return all(c in _HEX for c in text[a:b])


class CardDetector(Detector):
    """13-19 digits, optionally grouped by one kind of separator; brand prefix and length,
    and Luhn.

    Found glued to letters, ``_`` and ``-`` (``'x' || card``), and with one digit
    glued after it. Runs inside hex digests and UUIDs don't count.
    """

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("credit_card", "card", [r"\d(?:[ -]?\d){12}"])

    def find(self, text: str, deadline: float = float("inf")) -> list[Span]:
        spans: list[Span] = []
        uuids: list[Span] | None = None
        for count, m in enumerate(_RUN.finditer(text)):
            if count & 63 == 63:
                check_deadline(deadline)
            run = m.group()
            if len(run) < 13:
                continue
            base = m.start()
            found = _card_spans(run, deadline)
            if not found:
                continue
            if uuids is None:
                uuids = [u.span() for u in _UUID.finditer(text)] if "-" in text else []
            for a, b in found:
                start, end = base + a, base + b
                if _hex_blob(text, start, end) or any(u < end and start < v for u, v in uuids):
                    continue
                spans.append((start, end))
        return spans


# --- IBAN ----------------------------------------------------------------------------------


_IBAN_START = re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}")


def _iban_span(candidate: str) -> int:
    """The length of the longest prefix of ``candidate`` that is a valid IBAN, or 0.

    The candidate may run on into what was glued to it (``iban || '1'``, the next
    word): every length an IBAN can have is tried, and only a country's own
    length passes ``stdnum.iban`` (mod 97 and the country's format).
    """
    ends = [i + 1 for i, c in enumerate(candidate) if c != " "]
    for n in range(min(34, len(ends)), 14, -1):
        end = ends[n - 1]
        compact = candidate[:end].replace(" ", "")
        if mod_97_10.is_valid(compact[4:] + compact[:4]) and std_iban.is_valid(compact):
            return end
    return 0


class IbanDetector(Detector):
    """IBAN, compact or grouped by spaces: ``stdnum.iban`` (mod 97 + country format).

    Found glued to anything on either side (``'x' || iban || '1'``): the
    country code, the check digits and the country's length are the evidence.
    """

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("iban", "iban", [r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){4}"])

    def find(self, text: str, deadline: float = float("inf")) -> list[Span]:
        spans: list[Span] = []
        pos = 0
        count = 0
        while (m := _IBAN_START.search(text, pos)) is not None:
            count += 1
            if count & 63 == 0:
                check_deadline(deadline)
            length = _iban_span(m.group())
            if length:
                spans.append((m.start(), m.start() + length))
                pos = m.start() + length
            else:
                pos = m.start() + 1
        return spans


def iban_detector() -> IbanDetector:
    """The IBAN detector."""
    return IbanDetector()


# --- US SSN --------------------------------------------------------------------------------


def _valid_ssn(candidate: str) -> bool:
    return bool(std_ssn.is_valid(candidate[:3] + "-" + candidate[4:6] + "-" + candidate[7:]))


def ssn_detector() -> RegexDetector:
    """US SSN written ``123-45-6789`` (or with spaces); bare 9-digit runs are ids.

    Found glued to letters, ``_`` and ``-`` on either side and to one digit on the
    right (``ssn || '1'``). A digit, a digit and ``-``, or ``.`` on the left continue
    another number: ``2024-12-0001`` is a year's sequence number, not an SSN.
    """
    return RegexDetector(
        "us_ssn",
        "ssn",
        [r"\d{3}[- ]\d{2}[- ]\d{4}"],
        r"(?<![\d.])(?<!\d-)\d{3}([- ])\d{2}\1\d{4}(?!\d\d)",
        _valid_ssn,
    )
