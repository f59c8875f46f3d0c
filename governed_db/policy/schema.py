"""Reading checked values out of line-aware YAML: every failure is a located PolicyError."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Iterator
from typing import Any, NoReturn, TypeVar

from governed_db.errors import PolicyError
from governed_db.policy.yaml_lines import EnvStr, LineDict, LineList

__all__ = ["Field", "Reader", "parse_duration", "parse_glob_list"]

T = TypeVar("T")

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|min|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_TYPE_NAMES = {
    bool: "a boolean (true/false)",
    int: "an integer",
    float: "a number",
    str: "a string",
    LineDict: "a mapping",
    LineList: "a list",
}


class Field:
    """One value in the file: the value itself, its dotted key and its line."""

    __slots__ = ("key", "line", "path", "value")

    def __init__(self, value: Any, key: str, line: int | None, path: str | None) -> None:
        self.value = value
        self.key = key
        self.line = line
        self.path = path

    def fail(self, message: str) -> NoReturn:
        """Raise a PolicyError located at this value (``key`` "" is the top level)."""
        text = f"{self.key}: {message}" if self.key else message
        raise PolicyError(text, path=self.path, line=self.line, key=self.key or None)

    def expect(self, kind: type[T]) -> T:
        """The value as ``kind`` (env: strings are coerced to int/float/bool)."""
        value = self.value
        if isinstance(value, EnvStr) and kind is not str:
            value = self._coerce(value, kind)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            self.fail(f"expected {_TYPE_NAMES.get(kind, kind.__name__)}, got {_describe(value)}")
        return value  # type: ignore[no-any-return]

    def _coerce(self, value: EnvStr, kind: type) -> Any:
        text = value.strip()
        try:
            if kind is bool and text.lower() in {"true", "false", "1", "0", "yes", "no"}:
                return text.lower() in {"true", "1", "yes"}
            if kind is int:
                return int(text)
            if kind is float:
                return float(text)
        except ValueError:
            pass
        self.fail(f"variable {value.variable}={text!r} is not {_TYPE_NAMES.get(kind, kind)}")

    def reader(self) -> Reader:
        """A Reader over this mapping value."""
        return Reader(self.expect(LineDict), self.key, self.path)

    def items(self) -> Iterator[Field]:
        """The items of this list value (a single scalar counts as a one-item list)."""
        value = self.value
        if not isinstance(value, LineList):
            if isinstance(value, LineDict):
                self.fail("expected a list or a single value, got a mapping")
            yield self
            return
        for i, item in enumerate(value):
            yield Field(item, f"{self.key}[{i}]", value.line_of(i), self.path)

    def strings(self, *, nonempty: bool = True) -> list[str]:
        """A string or list of strings."""
        result = [item.expect(str) for item in self.items()]
        if nonempty and not result:
            self.fail("expected at least one value")
        return result

    def choices(self, allowed: Collection[str], what: str) -> frozenset[str]:
        """A string or list of strings, each one of ``allowed``."""
        values = [item.choice(allowed, what) for item in self.items()]
        if not values:
            self.fail("expected at least one value")
        return frozenset(values)

    def choice(self, allowed: Collection[str], what: str) -> str:
        """A string that must be one of ``allowed``."""
        value = self.expect(str)
        if value not in allowed:
            close = difflib.get_close_matches(value, list(allowed), n=1)
            extra = f" (did you mean {close[0]!r}?)" if close else ""
            if len(allowed) <= 30:
                listed = ", ".join(sorted(allowed))
                self.fail(f"unknown {what} {value!r}{extra}; expected one of: {listed}")
            self.fail(
                f"unknown {what} {value!r}{extra}; every {what} is listed in docs/sql.md"
            )
        return value


class Reader:
    """Reads the keys of one mapping; ``finish()`` rejects keys nobody asked for."""

    __slots__ = ("_seen", "data", "key", "path")

    def __init__(self, data: LineDict, key: str, path: str | None) -> None:
        self.data = data
        self.key = key
        self.path = path
        self._seen: set[str] = set()

    @property
    def line(self) -> int:
        """Where the mapping starts."""
        return self.data.line

    def here(self) -> Field:
        """This mapping itself as a Field."""
        return Field(self.data, self.key, self.data.line, self.path)

    def field(self, name: str) -> Field | None:
        """The value under ``name``, or None if absent (or null)."""
        self._seen.add(name)
        if name not in self.data or self.data[name] is None:
            return None
        return self._field_at(name)

    def require(self, name: str) -> Field:
        """The value under ``name``; missing is an error."""
        found = self.field(name)
        if found is None:
            typo = difflib.get_close_matches(name, [k for k in self.data if k != name], n=1)
            if typo:
                self._field_at(typo[0]).fail(f"unknown key {typo[0]!r} (did you mean {name!r}?)")
            self.here().fail(f"missing required key {name!r}")
        return found

    def _field_at(self, name: str) -> Field:
        key = f"{self.key}.{name}" if self.key else name
        return Field(self.data.get(name), key, self.data.line_of(name), self.path)

    def get(self, name: str, kind: type[T], default: T) -> T:
        """An optional typed value."""
        found = self.field(name)
        return default if found is None else found.expect(kind)

    def map(self, name: str, convert: Callable[[Field], T]) -> T | None:
        """``convert(field)`` if the key is present, else None."""
        found = self.field(name)
        return None if found is None else convert(found)

    def entries(self) -> Iterator[tuple[str, Field]]:
        """Every key of the mapping (for sections keyed by user-chosen names)."""
        for name in self.data:
            self._seen.add(name)
            yield name, self._field_at(name)

    def finish(self, allowed_hint: Collection[str] = ()) -> None:
        """Reject keys that were never read (typos, unsupported options)."""
        for name in self.data:
            if name in self._seen:
                continue
            known = sorted(self._seen | set(allowed_hint))
            close = difflib.get_close_matches(name, known, n=1)
            extra = f" (did you mean {close[0]!r}?)" if close else ""
            self._field_at(name).fail(
                f"unknown key {name!r}{extra}; known keys: {', '.join(known)}"
            )


def parse_duration(item: Field) -> float:
    """``"30s"``, ``"500ms"``, ``"2m"``, ``"1h30m"``, ``"1d"`` → seconds."""
    raw = item.value
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        item.fail(f"duration {raw!r} needs a unit, e.g. '{raw}s' (units: ms, s, m, h, d)")
    text = item.expect(str).strip().replace(" ", "")
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(text):
        item.fail(f"bad duration {text!r}; write e.g. '30s', '500ms', '2m', '1h30m' or '1d'")
    return total


def parse_glob_list(item: Field) -> list[str]:
    """A glob or list of globs, each checked: non-empty, no spaces, balanced ``[ ]``."""
    result = []
    for one in item.items():
        value = one.value
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # ports
        pattern = Field(value, one.key, one.line, one.path).expect(str)
        if not pattern or pattern != pattern.strip() or any(c.isspace() for c in pattern):
            one.fail(f"bad glob {pattern!r}: must be non-empty, without spaces")
        if _unbalanced(pattern):
            one.fail(f"bad glob {pattern!r}: unbalanced '[' ... ']'")
        result.append(pattern)
    if not result:
        item.fail("expected at least one pattern")
    return result


def _unbalanced(pattern: str) -> bool:
    """True if a ``[`` has no closing ``]`` (fnmatch would silently read it literally)."""
    i = 0
    while i < len(pattern):
        if pattern[i] == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] in "!^":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1
            close = pattern.find("]", j)
            if close < 0:
                return True
            i = close
        elif pattern[i] == "]":
            return True
        i += 1
    return False


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, LineDict):
        return "a mapping"
    if isinstance(value, LineList):
        return "a list"
    return f"{type(value).__name__} {value!r}"
