"""Lineage from the parse tree (``sql.lineage``): output columns and row-picking uses."""

from __future__ import annotations

from typing import Any

import pytest

from governed_db.sql import analyze, analyze_uncached
from governed_db.sql.lineage import Branches, Column, Expand, Lineage, Opaque, Source


def lineage(sql: str) -> Lineage:
    return analyze(sql).statements[0].lineage


def cols(sql: str) -> list[Any]:
    """Each output item: sorted source strings (``+?`` when unknown), or a tag for the rest."""
    out: list[Any] = []
    for item in lineage(sql).items:
        if isinstance(item, Column):
            names = sorted(str(s) + ("(row)" if s.row else "") for s in item.sources)
            out.append([*names, "+?"] if item.unknown else names)
        elif isinstance(item, Expand):
            out.append(
                f"{item.table}.*" + (f"-{','.join(sorted(item.exclude))}" if item.exclude else "")
            )
        elif isinstance(item, Opaque):
            out.append(
                "opaque?" if item.unknown else "opaque:" + ",".join(sorted(map(str, item.sources)))
            )
        else:
            assert isinstance(item, Branches)
            out.append("branches")
    return out


def uses(sql: str) -> set[tuple[str, str, str]]:
    return {
        (u.kind, ",".join(sorted(map(str, u.sources))), ",".join(sorted(map(str, u.partner))))
        for u in lineage(sql).uses
    }


C = "public.customers"
V = "public.vault"

EXPRESSIONS = {
    "lower": ("select lower(email) from customers", [[f"{C}.email"]]),
    "upper": ("select upper(email) as x from customers", [[f"{C}.email"]]),
    "substr": ("select substr(card_number, 1, 12) from customers", [[f"{C}.card_number"]]),
    "left-right": (
        "select left(ssn, 3), right(phone, 4) from customers",
        [[f"{C}.ssn"], [f"{C}.phone"]],
    ),
    "replace-split_part": (
        "select replace(email, '@', ' at '), split_part(email, '@', 2) from customers",
        [[f"{C}.email"], [f"{C}.email"]],
    ),
    "regexp_replace": (
        "select regexp_replace(card_number, '\\d', 'x') from customers",
        [[f"{C}.card_number"]],
    ),
    "concat-operator": ("select email || ssn from customers", [[f"{C}.email", f"{C}.ssn"]]),
    "format-concat_ws": (
        "select format('%s', email), concat_ws('-', id, ssn) from customers",
        [[f"{C}.email"], [f"{C}.id", f"{C}.ssn"]],
    ),
    "md5-length": (
        "select md5(password), length(email) from customers",
        [[f"{C}.password"], [f"{C}.email"]],
    ),
    "casts": (
        "select email::text, cast(card_number as varchar(30)) from customers",
        [[f"{C}.email"], [f"{C}.card_number"]],
    ),
    "case-condition": (
        "select case when email like 'a%' then 1 else 0 end from customers",
        [[f"{C}.email"]],
    ),
    "case-results": (
        "select case id when 1 then ssn else phone end from customers",
        [[f"{C}.id", f"{C}.phone", f"{C}.ssn"]],
    ),
    "coalesce-nullif-greatest": (
        "select coalesce(phone, email), nullif(ssn, ''), greatest(a, b) from customers",
        [[f"{C}.email", f"{C}.phone"], [f"{C}.ssn"], [f"{C}.a", f"{C}.b"]],
    ),
    "aggregates": (
        "select string_agg(password, ','), array_agg(ssn), count(*) from customers",
        [[f"{C}.password"], [f"{C}.ssn"], []],
    ),
    "json-constructors": (
        "select json_build_object('e', email), to_jsonb(c.*), row_to_json(c) from customers c",
        [[f"{C}.email"], [f"{C}.*"], [f"{C}.c", f"{C}.c(row)"]],
    ),
    "window": (
        "select first_value(email) over (partition by id order by ssn) from customers",
        [[f"{C}.email"]],
    ),
    "array-row-constructors": (
        "select array[email, ssn], row(phone) from customers",
        [[f"{C}.email", f"{C}.ssn"], [f"{C}.phone"]],
    ),
    "json-operators": (
        "select payload -> 'k', payload #>> '{a,b}' from vault",
        [[f"{V}.payload"], [f"{V}.payload"]],
    ),
    "user-function-unknown": (
        "select my_fn(email), public.other(id) from customers",
        [[f"{C}.email", "+?"], [f"{C}.id", "+?"]],
    ),
    "dynamic-sql-unknown": (
        "select query_to_xml('select * from customers', true, true, '')",
        [["+?"]],
    ),
    "constant": ("select 1, now()", [[], []]),
}


@pytest.mark.parametrize(("sql", "expected"), EXPRESSIONS.values(), ids=EXPRESSIONS.keys())
def test_expressions(sql: str, expected: list[Any]) -> None:
    assert cols(sql) == expected


RELATIONS = {
    "star": ("select * from customers", [f"{C}.*"]),
    "qualified-star-join": (
        "select c.*, v.c1 from customers c join vault v on v.id = c.id",
        [f"{C}.*", [f"{V}.c1"]],
    ),
    "using-merges": (
        "select * from customers join vault using (id)",
        [[f"{C}.id", f"{V}.id"], f"{C}.*-id", f"{V}.*-id"],
    ),
    "schema-qualified": (
        "select s.t.x, y from s.t",
        [["s.t.x"], ["s.t.y"]],
    ),
    "ambiguous-unqualified": (
        "select email from customers, vault",
        [[f"{{{C}|{V}}}.email"]],
    ),
    "alias-column-list": ("select a from customers c(a, b)", [[f"{C}.#1"]]),
    "subquery": (
        "select x.a from (select lower(email) as a, id from customers) x",
        [[f"{C}.email"]],
    ),
    "subquery-star": ("select * from (select * from customers) s", [f"{C}.*"]),
    "subquery-star-by-name": (
        "select s.ssn from (select * from customers) s",
        [[f"{C}.ssn"]],
    ),
    "cte": (
        "with c as (select email as e from customers) select upper(e) from c",
        [[f"{C}.email"]],
    ),
    "cte-column-list": (
        "with c(e) as (select email from customers) select e from c",
        [[f"{C}.email"]],
    ),
    "recursive-cte": (
        "with recursive r(n, v) as (select 1, c1 from vault where id = 1 union all"
        " select n + 1, v || 'x' from r where n < 5) select v, n from r",
        [[f"{V}.c1"], []],
    ),
    "recursive-cte-grows": (
        "with recursive r(a, b) as (select '', email from customers union all"
        " select b, a from r) select a from r",
        [[f"{C}.email"]],
    ),
    "union": (
        "select email from customers union all select c1 from vault",
        [[f"{C}.email", f"{V}.c1"]],
    ),
    "intersect-except": (
        "select ssn from customers intersect select c2 from vault except select notes from vault",
        [[f"{C}.ssn", f"{V}.c2", f"{V}.notes"]],
    ),
    "union-of-stars": ("select * from customers union select * from cust_copy", ["branches"]),
    "lateral": (
        "select v.id, l.x from vault v left join lateral (select v.c1 as x) l on true",
        [[f"{V}.id"], [f"{V}.c1"]],
    ),
    "scalar-subquery": (
        "select (select email from customers c where c.id = v.id) from vault v",
        [[f"{{{C}|{V}}}.email"]],
    ),
    "correlated-outer-column": (
        "select (select lower(ssn) from vault w) from customers",
        [[f"{{{V}|{C}}}.ssn"]],
    ),
    "builtin-srf": (
        "select key, value from vault, jsonb_each_text(payload)",
        [[f"{V}.key", f"{V}.payload"], [f"{V}.payload", f"{V}.value"]],
    ),
    "builtin-srf-star": ("select * from unnest(array['a'])", ["opaque:"]),
    "user-srf-unknown": ("select * from customers_fn() f(a, b)", ["opaque?"]),
    "user-srf-column": ("select f.a from customers_fn() f(a, b)", [["+?"]]),
    "values": (
        "select * from (values (1, 'x'), (2, 'y')) v(a, b)",
        [[], []],
    ),
    "view-is-a-relation": ("select * from my_view", ["public.my_view.*"]),
}


@pytest.mark.parametrize(("sql", "expected"), RELATIONS.values(), ids=RELATIONS.keys())
def test_relations(sql: str, expected: list[Any]) -> None:
    assert cols(sql) == expected


DML = {
    "insert-returning-expression": (
        "insert into t (a, b) select id, password from customers returning b || '' as q, a",
        [["public.customers.password", "public.t.b"], ["public.customers.id", "public.t.a"]],
    ),
    "insert-values-returning": (
        "insert into t (a) values ($1) returning upper(a)",
        [["public.t.a"]],
    ),
    "insert-positional-returning-star": (
        "insert into t select * from customers returning a",
        [[f"{C}.*", "public.t.a"]],
    ),
    "update-returning": (
        "update t set notes = (select email from customers where id = 1) returning notes",
        [["public.t.notes", f"{{{C}|public.t}}.email"]],
    ),
    "delete-returning": ("delete from t where id = 1 returning lower(s)", [["public.t.s"]]),
    "returning-old-new": (
        "update t set s = s returning old.s, new.s",
        [["public.t.s"], ["public.t.s"]],
    ),
    "cte-dml": (
        "with d as (delete from customers returning ssn) select * from d",
        [[f"{C}.ssn"]],
    ),
    "declare": ("declare c cursor for select lower(ssn) from customers", [[f"{C}.ssn"]]),
}


@pytest.mark.parametrize(("sql", "expected"), DML.values(), ids=DML.keys())
def test_dml(sql: str, expected: list[Any]) -> None:
    assert cols(sql) == expected


def test_statements_without_data_and_unknown_ones() -> None:
    assert not lineage("show search_path").data
    assert not lineage("explain select email from customers").data
    assert not lineage("create table t (a int)").data
    for sql in ("fetch 10 from c", "execute p(1)", "call p()", "do $$ begin end $$"):
        assert not lineage(sql).known, sql
    assert not lineage("select from where").known  # unparseable


def test_sqlparse_backend_has_no_lineage() -> None:
    facts = analyze_uncached("select lower(email) from customers", "sqlparse")
    assert not facts.statements[0].lineage.known


PROBES = {
    "like-literal": ("select id from customers where email like 'a%'", ("probe", f"{C}.email", "")),
    "like-param": ("select id from customers where email ilike $1", ("probe", f"{C}.email", "")),
    "range": ("select id from customers where salary > 2000", ("probe", f"{C}.salary", "")),
    "between": (
        "select id from customers where salary between 1 and 2",
        ("probe", f"{C}.salary", ""),
    ),
    "regex": ("select id from customers where ssn ~ '^1'", ("probe", f"{C}.ssn", "")),
    "function-over-column": (
        "select id from customers where lower(email) like 'a%'",
        ("probe", f"{C}.email", ""),
    ),
    "literal-first": ("select id from customers where 'a' < email", ("probe", f"{C}.email", "")),
    "equality-literal": ("select id from customers where id = 5", ("filter", f"{C}.id", "")),
    "equality-join": (
        "select 1 from orders o join customers c on o.customer_id = c.customer_id",
        ("equality", "public.orders.customer_id", f"{C}.customer_id"),
    ),
    "in-subquery": (
        "select 1 from vault v where v.c1 in (select email from customers)",
        ("equality", f"{V}.c1", f"{{{C}|{V}}}.email"),
    ),
    "through-subquery": (
        "select s.a from (select email as a from customers) s where s.a like 'x%'",
        ("probe", f"{C}.email", ""),
    ),
    "having": (
        "select 1 from customers group by id having max(ssn) > '5'",
        ("probe", f"{C}.ssn", ""),
    ),
    "is-null": ("select 1 from customers where email is null", ("filter", f"{C}.email", "")),
    "order-by": ("select id from customers order by email", ("order", f"{C}.email", "")),
    "order-by-position": ("select id, ssn from customers order by 2", ("order", f"{C}.ssn", "")),
    "order-by-output-name": (
        "select lower(ssn) as s from customers order by s",
        ("order", f"{C}.ssn", ""),
    ),
    "group-by": ("select count(*) from customers group by email", ("order", f"{C}.email", "")),
    "window": (
        "select row_number() over (order by ssn) from customers",
        ("order", f"{C}.ssn", ""),
    ),
    "aggregate-filter": (
        "select count(*) filter (where email like 'a%') from customers",
        ("probe", f"{C}.email", ""),
    ),
    "exists-subquery": (
        "select exists(select 1 from customers where ssn like '1%')",
        ("probe", f"{C}.ssn", ""),
    ),
    "update-where": ("update customers set id = id where ssn > '5'", ("probe", f"{C}.ssn", "")),
    "delete-where": (
        "delete from customers where email like '%@x.com'",
        ("probe", f"{C}.email", ""),
    ),
}


@pytest.mark.parametrize(("sql", "expected"), PROBES.values(), ids=PROBES.keys())
def test_uses(sql: str, expected: tuple[str, str, str]) -> None:
    assert expected in uses(sql)


def test_output_only_statement_has_no_uses() -> None:
    assert uses("select lower(email) from customers") == set()


def test_lineage_is_computed_once_per_text() -> None:
    sql = "select lower(email) as probe_once from customers"
    assert analyze(sql).statements[0].lineage is analyze(sql).statements[0].lineage


def test_source_names() -> None:
    assert str(Source(("public.t",), "a")) == "public.t.a"
    assert str(Source(("public.t", "public.u"), "a")) == "{public.t|public.u}.a"
    assert lineage("select email from customers").sources() == {Source((C,), "email")}
    assert lineage("select 1 from customers where ssn > '1'").used("probe") == {Source((C,), "ssn")}


def _corpus() -> list[str]:
    import json
    from pathlib import Path

    import yaml
    from pglast import parser

    out = []
    for path in sorted((Path(__file__).parent / "corpus").glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text(encoding="utf-8")):
            try:
                stmts = json.loads(parser.parse_sql_json(entry["sql"]))["stmts"]
            except parser.ParseError:
                continue
            out.extend(json.dumps(s["stmt"]) for s in stmts)
    return out


def test_the_walker_reads_the_whole_corpus_without_error() -> None:
    """Every parseable statement of the SQL corpus: no exception (the backend would hide one
    as ``unknown``), and SELECTs and DML are followed."""
    import json

    from governed_db.sql.lineage_walk import lineage_of

    statements = _corpus()
    assert len(statements) > 400
    followed = 0
    for text in statements:
        ((kind, body),) = json.loads(text).items()
        found = lineage_of(kind, body)
        if kind in ("SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"):
            assert found.known, text
            followed += 1
    assert followed > 200
