"""The built-in masking baseline, as data shaped like the policy's ``masking:`` section.

Secrets everywhere (by column name and by detector) and PII everywhere (email,
phone, card, SSN, IBAN by common column names and by detector). Column-name
rules come first: a column they match is masked whole; every other text-like
column is scanned by the detectors. The same names also match JSON object keys
inside scanned values (``row_to_json(customers)``).
"""

from __future__ import annotations

from typing import Any

from governed_db.masking.rules import MaskRule

__all__ = ["BASELINE_MASKING", "baseline_rules"]

_SECRET_NAMES = [
    "password", "*_password", "password_hash", "*_password_hash", "password_digest",
    "passwd", "*_passwd", "pwd", "*_pwd", "passphrase",
    "secret", "*_secret", "secret_key", "*_secret_key", "*_secret_access_key",
    "token", "*_token", "token_hash", "*_token_hash",
    "api_key", "*_api_key", "apikey", "*_apikey", "access_key", "*_access_key",
    "private_key", "*_private_key", "credentials", "*_credentials",
]  # fmt: skip
_EMAIL_NAMES = ["email", "*_email", "email_address", "*_email_address", "e_mail"]
_PHONE_NAMES = [
    "phone", "*_phone", "phone_number", "*_phone_number", "phone_no", "mobile",
    "*_mobile", "mobile_number", "telephone", "*_telephone", "tel", "fax", "msisdn",
]  # fmt: skip
_CARD_NAMES = [
    "card_number", "*_card_number", "card_no", "*_card_no", "cc_number", "ccnum",
    "credit_card", "*_credit_card", "credit_card_number", "pan", "card_pan",
]  # fmt: skip
_SSN_NAMES = ["ssn", "*_ssn", "social_security_number", "*_social_security_number"]
_IBAN_NAMES = ["iban", "*_iban", "iban_number"]

#: The baseline as the YAML will say it (``masking:`` with ``rules:``).
BASELINE_MASKING: dict[str, Any] = {
    "rules": [
        {"id": "baseline-secret-columns", "column_names": _SECRET_NAMES,
         "method": "redact", "category": "secret"},
        {"id": "baseline-email-columns", "column_names": _EMAIL_NAMES,
         "method": "email", "category": "email"},
        {"id": "baseline-phone-columns", "column_names": _PHONE_NAMES,
         "method": "partial", "options": {"keep_first": 0, "keep_last": 2},
         "category": "phone"},
        {"id": "baseline-card-columns", "column_names": _CARD_NAMES,
         "method": "last4", "category": "card"},
        {"id": "baseline-ssn-columns", "column_names": _SSN_NAMES,
         "method": "redact", "category": "ssn"},
        {"id": "baseline-iban-columns", "column_names": _IBAN_NAMES,
         "method": "partial", "options": {"keep_first": 2, "keep_last": 4},
         "category": "iban"},
        {"id": "baseline-secrets-detected", "detectors": ["secrets"], "method": "redact"},
        {"id": "baseline-email-detected", "detectors": ["email"], "method": "email"},
        {"id": "baseline-card-detected", "detectors": ["credit_card"], "method": "last4"},
        {"id": "baseline-phone-detected", "detectors": ["phone"], "method": "partial",
         "options": {"keep_first": 0, "keep_last": 2}},
        {"id": "baseline-pii-detected", "detectors": ["us_ssn", "iban"], "method": "redact"},
    ],
}  # fmt: skip


def baseline_rules() -> tuple[MaskRule, ...]:
    """The baseline's rules as :class:`MaskRule` values, in order."""
    return tuple(MaskRule.from_dict(rule) for rule in BASELINE_MASKING["rules"])
