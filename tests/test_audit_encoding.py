"""The writer's fast encoding produces exactly the bytes of ``canonical_json``."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from governed_db.audit import MemorySink, Signer, canonical_json, record_hash
from governed_db.audit.canonical import fragments, timestamp_ns, utc_timestamp
from governed_db.audit.chain import Chain
from tests.audit_helpers import trail

SIGNER = Signer.generate()
RECORD_KEYS = [
    "kind",
    "session.id",
    "db.query.text",
    "db.system",
    "identity",
    "facts",
    "decision",
    "tables_read",
    "has",
    "hasx",
    "has_where",
    "sif",
    "sigx",
    "t",
    "ts",
    "zz",
]
SAFE_INT = st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
SCALARS = st.none() | st.booleans() | SAFE_INT | st.text()
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
BODIES = st.dictionaries(
    st.sampled_from(RECORD_KEYS) | st.text(min_size=1, max_size=6), VALUES, max_size=12
).filter(lambda d: not {"v", "chain", "seq", "prev", "kid", "hash", "sig"} & set(d))


def _both(body: dict[str, Any], *, sign: bool, signing: str) -> tuple[bytes, bytes | None]:
    """(reference line, fast line or None when the fast path declines the keys)."""
    body = {"ts": "2024-05-01T12:00:00.000001Z", **body}  # seal() would add the time now
    reference = Chain(SIGNER, chain_id="c" * 32, signing=signing, last_seq=4, last_hash="a" * 64)
    fast = Chain(SIGNER, chain_id="c" * 32, signing=signing, last_seq=4, last_hash="a" * 64)
    expected = reference.seal(dict(body), sign=sign)
    frags = fragments(body)
    if frags is None:
        return expected.line, None
    try:
        seq, digest, line, signed = fast.seal_fragments(list(frags), sign=sign)
    except UnicodeEncodeError:  # lone surrogate: the writer takes the reference path
        return expected.line, None
    assert (seq, digest, signed) == (expected.seq, expected.hash, "sig" in expected.data)
    return expected.line, line


@settings(max_examples=400, deadline=None)
@given(BODIES, st.booleans(), st.sampled_from(["checkpoint", "every"]))
def test_fragments_seal_to_the_canonical_bytes(
    body: dict[str, Any], sign: bool, signing: str
) -> None:
    expected, fast = _both(body, sign=sign, signing=signing)
    if fast is not None:
        assert fast == expected
        record = json.loads(fast)
        assert canonical_json(record) == fast
        assert record["hash"] == record_hash(record)


def test_prefix_keys_and_neighbours_of_hash_and_sig() -> None:
    body = {"has": 1, "hasx": 2, "has_where": 3, "sif": 4, "sigx": 5, "h": 6, "s": 7, "z": 8}
    for sign in (False, True):
        expected, fast = _both(body, sign=sign, signing="checkpoint")
        assert fast == expected


def test_unsafe_keys_fall_back() -> None:
    assert fragments({"a b": 1}) is None
    assert fragments({'a"': 1}) is None
    assert fragments({"a\\b": 1}) is None
    assert fragments({"ok.key_1": 1}) is not None


@settings(max_examples=150, deadline=None)
@given(
    statement=st.text(max_size=60),
    identity=st.dictionaries(st.text(min_size=1, max_size=6), SCALARS, max_size=4),
    params=st.lists(SCALARS, max_size=3) | st.none(),
    rowcount=st.none() | st.integers(min_value=-5, max_value=2**60),
)
def test_trail_lines_are_canonical(
    statement: str, identity: dict[str, Any], params: Any, rowcount: int | None
) -> None:
    mem = MemorySink()
    t = trail(None, SIGNER, [mem], parameters="plain")
    s = t.session({"host": "h", "port": 5432}, identity, "test")
    prepared = t.prepare({"operation": "select", "tables_read": ["t"]}, {"action": "allow"})
    ref = t.intent(s, statement, params=params, prepared=prepared)
    t.outcome(ref, rowcount=rowcount, duration_ms=1.25, masking={"m": [1, "x"]})
    t.close()
    for line, record in zip(mem.lines, mem.records, strict=True):
        assert canonical_json(record) == line
        assert record["hash"] == record_hash(record)
    intent = mem.of_kind("intent")[0]
    assert mem.of_kind("outcome")[0]["intent"] == intent["hash"] == ref.hash


def test_lone_surrogate_in_statement_is_replaced() -> None:
    mem = MemorySink()
    t = trail(None, SIGNER, [mem])
    s = t.session({}, {}, "test")
    t.intent(s, "SELECT 'a\ud800b'", decision={"action": "allow"})
    t.close()
    (intent,) = mem.of_kind("intent")
    assert intent["db.query.text"] == "SELECT 'a?b'"
    assert canonical_json(intent) == mem.lines[2]


@given(st.integers(min_value=0, max_value=4_102_444_800 * 10**9))
def test_timestamp_ns_matches_strftime(ns: int) -> None:
    when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ns // 1000)
    assert timestamp_ns(ns) == utc_timestamp(when)
