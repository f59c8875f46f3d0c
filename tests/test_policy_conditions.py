"""The conditions over what statements do: effects, row locks, EXPLAIN ANALYZE,
settings, DDL objects and ALTER actions; any-member vs every-member matching;
their validation errors (FILE:LINE, "did you mean") and placeholders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from governed_db.errors import PolicyError
from governed_db.policy import Context, decide, load_policy
from governed_db.policy.model import Conditions
from governed_db.sql import analyze
from governed_db.sql.facts import Facts, StatementFacts


def policy(*rules: dict[str, Any]) -> Any:
    doc = {
        "version": 1,
        "environments": {"default": "dev", "prod": {}, "dev": None},
        "guardrails": list(rules),
    }
    return load_policy(doc)


def rule(action: str = "block", **when: Any) -> dict[str, Any]:
    return {"id": "r", "action": action, "when": when}


def verdict(p: Any, sql: str, env: str = "dev") -> tuple[str, str | None]:
    d = decide(p, analyze(sql), Context(env))
    return d.action, d.rule_id


# -- operation(s) match any effect -------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "matches"),
    [
        ("delete from t where id = 1", True),
        ("merge into t using s on t.id = s.id when matched then delete", True),
        ("with d as (delete from t where id = 1 returning *) select * from d", True),
        ("create table n as with d as (delete from t returning *) select * from d", True),
        ("explain analyze delete from t where id = 1", True),
        ("prepare q as delete from t where id = 1", True),
        ("copy (delete from t where id = 1 returning *) to stdout", True),
        ("explain delete from t", False),
        ("merge into t using s on t.id = s.id when matched then update set x = 1", False),
        ("insert into t values (1) on conflict (id) do update set x = 1", False),
        ("select * from t", False),
    ],
)
def test_a_refusing_operation_rule_matches_any_effect(sql: str, matches: bool) -> None:
    p = policy(rule(operation="delete"))
    assert verdict(p, sql) == (("block", "r") if matches else ("allow", None))


def test_upserts_are_updates_that_have_a_where() -> None:
    p = policy(
        {"id": "update-needs-where", "action": "block",
         "when": {"operation": "update", "has_where": False}},
        {"id": "any-update", "action": "require_approval", "when": {"operation": "update"}},
    )  # fmt: skip
    upsert = "insert into t values (1) on conflict (id) do update set x = excluded.x"
    assert verdict(p, upsert) == ("require_approval", "any-update")
    assert verdict(p, "update t set x = 1") == ("block", "update-needs-where")
    assert verdict(p, "insert into t values (1) on conflict do nothing") == ("allow", None)


def test_a_permissive_rule_needs_every_effect_listed() -> None:
    p = policy(
        {"id": "inserts-ok", "action": "allow", "when": {"operation": "insert"}},
        {"id": "no-update", "action": "block", "when": {"operation": "update"}},
    )
    assert verdict(p, "insert into t values (1)") == ("allow", "inserts-ok")
    upsert = "insert into t values (1) on conflict (id) do update set x = 1"
    assert verdict(p, upsert) == ("block", "no-update")
    both = policy(
        {"id": "ok", "action": "allow", "when": {"operations": ["insert", "update"]}},
        {"id": "no-update", "action": "block", "when": {"operation": "update"}},
    )
    assert verdict(both, upsert) == ("allow", "ok")


def test_a_permissive_rule_needs_every_table_it_names() -> None:
    p = policy(
        {"id": "scratch", "action": "allow", "when": {"tables_written": "scratch.*"}},
        {"id": "no-where", "action": "block", "when": {"operation": "delete", "has_where": False}},
    )
    assert verdict(p, "delete from scratch.tmp") == ("allow", "scratch")
    sneaky = (
        "with d as (delete from public.orders returning *) insert into scratch.tmp select * from d"
    )
    assert verdict(p, sneaky) == ("block", "no-where")
    assert verdict(p, "select 1") == ("allow", None)  # nothing written: no match either
    observe = policy(
        {"id": "watch", "action": "observe", "when": {"functions": "pg_sleep"}},
        {"id": "files", "action": "block", "when": {"functions": "pg_read_file"}},
    )
    assert verdict(observe, "select pg_sleep(1)") == ("observe", "watch")
    assert verdict(observe, "select pg_sleep(1), pg_read_file('x')") == ("block", "files")


def test_statement_facts_built_by_hand_match_their_operation() -> None:
    bare = StatementFacts("delete", "write")  # no effects given: the operation stands in
    when = Conditions(operations=frozenset({"delete"}))
    assert when.static_match(bare, 1, "dev", None, frozenset())
    assert Conditions(operations=frozenset({"delete"}), every=True).static_match(
        bare, 1, "dev", None, frozenset()
    )


# -- row locks and EXPLAIN ANALYZE: a read-only policy can refuse them -------------------------

READ_ONLY = policy(
    {"id": "writes", "action": "block", "when": {"classes": ["write", "ddl", "role"]}},
    {"id": "locks", "action": "block", "when": {"locks_rows": True}},
    {"id": "analyze", "action": "block", "when": {"explain_analyze": True}},
)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select * from t", ("allow", None)),
        ("select * from t for update", ("block", "locks")),
        ("select * from t for no key update nowait", ("block", "locks")),
        ("select * from t for share skip locked", ("block", "locks")),
        ("select * from t for key share of t", ("block", "locks")),
        ("select * from (select * from t for update) s", ("block", "locks")),
        ("with x as (select * from t for share) select * from x", ("block", "locks")),
        ("declare c cursor for select * from t for update", ("block", "locks")),
        ("explain analyze select * from t", ("block", "analyze")),
        ("explain (analyze, buffers) select count(*) from t", ("block", "analyze")),
        ("explain select * from t", ("allow", None)),
        ("explain select * from t for update", ("allow", None)),
        ("explain (analyze false) select 1", ("allow", None)),
        ("explain analyze delete from t where id = 1", ("block", "writes")),
    ],
)
def test_read_only_policy(sql: str, expected: tuple[str, str | None]) -> None:
    assert verdict(READ_ONLY, sql) == expected


def test_flags_match_false_too() -> None:
    p = policy(rule(locks_rows=False, explain_analyze=False))
    assert verdict(p, "select 1") == ("block", "r")
    assert verdict(p, "select 1 from t for update") == ("allow", None)


# -- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "matches"),
    [
        ("set search_path = x", True),
        ("SET LOCAL SEARCH_PATH TO x", True),
        ("select set_config('search_path', 'x', false)", True),
        ("select set_config(n, 'x', false) from t", True),  # unknown name: every pattern
        ("reset all", True),
        ("set role admin", True),
        ("set session_replication_role = replica", True),
        ("alter role me set search_path = x", True),
        ("set work_mem = '64MB'", False),
        ("set statement_timeout = 0", False),
        ("select 1", False),
    ],
)
def test_settings_condition(sql: str, matches: bool) -> None:
    p = policy(rule(settings=["search_path", "role", "session_*"]))
    assert verdict(p, sql) == (("block", "r") if matches else ("allow", None))


def test_settings_in_a_permissive_rule() -> None:
    p = policy(
        {"id": "timeouts-ok", "action": "allow", "when": {"settings": "*_timeout"}},
        {"id": "no-set", "action": "block", "when": {"operation": "set"}},
    )
    assert verdict(p, "set statement_timeout = 0") == ("allow", "timeouts-ok")
    assert verdict(p, "set search_path = x") == ("block", "no-set")
    assert verdict(p, "reset all") == ("block", "no-set")  # "*" is not just timeouts
    anything = policy({"id": "any-setting", "action": "allow", "when": {"settings": "*"}})
    assert verdict(anything, "reset all") == ("allow", "any-setting")


# -- objects and alter actions -----------------------------------------------------------------


def test_objects_and_alter_actions() -> None:
    p = policy(
        {"id": "code", "action": "require_approval",
         "when": {"operations": ["create", "alter"], "objects": ["function", "trigger"]}},
        {"id": "destructive", "action": "require_approval",
         "when": {"objects": "table", "alter_actions": ["drop_column", "rename"]}},
    )  # fmt: skip
    assert (
        verdict(p, "create or replace function f() returns int language sql as 'select 1'")[1]
        == "code"
    )
    assert verdict(p, "create trigger t after insert on x execute function f()")[1] == "code"
    assert verdict(p, "drop function f()") == ("allow", None)
    assert verdict(p, "alter table t drop column c")[1] == "destructive"
    assert verdict(p, "alter table t add column c int, drop column d")[1] == "destructive"
    assert verdict(p, "alter table t rename to u")[1] == "destructive"
    assert verdict(p, "alter table t add column c int") == ("allow", None)
    assert verdict(p, "alter index i rename to j") == ("allow", None)


def test_permissive_alter_actions_need_all_of_them() -> None:
    p = policy(
        {"id": "additive", "action": "allow", "when": {"alter_actions": ["add_column"]}},
        {"id": "ddl", "action": "block", "when": {"class": "ddl"}},
    )
    assert verdict(p, "alter table t add column c int") == ("allow", "additive")
    assert verdict(p, "alter table t add column c int, drop column d") == ("block", "ddl")


# -- placeholders ------------------------------------------------------------------------------


def test_new_placeholders() -> None:
    p = policy(
        {
            "id": "r",
            "action": "block",
            "when": {"classes": ["write", "ddl", "misc"]},
            "message": "{effects} | {settings} | {objects} | {alter_actions}",
        }
    )
    reason = decide(p, analyze("alter table t drop column c"), Context("dev")).reason
    assert reason == "alter | (none) | table | drop_column"
    upsert = analyze("insert into t values (1) on conflict (id) do update set x = 1")
    assert decide(p, upsert, Context("dev")).reason == "insert, update | (none) | (none) | (none)"
    setting = decide(p, analyze("set search_path = x"), Context("dev")).reason
    assert setting == "set | search_path | (none) | (none)"
    by_hand = Facts((StatementFacts("delete", "write"),), "test")
    assert decide(p, by_hand, Context("dev")).reason.startswith("delete |")


def test_describe_lists_the_new_conditions() -> None:
    p = policy(rule(settings="search_path", objects="table", alter_actions="rename",
                    locks_rows=True, explain_analyze=False))  # fmt: skip
    described = p.rules[0].when.describe()
    for part in ("settings=search_path", "objects=table", "alter_actions=rename",
                 "locks_rows=true", "explain_analyze=false"):  # fmt: skip
        assert part in described
    assert not any(part.startswith("every") for part in described)


# -- validation --------------------------------------------------------------------------------

HEAD = "version: 1\nguardrails:\n  - id: a\n    action: block\n"


@pytest.mark.parametrize(
    ("when", "key", "fragment"),
    [
        ("{objects: [fuction]}", "guardrails[0].when.objects[0]",
         "unknown object kind 'fuction' (did you mean 'function'?)"),
        ("{objects: tabel}", "guardrails[0].when.objects", "did you mean 'table'?"),
        ("{alter_actions: [drop_colum]}", "guardrails[0].when.alter_actions[0]",
         "unknown alter action 'drop_colum' (did you mean 'drop_column'?)"),
        ("{alter_actions: [renaming]}", "guardrails[0].when.alter_actions[0]",
         "every alter action is listed in docs/sql.md"),
        ("{object: table}", "guardrails[0].when.object", "did you mean 'objects'?"),
        ("{setting: role}", "guardrails[0].when.setting", "did you mean 'settings'?"),
        ("{locks_rows: yes please}", "guardrails[0].when.locks_rows", "expected a boolean"),
        ("{explain_analyze: 1}", "guardrails[0].when.explain_analyze", "expected a boolean"),
        ("{settings: ['search path']}", "guardrails[0].when.settings[0]", "bad glob"),
        ("{settings: ['[ab']}", "guardrails[0].when.settings[0]", "unbalanced"),
        ("{settings: []}", "guardrails[0].when.settings", "at least one pattern"),
        ("{objects: []}", "guardrails[0].when.objects", "at least one value"),
        ("{lock_rows: true}", "guardrails[0].when.lock_rows", "did you mean 'locks_rows'?"),
        ("{copy_endpoint: files}", "guardrails[0].when.copy_endpoint",
         "unknown copy endpoint 'files' (did you mean 'file'?)"),
        ("{copy_endpoint: [stdin]}", "guardrails[0].when.copy_endpoint[0]",
         "expected one of: client, file, program"),
        ("{copy_endpoints: file}", "guardrails[0].when.copy_endpoints",
         "did you mean 'copy_endpoint'?"),
    ],
)  # fmt: skip
def test_bad_conditions_are_located(tmp_path: Path, when: str, key: str, fragment: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(HEAD + f"    when: {when}\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path, environ={})
    assert fragment in str(info.value)
    assert info.value.key == key
    assert str(info.value).startswith(f"{path}:5: ")


def test_unknown_placeholder_names_the_new_ones(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(HEAD + "    message: '{setting}'\n")
    with pytest.raises(PolicyError, match=r"\{settings\}") as info:
        load_policy(path, environ={})
    assert info.value.line == 5


# -- copy_endpoint -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "verdict_"),
    [
        ("copy t to '/tmp/t.csv'", ("block", "r")),
        ("copy t from '/tmp/t.csv'", ("block", "r")),
        ("copy (select 1) to '/tmp/one'", ("block", "r")),
        ("copy t to stdout", ("allow", None)),
        ("copy t from stdin", ("allow", None)),
        ("copy t to program 'cat'", ("allow", None)),
        ("select 1", ("allow", None)),
    ],
)
def test_copy_endpoint_condition(sql: str, verdict_: tuple[str, str | None]) -> None:
    assert verdict(policy(rule(copy_endpoint="file")), sql) == verdict_


def test_copy_endpoint_in_a_permissive_rule() -> None:
    p = policy(
        {"id": "stdio", "action": "allow", "when": {"copy_endpoint": ["client"]}},
        {"id": "copies", "action": "block", "when": {"operations": ["copy_to", "copy_from"]}},
    )
    assert verdict(p, "copy t to stdout") == ("allow", "stdio")
    assert verdict(p, "copy t to '/tmp/t'") == ("block", "copies")
    assert verdict(p, "select 1") == ("allow", None)  # no COPY: the allow rule does not hold


def test_copy_endpoint_placeholder_and_description() -> None:
    p = policy(
        {
            "id": "r",
            "action": "block",
            "when": {"copy_endpoint": ["file", "program"]},
            "message": "{operation} via {copy_endpoint}",
        }
    )
    assert decide(p, analyze("copy t to '/x'"), Context("dev")).reason == "COPY TO via file"
    assert "copy_endpoint=file,program" in p.rules[0].when.describe()
