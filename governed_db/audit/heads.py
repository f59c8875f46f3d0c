"""Chain heads seen outside a chain, and checking a spool against them.

A *head* is (chain, seq, hash) of a signed record, with its ``kid``/``sig`` when
known. Two kinds of onlooker keep heads:

* **the spool itself**: every genesis record lists, as ``spool_heads``, the
  close records of the other chains its writer found in the spool directory
  (:func:`closed_heads`). A chain that was closed normally and later cut and
  resealed by "recovery" no longer matches the close head a later chain saw.
* **a witness** outside the writer's control (``witness.py``): checkpoint,
  genesis and close heads, forwarded as they are written. A chain the witness
  knows that is missing locally, shorter, or different at a witnessed seq is
  reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governed_db.audit import spool
from governed_db.audit.trust import PublicKeys
from governed_db.audit.verify_report import VerifyReport

__all__ = ["Head", "check_seen", "check_witness", "closed_heads", "parse_seen"]

#: At most this many other chains' close heads go into one genesis record.
MAX_SEEN = 64
Report = Callable[..., None]


@dataclass(frozen=True, slots=True)
class Head:
    """A signed record's position, as a witness saw it."""

    chain: str
    seq: int
    hash: str
    kind: str = ""
    kid: str | None = None
    sig: str | None = None
    ts: str | None = None

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> Head | None:
        """The head of a signed record (None for an unsigned one)."""
        if not isinstance(record.get("sig"), str):
            return None
        try:
            return cls(
                str(record["chain"]),
                int(record["seq"]),
                str(record["hash"]),
                str(record.get("kind", "")),
                str(record["kid"]),
                str(record["sig"]),
                None if record.get("ts") is None else str(record["ts"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def as_json(self) -> dict[str, Any]:
        """The head as a JSON object (what witnesses store)."""
        return {
            "chain": self.chain,
            "seq": self.seq,
            "hash": self.hash,
            "kind": self.kind,
            "kid": self.kid,
            "sig": self.sig,
            "ts": self.ts,
        }


def closed_heads(directory: Path, own_chain: str, limit: int = MAX_SEEN) -> list[list[Any]]:
    """``[chain, seq, hash]`` of the close records of the newest closed chains in a spool."""
    segments = spool.chain_segments(directory)
    newest = sorted(
        ((files[-1].name.split("-")[1], chain, files[-1]) for chain, files in segments.items()),
        reverse=True,
    )
    out: list[list[Any]] = []
    for _, chain, last in newest:
        if chain == own_chain:
            continue
        try:
            line, _ = spool.last_line(last)
        except OSError:
            continue
        if line is None or b'"kind":"close"' not in line:
            continue
        try:
            record = json.loads(line)
            out.append([chain, int(record["seq"]), str(record["hash"])])
        except (ValueError, KeyError, TypeError):
            continue
        if len(out) >= limit:
            break
    return out


def parse_seen(value: Any) -> list[tuple[str, int, str]]:
    """A genesis record's ``spool_heads`` as tuples (bad entries dropped)."""
    out = []
    if isinstance(value, list):
        for item in value:
            if (
                isinstance(item, list)
                and len(item) == 3
                and isinstance(item[0], str)
                and type(item[1]) is int
                and isinstance(item[2], str)
            ):
                out.append((item[0], item[1], item[2]))
    return out


def _compare(
    report: VerifyReport,
    problem: Report,
    chain_id: str,
    seq: int,
    digest: str,
    known: Mapping[int, str],
    source: str,
    missing_severity: str,
    short_severity: str = "error",
) -> None:
    chain = report.chains.get(chain_id)
    if chain is None:
        problem(
            report,
            missing_severity,
            "missing-chain",
            f"chain {chain_id} is not among the files, but {source} saw it up to seq "
            f"{seq}: it was deleted (or archived, or not given)",
            (chain_id, seq, ""),
        )
        return
    if chain.last_seq < seq:
        problem(
            report,
            short_severity,
            "truncated",
            f"{source} saw this chain up to seq {seq} (hash {digest[:16]}), but it now ends "
            f"at seq {chain.last_seq}: records were cut off"
            + (" and the chain resealed" if chain.closed else ""),
            (chain_id, chain.last_seq, ""),
        )
        return
    have = known.get(seq)
    if have is not None and have != digest:
        problem(
            report,
            "error",
            "differs",
            f"{source} saw hash {digest[:16]} at seq {seq}, the chain has {have[:16]}: "
            "the chain was rewritten (and re-signed) after that head was seen",
            (chain_id, seq, ""),
        )


def check_seen(report: VerifyReport, problem: Report) -> None:
    """Compare chains with the close heads that later chains' genesis records saw."""
    for onlooker in list(report.chains.values()):
        if not onlooker.genesis_trusted:
            continue
        for chain_id, seq, digest in onlooker.seen_heads:
            chain = report.chains.get(chain_id)
            known = {chain.last_seq: chain.last_hash} if chain is not None else {}
            if chain is not None and chain.last_seq > seq:
                known = {}
                problem(
                    report,
                    "error",
                    "inserted",
                    f"chain {onlooker.id[:12]} saw this chain closed at seq {seq}, but it "
                    f"goes on to seq {chain.last_seq}: records were added after its close",
                    (chain_id, seq, ""),
                )
                continue
            _compare(
                report,
                problem,
                chain_id,
                seq,
                digest,
                known,
                f"chain {onlooker.id[:12]} (its genesis record)",
                "warning",
            )


def check_witness(
    report: VerifyReport,
    witnessed: Mapping[str, list[Head]],
    keys: PublicKeys,
    problem: Report,
    *,
    partial: bool = False,
) -> None:
    """Compare chains with the heads a witness holds; report chains it never saw.

    With ``partial`` (PATH is knowingly a part of the spool) a chain missing or
    shorter than the witness saw is a warning; a different head stays an error.
    """
    missing = "warning" if partial else "error"
    for chain_id, found in witnessed.items():
        valid = []
        for head in found:
            ok = head.kid is not None and head.sig is not None
            ok = ok and keys.verify(str(head.kid), head.hash, str(head.sig)) is True
            if ok:
                valid.append(head)
            else:
                problem(
                    report,
                    "warning",
                    "witness-unsigned",
                    f"the witness holds a head at seq {head.seq} that no trusted key signed: "
                    "ignored",
                    (chain_id, head.seq, ""),
                )
        if not valid:
            continue
        chain = report.chains.get(chain_id)
        known = chain.hashes if chain is not None else {}
        top = max(valid, key=lambda h: h.seq)
        _compare(
            report, problem, chain_id, top.seq, top.hash, known, "the witness", missing, missing
        )
        if chain is None or chain.last_seq < top.seq:
            continue
        for head in valid:
            if head is not top:
                _compare(
                    report, problem, chain_id, head.seq, head.hash, known, "the witness", "error"
                )
    for chain in report.chains.values():
        if chain.id not in witnessed:
            problem(
                report,
                "warning",
                "unwitnessed",
                "the witness has no head of this chain (not forwarded yet, or the chain "
                "was made up)",
                (chain.id, None, ""),
            )
