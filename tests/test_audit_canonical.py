"""Canonical JSON: the exact bytes that are hashed and signed."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal

import pytest

from governed_db.audit import canonical_json, record_hash
from governed_db.audit.canonical import jsonable


def test_sorted_keys_no_whitespace_raw_utf8() -> None:
    value = {"b": 1, "a": [True, None, "é€😀"], "c": {"z": "", "y": -3}}
    assert canonical_json(value) == '{"a":[true,null,"é€😀"],"b":1,"c":{"y":-3,"z":""}}'.encode()


def test_escapes_only_quote_backslash_and_controls() -> None:
    text = 'q"b\\n\n t\t\x01\x1f/\u2028\x7f'
    out = canonical_json({"s": text})
    assert out == b'{"s":"q\\"b\\\\n\\n t\\t\\u0001\\u001f/\xe2\x80\xa8\x7f"}'
    assert json.loads(out)["s"] == text


def test_floats_are_refused_unless_made_jsonable() -> None:
    assert canonical_json(jsonable({"f": 1.5, "d": Decimal("2.50"), "n": 2**60})) == (
        b'{"d":"2.50","f":"1.5","n":"1152921504606846976"}'
    )
    with pytest.raises(ValueError, match="Out of range float"):
        canonical_json({"f": float("nan")})


def test_jsonable_other_types() -> None:
    when = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    assert jsonable({1: b"\x00\xff", "t": when, "s": {"b", "a"}, "x": ("a", 1)}) == {
        "1": "\\x00ff",
        "t": "2024-05-01T12:00:00+00:00",
        "s": ["a", "b"],
        "x": ["a", 1],
    }


def test_lone_surrogate_is_replaced_not_fatal() -> None:
    assert canonical_json({"s": "a\ud800b"}) == b'{"s":"a?b"}'


def test_hash_leaves_out_hash_and_sig() -> None:
    body = {"seq": 1, "kind": "intent"}
    expected = hashlib.sha256(b'{"kind":"intent","seq":1}').hexdigest()
    assert record_hash(body) == expected
    assert record_hash({**body, "hash": "x", "sig": "y"}) == expected
