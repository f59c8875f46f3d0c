"""Masking methods: what a masked value becomes.

Built in: ``redact``, ``partial``, ``email``, ``last4``, ``hash`` and ``null``;
more are registered in code with :func:`register`. :func:`bind` turns a method
name and its options into a one-argument function, once per plan column.

Every method maps ``None`` to ``None``. Text methods (``partial``, ``email``,
``last4``) work on the text of a scalar: ``str`` as is, ``int``/``float``/
``Decimal``/``UUID`` by ``str()``, dates and times by ``isoformat()``; the
result is a ``str``. Values without a meaningful text (``bytes``, ``bool``,
``dict``/``list`` from json, arrays, other objects) get the ``redact`` token
instead. ``redact`` gives ``[REDACTED:<category>]`` for every value, ``hash``
a keyed pseudonym for every value, ``null`` always ``None``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, overload
from uuid import UUID

from governed_db.errors import GovernanceError, PolicyError
from governed_db.masking.keys import MaskingKey

__all__ = [
    "BUILTIN_METHODS",
    "MaskFn",
    "MaskingError",
    "UnknownMethodError",
    "bind",
    "many",
    "method",
    "methods",
    "register",
    "unregister",
]

MaskFn = Callable[[Any], Any]
KeySource = Callable[[], MaskingKey]

#: Methods that are always there; their names cannot be registered again.
BUILTIN_METHODS: tuple[str, ...] = ("redact", "partial", "email", "last4", "hash", "null")

_OPTIONS: dict[str, dict[str, type]] = {
    "redact": {},
    "partial": {"keep_first": int, "keep_last": int},
    "email": {},
    "last4": {},
    "hash": {"prefix": str, "length": int},
    "null": {},
}
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}\Z")
_CUSTOM: dict[str, Callable[..., Any]] = {}
_TEXT_TYPES = (str, int, float, Decimal, UUID)
_STARS = ["*" * n for n in range(64)]


class UnknownMethodError(PolicyError):
    """A policy names a masking method that is neither built in nor registered."""

    __module__ = "governed_db.masking"


def methods() -> tuple[str, ...]:
    """Every method name that :func:`method` accepts: built-in, then registered."""
    return (*BUILTIN_METHODS, *sorted(_CUSTOM))


def method(name: str) -> Callable[..., Any] | None:
    """Check that ``name`` exists: the registered callable, or None for a built-in.

    Raises :class:`UnknownMethodError` (with a "did you mean") otherwise; the
    policy loader calls this for every rule, so a typo fails at load time.
    """
    if name in _OPTIONS:
        return None
    if name in _CUSTOM:
        return _CUSTOM[name]
    close = difflib.get_close_matches(name, methods(), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UnknownMethodError(
        f"unknown masking method {name!r}{hint}; known: {', '.join(methods())}. "
        "Custom methods are registered in code with governed_db.masking.register(name, fn)",
        key=name,
    )


@overload
def register(name: str, fn: None = None, *, replace: bool = False) -> Callable[[Any], Any]: ...
@overload
def register(name: str, fn: Callable[..., Any], *, replace: bool = False) -> Callable[..., Any]: ...
def register(
    name: str, fn: Callable[..., Any] | None = None, *, replace: bool = False
) -> Callable[..., Any]:
    """Register ``fn(value, **options)`` as masking method ``name``; returns ``fn``.

    Without ``fn`` it is a decorator. ``None`` values never reach ``fn``.
    Raises ``ValueError`` for a malformed name, a built-in name, or a name
    already registered (unless ``replace=True``), and ``TypeError`` if ``fn``
    is not callable.
    """
    if fn is None:
        return lambda f: register(name, f, replace=replace)
    if not isinstance(name, str) or _NAME.match(name) is None:
        raise ValueError(f"masking method name {name!r}: use lowercase letters, digits and _")
    if name in _OPTIONS:
        raise ValueError(f"{name!r} is a built-in masking method and cannot be replaced")
    if not callable(fn):
        raise TypeError(f"masking method {name!r}: {fn!r} is not callable")
    if name in _CUSTOM and not replace and _CUSTOM[name] is not fn:
        raise ValueError(f"masking method {name!r} is already registered; pass replace=True")
    _CUSTOM[name] = fn
    return fn


def unregister(name: str) -> None:
    """Forget a registered method (no error if it isn't registered)."""
    _CUSTOM.pop(name, None)


def _check_options(name: str, options: Mapping[str, Any]) -> None:
    allowed = _OPTIONS[name]
    for key, value in options.items():
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = ", ".join(allowed) or "none"
            raise PolicyError(
                f"masking method {name!r} has no option {key!r}{hint}; options: {known}", key=key
            )
        if (
            not isinstance(value, allowed[key])
            or isinstance(value, bool)
            or (isinstance(value, int) and value < 0)
        ):
            raise PolicyError(
                f"masking method {name!r}: option {key!r} must be a non-negative "
                f"{allowed[key].__name__}, not {value!r}",
                key=key,
            )
    if name == "hash" and not 8 <= options.get("length", 16) <= 64:
        raise PolicyError("masking method 'hash': length must be between 8 and 64", key="length")


def _text(value: Any) -> str | None:
    """The text a text method works on, or None when the value has none."""
    if isinstance(value, _TEXT_TYPES) and not isinstance(value, bool):
        return value if isinstance(value, str) else str(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    return None


def keep(text: str, first: int, last: int) -> str:
    """``text`` with all but ``first`` and ``last`` characters starred; at least 3 stars."""
    n = len(text)
    if n < 3:
        return "***"
    while first + last > n - 3:  # give up kept characters, the larger side first
        if last >= first:
            last -= 1
        else:
            first -= 1
    stars = n - first - last
    middle = _STARS[stars] if stars < 64 else "*" * stars
    return text[:first] + middle + (text[n - last :] if last else "")


def _last4(text: str) -> str:
    if text.isdigit():
        return keep(text, 0, 4 if len(text) >= 7 else max(0, len(text) - 3))
    alnum = [i for i, c in enumerate(text) if c.isalnum()]
    kept = 4 if len(alnum) >= 7 else max(0, len(alnum) - 3)
    if len(alnum) < 3:
        return "***"
    cut = alnum[len(alnum) - kept] if kept else len(text)
    return "".join("*" if c.isalnum() else c for c in text[:cut]) + text[cut:]


def _email(text: str) -> str:
    at = text.rfind("@")
    if at <= 0:
        return keep(text, 1, 0)
    return text[0] + "***" + text[at:]


def canonical_bytes(value: Any) -> bytes:
    """What ``hash`` authenticates: the same text for equal values of any scalar type."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, dict | list | tuple):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
        return text.encode()
    plain = _text(value)
    return (plain if plain is not None else str(value)).encode("utf-8", "surrogatepass")


def _with_many(mask: MaskFn, many: Callable[[list[Any]], list[Any]]) -> MaskFn:
    mask.many = many  # type: ignore[attr-defined]
    return mask


def many(fn: MaskFn) -> Callable[[list[Any]], list[Any]]:
    """``fn`` over a whole column at once: a built-in's loop, or ``map`` for others."""
    batch: Callable[[list[Any]], list[Any]] | None = getattr(fn, "many", None)
    return batch if batch is not None else lambda values: list(map(fn, values))


def _text_method(fn: Callable[[str], str], token: str) -> MaskFn:
    def mask(value: Any) -> Any:
        if value is None:
            return None
        if type(value) is str:
            return fn(value)
        text = _text(value)
        return token if text is None else fn(text)

    return mask


def _email_method(token: str) -> MaskFn:
    slow = _text_method(_email, token)

    def mask(value: Any) -> Any:
        if type(value) is str:
            at = value.rfind("@")
            if at > 0:
                return value[0] + "***" + value[at:]
        return slow(value)

    def many(values: list[Any]) -> list[Any]:
        # rpartition gives back the string itself as the tail when there is no "@";
        # anything but str and None (bytes, numbers) raises and takes the slow path
        try:
            return [
                v[0] + "***@" + tail
                if v is not None and (tail := v.rpartition("@")[2]) is not v and v[0] != "@"
                else slow(v)
                for v in values
            ]
        except (AttributeError, TypeError):
            return [mask(v) for v in values]

    return _with_many(mask, many)


def _last4_method(token: str) -> MaskFn:
    slow = _text_method(_last4, token)
    stars = _STARS

    def mask(value: Any) -> Any:
        if type(value) is str and 7 <= len(value) < 68 and value.isdigit():
            return stars[len(value) - 4] + value[-4:]
        return slow(value)

    def many(values: list[Any]) -> list[Any]:
        if not values:
            return []
        try:
            joined = "".join(values)
        except TypeError:  # None or another type somewhere: value by value
            return [mask(v) for v in values]
        # every value is digits only, 7 to 67 of them: no check per value needed
        if joined.isdigit():
            shortest, longest = min(map(len, values)), max(map(len, values))
            if shortest == longest >= 7:
                prefix = stars[shortest - 4] if shortest < 68 else "*" * (shortest - 4)
                return [prefix + v[-4:] for v in values]
            if shortest >= 7 and longest < 68:
                return [stars[len(v) - 4] + v[-4:] for v in values]
        return [mask(v) for v in values]

    return _with_many(mask, many)


def _hash_method(key_source: KeySource, prefix: str, length: int) -> MaskFn:
    state: dict[str, Any] = {}

    def mask(value: Any) -> Any:
        if value is None:
            return None
        base = state.get("mac")
        if base is None:
            base = state["mac"] = hmac.new(key_source().key, digestmod=hashlib.sha256)
        mac = base.copy()
        mac.update(canonical_bytes(value))
        return prefix + mac.hexdigest()[:length]

    return mask


def bind(
    name: str,
    *,
    category: str = "masked",
    options: Mapping[str, Any] | None = None,
    key_source: KeySource | None = None,
) -> MaskFn:
    """Method ``name`` with its options, as ``fn(value) -> masked value``.

    ``category`` names what ``redact`` says (``[REDACTED:email]``);
    ``key_source`` gives the masking key to ``hash`` (called at first use).
    Raises :class:`UnknownMethodError` or ``PolicyError`` for bad options.
    """
    opts = dict(options or {})
    custom = method(name)
    token = f"[REDACTED:{category}]"
    if custom is not None:
        fn = custom
        if opts:
            return lambda value: None if value is None else fn(value, **opts)
        return lambda value: None if value is None else fn(value)
    _check_options(name, opts)
    if name == "redact":
        return _with_many(
            lambda value: None if value is None else token,
            lambda values: [None if v is None else token for v in values],
        )
    if name == "null":
        return _with_many(lambda value: None, lambda values: [None] * len(values))
    if name == "partial":
        first, last = opts.get("keep_first", 1), opts.get("keep_last", 1)
        return _text_method(lambda text: keep(text, first, last), token)
    if name == "email":
        return _email_method(token)
    if name == "last4":
        return _last4_method(token)
    if key_source is None:
        raise PolicyError("masking method 'hash' needs a masking key source", key="hash")
    return _hash_method(key_source, opts.get("prefix", "hmac:"), opts.get("length", 16))


class MaskingError(GovernanceError):
    """A masking method failed; the fetch is refused rather than pass the raw value.

    Names the rule, method and column; never the value (the original
    exception's message is left out, as it may quote it).
    """

    __module__ = "governed_db.masking"

    def __init__(
        self, rule_id: str, method_name: str, cause: str, column: str | None = None
    ) -> None:
        where = f" on column {column!r}" if column else ""
        super().__init__(
            f"masking rule {rule_id!r} (method {method_name!r}) failed{where}: {cause}; "
            "the fetch was refused so that no unmasked value is returned (fail closed)",
            rule_id=rule_id,
            hint="Fix the masking method, or mask this column with a built-in method.",
        )
        self.rule_id: str = rule_id
        self.method: str = method_name
        self.column: str | None = column
        self.cause: str = cause

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.rule_id, self.method, self.cause, self.column))

    def at(self, column: str) -> MaskingError:
        """The same error, naming ``column``."""
        return MaskingError(self.rule_id, self.method, self.cause, column)
