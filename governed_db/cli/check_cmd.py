"""``governed-db check FILE...``: lint SQL files against a policy, without a database.

Each statement is analyzed and decided as the gate would. Exit 1 if any
statement is blocked, does not parse, or an escape-hatch comment is malformed;
2 if a file or the policy cannot be read or an option is invalid; else 0. An
inline comment

    -- governed-db: allow RULE_ID because REASON

on a statement's lines or just above it waives that rule for that statement;
every waiver is reported, and one without a REASON is an error.
"""

from __future__ import annotations

import argparse
import bisect
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import governed_db

PROGRESS_THRESHOLD = 20  # files; a progress bar above this many, on a terminal
_DIRECTIVE = re.compile(r"governed-db\s*:\s*(?P<body>.*)", re.IGNORECASE | re.DOTALL)
_ALLOW = re.compile(
    r"allow\s+(?P<rule>[^\s,]+)(?:\s+because(?:\s+(?P<reason>.*?))?)?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_SYNTAX = "governed-db: allow RULE_ID because REASON"
_SEVERITY = {"block": "error", "require_approval": "warning", "observe": "notice"}


@dataclass(frozen=True, slots=True)
class Piece:
    """One statement of a file: its text, offsets and 1-based lines."""

    text: str
    start: int
    end: int
    line: int
    end_line: int


@dataclass(slots=True)
class Directive:
    """An ``-- governed-db: allow RULE because REASON`` comment."""

    offset: int
    line: int
    rule_id: str | None
    reason: str | None
    used: bool = False


@dataclass(slots=True)
class Finding:
    """One line of the report."""

    file: str
    line: int
    severity: str  # error | warning | notice
    kind: str  # block | require_approval | observe | waived | directive
    message: str
    rule_id: str | None = None
    statement: str = ""


@dataclass(slots=True)
class Report:
    """Everything found in every file."""

    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    statements: int = 0
    unreadable: int = 0


def register(subparsers: Any) -> None:
    """Add ``check``."""
    parser = subparsers.add_parser(
        "check",
        help="evaluate SQL files against a policy, without a database",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="SQL files to check")
    parser.add_argument(
        "--policy", "-p", help="policy file (default: $GOVERNED_DB_POLICY, else the baseline)"
    )
    parser.add_argument(
        "--env", "-e", dest="environment", help="environment (default: the policy's default)"
    )
    parser.add_argument(
        "--actor",
        "-a",
        help="who will run the SQL: KIND:NAME, KIND one of agent, ci, human, service "
        "(default: detected, as connect() does)",
    )
    parser.add_argument(
        "--format", "-f", choices=("text", "json", "github"), default="text", dest="fmt"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check every file and print the report; returns the exit code."""
    try:
        policy, context = _setup(args)
    except (governed_db.PolicyError, ValueError) as exc:
        print(f"governed-db check: error: {exc}", file=sys.stderr)
        return 2
    checker = _Checker(policy, context)
    for path in _progress(args.files):
        checker.file(path)
    report = checker.report
    _print(report, args.fmt)
    if report.unreadable:
        return 2
    return 1 if any(f.severity == "error" for f in report.findings) else 0


def _setup(args: argparse.Namespace) -> tuple[governed_db.Policy, governed_db.Context]:
    """The policy and context from the options; an empty or unknown value is an error."""
    for option, value in (("--policy", args.policy), ("--env", args.environment)):
        if value is not None and not value.strip():
            raise ValueError(f"{option} is empty")
    policy = governed_db.load_policy(args.policy)
    environment = policy.environment_for(
        policy.default_environment if args.environment is None else args.environment
    )
    if args.actor is None:
        identity = governed_db.detect_identity()
    else:
        try:
            identity = governed_db.Identity.parse(args.actor)
        except ValueError as exc:
            raise ValueError(f"--actor: {exc}") from None
    return policy, governed_db.Context(environment, identity)


def _progress(files: list[str]) -> Iterator[str]:
    if len(files) <= PROGRESS_THRESHOLD or not sys.stderr.isatty():
        yield from files
        return
    from rich.console import Console
    from rich.progress import track

    yield from track(files, description="checking", console=Console(stderr=True))


class _Checker:
    """Checks files one by one into one report."""

    def __init__(self, policy: governed_db.Policy, context: governed_db.Context) -> None:
        self.policy = policy
        self.context = context
        self.report = Report()

    def add(self, *args: Any) -> None:
        self.report.findings.append(Finding(*args))

    def file(self, path: str) -> None:
        self.report.files += 1
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            self.report.unreadable += 1
            self.add(path, 1, "error", "unreadable", f"cannot read: {exc}")
            return
        pieces, comments, scan_error = _split(text)
        broken, line, why = _locate(scan_error, pieces, text) if scan_error else (None, 0, "")
        if scan_error and broken is None:
            self.add(path, line, "error", "unparsed", _unparsed(why))
        directives = [d for c in comments if (d := _directive(*c)) is not None]
        for d in directives:
            if d.rule_id is None or not d.reason:
                what = "names no rule" if d.rule_id is None else "gives no reason"
                message = (
                    f"escape hatch {what}: write '-- governed-db: allow RULE_ID because REASON'"
                )
                self.add(path, d.line, "error", "directive", message, d.rule_id)
                d.used = True
            elif d.rule_id not in self.policy.rule_ids:
                message = f"escape hatch names unknown rule {d.rule_id!r}"
                self.add(path, d.line, "error", "directive", message, d.rule_id)
                d.used = True
        starts = [p.start for p in pieces]
        owners = [None if d.used else _owner(d, pieces, starts) for d in directives]
        for index, piece in enumerate(pieces):
            self.report.statements += 1
            mine = [d for d, owner in zip(directives, owners, strict=True) if owner == index]
            self.statement(path, piece, mine, why if index == broken else None)
        for d in directives:
            if not d.used:
                message = f"escape hatch for {d.rule_id!r} matched no refused statement"
                self.add(path, d.line, "warning", "directive", message, d.rule_id)

    def statement(
        self, path: str, piece: Piece, directives: list[Directive], scan_error: str | None
    ) -> None:
        facts = governed_db.analyze(piece.text)
        preview = " ".join(piece.text.split())[:120]
        if scan_error is not None or any(s.operation == "unknown" for s in facts.statements):
            # The gate would decide it as opaque; in `check` it is a mistake to fix first.
            self.add(path, piece.line, "error", "unparsed", _unparsed(scan_error), None, preview)
            return
        context = self.context
        decision: governed_db.Decision = governed_db.decide(self.policy, facts, context)
        while decision.refuses and decision.rule_id is not None:
            rule_id = decision.rule_id
            hatch = next((d for d in directives if d.rule_id == rule_id), None)
            if hatch is None:
                break
            hatch.used = True
            message = f"rule {rule_id} waived because {hatch.reason} ({decision.reason})"
            self.add(path, piece.line, "notice", "waived", message, rule_id, preview)
            context = replace(context, waived=context.waived | {rule_id})
            decision = governed_db.decide(self.policy, facts, context)
        severity = _SEVERITY.get(decision.action)
        if severity is None:
            return
        rule_id = decision.rule_id or "policy"
        message = str(
            governed_db.PolicyViolation(decision.reason, rule_id=rule_id, hint=decision.hint)
        )
        if decision.would_be != decision.action:
            message += f" [observe mode: would be {decision.would_be}]"
        self.add(path, piece.line, severity, decision.action, message, decision.rule_id, preview)


def _owner(directive: Directive, pieces: list[Piece], starts: list[int]) -> int | None:
    """The statement a directive belongs to: the one it sits in or trails on the
    same line, else the next one below it."""
    i = bisect.bisect_right(starts, directive.offset) - 1
    if i >= 0 and (directive.offset < pieces[i].end or pieces[i].end_line == directive.line):
        return i
    return i + 1 if i + 1 < len(pieces) else None


def _directive(offset: int, line: int, comment: str) -> Directive | None:
    body = comment.strip()
    body = body[2:] if body.startswith("--") else body.removeprefix("/*").removesuffix("*/")
    found = _DIRECTIVE.match(body.strip())
    if found is None:
        return None
    allow = _ALLOW.match(found.group("body").strip())
    if allow is None:
        return Directive(offset, line, None, None)
    reason = (allow.group("reason") or "").strip() or None
    return Directive(offset, line, allow.group("rule"), reason)


def split_sql(text: str) -> tuple[list[Piece], list[tuple[int, int, str]]]:
    """The statements of ``text`` with their lines, and its comments as (offset, line, text).

    pglast (PostgreSQL's own scanner and parser) when available; else sqlparse.
    """
    pieces, comments, _ = _split(text)
    return pieces, comments


def _split(
    text: str,
) -> tuple[list[Piece], list[tuple[int, int, str]], tuple[int, str] | None]:
    """``split_sql`` plus where and why PostgreSQL's scanner rejected the text, if it did."""
    starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]

    def line_of(offset: int) -> int:
        return bisect.bisect_right(starts, offset)

    scan_error: tuple[int, str] | None = None
    try:
        spans, comments = _pglast_split(text)
    except Exception as exc:  # no pglast, or text its scanner rejects
        scan_error = _scanner_error(exc)
        spans, comments = _sqlparse_split(text)
    pieces = [
        Piece(text[a:b], a, b, line_of(a), line_of(max(a, b - 1)))
        for a, b in spans
        if text[a:b].strip()
    ]
    return pieces, [(a, line_of(a), text[a:b]) for a, b in comments], scan_error


def _scanner_error(exc: Exception) -> tuple[int, str] | None:
    """(offset, one-line message) of a scanner ``ParseError`` (message, position); else None."""
    args: tuple[Any, ...] = exc.args
    if type(exc).__name__ == "ParseError" and len(args) == 2 and isinstance(args[1], int):
        return args[1], _NEAR.sub(_near, str(args[0])).strip()
    return None


_NEAR = re.compile(r'(?P<what>.*?)at or near "(?P<near>.*)"\s*$', re.DOTALL)


def _near(found: re.Match[str]) -> str:
    """One line; the quoted rest of the text shortened (an open comment swallows it all)."""
    what = " ".join(found.group("what").split())
    near = " ".join(found.group("near").split())
    return f'{what} at or near "{near[:30] + "…" if len(near) > 30 else near}"'


def _locate(error: tuple[int, str], pieces: list[Piece], text: str) -> tuple[int | None, int, str]:
    """The piece the scanner's complaint lies in or just follows (else None), its
    line, and the message with its line and column.
    """
    offset, message = error
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    where = f"{message} (line {line}, column {column})"
    before = [i for i, p in enumerate(pieces) if p.start <= offset]
    if before and not text[pieces[before[-1]].end : offset].strip(" \t\r\n;"):
        return before[-1], line, where
    return None, line, where


def _unparsed(scan_error: str | None) -> str:
    if scan_error is not None:
        return f"statement does not parse: {scan_error}"
    return (
        "statement does not parse, or is a kind of statement governed_db cannot read "
        "(the gate would treat it as opaque)"
    )


def _pglast_split(text: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Split on top-level ``;`` tokens of PostgreSQL's own scanner.

    ``BEGIN ATOMIC ... END`` function bodies stay whole; text the parser would
    reject is still split (and later analyzed as opaque), never dropped.
    """
    from pglast.parser import scan

    spans: list[tuple[int, int]] = []
    comments: list[tuple[int, int]] = []
    start: int | None = None
    end = depth = 0
    previous = ""
    for token in scan(text):
        if token.name in ("SQL_COMMENT", "C_COMMENT"):
            comments.append((token.start, token.end + 1))
            continue
        if token.name == "ASCII_59" and not depth:
            if start is not None:
                spans.append((start, end))
            start = None
            continue
        if start is None:
            start = token.start
        if depth and token.name == "CASE":
            depth += 1
        elif depth and token.name == "END_P":
            depth -= 1
        elif token.name == "ATOMIC" and previous == "BEGIN_P":
            depth = 1
        previous = token.name
        end = token.end + 1
    if start is not None:
        spans.append((start, end))
    return spans, comments


def _sqlparse_split(text: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    import sqlparse

    spans, pos = [], 0
    for statement in sqlparse.split(text):
        start = text.find(statement, pos)
        if start < 0:
            continue
        pos = start + len(statement)
        spans.append((start, pos))
    comments = [(m.start(), m.end()) for m in re.finditer(r"--[^\n]*|/\*.*?\*/", text, re.DOTALL)]
    return spans, comments


def _print(report: Report, fmt: str) -> None:
    findings = sorted(report.findings, key=lambda f: (f.file, f.line))
    counts = {k: sum(f.severity == k for f in findings) for k in ("error", "warning", "notice")}
    if fmt == "json":
        doc = {
            "files": report.files,
            "statements": report.statements,
            "counts": counts,
            "findings": [asdict(f) for f in findings],
        }
        print(json.dumps(doc, indent=2))
        return
    for f in findings:
        if fmt == "github":
            title = _gh_property(f"governed-db {f.rule_id or f.kind}")
            file = _gh_property(f.file)
            print(f"::{f.severity} file={file},line={f.line},title={title}::{_gh_data(f.message)}")
        else:
            print(f"{f.file}:{f.line}: {f.severity}: {f.message}")
    summary = (
        f"{report.files} file(s), {report.statements} statement(s): "
        f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['notice']} notice(s)"
    )
    print(summary, file=sys.stderr if fmt == "github" else sys.stdout)


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")
