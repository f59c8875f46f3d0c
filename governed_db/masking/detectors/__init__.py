"""The built-in value detectors, by name.

``detector(name)`` builds one (raising :class:`UnknownDetectorError`, a
``PolicyError``, for a name it doesn't know); ``expand(names)`` also accepts
the groups ``pii`` and ``secrets``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable

from governed_db.errors import PolicyError
from governed_db.masking.detectors.base import Detector, RegexDetector, ScanTimeout, Span
from governed_db.masking.detectors.pii import (
    CardDetector,
    EmailDetector,
    PhoneDetector,
    iban_detector,
    ssn_detector,
)
from governed_db.masking.detectors.secrets import (
    AwsSecretKeyDetector,
    PrivateKeyDetector,
    assignment_detector,
    aws_access_key_detector,
    github_detector,
    gitlab_detector,
    jwt_detector,
    slack_detector,
)

__all__ = [
    "DETECTOR_GROUPS",
    "DETECTOR_NAMES",
    "Detector",
    "PhoneDetector",
    "RegexDetector",
    "ScanTimeout",
    "Span",
    "UnknownDetectorError",
    "detector",
    "expand",
]

_FACTORIES: dict[str, Callable[[], Detector]] = {
    "email": EmailDetector,
    "phone": PhoneDetector,
    "credit_card": CardDetector,
    "iban": iban_detector,
    "us_ssn": ssn_detector,
    "jwt": jwt_detector,
    "aws_access_key": aws_access_key_detector,
    "aws_secret_key": AwsSecretKeyDetector,
    "github_token": github_detector,
    "gitlab_token": gitlab_detector,
    "slack_token": slack_detector,
    "private_key": PrivateKeyDetector,
    "password_assignment": assignment_detector,
}

#: Every built-in detector name.
DETECTOR_NAMES: tuple[str, ...] = tuple(_FACTORIES)

#: Names that stand for several detectors.
DETECTOR_GROUPS: dict[str, tuple[str, ...]] = {
    "pii": ("email", "phone", "credit_card", "iban", "us_ssn"),
    "secrets": (
        "jwt",
        "aws_access_key",
        "aws_secret_key",
        "github_token",
        "gitlab_token",
        "slack_token",
        "private_key",
        "password_assignment",
    ),
}

_CACHE: dict[str, Detector] = {}


class UnknownDetectorError(PolicyError):
    """A policy names a detector that does not exist."""

    __module__ = "governed_db.masking"


def _unknown(name: str) -> UnknownDetectorError:
    known = [*DETECTOR_NAMES, *DETECTOR_GROUPS]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return UnknownDetectorError(
        f"unknown detector {name!r}{hint}; known: {', '.join(known)}", key=name
    )


def detector(name: str) -> Detector:
    """The built-in detector ``name`` (shared, stateless); phone covers the US/NANP region."""
    found = _CACHE.get(name)
    if found is None:
        factory = _FACTORIES.get(name)
        if factory is None:
            raise _unknown(name)
        found = _CACHE.setdefault(name, factory())
    return found


def expand(names: Iterable[str]) -> tuple[str, ...]:
    """Detector names with groups expanded, in order, without repeats; unknown names raise."""
    out: list[str] = []
    for name in names:
        members = DETECTOR_GROUPS.get(name, (name,))
        for member in members:
            if member not in _FACTORIES:
                raise _unknown(member)
            if member not in out:
                out.append(member)
    return tuple(out)
