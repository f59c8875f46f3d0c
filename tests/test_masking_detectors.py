"""Each built-in detector: what it finds, what it leaves, and that its trigger covers it."""

from __future__ import annotations

import re

import pytest

from governed_db.masking import DETECTOR_NAMES, UnknownDetectorError, detector, expand
from governed_db.masking.detectors import PhoneDetector
from governed_db.masking.engine import TriggerEngine

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1c7\n-----END RSA PRIVATE KEY-----"

# (detector, text, the sensitive substring it must find)
POSITIVE = [
    ("email", "Contact john.doe@example.com today", "john.doe@example.com"),
    ("email", "<a.b+tag@mail.example.co.uk>", "a.b+tag@mail.example.co.uk"),
    ("email", "unicode: müller@bücher.de.", "müller@bücher.de"),
    ("email", "@ first, then 0@0.com", "0@0.com"),
    ("phone", "Call +1 415-555-2671 now", "+1 415-555-2671"),
    ("phone", "UK office +44 20 7946 0958.", "+44 20 7946 0958"),
    ("phone", "desk (415) 555-2671", "(415) 555-2671"),
    ("phone", "fax 415.555.2671", "415.555.2671"),
    ("credit_card", "paid with 4111 1111 1111 1111 ok", "4111 1111 1111 1111"),
    ("credit_card", "card=5500-0000-0000-0004;", "5500-0000-0000-0004"),
    ("credit_card", "amex 378282246310005", "378282246310005"),
    ("iban", "to DE89 3704 0044 0532 0130 00 please", "DE89 3704 0044 0532 0130 00"),
    ("iban", "GB82WEST12345698765432", "GB82WEST12345698765432"),
    ("iban", "NL91ABNA0417164300 BANK", "NL91ABNA0417164300"),
    ("us_ssn", "SSN 536-90-4399.", "536-90-4399"),
    ("us_ssn", "ssn: 536 90 4399", "536 90 4399"),
    ("jwt", f"Authorization: Bearer {JWT}", JWT),
    ("aws_access_key", "key AKIAIOSFODNN7EXAMPLE in config", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_secret_key", f"aws secret {AWS_SECRET}", AWS_SECRET),
    ("github_token", "ghp_" + "A1b2" * 9, "ghp_" + "A1b2" * 9),
    ("github_token", "github_pat_" + "x" * 22 + "_" + "Y" * 59, "github_pat_" + "x" * 22),
    ("gitlab_token", "token glpat-abcdefghij0123456789 x", "glpat-abcdefghij0123456789"),
    ("slack_token", "xoxb-123456789012-abcdefABCDEF", "xoxb-123456789012-abcdefABCDEF"),
    ("private_key", f"key:\n{PEM}\nthanks", PEM),
    ("private_key", "-----BEGIN PRIVATE KEY-----\nMIIB truncated", "MIIB truncated"),
    ("password_assignment", "db password=hunter2 ok", "hunter2"),
    ("password_assignment", 'config {"api_key": "s3cr3t value"}', "s3cr3t value"),
    ("password_assignment", "SECRET: 'p@ss w0rd'", "p@ss w0rd"),
    ("password_assignment", "export AUTH_TOKEN=abc.def-123", "abc.def-123"),
]

NEGATIVE = [
    ("email", "price x3 @ $12.40 and user@localhost"),
    ("email", "twitter @handle and a@b"),
    ("phone", "order 4155552671 and id 123456789"),
    ("phone", "at 2024-03-05 12:34:56"),
    ("phone", "version 1.2.3.4 and 10.0.0.1"),
    ("phone", "(555) 123-4567 is fictional"),
    ("credit_card", "4111 1111 1111 1112 fails Luhn"),
    ("credit_card", "1234567890123456 has no brand"),
    ("credit_card", "timestamp 1700000000000 ms"),
    ("iban", "DE89 3704 0044 0532 0130 01 bad check digits"),
    ("iban", "SKU AB12 CDEF GHIJ KLMN"),
    ("us_ssn", "000-12-3456 and 666-12-3456 and 900-12-3456"),
    ("us_ssn", "123456789 bare digits and 2024-03-05"),
    ("jwt", "eyJub3QiOiJqd3QifQ.eyJ4IjoxfQ.abc has no alg"),
    ("aws_access_key", "AKIAIOSFODNN7EXAMPL short, AKIA0000000000000000 not base32"),
    ("aws_secret_key", AWS_SECRET + " without context"),
    ("aws_secret_key", "secret sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709"),
    ("github_token", "ghp_short and gh_abc"),
    ("gitlab_token", "glpat-short"),
    ("slack_token", "xoxb-123"),
    ("private_key", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----"),
    ("password_assignment", "the password policy requires 12 characters"),
    ("password_assignment", "keyboard: 104 keys; token ring"),
]


@pytest.mark.parametrize(("name", "text", "secret"), POSITIVE)
def test_detector_finds(name: str, text: str, secret: str) -> None:
    spans = detector(name).find(text)
    found = [text[s:e] for s, e in spans]
    assert any(secret in f for f in found), found


@pytest.mark.parametrize(("name", "text"), NEGATIVE)
def test_detector_leaves_alone(name: str, text: str) -> None:
    assert detector(name).find(text) == []


@pytest.mark.parametrize(("name", "text", "secret"), POSITIVE)
def test_trigger_fires_where_detector_finds(name: str, text: str, secret: str) -> None:
    det = detector(name)
    engine = TriggerEngine([(t, 0) for t in det.triggers])
    assert engine.owners(text) == {0}
    assert engine.candidates(["nothing here", text, "x"]) == [1]
    for trigger in det.triggers:  # the common subset: Python's re compiles each one too
        re.compile(trigger)


def test_phone_regions() -> None:
    text = "office 020 7946 0958"
    assert detector("phone").find(text) == []
    spans = PhoneDetector(["US", "GB"]).find(text)
    assert [text[s:e] for s, e in spans] == ["020 7946 0958"]


def test_unknown_detector_has_a_hint() -> None:
    with pytest.raises(UnknownDetectorError, match="did you mean 'email'"):
        detector("emial")
    with pytest.raises(UnknownDetectorError):
        expand(["pii", "nope"])


def test_groups_expand_in_order_without_repeats() -> None:
    names = expand(["email", "pii", "secrets"])
    assert names[0] == "email"
    assert sorted(names) == sorted(DETECTOR_NAMES)
