"""Verify spool files: form, hashes, links, order, signatures, trust, and closes.

What is checked, per chain (records are grouped by their ``chain`` field):

* each line is exactly the canonical form of its record (``verify_lines``):
  else **malformed** (not a record: NaN, too deep, not JSON) or **non-canonical**
  (duplicate keys, whitespace, key order, escapes: tampering);
* each record's ``hash`` equals SHA-256 of its canonical form without ``hash``/``sig``
  (else: **modified**);
* ``seq`` runs 0, 1, 2, ... with no gap (**deleted**), no repeat (**inserted**),
  in file order (**reordered**), and each ``prev`` is the previous record's
  hash (**inserted** / **replaced**);
* every ``sig`` verifies with a *trusted* key named by ``kid`` (**bad-signature**,
  **unknown-key**); a key retired by a rotation record may not sign a chain that
  started after its retirement (**retired-key**), a revoked key not at all
  after its revocation (**revoked-key**); checkpoints and the close record
  must be signed, every record when the genesis says ``signing: every``;
* every record is of a known kind (``records.RECORD_KINDS``; else **unknown-kind**);
* the chain starts with its genesis and ends with a signed ``close`` record,
  nothing after it. Without one its tail was truncated, or its writer is still
  running or crashed (**truncated**, a warning with ``partial``). A close made by
  crash recovery is reported (**recovered**) with the records that only it
  vouches for; ``strict`` makes that, any unsigned tail and an unanchored result
  failures;
* heads seen by others: each genesis lists the closed chains its writer found
  in the spool, and a witness (``witness.py``) holds checkpoint heads; a chain
  that is missing, shorter than, or different from a head seen elsewhere is
  reported (``heads.py``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from orjson import loads as _loads

from governed_db.audit import heads
from governed_db.audit import verify_parallel as parallel
from governed_db.audit.canonical import record_hash
from governed_db.audit.records import RECORD_KINDS
from governed_db.audit.trust import PublicKeys
from governed_db.audit.verify_chain_end import ChainEnd
from governed_db.audit.verify_lines import decode, noncanonical, read_batches
from governed_db.audit.verify_report import (
    STRICT_KINDS,
    ChainSummary,
    Problem,
    VerifyReport,
)
from governed_db.audit.verify_signatures import SignatureChecks

__all__ = ["Problem", "Verifier", "VerifyReport", "spool_files"]

_sha256 = hashlib.sha256
_SPECIAL = frozenset({"genesis", "checkpoint", "close"})
#: Kinds checked on the fast path (unsigned, hash cut out of the line); the rest go slow.
_PLAIN = RECORD_KINDS - _SPECIAL
_FIELDS_ERROR = "not an audit record: chain, seq, hash, prev or kind missing or of the wrong type"


def spool_files(path: Path) -> list[Path]:
    """The JSON Lines files under ``path`` (itself if a file), in chain/segment order."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix == ".jsonl")
    return [path]


def _body_hash(line: bytes, data: dict[str, Any], claimed: str) -> str:
    """SHA-256 of the body: cut ``hash`` out of a canonical unsigned line, else re-encode."""
    if "sig" not in data:
        digest = _sha256(line.replace(b',"hash":"' + claimed.encode() + b'"', b"", 1)).hexdigest()
        if digest == claimed:
            return digest
    return record_hash(data)


class Verifier(SignatureChecks, ChainEnd):
    """Checks files against a set of trusted public keys (see the module docstring).

    ``anchored=False`` says the keys are not a trust root (they came from a
    directory the writer itself writes to): reported, and a failure under
    ``strict``. ``witness`` maps chain ids to heads (``heads.Head``) seen by a
    witness outside the writer's control. Big spools are checked by worker
    processes (``verify_parallel``) unless ``parallel`` is False.
    """

    def __init__(
        self,
        keys: PublicKeys,
        *,
        partial: bool = False,
        allow_unsigned: bool = False,
        strict: bool = False,
        anchored: bool = True,
        trust_sources: Iterable[str] = (),
        witness: Mapping[str, list[heads.Head]] | None = None,
        witness_name: str | None = None,
        parallel: bool = True,
    ) -> None:
        self.keys = keys
        self.partial = partial
        self.allow_unsigned = allow_unsigned
        self.strict = strict
        self.anchored = anchored
        self.trust_sources = list(trust_sources)
        self.witness = witness
        self.witness_name = witness_name
        self._wanted: dict[str, set[int]] = {
            c: {h.seq for h in hs} for c, hs in (witness or {}).items()
        }
        self._deferred: list[tuple[ChainSummary, int, str, str, str, str]] = []
        self.parallel = parallel
        self._pool: ProcessPoolExecutor | None = None

    def verify(
        self, paths: Iterable[Path], progress: Callable[[int], None] | None = None
    ) -> VerifyReport:
        """Verify every record in ``paths``; ``progress`` gets bytes read, now and then."""
        started = time.perf_counter()
        report = VerifyReport(
            strict=self.strict,
            anchored=self.anchored,
            trust=self.trust_sources,
            witness=self.witness_name,
        )
        self._deferred = []
        files = list(paths)
        if self.parallel:
            self._pool = parallel.open_pool(sum(p.stat().st_size for p in files if p.is_file()))
        try:
            for path in files:
                report.files += 1
                self._file(path, report, progress)
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
        self._recheck_deferred(report)
        for chain in report.chains.values():
            self._finish(chain, report)
        heads.check_seen(report, self._problem)
        if self.witness is not None:
            heads.check_witness(
                report, self.witness, self.keys, self._problem, partial=self.partial
            )
        if not self.anchored:
            self._problem(
                report,
                "warning",
                "unanchored",
                "no trust root: signatures were checked with keys from a directory the "
                "writer itself writes to, so a forger who can write there passes too; "
                "pass --trust FILE|DIR (or pin keys in the trust config)",
            )
        report.seconds = time.perf_counter() - started
        return report

    def _problem(
        self,
        report: VerifyReport,
        severity: str,
        kind: str,
        message: str,
        at: tuple[str | None, int | None, str] = (None, None, ""),
    ) -> None:
        if severity == "warning" and self.strict and kind in STRICT_KINDS:
            severity = "error"
        report.problems.append(Problem(severity, kind, message, *at))

    # -- reading -------------------------------------------------------------

    def _file(
        self, path: Path, report: VerifyReport, progress: Callable[[int], None] | None
    ) -> None:
        name = path.name
        if self._pool is not None and path.stat().st_size >= 2 * parallel.CHUNK:
            parallel.verify_file(self, path, report, progress, self._pool)
            return
        for batch in read_batches(path):
            lines = batch.lines
            if progress is not None:
                progress(sum(map(len, lines)) + len(lines) + len(batch.partial))
            self._lines(name, batch.first_lineno, lines, report)
            if batch.partial:
                self._truncated_line(report, f"{name}:{batch.first_lineno + len(lines)}")

    def _truncated_line(self, report: VerifyReport, where: str) -> None:
        self._problem(
            report,
            "warning" if self.partial else "error",
            "truncated",
            "last line is incomplete (file truncated mid-record)",
            (None, None, where),
        )

    def _lines(
        self, name: str, first: int, lines: list[bytes], report: VerifyReport, *, count: bool = True
    ) -> None:
        """Check consecutive lines of a file; ``first`` is the first one's line number."""
        chains = report.chains
        last_id: str | None = None
        chain: ChainSummary | None = None
        plain = _PLAIN
        try:
            values: list[Any] = list(map(_loads, lines))
        except ValueError:
            values = [_fast_decode(line) for line in lines]
        bad = set(noncanonical(lines, values))
        if count:
            report.records += len(lines)
        for i, value in enumerate(values):
            line = lines[i]
            try:
                chain_id = value["chain"]
                seq = value["seq"]
                claimed = value["hash"]
                prev = value["prev"]
                kind = value["kind"]
            except (KeyError, TypeError):
                self._malformed(report, f"{name}:{first + i}", _why(line))
                continue
            if (
                type(seq) is not int
                or type(claimed) is not str
                or type(kind) is not str
                or type(chain_id) is not str
            ):
                self._malformed(report, f"{name}:{first + i}", _FIELDS_ERROR)
                continue
            if chain_id != last_id:
                chain = chains.get(chain_id)
                if chain is None:
                    chain = chains[chain_id] = ChainSummary(chain_id, expected=-1)
                last_id = chain_id
            assert chain is not None
            chain.records += 1
            # (a signed line never passes: its hash is over the line without hash *and* sig)
            if (
                seq == chain.expected
                and prev == chain.last_hash
                and kind in plain
                and not chain.closed
                and chain.signing != "every"
                and (not bad or i not in bad)
            ):
                cut = line.find(b',"hash":"')
                digest = _sha256(line[:cut])
                digest.update(line[cut + 74 :])
                if digest.hexdigest() == claimed:
                    chain.expected = seq + 1
                    chain.last_seq = seq
                    chain.last_hash = claimed
                    continue
            if type(prev) is not str:
                self._malformed(report, f"{name}:{first + i}", _FIELDS_ERROR)
                continue
            where = f"{name}:{first + i}"
            if i in bad:
                self._problem(
                    report,
                    "error",
                    "non-canonical",
                    "line is not the canonical form of its record (a duplicate key, "
                    "whitespace, key order, an escape or a number changed): readers "
                    "may see different records (line modified)",
                    (chain_id, seq, where),
                )
            self._record(line, value, chain, where, report)

    def _malformed(self, report: VerifyReport, where: str, reason: str) -> None:
        self._problem(
            report,
            "error",
            "malformed",
            f"not a valid audit record (line modified): {reason}",
            (None, None, where),
        )

    # -- one record (the slow path) -------------------------------------------

    def _record(
        self,
        line: bytes,
        data: dict[str, Any],
        chain: ChainSummary,
        where: str,
        report: VerifyReport,
    ) -> None:
        chain_id, seq, kind = chain.id, data["seq"], data["kind"]
        claimed = data["hash"]
        computed = _body_hash(line, data, claimed)
        err = self._problem
        at = (chain_id, seq, where)
        if computed != claimed:
            err(
                report,
                "error",
                "modified",
                "record content does not match its hash (record modified)",
                at,
            )
        if kind not in RECORD_KINDS:
            err(
                report,
                "error",
                "unknown-kind",
                f"record of unknown kind {kind[:40]!r} (record forged or modified)",
                at,
            )
        if chain.closed:
            err(
                report,
                "error",
                "inserted",
                "record after the chain's close record (inserted or appended)",
                at,
            )
        if chain.first_seq is None:
            chain.first_seq = seq
            chain.started = str(data.get("ts"))
            if seq != 0:
                err(
                    report,
                    "warning" if self.partial else "error",
                    "deleted",
                    f"chain starts at seq {seq}: records 0..{seq - 1} are missing "
                    "(deleted, or an earlier segment not given)",
                    at,
                )
            chain.expected = seq
            chain.last_hash = data["prev"]
        if kind == "genesis":
            self._genesis(data, chain, at, report)
        if seq == chain.expected:
            if data["prev"] != chain.last_hash:
                err(
                    report,
                    "error",
                    "inserted",
                    f"prev does not match the hash of seq {seq - 1} (record inserted or replaced)",
                    at,
                )
        elif seq > chain.expected:
            chain.gaps.append((chain.expected, seq - 1, where))
        else:
            self._out_of_order(chain, seq, where, report)
            return
        if kind == "close" and not chain.closed:
            chain.closed = True
            if data.get("reason") == "recovered":
                chain.recovered_by = str(data.get("recovered_by"))
                chain.unvouched = max(0, seq - 1 - chain.signed_through)
        chain.expected = seq + 1
        chain.last_seq = seq
        chain.last_hash = claimed
        chain.last_where = where
        wanted = self._wanted.get(chain_id)
        if wanted and seq in wanted:
            chain.hashes[seq] = claimed
        self._signature(data, computed, chain, where, report)

    def _genesis(
        self,
        data: dict[str, Any],
        chain: ChainSummary,
        at: tuple[str | None, int | None, str],
        report: VerifyReport,
    ) -> None:
        if data["seq"] != 0:
            self._problem(
                report, "error", "inserted", "a genesis record in the middle of a chain", at
            )
            return
        chain.started = str(data.get("ts"))
        chain.signing = str(data.get("signing"))
        for doc in data.get("key_rotations") or ():
            if isinstance(doc, dict):
                self.keys.add_rotation(doc)
        chain.seen_heads = heads.parse_seen(data.get("spool_heads"))
        if chain.signing == "none":
            self._problem(
                report,
                "warning" if self.allow_unsigned else "error",
                "unsigned",
                "chain is not signed (written without a key, or rebuilt without one)",
                at,
            )

    def _out_of_order(
        self, chain: ChainSummary, seq: int, where: str, report: VerifyReport
    ) -> None:
        at = (chain.id, seq, where)
        for i, (lo, hi, gap_where) in enumerate(chain.gaps):
            if lo <= seq <= hi:
                self._problem(
                    report,
                    "error",
                    "reordered",
                    f"seq {seq} appears after seq {chain.last_seq} (records reordered)",
                    at,
                )
                chain.gaps[i : i + 1] = [
                    g for g in ((lo, seq - 1, gap_where), (seq + 1, hi, gap_where)) if g[0] <= g[1]
                ]
                return
        self._problem(
            report,
            "error",
            "inserted",
            f"seq {seq} occurs twice (record inserted or duplicated)",
            at,
        )


def _fast_decode(line: bytes) -> Any:
    """orjson-decode a line (its own bounded depth); a reason string if it is not JSON."""
    try:
        return _loads(line)
    except ValueError:
        return decode(line)


def _why(line: bytes) -> str:
    """Why a line that is not an audit record is not one."""
    if not line:
        return "an empty line"
    value = decode(line)
    return value if isinstance(value, str) else _FIELDS_ERROR
