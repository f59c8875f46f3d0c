"""Secret assignments however their quotes are written, and AWS secret keys in ``key=value``.

JSON text inside JSON text, array and record literals and COPY text escape quotes
(``\\"``), record text and CSV double them (``""``), and COPY of a record does
both (``\\\\""``). The ``password_assignment`` detector finds the value at
every depth, with ``=``, ``:``, ``=>`` or ``:=`` between name and value.
"""

from __future__ import annotations

import json
import re

import pytest

from governed_db.masking import ColumnIdentity, MaskRules, baseline_rules, detector
from governed_db.masking.engine import TriggerEngine

KEY = "k3y-Qq81-Zeta-77"
AWS = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

_inner = json.dumps({"api_key": KEY})  # {"api_key": "k3y-..."}
_nested = json.dumps({"k": _inner})  # JSON text inside JSON text: \"


def _csv(field: str) -> str:
    return '"' + field.replace('"', '""') + '"'


def _record(*fields: str) -> str:
    """PostgreSQL's text form of a record: quotes doubled, backslashes doubled."""
    quoted = ('"' + f.replace("\\", "\\\\").replace('"', '""') + '"' for f in fields)
    return "(" + ",".join(quoted) + ")"


def _copy_text(field: str) -> str:
    """COPY text format: backslashes doubled."""
    return field.replace("\\", "\\\\")


# (text, the secret value that must be found in it)
ASSIGNMENTS = [
    (_inner, KEY),
    (_nested, KEY),  # {"k": "{\"api_key\": \"...\"}"}
    (json.dumps({"k": _nested}), KEY),  # two levels: \\\"
    (_csv(_inner), KEY),  # {""api_key"": ""...""}
    (_csv(_nested), KEY),  # {""k"": ""{\""api_key\"": ...}""}
    (_record("1", _nested), KEY),  # record text of a row holding jsonb text
    (_copy_text(_record("1", _nested)), KEY),  # COPY of a record: \\\\""
    (_copy_text(_nested), KEY),  # COPY text of a jsonb column
    ("{" + _csv("vip") + "," + _csv(_inner) + "}", KEY),  # array literal
    ('{vip,"{\\"api_key\\": \\"' + KEY + '\\"}"}', KEY),  # array text form
    ("config: {'api_key': '" + KEY + "'}", KEY),  # Python repr
    ("{\\'password\\': \\'" + KEY + "\\'}", KEY),  # escaped single quotes
    ('api_key => "' + KEY + '"', KEY),  # Ruby, PHP
    ("password := '" + KEY + "';", KEY),  # Pascal, SQL variables
    ('export API_KEY="' + KEY + '"', KEY),
    ("DB_PASSWORD = " + KEY, KEY),
    ("client_secret:\t" + KEY, KEY),
    ('<add key="x" token="' + KEY + '"/>', KEY),
    ('{"password": "ab\\"cd' + KEY + '"}', KEY),  # an escaped quote inside the value
    ("mypassword=" + KEY + "1", KEY),  # glued on both sides
    ("id-7_secret: " + KEY + "-12", KEY),
    ("auth_token=" + KEY + "&next=/home", KEY),
]


@pytest.mark.parametrize(("text", "secret"), ASSIGNMENTS)
def test_assignment_found_however_quoted(text: str, secret: str) -> None:
    det = detector("password_assignment")
    found = [text[s:e] for s, e in det.find(text)]
    assert any(secret in f for f in found), (text, found)
    engine = TriggerEngine([(t, 0) for t in det.triggers])
    assert engine.candidates(["clean", text]) == [1]


@pytest.mark.parametrize(("text", "secret"), ASSIGNMENTS)
def test_assignment_masked_in_computed_text(text: str, secret: str) -> None:
    plan = MaskRules(baseline_rules()).plan([ColumnIdentity("x", None, 25)])
    (out,) = plan.apply((text,))
    assert secret not in out
    assert "[REDACTED:secret]" in out


def test_assignment_masks_the_value_not_the_structure() -> None:
    det = detector("password_assignment")
    text = '{\\"api_key\\": \\"' + KEY + '\\", \\"user\\": \\"bob\\"}'
    assert [text[s:e] for s, e in det.find(text)] == [KEY]
    text = '{""api_key"": ""' + KEY + '"", ""user"": ""bob""}'
    assert [text[s:e] for s, e in det.find(text)] == [KEY]
    text = "password='a b c' user='bob'"
    assert [text[s:e] for s, e in det.find(text)] == ["a b c"]


NOT_ASSIGNMENTS = [
    "bypass=1 and compass: north",
    "passport: X1234567",
    "The password policy requires 12 characters.",
    "Tokens: 5, keys: 3",
    "keyboard: 104 keys; token ring",
    "Secret Santa draw on 2024-12-01",
    '{"password_policy": "strict"}',
    'see \\"token\\" in the glossary',
]


@pytest.mark.parametrize("text", NOT_ASSIGNMENTS)
def test_not_an_assignment(text: str) -> None:
    assert detector("password_assignment").find(text) == []


AWS_FORMS = [
    f"aws_secret_access_key={AWS}",
    f"AWS_SECRET_ACCESS_KEY={AWS}",
    f"aws_secret_access_key = {AWS}",
    f'aws_secret_access_key="{AWS}"',
    f'{{"aws_secret_access_key": "{AWS}"}}',
    f'{{\\"aws_secret_access_key\\": \\"{AWS}\\"}}',
    f"[default]\naws_access_key_id=AKIAIOSFODNN7EXAMPLE\naws_secret_access_key={AWS}\n",
    f"xaws_secret_access_key={AWS}1",  # glued: a run of 41 base64 characters
    f"my aws key {AWS}",
    f"secret={AWS}==",
    f"aws-secret-context_my aws key {AWS}_21",
]


@pytest.mark.parametrize("text", AWS_FORMS)
def test_aws_secret_key_in_key_value_forms(text: str) -> None:
    det = detector("aws_secret_key")
    found = [text[s:e] for s, e in det.find(text)]
    assert any(AWS in f for f in found), (text, found)
    engine = TriggerEngine([(t, 0) for t in det.triggers])
    assert engine.candidates(["clean", text]) == [1]


@pytest.mark.parametrize(
    "text",
    [
        f"{AWS} without context",
        "secret sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709",  # one case
        "laws and draws " + AWS,  # 'aws' inside words is no context
        "secret " + "A1b2" * 20,  # 80 characters: not a 40-character key
    ],
)
def test_aws_secret_key_needs_context_and_shape(text: str) -> None:
    assert detector("aws_secret_key").find(text) == []


def test_patterns_are_bounded() -> None:
    """No nested quantifiers in the assignment pattern: a hostile value stays fast."""
    det = detector("password_assignment")
    import time

    for text in ['password="' + '\\"' * 5000, "password=" + '"' * 20000, "token:" * 5000]:
        t0 = time.perf_counter()
        det.find(text)
        assert time.perf_counter() - t0 < 0.5, text[:20]
    assert re.compile(det.triggers[0])
