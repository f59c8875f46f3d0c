"""Sensitive values glued to their neighbours are still found.

``concat_ws('-', label, value, id)``, ``concat_ws('_', ...)`` and ``'x' || value
|| '1'`` glue a value to ``-``, ``_``, letters or digits. What a detector needs
for precision is its own evidence (a checksum, a prefix, a shape), not a word
boundary, so each is found glued on the left (anything but a digit that would
continue another number) and on the right (anything, a single digit included).
tests/test_masking_false_positives_glued.py measures what that costs.
"""

from __future__ import annotations

import pytest

from governed_db.masking import ColumnIdentity, MaskRules, baseline_rules, detector
from governed_db.masking.engine import TriggerEngine

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
GITHUB = "ghp_" + "R4nd0mT0k3n" * 3 + "abc"
GITHUB_PAT = "github_pat_11ABCDEFG0123456789abc_" + "Qw3rTy" * 9
GITLAB = "glpat-Zx9Yw8Vu7Ts6Rq5Po4Nm"
SLACK = "xoxb-2048123456-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"

# (detector, value, what must not survive: the value itself unless given)
VALUES = [
    ("email", "alice.smith@example.com", None),
    ("email", "bob.jones+vip@corp.example.org", None),
    ("credit_card", "4111 1111 1111 1111", None),
    ("credit_card", "5500-0000-0000-0004", None),
    ("credit_card", "378282246310005", None),
    ("credit_card", "6011111111111117", None),
    ("credit_card", "3782 822463 10005", None),
    ("us_ssn", "536-90-4399", None),
    ("us_ssn", "401 23 4567", None),
    ("phone", "+1 415-555-2671", None),
    ("phone", "(650) 253-0000", None),
    ("phone", "212.555.0187", None),
    ("phone", "+44 20 7946 0958", None),
    ("iban", "DE89 3704 0044 0532 0130 00", None),
    ("iban", "GB82WEST12345698765432", None),
    ("jwt", JWT, None),
    ("github_token", GITHUB, None),
    ("github_token", GITHUB_PAT, None),
    ("gitlab_token", GITLAB, None),
    ("slack_token", SLACK, None),
    ("aws_access_key", "AKIAIOSFODNN7EXAMPLE", None),
    ("aws_access_key", "ASIAQWERTY234567ABCD", None),
]

# How queries glue a value: (left, right)
GLUES = {
    "hyphen": ("label-", "-17"),
    "underscore": ("label_", "_17"),
    "letters": ("x", "y"),
    "letter-digit": ("x", "1"),
    "concat_ws-hyphen-id": ("card-visa-spaced-", "-7"),
    "slash": ("a/", "/b"),
    "digit-right-only": ("", "1"),
    "upper-letters": ("REF", "x"),
}


def _cases() -> list[object]:
    out = []
    for name, value, needle in VALUES:
        for glue, (left, right) in GLUES.items():
            if name == "aws_access_key" and right[:1].isupper():
                continue  # an uppercase letter after it makes a longer uppercase word
            out.append(pytest.param(name, left + value + right, needle or value,
                                    id=f"{name}-{value[:12]}-{glue}"))  # fmt: skip
    return out


def _normal(text: str) -> str:
    return "".join(c for c in text if c.isalnum())


@pytest.mark.parametrize(("name", "text", "value"), _cases())
def test_glued_value_is_found(name: str, text: str, value: str) -> None:
    det = detector(name)
    spans = det.find(text)
    assert spans, text
    covered = set()
    for s, e in spans:
        covered.update(range(s, e))
    start = text.index(value)
    # every letter and digit of the value lies in a found span
    missing = [
        i for i in range(start, start + len(value)) if text[i].isalnum() and i not in covered
    ]
    assert not missing, (text, [text[s:e] for s, e in spans])
    engine = TriggerEngine([(t, 0) for t in det.triggers])
    assert engine.candidates(["clean", text, "x"]) == [1]


@pytest.mark.parametrize(("name", "text", "value"), _cases())
def test_glued_value_is_masked(name: str, text: str, value: str) -> None:
    plan = MaskRules(baseline_rules()).plan([ColumnIdentity("k", None, 25)])
    (out,) = plan.apply((text,))
    assert value not in out
    digits = _normal(value)
    if name in ("credit_card", "us_ssn", "iban"):
        assert digits not in _normal(out)


def test_card_with_a_digit_glued_on_the_left_is_not_tried() -> None:
    """``'1' || card`` is not found: ids with a leading digit would pass as cards too often."""
    det = detector("credit_card")
    assert det.find("14111111111111111") == []
    assert det.find("x3782822463100051") != []  # a digit on the right is tried


def test_glued_email_keeps_the_address_only() -> None:
    det = detector("email")
    for text, email in [
        ("alice@example.com-ref", "alice@example.com"),
        ("alice@example.com_1", "alice@example.com"),
        ("alice@example.com1", "alice@example.com"),
        ("<alice@mail.example.co.uk>", "alice@mail.example.co.uk"),
    ]:
        assert [text[s:e] for s, e in det.find(text)] == [email]


def test_glued_card_masks_the_card_not_the_glue() -> None:
    plan = MaskRules(baseline_rules()).plan([ColumnIdentity("k", None, 25)])
    assert plan.apply(("x3782822463100051",)) == ("x***********00051",)
    assert plan.apply(("ref-4111 1111 1111 1111-7",)) == ("ref-**** **** **** 1111-7",)
    assert plan.apply(("a4111 1111 1111 11111",)) == ("a**** **** **** 11111",)


# Precision: what gluing must not turn into a finding.
NOT_FOUND = [
    ("credit_card", "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
    ("credit_card", "deadbeef4111111111111111cafebabe00112233"),  # a card inside a hex blob
    ("credit_card", "12345678-1234-1234-1234-123456789012"),  # a UUID of digits
    ("credit_card", "5802-6345-9498-606"),  # not how cards are grouped (4-4-4-3 ok, Luhn no)
    ("credit_card", "580102634-59498606"),  # 9-8: not how cards are printed
    ("credit_card", "1348640372634513"),  # a microsecond timestamp
    ("credit_card", "EAN4006381333931"),
    ("us_ssn", "INV-2024-12-0001"),  # year, month, sequence
    ("us_ssn", "lot 2024-03-001234"),
    ("us_ssn", "v12.2.466-77-6589"),  # a version chain
    ("us_ssn", "536-90-439912"),  # two digits more is another number
    ("phone", "10.212.555.0187"),  # dotted: an address, not a phone
    ("phone", "1-800-555-12345678"),
    ("phone", "ISBN 978-3-16-148410-0"),
    ("aws_access_key", "ASIAPACIFICREGIONSALES2024"),
    ("aws_access_key", "ACCAOUNTINGDEPTQ4REPORT"),
    ("aws_access_key", "xASIAPACIFICREGIONSx"),  # glued, no digit
    ("github_token", "ghp_short_and_gh_abc"),
    ("email", "qty12@3.50each"),
    ("email", "meeting@10am-roomB"),
    ("iban", "SKU-AB12CDEFGHIJKLMN"),
    ("iban", "xDE89370400440532013001y"),  # check digits fail
]


@pytest.mark.parametrize(("name", "text"), NOT_FOUND)
def test_glue_does_not_create_findings(name: str, text: str) -> None:
    assert detector(name).find(text) == [], text


def test_the_leak_matrix_concatenations() -> None:
    """The shapes of tests/test_masking_leaks.py, on every detector at once."""
    plan = MaskRules(baseline_rules()).plan([ColumnIdentity("k", None, 25)])
    for name, value, _ in VALUES:
        for text in (
            f"{name}-{value}-11",  # concat_ws('-', label, c1, id)
            f"{name}_{value}_11",  # concat_ws('_', label, c1, id)
            f"x{value}1",  # 'x' || c1 || '1'
        ):
            (out,) = plan.apply((text,))
            assert value not in out, (text, out)


def test_grouped_card_with_a_short_last_group_and_a_glued_digit() -> None:
    # Found by the glued-value property test: Amex printed 4-4-4-3, then || '1'.
    from governed_db.masking.detectors import detector

    spans = detector("credit_card").find(" -3700 0000 0000 0021 ", float("inf"))
    assert spans, "the card must be found with the glued digit left out"
