"""load_policy: sources, sections, env: references, the baseline."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from governed_db.errors import PolicyError
from governed_db.policy import Limits, Policy, baseline, load_policy

FULL = """\
version: 1
mode: observe
description: everything
environments:
  default: dev
  prod:
    description: the real one
    match:
      - host: ["*.prod.example.com", "db-prod-*"]
      - dbname: prod_*
        port: [5432, "65*"]
  dev: null
actors:
  bots:
    - kind: [agent, service]
  admins:
    - email: "*@admin.example.com"
    - "root*"
  delegated:
    - on_behalf_of: alice
      name: helper
guardrails:
  - id: r1
    description: first
    when:
      environments: [prod]
      actors: [bots]
      actor_kind: agent
      operations: [delete, update]
      classes: [write]
      tables: ["public.*"]
      tables_read: [orders]
      tables_written: ["public.orders"]
      functions: ["pg_*"]
      has_where: false
      where_is_trivial: false
      has_limit: false
      opaque: false
      statement_count: {min: 1, max: 3}
      time: {days: [mon-fri, sun], hours: "09:00-17:30", timezone: Europe/Paris, outside: true}
      estimated_rows: {gt: 10, lte: 1000}
    action: require_approval
    message: "{operation} on {table} by {actor}"
    hint: "ask {{someone}}"
  - id: r2
    action: allow
limits:
  default: {statement_timeout: 1m30s, max_rows_affected: 500}
  prod: {max_rows_affected: 10, lock_timeout: 250ms}
  dev: {max_rows_affected: null}
audit:
  path: env:AUDIT_PATH
  durability: batch
  batch_ms: env:AUDIT_BATCH
  fail_closed: false
  redact_literals: true
  parameters: off
  signing: every
  checkpoint_every: 10
  checkpoint_seconds: 2.5
  rotate: {max_bytes: 1000, max_age: 12h}
  sinks:
    - type: http
      url: "https://audit.example.com"
      headers: {Authorization: env:AUDIT_TOKEN}
      batch_size: 3
    - type: memory
"""
ENV = {"AUDIT_PATH": "/var/log/audit.jsonl", "AUDIT_BATCH": "25", "AUDIT_TOKEN": "s3cret"}


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_every_section(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, FULL), environ=ENV)
    assert policy.version == 1
    assert policy.mode == "observe"
    assert policy.description == "everything"
    assert policy.source.endswith("policy.yaml")
    assert [e.name for e in policy.environments] == ["prod", "dev"]
    assert policy.default_environment == "dev"
    assert policy.environment_names == {"prod", "dev"}
    assert [g.name for g in policy.actors] == ["bots", "admins", "delegated"]
    r1, r2 = policy.rules
    assert (r1.id, r1.action, r1.description, r1.line) == ("r1", "require_approval", "first", 23)
    w = r1.when
    assert w.environments == {"prod"}
    assert w.actors == {"bots"}
    assert w.actor_kinds == {"agent"}
    assert w.operations == {"delete", "update"}
    assert w.classes == {"write"}
    assert w.tables is not None
    assert w.tables.patterns == ("public.*",)
    assert (w.has_where, w.where_is_trivial, w.has_limit, w.opaque) == (False,) * 4
    assert (w.min_statements, w.max_statements) == (1, 3)
    assert w.time is not None
    assert w.time.days == {0, 1, 2, 3, 4, 6}
    assert (w.time.start, w.time.end, w.time.tz_name, w.time.outside) == (
        540,
        1050,
        "Europe/Paris",
        True,
    )
    assert w.estimated_rows is not None
    assert (w.estimated_rows.gt, w.estimated_rows.lte) == (10, 1000)
    assert r1.message == "{operation} on {table} by {actor}"
    assert r2.when.describe() == []
    assert policy.uses_time
    assert policy.uses_estimates
    assert policy.limits_for("prod") == Limits(10, 90.0, 0.25)
    assert policy.limits_for("dev") == Limits(None, 90.0, None)
    assert policy.limits_for("elsewhere") == Limits(500, 90.0, None)
    assert policy.limits_for("prod").lock_timeout_ms == 250
    assert policy.limits_for("prod").statement_timeout_ms == 90000
    audit = policy.audit
    assert audit["path"] == "/var/log/audit.jsonl"
    assert audit["batch_ms"] == 25
    assert audit["parameters"] == "off"
    assert audit["checkpoint_seconds"] == 2.5
    assert audit["rotate"]["max_age"] == 12 * 3600
    assert audit["sinks"][0]["headers"]["Authorization"] == "s3cret"
    assert audit["sinks"][0]["batch_size"] == 3
    assert audit["sinks"][1]["type"] == "memory"
    with pytest.raises(TypeError):
        audit["path"] = "x"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.mode = "enforce"  # type: ignore[misc]


def test_environment_matching(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, FULL), environ=ENV)
    assert policy.environment_for(None, {"host": "a.PROD.example.com"}) == "prod"
    assert policy.environment_for(None, {"host": "localhost,db-prod-2"}) == "prod"
    assert policy.environment_for(None, {"dbname": "prod_shop", "port": "6543"}) == "prod"
    assert policy.environment_for(None, {"dbname": "prod_shop", "port": "5433"}) == "dev"
    assert policy.environment_for(None, {"host": "localhost", "dbname": "shop"}) == "dev"
    assert policy.environment_for(None, {}) == "dev"
    assert policy.environment_for("prod", {"host": "localhost"}) == "prod"
    with pytest.raises(PolicyError, match="unknown environment 'production'"):
        policy.environment_for("production", {})


def test_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "version: 1\nguardrails: []\n")
    policy = load_policy(str(path))
    assert isinstance(policy, Policy)
    assert load_policy(policy) is policy
    mapping = load_policy({"version": 1, "guardrails": [{"id": "x", "action": "block"}]})
    assert mapping.source == "<mapping>"
    assert mapping.rules[0].id == "x"
    assert mapping.default_environment == "default"
    assert load_policy(None, environ={}) is baseline()
    assert load_policy(None, environ={"GOVERNED_DB_POLICY": str(path)}).source == str(path)
    monkeypatch.setenv("GOVERNED_DB_POLICY", str(path))
    assert load_policy().source == str(path)


def test_missing_or_unreadable(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="policy file not found") as info:
        load_policy(tmp_path / "nope.yaml")
    assert info.value.path == str(tmp_path / "nope.yaml")
    with pytest.raises(PolicyError, match="directory"):
        load_policy(tmp_path)
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"version: 1 # caf\xe9\n")
    with pytest.raises(PolicyError, match="UTF-8"):
        load_policy(bad)
    with pytest.raises(PolicyError, match="cannot load a policy from int"):
        load_policy(3)  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match="not found") as info:
        load_policy(None, environ={"GOVERNED_DB_POLICY": str(tmp_path / "gone.yaml")})


def test_mapping_errors_name_the_key() -> None:
    with pytest.raises(PolicyError, match=r"guardrails\[0\]\.action: unknown action") as info:
        load_policy({"version": 1, "guardrails": [{"id": "x", "action": "deny"}]})
    assert info.value.key == "guardrails[0].action"
    with pytest.raises(PolicyError, match="NOPE_VAR is not set"):
        load_policy({"version": 1, "guardrails": [], "audit": {"path": "env:NOPE_VAR"}}, environ={})


def test_env_coercion(tmp_path: Path) -> None:
    text = "version: 1\nguardrails: []\nlimits:\n  default: {max_rows_affected: env:ROWS}\n"
    path = write(tmp_path, text)
    assert load_policy(path, environ={"ROWS": "42"}).default_limits.max_rows_affected == 42
    with pytest.raises(PolicyError, match=r"ROWS='many' is not an integer") as info:
        load_policy(path, environ={"ROWS": "many"})
    assert info.value.line == 4


def test_baseline() -> None:
    policy = baseline()
    assert policy.source == "<baseline>"
    assert policy.mode == "enforce"
    assert {r.id for r in policy.rules} >= {"drop-truncate-in-prod", "delete-needs-where"}
    env = policy.environment_for
    for host in ("db-prod-1", "prod.example.com", "shop_prod", "production", "a.prod.b"):
        assert env(None, {"host": host}) == "prod", host
    for host in ("products.example.com", "localhost", "reprod"):
        assert env(None, {"host": host}) == "dev", host
    assert env(None, {"host": "localhost", "dbname": "shop_prod"}) == "prod"
    assert env(None, {"host": "db.staging.local"}) == "staging"
