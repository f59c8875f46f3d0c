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
    "AwsAccessKeyDetector",
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
        r"eyJ[A-Za-z0-9_-]{6,4096}\.[A-Za-z0-9_-]{2,65536}\.[A-Za-z0-9_-]{0,4096}",
        _valid_jwt,
    )


_AKID = re.compile(r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}")


class AwsAccessKeyDetector(Detector):
    """AWS access key ids: ``AKIA``/``ASIA``/``ABIA``/``ACCA`` and 16 base32 characters.

    Standing alone, the 20 characters are enough. Glued to other letters or
    digits (``'x' || key || '1'``), the 16 must also hold a digit, and an
    uppercase letter must not follow: uppercase words that happen to contain
    ``ASIA`` or ``ACCA`` don't count.
    """

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("aws_access_key", "secret", [r"A(?:KIA|SIA|BIA|CCA)[A-Z0-9]"])

    def find(self, text: str, deadline: float = float("inf")) -> list[Span]:
        spans: list[Span] = []
        pos = 0
        count = 0
        while (m := _AKID.search(text, pos)) is not None:
            count += 1
            if count & 63 == 0:
                check_deadline(deadline)
            start, end = m.span()
            body = text[start + 4 : end]
            after = text[end] if end < len(text) else " "
            if set(body) <= _BASE32 and not ("A" <= after <= "Z"):
                alone = (start == 0 or not text[start - 1].isalnum()) and not after.isalnum()
                if alone or any(c.isdigit() for c in body):
                    spans.append((start, end))
                    pos = end
                    continue
            pos = start + 1
        return spans


def aws_access_key_detector() -> AwsAccessKeyDetector:
    """The AWS access key id detector."""
    return AwsAccessKeyDetector()


# "aws" not inside a word (laws, draws), or "secret" anywhere.
_AWS_CONTEXT = re.compile(r"(?i:(?<![a-z])aws|secret)")
# Maximal runs of base64 characters; ``=`` (padding, or ``key=value``) ends a run.
_B64_RUN = re.compile(r"[A-Za-z0-9/+]{40,50}(?![A-Za-z0-9/+])")


class AwsSecretKeyDetector(Detector):
    """40 base64 characters of mixed case and digits, in a value that mentions aws or secret.

    The context keeps hashes and ids of the same length from counting; hex
    digests (one case only) never count. The key may follow ``=``
    (``aws_secret_access_key=...``) and may be glued to a few more base64
    characters (``'x' || key || '1'``): a run of 40 to 50 is masked whole.
    """

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("aws_secret_key", "secret", [r"(?i:\baws|[_0-9]aws|secret)"])

    def find(self, text: str, deadline: float = float("inf")) -> list[Span]:
        if _AWS_CONTEXT.search(text) is None:
            return []
        spans: list[Span] = []
        pos = 0
        while (m := _B64_RUN.search(text, pos)) is not None:
            check_deadline(deadline)
            start, end = m.span()
            pos = end
            if start and text[start - 1] in _B64_CHARS:
                continue  # the tail of a longer run
            key = m.group()
            if (
                any(c.isupper() for c in key)
                and any(c.islower() for c in key)
                and any(c.isdigit() or c in "/+" for c in key)
            ):
                spans.append((start, end))
        return spans


_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+")


# Tokens with an issuer prefix: the prefix and the length are the evidence, so they are
# found glued to anything (``'x' || token || '1'``, ``concat_ws('_', label, token, id)``);
# what is glued on the right is masked with them.


def github_detector() -> RegexDetector:
    """GitHub tokens: ``ghp_``/``gho_``/``ghu_``/``ghs_``/``ghr_`` and ``github_pat_``."""
    return RegexDetector(
        "github_token",
        "secret",
        [r"gh[pousr]_[A-Za-z0-9]", r"github_pat_"],
        r"gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}",
    )


def gitlab_detector() -> RegexDetector:
    """GitLab tokens: personal (``glpat-``), deploy, runner, feed, trigger and agent tokens."""
    return RegexDetector(
        "gitlab_token",
        "secret",
        [r"gl(?:pat|dt|rt|ptt|ft|soat|agent)-"],
        r"gl(?:pat|dt|rt|ptt|ft|soat|agent)-[A-Za-z0-9_.-]{20,255}",
    )


def slack_detector() -> RegexDetector:
    """Slack tokens: ``xoxb-``, ``xoxp-``, ``xoxa-``, ``xoxr-``, ``xoxs-``, ``xoxe-``, ``xoxo-``."""
    return RegexDetector(
        "slack_token",
        "secret",
        [r"xox[abprseo]-"],
        r"xox[abprseo]-[A-Za-z0-9-]{10,255}",
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


# Names that say "the value is a secret" wherever they end a word: ``password=``,
# ``db_password=``, ``xpassword=`` (glued), ``client_secret:``, ``AUTH_TOKEN=``.
_STRONG = (
    r"password|passwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key"
    r"|private[_-]?key|secret[_-]?key"
)
# Short names that end ordinary words too (bypass, compass): only at a word start.
_WEAK = r"pass|pwd"
# A quote as it is written at any depth of quoting: ", ', escaped (\" in JSON text
# inside JSON, array and record literals, COPY text) or doubled ("" in record text and
# CSV), and combinations (\\"" in COPY of a record).
_QUOTE = r"""[\\"']"""
_SEPARATOR = r"(?:=>|:=|[:=])"
_VALUE = (
    # quoted, closed by the same quote run followed by an end of the value
    r"""(?P<oq>[\\"']{1,12})(?P<q>[^\n\x00]{1,256}?)(?P=oq)(?=[\s,;:}\])&|<>/\\"']|\Z)"""
    # quoted, up to the next quote or backslash
    r"""|[\\"']{1,12}(?P<q2>[^\\"'\n\x00]{1,256})"""
    # bare
    r"""|(?P<bare>[^\s"',;&\x00]{1,256})"""
)


def assignment_detector() -> RegexDetector:
    """``password=...``, ``secret: ...``, ``"api_key": "..."``: masks the value, not the name.

    The quotes may be escaped or doubled (``\\"api_key\\": \\"...\\"``,
    ``""api_key"": ""...""``), the separator ``=``, ``:``, ``=>`` or ``:=``.
    """
    return _AssignmentDetector(
        "password_assignment",
        "secret",
        [rf"(?i:pass(?:word|wd|phrase)?|pwd|secret|token|key){_QUOTE}{{0,12}}\s*[:=]"],
        rf"(?i)(?:(?:{_STRONG})|(?<![A-Za-z0-9])(?:{_WEAK}))"
        rf"{_QUOTE}{{0,12}}[ \t]{{0,10}}{_SEPARATOR}[ \t]{{0,10}}(?:{_VALUE})",
    )


class _AssignmentDetector(RegexDetector):
    __slots__ = ()

    def find(self, text: str, deadline: float = float("inf")) -> list[Span]:
        spans: list[Span] = []
        for count, m in enumerate(self._pattern.finditer(text)):
            if count & 63 == 63:
                check_deadline(deadline)
            for group in ("q", "q2", "bare"):
                if m.start(group) >= 0:
                    spans.append(m.span(group))
                    break
        return spans
