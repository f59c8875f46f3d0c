"""Unit tests for governed_db.sql.analyze, one group per requirement, on both backends."""

from __future__ import annotations

import threading

import pytest

from governed_db import sql
from governed_db.sql import (
    CLASS_RANK,
    DANGEROUS_FUNCTIONS,
    OPERATION_CLASS,
    OPERATIONS,
    STATEMENT_CLASSES,
    analyze,
    available_backends,
    cache_clear,
    cache_info,
)
from governed_db.sql.facts import Facts, StatementFacts
from governed_db.sql.normalize import split_statements, substitute_placeholders, tokenize

BACKENDS = available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def one(query: str, backend: str) -> StatementFacts:
    facts = analyze(query, backend=backend)
    assert facts.statement_count == 1
    return facts.statements[0]


# -- API ---------------------------------------------------------------------------------------


def test_backends_prefer_pglast() -> None:
    assert "sqlparse" in BACKENDS
    assert BACKENDS[0] == "pglast"
    assert analyze("select 1").backend == "pglast"


def test_forced_backend(backend: str) -> None:
    assert analyze("select 1", backend=backend).backend == backend


def test_unknown_backend_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown or unavailable"):
        analyze("select 1", backend="mysql")


@pytest.mark.parametrize("value", [None, b"select 1", 42, ["select 1"]])
def test_non_str_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError):
        analyze(value)  # type: ignore[arg-type]


def test_vocabulary_is_closed() -> None:
    assert set(OPERATION_CLASS) == OPERATIONS
    assert set(OPERATION_CLASS.values()) <= STATEMENT_CLASSES == set(CLASS_RANK)
    for op in (
        "select",
        "insert",
        "update",
        "delete",
        "merge",
        "truncate",
        "drop",
        "alter",
        "create",
        "grant",
        "revoke",
        "copy_from",
        "copy_to",
        "copy_program",
        "call",
        "do",
        "set",
        "vacuum",
        "explain",
        "prepare",
        "execute",
        "transaction",
        "show",
        "listen",
        "notify",
        "lock",
        "refresh",
        "comment",
        "analyze",
        "reindex",
        "cluster",
        "unknown",
        "empty",
    ):
        assert op in OPERATIONS, op


def test_facts_are_frozen_and_whole_string(backend: str) -> None:
    q = "select 1; select 2"
    facts = analyze(q, backend=backend)
    assert isinstance(facts, Facts)
    assert facts.text == q
    assert [s.text for s in facts.statements] == ["select 1", "select 2"]
    with pytest.raises(AttributeError):
        facts.statements[0].operation = "delete"  # type: ignore[misc]


# -- operations and classes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "operation", "klass"),
    [
        ("select * from t", "select", "read"),
        ("insert into t values (1)", "insert", "write"),
        ("update t set a = 1 where id = 2", "update", "write"),
        ("delete from t where id = 2", "delete", "write"),
        ("truncate t", "truncate", "write"),
        ("drop table t", "drop", "ddl"),
        ("alter table t add column c int", "alter", "ddl"),
        ("create table t (id int)", "create", "ddl"),
        ("grant select on t to bob", "grant", "role"),
        ("revoke select on t from bob", "revoke", "role"),
        ("create role bob", "create", "role"),
        ("set role bob", "set", "role"),
        ("copy t from stdin", "copy_from", "write"),
        ("copy t to stdout", "copy_to", "read"),
        ("copy t to program 'gzip > /tmp/x'", "copy_program", "function"),
        ("call p()", "call", "opaque"),
        ("do $$ begin end $$", "do", "opaque"),
        ("execute p", "execute", "opaque"),
        ("set work_mem = '64MB'", "set", "misc"),
        ("vacuum t", "vacuum", "misc"),
        ("begin", "transaction", "misc"),
        ("show all", "show", "misc"),
        ("lock table t", "lock", "misc"),
        ("refresh materialized view mv", "refresh", "write"),
        ("checkpoint", "checkpoint", "misc"),
    ],
)
def test_operation_and_class(backend: str, query: str, operation: str, klass: str) -> None:
    s = one(query, backend)
    assert (s.operation, s.statement_class) == (operation, klass)


def test_primary_is_the_riskiest(backend: str) -> None:
    facts = analyze("select 1; delete from t where id = 1; select 2", backend=backend)
    assert facts.primary.operation == "delete"
    assert facts.tables_written == {"public.t"}


# -- tables ------------------------------------------------------------------------------------


def test_tables_qualified_and_aliases_resolved(backend: str) -> None:
    s = one("select * from orders o join sales.items i on i.order_id = o.id", backend)
    assert s.tables_read == {"public.orders", "sales.items"}


def test_cte_names_are_not_tables(backend: str) -> None:
    s = one("with recent as (select * from orders) select * from recent r", backend)
    assert s.tables_read == {"public.orders"}


def test_quoted_names_keep_case(backend: str) -> None:
    assert one('select * from "Sales"."Orders"', backend).tables_read == {"Sales.Orders"}


def test_insert_select_reads_and_writes(backend: str) -> None:
    s = one("insert into archive select * from orders where old", backend)
    assert (s.tables_read, s.tables_written) == ({"public.orders"}, {"public.archive"})


# -- effect, not first keyword -----------------------------------------------------------------


def test_cte_delete_is_a_delete(backend: str) -> None:
    s = one("with d as (delete from t returning *) select * from d", backend)
    assert (s.operation, s.statement_class, s.tables_written) == ("delete", "write", {"public.t"})
    assert not s.has_where


def test_explain_analyze_runs_the_statement(backend: str) -> None:
    s = one("explain analyze update t set a = 1", backend)
    assert (s.operation, s.tables_written) == ("update", {"public.t"})


def test_plain_explain_only_reads(backend: str) -> None:
    s = one("explain update t set a = 1", backend)
    assert (s.operation, s.statement_class) == ("explain", "read")
    assert (s.tables_read, s.tables_written) == ({"public.t"}, frozenset())


@pytest.mark.parametrize("query", ["create table b as select * from a", "select * into b from a"])
def test_create_table_as_and_select_into(backend: str, query: str) -> None:
    s = one(query, backend)
    assert (s.operation, s.statement_class) == ("create", "ddl")
    assert (s.tables_read, s.tables_written) == ({"public.a"}, {"public.b"})


@pytest.mark.parametrize("direction", ["to program 'x'", "from program 'x'"])
def test_copy_program(backend: str, direction: str) -> None:
    assert one(f"copy t {direction}", backend).operation == "copy_program"


# -- WHERE and LIMIT ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cond",
    [
        "true",
        "1=1",
        "'a'='a'",
        "id = 5 OR 1=1",
        "1",
        "NOT false",
        "id = id",
        "2 > 1",
        "(1 = 1)",
        "name LIKE '%'",
        "1 IN (1, 2)",
        "NULL IS NULL",
        "1 BETWEEN 0 AND 2",
        "'t'::boolean",
        "1 + 1 = 2",
        "'a' || 'b' = 'ab'",
        "CAST(1 AS int) = 1",
        "true IS TRUE",
        "NOT (1 = 2)",
        "1 = 1 AND 2 = 2",
        "-1 < 0",
        "1 <> 2",
        "'1' = 1",
    ],
)
def test_trivial_where(backend: str, cond: str) -> None:
    s = one(f"delete from t where {cond}", backend)
    assert (s.has_where, s.where_is_trivial) == (True, True), cond


@pytest.mark.parametrize(
    "cond",
    [
        "id = 5",
        "1 = 1 AND id = 5",
        "1 <> 1",
        "id = 5 OR false",
        "name LIKE 'a%'",
        "id = %s",
        "id IN (SELECT id FROM u)",
        "NOT true",
        "id = other_id",
        "NULL = NULL",
    ],
)
def test_meaningful_where(backend: str, cond: str) -> None:
    s = one(f"delete from t where {cond}", backend)
    assert (s.has_where, s.where_is_trivial) == (True, False), cond


def test_missing_where(backend: str) -> None:
    s = one("update t set a = 1", backend)
    assert (s.has_where, s.where_is_trivial) == (False, False)


def test_where_of_a_subquery_does_not_count(backend: str) -> None:
    s = one("delete from t using (select id from u where id > 1) x", backend)
    assert not s.has_where


@pytest.mark.parametrize(
    ("query", "limited"),
    [
        ("select * from t limit 5", True),
        ("select * from t fetch first 5 rows only", True),
        ("select * from t limit all", False),
        ("select * from t offset 5", False),
        ("select * from (select * from t limit 5) s", False),
    ],
)
def test_has_limit(backend: str, query: str, limited: bool) -> None:
    assert one(query, backend).has_limit is limited


# -- dangerous functions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("select pg_sleep(1)", {"pg_sleep"}),
        ("select pg_catalog.pg_read_file('x')", {"pg_read_file"}),
        ("select * from t where id in (select pg_cancel_backend(1))", {"pg_cancel_backend"}),
        ("with x as (select lo_export(1, '/tmp/x')) select * from x", {"lo_export"}),
        ("select dblink_connect('c'), dblink('c', 'select 1')", {"dblink_connect", "dblink"}),
        ("update t set a = set_config('x', 'y', false) where id = 1", {"set_config"}),
        ("select lower(name), count(*) from t group by 1", set()),
        ("select 'pg_sleep(1)'", set()),
    ],
)
def test_dangerous_functions(backend: str, query: str, found: set[str]) -> None:
    s = one(query, backend)
    assert s.functions == found
    assert found <= DANGEROUS_FUNCTIONS | {"dblink", "dblink_connect"}
    if found and s.operation == "select":
        assert s.statement_class == "function"


# -- opaque ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "do $$ begin drop table t; end $$",
        "call p(1)",
        "execute p(1)",
        "selec 1",
        "delete from",
        "select 'unterminated",
        "load 'x.so'",
        "\x01\x02",
        "select 1 \x01",
    ],
)
def test_opaque(backend: str, query: str) -> None:
    s = one(query, backend)
    assert (s.opaque, s.statement_class) == (True, "opaque")


def test_unparseable_is_unknown(backend: str) -> None:
    assert one("this is not sql", backend).operation == "unknown"


def test_empty_input(backend: str) -> None:
    facts = analyze("  -- nothing\n ; ", backend=backend)
    assert [s.operation for s in facts.statements] == ["empty"]
    assert facts.primary.statement_class == "misc"


def test_text_ends_at_nul_like_the_servers_copy(backend: str) -> None:
    # libpq sends a C string and the protocol's query string ends at NUL: the server
    # never sees what follows, so neither do we.
    assert [s.operation for s in analyze("\x00 drop table t", backend=backend).statements] == [
        "empty"
    ]
    s = one("delete from t \x00 where id = 1", backend)
    assert (s.operation, s.has_where) == ("delete", False)


def test_backend_crash_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(_sql: str) -> None:
        raise RuntimeError("bug")

    monkeypatch.setitem(sql._BACKENDS, "sqlparse", boom)
    s = sql.analyze_uncached("select 1", "sqlparse").statements[0]
    assert (s.opaque, s.operation) == (True, "unknown")


# -- normalization and fingerprints ------------------------------------------------------------


def test_normalized_removes_literals(backend: str) -> None:
    s = one("SELECT * FROM t WHERE a = 'x' AND b IN (1, 2.5) AND c = $1 AND d = %s", backend)
    assert s.normalized == "select * from t where a = ? and b in (?, ?) and c = ? and d = ?"


def test_fingerprint_ignores_literals_case_and_comments(backend: str) -> None:
    a = analyze("select * from t where id = 1", backend=backend)
    b = analyze("SELECT *  FROM t /* hi */ WHERE id = 42 -- x", backend=backend)
    c = analyze("select * from u where id = 1", backend=backend)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert len(a.fingerprint) == 64


def test_fingerprints_agree_across_backends() -> None:
    q = "update t set a = 'x' where id = 7; select now()"
    facts = [analyze(q, backend=b) for b in BACKENDS]
    assert len({f.fingerprint for f in facts}) == 1
    assert len({tuple(s.fingerprint for s in f.statements) for f in facts}) == 1


def test_split_keeps_quoted_semicolons() -> None:
    q = "select ';' -- ;\n; select $x$ ; $x$; select \"a;b\" from t /* ; /* ; */ */"
    assert [t for t, _ in split_statements(q)] == [
        "select ';' -- ;",
        "select $x$ ; $x$",
        'select "a;b" from t /* ; /* ; */ */',
    ]


def test_split_keeps_begin_atomic_bodies() -> None:
    q = (
        "create function f() returns int language sql begin atomic select 1; "
        "select case when true then 2 end; end; select 3"
    )
    assert len(split_statements(q)) == 2


def test_placeholders_rewritten_for_the_parser() -> None:
    q = "select %s, %(a)s, %(a)s, '%s', a %% b"
    assert substitute_placeholders(q, tokenize(q)) == "select $1, $2, $2, '%s', a %% b"


# -- cache -------------------------------------------------------------------------------------


def test_repeated_statement_is_not_parsed_again(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = sql._BACKENDS[backend]

    def counting(text: str) -> object:
        calls.append(text)
        return real(text)

    monkeypatch.setitem(sql._BACKENDS, backend, counting)
    cache_clear()
    q = "select * from cache_probe where id = 1"
    first = analyze(q, backend=backend)
    assert analyze(q, backend=backend) is first
    assert len(calls) == 1
    info = cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 1, 1)
    cache_clear()
    assert cache_info().currsize == 0


def test_cache_is_bounded() -> None:
    assert cache_info().maxsize == sql.CACHE_SIZE


def test_thread_safe() -> None:
    cache_clear()
    queries = [f"select * from t{i % 7} where id = {i}" for i in range(200)]
    results: dict[int, list[str]] = {}

    def work(n: int) -> None:
        results[n] = [analyze(q).statements[0].fingerprint for q in queries]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({tuple(v) for v in results.values()}) == 1
