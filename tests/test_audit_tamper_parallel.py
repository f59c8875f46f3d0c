"""Worker-process verification finds exactly what the serial verifier finds, in order."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from governed_db.audit import (
    PublicKeys,
    Signer,
    Verifier,
    VerifyReport,
    record_hash,
    spool_files,
    verify_parallel,
)
from tests.audit_helpers import only_file, session, trail, workload

Change = Callable[[list[bytes]], list[bytes]]


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate()


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify_parallel, "PARALLEL_BYTES", 1)
    monkeypatch.setattr(verify_parallel, "CHUNK", 3000)  # a few records per worker job
    # fork even if an earlier test left a thread behind (the workers only read files)
    monkeypatch.setattr(verify_parallel, "_start_method", lambda: "fork")


def summary(report: VerifyReport) -> tuple[Any, ...]:
    chains = sorted(
        (c.id, c.records, c.first_seq, c.last_seq, c.last_hash, c.signed_through, c.closed)
        for c in report.chains.values()
    )
    return report.records, [(p.severity, p.kind, p.seq, p.where) for p in report.problems], chains


def _modify(lines: list[bytes]) -> list[bytes]:
    lines[40] = lines[40].replace(b"WHERE id = ", b"WHERE id <> ")
    return lines


def _delete(lines: list[bytes]) -> list[bytes]:
    del lines[30:35]
    return lines


def _swap(lines: list[bytes]) -> list[bytes]:
    lines[50], lines[51] = lines[51], lines[50]
    return lines


def _duplicate(lines: list[bytes]) -> list[bytes]:
    lines.insert(70, lines[20])
    return lines


def _noncanonical(lines: list[bytes]) -> list[bytes]:
    lines[60] = lines[60].replace(b'"kind":"', b'"kind": "')
    return lines


def _garbage(lines: list[bytes]) -> list[bytes]:
    lines[45] = b'{"rowcount":NaN}\n'
    lines[46] = b"[" * 5000 + b"]" * 5000 + b"\n"
    return lines


def _cut_mid_line(lines: list[bytes]) -> list[bytes]:
    return [*lines[:90], lines[90][:50]]


def _rehash_tail(lines: list[bytes]) -> list[bytes]:
    records = [json.loads(line) for line in lines]
    records[80]["db.query.text"] = "SELECT 'forged'"
    for i in range(80, len(records)):
        records[i]["prev"] = records[i - 1]["hash"]
        records[i]["hash"] = record_hash(records[i])
    out = [line if i < 80 else b"" for i, line in enumerate(lines)]
    from governed_db.audit import canonical_json

    for i in range(80, len(records)):
        out[i] = canonical_json(records[i]) + b"\n"
    return out


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize(
    "change",
    [
        lambda lines: lines,
        _modify,
        _delete,
        _swap,
        _duplicate,
        _noncanonical,
        _garbage,
        _cut_mid_line,
        _rehash_tail,
    ],
    ids=[
        "intact",
        "modified",
        "deleted",
        "swapped",
        "duplicated",
        "non-canonical",
        "garbage",
        "cut-mid-line",
        "rehashed-tail",
    ],
)
def test_parallel_equals_serial(
    tmp_path: Path, signer: Signer, change: Change, monkeypatch: pytest.MonkeyPatch
) -> None:
    used: list[Path] = []
    real = verify_parallel.verify_file

    def counting(verifier: Verifier, path: Path, *args: Any) -> None:
        used.append(path)
        real(verifier, path, *args)

    monkeypatch.setattr(verify_parallel, "verify_file", counting)
    path = tmp_path / "spool"
    t = trail(path, signer, checkpoint_every=25)
    workload(t, session(t), 60)
    t.close()
    file = only_file(path)
    file.write_bytes(b"".join(change(file.read_bytes().splitlines(keepends=True))))
    keys = PublicKeys([signer.public_key])
    serial = Verifier(keys, parallel=False).verify(spool_files(path))
    assert not used
    parallel = Verifier(keys).verify(spool_files(path))
    assert used == [file]  # the worker processes checked it
    assert summary(parallel) == summary(serial)


def test_no_workers_while_other_threads_run() -> None:
    import threading

    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert verify_parallel._start_method() is None
        assert verify_parallel.open_pool(1 << 40) is None
    finally:
        stop.set()
        other.join()


def test_chunk_bounds_are_whole_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify_parallel, "CHUNK", 10)
    f = tmp_path / "x.jsonl"
    f.write_bytes(b"a" * 25 + b"\n" + b"b\n" + b"c" * 40 + b"\nlast-no-newline")
    bounds, tail = verify_parallel.chunk_bounds(f)
    data = f.read_bytes()
    assert [data[s:e] for s, e in bounds] == [b"a" * 25 + b"\n", b"b\n" + b"c" * 40 + b"\n"]
    assert data[tail:] == b"last-no-newline"
