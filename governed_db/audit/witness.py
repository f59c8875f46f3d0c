"""Witnesses: signed chain heads kept outside the writer's control, and reading them back.

A witness is a remote sink (fed from the spool by the forwarder, at least
once, like every remote sink) that keeps only the *heads* of signed records —
genesis, checkpoints, close: ``chain, seq, hash, kind, kid, sig, ts``. Deleting
a whole chain, or truncating it and resealing it with the key, leaves the
witness holding heads the spool no longer has: ``governed-db audit verify PATH
--witness SINK`` reports them (``heads.check_witness``).

* :class:`PostgresWitness` — a table on another DSN (give the writer's role
  ``INSERT, SELECT`` only: ``ON CONFLICT DO NOTHING`` keeps the first head
  seen at each (chain, seq), so a later rewrite cannot replace it);
* :class:`HttpWitness` — ``POST {"heads": [...]}`` to an endpoint; reading
  back is ``GET`` on the same URL answering ``{"heads": [...]}``;
* :class:`HeadsOnly` — any other sink (syslog, OTLP, your own), given only
  the signed records.

``read_witness(SPEC)`` reads heads back from a ``postgresql://`` DSN (a
witness table, or the ``postgres`` sink's audit table), an ``http(s)://``
URL, or a file of JSON lines (heads or whole records, e.g. exported from a
SIEM that a remote sink feeds).
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from governed_db.audit.heads import Head
from governed_db.audit.records import AuditRecord
from governed_db.audit.sinks.base import AuditSink
from governed_db.errors import AuditError

__all__ = ["HeadsOnly", "HttpWitness", "PostgresWitness", "WitnessSink", "read_witness"]

DEFAULT_TABLE = "governed_db_witness"
_DDL = (
    "CREATE TABLE IF NOT EXISTS {} ("
    " chain text NOT NULL, seq bigint NOT NULL, hash text NOT NULL, kind text NOT NULL,"
    " kid text NOT NULL, sig text NOT NULL, ts text,"
    " seen_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (chain, seq))"
)


class WitnessSink(AuditSink):
    """A remote sink that is handed only signed records (``publish`` their heads)."""

    remote: ClassVar[bool] = True
    #: The forwarder skips lines without a signature before parsing them.
    signed_only: ClassVar[bool] = True

    def __init__(
        self,
        name: str | None = None,
        *,
        batch_size: int = 5000,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        super().__init__(
            name, batch_size=batch_size, backoff_initial=backoff_initial, backoff_max=backoff_max
        )

    def emit(self, records: Sequence[AuditRecord]) -> None:
        """Publish the heads of the signed records among ``records`` (raise to retry)."""
        heads = [h for h in (Head.of(r.data) for r in records) if h is not None]
        if heads:
            self.publish(heads, [r for r in records if "sig" in r.data])

    def publish(self, heads: Sequence[Head], records: Sequence[AuditRecord]) -> None:
        """Store the heads (``records``: the signed records they came from)."""
        raise NotImplementedError


class HeadsOnly(WitnessSink):
    """Makes any sink a witness: it receives the signed records only."""

    def __init__(self, inner: AuditSink, name: str | None = None) -> None:
        super().__init__(name or f"{inner.name}-witness")
        self.inner = inner

    def publish(self, heads: Sequence[Head], records: Sequence[AuditRecord]) -> None:
        """Hand the signed records to the wrapped sink."""
        self.inner.emit(records)

    def close(self) -> None:
        """Close the wrapped sink."""
        self.inner.close()


class HttpWitness(WitnessSink):
    """POSTs ``{"heads": [...]}``; any non-2xx answer or network error is retried."""

    def __init__(
        self,
        url: str,
        *,
        name: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        **retry: Any,
    ) -> None:
        super().__init__(name or "http-witness", **retry)
        self.url = url
        self.headers = dict(headers or {})
        self.timeout = timeout

    def publish(self, heads: Sequence[Head], records: Sequence[AuditRecord]) -> None:
        """POST one batch of heads."""
        body = json.dumps({"heads": [h.as_json() for h in heads]}).encode()
        request = urllib.request.Request(self.url, data=body, method="POST")
        request.add_header("Content-Type", "application/json")
        request.add_header("Idempotency-Key", heads[-1].hash)
        for key, value in self.headers.items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            raise OSError(f"witness {self.url} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise OSError(f"witness {self.url}: {getattr(exc, 'reason', exc)}") from None


class PostgresWitness(WitnessSink):
    """Heads in a table on another DSN (plain psycopg, never governed)."""

    def __init__(
        self, dsn: str, *, name: str | None = None, table: str = DEFAULT_TABLE, **retry: Any
    ) -> None:
        super().__init__(name or "postgres-witness", **retry)
        self.dsn = dsn
        self.table = table
        self._conn: Any = None
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        import psycopg
        from psycopg import sql

        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = psycopg.connect(self.dsn, connect_timeout=10, application_name="governed-db-witness")
        try:
            with conn.transaction():
                conn.execute(sql.SQL(_DDL).format(sql.Identifier(*self.table.split("."))))
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def publish(self, heads: Sequence[Head], records: Sequence[AuditRecord]) -> None:
        """Insert the heads; the first head seen at a (chain, seq) stays."""
        import psycopg
        from psycopg import sql

        query = sql.SQL(
            "INSERT INTO {} (chain, seq, hash, kind, kid, sig, ts)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (chain, seq) DO NOTHING"
        ).format(sql.Identifier(*self.table.split(".")))
        rows = [(h.chain, h.seq, h.hash, h.kind, h.kid, h.sig, h.ts) for h in heads]
        with self._lock:
            try:
                conn = self._connect()
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(query, rows)
            except psycopg.Error as exc:
                self._drop()
                raise OSError(f"postgres witness {self.name}: {exc}") from None

    def _drop(self) -> None:
        import psycopg

        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._drop()


# -- reading heads back ----------------------------------------------------------


def _collect(items: Any, where: str) -> dict[str, list[Head]]:
    out: dict[str, list[Head]] = {}
    if not isinstance(items, list):
        raise AuditError(f"witness {where}: expected a list of heads")
    for item in items:
        head = Head.of(item) if isinstance(item, dict) else None
        if head is not None:
            out.setdefault(head.chain, []).append(head)
    return out


def _read_file(path: Path) -> dict[str, list[Head]]:
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("{") and "\n{" not in stripped.rstrip():
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise AuditError(f"witness file {path}: not JSON ({exc})") from exc
        if isinstance(doc, dict) and "heads" in doc:
            return _collect(doc["heads"], str(path))
        return _collect([doc], str(path))
    items = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except (ValueError, RecursionError) as exc:
            raise AuditError(f"witness file {path}:{n}: not JSON ({exc})") from exc
    return _collect(items, str(path))


def _read_http(url: str, timeout: float, headers: Mapping[str, str]) -> dict[str, list[Head]]:
    request = urllib.request.Request(
        url, method="GET", headers={"Accept": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        exc.close()
        raise AuditError(f"witness {url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise AuditError(f"witness {url}: {getattr(exc, 'reason', exc)}") from None
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise AuditError(f"witness {url}: the answer is not JSON") from exc
    if not isinstance(doc, dict) or "heads" not in doc:
        raise AuditError(f'witness {url}: expected {{"heads": [...]}}')
    return _collect(doc["heads"], url)


def _read_postgres(dsn: str, table: str | None, timeout: float) -> dict[str, list[Head]]:
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(dsn, connect_timeout=int(timeout), autocommit=True) as conn:
            name = table or DEFAULT_TABLE
            parts = name.split(".")
            cols = {
                r[0]
                for r in conn.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s)"
                    " AND attnum > 0 AND NOT attisdropped",
                    (name,),
                )
            }
            ident = sql.Identifier(*parts)
            if {"chain", "seq", "hash", "sig", "kid"} <= cols:
                rows = conn.execute(
                    sql.SQL("SELECT chain, seq, hash, kind, kid, sig, ts FROM {}").format(ident)
                ).fetchall()
                items: list[Any] = [
                    {"chain": c, "seq": s, "hash": h, "kind": k, "kid": i, "sig": g, "ts": t}
                    for c, s, h, k, i, g, t in rows
                ]
            elif {"record", "line"} <= cols:  # the postgres sink's audit table
                rows = conn.execute(
                    sql.SQL("SELECT line FROM {} WHERE record ? 'sig'").format(ident)
                ).fetchall()
                items = [json.loads(r[0]) for r in rows]
            else:
                raise AuditError(
                    f"witness {name}: no such table, or neither a witness table "
                    "(chain, seq, hash, kid, sig) nor an audit sink table (line, record)"
                )
    except psycopg.Error as exc:
        raise AuditError(f"witness database: {str(exc).strip()}") from None
    return _collect(items, name)


def read_witness(
    spec: str,
    *,
    table: str | None = None,
    timeout: float = 10.0,
    headers: Mapping[str, str] | None = None,
) -> dict[str, list[Head]]:
    """Heads by chain from a witness: a postgresql:// DSN, an http(s):// URL or a file."""
    if spec.startswith(("postgresql://", "postgres://")) or "dbname=" in spec:
        return _read_postgres(spec, table, timeout)
    if spec.startswith(("http://", "https://")):
        return _read_http(spec, timeout, headers or {})
    path = Path(spec)
    if path.is_file():
        return _read_file(path)
    raise AuditError(
        f"witness {spec!r}: give a postgresql:// DSN, an http(s):// URL or a file of heads"
    )
