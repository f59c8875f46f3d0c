"""Masking lineage on a real database: derived columns, views, unknown lineage and probing."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import governed_db
from governed_db.audit import AuditTrail, Signer
from governed_db.audit.reader import iter_records
from governed_db.errors import GovernanceError

EMAIL = "carol.danvers@example.net"
PASSWORD = "Corr3ct-H0rse-Battery"
SSN = "219-09-9998"


@pytest.fixture
def dsn(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("GOVERNED_DB_POLICY", raising=False)
    monkeypatch.setenv("GOVERNED_DB_MASKING_KEY", base64.b64encode(os.urandom(32)).decode())
    with psycopg.connect(pg_dsn, autocommit=True) as raw:
        raw.execute(
            "create table customers (id int primary key, email text, password text, ssn text,"
            " customer_id text, salary int, note text)"
        )
        raw.execute(
            "insert into customers values (1, %s, %s, %s, 'C-100', 3000, 'hello'),"
            " (5, 'dave@redd.example.com', 'Tr0ub4dor', '078-05-1120', 'C-105', 1000, 'x')",
            (EMAIL, PASSWORD, SSN),
        )
        raw.execute("create table orders (id int, customer_id text, total int)")
        raw.execute("insert into orders values (10, 'C-100', 7), (11, 'C-105', 9)")
        raw.execute("create table guesses (g text)")
        raw.execute("insert into guesses values ('C-100')")
        raw.execute(
            "create function secret_of(i int) returns text language sql"
            " as 'select password from customers where id = i'"
        )
    return pg_dsn


def _text(rows: Any) -> str:
    return json.dumps(rows, default=str)


@pytest.fixture
def conn(dsn: str) -> Iterator[governed_db.Connection]:
    with governed_db.connect(dsn, autocommit=True) as c:
        yield c


def test_derived_columns_are_masked_whole(conn: governed_db.Connection) -> None:
    row = conn.execute(
        "select lower(email), length(email), substr(ssn, 1, 7), md5(password), note,"
        " upper(note) from customers where id = 1"
    ).fetchone()
    assert row is not None
    assert row[0] == row[1] == "[REDACTED:email]"  # the rule's category
    assert row[2] == "[REDACTED:ssn]"
    assert row[3] == "[REDACTED:secret]"
    assert row[4:] == ("hello", "HELLO")  # note derives from nothing masked
    assert EMAIL[:4] not in _text(row)
    assert "219-09" not in _text(row)


def test_plain_columns_keep_their_method(conn: governed_db.Connection) -> None:
    row = conn.execute("select email, ssn from customers where id = 1").fetchone()
    assert row == ("c***@example.net", "[REDACTED:ssn]")


def test_several_masked_sources_are_redacted(conn: governed_db.Connection) -> None:
    (value,) = conn.execute("select email || ssn from customers where id = 1").fetchone() or ()
    assert value == "[REDACTED:masked]"


def test_a_method_that_keeps_nothing_fits_derived_values(dsn: str) -> None:
    policy = {
        "version": 1,
        "guardrails": [],
        "masking": {
            "rules": [
                {"id": "pseudonyms", "column_names": ["customer_id"], "method": "hash"},
            ]
        },
    }
    with governed_db.connect(dsn, policy=policy, autocommit=True) as conn:
        rows = conn.execute(
            "select customer_id, lower(customer_id), upper(customer_id) from customers order by id"
        ).fetchall()
    assert all(v.startswith("hmac:") for row in rows for v in row)
    assert rows[0][2] == rows[0][0]  # upper('C-100') is the same value: the same pseudonym
    assert rows[0][1] != rows[0][0]  # lower() of it is another value


def test_a_policy_reveals_a_derived_column_explicitly(dsn: str) -> None:
    policy = {
        "version": 1,
        "guardrails": [],
        "masking": {
            "rules": [{"id": "emails-open", "columns": ["customers.email"], "action": "reveal"}]
        },
    }
    with governed_db.connect(dsn, policy=policy, autocommit=True) as conn:
        row = conn.execute("select lower(email), lower(ssn) from customers where id = 1").fetchone()
    assert row == (EMAIL, "[REDACTED:ssn]")


def test_view_and_view_over_view_and_materialized_view(conn: governed_db.Connection) -> None:
    conn.execute("create view v1 as select id, password as x, lower(email) as y from customers")
    conn.execute("create view v2 as select x as z, y || '!' as w from v1")
    conn.execute("create materialized view m1 as select upper(ssn) as q from customers")
    text = _text(
        [
            conn.execute("select * from v1").fetchall(),
            conn.execute("select z, w from v2").fetchall(),
            conn.execute("select left(z, 10) from v2").fetchall(),
            conn.execute("select q from m1").fetchall(),
        ]
    )
    for secret in (PASSWORD, EMAIL, SSN, PASSWORD[:6], "219-09"):
        assert secret not in text
    assert "[REDACTED:secret]" in text


def test_view_cache_is_dropped_after_ddl(conn: governed_db.Connection) -> None:
    conn.execute("create view pv as select id, note as x from customers")
    assert conn.execute("select x from pv where id = 1").fetchone() == ("hello",)
    conn.execute("create or replace view pv as select id, password as x from customers")
    assert conn.execute("select x from pv where id = 1").fetchone() == ("[REDACTED:secret]",)


def test_insert_returning_a_computed_expression(conn: governed_db.Connection) -> None:
    conn.execute("create temp table t (a int, b text)")
    rows = conn.execute(
        "insert into t (a, b) select id, password from customers returning b || '' as c, a"
    ).fetchall()
    assert PASSWORD not in _text(rows)
    assert {r[0] for r in rows} == {"[REDACTED:secret]"}


def test_unknown_lineage_is_audited(dsn: str, tmp_path: Path) -> None:
    spool = tmp_path / "audit"
    trail = AuditTrail.from_settings(
        {"path": str(spool), "durability": "strict"}, signer=Signer.generate()
    )
    with governed_db.connect(dsn, audit=trail, autocommit=True) as conn:
        row = conn.execute("select secret_of(1), id from customers where id = 1").fetchone()
    trail.close()
    assert row == (PASSWORD, 1)  # what no rule nor detector can see: audited as unknown
    outcome = next(r for r in iter_records(spool) if r["kind"] == "outcome")
    columns = outcome["masking"]["columns"]
    assert columns[0]["lineage"] == "unknown"
    assert "lineage" not in columns[1]


def test_unknown_lineage_refuse(dsn: str) -> None:
    policy = {"version": 1, "guardrails": [], "masking": {"unknown_lineage": "refuse"}}
    with governed_db.connect(dsn, policy=policy, autocommit=True) as conn:
        with pytest.raises(GovernanceError) as info:
            conn.execute("select secret_of(1)").fetchall()
        assert info.value.rule_id == "unknown-lineage"
        assert conn.execute("select lower(email) from customers").fetchall()  # known: masked


def test_unknown_lineage_value_is_checked(dsn: str) -> None:
    policy = {"version": 1, "guardrails": [], "masking": {"unknown_lineage": "refuze"}}
    with pytest.raises(governed_db.PolicyError, match="unknown_lineage"):
        governed_db.connect(dsn, policy=policy)


# -- probing ------------------------------------------------------------------------------------

PROBING = {
    "version": 1,
    "environments": {"default": "dev", "prod": {}, "dev": {}},
    "guardrails": [
        {
            "id": "no-probing",
            "when": {"environment": "prod", "actor_kind": "agent", "filters_on_masked": True},
            "action": "block",
        },
        {
            "id": "sorting-needs-approval",
            "when": {"environment": "prod", "actor_kind": "agent", "orders_by_masked": True},
            "action": "require_approval",
        },
    ],
    "masking": {
        "rules": [{"id": "pseudonyms", "column_names": ["customer_id"], "method": "hash"}],
    },
}


@pytest.fixture
def agent(dsn: str) -> Iterator[governed_db.Connection]:
    with governed_db.connect(
        dsn, policy=PROBING, environment="prod", identity="agent:probe", autocommit=True
    ) as c:
        yield c


@pytest.mark.parametrize(
    "sql",
    [
        "select id from customers where email like 'a%'",
        "select id from customers where lower(email) like 'c%'",
        "select id from customers where salary > 0 and ssn between '1' and '3'",
        "select id from customers where ssn = '219-09-9998'",
        "select count(*) from customers c join guesses g on c.customer_id = g.g",
        "select id from customers where customer_id in (select g from guesses)",
        "select s.id from (select id, email as e from customers) s where s.e ~ '^c'",
        "select count(*) filter (where password like 'C%') from customers",
        "select id from customers where id = %s and email like %s",
    ],
)
def test_agent_filtering_on_masked_columns_is_blocked(
    agent: governed_db.Connection, sql: str
) -> None:
    params = (1, "c%") if "%s" in sql else None
    with pytest.raises(governed_db.PolicyViolation) as info:
        agent.execute(sql, params)
    assert info.value.rule_id == "no-probing"


@pytest.mark.parametrize(
    "sql",
    [
        "select id, email from customers where id = 5",
        "select id from customers where salary > 2000",  # salary is not masked
        "select o.total from orders o join customers c on o.customer_id = c.customer_id",
        "select lower(email) from customers",
    ],
)
def test_agent_allowed_reads(agent: governed_db.Connection, sql: str) -> None:
    rows = agent.execute(sql).fetchall()
    assert rows
    assert EMAIL not in _text(rows)


def test_ordering_by_masked_column_needs_approval(agent: governed_db.Connection) -> None:
    with pytest.raises(governed_db.ApprovalRequired) as info:
        agent.execute("select id from customers order by email")
    assert info.value.rule_id == "sorting-needs-approval"
    assert agent.execute("select id from customers order by id").fetchall()


def test_humans_and_dev_may_probe(dsn: str) -> None:
    with governed_db.connect(
        dsn, policy=PROBING, environment="prod", identity="human:alice", autocommit=True
    ) as conn:
        assert conn.execute("select id from customers where email like 'c%'").fetchall() == [(1,)]
    with governed_db.connect(
        dsn, policy=PROBING, environment="dev", identity="agent:x", autocommit=True
    ) as conn:
        assert conn.execute("select id from customers where email like 'c%'").fetchall() == [(1,)]


def test_a_revealed_column_is_not_masked_for_probing(dsn: str) -> None:
    policy = json.loads(json.dumps(PROBING))
    policy["masking"]["rules"].insert(
        0, {"id": "emails-open", "column_names": ["email"], "action": "reveal"}
    )
    with governed_db.connect(
        dsn, policy=policy, environment="prod", identity="agent:x", autocommit=True
    ) as conn:
        assert conn.execute("select id from customers where email like 'c%'").fetchall() == [(1,)]
        with pytest.raises(governed_db.PolicyViolation):
            conn.execute("select id from customers where ssn like '2%'")


def test_probing_keys_are_refused_in_masking_rules(dsn: str) -> None:
    policy = {
        "version": 1,
        "guardrails": [],
        "masking": {
            "rules": [
                {"id": "x", "when": {"filters_on_masked": True}, "column_names": ["a"]},
            ]
        },
    }
    with pytest.raises(governed_db.PolicyError, match="filters_on_masked"):
        governed_db.connect(dsn, policy=policy)


@pytest.mark.parametrize(
    "statement",
    [
        "copy (select id, lower(password), ssn || '' from customers) to stdout",
        "copy (select id, lower(password) from customers) to stdout with (format csv)",
        "copy (select * from pv) to stdout",
    ],
)
def test_copy_out_of_derived_columns_is_masked(
    conn: governed_db.Connection, statement: str
) -> None:
    conn.execute("create temp view pv as select id, password as x from customers")
    with conn.cursor() as cur, cur.copy(statement) as copy:
        data = b"".join(bytes(chunk) for chunk in copy).decode()
    assert data.count("\n") == 2
    for secret in (PASSWORD, PASSWORD.lower(), SSN):
        assert secret not in data
    assert "[REDACTED:secret]" in data


def test_copy_sql_lineage() -> None:
    from governed_db.sql import analyze

    lineage = analyze("copy (select lower(email) from customers) to stdout").statements[0].lineage
    assert [str(s) for s in lineage.sources()] == ["public.customers.email"]
    table = analyze("copy customers (id, email) to stdout").statements[0].lineage
    assert table.known
    assert not table.data  # each column is its own source (the server describes them)
    assert not analyze("copy customers from stdin").statements[0].lineage.data


def test_lineage_holds_for_prepared_statements(conn: governed_db.Connection) -> None:
    """psycopg prepares a statement run often (prepare_threshold): lineage must still hold."""
    with conn.cursor() as cur:
        for i in range(8):
            for sql in (
                "select lower(password) from customers where id = %s",
                "select note || '' from customers where id = %s",
            ):
                cur.execute(sql, (1,))
                rows = cur.fetchall()
                assert PASSWORD.lower() not in _text(rows), (i, sql)
        cur.execute("select lower(password) from customers where id = %s", (1,), prepare=True)
        assert PASSWORD.lower() not in _text(cur.fetchall())


async def test_lineage_holds_for_prepared_statements_async(dsn: str) -> None:
    async with await governed_db.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = conn.cursor()
        for _ in range(7):
            await cur.execute("select upper(password) from customers where id = %s", (1,))
            assert PASSWORD.upper() not in _text(await cur.fetchall())
            await cur.execute("select id from customers where id = %s", (1,))
            await cur.fetchall()
