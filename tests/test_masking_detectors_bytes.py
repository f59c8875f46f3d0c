"""bytea, text loaded as bytes, and values of other types are scanned too.

``convert_to(secret, 'UTF8')`` is the secret as bytes. Bytes that are UTF-8 text
are masked in place and encoded back (the value stays ``bytes``). Other bytes
are read as latin-1 (every byte a character): if a detector finds something
there, the whole value is replaced (fail closed), else it is returned as is.
"""

from __future__ import annotations

import random
from collections import namedtuple
from typing import Any

import pytest

from governed_db.masking import ColumnIdentity, MaskedValues, MaskRules, baseline_rules
from governed_db.masking.scan import UNSCANNED

RULES = MaskRules(baseline_rules())
BYTEA = RULES.plan([ColumnIdentity("b", None, 17)])
SECRET = "alice.smith@example.com paid with 4111 1111 1111 1111, password=Sup3rS3cret!"
MASKED = "a***@example.com paid with **** **** **** 1111, password=[REDACTED:secret]"


def _both(plan: Any, rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """The rows masked in bulk (apply_rows) and one at a time (the row maker)."""
    bulk = plan.start().apply_rows(rows)
    make = plan.start().wrap(tuple)
    return [list(bulk), [make(list(r)) for r in rows]]


def test_bytea_columns_are_scanned() -> None:
    (col,) = BYTEA.columns
    assert col.action == "scan"


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_utf8_bytes_are_masked_in_place(kind: Any) -> None:
    value = kind(SECRET.encode())
    for rows in _both(BYTEA, [(value,)]):
        (out,) = rows[0]
        assert type(out) is bytes
        assert out.decode() == MASKED


def test_utf8_bytes_keep_non_ascii_text() -> None:
    text = "Grüße von müller@bücher.de — ☃"
    (out,) = BYTEA.apply((text.encode(),))
    assert out.decode() == "Grüße von m***@bücher.de — ☃"


def test_clean_bytes_are_returned_as_they_are() -> None:
    values = [b"", b"plain bytes", bytes(range(256)), b"\x00\x01order 42\x00"]
    for rows in _both(BYTEA, [(v,) for v in values]):
        assert [r[0] for r in rows] == values
        assert all(r[0] is v for r, v in zip(rows, values, strict=True))


@pytest.mark.parametrize(
    "raw",
    [
        "Müller <alice@example.com>".encode("latin-1"),
        b"\xff\xfe\x00binary header\x00 alice@example.com \x9c\x00",
        b"\x80\x81 card 4111 1111 1111 1111 \xc0",
        b"\x0a\x11\xa0ghp_" + b"R4nd0mT0k3n" * 3 + b"abc\x92",
        b"\xffalice@example.com",  # glued to a byte that is a letter in latin-1
    ],
)
def test_undecodable_bytes_with_a_finding_are_masked_whole(raw: bytes) -> None:
    for rows in _both(BYTEA, [(raw,)]):
        (out,) = rows[0]
        assert type(out) is bytes
        assert out.startswith(b"[REDACTED:")
        for needle in (b"alice", b"4111", b"ghp_"):
            assert needle not in out


def test_undecodable_bytes_whose_trigger_finds_nothing_pass() -> None:
    raw = b"\xff\xfe v1@2.0 \x00 1234-5678 \x9c"  # the email trigger fires; no email
    assert BYTEA.apply((raw,)) == (raw,)


def test_random_binary_is_mostly_untouched() -> None:
    """Binary data holds trigger matches by chance; the detectors (and only ASCII
    findings counting) keep it from being redacted."""
    rnd = random.Random(7)
    blobs = [rnd.randbytes(10_000) for _ in range(200)]
    out = BYTEA.start().apply_rows([(b,) for b in blobs])
    assert sum(o != b for (o,), b in zip(out, blobs, strict=True)) <= 2


def test_huge_undecodable_bytes_with_a_trigger_fail_closed() -> None:
    rules = MaskRules(baseline_rules(), max_chars=1000)
    plan = rules.plan([ColumnIdentity("b", None, 17)])
    raw = b"\xff" * 2000 + b" alice@example.com"
    assert plan.apply((raw,)) == (UNSCANNED.encode(),)
    clean = b"\xff" * 2000
    assert plan.apply((clean,)) == (clean,)


def test_bytes_inside_arrays_and_untyped_columns() -> None:
    plan = RULES.plan([ColumnIdentity("a", None, 1001), ColumnIdentity("u", None, None)])
    row = ([b"ok", SECRET.encode(), None], SECRET.encode())
    for rows in _both(plan, [row]):
        arr, untyped = rows[0]
        assert arr[0] == b"ok"
        assert arr[2] is None
        assert arr[1].decode() == MASKED
        assert untyped.decode() == MASKED


def test_text_columns_loaded_as_bytes() -> None:
    """A registered bytea loader for text: the column says text, the values are bytes."""
    plan = RULES.plan([ColumnIdentity("t", "public.vault.c1", 25)])
    rows = [(SECRET.encode(),), (b"clean",), (None,), ("alice@example.com",)]
    for out in _both(plan, rows):
        assert [r[0] for r in out] == [MASKED.encode(), b"clean", None, "a***@example.com"]


class Wrapped:
    """A user's own type for loaded text."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __str__(self) -> str:
        return self.value


def test_values_of_other_types_are_masked_by_their_text() -> None:
    plan = RULES.plan([ColumnIdentity("t", None, 25), ColumnIdentity("u", None, None)])
    clean = Wrapped("nothing here")
    rows = [(Wrapped(SECRET), Wrapped(SECRET)), (clean, clean)]
    for out in _both(plan, rows):
        assert out[0] == (MASKED, MASKED)
        assert out[1][0] is clean
        assert out[1][1] is clean


def test_composite_values_keep_their_type() -> None:
    Pair = namedtuple("Pair", "email note")
    plan = RULES.plan([ColumnIdentity("c", None, None)])
    (out,) = plan.apply((Pair("alice@example.com", "ok"),))
    assert out == Pair("a***@example.com", "ok")
    assert type(out) is Pair


def test_masked_bytes_are_counted_and_remembered() -> None:
    memory = MaskedValues()
    masker = BYTEA.start(memory)
    masker.apply_rows([(SECRET.encode(),), (b"\xffalice@example.com",)])
    assert sum(c.values for c in masker.counts()) >= 2
    assert "a***@example.com" in memory
    assert memory.find_in_text("update t set b = '[REDACTED:email]'") is not None


class Tagged(str):
    """A str subclass, as a custom loader might return."""


def test_values_of_other_types_without_findings_keep_their_type() -> None:
    """A value rewritten for something else keeps its untouched neighbours as they are."""
    Pair = namedtuple("Pair", "email note")
    plan = RULES.plan([ColumnIdentity("c", None, None)])
    clean, pair, tag = Wrapped("nothing"), Pair("x", "ok"), Tagged("plain")
    doc = [clean, pair, tag, {"m": "alice@example.com"}]
    for rows in _both(plan, [(doc,)]):
        (out,) = rows[0]
        assert out[0] is clean
        assert out[1] is pair
        assert out[2] is tag
        assert out[3] == {"m": "a***@example.com"}
    (out,) = plan.apply(([Tagged("alice@example.com"), Pair("alice@example.com", "ok")],))
    assert out == ["a***@example.com", Pair("a***@example.com", "ok")]
    assert type(out[1]) is Pair


def test_writing_masked_bytes_back_is_caught() -> None:
    memory = MaskedValues()
    out = BYTEA.start(memory).apply_rows([(b"mail alice@example.com",), (b"\xffbob@example.com",)])
    (masked_text,), (masked_binary,) = out
    assert memory.find_in_params((masked_text, 1)) is not None
    assert memory.find_in_params([{"b": masked_binary}]) is not None
    assert memory.find_in_params((b"unrelated bytes", bytearray(b"\xff\x00"))) is None
