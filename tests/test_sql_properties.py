"""Property tests: analyze never raises on text, and what it cannot read is opaque."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governed_db.sql import OPERATIONS, STATEMENT_CLASSES, analyze, available_backends

SQLISH = st.lists(
    st.sampled_from(
        [
            "select",
            "delete",
            "from",
            "where",
            "t",
            "(",
            ")",
            ";",
            "'",
            '"',
            "$$",
            "$a$",
            "--",
            "/*",
            "*/",
            "1",
            "=",
            "or",
            "and",
            "with",
            "as",
            "%s",
            "%(x)s",
            "$1",
            "\n",
            " ",
            "insert",
            "into",
            "values",
            "update",
            "set",
            "explain",
            "analyze",
            "copy",
            "program",
            "e'\\'",
            "::",
            "not",
            "true",
            "in",
            "begin",
            "atomic",
            "end",
            "case",
            "do",
            "pg_sleep",
        ]
    ),
    max_size=30,
).map(" ".join)

settings_ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings_
@given(st.one_of(st.text(max_size=200), SQLISH))
def test_never_raises_and_stays_in_vocabulary(text: str) -> None:
    for backend in available_backends():
        facts = analyze(text, backend=backend)
        assert facts.statement_count >= 1
        for s in facts.statements:
            assert s.operation in OPERATIONS
            assert s.statement_class in STATEMENT_CLASSES
            assert s.opaque == (s.statement_class == "opaque")
            if s.operation == "unknown":
                assert s.opaque


@settings_
@given(st.text(alphabet="!#&)]}|~^`\\?@", min_size=1, max_size=40))
def test_garbage_is_opaque(text: str) -> None:
    for backend in available_backends():
        assert analyze(text, backend=backend).opaque


@settings_
@given(SQLISH)
def test_sqlparse_never_less_risky_than_pglast(text: str) -> None:
    """On SQL PostgreSQL accepts, sqlparse is exactly right or opaque.

    sqlparse does not validate syntax: text the server would reject (pglast:
    ``unknown``) may be read as what it looks like, which is harmless because
    nothing of it runs.
    """
    if "pglast" not in available_backends():
        return
    exact = analyze(text, backend="pglast")
    portable = analyze(text, backend="sqlparse")
    assert exact.statement_count == portable.statement_count
    for a, b in zip(exact.statements, portable.statements, strict=True):
        if not b.opaque and a.operation != "unknown":
            assert a == b, text


# -- statement shapes the newer facts come from: both backends agree or sqlparse is opaque ----

NAME = st.sampled_from(["t", "orders", "s.t", '"Q"', "x$1", "_pg3_0", "search_path", "role"])
VALUE = st.sampled_from(["1", "'x'", "default", "x, y", "on", "'UTC'", "none", "$1", "%s"])
CONDITION = st.sampled_from(
    ["true", "id = 1", "id = id", "$1", "exists (select 1)", "t.id = s.id", "s.id = s.id"]
)
SET_FORMS = ["set", "set local", "set session", "reset", "alter system set"]
ROLE_FORMS = ["set role", "set session authorization", "set time zone"]
CONFIG_NAMES = ["'search_path'", "'ROLE'", "n", "'a' || 'b'", "'x'::text"]
PREPARED = ["prepare", "execute", "deallocate", "deallocate prepare"]
PREPARED_TAILS = ["", " as delete from t", " as select * from t for update", "(1)"]
LOCKED = ["select * from t", "select * from t a join u b on a.id = b.id"]
LOCKS = ["for update", "for no key update", "for share", "for key share", ""]
MERGES = ["merge into t using s on", "merge into t a using s b on"]
MERGE_ACTIONS = [
    "when matched then delete",
    "when matched and s.x then update set y = 1",
    "when not matched then insert values (1)",
    "when not matched by source then delete",
    "when matched then do nothing",
]
INSERTS = ["insert into t values (1)", "insert into t select * from s"]
CONFLICTS = [
    "on conflict do nothing",
    "on conflict (id) do update set x = 1",
    "on conflict (id) do update set x = 1 where t.y = 2",
    "",
]
WRAPPERS = ["explain", "explain analyze", "explain (analyze)", "explain (analyze off)"]
WRAPPERS += ["create table n as", "select 1 into n from d;", ""]
ALTERED = ["alter table t", "alter table if exists only t", "alter view t"]
ALTER_ACTIONS = [
    "drop column c", "drop c", "alter column c type int", "alter c type int using c::int",
    "rename to u", "rename column a to b", "rename constraint a to b", "add column c int",
    "disable trigger all", "owner to bob", "set schema s", "alter column c set default 1",
    "add constraint k check (c > 0)", "set (fillfactor = 50)", "drop column c, add d int",
]  # fmt: skip
DDL_VERBS = ["create", "create or replace", "drop", "alter"]
DDL_OBJECTS = [
    "function f() returns int language sql as 'select 1'", "procedure p()",
    "trigger tr after insert on t for each row execute function f()",
    "rule r as on insert to t do instead nothing", "operator === (leftarg = int)",
    "table t (id int)", "view v as select 1", "index i on t (c)", "sequence s",
    "function f() rename to g", "function f() set search_path = x",
]  # fmt: skip


def _words(*choices: list[str] | st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    parts = [c if isinstance(c, st.SearchStrategy) else st.sampled_from(c) for c in choices]
    return st.tuples(*parts).map(" ".join)


def _cte(p: tuple[str, str, str]) -> str:
    wrapper, write, where = p
    return f"{wrapper} with d as ({write}{where} returning *) select * from d"


SHAPES = st.one_of(
    _words(SET_FORMS, NAME, ["=", "to", ""], VALUE),
    _words(ROLE_FORMS, VALUE),
    _words(
        ["select set_config(", "select pg_catalog.set_config("],
        CONFIG_NAMES,
        [", 'v', false) from t"],
    ),
    _words(PREPARED, NAME, PREPARED_TAILS),
    _words(LOCKED, LOCKS, ["", "of t", "of a, b"], ["", "nowait", "skip locked"]),
    _words(MERGES, CONDITION, MERGE_ACTIONS),
    _words(INSERTS, CONFLICTS),
    st.tuples(
        st.sampled_from(WRAPPERS),
        st.sampled_from(["delete from t", "update t set x = 1"]),
        st.sampled_from(["", " where id = 1", " where true", " where $1"]),
    ).map(_cte),
    _words(ALTERED, ALTER_ACTIONS),
    _words(DDL_VERBS, DDL_OBJECTS),
)


@settings_
@given(SHAPES)
def test_newer_facts_agree_or_sqlparse_is_opaque(text: str) -> None:
    if "pglast" not in available_backends():
        return
    exact = analyze(text, backend="pglast")
    portable = analyze(text, backend="sqlparse")
    assert exact.statement_count == portable.statement_count
    for a, b in zip(exact.statements, portable.statements, strict=True):
        if not b.opaque and a.operation != "unknown":
            assert a == b, text
