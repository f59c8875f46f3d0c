"""``governed-db demo``: an AI agent's session against a real PostgreSQL, narrated.

The session is audited to a signed trail in a scratch directory; the demo then
verifies the trail, tampers with a copy, and shows that verify catches it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

import governed_db
from governed_db.audit import AuditTrail, PublicKeys, Signer, Verifier, spool_files
from governed_db.audit.reader import iter_records

_SCHEMA = """
drop schema if exists shop cascade;
create schema shop;
create table shop.customers (id int primary key, name text not null, email text not null);
insert into shop.customers
    select i, 'Customer ' || i, 'customer' || i || '@example.com' from generate_series(1, 50) i;
create table shop.orders (
    id int primary key, customer_id int references shop.customers, total numeric not null,
    status text not null default 'open'
);
insert into shop.orders
    select i, 1 + i % 50, (i % 97) * 1.5, 'open' from generate_series(1, 3000) i;
analyze shop.customers, shop.orders;
"""

# (what the agent tries, why it is interesting)
_SCRIPT: tuple[tuple[str, str], ...] = (
    ("select id, name, email from shop.customers where id <= 3", "an ordinary read"),
    ("delete from shop.orders", "a DELETE without WHERE"),
    ("update shop.orders set status = 'void' where 1 = 1", "a WHERE clause that is always true"),
    (
        "with gone as (delete from shop.orders returning id) select count(*) from gone",
        "a delete hidden in a CTE",
    ),
    ("drop table shop.orders", "DROP TABLE in production"),
    ("do $$ begin perform pg_sleep(0); end $$", "code the gate cannot see through"),
    ("update shop.orders set status = 'closed' where total > 10", "a write of ~2,700 rows"),
    ("update shop.orders set status = 'closed' where id <= 20", "a small, targeted write"),
)


def register(subparsers: Any) -> None:
    """Add ``demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="run a narrated governed session (on an embedded PostgreSQL by default)",
    )
    parser.add_argument("--dsn", help="a PostgreSQL to use instead of the embedded one")
    parser.add_argument(
        "--policy",
        default="policies.example.yaml",
        help="policy file (default: policies.example.yaml, else the built-in baseline)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start a server if needed, then show what governance does."""
    console = Console()
    server = None
    dsn = args.dsn
    if not dsn:
        from governed_db.embedded_server import start_embedded_server

        with console.status("starting an embedded PostgreSQL…"):
            server = start_embedded_server()
        dsn = server.conninfo()
        console.print(f"[dim]embedded PostgreSQL listening on {server.host}[/]")
    policy = args.policy if Path(args.policy).is_file() else None
    scratch = Path(tempfile.mkdtemp(prefix="governed-db-demo-"))
    key = Signer.generate()
    (scratch / "public-key.pem").write_text(key.public_pem())
    trail = AuditTrail.from_settings(
        {"path": str(scratch / "audit"), "durability": "strict"}, signer=key
    )
    try:
        _session(console, dsn, policy, trail)
    finally:
        trail.close()
        if server is not None:
            server.stop()
    _show_trail(console, scratch / "audit")
    _verify(console, scratch, key)
    return 0


def _session(console: Console, dsn: str, policy: str | None, trail: AuditTrail) -> None:
    with governed_db.connect(dsn, autocommit=True, governor=governed_db.Governor()) as setup:
        setup.execute(_SCHEMA)
    agent = governed_db.Identity(kind="agent", name="demo-agent", on_behalf_of="you")
    with governed_db.connect(
        dsn,
        policy=policy,
        identity=agent,
        environment="prod" if policy else None,
        audit=trail,
        autocommit=True,
    ) as conn:
        session = conn.session
        console.print(
            Panel.fit(
                f"policy: [bold]{policy or 'built-in baseline'}[/]   "
                f"environment: [bold]{session.environment}[/]   "
                f"actor: [bold]{agent.kind}:{agent.name}[/] on behalf of {agent.on_behalf_of}",
                title="governed_db demo",
            )
        )
        for query, why in _SCRIPT:
            _attempt(console, conn, query, why)


def _attempt(console: Console, conn: Any, query: str, why: str) -> None:
    console.rule(f"[bold]{why}")
    console.print(f"[cyan]{query}[/]")
    try:
        cur = conn.execute(query)
    except governed_db.PolicyViolation as refusal:
        kind = type(refusal).__name__
        console.print(f"[red]✗ {kind}[/] (SQLSTATE {refusal.sqlstate}): {refusal}")
        return
    if cur.description:
        table = Table(*(col.name for col in cur.description))
        for row in cur.fetchall():
            table.add_row(*(str(v) for v in row))
        console.print(table)
    else:
        console.print(f"[green]✓ ran[/]: {cur.rowcount} rows affected")


def _show_trail(console: Console, spool: Path) -> None:
    console.rule("[bold]the audit trail: who ran what, and what the guardrails decided")
    table = Table("seq", "kind", "actor", "operation", "tables", "decision", "outcome")
    outcomes = {r["intent"]: r for r in iter_records(spool) if r["kind"] == "outcome"}
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
            _outcome(outcome),
        )
    console.print(table)


def _outcome(record: dict[str, Any]) -> str:
    if not record:
        return ""
    if record.get("error.type"):
        return f"{record['error.type']} ({record.get('db.response.status_code')})"
    return f"{record.get('rowcount')} rows"


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
