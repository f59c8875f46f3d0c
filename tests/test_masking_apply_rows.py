"""Many rows at once (``apply_rows``) give what one row at a time gives.

``apply_rows`` masks a chunk of rows at a time, a column at a time, and
rebuilds the rows of a chunk in place; the generated row maker masks one row.
Whatever the rows hold and wherever the chunks fall, the output, the counts
and the remembered masked values must be the same.
"""

from __future__ import annotations

import gc
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governed_db.masking import (
    ColumnIdentity,
    MaskedValues,
    MaskingKey,
    MaskRule,
    MaskRules,
    baseline_rules,
)
from governed_db.masking import apply as apply_mod

KEY = MaskingKey(b"k" * 32, "test")
RULES = MaskRules(
    [
        MaskRule("emails", columns=["people.email"], method="email"),
        MaskRule("cards", columns=["people.card"], method="last4"),
        MaskRule("ids", columns=["people.ssn"], method="partial", options={"keep_last": 2}),
        MaskRule("keys", columns=["people.api_key"], method="hash"),
        MaskRule("gone", columns=["people.secret"], method="null"),
        *baseline_rules(),
    ],
    key_source=lambda: KEY,
)
COLUMNS = [
    ColumnIdentity("id", "public.people.id", 23),
    ColumnIdentity("email", "public.people.email", 25),
    ColumnIdentity("note", "public.people.note", 25),
    ColumnIdentity("card", "public.people.card", 25),
    ColumnIdentity("ssn", "public.people.ssn", 25),
    ColumnIdentity("doc", "public.people.doc", 3802),
    ColumnIdentity("api_key", "public.people.api_key", 25),
    ColumnIdentity("secret", "public.people.secret", 25),
]
PLAN = RULES.plan(COLUMNS)

_text = st.text(st.sampled_from(list("ab@. 0123456789-\n")), max_size=20)
_notes = st.one_of(
    st.none(),
    _text,
    st.sampled_from(["mail bob@example.com", "card 4111 1111 1111 1111", "order 42"]),
)
_row = st.tuples(
    st.integers(0, 10**6),
    st.one_of(st.none(), _text, st.just("user@example.com")),
    _notes,
    st.one_of(st.none(), st.text("0123456789", min_size=16, max_size=16), _text),
    st.one_of(st.none(), st.just("123-45-6789"), _text),
    st.one_of(st.none(), st.fixed_dictionaries({"mail": _notes})),
    st.one_of(st.none(), _text),
    st.one_of(st.none(), _text),
)


def test_the_plan_masks_and_scans() -> None:
    actions = [c.action for c in PLAN.columns]
    assert actions == ["untouched", "mask", "scan", "mask", "mask", "scan", "mask", "mask"]


def _one_by_one(rows: list[tuple[Any, ...]]) -> tuple[list[Any], list[Any], set[str]]:
    memory = MaskedValues()
    masker = PLAN.start(memory)
    make = masker.wrap(tuple)
    out = [make(list(r)) for r in rows]
    return out, masker.counts(), {v for r in out for v in r if v in memory}


def _bulk(rows: list[tuple[Any, ...]], owned: bool) -> tuple[list[Any], list[Any], set[str]]:
    memory = MaskedValues()
    masker = PLAN.start(memory)
    given_rows = list(rows)
    out = masker.apply_rows(given_rows, owned=owned)
    if owned:
        assert out is given_rows
    else:
        assert given_rows == rows
    return out, masker.counts(), {v for r in out for v in r if v in memory}


@pytest.mark.parametrize("chunk", [1, 3, 1024])
@given(rows=st.lists(_row, max_size=12), owned=st.booleans())
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_bulk_equals_one_row_at_a_time(
    chunk: int, rows: list[tuple[Any, ...]], owned: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(apply_mod, "_CHUNK", chunk)
    assert _bulk(rows, owned) == _one_by_one(rows)


def _many_rows(n: int, seed: int) -> list[tuple[Any, ...]]:
    rnd = random.Random(seed)
    notes = ["order 42", "mail bob@example.com", "", None, "ref 4111 1111 1111 1111 paid"]
    return [
        (
            i,
            None if i % 97 == 0 else f"user{i}@example.com",
            rnd.choice(notes),
            f"4{i:015d}" if i % 13 else "4111 1111 1111 1111",
            "123-45-6789" if i % 5 else None,
            {"mail": rnd.choice(notes)} if i % 7 == 0 else None,
            f"key-{i}",
            "s" if i % 3 else None,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("n", [1023, 1024, 1025, 3000])
@pytest.mark.parametrize("owned", [False, True])
def test_across_chunk_boundaries(n: int, owned: bool) -> None:
    rows = _many_rows(n, n)
    assert _bulk(rows, owned) == _one_by_one(rows)


def test_masked_values_are_remembered() -> None:
    rows = _many_rows(2100, 1)
    memory = MaskedValues()
    out = PLAN.start(memory).apply_rows(rows)
    assert "u***@example.com" in memory
    assert "************2099" in memory  # from the last chunk
    assert all(r[1] is None or r[1] in memory for r in out)


@pytest.mark.skipif(not gc.isenabled(), reason="the garbage collector is off")
def test_a_large_owned_batch_does_not_set_off_the_collector() -> None:
    """The rows of each chunk are freed before its new rows are made, so the new
    tuples come from the free list: 100k rows cost no run of the collector per
    700 tuples (before chunking: about 140)."""
    plan = RULES.plan([COLUMNS[0], COLUMNS[1], COLUMNS[3]])  # id, email, card: masked whole
    rows = [(i, f"user{i}@example.com", f"4{i:015d}") for i in range(100_000)]
    runs: list[int] = []

    def count(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            runs.append(info["generation"])

    gc.collect()
    gc.callbacks.append(count)
    try:
        out = plan.start().apply_rows(rows, owned=True)
    finally:
        gc.callbacks.remove(count)
    assert out[5] == (5, "u***@example.com", "************0005")
    assert len(runs) < 10, runs
