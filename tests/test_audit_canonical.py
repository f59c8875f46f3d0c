"""Canonical JSON: the exact bytes that are hashed and signed."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governed_db.audit import MemorySink, Signer, canonical_json, record_hash
from governed_db.audit.canonical import CanonicalJSON, canonical_text, jsonable
from governed_db.audit.chain import Chain
from governed_db.audit.records import AuditSession, IntentRef, masked_counts, prepare
from governed_db.audit.writer import SpoolWriter


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


# -- the writer's templates produce the documented bytes --------------------------------

_SAFE_INT = st.integers(-(2**53) + 1, 2**53 - 1)
_SCALAR = st.none() | st.booleans() | _SAFE_INT | st.text()
_VALUE = st.recursive(
    _SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _reference(value: object) -> str:
    """The canonical form as docs/audit.md words it, written without the json module."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        short = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r"}
        short["\t"] = "\\t"
        out = []
        for ch in value:
            if ch in short:
                out.append(short[ch])
            elif ord(ch) < 0x20:
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    if isinstance(value, list):
        return "[" + ",".join(_reference(v) for v in value) + "]"
    assert isinstance(value, dict)
    items = sorted(value.items())
    return "{" + ",".join(f"{_reference(k)}:{_reference(v)}" for k, v in items) + "}"


def _writer(signer: Signer | None = None) -> tuple[SpoolWriter, MemorySink]:
    sink = MemorySink()
    chain = Chain(signer, chain_id="0123456789abcdef0123456789abcdef")
    return SpoolWriter(chain, None, [sink], redact=False), sink


def _check(line: bytes) -> dict[str, object]:
    data = json.loads(line)
    assert line.decode() == _reference(data)  # the documented form, byte for byte
    assert line == canonical_json(data)
    assert data["hash"] == record_hash(data)
    return data  # type: ignore[no-any-return]


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(),
    identity=st.dictionaries(st.text(), _VALUE, max_size=4),
    environment=st.text(),
    facts=st.fixed_dictionaries(
        {"operation": st.text(min_size=1), "tables_read": st.lists(st.text(), max_size=3)},
        optional={"statement_class": st.text(), "functions": st.lists(st.text(), max_size=3)},
    ),
    reason=st.text(),
    hmac_value=st.none() | st.text(),
    rowcount=st.none() | st.integers(-1, 2**53 - 1),
    rows=st.none() | _SAFE_INT,
    duration=st.none() | st.integers(0, 2**53 - 1),
    error=st.none() | st.text(),
    sqlstate=st.none() | st.sampled_from(["23505", "42501", "57014"]),
    masking=st.none() | st.dictionaries(st.text(), _VALUE, max_size=3),
    counts=st.lists(
        st.tuples(
            st.text(),
            st.none() | st.text(),
            st.text(),
            st.text(),
            _SAFE_INT.filter(lambda n: n >= 0),
        ),
        max_size=4,
    ),
)
def test_template_records_are_the_documented_bytes(
    text: str,
    identity: dict[str, object],
    environment: str,
    facts: dict[str, object],
    reason: str,
    hmac_value: str | None,
    rowcount: int | None,
    rows: int | None,
    duration: int | None,
    error: str | None,
    sqlstate: str | None,
    masking: dict[str, object] | None,
    counts: list[tuple[str, str | None, str, str, int]],
) -> None:
    writer, sink = _writer()
    session = AuditSession("s1", {"identity": identity, "deployment.environment.name": environment})
    plan = prepare(facts, {"action": "allow", "reason": reason})
    extra = None if hmac_value is None else {"parameters_hmac": hmac_value}
    ref = IntentRef("s1", -1, None, writer.chain.id)
    entries = [
        ("intent", 1_700_000_000_123_456_789, session, plan, text, extra, ref),
        ("refused", 1_700_000_000_123_456_790, session, plan, text, None, None),
        ("outcome", 1_700_000_000_223_456_789, ref, rowcount, rows, duration, sqlstate, error,
         None if masking is None else jsonable(masking)),
        ("masked", 1_700_000_000_323_456_789, ref, masked_counts(counts)),
    ]  # fmt: skip
    writer.append_many(entries)
    intent, refused, outcome, masked = (_check(line) for line in sink.lines)
    assert masked["intent"] == intent["hash"]
    assert masked["intent_seq"] == 0
    assert masked["counts"] == [
        {"column": _text(c), "source": "computed" if s is None else _text(s), "rule": _text(r),
         "method": _text(m), "values": n}
        for c, s, r, m, n in counts
    ]  # fmt: skip
    assert intent["db.query.text"] == refused["db.query.text"] == _text(text)
    assert intent["identity"] == jsonable(identity)
    assert intent.get("parameters_hmac") == (None if extra is None else _text(hmac_value or ""))
    assert (intent["seq"], refused["seq"], outcome["seq"]) == (0, 1, 2)
    assert refused["prev"] == intent["hash"]
    assert outcome["prev"] == refused["hash"]
    assert outcome["intent"] == intent["hash"] == ref.hash
    assert outcome["intent_seq"] == 0
    assert outcome["rowcount"] == (None if rowcount is None or rowcount < 0 else rowcount)
    assert outcome["masking"] == (None if masking is None else jsonable(masking))
    assert outcome["duration_us"] == duration
    assert outcome["db.response.status_code"] == sqlstate
    assert outcome["error.type"] == (None if error is None else _text(error))
    assert intent["ts"] == "2023-11-14T22:13:20.123456Z"


def _text(value: str) -> str:
    return value.encode("utf-8", "replace").decode("utf-8")


def test_templates_are_used_and_match_the_reference_path() -> None:
    """The same entries through the template and through the fragment path: same bytes."""
    fast, fast_sink = _writer()
    slow, slow_sink = _writer()
    session = AuditSession("s", {"identity": {"user": "a\nb"}, "db.user": "u"})
    plan = prepare({"operation": "select", "tables_read": ["t"]}, {"action": "allow"})
    ref1, ref2 = IntentRef("s", -1, None), IntentRef("s", -1, None)
    make = lambda ref: [  # noqa: E731
        ("intent", 10**18, session, plan, 'select "x"', None, ref),
        ("outcome", 10**18 + 5000, ref, 1, 1, 500, None, None, {"columns": [{"n": 1}]}),
        ("masked", 10**18 + 6000, ref, (("e\n", "public.t.e", "r", "email", 3),)),
        ("masked", 10**18 + 7000, ref, (("e\n", None, "r", "email", 3),)),
    ]
    fast.append_many(make(ref1))
    slow._seal_statement = lambda *a: None  # type: ignore[method-assign]
    slow._seal_masked = _no_template  # type: ignore[method-assign]
    for entry in make(ref2):  # the reference path, one record at a time
        slow.append(entry)
    assert fast._statements, "the intent went through a template"
    assert len(fast._counts) == 2, "the masked records went through theirs"
    assert fast_sink.lines == slow_sink.lines


def test_lone_surrogates_take_the_replacing_path() -> None:
    writer, sink = _writer()
    session = AuditSession("s", {"identity": {"user": "x"}})
    plan = prepare({"operation": "select"}, {"action": "allow"})
    ref = IntentRef("s", -1, None)
    writer.append_many(
        [
            ("intent", 10**18, session, plan, "select 'a\ud800b'", None, ref),
            ("outcome", 10**18, ref, 0, 0, 1000, None, "Err\udfff", None),
        ]
    )
    intent, outcome = (_check(line) for line in sink.lines)
    assert intent["db.query.text"] == "select 'a?b'"
    assert outcome["error.type"] == "Err?"
    assert outcome["intent"] == intent["hash"]


def test_pre_encoded_values_are_written_as_the_value_would_be() -> None:
    """A CanonicalJSON masking field gives the bytes the mapping gives, on both paths."""
    masking = {"columns": [{"name": "é\n", "source": "public.t.x", "action": "mask"}]}
    lines = []
    for value in (jsonable(masking), canonical_text(masking)):
        for reference in (False, True):
            writer, sink = _writer()
            if reference:
                writer._seal_outcome = _no_template  # type: ignore[method-assign]
            ref = IntentRef("s", 3, "ab" * 32)
            writer.append_many([("outcome", 10**18, ref, 1, 1, 500, None, None, value)])
            lines.append(sink.lines[0])
            assert _check(sink.lines[0])["masking"] == masking
    assert len(set(lines)) == 1
    assert isinstance(canonical_text(masking), CanonicalJSON)
    assert canonical_text(masking) == canonical_json(masking).decode()


def _no_template(*_: object) -> tuple[str, bytes]:
    raise UnicodeEncodeError("utf-8", "", 0, 1, "force the reference path")
