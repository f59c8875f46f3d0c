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
import json
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from itertools import repeat
from operator import itemgetter
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

    def many(values: list[Any], rpartition: Any = str.rpartition) -> list[Any]:
        # The common case inline: a str with "@" past its first character (the part
        # before the last "@" is not empty). ``str.rpartition`` itself raises TypeError
        # for anything but a str: then value by value.
        try:
            return [
                f"{v[0]}***@{p[2]}" if v is not None and (p := rpartition(v, "@"))[0] else slow(v)
                for v in values
            ]
        except TypeError:
            return [mask(v) for v in values]

    return _with_many(mask, many)


#: ``v[-4:]`` as a C-level callable (for ``map``).
_LAST_FOUR = itemgetter(slice(-4, None))
_DIGITS_LF = b"0123456789\n"


def _ascii_lines(values: list[Any]) -> bytes | None:
    """``values`` joined by line feeds, as bytes, when every one is an ASCII ``str``
    without a line feed (else None): a column to rewrite with C-level bulk operations."""
    try:
        joined = "\n".join(values)
    except TypeError:  # None or another type somewhere
        return None
    if not joined.isascii():
        return None
    raw = joined.encode("ascii")
    return raw if raw.count(b"\n") == len(values) - 1 else None


def _one_width(raw: bytes, n: int) -> int | None:
    """The width every one of the ``n`` lines of ``raw`` has (see :func:`_ascii_lines`),
    or None when they differ."""
    width, rest = divmod(len(raw) + 1, n)
    width -= 1
    if rest or raw[width :: width + 1] != b"\n" * (n - 1):
        return None
    return width


def _rewrite(raw: bytes, n: int, width: int, kept: Iterable[int], template: bytes) -> list[str]:
    """The ``n`` lines of ``raw`` (all ``width`` long), each rewritten as ``template`` with
    the characters at ``kept`` copied from it: strided slices of one buffer, then one
    split, instead of a Python step per value."""
    stride = width + 1
    buf = bytearray((template + b"\n") * n)
    for k in kept:
        buf[k::stride] = raw[k::stride]
    del buf[-1]
    return buf.decode("ascii").split("\n")


def _last4_method(token: str) -> MaskFn:
    slow = _text_method(_last4, token)
    stars = _STARS

    def mask(value: Any) -> Any:
        if type(value) is str and 7 <= len(value) < 68 and value.isdigit():
            return stars[len(value) - 4] + value[-4:]
        return slow(value)

    def many(values: list[Any]) -> list[Any]:
        raw = _ascii_lines(values) if values else None
        # every value ASCII digits only: stars and the last four, once there are 7 or more
        if raw is not None and not raw.translate(None, _DIGITS_LF):
            n = len(values)
            width = _one_width(raw, n)
            if width is not None and width >= 7:
                template = b"*" * (width - 4) + b"0000"
                return _rewrite(raw, n, width, range(width - 4, width), template)
            lengths = list(map(len, values))
            if min(lengths) >= 7:
                return list(map(str.rjust, map(_LAST_FOUR, values), lengths, repeat("*")))
        return [mask(v) for v in values]

    return _with_many(mask, many)


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def _hmac_sha256(key: bytes) -> Callable[[bytes], str]:
    """``data -> HMAC-SHA256(key, data)`` as hex: RFC 2104 over two keyed ``hashlib``
    states copied per value (what ``hmac.new(key, data, sha256).hexdigest()`` gives)."""
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(key.translate(_IPAD))
    outer = hashlib.sha256(key.translate(_OPAD))
    icopy, ocopy = inner.copy, outer.copy

    def hexdigest(data: bytes) -> str:
        i = icopy()
        i.update(data)
        o = ocopy()
        o.update(i.digest())
        return o.hexdigest()

    return hexdigest


def _hash_method(key_source: KeySource, prefix: str, length: int) -> MaskFn:
    state: list[Callable[[bytes], str]] = []

    def mac() -> Callable[[bytes], str]:
        if not state:  # the key is loaded at first use
            state.append(_hmac_sha256(key_source().key))
        return state[0]

    def mask(value: Any) -> Any:
        if value is None:
            return None
        return prefix + mac()(canonical_bytes(value))[:length]

    def many(values: list[Any]) -> list[Any]:
        if values.count(None) == len(values):  # NULLs only: the key is not needed (nor loaded)
            return [None] * len(values)
        hexdigest = mac()
        return [
            prefix + hexdigest(v.encode("utf-8", "surrogatepass"))[:length]
            if type(v) is str
            else mask(v)
            for v in values
        ]

    return _with_many(mask, many)


def _partial_method(first: int, last: int, token: str) -> MaskFn:
    slow = _text_method(lambda text: keep(text, first, last), token)
    kept_both = first + last
    stars = _STARS

    def many(values: list[Any]) -> list[Any]:
        raw = _ascii_lines(values) if values else None
        if raw is not None:
            n = len(values)
            width = _one_width(raw, n)
            if width is not None and width >= kept_both + 3:
                kept = [*range(first), *range(width - last, width)]
                return _rewrite(raw, n, width, kept, b"*" * width)
        # nothing to give up (at least 3 stars, fewer than 64): keep() inline
        return [
            f"{v[:first]}{stars[k]}{v[k + first :]}"
            if type(v) is str and 3 <= (k := len(v) - kept_both) < 64
            else slow(v)
            for v in values
        ]

    return _with_many(slow, many)


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
            return _with_many(
                lambda value: None if value is None else fn(value, **opts),
                lambda values: [None if v is None else fn(v, **opts) for v in values],
            )
        return _with_many(
            lambda value: None if value is None else fn(value),
            lambda values: [None if v is None else fn(v) for v in values],
        )
    _check_options(name, opts)
    if name == "redact":
        return _with_many(
            lambda value: None if value is None else token,
            lambda values: [None if v is None else token for v in values],
        )
    if name == "null":
        return _with_many(lambda value: None, lambda values: [None] * len(values))
    if name == "partial":
        return _partial_method(opts.get("keep_first", 1), opts.get("keep_last", 1), token)
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
