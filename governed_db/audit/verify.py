"""Verify spool files: hashes, links, order, signatures, and that every chain is closed.

What is checked, per chain (records are grouped by their ``chain`` field):

* each record's ``hash`` equals SHA-256 of its canonical form without ``hash``/``sig``
  (else: **modified**);
* ``seq`` runs 0, 1, 2, ... with no gap (**deleted**), no repeat (**inserted**),
  in file order (**reordered**), and each ``prev`` is the previous record's
  hash (**inserted** / **replaced**);
* every ``sig`` verifies with the public key named by ``kid`` (**bad signature**:
  the chain was re-hashed by someone without the key; **unknown key**);
  checkpoints and the close record must be signed, every record when the
  genesis says ``signing: every``; a chain whose genesis says ``signing: none``
  fails unless unsigned chains are allowed;
* the chain starts with its genesis record and ends with a signed ``close``
  record, with nothing after it. A chain without one was truncated or its
  writer is still running or crashed: records after its last signature are
  an **unverified tail**. That is an error — a truncated tail looks exactly
  like this — unless ``partial`` says PATH is knowingly incomplete (a live
  spool), when it is a warning.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from governed_db.audit.canonical import GENESIS_PREV, canonical_json
from governed_db.audit.keys import PublicKeys

__all__ = ["Problem", "Verifier", "VerifyReport", "spool_files"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding. ``severity`` is error (tampered), warning or info."""

    severity: str
    kind: str
    message: str
    chain: str | None = None
    seq: int | None = None
    where: str = ""


@dataclass(slots=True)
class ChainSummary:
    """What verify learned about one chain."""

    id: str
    records: int = 0
    first_seq: int | None = None
    last_seq: int = -1
    signing: str | None = None
    signed_through: int = -1
    closed: bool = False
    recovered_by: str | None = None
    kids: set[str] = field(default_factory=set)
    unknown_kids: set[str] = field(default_factory=set)
    # internal state
    expected: int = 0
    last_hash: str = GENESIS_PREV
    gaps: list[tuple[int, int, str]] = field(default_factory=list)


@dataclass(slots=True)
class VerifyReport:
    """The outcome: problems found and a summary of each chain."""

    problems: list[Problem] = field(default_factory=list)
    chains: dict[str, ChainSummary] = field(default_factory=dict)
    records: int = 0
    files: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing was tampered with (no errors)."""
        return not any(p.severity == "error" for p in self.problems)

    @property
    def errors(self) -> list[Problem]:
        """The error-severity problems."""
        return [p for p in self.problems if p.severity == "error"]


def spool_files(path: Path) -> list[Path]:
    """The JSON Lines files under ``path`` (itself if a file), in chain/segment order."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix == ".jsonl")
    return [path]


def _hash_fast(line: bytes, data: dict[str, Any]) -> str:
    """SHA-256 of the body: cut hash/sig out of a canonical line, else re-encode."""
    claimed = data.get("hash")
    sig = data.get("sig")
    if (
        isinstance(claimed, str)
        and line.count(b'"hash":') == 1
        and (sig is None or (isinstance(sig, str) and line.count(b'"sig":') == 1))
    ):
        body = line.replace(b',"hash":"' + claimed.encode() + b'"', b"", 1)
        if sig is not None:
            body = body.replace(b',"sig":"' + sig.encode() + b'"', b"", 1)
        digest = hashlib.sha256(body).hexdigest()
        if digest == claimed:
            return digest
    rest = {k: v for k, v in data.items() if k not in ("hash", "sig")}
    return hashlib.sha256(canonical_json(rest)).hexdigest()


class Verifier:
    """Checks files against a set of public keys (see the module docstring)."""

    def __init__(
        self, keys: PublicKeys, *, partial: bool = False, allow_unsigned: bool = False
    ) -> None:
        self.keys = keys
        self.partial = partial
        self.allow_unsigned = allow_unsigned

    def verify(
        self, paths: Iterable[Path], progress: Callable[[int], None] | None = None
    ) -> VerifyReport:
        """Verify every record in ``paths``; ``progress`` gets bytes read, now and then."""
        started = time.perf_counter()
        report = VerifyReport()
        for path in paths:
            report.files += 1
            self._file(path, report, progress)
        for chain in report.chains.values():
            self._finish(chain, report)
        report.seconds = time.perf_counter() - started
        return report

    @staticmethod
    def _problem(
        report: VerifyReport,
        severity: str,
        kind: str,
        message: str,
        at: tuple[str | None, int | None, str] = (None, None, ""),
    ) -> None:
        report.problems.append(Problem(severity, kind, message, *at))

    def _file(
        self, path: Path, report: VerifyReport, progress: Callable[[int], None] | None
    ) -> None:
        done = 0
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                done += len(raw)
                if progress is not None and lineno % 8192 == 0:
                    progress(done)
                    done = 0
                where = f"{path.name}:{lineno}"
                if not raw.endswith(b"\n"):
                    severity = "warning" if self.partial else "error"
                    self._problem(
                        report,
                        severity,
                        "truncated",
                        "last line is incomplete (file truncated mid-record)",
                        (None, None, where),
                    )
                    break
                line = raw[:-1]
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                    chain_id, seq = data["chain"], data["seq"]
                    if not isinstance(chain_id, str) or type(seq) is not int:
                        raise TypeError
                except (ValueError, KeyError, TypeError):
                    self._problem(
                        report,
                        "error",
                        "malformed",
                        "not a valid audit record (line modified)",
                        (None, None, where),
                    )
                    continue
                report.records += 1
                self._record(line, data, where, report)
        if progress is not None and done:
            progress(done)

    def _record(self, line: bytes, data: dict[str, Any], where: str, report: VerifyReport) -> None:
        chain_id, seq = data["chain"], data["seq"]
        chain = report.chains.get(chain_id)
        if chain is None:
            chain = report.chains[chain_id] = ChainSummary(chain_id)
        chain.records += 1
        kind = data.get("kind")
        claimed = str(data.get("hash"))
        computed = _hash_fast(line, data)
        err = self._problem
        if computed != claimed:
            err(
                report,
                "error",
                "modified",
                "record content does not match its hash (record modified)",
                (chain_id, seq, where),
            )
        if chain.closed:
            err(
                report,
                "error",
                "inserted",
                "record after the chain's close record (inserted or appended)",
                (chain_id, seq, where),
            )
        if chain.first_seq is None:
            chain.first_seq = seq
            if seq != 0:
                sev = "warning" if self.partial else "error"
                err(
                    report,
                    sev,
                    "deleted",
                    f"chain starts at seq {seq}: records 0..{seq - 1} are missing "
                    "(deleted, or an earlier segment not given)",
                    (chain_id, seq, where),
                )
            chain.expected = seq
            chain.last_hash = str(data.get("prev"))
        if kind == "genesis":
            if seq != 0:
                err(
                    report,
                    "error",
                    "inserted",
                    "a genesis record in the middle of a chain",
                    (chain_id, seq, where),
                )
            chain.signing = str(data.get("signing"))
            if chain.signing == "none":
                sev = "warning" if self.allow_unsigned else "error"
                err(
                    report,
                    sev,
                    "unsigned",
                    "chain is not signed (written without a key, or rebuilt without one)",
                    (chain_id, seq, where),
                )
        if seq == chain.expected:
            if data.get("prev") != chain.last_hash:
                err(
                    report,
                    "error",
                    "inserted",
                    f"prev does not match the hash of seq {seq - 1} (record inserted or replaced)",
                    (chain_id, seq, where),
                )
        elif seq > chain.expected:
            chain.gaps.append((chain.expected, seq - 1, where))
        else:
            for i, (lo, hi, gap_where) in enumerate(chain.gaps):
                if lo <= seq <= hi:
                    err(
                        report,
                        "error",
                        "reordered",
                        f"seq {seq} appears after seq {chain.last_seq} (records reordered)",
                        (chain_id, seq, where),
                    )
                    chain.gaps[i : i + 1] = [
                        g
                        for g in ((lo, seq - 1, gap_where), (seq + 1, hi, gap_where))
                        if g[0] <= g[1]
                    ]
                    break
            else:
                err(
                    report,
                    "error",
                    "inserted",
                    f"seq {seq} occurs twice (record inserted or duplicated)",
                    (chain_id, seq, where),
                )
            return
        chain.expected = seq + 1
        chain.last_seq = seq
        chain.last_hash = claimed
        if kind == "close":
            chain.closed = True
            if data.get("reason") == "recovered":
                chain.recovered_by = str(data.get("recovered_by"))
        self._signature(data, computed, chain, where, report)

    def _signature(
        self,
        data: dict[str, Any],
        computed: str,
        chain: ChainSummary,
        where: str,
        report: VerifyReport,
    ) -> None:
        seq = int(data["seq"])
        kind = data.get("kind")
        sig = data.get("sig")
        if sig is None:
            must = kind in ("checkpoint", "close") or chain.signing == "every"
            if must and chain.signing != "none":
                self._problem(
                    report,
                    "error",
                    "unsigned",
                    f"{kind} record is not signed (signature stripped or forged)",
                    (chain.id, seq, where),
                )
            return
        kid = str(data.get("kid"))
        result = self.keys.verify(kid, computed, str(sig))
        if result is None:
            if kid not in chain.unknown_kids:  # once per chain and key, not per signature
                chain.unknown_kids.add(kid)
                self._problem(
                    report,
                    "error",
                    "unknown-key",
                    f"signed with key {kid}, which is not among the public keys given "
                    f"({', '.join(self.keys.kids()) or 'none'}); its signatures are unchecked",
                    (chain.id, seq, where),
                )
        elif result is False:
            self._problem(
                report,
                "error",
                "bad-signature",
                "signature does not verify: records up to here were changed and the "
                "chain re-hashed by someone without the key",
                (chain.id, seq, where),
            )
        else:
            chain.signed_through = seq
            chain.kids.add(kid)

    def _finish(self, chain: ChainSummary, report: VerifyReport) -> None:
        for lo, hi, where in chain.gaps:
            what = f"seq {lo}" if lo == hi else f"seq {lo}..{hi}"
            self._problem(
                report,
                "error",
                "deleted",
                f"{what} missing (records deleted)",
                (chain.id, lo, where),
            )
        if chain.signing == "none" and self.allow_unsigned:
            return
        if not chain.closed:
            sev = "warning" if self.partial else "error"
            tail = (
                f"; seq {chain.signed_through + 1}..{chain.last_seq} come after the last "
                "signature and are unverified"
                if chain.signed_through < chain.last_seq
                else ""
            )
            self._problem(
                report,
                sev,
                "truncated",
                f"no close record: the tail was truncated, or the writer is still "
                f"running or crashed{tail}",
                (chain.id, chain.last_seq, ""),
            )
        elif chain.recovered_by:
            self._problem(
                report,
                "info",
                "recovered",
                f"writer died; chain sealed on recovery by chain {chain.recovered_by}",
                (chain.id, chain.last_seq, ""),
            )
