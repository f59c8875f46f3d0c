"""Probing conditions judged by ``decide`` (no database): filters, probes and ordering."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from governed_db.identity import Identity
from governed_db.policy import Context, decide, load_policy
from governed_db.sql import analyze, analyze_uncached

AGENT = Identity(kind="agent", name="bot")
HUMAN = Identity(kind="human", name="alice")


def policy(extra_masking: list[dict[str, Any]] | None = None, **when: Any) -> Any:
    return load_policy(
        {
            "version": 1,
            "guardrails": [
                {
                    "id": "probe",
                    "when": {"actor_kind": "agent", **(when or {"filters_on_masked": True})},
                    "action": "block",
                },
            ],
            "masking": {"rules": extra_masking or []},
        }
    )


def action(p: Any, sql: str, identity: Identity = AGENT, backend: str | None = None) -> str:
    facts = analyze(sql) if backend is None else analyze_uncached(sql, backend)
    return decide(p, facts, Context("default", identity)).action


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select id from customers where email like 'a%'", "block"),
        ("select id from customers where id = 5", "allow"),
        ("select id from customers where note like 'a%'", "allow"),
        ("select id from customers c join cards k on k.card_number = c.card_number", "allow"),
        ("select id from customers c join guesses g on c.ssn = g.s", "block"),
        ("select count(*) from customers group by email", "allow"),  # ordering, not filtering
        ("update customers set note = 'x' where ssn like '1%'", "block"),
        ("with c as (select email as e from customers) select 1 from c where e > 'm'", "block"),
    ],
)
def test_filters_on_masked(sql: str, expected: str) -> None:
    assert action(policy(), sql) == expected


def test_humans_are_not_matched() -> None:
    assert action(policy(), "select id from customers where email like 'a%'", HUMAN) == "allow"


def test_probes_and_orders() -> None:
    probes = policy(probes_masked=True)
    assert action(probes, "select 1 from customers where ssn between '1' and '2'") == "block"
    assert action(probes, "select 1 from customers where ssn = '1'") == "allow"  # a filter
    orders = policy(orders_by_masked=True)
    assert action(orders, "select id from customers order by phone") == "block"
    assert action(orders, "select id from customers order by id") == "allow"


def test_false_matches_statements_that_do_not_probe() -> None:
    p = policy(filters_on_masked=False)
    assert action(p, "select id from customers where id = 1") == "block"
    assert action(p, "select id from customers where email like 'a%'") == "allow"


def test_a_reveal_rule_unmasks_for_probing() -> None:
    p = policy([{"id": "open", "column_names": ["email"], "action": "reveal"}])
    assert action(p, "select id from customers where email like 'a%'") == "allow"


def test_a_custom_masked_column_counts() -> None:
    p = policy([{"id": "salary", "columns": ["hr.staff.salary"], "method": "null"}])
    assert action(p, "select id from hr.staff where salary > 2000") == "block"
    assert action(p, "select id from other.staff where salary > 2000") == "allow"


def test_without_lineage_refusing_rules_match_and_permissive_ones_do_not() -> None:
    sql = "select id from customers where id = 1"
    assert action(policy(), sql, backend="sqlparse") == "block"
    allow = load_policy(
        {
            "version": 1,
            "guardrails": [
                {"id": "ok", "when": {"filters_on_masked": False}, "action": "allow"},
                {"id": "rest", "when": {"classes": ["read"]}, "action": "block"},
            ],
        }
    )
    assert action(allow, sql, backend="sqlparse") == "block"
    assert action(allow, sql) == "allow"


def test_a_timed_masking_rule_makes_the_decision_timed() -> None:
    p = policy(
        [
            {
                "id": "night",
                "when": {"time": {"hours": "00:00-24:00"}},
                "column_names": ["note"],
                "method": "redact",
            }
        ]
    )
    facts = analyze("select id from customers where note like 'a%'")
    decision = decide(p, facts, Context("default", AGENT, now=datetime(2024, 1, 1, tzinfo=UTC)))
    assert decision.action == "block"
    assert decision.timed
