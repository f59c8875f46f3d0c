"""Witnesses configured in the policy's ``audit.sinks`` (``type: witness``), not only in code.

Real pieces: a governed connection writing through a policy file, the
PostgreSQL witness table, the reference HTTP endpoint as a subprocess, and
``governed-db audit verify --witness`` on the result.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import psycopg
import pytest

import governed_db
from governed_db.audit import AuditSettings
from governed_db.audit.sinks import build_sink
from governed_db.audit.spool import chain_segments
from governed_db.audit.witness import HttpWitness, PostgresWitness
from governed_db.errors import PolicyError
from tests.audit_helpers import cli
from tests.test_audit_witness_server import TOKEN, Served


def _sinks(*entries: dict[str, object]) -> AuditSettings:
    return AuditSettings.from_mapping({"path": "/tmp/unused", "sinks": list(entries)})


@pytest.mark.parametrize(
    ("entry", "key", "message"),
    [
        ({"url": "ftp://witness"}, "url", "not a witness address"),
        ({"url": "https://w.example/heads", "table": "heads"}, "table", "PostgreSQL witness"),
        ({"url": "postgresql://w@db/w", "headers": {"A": "b"}}, "headers", "HTTP witness"),
        ({"url": "postgresql://w@db/w", "timeout": "5s"}, "timeout", "HTTP witness"),
        ({"url": "postgresql://w@db/w", "table": "no such; table"}, "table", "table name"),
        ({"url": "postgresql://w@db/w", "tabel": "x"}, "tabel", "table"),
        ({"url": "host=db user=w dbname=w", "headers": {"A": "b"}}, "headers", "HTTP witness"),
        ({"url": "no equals sign"}, "url", "not a witness address"),
        ({"url": "host='unterminated"}, "url", "not a witness address"),
        ({}, "url", ""),
    ],
)
def test_witness_entries_are_checked(entry: dict[str, object], key: str, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        _sinks({"type": "witness", **entry})
    assert key in str(caught.value)
    assert message in str(caught.value)


def test_a_secret_address_decides_the_kind_when_built() -> None:
    settings = _sinks(
        {"type": "witness", "name": "w1", "url": "env:WITNESS_URL", "timeout": "3s"},
        {"type": "witness", "name": "w2", "url": "env:WITNESS_DSN", "table": "audit.heads"},
    )
    environ = {"WITNESS_URL": "https://w.example/heads", "WITNESS_DSN": "postgresql://w@db/w"}
    http, pg = (build_sink(s, environ) for s in settings.sinks)
    assert isinstance(http, HttpWitness)
    assert http.timeout == 3.0
    assert http.name == "w1"
    assert isinstance(pg, PostgresWitness)
    assert pg.table == "audit.heads"
    with pytest.raises(PolicyError, match="neither a PostgreSQL DSN"):
        build_sink(settings.sinks[0], {"WITNESS_URL": "s3cr3t-not-a-url"})
    with pytest.raises(PolicyError, match="HTTP witness"):
        build_sink(settings.sinks[0], {"WITNESS_URL": "postgresql://w@db/w"})


def test_configured_witnesses_catch_a_deleted_chain(
    pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GOVERNED_DB_HOME", str(tmp_path / "config"))  # the key is made here
    monkeypatch.setenv("TEST_WITNESS_TOKEN_HEADER", f"Bearer {TOKEN}")
    served = Served(tmp_path / "heads.jsonl", token=True)
    try:
        spool = tmp_path / "spool"
        policy = tmp_path / "policy.yaml"
        policy.write_text(
            textwrap.dedent(
                f"""\
                version: 1
                guardrails: []
                audit:
                  path: {spool}
                  checkpoint_every: 5
                  sinks:
                    - type: witness
                      name: pg-witness
                      url: {pg_dsn}
                      table: public.configured_witness
                    - type: witness
                      name: http-witness
                      url: {served.url}
                      headers:
                        Authorization: env:TEST_WITNESS_TOKEN_HEADER
                """
            )
        )
        with governed_db.connect(pg_dsn, policy=policy, autocommit=True) as conn:
            for i in range(12):
                conn.execute("select %s::int", (i,)).fetchall()
            written = conn.governor.trail  # type: ignore[attr-defined]
        written.close(timeout=30)  # the forwarder hands the witnesses everything first
        with psycopg.connect(pg_dsn) as raw:
            heads = raw.execute("select count(*) from public.configured_witness").fetchone()
        assert heads is not None
        assert heads[0] >= 3
        base = ["audit", "verify", str(spool), "--trust", str(tmp_path / "config" / "public-keys")]
        on_pg = ["--witness", pg_dsn, "--witness-table", "public.configured_witness"]
        on_http = ["--witness", served.url]
        on_http += ["--witness-header", "Authorization: env:TEST_WITNESS_TOKEN_HEADER"]
        assert cli([*base, *on_pg]) == 0
        assert cli([*base, *on_http]) == 0
        capsys.readouterr()

        for f in chain_segments(spool)[written.chain.id]:
            f.unlink()
        assert cli([*base, *on_pg]) == 1
        assert "missing-chain" in capsys.readouterr().out
        assert cli([*base, *on_http]) == 1
        assert "missing-chain" in capsys.readouterr().out
    finally:
        served.stop()
