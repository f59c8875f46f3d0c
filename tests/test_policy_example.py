"""policies.example.yaml: it loads, and every section does what its comments say."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from governed_db.audit import AuditSettings
from governed_db.errors import PolicyViolation
from governed_db.identity import Identity
from governed_db.policy import Context, Limits, Policy, decide, load_policy
from governed_db.sql import analyze

EXAMPLE = Path(__file__).parent.parent / "policies.example.yaml"
HUMAN = Identity("human", "bob", email="bob@example.com")
AGENT = Identity("agent", "claude", on_behalf_of="bob")
REPORTING = Identity("service", "reporting-nightly")
WEEKDAY_NOON = datetime.fromisoformat("2024-01-10T12:00:00+01:00")  # a Wednesday, Paris


@pytest.fixture(scope="module")
def example() -> Policy:
    return load_policy(EXAMPLE)


def run(
    policy: Policy, sql: str, env: str = "prod", who: Identity = HUMAN, **kw: object
) -> tuple[str, str | None]:
    context = Context(env, who, now=kw.pop("now", WEEKDAY_NOON), **kw)  # type: ignore[arg-type]
    d = decide(policy, analyze(sql), context)
    return d.action, d.rule_id


def test_top_level(example: Policy) -> None:
    assert example.version == 1
    assert example.mode == "enforce"
    assert example.description


def test_environments(example: Policy) -> None:
    env = example.environment_for
    assert env(None, {"host": "pg1.prod.example.com", "dbname": "shop"}) == "prod"
    assert env(None, {"host": "db-prod-3"}) == "prod"
    assert env(None, {"host": "localhost", "dbname": "shop_prod", "port": "5432"}) == "prod"
    assert env(None, {"host": "localhost", "dbname": "shop_prod", "port": "5433"}) == "dev"
    assert env(None, {"host": "pg.staging.example.com"}) == "staging"
    assert env(None, {"host": "localhost"}) == "dev"
    assert env("staging", {"host": "db-prod-3"}) == "staging"


def test_actors(example: Policy) -> None:
    assert example.actor_groups(HUMAN) == {"humans"}
    assert example.actor_groups(AGENT) == {"agents"}
    assert example.actor_groups(Identity("human", "x", email="y@dba.example.com")) == {
        "humans",
        "dba",
    }
    assert example.actor_groups(Identity("human", "alice")) == {"humans", "dba"}
    assert example.actor_groups(REPORTING) == {"reporting"}
    assert example.actor_groups(Identity("ci", "gitlab-ci")) == {"deployers"}
    assert example.actor_groups(Identity("ci", "jenkins")) == frozenset()


@pytest.mark.parametrize(
    ("sql", "env", "expected"),
    [
        ("DROP TABLE orders", "prod", ("block", "drop-truncate-in-prod")),
        ("TRUNCATE orders", "prod", ("block", "drop-truncate-in-prod")),
        ("DROP TABLE orders", "dev", ("allow", None)),
        ("DELETE FROM orders", "dev", ("block", "delete-needs-where")),
        ("UPDATE orders SET paid = true", "staging", ("block", "update-needs-where")),
        ("DELETE FROM orders WHERE 1 = 1", "prod", ("block", "trivial-where")),
        ("DELETE FROM orders WHERE id = 3", "prod", ("allow", None)),
        ("DELETE FROM scratch.tmp", "dev", ("allow", "dev-scratch-anything-goes")),
        ("DELETE FROM scratch.tmp", "prod", ("block", "delete-needs-where")),
        ("COPY orders TO PROGRAM 'gzip > /tmp/o.gz'", "prod", ("require_approval",
                                                             "copy-program-needs-approval")),
        ("SELECT pg_read_file('/etc/passwd')", "prod", ("require_approval",
                                                       "dangerous-functions-need-approval")),
        ("SELECT pg_read_file('/etc/passwd')", "dev", ("allow", None)),
        ("DO $$ BEGIN PERFORM 1; END $$", "prod", ("require_approval",
                                                  "opaque-needs-approval-in-prod")),
        ("CREATE TABLE t (id int)", "prod", ("allow", None)),
        ("SELECT * FROM orders", "prod", ("allow", None)),
    ],
)  # fmt: skip
def test_guardrails_for_a_human(
    example: Policy, sql: str, env: str, expected: tuple[str, str | None]
) -> None:
    assert run(example, sql, env) == expected


def test_guardrails_for_agents_and_services(example: Policy) -> None:
    assert run(example, "CREATE TABLE t (id int)", "prod", AGENT) == (
        "block",
        "agents-no-ddl-in-prod",
    )
    assert run(example, "GRANT SELECT ON t TO x", "prod", AGENT)[0] == "block"
    assert run(example, "CREATE TABLE t (id int)", "dev", AGENT) == ("allow", None)
    assert run(example, "INSERT INTO t VALUES (1)", "dev", REPORTING) == (
        "block",
        "reporting-is-read-only",
    )
    assert run(example, "SELECT 1; SELECT 2", "dev", AGENT) == (
        "observe",
        "agents-multi-statement",
    )
    assert run(example, "SELECT 1; SELECT 2", "dev", HUMAN) == ("allow", None)


def test_time_window_rule(example: Policy) -> None:
    saturday = datetime.fromisoformat("2024-01-13T12:00:00+01:00")
    evening = datetime.fromisoformat("2024-01-10T19:30:00+01:00")
    assert run(example, "SELECT 1", "dev", AGENT, now=saturday) == ("observe", "agents-after-hours")
    assert run(example, "SELECT 1", "dev", AGENT, now=evening) == ("observe", "agents-after-hours")
    assert run(example, "SELECT 1", "dev", AGENT) == ("allow", None)
    assert run(example, "SELECT 1", "dev", HUMAN, now=saturday) == ("allow", None)


def test_estimated_rows_rule(example: Policy) -> None:
    sql = "UPDATE orders SET paid = true WHERE created < now()"
    ctx = Context("prod", HUMAN, WEEKDAY_NOON)
    assert example.needs_estimate(analyze(sql), ctx)
    assert not example.needs_estimate(analyze("SELECT 1"), ctx)
    assert run(example, sql, estimated_rows=50) == ("allow", None)
    action, rule = run(example, sql, estimated_rows=50_000)
    assert (action, rule) == ("require_approval", "big-writes-need-approval")
    d = decide(example, analyze(sql), Context("prod", HUMAN, estimated_rows=50_000))
    assert d.reason == "UPDATE on public.orders would touch about 50,000 rows"


def test_limits(example: Policy) -> None:
    assert example.limits_for("prod") == Limits(1000, 30.0, 5.0)
    assert example.limits_for("staging") == Limits(100_000, 60.0, None)
    assert example.limits_for("dev") == Limits(None, None, None)


def test_audit(example: Policy) -> None:
    audit = example.audit
    assert audit["durability"] == "batch"
    assert audit["fail_closed"] is True
    assert audit["parameters"] == "hash"
    assert audit["signing"] == "checkpoint"
    # The audit room accepts the example's section as the policy room hands it over.
    settings = AuditSettings.from_mapping(audit)
    assert settings.rotate_seconds == 86400
    assert settings.durability == "batch"
    assert list(audit["sinks"]) == []


def test_message_reads_well(example: Policy) -> None:
    d = decide(example, analyze("DELETE FROM orders"), Context("prod", HUMAN))
    with pytest.raises(PolicyViolation) as info:
        d.raise_for("DELETE FROM orders")
    assert str(info.value) == (
        "DELETE on public.orders has no WHERE clause (rule delete-needs-where). "
        "Add a WHERE clause that selects the rows to delete."
    )


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("create or replace function f() returns int language sql as 'select 1'",
         ("require_approval", "code-needs-approval")),
        ("create trigger tr after insert on orders for each row execute function f()",
         ("require_approval", "code-needs-approval")),
        ("create rule r as on insert to orders do instead nothing",
         ("require_approval", "code-needs-approval")),
        ("alter table orders drop column note", ("require_approval",
                                                 "destructive-alter-needs-approval")),
        ("alter table orders alter column total type int using total::int",
         ("require_approval", "destructive-alter-needs-approval")),
        ("alter table orders rename to old_orders", ("require_approval",
                                                     "destructive-alter-needs-approval")),
        ("alter table orders disable trigger all", ("require_approval",
                                                    "destructive-alter-needs-approval")),
        ("alter table orders add column note text", ("allow", None)),
        ("set search_path = evil", ("require_approval", "session-settings-need-approval")),
        ("set role admin", ("require_approval", "session-settings-need-approval")),
        ("select set_config('search_path', 'evil', false)",
         ("require_approval", "session-settings-need-approval")),
        ("set statement_timeout = '5s'", ("allow", None)),
        ("select lo_unlink(1)", ("require_approval", "dangerous-functions-need-approval")),
        ("merge into orders using s on true when matched then delete", ("block", "trivial-where")),
        ("insert into orders values (1) on conflict (id) do update set paid = true",
         ("allow", None)),
        ("create table k as with d as (delete from orders returning *) select * from d",
         ("block", "delete-needs-where")),
    ],
)  # fmt: skip
def test_guardrails_for_what_statements_do(
    example: Policy, sql: str, expected: tuple[str, str | None]
) -> None:
    assert run(example, sql, "prod") == expected


def test_code_and_settings_rules_are_prod_only(example: Policy) -> None:
    for sql in ("create function f() returns int language sql as 'select 1'",
                "set search_path = x", "alter table orders drop column note"):  # fmt: skip
        assert run(example, sql, "dev") == ("allow", None)


def test_reporting_reads_but_locks_nothing(example: Policy) -> None:
    assert run(example, "SELECT * FROM orders", "prod", REPORTING) == ("allow", None)
    assert run(example, "SELECT * FROM orders FOR UPDATE", "prod", REPORTING) == (
        "block",
        "reporting-takes-no-row-locks",
    )
    assert run(example, "SELECT * FROM orders FOR SHARE SKIP LOCKED", "dev", REPORTING) == (
        "block",
        "reporting-takes-no-row-locks",
    )
    assert run(example, "EXPLAIN ANALYZE SELECT * FROM orders", "prod", REPORTING) == (
        "block",
        "reporting-runs-no-explain-analyze",
    )
    assert run(example, "EXPLAIN SELECT * FROM orders", "prod", REPORTING) == ("allow", None)
    assert run(example, "EXPLAIN ANALYZE DELETE FROM orders WHERE id = 1", "prod", REPORTING) == (
        "block",
        "reporting-is-read-only",
    )


def test_scratch_allow_rule_needs_every_written_table(example: Policy) -> None:
    sneaky = (
        "WITH d AS (DELETE FROM public.orders RETURNING *) INSERT INTO scratch.tmp SELECT * FROM d"
    )
    assert run(example, sneaky, "dev") == ("block", "delete-needs-where")
    assert run(example, "DELETE FROM scratch.tmp", "dev") == ("allow", "dev-scratch-anything-goes")
