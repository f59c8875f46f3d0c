"""What statements do, read by both backends: effects, MERGE, upserts, hidden writes,
EXPLAIN ANALYZE, prepared statements, row locks, settings, DDL objects and ALTER actions.

pglast must report exactly the expected facts. sqlparse must report the same or
fall back to opaque (never less risky); where it is known to read a shape,
``EXACT`` cases demand it gets them right too.
"""

from __future__ import annotations

from typing import Any

import pytest

from governed_db.sql import (
    ALTER_ACTIONS,
    DANGEROUS_FUNCTIONS,
    LOCK_WAITS,
    OBJECT_KINDS,
    ROW_LOCKS,
    analyze,
    available_backends,
)
from governed_db.sql.facts import StatementFacts

BACKENDS = available_backends()
SETS = {"effects", "row_locks", "lock_waits", "settings", "objects", "alter_actions", "functions"}
SETS |= {"tables_read", "tables_written"}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def one(query: str, backend: str) -> StatementFacts:
    facts = analyze(query, backend=backend)
    assert facts.statement_count == 1
    return facts.statements[0]


def got(s: StatementFacts, expected: dict[str, Any]) -> dict[str, Any]:
    return {key: getattr(s, key) for key in expected}


def want(expected: dict[str, Any]) -> dict[str, Any]:
    return {k: frozenset(v) if k in SETS else v for k, v in expected.items()}


def check(query: str, backend: str, *, exact: bool = False, **expected: Any) -> StatementFacts:
    """pglast: exactly ``expected``; sqlparse: the same, or opaque unless ``exact``."""
    s = one(query, backend)
    expected = want(expected)
    if backend == "pglast" or exact or not s.opaque:
        assert got(s, expected) == expected, query
    else:
        assert s.statement_class == "opaque"
    return s


# -- effects: every operation a statement performs ---------------------------------------------


@pytest.mark.parametrize(
    ("query", "operation", "effects"),
    [
        ("select 1", "select", {"select"}),
        ("insert into t values (1)", "insert", {"insert"}),
        ("insert into t values (1) on conflict do nothing", "insert", {"insert"}),
        ("insert into t values (1) on conflict (id) do update set x = 1", "insert",
         {"insert", "update"}),
        ("INSERT INTO t AS x VALUES (1) ON CONFLICT ON CONSTRAINT t_pkey DO UPDATE SET y = 2",
         "insert", {"insert", "update"}),
        ("with d as (delete from t returning *) select * from d", "delete", {"delete"}),
        ("with d as (delete from t returning *) insert into a select * from d", "delete",
         {"delete", "insert"}),
        ("with u as (update t set x = 1 where id = 2 returning *) select * from u", "update",
         {"update"}),
        ("copy (delete from t where id = 1 returning *) to stdout", "delete",
         {"delete", "copy_to"}),
        ("copy (delete from t returning *) to program 'cat'", "copy_program",
         {"copy_program", "delete"}),
        ("create table b as select * from a", "create", {"create"}),
        ("create table b as with d as (delete from a returning *) select * from d", "delete",
         {"create", "delete"}),
        ("CREATE TABLE IF NOT EXISTS b AS WITH u AS (UPDATE a SET x = 0 RETURNING *) "
         "SELECT * FROM u", "update", {"create", "update"}),
        ("create unlogged table b as with i as (insert into a values (1) returning *) "
         "select * from i with no data", "insert", {"create", "insert"}),
        ("select * into b from a", "create", {"create"}),
        ("with d as (delete from a returning *) select * into b from d", "delete",
         {"create", "delete"}),
        ("WITH d AS (DELETE FROM a RETURNING *) SELECT * INTO TEMP b FROM d", "delete",
         {"create", "delete"}),
        ("explain analyze delete from t where id = 1", "delete", {"delete"}),
        ("explain (analyze) with d as (delete from t returning *) select * from d", "delete",
         {"delete"}),
        ("explain analyze create table b as with d as (delete from a returning *) "
         "select * from d", "delete", {"create", "delete"}),
        ("explain delete from t", "explain", {"explain"}),
        ("explain (analyze false) delete from t", "explain", {"explain"}),
        ("set search_path = x", "set", {"set"}),
    ],
)  # fmt: skip
def test_effects(backend: str, query: str, operation: str, effects: set[str]) -> None:
    check(query, backend, operation=operation, effects=effects)


def test_effects_always_hold_the_operation(backend: str) -> None:
    for query in ("select 1", "vacuum t", "begin", "do $$ begin end $$", "garbage here"):
        s = one(query, backend)
        assert s.operation in s.effects


def test_a_write_in_a_create_keeps_the_ddl_class(backend: str) -> None:
    s = check(
        "create table b as with d as (delete from a returning *) select * from d",
        backend,
        statement_class="ddl",
        tables_written={"public.a", "public.b"},
        has_where=False,
        objects={"table"},
    )
    assert s.operation == "delete" or s.opaque


@pytest.mark.parametrize(
    ("query", "has_where", "trivial"),
    [
        ("create table b as with d as (delete from a returning *) select * from d", False, False),
        ("create table b as with d as (delete from a where id = 1 returning *) select * from d",
         True, False),
        ("create table b as with d as (delete from a where true returning *) select * from d",
         True, True),
        ("with d as (update a set x = 1 where $1 returning *) select * into b from d", True, True),
        ("with d as (update a set x = 1 where id = $1 returning *) select * into b from d",
         True, False),
    ],
)  # fmt: skip
def test_hidden_writes_carry_their_where(
    backend: str, query: str, has_where: bool, trivial: bool
) -> None:
    check(query, backend, has_where=has_where, where_is_trivial=trivial)


# -- MERGE: each action is an effect, ON is its WHERE ------------------------------------------


@pytest.mark.parametrize(
    ("query", "effects", "trivial"),
    [
        ("merge into t using s on t.id = s.id when matched then delete", {"merge", "delete"},
         False),
        ("merge into t using s on true when matched then delete", {"merge", "delete"}, True),
        ("MERGE INTO t USING s ON 1 = 1 WHEN MATCHED THEN UPDATE SET x = 1", {"merge", "update"},
         True),
        ("merge into t a using s b on b.id = b.id when matched then delete", {"merge", "delete"},
         True),
        ("merge into t a using s b on a.id = a.id when matched then update set x = 1",
         {"merge", "update"}, True),
        ("merge into t using s on $1 when matched then delete", {"merge", "delete"}, True),
        ("merge into t using s on exists (select 1) when matched then delete",
         {"merge", "delete"}, True),
        ("merge into t a using s b on a.id = b.id when matched and b.gone then delete",
         {"merge", "delete"}, False),
        ("merge into t a using s b on true when matched and a.id = 5 then delete",
         {"merge", "delete"}, False),
        ("merge into t a using s b on true when matched and b.flag then delete",
         {"merge", "delete"}, True),
        ("merge into t using s on 1 = 1 when not matched then insert values (1)",
         {"merge", "insert"}, False),
        ("merge into t a using s b on a.id = b.id when matched then update set x = b.x "
         "when not matched then insert values (b.id, b.x)", {"merge", "update", "insert"}, False),
        ("merge into t a using s b on a.id = b.id when matched then do nothing", {"merge"}, False),
        ("merge into t a using (select 1 as id) b on false when not matched by source then delete",
         {"merge", "delete"}, True),
        ("merge into t a using (select 1 as id) b on a.id = b.id "
         "when not matched by source then delete", {"merge", "delete"}, False),
    ],
)  # fmt: skip
def test_merge(backend: str, query: str, effects: set[str], trivial: bool) -> None:
    check(
        query,
        backend,
        operation="merge",
        effects=effects,
        has_where=True,
        where_is_trivial=trivial,
        tables_written={"public.t"},
    )


# -- EXPLAIN ANALYZE runs what it explains -----------------------------------------------------


@pytest.mark.parametrize(
    ("query", "analyzes"),
    [
        ("explain analyze select 1", True),
        ("EXPLAIN ANALYSE VERBOSE SELECT 1", True),
        ("explain (analyze) select 1", True),
        ("explain (analyze true, buffers) select 1", True),
        ("explain (analyze on) select 1", True),
        ("explain (format json, analyze 1) select 1", True),
        ("explain select 1", False),
        ("explain verbose select 1", False),
        ("explain (analyze false) select 1", False),
        ("explain (analyze off) select 1", False),
        ("explain (analyze 0) select 1", False),
        ("select 1", False),
    ],
)
def test_explain_analyze(backend: str, query: str, analyzes: bool) -> None:
    check(query, backend, exact=True, explain_analyze=analyzes)


def test_plain_explain_locks_and_runs_nothing(backend: str) -> None:
    check("explain select * from t for update", backend, exact=True, row_locks=set())
    s = check(
        "explain analyze select * from t for update", backend, exact=True, row_locks={"update"}
    )
    assert s.operation == "select"


# -- prepared statements -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "name", "operation", "effects"),
    [
        ("prepare q as delete from orders", "q", "delete", {"delete"}),
        ("PREPARE Q AS DELETE FROM orders", "q", "delete", {"delete"}),
        ('prepare "Q" (int) as update orders set x = 1 where id = $1', "Q", "update", {"update"}),
        ("prepare q (int, text) as insert into notes values ($1, $2)", "q", "insert", {"insert"}),
        ("prepare q as with d as (delete from t returning 1) select * from d", "q", "delete",
         {"delete"}),
        ("prepare q as merge into t using s on true when matched then delete", "q", "merge",
         {"merge", "delete"}),
        ("prepare q as select * from t", "q", "select", {"select"}),
        ("prepare _pg3_0 as select 1", "_pg3_0", "select", {"select"}),
    ],
)  # fmt: skip
def test_prepare_is_its_statement(
    backend: str, query: str, name: str, operation: str, effects: set[str]
) -> None:
    check(query, backend, exact=True, prepares=name, operation=operation, effects=effects)


def test_prepare_keeps_the_statements_where_facts(backend: str) -> None:
    check("prepare q as delete from t", backend, exact=True, has_where=False)
    check("prepare q as delete from t where true", backend, exact=True, where_is_trivial=True)
    check("prepare q as select * from t for update", backend, exact=True, row_locks={"update"})


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("execute q", "q"),
        ("EXECUTE Q (1, 'a')", "q"),
        ('execute "Q"(1)', "Q"),
        ("execute _pg3_0", "_pg3_0"),
    ],
)
def test_execute_names_and_stays_opaque(backend: str, query: str, name: str) -> None:
    check(query, backend, exact=True, executes=name, opaque=True, statement_class="opaque")


def test_execute_inside_other_statements(backend: str) -> None:
    check("explain analyze execute q", backend, executes="q", opaque=True, explain_analyze=True)
    check("create table t as execute q", backend, executes="q", opaque=True)
    check("explain execute q", backend, exact=True, executes=None, operation="explain")


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("deallocate q", "q"),
        ("DEALLOCATE PREPARE Q", "q"),
        ('deallocate "Q"', "Q"),
        ("deallocate all", "*"),
        ("deallocate prepare all", "*"),
        ("deallocate _pg3_1", "_pg3_1"),
        ("discard all", "*"),
    ],
)
def test_deallocate(backend: str, query: str, name: str) -> None:
    check(query, backend, exact=True, deallocates=name)


def test_other_discards_deallocate_nothing(backend: str) -> None:
    for query in ("discard plans", "discard temp", "discard sequences"):
        check(query, backend, exact=True, deallocates=None, settings=set())


# -- row locks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "locks", "waits"),
    [
        ("select * from t for update", {"update"}, set()),
        ("select * from t where id = 1 for update nowait", {"update"}, {"nowait"}),
        ("SELECT * FROM t FOR NO KEY UPDATE SKIP LOCKED", {"no key update"}, {"skip locked"}),
        ("select * from t for share of t", {"share"}, set()),
        ("select * from t for key share", {"key share"}, set()),
        ("select * from t a join u b on a.id = b.id for update of a for share of b skip locked",
         {"update", "share"}, {"skip locked"}),
        ("select * from t order by id limit 10 for update skip locked", {"update"},
         {"skip locked"}),
        ("select * from (select * from t for update) s", {"update"}, set()),
        ("with x as (select * from t for share) select * from x", {"share"}, set()),
        ("select * from t where id in (select id from u for key share)", {"key share"}, set()),
        ("declare c cursor for select * from t for update", {"update"}, set()),
        ("copy (select * from t for update) to stdout", {"update"}, set()),
        ("select * from t", set(), set()),
        ("select * from t for read only", set(), set()),
    ],
)  # fmt: skip
def test_row_locks(backend: str, query: str, locks: set[str], waits: set[str]) -> None:
    check(query, backend, exact=True, row_locks=locks, lock_waits=waits)


def test_locked_names_are_not_tables(backend: str) -> None:
    check(
        "select * from orders o for update of o",
        backend,
        exact=True,
        tables_read={"public.orders"},
    )


# -- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "settings"),
    [
        ("set search_path = evil, public", {"search_path"}),
        ("SET LOCAL search_path TO x", {"search_path"}),
        ("set session search_path = x", {"search_path"}),
        ('SET "Search_Path" = x', {"search_path"}),
        ("set search_path to default", {"search_path"}),
        ("reset search_path", {"search_path"}),
        ("reset all", {"*"}),
        ("set role admin", {"role"}),
        ("set session role admin", {"role"}),
        ("set local role none", {"role"}),
        ("reset role", {"role"}),
        ("set session authorization bob", {"session_authorization"}),
        ("reset session authorization", {"session_authorization"}),
        ("set names 'LATIN1'", {"client_encoding"}),
        ("set client_encoding = 'SJIS'", {"client_encoding"}),
        ("set time zone 'UTC'", {"timezone"}),
        ("reset time zone", {"timezone"}),
        ("set schema 'x'", {"search_path"}),
        ("set xml option document", {"xmloption"}),
        ("set myapp.tenant = 5", {"myapp.tenant"}),
        ("set session_replication_role = replica", {"session_replication_role"}),
        ("set transform_null_equals = on", {"transform_null_equals"}),
        ("set standard_conforming_strings = off", {"standard_conforming_strings"}),
        ("set transaction isolation level serializable, read only",
         {"transaction_isolation", "transaction_read_only"}),
        ("set session characteristics as transaction isolation level repeatable read",
         {"default_transaction_isolation"}),
        ("set constraints all deferred", set()),
        ("select set_config('search_path', 'evil', false)", {"search_path"}),
        ("select pg_catalog.SET_CONFIG('ROLE', 'x', true)", {"role"}),
        ("select set_config('search_path'::text, 'x', false)", {"search_path"}),
        ("select set_config(cast('search_path' as text), 'x', false)", {"search_path"}),
        ("select set_config(name, 'x', false) from wanted", {"*"}),
        ("select set_config('a' || 'b', 'x', false)", {"*"}),
        ("select set_config(setting_name => 'search_path', new_value => 'x', is_local => false)",
         {"*"}),
        ("select * from t where set_config('role', 'x', false) is not null", {"role"}),
        ("with x as (select set_config('transform_null_equals', 'on', false)) select 1 from x",
         {"transform_null_equals"}),
        ("update t set note = set_config('search_path', 'x', true) where id = 1",
         {"search_path"}),
        ("update pg_settings set setting = 'off' where name = 'standard_conforming_strings'",
         {"*"}),
        ("update pg_catalog.pg_settings set setting = 'x' where name = 'search_path'", {"*"}),
        ("alter system set search_path = x", {"search_path"}),
        ("alter system reset all", {"*"}),
        ("alter role me set search_path = x", {"search_path"}),
        ("alter role me in database d reset search_path", {"search_path"}),
        ("alter database d set session_replication_role = replica", {"session_replication_role"}),
        ("alter database d set tablespace fast", set()),
        ("alter function f(int) set search_path = x", {"search_path"}),
        ("alter function f() security definer set search_path to x reset work_mem",
         {"search_path", "work_mem"}),
        ("alter procedure p() set search_path from current", {"search_path"}),
        ("create function f() returns int language sql set search_path = x as 'select 1'",
         {"search_path"}),
        ("discard all", {"*"}),
        ("select 1", set()),
    ],
)  # fmt: skip
def test_settings(backend: str, query: str, settings: set[str]) -> None:
    check(query, backend, settings=settings)


def test_settings_read_exactly_by_both_backends(backend: str) -> None:
    for query, settings in [
        ("set search_path = x", {"search_path"}),
        ("set role admin", {"role"}),
        ("reset all", {"*"}),
        ("select set_config('search_path', 'x', false)", {"search_path"}),
        ("select set_config(n, 'x', false) from t", {"*"}),
    ]:
        check(query, backend, exact=True, settings=settings)


# -- DDL: objects and ALTER actions ------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "operation", "objects"),
    [
        ("create function f() returns int language sql as 'select 1'", "create", {"function"}),
        ("CREATE OR REPLACE FUNCTION f() RETURNS trigger LANGUAGE plpgsql "
         "AS $$ BEGIN DELETE FROM orders; RETURN NULL; END $$", "create", {"function"}),
        ("create or replace procedure p() language sql as $$ delete from orders $$", "create",
         {"procedure"}),
        ("create function f() returns int language sql begin atomic select 1; end", "create",
         {"function"}),
        ("create or replace rule r as on insert to t do also delete from orders", "create",
         {"rule"}),
        ("create trigger tr before delete on orders for each row execute procedure f()",
         "create", {"trigger"}),
        ("create or replace trigger tr after insert on t for each statement "
         "execute function f()", "create", {"trigger"}),
        ("create constraint trigger tr after insert on t deferrable for each row "
         "execute function f()", "create", {"trigger"}),
        ("create event trigger et on ddl_command_start execute function f()", "create",
         {"event_trigger"}),
        ("create operator === (leftarg = int, rightarg = int, function = f)", "create",
         {"operator"}),
        ("create aggregate a(int) (sfunc = int4pl, stype = int)", "create", {"aggregate"}),
        ("create cast (int as text) with function f(int) as implicit", "create", {"cast"}),
        ("create table t (id int)", "create", {"table"}),
        ("create view v as select 1", "create", {"view"}),
        ("create materialized view mv as select 1", "create", {"materialized_view"}),
        ("create index i on t (c)", "create", {"index"}),
        ("create sequence s", "create", {"sequence"}),
        ("create schema s", "create", {"schema"}),
        ("create type ty as enum ('a')", "create", {"type"}),
        ("create type ty as range (subtype = int)", "create", {"type"}),
        ("create domain d as int", "create", {"domain"}),
        ("create extension e", "create", {"extension"}),
        ("create role r", "create", {"role"}),
        ("create policy p on t using (true)", "create", {"policy"}),
        ("alter function f() owner to bob", "alter", {"function"}),
        ("alter function f() security definer", "alter", {"function"}),
        ("alter routine r() rename to s", "alter", {"routine"}),
        ("alter trigger tr on t rename to tr2", "alter", {"trigger"}),
        ("alter table t add column c int", "alter", {"table"}),
        ("alter index i rename to j", "alter", {"index"}),
        ("alter type ty add value 'x'", "alter", {"type"}),
        ("drop function f()", "drop", {"function"}),
        ("drop procedure p", "drop", {"procedure"}),
        ("drop trigger tr on t", "drop", {"trigger"}),
        ("drop rule r on t", "drop", {"rule"}),
        ("drop table a, b", "drop", {"table"}),
        ("drop view v", "drop", {"view"}),
        ("drop role r", "drop", {"role"}),
        ("truncate t", "truncate", set()),
        ("select 1", "select", set()),
    ],
)  # fmt: skip
def test_objects(backend: str, query: str, operation: str, objects: set[str]) -> None:
    check(query, backend, operation=operation, objects=objects)


@pytest.mark.parametrize(
    ("query", "actions"),
    [
        ("alter table t drop column c", {"drop_column"}),
        ("alter table t drop c cascade", {"drop_column"}),
        ("alter table if exists only t drop column if exists c", {"drop_column"}),
        ("alter table t alter column c type bigint", {"alter_type"}),
        ("alter table t alter c set data type bigint using c::bigint",
         {"alter_type", "alter_type_using"}),
        ("ALTER TABLE t ALTER COLUMN c TYPE int USING 0", {"alter_type", "alter_type_using"}),
        ("alter table t rename to u", {"rename"}),
        ("alter table t rename column a to b", {"rename"}),
        ("alter table t rename a to b", {"rename"}),
        ("alter table t rename constraint a to b", {"rename"}),
        ("alter table t add column c int, drop column d", {"add_column", "drop_column"}),
        ("alter table t add c int default 0 not null", {"add_column"}),
        ("alter table t add constraint c check (x > 0)", {"add_constraint"}),
        ("alter table t add primary key (id)", {"add_constraint"}),
        ("alter table t drop constraint c", {"drop_constraint"}),
        ("alter table t validate constraint c", {"validate_constraint"}),
        ("alter table t alter column c set default 1", {"set_default"}),
        ("alter table t alter column c drop default", {"drop_default"}),
        ("alter table t alter column c set not null", {"set_not_null"}),
        ("alter table t alter column c drop not null", {"drop_not_null"}),
        ("alter table t disable trigger all", {"disable_trigger"}),
        ("alter table t enable always trigger tr", {"enable_trigger"}),
        ("alter table t disable row level security", {"disable_row_security"}),
        ("alter table t no force row level security", {"no_force_row_security"}),
        ("alter table t owner to bob", {"owner"}),
        ("alter table t set schema s", {"set_schema"}),
        ("alter table t set tablespace x", {"set_tablespace"}),
        ("alter table t set (fillfactor = 50)", {"set_options"}),
        ("alter table t reset (fillfactor)", {"reset_options"}),
        ("alter table t set logged", {"set_logged"}),
        ("alter table t attach partition p for values in (1)", {"attach_partition"}),
        ("alter table t detach partition p", {"detach_partition"}),
        ("alter table t inherit p", {"inherit"}),
        ("alter table t no inherit p", {"no_inherit"}),
        ("alter table t replica identity full", {"replica_identity"}),
        ("alter table t alter column c set statistics 100", {"set_statistics"}),
        ("alter table t alter column c add generated always as identity", {"add_identity"}),
        ("alter table t alter column c restart with 10", {"set_identity"}),
        ("alter table t alter column c drop identity if exists", {"drop_identity"}),
        ("alter view v rename column a to b", {"rename"}),
        ("alter index i set tablespace t", {"set_tablespace"}),
        ("alter sequence s rename to r", {"rename"}),
        ("alter sequence s restart with 1", set()),
        ("alter type ty rename value 'a' to 'b'", set()),
        ("alter type ty rename attribute a to b", {"rename"}),
        ("alter function f() rename to g", {"rename"}),
        ("create table t (id int)", set()),
    ],
)  # fmt: skip
def test_alter_actions(backend: str, query: str, actions: set[str]) -> None:
    check(query, backend, alter_actions=actions)


def test_ddl_read_exactly_by_both_backends(backend: str) -> None:
    for query, objects, actions in [
        ("alter table t drop column c", {"table"}, {"drop_column"}),
        ("alter table t alter column c type int using c::int", {"table"},
         {"alter_type", "alter_type_using"}),
        ("alter table t rename column a to b", {"table"}, {"rename"}),
        ("create or replace function f() returns int language sql as 'select 1'", {"function"},
         set()),
        ("create trigger tr after insert on t for each row execute function f()", {"trigger"},
         set()),
        ("drop procedure p", {"procedure"}, set()),
    ]:  # fmt: skip
        check(query, backend, exact=True, objects=objects, alter_actions=actions)


# -- vocabularies ------------------------------------------------------------------------------


def test_vocabularies_hold_every_value_reported() -> None:
    assert {"update", "no key update", "share", "key share"} == ROW_LOCKS
    assert {"nowait", "skip locked"} == LOCK_WAITS
    assert {"function", "procedure", "rule", "trigger", "operator", "table"} <= OBJECT_KINDS
    assert {"drop_column", "alter_type", "alter_type_using", "rename", "other"} <= ALTER_ACTIONS


@pytest.mark.parametrize(
    "name",
    [
        "lo_unlink", "lo_import", "lo_export", "lo_put", "lo_truncate", "pg_terminate_backend",
        "pg_cancel_backend", "pg_stat_reset", "pg_stat_reset_shared", "set_config",
        "pg_replication_origin_drop", "pg_logical_slot_get_changes", "pg_read_file", "dblink_exec",
    ],
)  # fmt: skip
def test_dangerous_functions_are_seen(backend: str, name: str) -> None:
    s = check(f"select {name}(1)", backend, exact=True, functions={name})
    assert s.statement_class == "function"
    assert name in DANGEROUS_FUNCTIONS or name.startswith(("dblink", "pg_stat_reset", "pg_repl"))
    check(f"select pg_catalog.{name.upper()}(1) from t", backend, exact=True, functions={name})
