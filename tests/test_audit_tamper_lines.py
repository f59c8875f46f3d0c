"""Tampering with the form of a line: every line must be exactly its record's canonical form.

Hostile lines (NaN, deep nesting, not JSON) are reported as malformed and
checking goes on; lines that hold the right record in another form (duplicate
keys, whitespace, key order, escapes, number forms) are tampering.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from governed_db.audit import Signer, canonical_json
from governed_db.audit.verify_lines import MAX_DEPTH, decode, is_canonical, too_deep
from tests.audit_helpers import cli, kinds, only_file, session, trail, verify, workload


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate()


@pytest.fixture
def spool(tmp_path: Path, signer: Signer) -> Path:
    path = tmp_path / "spool"
    t = trail(path, signer, checkpoint_every=10)
    workload(t, session(t), 12)
    t.close()
    return path


def lines_of(path: Path) -> list[bytes]:
    return only_file(path).read_bytes().splitlines()


def write(path: Path, lines: list[bytes]) -> None:
    only_file(path).write_bytes(b"".join(line + b"\n" for line in lines))


CANONICAL: dict[str, Any] = {
    "sort_keys": True,
    "separators": (",", ":"),
    "ensure_ascii": False,
}


def rehashed(record: dict[str, object]) -> dict[str, object]:
    """The record with its hash recomputed (what a forger without the key can do)."""
    out = dict(record)
    body = {k: v for k, v in out.items() if k not in ("hash", "sig")}
    out["hash"] = hashlib.sha256(json.dumps(body, **CANONICAL).encode()).hexdigest()
    return out


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_malformed_and_checking_goes_on(
    spool: Path, signer: Signer, constant: bytes
) -> None:
    lines = lines_of(spool)
    outcome = next(i for i, line in enumerate(lines) if b'"kind":"outcome"' in line)
    intent = next(i for i in range(outcome + 1, len(lines)) if b"WHERE id = " in lines[i])
    lines[outcome] = lines[outcome].replace(b'"rowcount":1', b'"rowcount":' + constant)
    lines[intent] = lines[intent].replace(b"WHERE id = ", b"WHERE id <> ")  # still found later
    write(spool, lines)
    report = verify(spool, signer)
    found = {(p.kind, p.where.rsplit(":", 1)[-1]) for p in report.errors}
    assert ("malformed", str(outcome + 1)) in found
    assert ("modified", str(intent + 1)) in found
    assert any("NaN or Infinity" in p.message for p in report.errors)
    assert ("deleted", outcome) in kinds(report)  # its seq is missing from the chain


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 2000, 100_000])
@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_deep_nesting_is_malformed_without_recursion(
    spool: Path, signer: Signer, depth: int, opener: bytes
) -> None:
    closer = b"]" if opener == b"[" else b"}"
    deep = opener * depth + b"1" + closer * depth
    lines = lines_of(spool)
    lines[3] = lines[3][:-1] + b',"zz":' + deep + b"}"
    write(spool, lines)
    report = verify(spool, signer)
    assert report.errors  # a deep but well-formed record is just a modified one
    if depth > 1024:  # beyond orjson's limit: measured without recursion, reported malformed
        assert [p.kind for p in report.errors if p.where.endswith(":4")] == ["malformed"]
        assert any("nested more than" in p.message for p in report.errors), report.errors


def test_deep_nesting_inside_strings_is_not_nesting() -> None:
    line = b'{"a":"' + b"[" * 5000 + b'","b":1}'
    assert not too_deep(line)
    assert isinstance(decode(line), dict)
    assert too_deep(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    assert not too_deep(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    assert too_deep(b'{"a":"\\"",' + b'"b":' + b"[" * 100 + b"]" * 100 + b"}")


def test_duplicate_key_is_tampering_whichever_copy_a_reader_keeps(
    spool: Path, signer: Signer
) -> None:
    lines = lines_of(spool)
    record = json.loads(lines[2])
    assert record["kind"] == "intent"
    forged = b',"db.query.text":"SELECT 1"'
    # first copy forged, last copy genuine: last-wins readers (and the hash) see the genuine one
    at = lines[2].index(b'"db.query.text"')
    lines[2] = lines[2][:at] + forged[1:] + b"," + lines[2][at:]
    write(spool, lines)
    assert json.loads(lines[2])["db.query.text"] == record["db.query.text"]
    assert kinds(verify(spool, signer)) == {("non-canonical", 2)}


def test_duplicate_key_with_identical_values_is_still_tampering(
    spool: Path, signer: Signer
) -> None:
    lines = lines_of(spool)
    lines[5] = lines[5].replace(b'"kind":"', b'"kind":"intent","kind":"', 1)
    write(spool, lines)
    assert ("non-canonical", 5) in kinds(verify(spool, signer))


def FLOAT(line: bytes) -> bytes:
    return line.replace(b":5432,", b":5432.0,", 1)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda line: line.replace(b'","', b'", "', 1), id="space-after-comma"),
        pytest.param(lambda line: line.replace(b'":', b'" :', 1), id="space-before-colon"),
        pytest.param(lambda line: b" " + line, id="leading-space"),
        pytest.param(lambda line: line + b" ", id="trailing-space"),
        pytest.param(lambda line: line + b"\r", id="carriage-return"),
        pytest.param(FLOAT, id="int-as-float"),
        pytest.param(lambda line: line.replace(b":5432,", b":5.432e3,", 1), id="int-as-exponent"),
        pytest.param(lambda line: line.replace(b":5432,", b":5432E0,", 1), id="int-as-big-e"),
        pytest.param(lambda line: line.replace(b"app_rw", b"app\\u005frw", 1), id="escaped-ascii"),
        pytest.param(lambda line: line.replace(b"app_rw", b"app\\/rw", 1), id="escaped-solidus"),
    ],
)
def test_non_canonical_forms_of_the_same_record(
    spool: Path, signer: Signer, change: object
) -> None:
    lines = lines_of(spool)
    target = next(i for i, line in enumerate(lines) if b"app_rw" in line and b":5432," in line)
    changed = change(lines[target])  # type: ignore[operator]
    assert changed != lines[target]
    lines[target] = changed
    write(spool, lines)
    report = verify(spool, signer)
    if change is FLOAT:  # a float is a different record (not the int): its hash fails
        assert ("modified", target) in kinds(report), report.problems
    else:
        assert ("non-canonical", target) in kinds(report), report.problems


def test_reordered_keys_are_tampering(spool: Path, signer: Signer) -> None:
    lines = lines_of(spool)
    record = json.loads(lines[3])
    shuffled = dict(reversed(list(record.items())))
    lines[3] = json.dumps(shuffled, separators=(",", ":"), ensure_ascii=False).encode()
    write(spool, lines)
    assert kinds(verify(spool, signer)) == {("non-canonical", 3)}


def test_escaped_vs_unescaped_unicode(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "uni"
    t = trail(path, signer)
    s = t.session({"user": "zoë"}, {"user": "björk \u2028 ☃ 𝄞"}, "test")
    t.end_session(s)
    t.close()
    lines = lines_of(path)
    target = next(i for i, line in enumerate(lines) if "björk".encode() in line)
    assert verify(path, signer).ok
    for raw, escaped in [
        ("ö".encode(), b"\\u00f6"),
        ("☃".encode(), b"\\u2603"),
        ("\u2028".encode(), b"\\u2028"),
        ("𝄞".encode(), b"\\ud834\\udd1e"),
    ]:
        changed = list(lines)
        changed[target] = lines[target].replace(raw, escaped, 1)
        assert json.loads(changed[target]) == json.loads(lines[target])  # the same record
        write(path, changed)
        assert kinds(verify(path, signer)) == {("non-canonical", target)}, escaped


def test_control_characters_must_use_the_short_escapes(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "ctl"
    t = trail(path, signer)
    t.session({"user": "u"}, {"user": "tab\there\nnl\x1f"}, "test")
    t.close()
    lines = lines_of(path)
    target = next(i for i, line in enumerate(lines) if b"tab\\t" in line)
    for old, new in [(b"\\t", b"\\u0009"), (b"\\n", b"\\u000a"), (b"\\u001f", b"\\u001F")]:
        changed = list(lines)
        changed[target] = lines[target].replace(old, new, 1)
        write(path, changed)
        assert kinds(verify(path, signer)) == {("non-canonical", target)}, new


def test_big_integers_and_floats_are_outside_the_domain(spool: Path, signer: Signer) -> None:
    original = lines_of(spool)
    # (a float in its shortest round-trip form is the fast path's documented gap)
    for value in (2**53, -(2**53), 2**64 + 1, 10**30):
        lines = list(original)
        record = json.loads(lines[3])
        assert record["kind"] == "outcome"
        record["rowcount"] = value
        lines[3] = json.dumps(rehashed(record), **CANONICAL).encode()
        write(spool, lines)
        found = kinds(verify(spool, signer))
        assert ("non-canonical", 3) in found, value


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b"[1,2,3]",
        b'"a string"',
        b"{}",
        b'{"chain":"x"}',
        b'{"chain":1,"seq":0,"hash":"h","prev":"p","kind":"k"}',
        b'{"chain":"c","seq":"0","hash":"h","prev":"p","kind":"k"}',
        b'{"chain":"c","seq":true,"hash":"h","prev":"p","kind":"k"}',
        b'{"chain":"c","seq":0,"hash":["h"],"prev":"p","kind":"k"}',
        b'{"chain":"c","seq":0,"hash":"h","prev":"p","kind":["k"]}',
        b'{"chain":"c","seq":0,"hash":"h","prev":1,"kind":"k"}',
        b"",
        b"\xff\xfe",
        b'{"a":"\\ud800"}',
    ],
)
def test_malformed_lines_never_stop_the_check(spool: Path, signer: Signer, line: bytes) -> None:
    lines = lines_of(spool)
    lines.insert(6, line)
    later = next(i for i in range(7, len(lines)) if b"WHERE id = " in lines[i])
    lines[later] = lines[later].replace(b"WHERE id = ", b"WHERE id <> ")
    write(spool, lines)
    report = verify(spool, signer)
    assert any(p.kind == "malformed" and p.where.endswith(":7") for p in report.errors)
    assert any(p.kind == "modified" for p in report.errors)


def test_cli_reports_hostile_lines_without_a_traceback(
    spool: Path, signer: Signer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub = tmp_path / "pub.pem"
    pub.write_text(signer.public_pem())
    lines = lines_of(spool)
    lines[3] = lines[3].replace(b'"rowcount":1', b'"rowcount":NaN')
    lines[4] = b"[" * 100_000 + b"]" * 100_000
    lines[5] = lines[5].replace(b'"kind":"', b'"kind":"intent","kind":"', 1)
    write(spool, lines)
    code = cli(["audit", "verify", str(spool), "--trust", str(pub)])
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.out + captured.err
    assert "malformed" in captured.out
    assert "non-canonical" in captured.out
    assert cli(["audit", "tail", str(spool)]) == 0  # readers skip what they cannot read
    assert cli(["audit", "export", str(spool)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err


def test_orjson_writes_the_canonical_form_of_every_code_point() -> None:
    """The fast path's premise, proved by exhaustion: each character encodes the same."""
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode
    chars = [chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    for start in range(0, len(chars), 4096):
        chunk = chars[start : start + 4096]
        assert orjson.dumps(chunk) == encode(chunk).encode("utf-8")
    keys = {c: i for i, c in enumerate(chars[::997])}
    assert orjson.dumps(keys, option=orjson.OPT_SORT_KEYS) == canonical_json(keys)
    assert is_canonical(
        canonical_json({"a": [1, {"b": None, "c": True}]}), {"a": [1, {"b": None, "c": True}]}
    )
