"""Could a WHERE keep every row? Row-independent conditions, resolved the way PostgreSQL
resolves column names, on both backends (sqlparse: the same answer or opaque).

A condition that reads no column of the table being changed keeps every row or
none, so it is trivial unless its value is known to be false; so is one that is
true for every row by its form (``x = x``). ``WHERE id > 0`` is not: only the
data makes it wide, and the row-limit backstop is there for that.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governed_db.sql import analyze, available_backends
from governed_db.sql.where import MAYBE, NONE, TARGET, trivial

BACKENDS = available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def where_of(query: str, backend: str) -> tuple[bool, bool] | None:
    """(has_where, where_is_trivial) of a one-statement query; None if opaque."""
    facts = analyze(query, backend=backend)
    assert facts.statement_count == 1
    s = facts.statements[0]
    if s.opaque:
        assert backend != "pglast", query
        return None
    return s.has_where, s.where_is_trivial


def assert_trivial(query: str, backend: str, expected: bool) -> None:
    found = where_of(query, backend)
    if found is not None:
        assert found == (True, expected), query


TRIVIAL_DELETES = [
    # row-independent: reads no column of orders
    "delete from orders where exists (select 1)",
    "delete from orders where exists (select 1 from customers)",
    "DELETE FROM orders WHERE EXISTS(SELECT * FROM orders)",  # the inner orders is its own scan
    "delete from orders where exists (select 1 from orders o2 where o2.id = 5)",
    "delete from orders where (select true)",
    "delete from orders where (select count(*) from customers) > 0",
    "delete from orders where coalesce(true, false)",
    "delete from orders where coalesce(null, true)",
    "delete from orders where nullif(1, 2) = 1",
    "delete from orders where now() is not null",
    "delete from orders where current_date is not null",
    "delete from orders where current_user = current_user",
    "delete from orders where random() < 0.5",
    "delete from orders where extract(year from now()) > 2000",
    "delete from orders where length('x') = 1",
    # parameters: possibly true
    "delete from orders where %s",
    "delete from orders where %(really)s",
    "delete from orders where $1",
    "delete from orders where $1::boolean",
    "delete from orders where %s = %s",
    "delete from orders where not %s",
    "delete from orders where id = 1 or %s",
    "delete from orders where coalesce(%s, true)",
    # PostgreSQL's boolean spellings
    "delete from orders where 't'",
    "delete from orders where 'tru'",
    "delete from orders where 'TRUE'",
    "delete from orders where ' yes '",
    "delete from orders where 'Y'",
    "delete from orders where 'on'",
    "delete from orders where '1'",
    "delete from orders where 'on'::bool",
    "delete from orders where 'yes' = true",
    # true for every row by form
    "delete from orders where id = id",
    "delete from orders where ID = id",
    'delete from orders where "id" = id',
    "delete from orders where orders.id = id",
    "delete from orders where public.orders.id = orders.id",
    "delete from orders o where o.id = o.id",
    "delete from orders as o where o.id = id",
    "delete from orders where lower(name) = lower(orders.name)",
    "delete from orders where id::text = cast(id as text)",
    "delete from orders where id is not distinct from id",
    "delete from orders where id between id and id",
    "delete from orders where id in (1, id)",
    "delete from orders where name like '%'",
    "delete from orders where name::text ilike '%%'",
    "delete from orders where ctid is not null",
    "delete from orders o where o.xmin is not null",
    "delete from orders where tableoid is not null",
    "delete from orders where id is null or id is not null",
    "delete from orders where id > 5 or id <= 5",
    "delete from orders where paid or not paid",
    "delete from orders where not (id <> id)",
    "delete from orders where id = 5 or 1 = 1",
    "delete from orders where (id = 5) or true",
    "delete from orders where id = id and 1 = 1",
    "delete from orders where not (id = 1 and $1)",
    "delete from orders where case when id = 1 then true else $1 end",
    "delete from orders where case when $1 then true end",
    # joins: a condition on the other table only
    "delete from orders using customers c where c.vip",
    "delete from orders using customers where customers.vip",
    "delete from orders o using orders o2 where o2.id = 1",
    "update orders set x = 1 from customers c where c.id = 5",
    "update orders o set x = 1 from (select 1 as id) s where s.id = 1",
    # an identity self-join: every row is joined to itself
    "delete from orders using orders o2 where orders.id = o2.id",
    "delete from orders o using public.orders o2 where o.id is not distinct from o2.id",
    "update orders o set x = 1 from orders o2 where o2.id = o.id",
    # unqualified columns that may belong to the other table: fail closed
    "delete from orders using customers where vip",
    "update orders o set x = 1 from customers c where c.id = customer_id",
    "delete from orders where exists (select 1 from customers c where c.id = customer_id)",
]

MEANINGFUL_DELETES = [
    "delete from orders where id = 5",
    "delete from orders where id = %s",
    "delete from orders where id = $1",
    "delete from orders where id = any(%s)",
    "delete from orders where id in (1, 2)",
    "delete from orders where id > 0",  # wide only by data: the backstop's job
    "delete from orders where id = 5 and %s",
    "delete from orders where $1 and id = 5",
    "delete from orders where name like 'a%'",
    "delete from orders where created < now() - interval '1 day'",
    "delete from orders where extract(year from created) < 2020",
    "delete from orders where lower(name) = 'bob'",
    "delete from orders where id in (select order_id from refunds)",
    "delete from orders where exists (select 1 from customers c where c.id = orders.customer_id)",
    "delete from orders o where exists (select 1 from customers c where c.id = o.customer_id)",
    "delete from orders o using customers c where o.customer_id = c.id and c.vip",
    "update orders o set x = 1 from customers c where o.customer_id = c.id",
    "delete from orders where current_user = owner",
    "delete from orders where case when id = 1 then true else false end",
    "delete from orders where 1 <> 1",  # SQLAlchemy's empty IN: keeps nothing
    "delete from orders where false",
    "delete from orders where null",
    "delete from orders where 'f'",
    "delete from orders where 'off'::boolean",
    "delete from orders where id > 5 or id < 5",
    "delete from orders o using orders p where o.parent_id = p.id and p.archived",
    "with orders as (select 1 as id) delete from public.orders o using orders c where o.id = c.id",
]


@pytest.mark.parametrize("query", TRIVIAL_DELETES)
def test_trivial(backend: str, query: str) -> None:
    assert_trivial(query, backend, True)


@pytest.mark.parametrize("query", MEANINGFUL_DELETES)
def test_meaningful(backend: str, query: str) -> None:
    assert_trivial(query, backend, False)


@pytest.mark.parametrize(
    "query",
    [
        "update orders set paid = true where exists (select 1)",
        "update orders set paid = true where id = id",
        "update orders o set paid = true from customers c where c.vip",
        "with d as (delete from orders where $1 returning *) select * from d",
        "explain analyze delete from orders where 'tru'",
        "prepare q as delete from orders where now() is not null",
    ],
)
def test_every_kind_of_write_is_judged(backend: str, query: str) -> None:
    assert_trivial(query, backend, True)


def test_sqlparse_reads_common_shapes_exactly() -> None:
    for query in [
        "delete from orders where exists (select 1)",
        "delete from orders where id = id",
        "delete from orders o using customers c where c.vip",
        "delete from orders where id = %s",
        "delete from orders where exists (select 1 from customers c where c.id = orders.cid)",
    ]:
        assert where_of(query, "sqlparse") is not None, query


# -- the evaluator on its own ------------------------------------------------------------------


def col(name: str, dep: int = TARGET) -> tuple[str, str, int]:
    return ("term", f"col:{name}", dep)


def test_trivial_judges_dependence() -> None:
    assert trivial(None) is False
    assert trivial(("cmp", "=", col("a"), ("const", 1))) is False
    assert trivial(("cmp", "=", col("a", NONE), ("const", 1))) is True
    assert trivial(("cmp", "=", col("a", MAYBE), ("const", 1))) is True
    assert trivial(("cmp", "=", ("const", 1), ("const", 2))) is False
    assert trivial(("and", (col("p", NONE), ("cmp", "=", col("a"), ("const", 1))))) is False
    assert trivial(("or", (col("p", NONE), ("cmp", "=", col("a"), ("const", 1))))) is True
    # A backend that cannot tell (sqlparse's UNKNOWN_DEP) gets None where it matters.
    assert trivial(("cmp", "=", ("term", "k", 2), ("const", 1))) is None
    assert trivial(("and", (("term", "k", 2), ("cmp", "<", col("a"), ("const", 1))))) is False


def test_selects_are_judged_by_value_only(backend: str) -> None:
    found = where_of("select * from t where now() is not null", backend)
    assert found in ((True, False), None)
    found = where_of("select * from t where 1 = 1", backend)
    assert found in ((True, True), None)


# -- hypothesis: both backends agree on generated conditions -----------------------------------

ATOMS = [
    "id", "o.id", "orders.id", "c.id", "customers.vip", "vip", "1", "0", "null", "true", "false",
    "'t'", "'off'", "%s", "$1", "now()", "lower(name)", "lower(o.name)", "ctid", "o.ctid",
    "(select 1)", "(select true)", "exists (select 1)", "exists (select 1 from x where x.a = o.id)",
    "exists (select 1 from x where x.a = c.id)", "coalesce(id, 0)", "id::text", "cast(id as text)",
    "o2.id", "o2.parent_id",
    # arithmetic, known functions and subqueries that return the row's own value
    "id + 0", "id * 1", "o.id - 1", "abs(id)", "greatest(o.id, 0)", "least(id, o.id)",
    "nullif(id, 1)", "lower(o.name)", "upper(name)", "length(name)", "coalesce(o.id, o2.id)",
    "(select o.id)", "(select id where id > 0)", "exists (select 1 where o.id > 0)",
    "id in (select id)", "o.id in (select id from orders)",
    "exists (select 1 from orders o3 where o3.id = o.id)", "(select max(id) from orders)",
    "tableoid", "o.ctid", "'(0,0)'", "o", "count(*)",
]  # fmt: skip
OPS = ["=", "<>", "<", ">=", "like", "is not distinct from"]


def _comparison(parts: tuple[str, str, str]) -> str:
    left, op, right = parts
    return f"{left} {op} {right}"


leaf = st.one_of(
    st.sampled_from(ATOMS),
    st.tuples(st.sampled_from(ATOMS), st.sampled_from(OPS), st.sampled_from(ATOMS)).map(
        _comparison
    ),
    st.sampled_from(ATOMS).map(lambda a: f"{a} is not null"),
)
condition = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda p: f"({p[0]} and {p[1]})"),
        st.tuples(inner, inner).map(lambda p: f"({p[0]} or {p[1]})"),
        inner.map(lambda c: f"not ({c})"),
        st.tuples(inner, inner, inner).map(
            lambda p: f"case when {p[0]} then {p[1]} else {p[2]} end"
        ),
    ),
    max_leaves=5,
)
shape = st.sampled_from(
    [
        "delete from orders o where {}",
        "delete from orders o using customers c where {}",
        "update orders o set x = 1 from customers c where {}",
        "merge into orders o using customers c on {} when matched then delete",
        "delete from orders o using orders o2 where {}",
        "select * from orders o where {}",
    ]
)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(shape, condition)
def test_backends_agree_on_conditions(template: str, cond: str) -> None:
    if "pglast" not in BACKENDS:
        return
    query = template.format(cond)
    exact = analyze(query, backend="pglast").statements[0]
    portable = analyze(query, backend="sqlparse").statements[0]
    if exact.operation == "unknown":
        return  # PostgreSQL would not accept it: nothing runs
    assert portable.opaque or portable == exact, query
