"""``governed-db audit``: verify, tail, show and export audit spools."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from governed_db.audit import (
    PublicKeys,
    Verifier,
    VerifyReport,
    canonical_json,
    keys,
    reader,
    spool_files,
    trust,
    witness,
)
from governed_db.audit.defaults import default_spool
from governed_db.audit.verify_lines import decode
from governed_db.audit.verify_report import STRICT_KINDS
from governed_db.cli.errors import one_line_errors
from governed_db.errors import AuditError, PolicyError

__all__ = ["register"]

_DEFAULT_PATH = "GOVERNED_DB_AUDIT_PATH"
_PROGRESS_BYTES = 8 * 1024**2
_MAX_SHOWN = 50
_guard = one_line_errors(
    "audit", AuditError, PolicyError, OSError, ValueError, quiet_interrupt=True
)


def _path(value: str | None) -> Path:
    """PATH, else $GOVERNED_DB_AUDIT_PATH, else ./audit if there is one, else the default spool."""
    named = value or os.environ.get(_DEFAULT_PATH)
    if named:
        path = Path(named)
    else:
        path = Path("audit")
        if not path.exists():
            path = default_spool()
    if not path.exists():
        raise ValueError(f"{path} does not exist (give a spool directory or a .jsonl file)")
    return path


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--actor", help="identity name/user contains this")
    p.add_argument("--table", help="statement read or wrote this table")
    p.add_argument("--since", help="ISO time (2024-05-01T12:00Z) or age (15m, 2h, 1d)")
    p.add_argument("--decision", choices=["allow", "block", "approve", "observe"])
    p.add_argument("--kind", action="append", help="record kind (repeatable): intent, outcome, ...")


def _filter(args: argparse.Namespace) -> reader.RecordFilter:
    return reader.RecordFilter(
        actor=args.actor,
        table=args.table,
        since=reader.parse_since(args.since) if args.since else None,
        decision=args.decision,
        kinds=tuple(args.kind or ()),
    )


def register(subparsers: Any) -> None:
    """Add ``audit verify|tail|show|export`` to the top-level parser."""
    audit = subparsers.add_parser("audit", help="verify and read the audit trail")
    sub = audit.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)

    p = sub.add_parser("verify", help="check hashes, order and signatures; exit 1 if tampered")
    p.add_argument(
        "path",
        metavar="PATH",
        nargs="?",
        help="spool directory or .jsonl file (default: $GOVERNED_DB_AUDIT_PATH, ./audit, "
        "else the default spool in the user data directory)",
    )
    p.add_argument(
        "--trust",
        "--public-key",
        dest="trust",
        action="append",
        metavar="FILE|DIR",
        help="PEM public key, or a directory of them and their rotation records, to trust "
        "(repeatable); default: the keys pinned in the trust config",
    )
    p.add_argument(
        "--witness",
        metavar="SINK",
        help="check the chains against the heads a witness holds: a postgresql:// DSN, "
        "an http(s):// URL or a file of heads",
    )
    p.add_argument(
        "--witness-header",
        action="append",
        metavar="NAME:VALUE",
        help="an HTTP header for an http(s) witness (repeatable); VALUE may be env:VAR",
    )
    p.add_argument(
        "--witness-table",
        metavar="NAME",
        help="the witness table in that database (default governed_db_witness; "
        "the postgres sink's audit table works too)",
    )
    p.add_argument(
        "--partial",
        action="store_true",
        help="PATH is knowingly incomplete (live spool, one segment): a missing start "
        "or close record is a warning, not an error",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="also fail on a chain closed by crash recovery, records no writer signature "
        "vouches for, an unanchored result and chains the witness never saw",
    )
    p.add_argument(
        "--allow-unsigned", action="store_true", help="accept chains written without a signing key"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help=f"print every problem (default: the first {_MAX_SHOWN})",
    )
    p.set_defaults(func=_guard(verify_cmd))

    p = sub.add_parser(
        "witness-serve", help="run a small HTTP witness endpoint that keeps chain heads"
    )
    p.add_argument("--store", required=True, metavar="FILE", help="JSON Lines file of heads")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8750, help="port (8750; 0 picks a free one)")
    p.add_argument(
        "--token-env", metavar="NAME", help="require 'Authorization: Bearer $NAME' on every request"
    )
    p.set_defaults(func=_guard(witness_serve_cmd))

    p = sub.add_parser("tail", help="recent records as a table")
    p.add_argument("path", metavar="PATH", nargs="?")
    p.add_argument("-n", "--lines", type=int, default=20, help="how many (default 20)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new records")
    _add_filters(p)
    p.set_defaults(func=_guard(tail_cmd))

    p = sub.add_parser("show", help="one record (by hash prefix or CHAIN:SEQ), with its outcome")
    p.add_argument("id", metavar="ID")
    p.add_argument("path", metavar="PATH", nargs="?")
    p.set_defaults(func=_guard(show_cmd))

    p = sub.add_parser("export", help="records as JSON Lines or CSV")
    p.add_argument("path", metavar="PATH", nargs="?")
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    p.add_argument("-o", "--output", help="file to write (default stdout)")
    _add_filters(p)
    p.set_defaults(func=_guard(export_cmd))


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _trusted(args: argparse.Namespace, spool: Path) -> tuple[PublicKeys, list[str], bool]:
    """(keys, where they came from, anchored): --trust, else the trust config, else local keys."""
    given = list(args.trust or ())
    root = spool if spool.is_dir() else spool.parent
    for item in given:
        if _inside(Path(item), root):
            raise ValueError(
                f"--trust {item} is inside the audit spool: whoever can write the spool "
                "can write it too, so it is no trust root"
            )
    found, sources = trust.load_trust(given)
    writer_dir = keys.public_key_dir()
    anchored = bool(sources) and not any(_inside(Path(g), writer_dir) for g in given)
    if not sources and writer_dir.is_dir():
        found.load(writer_dir)  # unanchored: the writer adds keys here itself
        sources = [str(writer_dir)]
    return found, sources, anchored


def verify_cmd(args: argparse.Namespace) -> int:
    """``audit verify``: 0 intact, 1 tampered (or a strict failure), 2 usage."""
    path = _path(args.path)
    public, sources, anchored = _trusted(args, path)
    if not len(public) and not args.allow_unsigned:
        raise ValueError(
            "no trusted public key to check signatures with: pass --trust FILE|DIR "
            "(`governed-db keys export-public` prints one) or pin keys in "
            f"{trust.trust_config_path()}"
        )
    witnessed = None
    if args.witness:
        witnessed = witness.read_witness(
            args.witness, table=args.witness_table, headers=_headers(args.witness_header)
        )
    files = spool_files(path)
    total = sum(f.stat().st_size for f in files)
    verifier = Verifier(
        public,
        partial=args.partial,
        allow_unsigned=args.allow_unsigned,
        strict=args.strict,
        anchored=anchored,
        trust_sources=sources,
        witness=witnessed,
        witness_name=_redacted(args.witness) if args.witness else None,
    )
    err = Console(stderr=True)
    if total >= _PROGRESS_BYTES and err.is_terminal and not args.json:
        columns = (TextColumn("verifying"), BarColumn(), TransferSpeedColumn())
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task("verify", total=total)
            report = verifier.verify(files, lambda n: bar.advance(task, n))
    else:
        report = verifier.verify(files)
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        _print_report(report, args.quiet, args.verbose)
    return 0 if report.ok else 1


def _headers(items: list[str] | None) -> dict[str, str]:
    """``NAME:VALUE`` options as headers; ``env:VAR`` values read from the environment."""
    out = {}
    for item in items or ():
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"--witness-header {item!r}: give NAME:VALUE")
        value = value.strip()
        if value.startswith("env:"):
            var = value[4:]
            if not os.environ.get(var):
                raise ValueError(f"--witness-header {name}: environment variable {var} is not set")
            value = os.environ[var]
        out[name.strip()] = value
    return out


def witness_serve_cmd(args: argparse.Namespace) -> int:
    """``audit witness-serve``: a reference witness endpoint, until interrupted."""
    from governed_db.audit.witness_server import HeadStore, make_server

    token = None
    if args.token_env:
        token = os.environ.get(args.token_env)
        if not token:
            raise ValueError(f"--token-env: environment variable {args.token_env} is not set")
    store = HeadStore(Path(args.store))
    server = make_server(store, args.host, args.port, token)
    host, port = str(server.server_address[0]), int(server.server_address[1])
    print(f"witness listening on http://{host}:{port}/ (heads in {args.store})", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def _redacted(spec: str) -> str:
    """A witness spec without a password."""
    parts = urlsplit(spec)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return spec


def _print_report(report: VerifyReport, quiet: bool, verbose: bool) -> None:
    out = Console(highlight=False)
    labels = {
        "error": "[bold red]TAMPERED[/]",
        "warning": "[yellow]WARNING[/]",
        "info": "[cyan]NOTE[/]",
    }
    shown = report.problems if verbose else report.problems[:_MAX_SHOWN]
    for p in shown:
        at = " ".join(
            part
            for part in (
                f"chain {p.chain[:12]}" if p.chain else "",
                f"seq {p.seq}" if p.seq is not None else "",
                f"({p.where})" if p.where else "",
            )
            if part
        )
        label = labels[p.severity]
        if p.severity == "error" and p.kind in STRICT_KINDS:
            label = "[bold red]FAILED (--strict)[/]"
        out.print(f"{label} {p.kind}: {escape(at)}: {escape(p.message)}")
    if len(shown) < len(report.problems):
        out.print(f"... and {len(report.problems) - len(shown)} more (--verbose shows all)")
    rate = report.records / report.seconds if report.seconds else 0.0
    kids = sorted({k for c in report.chains.values() for k in c.kids})
    if report.recovered or report.unvouched:
        out.print(
            f"[bold yellow]RECOVERY[/]: {report.recovered} chain(s) closed by crash recovery, "
            f"not by their writer; {report.unvouched:,} record(s) that no signature of their "
            "writer vouches for" + ("" if report.strict else " (--strict fails on these)")
        )
    if not report.anchored:
        out.print(
            "[bold yellow]UNANCHORED[/]: no trust root was given; keys came from "
            f"{escape(', '.join(report.trust) or 'nowhere')}, which the writer itself writes "
            "to. Pass --trust FILE|DIR or pin keys in the trust config"
        )
    errors = report.errors
    if errors:
        tampered = [p for p in errors if p.kind not in STRICT_KINDS]
        what = (
            "the trail has been tampered with" if tampered else "the trail does not meet --strict"
        )
        out.print(
            f"[bold red]{len(errors)} problem(s)[/]: {what} "
            f"({report.records:,} records, {len(report.chains)} chain(s))."
        )
    elif not quiet:
        witnessed = f"; checked against witness {escape(report.witness)}" if report.witness else ""
        out.print(
            f"[green]OK[/]: {report.records:,} records in {len(report.chains)} chain(s), "
            f"{report.files} file(s); signed by {', '.join(kids) or 'nobody'}{witnessed} "
            f"[dim]({report.seconds:.2f} s, {rate:,.0f} records/s)[/]"
        )


def _columns(table: Table) -> None:
    for name in ("time", "kind", "actor", "decision", "operation", "tables", "statement", "rows"):
        table.add_column(name, overflow="fold" if name == "statement" else "ellipsis")


def _row(r: dict[str, Any]) -> list[str]:
    tables = sorted({*r.get("tables_read", ()), *r.get("tables_written", ())})
    rows = ""
    if r.get("kind") == "outcome":
        rows = f"{r.get('rowcount')}/{r.get('db.response.returned_rows')} {r.get('duration_us')}µs"
    text = " ".join(str(r.get("db.query.text") or "").split())
    return [
        str(r.get("ts", ""))[:23].replace("T", " "),
        str(r.get("kind", "")),
        reader.actor_of(r),
        str((r.get("decision") or {}).get("action", "")),
        str(r.get("db.operation.name", "")),
        ", ".join(tables),
        text[:200],
        rows,
    ]


def tail_cmd(args: argparse.Namespace) -> int:
    """``audit tail``: the last N matching records, oldest first; ``--follow`` keeps going."""
    path = _path(args.path)
    keep = _filter(args)
    matching = sorted(
        (r for r in reader.iter_records(path) if keep(r)), key=lambda r: str(r.get("ts", ""))
    )
    recent = matching[-args.lines :] if args.lines > 0 else []
    out = Console()
    table = Table(show_edge=False, pad_edge=False)
    _columns(table)
    for record in recent:
        table.add_row(*map(escape, _row(record)))
    out.print(table)
    if args.follow:
        for record in _follow(path, keep):
            out.print("  ".join(escape(c) for c in _row(record) if c), highlight=False)
    return 0


def _follow(path: Path, keep: reader.RecordFilter) -> Iterator[dict[str, Any]]:
    offsets = {f: f.stat().st_size for f in spool_files(path)}
    while True:
        time.sleep(0.5)
        for f in spool_files(path):
            start = offsets.get(f, 0)
            with open(f, "rb") as fh:
                fh.seek(start)
                data = fh.read()
            end = data.rfind(b"\n") + 1
            offsets[f] = start + end
            for line in data[:end].splitlines():
                record = decode(line)
                if isinstance(record, dict) and keep(record):
                    yield record


def show_cmd(args: argparse.Namespace) -> int:
    """``audit show ID``: the record as JSON, plus its outcome if it is an intent."""
    path = _path(args.path)
    if ":" not in args.id and len(args.id) < 6:
        raise ValueError("give at least 6 hex digits of the record hash, or CHAIN:SEQ")
    found = reader.find_record(path, args.id)
    if not found:
        print(f"no record {args.id} in {path}", file=sys.stderr)
        return 1
    if len(found) > 1:
        print(f"{args.id} is ambiguous ({len(found)} records); give more digits", file=sys.stderr)
        return 2
    record = found[0]
    out = Console()
    out.print_json(json.dumps(record, ensure_ascii=False))
    if record.get("kind") == "intent":
        for other in reader.iter_records(path):
            if other.get("kind") == "outcome" and other.get("intent") == record.get("hash"):
                out.print("[bold]outcome[/]")
                out.print_json(json.dumps(other, ensure_ascii=False))
    return 0


_CSV_FIELDS = [
    "ts",
    "chain",
    "seq",
    "kind",
    "session.id",
    "actor",
    "deployment.environment.name",
    "db.namespace",
    "db.user",
    "db.operation.name",
    "tables_read",
    "tables_written",
    "decision",
    "rule_id",
    "db.query.text",
    "rowcount",
    "db.response.returned_rows",
    "duration_us",
    "db.response.status_code",
    "hash",
]


def export_cmd(args: argparse.Namespace) -> int:
    """``audit export``: matching records as canonical JSON Lines or flat CSV."""
    path = _path(args.path)
    keep = _filter(args)
    with contextlib.ExitStack() as stack:
        handle: TextIO = sys.stdout
        if args.output:
            handle = stack.enter_context(open(args.output, "w", newline="", encoding="utf-8"))
        if args.format == "jsonl":
            for record in reader.iter_records(path):
                if keep(record):
                    handle.write(canonical_json(record).decode("utf-8") + "\n")
            return 0
        writer = csv.DictWriter(handle, fieldnames=_CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for record in reader.iter_records(path):
            if keep(record):
                decision = record.get("decision") or {}
                row = {k: record.get(k) for k in _CSV_FIELDS}
                row.update(
                    actor=reader.actor_of(record),
                    decision=decision.get("action"),
                    rule_id=decision.get("rule_id"),
                    tables_read=" ".join(record.get("tables_read", ())),
                    tables_written=" ".join(record.get("tables_written", ())),
                )
                writer.writerow(row)
        return 0
