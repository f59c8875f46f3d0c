"""A national phone match inside an international one already found is not validated again.

``+1 415-555-2671`` is found by the international pattern and holds the US
national match ``415-555-2671``: validating that too (``phonenumbers`` costs
tens of microseconds) would mask nothing more. What is masked must be the same
characters as when every match is validated.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governed_db.masking.detectors import PhoneDetector, pii

_PIECES = [
    "+1 415-555-2671",
    "415-555-2671",
    "(415) 555-2671",
    "+44 20 7946 0958",
    "020 7946 0958",
    "+49 30 901820",
    "030 901820",
    "1-800-555-0199",
    "+1 (212) 555-0100 ext 5",
    "call ",
    " or ",
    "-",
    "x",
    "7",
    " ",
    "order 42",
]


def _masked(spans: list[tuple[int, int]]) -> set[int]:
    return {i for s, e in spans for i in range(s, e)}


@pytest.mark.parametrize("regions", [["US"], ["US", "GB", "DE"], ["GB"]])
@given(parts=st.lists(st.sampled_from(_PIECES), max_size=6))
@settings(max_examples=150, deadline=None)
def test_same_characters_as_validating_every_match(regions: list[str], parts: list[str]) -> None:
    text = "".join(parts)
    detector = PhoneDetector(regions)
    found = detector.find(text)
    every = pii._covered
    try:
        pii._covered = lambda spans, start, end: False  # type: ignore[assignment]
        all_validated = detector.find(text)
    finally:
        pii._covered = every
    assert _masked(found) == _masked(all_validated)


def test_an_international_number_is_validated_once() -> None:
    calls: list[tuple[str, Any]] = []
    valid = pii._valid_phone

    def counted(candidate: str, region: str | None) -> bool:
        calls.append((candidate, region))
        return valid(candidate, region)

    pii._valid_phone = counted  # type: ignore[assignment]
    try:
        text = "call +1 415-555-2671 or 212-555-0100"
        spans = PhoneDetector(["US"]).find(text)
    finally:
        pii._valid_phone = valid
    assert [text[s:e] for s, e in spans] == ["+1 415-555-2671", "212-555-0100"]
    assert calls == [("+1 415-555-2671", None), ("212-555-0100", "US")]
