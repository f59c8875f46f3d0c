"""Secret detectors: tokens with a known shape, private keys and ``password=`` assignments.

All of them report the category ``secret``. Shapes follow the issuers'
documented formats (GitHub, GitLab, Slack, AWS); a JWT must have a header that
decodes to a JSON object with an ``alg``; an AWS secret key counts only in
the context of ``aws``/``secret`` in the same value.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from governed_db.masking.detectors.base import Detector, RegexDetector, Span, check_deadline

__all__ = [
    "AwsSecretKeyDetector",
    "PrivateKeyDetector",
    "assignment_detector",
    "aws_access_key_detector",
    "github_detector",
    "gitlab_detector",
    "jwt_detector",
    "slack_detector",
]

_BASE32 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def _valid_jwt(token: str) -> bool:
    header = token.split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        return False
    return isinstance(data, dict) and "alg" in data


def jwt_detector() -> RegexDetector:
    """``header.payload.signature`` in base64url, the header a JSON object with ``alg``."""
    return RegexDetector(
        "jwt",
        "secret",
        [r"eyJ[A-Za-z0-9_-]+\."],
        r"(?<![\w-])eyJ[A-Za-z0-9_-]{6,4096}\.[A-Za-z0-9_-]{2,65536}\.[A-Za-z0-9_-]{0,4096}(?![\w-])",
        _valid_jwt,
    )


def aws_access_key_detector() -> RegexDetector:
    """AWS access key ids: ``AKIA``/``ASIA``/``ABIA``/``ACCA`` and 16 base32 characters."""
    return RegexDetector(
        "aws_access_key",
        "secret",
        [r"A(?:KIA|SIA|BIA|CCA)[A-Z0-9]"],
        r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])",
        lambda key: set(key[4:]) <= _BASE32,
    )


_AWS_CONTEXT = re.compile(r"(?i:\baws|secret)")
_B64_40 = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")


class AwsSecretKeyDetector(Detector):
    """40 base64 characters of mixed case and digits, in a value that mentions aws or secret.

    The context keeps hashes and ids of the same length from counting; hex
    digests (one case only) never count.
    """

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("aws_secret_key", "secret", [r"(?i:\baws|secret)"])

    def find(self, text: str, deadline: float = float("inf")) -> list[Span]:
        if _AWS_CONTEXT.search(text) is None:
            return []
        spans: list[Span] = []
        for m in _B64_40.finditer(text):
            check_deadline(deadline)
            key = m.group()
            if (
                any(c.isupper() for c in key)
                and any(c.islower() for c in key)
                and any(c.isdigit() or c in "/+" for c in key)
            ):
                spans.append(m.span())
        return spans


def github_detector() -> RegexDetector:
    """GitHub tokens: ``ghp_``/``gho_``/``ghu_``/``ghs_``/``ghr_`` and ``github_pat_``."""
    return RegexDetector(
        "github_token",
        "secret",
        [r"gh[pousr]_[A-Za-z0-9]", r"github_pat_"],
        r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"
        r"(?![A-Za-z0-9_])",
    )


def gitlab_detector() -> RegexDetector:
    """GitLab tokens: personal (``glpat-``), deploy, runner, feed, trigger and agent tokens."""
    return RegexDetector(
        "gitlab_token",
        "secret",
        [r"gl(?:pat|dt|rt|ptt|ft|soat|agent)-"],
        r"(?<![A-Za-z0-9_-])gl(?:pat|dt|rt|ptt|ft|soat|agent)-[A-Za-z0-9_.-]{20,255}"
        r"(?![A-Za-z0-9_-])",
    )


def slack_detector() -> RegexDetector:
    """Slack tokens: ``xoxb-``, ``xoxp-``, ``xoxa-``, ``xoxr-``, ``xoxs-``, ``xoxe-``, ``xoxo-``."""
    return RegexDetector(
        "slack_token",
        "secret",
        [r"xox[abprseo]-"],
        r"(?<![A-Za-z0-9_-])xox[abprseo]-[A-Za-z0-9-]{10,255}(?![A-Za-z0-9_-])",
    )


_PEM_BEGIN = re.compile(r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY-----")
_PEM_END = re.compile(r"-----END[A-Z0-9 ]{0,40}PRIVATE KEY-----")


class PrivateKeyDetector(Detector):
    """PEM private keys from ``-----BEGIN ... PRIVATE KEY-----`` to the END line (or the end)."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("private_key", "secret", [r"-----BEGIN"])

    def find(self, text: str, deadline: float = float("inf")) -> list[Span]:
        spans: list[Span] = []
        pos = 0
        while (begin := _PEM_BEGIN.search(text, pos)) is not None:
            check_deadline(deadline)
            end = _PEM_END.search(text, begin.end())
            stop = end.end() if end is not None else len(text)
            spans.append((begin.start(), stop))
            pos = stop
        return spans


_KEYWORDS = (
    r"password|passwd|passphrase|pwd|pass|secret|client[_-]?secret|secret[_-]?key"
    r"|token|access[_-]?token|auth[_-]?token|refresh[_-]?token|bearer[_-]?token"
    r"|api[_-]?key|apikey|access[_-]?key|private[_-]?key"
)


def assignment_detector() -> RegexDetector:
    """``password=...``, ``secret: ...``, ``"api_key": "..."``: masks the value, not the name."""
    value = (
        r"""(?:"(?P<dq>[^"\n\x00]{1,256})"|'(?P<sq>[^'\n\x00]{1,256})'"""
        r"""|(?P<bare>[^\s"',;&\x00]{1,256}))"""
    )
    return _AssignmentDetector(
        "password_assignment",
        "secret",
        [r"""(?i:password|passwd|passphrase|pwd|pass|secret|token|key)["']?\s*[:=]"""],
        rf"""(?i)(?<![A-Za-z0-9])(?:{_KEYWORDS})["']?[ \t]{{0,10}}[:=][ \t]{{0,10}}{value}""",
    )


class _AssignmentDetector(RegexDetector):
    __slots__ = ()

    def find(self, text: str, deadline: float = float("inf")) -> list[Span]:
        spans: list[Span] = []
        for count, m in enumerate(self._pattern.finditer(text)):
            if count & 63 == 63:
                check_deadline(deadline)
            for group in ("dq", "sq", "bare"):
                if m.start(group) >= 0:
                    spans.append(m.span(group))
                    break
        return spans
