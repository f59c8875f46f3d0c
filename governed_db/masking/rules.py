"""Masking rules as frozen values: what the policy's ``masking:`` section turns into.

A rule matches a result column by ``columns`` (globs over the source
``schema.table.column``; a two-part glob such as ``customers.email`` matches
any schema) or ``column_names`` (globs over the source or result column name),
or names ``detectors`` to run over values (optionally only on the columns it
also matches, and only on computed columns with ``scope="computed"``). Its
action is ``mask`` with a ``method`` (and ``options``) or ``reveal``. ``when``
conditions belong to the policy room: rules reach masking already filtered.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from governed_db.errors import PolicyError
from governed_db.masking.detectors import expand
from governed_db.masking.methods import method

__all__ = ["SCOPES", "Globs", "MaskRule"]

#: Where detector rules look: every text-like column, or only computed ones.
SCOPES = ("all", "computed")


class Globs:
    """Case-insensitive shell patterns compiled into one regex."""

    __slots__ = ("_regex", "patterns")

    def __init__(self, patterns: Iterable[str], *, qualified: bool = False) -> None:
        self.patterns = tuple(patterns)
        parts = []
        for p in self.patterns:
            body = fnmatch.translate(p.lower())
            parts.append(f"(?:[^.]*\\.)?{body}" if qualified and p.count(".") == 1 else body)
        self._regex = re.compile("|".join(f"(?:{p})" for p in parts) or "(?!)", re.IGNORECASE)

    def match(self, value: str | None) -> bool:
        """True if ``value`` matches any pattern (never for None)."""
        return value is not None and self._regex.match(value) is not None

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Globs) and self.patterns == other.patterns

    def __hash__(self) -> int:
        return hash(self.patterns)

    def __repr__(self) -> str:
        return f"Globs({list(self.patterns)!r})"


def _globs(value: Iterable[str] | Globs, *, qualified: bool = False) -> Globs:
    return value if isinstance(value, Globs) else Globs(value, qualified=qualified)


@dataclass(frozen=True, slots=True)
class MaskRule:
    """One masking rule; construction validates it (raising ``PolicyError``)."""

    id: str
    action: str = "mask"
    method: str = "redact"
    options: Mapping[str, Any] = field(default_factory=dict)
    columns: Globs = field(default_factory=lambda: Globs(()))
    column_names: Globs = field(default_factory=lambda: Globs(()))
    detectors: tuple[str, ...] = ()
    scope: str = "all"
    category: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "columns", _globs(self.columns, qualified=True))
        set_(self, "column_names", _globs(self.column_names))
        set_(self, "detectors", expand(self.detectors))
        set_(self, "options", MappingProxyType(dict(self.options)))
        if not self.id:
            raise PolicyError("a masking rule needs an id")
        if self.action not in ("mask", "reveal"):
            raise PolicyError(
                f"masking rule {self.id!r}: action must be mask or reveal, not {self.action!r}",
                key="action",
            )
        if self.scope not in SCOPES:
            raise PolicyError(
                f"masking rule {self.id!r}: scope must be one of {', '.join(SCOPES)}",
                key="scope",
            )
        for glob in self.columns.patterns:
            if glob.count(".") not in (1, 2):
                raise PolicyError(
                    f"masking rule {self.id!r}: columns glob {glob!r} must be table.column or "
                    "schema.table.column (use column_names for bare names)",
                    key="columns",
                )
        if not (self.columns or self.column_names or self.detectors):
            raise PolicyError(
                f"masking rule {self.id!r} matches nothing: give columns, column_names or "
                "detectors",
                key=self.id,
            )
        if self.action == "mask":
            method(self.method)

    @property
    def matches_columns(self) -> bool:
        """True if the rule picks columns (by source or name) rather than only values."""
        return bool(self.columns or self.column_names)

    def matches(self, source: str | None, name: str | None, source_name: str | None) -> bool:
        """True if the column (source ``schema.table.column``, result and source names) matches."""
        if self.columns and self.columns.match(source):
            return True
        return bool(self.column_names) and (
            self.column_names.match(name) or self.column_names.match(source_name)
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MaskRule:
        """A rule from the mapping a policy file holds (the baseline uses this too)."""
        known = {
            "id", "action", "method", "options", "columns", "column_names",
            "detectors", "scope", "category",
        }  # fmt: skip
        unknown = set(data) - known
        if unknown:
            raise PolicyError(f"masking rule: unknown keys {sorted(unknown)}", key=min(unknown))
        return cls(
            id=data["id"],
            action=data.get("action", "mask"),
            method=data.get("method", "redact"),
            options=data.get("options", {}),
            columns=Globs(data.get("columns", ()), qualified=True),
            column_names=Globs(data.get("column_names", ())),
            detectors=tuple(data.get("detectors", ())),
            scope=data.get("scope", "all"),
            category=data.get("category"),
        )
