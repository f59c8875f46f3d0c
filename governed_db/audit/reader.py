"""Reading spool files back: iterate, filter and find records (for the CLI)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governed_db.audit.records import RECORD_KINDS
from governed_db.audit.verify import spool_files
from governed_db.audit.verify_lines import decode

__all__ = ["RecordFilter", "actor_of", "find_record", "iter_records", "parse_since"]


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """Every well-formed record under ``path`` (a file or a spool directory).

    Lines that are not a JSON object (NaN, nested too deep, not JSON) are
    skipped, never parsed recursively: ``audit verify`` reports them.
    """
    for file in spool_files(path):
        with open(file, "rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    break
                data = decode(line[:-1])
                if isinstance(data, dict):
                    yield data


def actor_of(record: dict[str, Any]) -> str:
    """A short 'who' for a record: identity name/user/id, else the database user."""
    identity = record.get("identity") or {}
    if isinstance(identity, dict):
        for key in ("name", "user", "id", "agent"):
            if identity.get(key):
                return str(identity[key])
    return str(record.get("db.user") or "")


def parse_since(text: str, now: dt.datetime | None = None) -> str:
    """``"2024-05-01"``, ``"2024-05-01T12:00:00Z"`` or ``"15m"``/``"2h"``/``"1d"`` -> RFC 3339."""
    now = now or dt.datetime.now(dt.UTC)
    m = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if m:
        seconds = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
        when = now - dt.timedelta(seconds=seconds)
    else:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """The CLI's --actor/--table/--since/--decision/--kind filters (all must match)."""

    actor: str | None = None
    table: str | None = None
    since: str | None = None
    decision: str | None = None
    kinds: Sequence[str] = ()

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in RECORD_KINDS]
        if unknown:
            raise ValueError(
                f"--kind {unknown[0]!r}: unknown record kind; expected one of "
                f"{', '.join(sorted(RECORD_KINDS))}"
            )

    def __call__(self, record: dict[str, Any]) -> bool:
        if self.kinds and record.get("kind") not in self.kinds:
            return False
        if self.since and str(record.get("ts", "")) < self.since:
            return False
        if self.actor and self.actor.lower() not in actor_of(record).lower():
            return False
        if self.decision:
            action = (record.get("decision") or {}).get("action")
            if action != self.decision:
                return False
        if self.table:
            tables = [*record.get("tables_read", ()), *record.get("tables_written", ())]
            want = self.table.lower()
            if not any(t.lower() == want or t.lower().endswith("." + want) for t in tables):
                return False
        return True


def find_record(path: Path, ident: str) -> list[dict[str, Any]]:
    """Records whose hash starts with ``ident`` (>= 6 hex), or ``CHAIN:SEQ`` (chain prefix)."""
    ident = ident.strip().lower()
    chain_prefix, _, seq_text = ident.partition(":")
    found = []
    for record in iter_records(path):
        if seq_text:
            if (
                str(record.get("chain", "")).startswith(chain_prefix)
                and str(record.get("seq")) == seq_text
            ):
                found.append(record)
        elif str(record.get("hash", "")).startswith(ident):
            found.append(record)
    return found
