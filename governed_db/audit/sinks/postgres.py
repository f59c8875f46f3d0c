"""PostgreSQL sink: records in a table of any database, over a plain psycopg connection.

The connection is psycopg's own, never a governed one (auditing the audit
inserts would recurse). The table is created on first use::

    CREATE TABLE IF NOT EXISTS governed_db_audit (
        hash  text PRIMARY KEY,   -- idempotency key: re-sent records are ignored
        chain text NOT NULL, seq bigint NOT NULL, kind text NOT NULL,
        ts    timestamptz NOT NULL,
        line  text NOT NULL,      -- the exact canonical JSON: verify reads this
        record jsonb NOT NULL,    -- the same, for queries
        UNIQUE (chain, seq))
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from governed_db.audit.records import AuditRecord
from governed_db.audit.sinks.base import AuditSink

__all__ = ["PostgresSink"]


class PostgresSink(AuditSink):
    """INSERT ... ON CONFLICT (hash) DO NOTHING, one transaction per batch."""

    remote = True

    def __init__(
        self,
        dsn: str,
        *,
        name: str | None = None,
        table: str = "governed_db_audit",
        batch_size: int = 500,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        super().__init__(
            name or "postgres",
            batch_size=batch_size,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
        )
        self.dsn = dsn
        self.table = sql.Identifier(*table.split("."))
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = psycopg.connect(self.dsn, connect_timeout=10, application_name="governed-db-audit")
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} ("
                        " hash text PRIMARY KEY, chain text NOT NULL, seq bigint NOT NULL,"
                        " kind text NOT NULL, ts timestamptz NOT NULL, line text NOT NULL,"
                        " record jsonb NOT NULL, UNIQUE (chain, seq))"
                    ).format(self.table)
                )
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def emit(self, records: Sequence[AuditRecord]) -> None:
        """Insert a batch; on error drop the connection and raise."""
        query = sql.SQL(
            "INSERT INTO {} (hash, chain, seq, kind, ts, line, record)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb) ON CONFLICT (hash) DO NOTHING"
        ).format(self.table)
        rows = []
        for r in records:
            line = r.line.decode("utf-8")
            rows.append((r.hash, r.chain, r.seq, r.kind, r.data.get("ts"), line, line))
        with self._lock:
            try:
                conn = self._connect()
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(query, rows)
            except psycopg.Error as exc:
                self._drop()
                raise OSError(f"postgres sink {self.name}: {exc}") from None

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._drop()
