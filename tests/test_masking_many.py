"""Property: a method over a whole column (``many``) gives what it gives value by value.

The column paths take shortcuts (one buffer for a column of one width, C-level
maps, inline common cases); whatever the column holds, their output must be
the per-value output, element for element and type for type.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections import UserString
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governed_db.masking import BUILTIN_METHODS, MaskingKey, bind, register, unregister
from governed_db.masking.methods import many

KEY = MaskingKey(b"k" * 32, "test")
LONG_KEY = MaskingKey(bytes(range(100)), "test")

#: Every code point, surrogates included.
_any_char = st.characters(codec=None, categories=None)
#: Characters the shortcuts treat specially, or that look like what they look for.
_tricky = st.sampled_from(
    ["@", "\n", "\x00", "*", " ", "-", "0", "7", "9", "a", "Z", "é", "٣", "²", "\ud800", "😀"]
)
_digits = st.sampled_from(list("0123456789"))
_unicode_digits = st.sampled_from(list("0123456789٣٤²³۹"))


class Text(str):
    """A str subclass (a custom loader may return one)."""


def _texts(chars: st.SearchStrategy[str], max_size: int = 24) -> st.SearchStrategy[str]:
    return st.text(chars, max_size=max_size)


_emailish = st.builds(
    lambda a, b, c: a + "@" + b + ("@" + c if c else ""),
    _texts(st.one_of(_tricky, _any_char), 6),
    _texts(st.one_of(_tricky, _any_char), 8),
    st.one_of(st.just(""), _texts(_tricky, 3)),
)

_scalars = st.one_of(
    st.none(),
    _texts(st.sampled_from(["@", "a", "0", "\n", "é"]), 6),  # short: every edge of "@"
    _texts(st.one_of(_tricky, _any_char)),
    _texts(_digits, 40),
    _texts(_unicode_digits, 20),
    _emailish,
    st.integers(),
    st.floats(allow_nan=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    st.booleans(),
    st.dates(),
    st.datetimes(),
    st.times(),
    st.timedeltas(),
    st.uuids(),
    st.binary(max_size=12),
    st.builds(Text, _emailish),
    st.builds(UserString, _emailish),  # has str's methods, is no str
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def _one_width(draw: st.DrawFn) -> list[Any]:
    """A column whose values all have one length (the one-buffer path), maybe spoiled."""
    width = draw(st.integers(0, 24))
    chars = draw(st.sampled_from([_digits, _unicode_digits, _tricky, _any_char]))
    column: list[Any] = draw(
        st.lists(st.text(chars, min_size=width, max_size=width), min_size=1, max_size=12)
    )
    spoil = draw(st.one_of(st.none(), _scalars))
    if spoil is not None or draw(st.booleans()):
        column.insert(draw(st.integers(0, len(column))), spoil)
    return column


columns = st.one_of(st.lists(_scalars, max_size=12), _one_width())

_METHODS: list[tuple[str, dict[str, Any]]] = [
    ("redact", {}),
    ("null", {}),
    ("email", {}),
    ("last4", {}),
    ("partial", {}),
    ("partial", {"keep_first": 0, "keep_last": 0}),
    ("partial", {"keep_first": 2, "keep_last": 0}),
    ("partial", {"keep_first": 0, "keep_last": 4}),
    ("partial", {"keep_first": 3, "keep_last": 5}),
    ("hash", {}),
    ("hash", {"prefix": "", "length": 64}),
]


def _typed(values: list[Any]) -> list[tuple[type, Any]]:
    return [(type(v), v) for v in values]


def _check(name: str, options: dict[str, Any], column: list[Any], key: MaskingKey) -> None:
    mask = bind(name, category="card", options=options, key_source=lambda: key)
    given_column = list(column)
    expected = [mask(v) for v in column]
    assert _typed(many(mask)(given_column)) == _typed(expected)
    assert given_column == column  # the input is not changed


def test_every_builtin_method_is_checked() -> None:
    assert {name for name, _ in _METHODS} == set(BUILTIN_METHODS)


@pytest.mark.parametrize(("name", "options"), _METHODS)
@given(column=columns)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_many_equals_value_by_value(name: str, options: dict[str, Any], column: list[Any]) -> None:
    _check(name, options, column, KEY)


@given(column=st.lists(_texts(_any_char), max_size=6))
@settings(max_examples=50, deadline=None)
def test_hash_with_a_key_longer_than_a_block(column: list[Any]) -> None:
    _check("hash", {}, column, LONG_KEY)


@given(data=st.binary(max_size=200), key=st.binary(min_size=32, max_size=200))
@settings(max_examples=200, deadline=None)
def test_hash_is_hmac_sha256(data: bytes, key: bytes) -> None:
    mask = bind("hash", options={"prefix": "", "length": 64}, key_source=lambda: MaskingKey(key))
    assert mask(data) == hmac.new(key, data, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    "column",
    [
        ["4111111111111111"] * 300,  # a card column of one width: the one-buffer path
        ["4111111111111111", "378282246310005"] * 150,  # two widths: the map path
        ["4111111111111111"] * 299 + [None],
        ["4111111111111111"] * 299 + ["4111 1111 1111 1111"],
        ["4111111111111111"] * 299 + ["41111111111111\n1"],
        ["٤١١١١١١١١١١١١١١١"] * 3,  # digits that are not ASCII
        ["1234567"] * 4 + ["123456"],
        [f"user{i}@example.com" for i in range(300)],
        ["a@b", "@b", "@", "", "ab", "abc", "abcd", "a@b@c", "@@x", "x@@", "\ud800@\ud800"],
        [Text("user@example.com"), Text("nobody"), Text("")],
        [UserString("user@example.com"), "user@example.com", UserString("1234567890")],
        ["123-45-6789"] * 50,
        ["ab\ncd\nef"] * 5,
        [dt.date(2024, 1, 2), Decimal("12345678.90"), UUID(int=7), 10**20, -5, 3.25, True],
    ],
)
@pytest.mark.parametrize(("name", "options"), _METHODS)
def test_many_on_known_columns(name: str, options: dict[str, Any], column: list[Any]) -> None:
    _check(name, options, column, KEY)


def test_custom_method_many_skips_none() -> None:
    seen: list[Any] = []

    def upper(value: Any, *, suffix: str = "") -> str:
        seen.append(value)
        return str(value).upper() + suffix

    register("upper_many", upper)
    try:
        for options in ({}, {"suffix": "!"}):
            mask = bind("upper_many", options=options)
            column = ["a", None, 5, "b"]
            assert many(mask)(column) == [mask(v) for v in column]
        assert None not in seen
    finally:
        unregister("upper_many")


@pytest.mark.parametrize("column", [[], [None, None], [None, "a"], ["a"]])
def test_hash_loads_the_key_only_for_a_value(column: list[Any]) -> None:
    """Value by value, a column of NULLs never asks for the key: nor does the column path."""

    def no_key() -> MaskingKey:
        raise LookupError("no masking key")

    mask = bind("hash", key_source=no_key)
    if any(v is not None for v in column):
        with pytest.raises(LookupError):
            [mask(v) for v in column]
        with pytest.raises(LookupError):
            many(mask)(list(column))
    else:
        assert many(mask)(list(column)) == [mask(v) for v in column] == [None] * len(column)
