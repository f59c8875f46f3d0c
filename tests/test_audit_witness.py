"""Witnessed checkpoints against a real PostgreSQL witness table and a real HTTP endpoint.

Deleting a chain, truncating and resealing it, or rewriting and re-signing it
with the key all pass a local verify; the witness catches each.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest

from governed_db.audit import (
    AuditSink,
    MemorySink,
    PublicKeys,
    Signer,
    Verifier,
    canonical_json,
    spool_files,
)
from governed_db.audit.heads import Head
from governed_db.audit.spool import chain_segments
from governed_db.audit.witness import HeadsOnly, HttpWitness, PostgresWitness, read_witness
from tests.audit_helpers import cli, kinds, session, trail, verify, workload


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate()


class HeadStore(BaseHTTPRequestHandler):
    """A witness endpoint: POST {"heads": [...]} keeps the first head per (chain, seq)."""

    heads: dict[tuple[str, int], dict[str, Any]]
    fail_next: list[int]
    posts: list[int]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.fail_next and self.fail_next[0] > 0:
            self.fail_next[0] -= 1
            self.send_response(503)
            self.end_headers()
            return
        for head in json.loads(body)["heads"]:
            self.heads.setdefault((head["chain"], head["seq"]), head)
        self.posts.append(len(body))
        self.send_response(204)
        self.end_headers()

    def do_GET(self) -> None:
        data = json.dumps({"heads": list(self.heads.values())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[tuple[str, type[HeadStore]]]:
    handler = type("Store", (HeadStore,), {"heads": {}, "fail_next": [0], "posts": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/heads", handler
    server.shutdown()
    server.server_close()


def witnessed_chain(path: Path, signer: Signer, sink: AuditSink, pairs: int = 15) -> str:
    t = trail(path, signer, [sink], checkpoint_every=10)
    workload(t, session(t), pairs)
    t.close(timeout=30)
    return t.chain.id


def records_of(path: Path, chain: str) -> tuple[Path, list[dict[str, Any]]]:
    (file,) = chain_segments(path)[chain]
    return file, [json.loads(line) for line in file.read_bytes().splitlines()]


def reseal(file: Path, records: list[dict[str, Any]], signer: Signer) -> None:
    """Re-link, re-hash and re-sign every record, as someone holding the key would."""
    from governed_db.audit import record_hash

    for i, r in enumerate(records):
        if i:
            r["prev"] = records[i - 1]["hash"]
        r["hash"] = record_hash(r)
        if "sig" in r:
            r["sig"] = signer.sign(r["hash"])
    file.write_bytes(b"".join(canonical_json(r) + b"\n" for r in records))


def truncate_and_reseal(path: Path, chain: str, signer: Signer) -> int:
    """Cut the chain after its first checkpoint and close it again, signed: a clean chain."""
    file, records = records_of(path, chain)
    first_cp = next(i for i, r in enumerate(records) if r["kind"] == "checkpoint")
    close = records[-1]
    kept = records[: first_cp + 3]
    kept.append({**close, "seq": kept[-1]["seq"] + 1, "records": len(kept) + 1})
    reseal(file, kept, signer)
    return int(kept[-1]["seq"])


def witness_check(path: Path, signer: Signer, spec: str, **kw: Any) -> set[tuple[str, int | None]]:
    keys = PublicKeys([signer.public_key])
    report = Verifier(keys, witness=read_witness(spec, **kw)).verify(spool_files(path))
    return kinds(report)


def test_postgres_witness_table_holds_every_signed_head(
    tmp_path: Path, pg_dsn: str, signer: Signer
) -> None:
    path = tmp_path / "spool"
    chain = witnessed_chain(path, signer, PostgresWitness(pg_dsn))
    _, records = records_of(path, chain)
    signed = [(r["seq"], r["hash"], r["kind"]) for r in records if "sig" in r]
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(
            "SELECT seq, hash, kind FROM governed_db_witness WHERE chain = %s ORDER BY seq",
            (chain,),
        ).fetchall()
    assert rows == signed
    assert {k for _, _, k in rows} == {"genesis", "checkpoint", "close"}
    assert not witness_check(path, signer, pg_dsn)


def test_deleted_chain_is_detected_through_the_witness(
    tmp_path: Path, pg_dsn: str, signer: Signer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spool"
    witnessed_chain(path, signer, PostgresWitness(pg_dsn))
    gone = witnessed_chain(path, signer, PostgresWitness(pg_dsn))  # the last run: none saw it
    gone_close = records_of(path, gone)[1][-1]["seq"]
    for f in chain_segments(path)[gone]:
        f.unlink()
    assert verify(path, signer).ok  # nothing left locally says the chain existed
    assert witness_check(path, signer, pg_dsn) == {("missing-chain", gone_close)}
    pub = tmp_path / "pub.pem"
    pub.write_text(signer.public_pem())
    assert cli(["audit", "verify", str(path), "--trust", str(pub), "--witness", pg_dsn]) == 1
    out = capsys.readouterr().out
    assert "missing-chain" in out
    assert gone[:12] in out


def test_truncated_and_resealed_chain_is_detected_through_the_witness(
    tmp_path: Path, pg_dsn: str, signer: Signer
) -> None:
    path = tmp_path / "spool"
    chain = witnessed_chain(path, signer, PostgresWitness(pg_dsn))
    new_close = truncate_and_reseal(path, chain, signer)
    assert verify(path, signer).ok  # resealed with the key: locally a clean chain
    found = witness_check(path, signer, pg_dsn)
    assert ("truncated", new_close) in found, found


def test_rewritten_and_resigned_chain_differs_from_the_witness(
    tmp_path: Path, pg_dsn: str, signer: Signer
) -> None:
    path = tmp_path / "spool"
    chain = witnessed_chain(path, signer, PostgresWitness(pg_dsn, table="public.heads"))
    file, records = records_of(path, chain)
    records[3]["db.query.text"] = "SELECT 'rewritten'"
    reseal(file, records, signer)
    assert verify(path, signer).ok
    found = witness_check(path, signer, pg_dsn, table="public.heads")
    first_signed_after = min(r["seq"] for r in records[4:] if "sig" in r)
    assert ("differs", first_signed_after) in found
    assert {k for k, _ in found} == {"differs"}


def test_http_witness_with_an_outage(
    tmp_path: Path, signer: Signer, endpoint: tuple[str, type[HeadStore]]
) -> None:
    url, store = endpoint
    store.fail_next[0] = 2  # the first two batches are refused: retried, not lost
    path = tmp_path / "spool"
    sink = HttpWitness(url, backoff_initial=0.05, backoff_max=0.1)
    chain = witnessed_chain(path, signer, sink)
    _, records = records_of(path, chain)
    assert sorted(seq for c, seq in store.heads if c == chain) == [
        r["seq"] for r in records if "sig" in r
    ]
    assert not witness_check(path, signer, url)
    other = witnessed_chain(path, signer, HttpWitness(url))
    for f in chain_segments(path)[other]:
        f.unlink()
    assert {k for k, _ in witness_check(path, signer, url)} == {"missing-chain"}


def test_http_witness_sees_truncation(
    tmp_path: Path, signer: Signer, endpoint: tuple[str, type[HeadStore]]
) -> None:
    url, _ = endpoint
    path = tmp_path / "spool"
    chain = witnessed_chain(path, signer, HttpWitness(url), pairs=30)
    new_close = truncate_and_reseal(path, chain, signer)
    assert ("truncated", new_close) in witness_check(path, signer, url)


def test_the_postgres_sink_table_serves_as_a_witness(
    tmp_path: Path, pg_dsn: str, signer: Signer
) -> None:
    path = tmp_path / "spool"
    t = trail(
        path,
        signer,
        sinks=[{"type": "postgres", "dsn": pg_dsn, "table": "siem"}],
        checkpoint_every=10,
    )
    workload(t, session(t), 15)
    t.close(timeout=30)
    assert not witness_check(path, signer, pg_dsn, table="siem")
    new_close = truncate_and_reseal(path, t.chain.id, signer)
    assert ("truncated", new_close) in witness_check(path, signer, pg_dsn, table="siem")


def test_any_sink_made_a_witness_and_a_file_of_heads(tmp_path: Path, signer: Signer) -> None:
    inner = MemorySink()
    path = tmp_path / "spool"
    chain = witnessed_chain(path, signer, HeadsOnly(inner))
    assert inner.lines
    assert all(b'"sig":"' in line for line in inner.lines)
    exported = tmp_path / "siem.jsonl"
    exported.write_bytes(b"".join(line + b"\n" for line in inner.lines))
    assert not witness_check(path, signer, str(exported))
    heads_file = tmp_path / "heads.json"
    heads = [Head.of(json.loads(line)) for line in inner.lines]
    heads_file.write_text(json.dumps({"heads": [h.as_json() for h in heads if h]}))
    assert not witness_check(path, signer, str(heads_file))
    truncate_and_reseal(path, chain, signer)
    assert "truncated" in {k for k, _ in witness_check(path, signer, str(exported))}


def test_forged_and_missing_heads(
    tmp_path: Path, signer: Signer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spool"
    inner = MemorySink()
    chain = witnessed_chain(path, signer, HeadsOnly(inner))
    heads = [json.loads(line) for line in inner.lines]
    forged = {**heads[-1], "seq": heads[-1]["seq"] + 50, "hash": "0" * 64}
    witness_file = tmp_path / "w.jsonl"
    witness_file.write_text("".join(json.dumps(h) + "\n" for h in [*heads, forged]))
    keys = PublicKeys([signer.public_key])
    report = Verifier(keys, witness=read_witness(str(witness_file))).verify(spool_files(path))
    assert report.ok  # a head no trusted key signed is ignored, with a warning
    assert [p.kind for p in report.problems] == ["witness-unsigned"]
    other = witnessed_chain(tmp_path / "other", signer, HeadsOnly(MemorySink()))
    strict = Verifier(keys, strict=True, witness=read_witness(str(witness_file)))
    found = strict.verify(spool_files(tmp_path / "other"))
    assert ("unwitnessed", other) in {(p.kind, p.chain) for p in found.errors}
    assert ("missing-chain", chain) in {(p.kind, p.chain) for p in found.errors}


@pytest.mark.parametrize(
    "spec",
    [
        "postgresql://nobody@127.0.0.1:1/none",
        "http://127.0.0.1:1/heads",
        "no-such-file.jsonl",
    ],
)
def test_an_unreachable_witness_is_a_clear_error(
    tmp_path: Path, signer: Signer, spec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spool"
    witnessed_chain(path, signer, HeadsOnly(MemorySink()))
    pub = tmp_path / "pub.pem"
    pub.write_text(signer.public_pem())
    assert cli(["audit", "verify", str(path), "--trust", str(pub), "--witness", spec]) == 2
    err = capsys.readouterr().err
    assert "witness" in err
    assert "Traceback" not in err


def test_a_knowingly_partial_view_against_the_witness(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "spool"
    inner = MemorySink()
    first = witnessed_chain(path, signer, HeadsOnly(inner))
    second = witnessed_chain(path, signer, HeadsOnly(inner))
    exported = tmp_path / "heads.jsonl"
    exported.write_bytes(b"".join(line + b"\n" for line in inner.lines))
    (one_file,) = chain_segments(path)[second]
    keys = PublicKeys([signer.public_key])
    witnessed = read_witness(str(exported))
    whole = Verifier(keys, witness=witnessed).verify([one_file])
    assert ("missing-chain", first) in {(p.kind, p.chain) for p in whole.errors}
    part = Verifier(keys, witness=witnessed, partial=True).verify([one_file])
    assert part.ok
    # (the witness and the second chain's genesis both saw the first chain)
    assert {(p.severity, p.kind, p.chain) for p in part.problems} == {
        ("warning", "missing-chain", first)
    }


def test_a_live_chain_ahead_of_its_witness(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "spool"
    inner = MemorySink()
    t = trail(path, signer, [HeadsOnly(inner)], checkpoint_every=10)
    workload(t, session(t), 12)
    assert t.flush(timeout=30)
    exported = tmp_path / "heads.jsonl"
    exported.write_bytes(b"".join(line + b"\n" for line in inner.lines))
    workload(t, session(t), 5)  # written after the witness was read
    assert t.flush(timeout=30)
    keys = PublicKeys([signer.public_key])
    report = Verifier(keys, partial=True, witness=read_witness(str(exported))).verify(
        spool_files(path)
    )
    t.close()
    assert report.ok, report.problems
    assert {p.kind for p in report.problems} <= {"truncated", "unsigned-tail"}


def test_a_replaced_close_record_differs_from_the_witness(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "spool"
    inner = MemorySink()
    chain = witnessed_chain(path, signer, HeadsOnly(inner))
    exported = tmp_path / "heads.jsonl"
    exported.write_bytes(b"".join(line + b"\n" for line in inner.lines))
    file, records = records_of(path, chain)
    records[-1]["ts"] = "2000-01-01T00:00:00.000000Z"  # a different close, re-signed
    reseal(file, records, signer)
    assert verify(path, signer).ok
    assert witness_check(path, signer, str(exported)) == {("differs", records[-1]["seq"])}


def test_a_deleted_last_segment_is_truncation_for_the_witness(
    tmp_path: Path, signer: Signer
) -> None:
    path = tmp_path / "spool"
    inner = MemorySink()
    t = trail(path, signer, [HeadsOnly(inner)], checkpoint_every=10, rotate={"max_bytes": "4KB"})
    workload(t, session(t), 20)
    t.close(timeout=30)
    exported = tmp_path / "heads.jsonl"
    exported.write_bytes(b"".join(line + b"\n" for line in inner.lines))
    segments = chain_segments(path)[t.chain.id]
    assert len(segments) >= 3
    segments[-1].unlink()
    found = witness_check(path, signer, str(exported))
    assert "truncated" in {k for k, _ in found}
