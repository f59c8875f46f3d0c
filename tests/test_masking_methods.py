"""Masking methods on every kind of value, the registry, and failures that fail closed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from governed_db.errors import GovernanceError, PolicyError
from governed_db.masking import (
    BUILTIN_METHODS,
    ColumnIdentity,
    MaskingError,
    MaskingKey,
    MaskRule,
    MaskRules,
    UnknownMethodError,
    bind,
    method,
    methods,
    register,
    unregister,
)

KEY = MaskingKey(b"k" * 32, "test")


def fn(name: str, **options: Any) -> Any:
    return bind(name, category="email", options=options, key_source=lambda: KEY)


@pytest.mark.parametrize("name", BUILTIN_METHODS)
def test_none_stays_none(name: str) -> None:
    assert fn(name)(None) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("john@example.com", "j***@example.com"),
        ("j@x.io", "j***@x.io"),
        ("not an email", "n***********"),
        ("ab", "***"),
        (12345, "1****"),
        (b"bytes", "[REDACTED:email]"),
        ({"a": 1}, "[REDACTED:email]"),
        (True, "[REDACTED:email]"),
    ],
)
def test_email(value: Any, expected: str) -> None:
    assert fn("email")(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("4111111111111111", "************1111"),
        (4111111111111111, "************1111"),
        (Decimal("4111111111111111"), "************1111"),
        ("4111 1111 1111 1111", "**** **** **** 1111"),
        ("4111-1111-1111-1111", "****-****-****-1111"),
        ("12345", "***45"),
        ("123", "***"),
        ("12", "***"),
        ([4111111111111111], "[REDACTED:email]"),
        (memoryview(b"x"), "[REDACTED:email]"),
    ],
)
def test_last4(value: Any, expected: str) -> None:
    assert fn("last4")(value) == expected


@pytest.mark.parametrize(
    ("value", "options", "expected"),
    [
        ("John Smith", {}, "J********h"),
        ("John Smith", {"keep_first": 2, "keep_last": 0}, "Jo********"),
        ("+1 415-555-2671", {"keep_first": 0, "keep_last": 2}, "*************71"),
        ("abcd", {"keep_first": 2, "keep_last": 2}, "a***"),
        ("abc", {}, "***"),
        (dt.date(2024, 3, 5), {}, "2********5"),
        (dt.datetime(2024, 3, 5, 12, 0), {"keep_first": 4, "keep_last": 0}, "2024***************"),
        (UUID(int=1), {"keep_first": 0, "keep_last": 4}, "*" * 32 + "0001"),
        (Decimal("12.50"), {}, "1***0"),
        (3.5, {}, "***"),
        (dt.timedelta(hours=1), {}, "1*****0"),
    ],
)
def test_partial(value: Any, options: dict[str, int], expected: str) -> None:
    assert fn("partial", **options)(value) == expected


@pytest.mark.parametrize(
    "value", ["x", 0, 10**20, Decimal("1.5"), b"\x00", {"a": [1]}, [1, "a"], dt.date.today()]
)
def test_redact_and_null_take_any_value(value: Any) -> None:
    assert fn("redact")(value) == "[REDACTED:email]"
    assert fn("null")(value) is None


def test_hash_is_a_keyed_stable_pseudonym() -> None:
    h = fn("hash")
    a = h("john@example.com")
    assert a.startswith("hmac:")
    assert len(a) == 5 + 16
    assert h("john@example.com") == a != h("jane@example.com")
    assert h(42) == h("42")  # joins between a number and its text still work
    assert h({"b": 1, "a": 2}) == h({"a": 2, "b": 1})
    assert h(b"raw") != h("raw!")
    other = bind("hash", key_source=lambda: MaskingKey(b"o" * 32))
    assert other("john@example.com") != a
    short = fn("hash", prefix="cust_", length=8)("john@example.com")
    assert short.startswith("cust_")
    assert len(short) == 13


def test_hash_key_is_loaded_once_at_first_use() -> None:
    calls = []

    def source() -> MaskingKey:
        calls.append(1)
        return KEY

    h = bind("hash", key_source=source)
    assert calls == []
    h("a")
    h("b")
    assert calls == [1]


def test_hash_without_key_source_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match="masking key"):
        bind("hash")


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("partial", {"keep_frist": 1}, "did you mean 'keep_first'"),
        ("partial", {"keep_first": -1}, "non-negative"),
        ("partial", {"keep_first": True}, "non-negative"),
        ("partial", {"keep_first": "2"}, "non-negative int"),
        ("redact", {"x": 1}, "options: none"),
        ("hash", {"length": 4}, "between 8 and 64"),
    ],
)
def test_bad_options_fail_at_bind(name: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        fn(name, **options)


def test_unknown_method_is_a_load_time_error() -> None:
    with pytest.raises(UnknownMethodError, match="did you mean 'redact'"):
        method("redakt")
    with pytest.raises(UnknownMethodError):
        MaskRule(id="r", column_names=["x"], method="nope")
    assert isinstance(UnknownMethodError("x"), PolicyError)


def test_register_custom_method() -> None:
    def initials(value: Any, sep: str = ".") -> str:
        return sep.join(w[0] for w in str(value).split()) + sep

    try:
        assert register("initials", initials) is initials
        assert "initials" in methods()
        assert method("initials") is initials
        assert bind("initials")("John Smith") == "J.S."
        assert bind("initials", options={"sep": "-"})("John Smith") == "J-S-"
        assert bind("initials")(None) is None
        with pytest.raises(ValueError, match="already registered"):
            register("initials", lambda v: v)
        register("initials", initials)  # the same function again is fine
        register("initials", str.upper, replace=True)
        assert bind("initials")("ab") == "AB"
    finally:
        unregister("initials")
    with pytest.raises(UnknownMethodError):
        method("initials")


def test_register_as_decorator() -> None:
    try:

        @register("stars")
        def stars(value: Any) -> str:
            return "*" * len(str(value))

        assert bind("stars")("abc") == "***"
    finally:
        unregister("stars")


@pytest.mark.parametrize("name", ["redact", "Bad Name", "", "1x", "x" * 70])
def test_register_refuses_bad_names(name: str) -> None:
    with pytest.raises(ValueError, match="masking method"):
        register(name, str)


def test_register_refuses_non_callables() -> None:
    with pytest.raises(TypeError, match="not callable"):
        register("thing", 42)  # type: ignore[call-overload]


def test_custom_method_that_raises_fails_the_fetch_closed() -> None:
    def broken(value: Any) -> Any:
        raise ValueError(f"cannot mask {value}")

    register("broken", broken, replace=True)
    try:
        rules = MaskRules([MaskRule(id="mask-ssn", column_names=["ssn"], method="broken")])
        plan = rules.plan([ColumnIdentity("id"), ColumnIdentity("ssn", "public.p.ssn", 25)])
        for attempt in (
            lambda: plan.start().apply((1, "536-90-4399")),
            lambda: plan.start().apply_rows([(1, "536-90-4399")]),
            lambda: plan.start().wrap(tuple)([1, "536-90-4399"]),
        ):
            with pytest.raises(GovernanceError) as info:
                attempt()
            err = info.value
            assert isinstance(err, MaskingError)
            assert err.rule_id == "mask-ssn"
            assert err.column == "ssn"
            assert "mask-ssn" in str(err)
            assert "ValueError" in str(err)
            assert "536-90-4399" not in str(err)
            assert err.__cause__ is None
            assert err.__suppress_context__
    finally:
        unregister("broken")


def test_custom_method_raising_inside_text_fails_closed() -> None:
    def broken(value: Any) -> Any:
        raise RuntimeError("boom")

    register("broken2", broken, replace=True)
    try:
        rules = MaskRules([MaskRule(id="emails", detectors=["email"], method="broken2")])
        plan = rules.plan([ColumnIdentity("note", None, 25)])
        with pytest.raises(MaskingError, match="emails") as info:
            plan.start().apply_rows([("write to john@example.com",)])
        assert "john@example.com" not in str(info.value)
        with pytest.raises(MaskingError, match="did not return text"):
            register("number", lambda v: 1, replace=True)
            MaskRules([MaskRule(id="e", detectors=["email"], method="number")]).plan(
                [ColumnIdentity("note", None, 25)]
            ).start().apply(("a john@example.com",))
    finally:
        unregister("broken2")
        unregister("number")


MIXED: list[Any] = [
    None,
    "john@example.com",
    "@x.io",
    "no at sign",
    "",
    "a@",
    "x@y@z.co",
    "4111111111111111",
    "4111 1111 1111 1111",
    "123",
    5,
    4111111111111111,
    Decimal("10.5"),
    b"bytes",
    {"a": 1},
    dt.date(2024, 1, 2),
]


@pytest.mark.parametrize("name", BUILTIN_METHODS)
@pytest.mark.parametrize(
    "values",
    [
        MIXED,
        ["4111111111111111", "5500000000000004"],
        ["4111111111111111", "378282246310005"],
        ["1234567"] * 3,
        ["123456"],
        ["a@b.co", "c@d.io"],
        [],
    ],
)
def test_column_at_once_equals_value_by_value(name: str, values: list[Any]) -> None:
    from governed_db.masking.methods import many

    single = fn(name)
    assert many(single)(list(values)) == [single(v) for v in values]
