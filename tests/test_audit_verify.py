"""Tampering: every kind is detected, and the record is named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from governed_db.audit import Signer, canonical_json, record_hash
from tests.audit_helpers import kinds, only_file, session, trail, verify, workload


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate()


@pytest.fixture
def spool(tmp_path: Path, signer: Signer) -> Path:
    """A closed chain: genesis, session, 30 intent/outcome pairs, checkpoints every 10."""
    path = tmp_path / "spool"
    t = trail(path, signer, checkpoint_every=10)
    workload(t, session(t), 30)
    t.close()
    return path


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in only_file(path).read_bytes().splitlines()]


def save(path: Path, records: list[dict[str, Any]]) -> None:
    only_file(path).write_bytes(b"".join(canonical_json(r) + b"\n" for r in records))


def rechain(
    records: list[dict[str, Any]], start: int, signer: Signer | None = None, strip: bool = False
) -> None:
    """Re-link and re-hash from ``start`` on, as someone holding the file (not the key) would."""
    for i in range(start, len(records)):
        r = records[i]
        if i:
            r["prev"] = records[i - 1]["hash"]
        if strip:
            r.pop("sig", None)
            r.pop("kid", None)
        if signer is not None and "sig" in r:
            r["kid"] = signer.kid
        r["hash"] = record_hash(r)
        if signer is not None and "sig" in r:
            r["sig"] = signer.sign(r["hash"])


def first_signed_after(records: list[dict[str, Any]], seq: int) -> int:
    return next(r["seq"] for r in records if r["seq"] > seq and "sig" in r)


def test_intact(spool: Path, signer: Signer) -> None:
    report = verify(spool, signer)
    assert report.ok
    assert not report.problems
    (chain,) = report.chains.values()
    assert chain.closed
    assert chain.signed_through == chain.last_seq == report.records - 1


def test_modified(spool: Path, signer: Signer) -> None:
    records = load(spool)
    records[5]["db.query.text"] = "UPDATE orders SET note = 'innocent'"
    save(spool, records)
    assert kinds(verify(spool, signer)) == {("modified", 5)}


def test_whitespace_only_change_is_tampering(spool: Path, signer: Signer) -> None:
    raw = only_file(spool).read_bytes().splitlines(keepends=True)
    raw[5] = raw[5].replace(b'"kind":"', b'"kind": "')  # same content, not canonical
    only_file(spool).write_bytes(b"".join(raw))
    assert kinds(verify(spool, signer)) == {("non-canonical", 5)}


def test_deleted(spool: Path, signer: Signer) -> None:
    records = load(spool)
    del records[7:9]
    save(spool, records)
    report = verify(spool, signer)
    assert kinds(report) == {("deleted", 7)}
    assert "seq 7..8 missing" in report.errors[0].message


def test_inserted_copy(spool: Path, signer: Signer) -> None:
    records = load(spool)
    records.insert(8, dict(records[5]))
    save(spool, records)
    assert kinds(verify(spool, signer)) == {("inserted", 5)}


def test_inserted_forged_record(spool: Path, signer: Signer) -> None:
    records = load(spool)
    forged = {**records[6], "db.query.text": "GRANT ALL ON orders TO mallory"}
    forged["hash"] = record_hash(forged)
    records.insert(6, forged)  # a well-formed record claiming seq 6, linked to seq 5
    save(spool, records)
    report = verify(spool, signer)
    assert ("inserted", 6) in kinds(report)


def test_reordered(spool: Path, signer: Signer) -> None:
    records = load(spool)
    records[5], records[6] = records[6], records[5]
    save(spool, records)
    report = verify(spool, signer)
    assert kinds(report) == {("reordered", 5)}


def test_truncated_tail(spool: Path, signer: Signer) -> None:
    records = load(spool)
    checkpoint = min(i for i, r in enumerate(records) if r["kind"] == "checkpoint")
    save(spool, records[: checkpoint + 4])
    report = verify(spool, signer)
    tail = records[checkpoint + 3]["seq"]
    assert kinds(report) == {("truncated", tail)}
    assert f"seq {tail - 2}..{tail}" in report.errors[0].message
    assert verify(spool, signer, partial=True).ok  # a live spool: a warning only


def test_truncated_at_a_checkpoint_still_detected(spool: Path, signer: Signer) -> None:
    records = load(spool)
    last_checkpoint = max(i for i, r in enumerate(records) if r["kind"] == "checkpoint")
    save(spool, records[: last_checkpoint + 1])  # everything left is signed: no close record
    assert kinds(verify(spool, signer)) == {("truncated", records[last_checkpoint]["seq"])}


def test_truncated_mid_line(spool: Path, signer: Signer) -> None:
    f = only_file(spool)
    f.write_bytes(f.read_bytes()[:-40])
    assert ("truncated", None) in kinds(verify(spool, signer))


def test_rebuilt_without_the_key(spool: Path, signer: Signer) -> None:
    records = load(spool)
    records[5]["db.query.text"] = "SELECT 1"
    rechain(records, 5)
    save(spool, records)
    report = verify(spool, signer)
    first_sig = first_signed_after(records, 5)
    assert ("bad-signature", first_sig) in kinds(report)
    assert {k for k, _ in kinds(report)} == {"bad-signature"}


def test_rebuilt_with_signatures_stripped(spool: Path, signer: Signer) -> None:
    records = load(spool)
    records[5]["db.query.text"] = "SELECT 1"
    rechain(records, 1, strip=True)
    save(spool, records)
    expected = {("unsigned", r["seq"]) for r in records if r["kind"] in ("checkpoint", "close")}
    assert kinds(verify(spool, signer)) == expected


def test_rebuilt_signed_with_another_key(spool: Path, signer: Signer) -> None:
    records = load(spool)
    records[5]["db.query.text"] = "SELECT 1"
    rechain(records, 0, signer=Signer.generate())
    save(spool, records)
    report = verify(spool, signer)
    assert {k for k, _ in kinds(report)} == {"unknown-key"}
    assert ("unknown-key", 0) in kinds(report)


def test_rebuilt_as_an_unsigned_chain(spool: Path, signer: Signer) -> None:
    records = load(spool)
    records[0]["signing"] = "none"
    rechain(records, 0, strip=True)
    save(spool, records)
    assert ("unsigned", 0) in kinds(verify(spool, signer))


def test_appended_after_close(spool: Path, signer: Signer) -> None:
    records = load(spool)
    extra = {**records[5], "seq": records[-1]["seq"] + 1, "prev": records[-1]["hash"]}
    extra["hash"] = record_hash(extra)
    save(spool, [*records, extra])
    assert kinds(verify(spool, signer)) == {("inserted", extra["seq"])}


def test_segments_deleted(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "rot"
    t = trail(path, signer, rotate={"max_bytes": "3KB"})
    workload(t, session(t), 30)
    t.close()
    files = sorted(path.glob("*.jsonl"))
    assert len(files) >= 4
    assert verify(path, signer).ok
    files[1].unlink()
    assert {k for k, _ in kinds(verify(path, signer))} == {"deleted"}
    files[-1].unlink()
    assert {k for k, _ in kinds(verify(path, signer))} == {"deleted", "truncated"}
    # one segment alone verifies as a partial view
    assert verify(files[2], signer, partial=True).ok
    assert not verify(files[2], signer).ok


def test_key_rotation_old_records_still_verify(tmp_path: Path, signer: Signer) -> None:
    newer = Signer.generate()
    for key in (signer, newer):
        t = trail(tmp_path / "s", key)
        workload(t, session(t), 3)
        t.close()
    assert verify(tmp_path / "s", signer, newer).ok
    assert {k for k, _ in kinds(verify(tmp_path / "s", newer))} == {"unknown-key"}
