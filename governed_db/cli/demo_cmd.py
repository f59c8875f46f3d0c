"""``governed-db demo``: an AI agent's session against a real PostgreSQL, narrated.

The session runs under the policy shipped in the package (``demo_policy.yaml``,
read with importlib.resources, so the demo works from any directory) or the one
``--policy`` names; a named file that does not exist is an error. It is audited
to a signed trail in a scratch directory; the demo then verifies the trail,
tampers with a copy, and shows that verify catches it.

Exit 0 when every step went as the shipped policy intends, 1 when one did not
(a destructive step ran, or a safe one was refused), 2 for bad options.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

import governed_db
from governed_db.audit import AuditTrail, PublicKeys, Signer, Verifier, spool_files
from governed_db.audit.reader import iter_records

#: The policy the demo runs under unless ``--policy`` names another.
DEMO_POLICY = "demo_policy.yaml"
#: The schema the demo creates; it refuses to touch one it did not make.
SCHEMA = "shop"
_MARK = "made by governed-db demo"

_SCHEMA_SQL = f"""
drop schema if exists {SCHEMA} cascade;
create schema {SCHEMA};
comment on schema {SCHEMA} is '{_MARK}';
create table shop.customers (
    id int primary key, name text not null, email text not null, card_number text,
    api_token text, notes text
);
insert into shop.customers
    select i, 'Customer ' || i, 'customer' || i || '@example.com', '4111 1111 1111 1111',
           'ghp_' || md5(i::text) || 'abcd', 'call me on +1 415 555 ' || (2600 + i)
    from generate_series(1, 50) i;
create table shop.orders (
    id int primary key, customer_id int references shop.customers, total numeric not null,
    status text not null default 'open'
);
insert into shop.orders
    select i, 1 + i % 50, (i % 97) * 1.5, 'open' from generate_series(1, 3000) i;
analyze shop.customers, shop.orders;
"""


@dataclass(frozen=True, slots=True)
class Step:
    """What the agent tries, why it is interesting, and whether the demo's policy lets it run."""

    query: str
    why: str
    runs: bool


_SCRIPT: tuple[Step, ...] = (
    Step(
        "select id, name, email, card_number, api_token, notes from shop.customers where id <= 3",
        "an ordinary read: emails, cards, tokens and phone numbers come back masked",
        True,
    ),
    Step(
        "update shop.customers set email = 'c***@example.com' where id = 1",
        "writing a masked value back over the real one",
        False,
    ),
    Step("delete from shop.orders", "a DELETE without WHERE", False),
    Step(
        "update shop.orders set status = 'void' where 1 = 1",
        "a WHERE clause that is always true",
        False,
    ),
    Step(
        "with gone as (delete from shop.orders returning id) select count(*) from gone",
        "a delete hidden in a CTE",
        False,
    ),
    Step("drop table shop.orders", "DROP TABLE in production", False),
    Step("do $$ begin perform pg_sleep(0); end $$", "code the gate cannot see through", False),
    Step(
        "update shop.orders set status = 'closed' where total > 10",
        "a write of ~2,700 rows",
        False,
    ),
    Step(
        "update shop.orders set status = 'closed' where id <= 20",
        "a small, targeted write",
        True,
    ),
)


def register(subparsers: Any) -> None:
    """Add ``demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="run a narrated governed session (on an embedded PostgreSQL by default)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dsn",
        help=f"a PostgreSQL to use instead of the embedded one (the demo (re)creates "
        f"schema {SCHEMA} there, and refuses if a {SCHEMA} it did not make exists)",
    )
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help="policy file (default: the demo policy shipped in the package)",
    )
    parser.add_argument(
        "--env",
        dest="environment",
        default="prod",
        help="environment the agent works in (default: prod)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start a server if needed, then show what governance does."""
    try:
        policy = load_demo_policy(args.policy)
        policy.environment_for(args.environment)  # an unknown name is an error now
    except (governed_db.PolicyError, ValueError) as exc:
        print(f"governed-db demo: error: {exc}", file=sys.stderr)
        return 2
    console = Console()
    server = None
    dsn = args.dsn
    if not dsn:
        from governed_db.embedded_server import start_embedded_server

        with console.status("starting an embedded PostgreSQL…"):
            server = start_embedded_server()
        dsn = server.conninfo()
        console.print(f"[dim]embedded PostgreSQL listening on {server.host}[/]")
    scratch = Path(tempfile.mkdtemp(prefix="governed-db-demo-"))
    key = Signer.generate()
    (scratch / "public-key.pem").write_text(key.public_pem())
    trail = AuditTrail.from_settings(
        {"path": str(scratch / "audit"), "durability": "strict"}, signer=key
    )
    try:
        _setup(dsn)
        label = args.policy or f"{DEMO_POLICY} (shipped with governed_db)"
        surprises = _session(console, dsn, policy, label, args.environment, trail)
    except _NotOurs as exc:
        print(f"governed-db demo: error: {exc}", file=sys.stderr)
        return 2
    finally:
        trail.close()
        if server is not None:
            server.stop()
    _show_trail(console, scratch / "audit")
    _verify(console, scratch, key)
    if surprises and args.policy is None:
        console.print(
            f"[bold red]The demo policy did not hold[/]: {len(surprises)} step(s) went "
            "otherwise than intended:"
        )
        for step in surprises:
            what = "ran" if not step.runs else "was refused"
            console.print(f"  {escape(step.why)} {what}: {escape(step.query)}")
        return 1
    return 0


def load_demo_policy(path: str | None) -> governed_db.Policy:
    """The policy ``path`` names, else the one shipped in the package.

    A named file that does not exist (or an empty name) is a ``PolicyError``,
    never a silent fallback.
    """
    if path is not None:
        if not path.strip():
            raise ValueError("--policy is empty")
        return governed_db.load_policy(path)
    with _shipped(DEMO_POLICY) as shipped:
        return governed_db.load_policy(shipped)


@contextlib.contextmanager
def _shipped(name: str) -> Iterator[Path]:
    with resources.as_file(resources.files("governed_db").joinpath(name)) as path:
        yield path


class _NotOurs(Exception):
    """The DSN's database already holds a schema the demo did not make."""


def _setup(dsn: str) -> None:
    with governed_db.connect(dsn, autocommit=True, governor=governed_db.Governor()) as setup:
        row = setup.execute(
            "select obj_description(oid, 'pg_namespace') from pg_namespace where nspname = %s",
            [SCHEMA],
        ).fetchone()
        if row is not None and row[0] != _MARK:
            raise _NotOurs(
                f"schema {SCHEMA} already exists in that database and was not made by the "
                "demo; it is left alone (use an empty database, or the embedded server)"
            )
        setup.execute(_SCHEMA_SQL)


def _session(
    console: Console,
    dsn: str,
    policy: governed_db.Policy,
    label: str,
    environment: str,
    trail: AuditTrail,
) -> list[Step]:
    """Run the script as an agent; the steps whose outcome was not the intended one."""
    agent = governed_db.Identity(kind="agent", name="demo-agent", on_behalf_of="you")
    surprises = []
    with governed_db.connect(
        dsn,
        policy=policy,
        identity=agent,
        environment=environment,
        audit=trail,
        autocommit=True,
    ) as conn:
        session = conn.session
        console.print(
            Panel.fit(
                f"policy: [bold]{escape(label)}[/]   "
                f"environment: [bold]{escape(session.environment)}[/]   "
                f"actor: [bold]{agent.kind}:{agent.name}[/] on behalf of {agent.on_behalf_of}",
                title="governed_db demo",
            )
        )
        for step in _SCRIPT:
            if _attempt(console, conn, step) != step.runs:
                surprises.append(step)
    return surprises


def _attempt(console: Console, conn: Any, step: Step) -> bool:
    """Try one statement and narrate the outcome; True if it ran.

    Any refusal (whichever rule) or server error is shown and the demo goes on.
    """
    console.rule(f"[bold]{escape(step.why)}")
    console.print(f"[cyan]{escape(step.query)}[/]")
    try:
        cur = conn.execute(step.query)
    except governed_db.PolicyViolation as refusal:
        kind = type(refusal).__name__
        console.print(f"[red]✗ {kind}[/] (SQLSTATE {refusal.sqlstate}): {escape(str(refusal))}")
        return False
    except governed_db.GovernanceError as exc:
        console.print(f"[red]✗ {type(exc).__name__}[/]: {escape(str(exc))}")
        return False
    except psycopg.Error as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        console.print(f"[red]✗ the server refused it[/] ({type(exc).__name__}): {escape(first)}")
        return False
    if cur.description:
        table = Table(*(col.name for col in cur.description))
        for row in cur.fetchall():
            table.add_row(*(escape(str(v)) for v in row))
        console.print(table)
    else:
        console.print(f"[green]✓ ran[/]: {cur.rowcount} rows affected")
    return True


def _show_trail(console: Console, spool: Path) -> None:
    console.rule("[bold]the audit trail: who ran what, and what the guardrails decided")
    table = Table("seq", "kind", "actor", "operation", "tables", "decision", "outcome")
    outcomes = {r["intent"]: r for r in iter_records(spool) if r["kind"] == "outcome"}
    masked: dict[str, int] = {}  # intent hash -> values masked in its rows (never the values)
    for r in iter_records(spool):
        if r["kind"] == "masked":
            masked[r["intent"]] = masked.get(r["intent"], 0) + sum(c["values"] for c in r["counts"])
    for r in iter_records(spool):
        if r["kind"] not in ("session", "intent", "refused"):
            continue
        identity = r.get("identity") or {}
        decision = r.get("decision") or {}
        outcome = outcomes.get(r["hash"], {})
        table.add_row(
            str(r["seq"]),
            r["kind"],
            f"{identity.get('kind')}:{identity.get('name')}",
            r.get("db.operation.name", ""),
            ", ".join(r.get("tables_written") or r.get("tables_read") or []),
            " ".join(filter(None, (decision.get("action"), decision.get("rule_id")))),
            _outcome(outcome, masked.get(r["hash"], 0)),
        )
    console.print(table)


def _outcome(record: dict[str, Any], masked: int) -> str:
    if not record:
        return ""
    if record.get("error.type"):
        return f"{record['error.type']} ({record.get('db.response.status_code')})"
    rows = f"{record.get('rowcount')} rows"
    return f"{rows}, {masked} values masked" if masked else rows


def _verify(console: Console, scratch: Path, key: Signer) -> None:
    spool = scratch / "audit"
    keys = PublicKeys([key.public_key])
    report = Verifier(keys).verify(spool_files(spool))
    console.rule("[bold]governed-db audit verify")
    state = "[green]intact[/]" if report.ok else "[red]TAMPERED[/]"
    console.print(f"{state}: {report.records} records, signed checkpoints, hash chain complete")

    tampered = scratch / "tampered"
    shutil.copytree(spool, tampered)
    _rewrite_one_intent(tampered)
    bad = Verifier(keys).verify(spool_files(tampered))
    console.print("after someone edits one recorded statement in a copy:")
    for problem in bad.errors[:3]:
        console.print(f"  [red]✗[/] record {problem.seq}: {problem.kind}: {problem.message}")
    console.print(
        f"\n[dim]Try it yourself: governed-db audit verify {spool} "
        f"--public-key {scratch / 'public-key.pem'}[/]"
    )


def _rewrite_one_intent(spool: Path) -> None:
    """Change the text of the last intent record, leaving its hash as it was."""
    files = spool_files(spool)
    for file in reversed(files):
        lines = file.read_bytes().splitlines(keepends=True)
        for i in range(len(lines) - 1, -1, -1):
            record = json.loads(lines[i])
            if record.get("kind") == "intent":
                record["db.query.text"] = record["db.query.text"].replace("20", "2000")
                lines[i] = json.dumps(record, separators=(",", ":")).encode() + b"\n"
                file.write_bytes(b"".join(lines))
                return
