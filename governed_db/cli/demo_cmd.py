"""``governed-db demo``: a governed session against a real PostgreSQL, narrated."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

import governed_db

_SCHEMA = """
drop schema if exists governed_demo cascade;
create schema governed_demo;
create table governed_demo.customers (
    id int primary key, name text not null, email text not null, card_number text
);
insert into governed_demo.customers values
    (1, 'Ada Lovelace', 'ada@example.com', '4111111111111111'),
    (2, 'Alan Turing', 'alan@example.com', '5500000000000004'),
    (3, 'Grace Hopper', 'grace@example.com', '340000000000009');
"""


def register(subparsers: Any) -> None:
    """Add ``demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="run a narrated governed session (on an embedded PostgreSQL by default)",
    )
    parser.add_argument("--dsn", help="a PostgreSQL to use instead of the embedded one")
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
        console.print(f"[dim]embedded PostgreSQL on {server.host}[/]")
    try:
        with governed_db.connect(dsn, autocommit=True) as conn:
            conn.execute(_SCHEMA)
            _show_query(console, conn, "select id, name, email from governed_demo.customers")
    finally:
        if server is not None:
            server.stop()
    return 0


def _show_query(console: Console, conn: Any, query: str) -> None:
    console.rule(f"[bold]{query}")
    cur = conn.execute(query)
    table = Table(*(col.name for col in cur.description or ()))
    for row in cur:
        table.add_row(*(str(v) for v in row))
    console.print(table)
