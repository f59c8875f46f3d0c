"""The PostgreSQL store: shared by a team, on its own DSN, schema made on first use.

Tables ``governed_db_approvals.requests`` (one row per request: its body as
text, exactly as written, and the ``used`` count) and
``governed_db_approvals.decisions`` (appended, never updated). A use is counted
with one atomic ``UPDATE ... WHERE used < allowed RETURNING``: two workers
racing for a one-use approval, exactly one gets the row. The connection is a
plain psycopg connection (the store is not governed by the policy it serves).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from governed_db.approvals.binding import ApprovalRequest
from governed_db.approvals.decisions import SignedDecision
from governed_db.approvals.store import ApprovalStore, ApprovalStoreError, StoredApproval

__all__ = ["PostgresStore"]

SCHEMA = "governed_db_approvals"
_DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {SCHEMA}.requests (
    id text primary key,
    binding text not null,
    body text not null,
    requested_at bigint not null,
    used integer not null default 0
);
create index if not exists requests_binding on {SCHEMA}.requests (binding);
create table if not exists {SCHEMA}.decisions (
    seq bigserial primary key,
    approval_id text not null references {SCHEMA}.requests (id),
    body text not null,
    signature text not null
);
create index if not exists decisions_approval on {SCHEMA}.decisions (approval_id);
"""
_SELECT = f"""
select r.body, r.used,
       coalesce((select json_agg(json_build_array(d.body, d.signature) order by d.seq)
                 from {SCHEMA}.decisions d where d.approval_id = r.id), '[]')
from {SCHEMA}.requests r
"""
_CONNECT_TIMEOUT = 5


def _where(dsn: str) -> str:
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "postgres store"
    return f"postgres store {params.get('host') or 'localhost'}/{params.get('dbname') or ''}"


class PostgresStore(ApprovalStore):
    """Approvals in PostgreSQL (see the module docstring)."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self.where = _where(dsn)
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    def _error(self, exc: BaseException) -> ApprovalStoreError:
        first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        return ApprovalStoreError(
            f"the approval {self.where} cannot be reached: {first}; statements that need "
            "approval are refused (fail closed)",
            rule_id="approval-store-unavailable",
        )

    def _connection(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=_CONNECT_TIMEOUT)
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(hashtext('governed_db_approvals'))")
            conn.execute(_DDL)
        self._conn = conn
        return conn

    def _run(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                conn = self._connection()
                cur = conn.execute(query, params)
                return cur.fetchall() if cur.description is not None else []
            except psycopg.OperationalError as exc:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                raise self._error(exc) from exc
            except psycopg.Error as exc:
                raise self._error(exc) from exc

    @staticmethod
    def _stored(row: tuple[Any, ...]) -> StoredApproval | None:
        body, used, decisions = row
        try:
            request = ApprovalRequest.from_body(json.loads(body))
            signed = tuple(
                SignedDecision.from_json({"body": json.loads(b), "signature": s})
                for b, s in decisions
            )
        except (TypeError, ValueError):
            return None  # garbled: counts for nothing
        return StoredApproval(request, signed, int(used))

    def _many(self, rows: list[tuple[Any, ...]]) -> list[StoredApproval]:
        return [s for s in map(self._stored, rows) if s is not None]

    def add_request(self, request: ApprovalRequest) -> None:
        self._run(
            f"insert into {SCHEMA}.requests (id, binding, body, requested_at) "
            "values (%s, %s, %s, %s)",
            (request.id, request.binding, json.dumps(request.body()), request.requested_at),
        )

    def find(self, binding: str) -> list[StoredApproval]:
        query = _SELECT + " where r.binding = %s order by r.requested_at, r.id"
        return self._many(self._run(query, (binding,)))

    def get(self, approval_id: str) -> StoredApproval | None:
        found = self._many(self._run(_SELECT + " where r.id = %s", (approval_id,)))
        return found[0] if found else None

    def all(self) -> list[StoredApproval]:
        return self._many(self._run(_SELECT + " order by r.requested_at, r.id"))

    def add_decision(self, approval_id: str, decision: SignedDecision) -> None:
        rows = self._run(
            f"insert into {SCHEMA}.decisions (approval_id, body, signature) "
            f"select id, %s, %s from {SCHEMA}.requests where id = %s returning seq",
            (json.dumps(dict(decision.body)), decision.signature, approval_id),
        )
        if not rows:
            raise ApprovalStoreError(f"unknown approval {approval_id}")

    def consume(self, approval_id: str, allowed: int) -> bool:
        rows = self._run(
            f"update {SCHEMA}.requests set used = used + 1 "
            "where id = %s and used < %s returning used",
            (approval_id, allowed),
        )
        return bool(rows)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
