"""WHERE clauses that may keep every row beyond their form: arithmetic and functions of
the same column, subqueries and arrays that give the row's own value, semi-joins of a
table with itself, conditions total in practice, upserts that rewrite their own table.
Both backends: sqlparse gives the same answer or turns opaque. Also the facts behind
the newer prod approvals: COPY endpoints, ALTER actions, stats/sequence functions.
"""

from __future__ import annotations

import time

import pytest

from governed_db.sql import COPY_ENDPOINTS, analyze, analyze_uncached, available_backends
from governed_db.sql.scope import NONE, TARGET
from governed_db.sql.where import trivial
from governed_db.sql.where_eval import Text, Tid, value
from governed_db.sql.where_rows import Budget, holds_for_every_row

BACKENDS = available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def wide(query: str, backend: str) -> bool | None:
    """where_is_trivial of a one-statement query; None if the backend made it opaque."""
    s = analyze(query, backend=backend).statements[0]
    if s.opaque:
        assert backend != "pglast", query
        return None
    return s.where_is_trivial


TAUTOLOGIES = [
    # arithmetic and functions of the same column
    "delete from orders where id = id + 0",
    "delete from orders where id * 1 = id",
    "delete from orders where id = greatest(id, id)",
    "delete from orders where id > id - 1",
    "delete from orders where id != id + 1",
    "delete from orders where id <> id * 1 + 1",
    "delete from orders where case when id > 0 then true else true end",
    "delete from orders where case when id > 5 then id > 5 else id <= 5 end",
    "delete from orders where id - id = 0",
    "delete from orders where id * 0 = 0",
    "delete from orders where id = -(-id)",
    "delete from orders where id = id + 0.0",
    "delete from orders where id = coalesce(id, 0)",
    "delete from orders where id >= least(id, 0)",
    "delete from orders where id between id - 1 and id + 1",
    "delete from orders where not (id < id)",
    "delete from orders where abs(id) = abs(-id)",
    "delete from orders where sign(id) in (-1, 0, 1)",
    "delete from orders where nullif(id, id) is null",
    "delete from orders where lower(name) = lower(lower(name))",
    "delete from orders where upper(name) = upper(upper(name))",
    "delete from orders where length(name) >= 0",
    "delete from orders where id::text = id::text || ''",
    "delete from orders where pg_catalog.abs(id) >= 0",
    "delete from orders where id = id + %s",  # with 0
    "delete from orders where id * $1 = id",  # with 1
    "delete from orders where id < 10 or id > 5",
    "delete from orders where not (id > 5 and id < 3)",
    # subqueries and arrays that give the row's own value
    "delete from orders where id = (select id)",
    "delete from orders where (select id) = id",
    "delete from orders where id in (select id)",
    "delete from orders where id = (select orders.id)",
    "delete from orders where id = (select id where true)",
    "delete from orders where id = ((select id))",
    "delete from orders where exists (select 1 where orders.id = orders.id)",
    "delete from orders where id = any(array[id])",
    "delete from orders where id = some(array[id, 0])",
    "delete from orders where id <= all(array[id])",
    "delete from orders where id = all(select id)",
    # a semi-join of the table with itself
    "delete from orders where id in (select id from orders)",
    "delete from orders where id in (select distinct id from orders)",
    "delete from orders where id in (select id from orders limit 1000)",
    "delete from orders o where o.id in (select id from public.orders)",
    "delete from orders where orders.id in (select o2.id from orders o2)",
    "delete from orders where exists (select 1 from orders o2 where o2.id = orders.id)",
    "delete from orders where exists (select * from orders o2 where o2.ctid = orders.ctid)",
    "delete from orders where exists "
    "(select max(o2.id) from orders o2 where o2.id = orders.id + 1)",  # one row, always
    "delete from orders using (select id from orders) s where s.id = orders.id",
    "delete from orders using (select id as k from orders) s where s.k = orders.id",
    "update orders o set paid = true from (select * from orders) s where s.id = o.id",
    "with s as (select * from orders) delete from orders using s where s.id = orders.id",
    # data-dependent, total in practice
    "delete from orders where (id > 0) is not false",
    "delete from orders where coalesce(id, 0) >= 0",
    "delete from orders where abs(id) >= 0",
    "delete from orders where id is not null",
    "delete from orders where not (id is null)",
    "delete from orders where status is not null",
    "delete from orders where orders is not null",
    "delete from orders where row(id) is not null",
    "delete from orders where (orders.*) is not null",
    "delete from orders where tableoid > 0",
    "delete from orders where tableoid = 'orders'::regclass",
    "delete from orders where ctid > '(0,0)'",
    "delete from orders where ctid >= '(0,1)'",
    "delete from orders where ctid <> '(0,0)'",
    "delete from orders where xmin <> 0",
    "delete from orders where id is null or id > 0",
    "delete from orders where coalesce(status, 'x') like '%'",
    "update orders set status = 'x' where coalesce(id, 0) >= 0",
]

MEANINGFUL = [
    "delete from orders where id = 5",
    "delete from orders where id > 100",
    "delete from orders where id > 0",  # the row limit is its backstop
    "delete from orders where id >= 0",
    "delete from orders where status = 'x'",
    "delete from orders where created_at < now() - interval '1 day'",
    "delete from orders where id in (1, 2, 3)",
    "delete from orders where id in (select order_id from refunds)",
    "delete from orders where id = %s",
    "delete from orders where id > %s and id <= %s",
    "delete from orders where id <> %s",
    "delete from orders where id = any(array[1, 2, 3])",
    "delete from orders where id % 2 = 0",
    "delete from orders where id % 1 = 0",  # numeric ids have fractions
    "delete from orders where abs(balance) < 0.01",
    "delete from orders where greatest(a, b) > 10",
    "delete from orders where length(body) > 10000",
    "delete from orders where lower(email) like '%@example.com'",
    "delete from orders where email <> lower(email)",
    "delete from orders where name <> trim(name)",
    "delete from orders where status is null",
    "delete from orders where coalesce(paid, false) = false",
    "delete from orders where paid is not true",
    "delete from orders where paid is not false",
    "delete from orders where (id > 0) is not true",
    "delete from orders where coalesce(qty, 0) > 0",
    "delete from orders where nullif(code, '') is null",
    "delete from orders where status is distinct from 'done'",
    "delete from orders where ctid = '(0,1)'",
    "delete from orders where ctid < '(100,1)'",
    "delete from orders where (%(s)s is null or status = %(s)s) and id = %(id)s",
    "delete from orders where id in (select id from orders where status = 'x')",
    "delete from orders where id in "
    "(select id from orders where created_at < now() - interval '1 day' limit 1000)",
    "delete from orders where exists (select 1 from orders c where c.parent_id = orders.id)",
    "delete from orders where not exists (select 1 from orders o2 where o2.id = orders.id)",
    "delete from orders where id = (select max(id) from orders)",
    "delete from orders o using orders o2 where o.email = o2.email and o.id < o2.id",
    "delete from orders using (select id from orders where status = 'x') s where s.id = orders.id",
    "delete from orders using (select id + 1 as k from orders) s where s.k = orders.id",
    "with s as (select * from orders where x = 1) delete from orders using s "
    "where s.id = orders.id",
    "delete from orders using (select order_id from refunds) r where r.order_id = orders.id",
]


@pytest.mark.parametrize("query", TAUTOLOGIES)
def test_tautologies_may_keep_every_row(backend: str, query: str) -> None:
    assert wide(query, backend) in (True, None), query


@pytest.mark.parametrize("query", MEANINGFUL)
def test_ordinary_predicates_stay_meaningful(backend: str, query: str) -> None:
    assert wide(query, backend) in (False, None), query


def test_sqlparse_reads_most_of_them_exactly() -> None:
    readable = [q for q in TAUTOLOGIES if "array[" not in q and "all(select" not in q]
    opaque = [q for q in readable if wide(q, "sqlparse") is None]
    # USING subqueries/CTEs over the target itself are pglast's alone.
    assert all("using" in q or "from (select" in q for q in opaque), opaque


@pytest.mark.parametrize(
    "query",
    [
        "merge into orders t using (select * from orders) s on s.id = t.id "
        "when matched then delete",
        "merge into orders t using customers s on t.id is not null when matched then delete",
        "merge into orders t using customers s on coalesce(t.id, 0) >= 0 "
        "when matched then update set paid = true",
        "merge into orders t using orders s on t.ctid = s.ctid when matched then delete",
    ],
)
def test_merge_on_conditions(backend: str, query: str) -> None:
    assert wide(query, backend) in (True, None), query


def test_merge_over_a_filtered_copy_of_itself_is_meaningful() -> None:
    if "pglast" not in BACKENDS:
        pytest.skip("pglast not installed")
    q = (
        "merge into orders t using (select * from orders where total > 100) s on s.id = t.id "
        "when matched then delete"
    )
    assert wide(q, "pglast") is False


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("insert into orders select id, status from orders "
         "on conflict (id) do update set status = excluded.status", True),
        ("insert into orders select * from orders where true "
         "on conflict (id) do update set status = 'x'", True),
        ("insert into orders select * from (select * from orders) s "
         "on conflict (id) do update set status = 'x'", True),
        ("with s as (select * from orders) insert into orders select * from s "
         "on conflict (id) do update set status = excluded.status", True),
        ("insert into orders as o select o2.* from orders o2 join x on x.id = o2.id "
         "on conflict (id) do update set status = 'x'", True),
        ("insert into orders select * from orders where id = 5 "
         "on conflict (id) do update set status = 'x'", False),
        ("insert into orders select * from orders "
         "on conflict (id) do update set status = 'x' where orders.id = 5", False),
        ("insert into orders select * from staging "
         "on conflict (id) do update set status = excluded.status", False),
        ("insert into orders values (1, 'x') on conflict (id) do update set status = 'x'", False),
        ("insert into orders select * from orders on conflict do nothing", False),
    ],
)  # fmt: skip
def test_upserts_that_read_their_own_table(backend: str, query: str, expected: bool) -> None:
    s = analyze(query, backend=backend).statements[0]
    if s.opaque:
        assert backend != "pglast"
        return
    assert s.has_where is ("do update" in query)
    assert s.where_is_trivial is expected, query


def test_plain_selects_are_judged_by_value_only(backend: str) -> None:
    s = analyze("select * from orders where id = id + 0", backend=backend).statements[0]
    assert s.where_is_trivial is False or s.opaque
    s = analyze("select * from orders where coalesce(true, false)", backend=backend).statements[0]
    assert s.where_is_trivial is True or s.opaque


# -- the evaluator and the test rows on their own ----------------------------------------------


def col(name: str, dep: int = TARGET) -> tuple[str, str, int]:
    return ("term", f"col:t:public.orders.{name}", dep)


def test_known_functions_evaluate() -> None:
    assert value(("func", "abs", (("const", -3),))) == 3
    assert value(("func", "coalesce", (("const", None), ("const", 2)))) == 2
    assert value(("func", "nullif", (("const", 1), ("const", 1)))) is None
    assert value(("func", "greatest", (("const", 1), ("const", None), ("const", 3)))) == 3
    assert value(("func", "least", (("const", 1), ("const", 3)))) == 1
    assert value(("func", "lower", (("const", "AbC"),))) == "abc"
    assert value(("func", "length", (("const", None),))) is None
    assert value(("func", "mod", (("const", -7), ("const", 3)))) == -1  # PostgreSQL's sign
    assert value(("func", "abs", (("const", "x"),))) is not None  # not a number: unknown


def test_typed_test_values_do_not_coerce() -> None:
    env = {"a": Text("1"), "b": 1, "t": Tid(0, 1)}
    assert value(("cmp", "=", ("term", "a", 3), ("term", "b", 3)), env) is not True
    assert value(("cmp", "=", ("term", "a", 3), ("const", "1")), env) is True
    assert value(("cmp", ">", ("term", "t", 3), ("const", "(0,0)")), env) is True
    assert value(("cmp", "=", ("const", 1), ("const", True))) is not True  # integer = boolean


def test_test_rows_refute_and_fail_to_refute() -> None:
    def holds(e: tuple[object, ...], *, widened: bool = False) -> bool:
        return holds_for_every_row(e, True, TARGET, Budget(), widened=widened)

    assert holds(("cmp", "=", col("id"), ("arith", "+", col("id"), ("const", 0))))
    assert not holds(("cmp", ">", col("id"), ("const", 100)))
    assert not holds(("cmp", "<", col("id"), ("const", 10**30)))  # its neighbour refutes it
    assert holds(("isnull", col("id"), True))
    assert not holds(("isnull", col("id"), False))
    coalesced = ("cmp", ">=", ("func", "coalesce", (col("id"), ("const", 0))), ("const", 0))
    assert not holds(coalesced)
    assert holds(coalesced, widened=True)
    assert not holds(("cmp", ">", col("id"), ("const", 0)), widened=True)  # a NULL id fails
    free = ("term", "p", NONE)
    assert holds(("cmp", "=", col("id"), ("arith", "+", col("id"), free)))  # p = 0
    assert not holds(("cmp", "=", col("id"), free))


def test_a_spent_budget_shows_nothing() -> None:
    e = ("cmp", "=", col("id"), ("arith", "+", col("id"), ("const", 0)))
    assert holds_for_every_row(e, True, TARGET, Budget(0)) is False
    assert trivial(e) is True


def test_ordinary_writes_stay_cheap() -> None:
    if "pglast" not in BACKENDS:
        pytest.skip("pglast not installed")
    queries = [
        "update accounts set balance = balance - %s where id = %s and balance >= %s",
        "delete from orders where created_at < now() - interval '1 day' and status = 'done'",
        "delete from orders where (a = 1 or b = 2) and (c > 3 or d < 4)",
        "delete from orders where email <> lower(email) or coalesce(status, '') = ''",
    ]
    start = time.perf_counter()
    for _ in range(20):
        for q in queries:
            analyze_uncached(q, "pglast")
    per_statement = (time.perf_counter() - start) / (20 * len(queries))
    assert per_statement < 0.01  # ~0.2-0.6 ms on a laptop; generous for CI


# -- facts behind the newer prod approvals ------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "endpoint"),
    [
        ("copy orders to '/tmp/orders.csv'", "file"),
        ("COPY orders FROM '/tmp/orders.csv' WITH (FORMAT csv)", "file"),
        ("copy (select * from customers) to '/tmp/c'", "file"),
        ("copy orders (id, total) from '/tmp/o.csv' csv header", "file"),
        ("copy orders to stdout", "client"),
        ("copy orders from stdin", "client"),
        ("copy (select 1) to stdout with (format csv)", "client"),
        ("copy orders to program 'gzip > /tmp/o.gz'", "program"),
        ("copy orders from program 'cat /etc/passwd'", "program"),
        ("select * from orders", None),
    ],
)
def test_copy_endpoint(backend: str, query: str, endpoint: str | None) -> None:
    s = analyze(query, backend=backend).statements[0]
    if s.opaque:
        assert backend != "pglast"
        return
    assert s.copy_endpoint == endpoint
    assert endpoint is None or endpoint in COPY_ENDPOINTS


@pytest.mark.parametrize(
    ("query", "actions"),
    [
        ("alter table orders drop constraint c", {"drop_constraint"}),
        ("alter table orders disable trigger all", {"disable_trigger"}),
        ("alter table orders disable trigger user", {"disable_trigger"}),
        ("alter table orders disable trigger audit", {"disable_trigger"}),
        ("alter table orders enable replica trigger audit", {"enable_trigger", "disable_trigger"}),
        ("alter table orders enable always trigger audit", {"enable_trigger"}),
        ("alter table orders enable replica rule r", {"enable_rule", "disable_rule"}),
        ("alter table orders alter column total type int", {"alter_type"}),
        ("alter table orders alter total set data type numeric(10, 0)", {"alter_type"}),
        ("alter table orders enable row level security", {"enable_row_security"}),
        ("alter table orders disable row level security", {"disable_row_security"}),
        ("alter table orders force row level security", {"force_row_security"}),
        ("alter table orders no force row level security", {"no_force_row_security"}),
        ("alter table orders set unlogged", {"set_unlogged"}),
        ("alter table orders detach partition orders_2020", {"detach_partition"}),
        ("alter table orders detach partition orders_2020 concurrently", {"detach_partition"}),
    ],
)  # fmt: skip
def test_alter_actions_of_the_destructive_rule(backend: str, query: str, actions: set[str]) -> None:
    s = analyze(query, backend=backend).statements[0]
    if s.opaque:
        assert backend != "pglast"
        return
    assert s.alter_actions == actions
    assert s.objects == {"table"}


@pytest.mark.parametrize(
    "name",
    ["setval", "pg_clear_relation_stats", "pg_clear_attribute_stats",
     "pg_restore_relation_stats", "pg_restore_attribute_stats", "lo_from_bytea"],
)  # fmt: skip
def test_functions_that_change_data_or_stats_are_dangerous(backend: str, name: str) -> None:
    s = analyze(f"select {name}('x', 1)", backend=backend).statements[0]
    assert s.functions == {name}
    assert s.statement_class == "function"


def test_nextval_is_ordinary(backend: str) -> None:
    s = analyze("select nextval('orders_id_seq')", backend=backend).statements[0]
    assert s.functions == frozenset()
    assert s.statement_class == "read"
