"""Tampering that crash recovery would otherwise bless: resealed closed chains, rewritten tails.

A chain sealed by recovery is reported prominently with the records that no
signature of its writer vouches for; ``--strict`` fails on it. A chain that
was closed normally and seen closed by a later chain (its genesis lists the
close heads it found) cannot be cut and resealed unnoticed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from governed_db.audit import PublicKeys, Signer, Verifier, canonical_json, record_hash, spool_files
from governed_db.audit.spool import chain_segments
from tests.audit_helpers import cli, kinds, session, trail, verify, workload


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate()


def closed_chain(path: Path, signer: Signer, pairs: int = 12) -> str:
    """Write one closed chain (checkpoints every 10 records); its id."""
    t = trail(path, signer, checkpoint_every=10)
    workload(t, session(t), pairs)
    t.close()
    return t.chain.id


def segment(path: Path, chain: str) -> Path:
    (only,) = chain_segments(path)[chain]
    return only


def records_of(file: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in file.read_bytes().splitlines()]


def save(file: Path, records: list[dict[str, Any]]) -> None:
    file.write_bytes(b"".join(canonical_json(r) + b"\n" for r in records))


def cut_after_last_checkpoint(path: Path, chain: str, keep_after: int = 0) -> int:
    """Drop the close record (and all but ``keep_after`` records after the last checkpoint)
    and leave a lock file, as an attacker who wants recovery to reseal the chain would."""
    file = segment(path, chain)
    records = records_of(file)
    last_cp = max(i for i, r in enumerate(records) if r["kind"] == "checkpoint")
    kept = records[: last_cp + 1 + keep_after]
    assert kept[-1]["kind"] != "close"
    save(file, kept)
    (path / ".locks").mkdir(exist_ok=True)
    (path / ".locks" / f"{chain}.lock").touch()
    return int(kept[-1]["seq"])


def test_a_clean_close_is_seen_by_the_next_chain(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "spool"
    first = closed_chain(path, signer)
    second = closed_chain(path, signer)
    genesis = records_of(segment(path, second))[0]
    close = records_of(segment(path, first))[-1]
    assert close["kind"] == "close"
    assert close["reason"] == "closed"
    assert genesis["spool_heads"] == [[first, close["seq"], close["hash"]]]
    assert verify(path, signer).ok
    assert not verify(path, signer).problems


def test_recovery_reseal_of_a_closed_chain_is_refused_and_detected(
    tmp_path: Path, signer: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "spool"
    victim = closed_chain(path, signer)
    closed_chain(path, signer)  # a later run saw the victim closed
    close_seq = records_of(segment(path, victim))[-1]["seq"]
    cut_at = cut_after_last_checkpoint(path, victim)
    with caplog.at_level("ERROR", logger="governed_db.audit"):
        closed_chain(path, signer)  # the next start would "recover" the victim...
    last = records_of(segment(path, victim))[-1]
    assert last["seq"] == cut_at  # ...but does not reseal a chain seen closed
    assert last["kind"] != "close"
    assert (path / ".locks" / f"{victim}.lock").exists()  # still needs attention
    assert f"closed at seq {close_seq}" in caplog.text
    report = verify(path, signer)
    truncated = [p for p in report.errors if p.kind == "truncated" and p.chain == victim]
    assert any(f"up to seq {close_seq}" in p.message for p in truncated), report.problems
    assert any("no close record" in p.message for p in truncated)


def test_a_reseal_done_anyway_is_detected(tmp_path: Path, signer: Signer) -> None:
    """Resealed by an older version, or by hand with the recovery code: still caught."""
    from governed_db.audit.recovery import seal_orphan
    from governed_db.audit.spool import chain_segments as segments

    path = tmp_path / "spool"
    victim = closed_chain(path, signer)
    onlooker = closed_chain(path, signer)
    close_seq = records_of(segment(path, victim))[-1]["seq"]
    cut_at = cut_after_last_checkpoint(path, victim)
    # hide the onlooker while resealing, then put it back
    hidden = {f: f.read_bytes() for f in segments(path)[onlooker]}
    for f in hidden:
        f.unlink()
    assert seal_orphan(path, victim, signer, recovered_by="f" * 32) is not None
    for f, data in hidden.items():
        f.write_bytes(data)
    resealed = records_of(segment(path, victim))[-1]
    assert resealed["reason"] == "recovered"
    assert resealed["seq"] == cut_at + 1
    report = verify(path, signer)
    assert ("truncated", cut_at + 1) in kinds(report), report.problems
    (problem,) = [p for p in report.errors if p.kind == "truncated"]
    assert f"up to seq {close_seq}" in problem.message
    assert "resealed" in problem.message


def test_recovery_reseal_without_an_onlooker_is_prominent_and_fails_strict(
    tmp_path: Path, signer: Signer
) -> None:
    path = tmp_path / "spool"
    victim = closed_chain(path, signer)
    cut_after_last_checkpoint(path, victim)
    closed_chain(path, signer)
    report = verify(path, signer)
    assert report.ok  # nothing outside the chain saw its close: only a warning...
    assert [p.kind for p in report.problems] == ["recovered"]
    assert report.recovered == 1
    strict = Verifier(PublicKeys([signer.public_key]), strict=True).verify(spool_files(path))
    assert not strict.ok  # ...and a failure under --strict
    assert [(p.severity, p.kind) for p in strict.problems] == [("error", "recovered")]


def test_rewritten_unsigned_tail_is_counted_and_fails_strict(
    tmp_path: Path, signer: Signer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spool"
    victim = closed_chain(path, signer)
    last = cut_after_last_checkpoint(path, victim, keep_after=4)
    file = segment(path, victim)
    records = records_of(file)
    # rewrite the unsigned tail: no key needed, only re-hashing
    start = len(records) - 4
    records[start]["db.query.text"] = "SELECT 'nothing to see here'"
    for i in range(start, len(records)):
        records[i]["prev"] = records[i - 1]["hash"]
        records[i]["hash"] = record_hash(records[i])
    save(file, records)
    closed_chain(path, signer)  # recovery seals the rewritten tail
    report = verify(path, signer)
    assert report.ok
    chain = report.chains[victim]
    assert chain.recovered_by is not None
    assert chain.unvouched == 4
    assert report.unvouched == 4
    (problem,) = report.problems
    assert f"4 record(s) (seq {last - 3}..{last})" in problem.message

    pub = tmp_path / "pub.pem"
    pub.write_text(signer.public_pem())
    assert cli(["audit", "verify", str(path), "--trust", str(pub)]) == 0
    out = capsys.readouterr().out
    assert "RECOVERY" in out
    assert "4 record(s)" in out
    assert cli(["audit", "verify", str(path), "--trust", str(pub), "--strict"]) == 1
    assert "FAILED (--strict) recovered" in capsys.readouterr().out
    assert cli(["audit", "verify", str(path), "--trust", str(pub), "--strict", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    assert doc["strict"] is True
    assert doc["anchored"] is True
    assert doc["recovered_closes"] == 1
    assert doc["unvouched_records"] == 4
    assert [p["kind"] for p in doc["problems"]] == ["recovered"]


def test_an_honest_crash_recovery_counts_its_tail(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "spool"
    victim = closed_chain(path, signer)
    cut_after_last_checkpoint(path, victim, keep_after=3)
    closed_chain(path, signer)
    report = verify(path, signer)
    assert report.ok
    assert report.unvouched == 3
    assert report.chains[victim].signed_through < report.chains[victim].last_seq


def test_added_records_after_a_seen_close_are_detected(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "spool"
    victim = closed_chain(path, signer)
    closed_chain(path, signer)
    file = segment(path, victim)
    records = records_of(file)
    close = records.pop()
    extra = {**records[-2], "seq": close["seq"], "prev": records[-1]["hash"]}
    extra["hash"] = record_hash(extra)
    records.append(extra)  # the close record replaced by a forged record: unclosed now
    save(file, records)
    report = verify(path, signer)
    assert ("differs", close["seq"]) in kinds(report) or ("truncated", close["seq"]) in kinds(
        report
    ), report.problems


def test_partial_spool_reports_the_unsigned_tail(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "spool"
    victim = closed_chain(path, signer)
    cut_after_last_checkpoint(path, victim, keep_after=2)
    keys = PublicKeys([signer.public_key])
    report = Verifier(keys, partial=True).verify(spool_files(path))
    assert report.ok
    assert {p.kind for p in report.problems} == {"truncated", "unsigned-tail"}
    assert report.unvouched == 2
    strict = Verifier(keys, partial=True, strict=True).verify(spool_files(path))
    assert [p.kind for p in strict.errors] == ["unsigned-tail"]
