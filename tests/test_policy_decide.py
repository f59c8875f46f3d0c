"""decide(): first match wins, strictest statement wins, modes, time, estimates, cache."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from typing import Any

import pytest

from governed_db.errors import ApprovalRequired, PolicyViolation
from governed_db.identity import Identity
from governed_db.policy import (
    Context,
    DecisionCache,
    decide,
    decide_each,
    load_policy,
    violation,
)
from governed_db.sql.facts import Facts, StatementFacts

ALICE = Identity("human", "alice", email="alice@example.com")
BOT = Identity("agent", "claude")


def stmt(operation: str, klass: str = "write", **kw: Any) -> StatementFacts:
    for key in ("tables_read", "tables_written", "functions"):
        if key in kw:
            kw[key] = frozenset(kw[key])
    return StatementFacts(operation, klass, **kw)


def facts(*statements: StatementFacts) -> Facts:
    return Facts(tuple(statements), "test")


def policy(*rules: dict[str, Any], **top: Any) -> Any:
    doc = {
        "version": 1,
        "environments": {"default": "dev", "prod": {}, "dev": None},
        "actors": {"bots": [{"kind": "agent"}], "admins": ["alice"]},
        "guardrails": list(rules),
        **top,
    }
    return load_policy(doc)


DELETE_ALL = stmt("delete", tables_written={"public.orders"})
DELETE_SOME = stmt("delete", tables_written={"public.orders"}, has_where=True)
SELECT = stmt("select", "read", tables_read={"public.orders"})
DROP = stmt("drop", "ddl", tables_written={"public.orders"})


def test_first_match_wins_and_default_allow() -> None:
    p = policy(
        {"id": "admins-may", "when": {"actor": "admins"}, "action": "allow"},
        {"id": "no-delete-all", "when": {"operation": "delete", "has_where": False},
         "action": "block"},
        {"id": "catch-all-delete", "when": {"operation": "delete"}, "action": "observe"},
    )  # fmt: skip
    ctx = Context("dev", BOT)
    assert decide(p, facts(DELETE_ALL), ctx).rule_id == "no-delete-all"
    assert decide(p, facts(DELETE_SOME), ctx).rule_id == "catch-all-delete"
    assert decide(p, facts(DELETE_ALL), Context("dev", ALICE)).action == "allow"
    d = decide(p, facts(SELECT), ctx)
    assert (d.action, d.rule_id, d.reason) == ("allow", None, "no guardrail matched")


def test_strictest_statement_wins() -> None:
    p = policy(
        {"id": "obs-select", "when": {"operation": "select"}, "action": "observe"},
        {"id": "approve-drop", "when": {"operation": "drop"}, "action": "require_approval"},
        {"id": "block-delete", "when": {"operation": "delete", "has_where": False},
         "action": "block"},
    )  # fmt: skip
    ctx = Context("dev", ALICE)
    d = decide(p, facts(SELECT, DROP, DELETE_ALL, DROP), ctx)
    assert (d.action, d.rule_id, d.statement_index) == ("block", "block-delete", 2)
    d = decide(p, facts(SELECT, DROP, SELECT, DROP), ctx)
    assert (d.action, d.statement_index) == ("require_approval", 1)
    assert [x.action for x in decide_each(p, facts(SELECT, DROP), ctx)] == [
        "observe",
        "require_approval",
    ]
    empty = decide(p, facts(), ctx)
    assert (empty.action, empty.statement_index) == ("allow", -1)


def test_conditions() -> None:
    rules = [
        {"id": "env", "when": {"environment": "prod", "operation": "drop"}, "action": "block"},
        {"id": "kind", "when": {"actor_kind": "agent", "class": "ddl"}, "action": "block"},
        {"id": "tables", "when": {"tables_written": ["billing.*"]}, "action": "block"},
        {"id": "unqualified", "when": {"tables": "secrets"}, "action": "block"},
        {"id": "read", "when": {"tables_read": ["hr.*"]}, "action": "require_approval"},
        {"id": "fn", "when": {"functions": ["pg_read*"]}, "action": "require_approval"},
        {"id": "trivial", "when": {"where_is_trivial": True}, "action": "block"},
        {"id": "limit", "when": {"has_limit": True, "operation": "select"}, "action": "observe"},
        {"id": "opaque", "when": {"opaque": True}, "action": "require_approval"},
        {"id": "multi", "when": {"statement_count": {"min": 3}}, "action": "observe"},
        {"id": "single", "when": {"statement_count": {"max": 1}, "class": "misc"},
         "action": "observe"},
    ]  # fmt: skip
    p = policy(*rules)
    human, bot = Context("dev", ALICE), Context("dev", BOT)

    def rule(s: StatementFacts, ctx: Context = human, *more: StatementFacts) -> str | None:
        return decide(p, facts(s, *more), ctx).rule_id

    assert rule(DROP, Context("prod", ALICE)) == "env"
    assert rule(DROP, human) is None
    assert rule(DROP, bot) == "kind"
    assert rule(stmt("insert", tables_written={"billing.invoices"})) == "tables"
    assert rule(stmt("select", "read", tables_read={"vault.SECRETS"})) == "unqualified"
    assert rule(stmt("select", "read", tables_read={"hr.salaries"})) == "read"
    assert rule(stmt("select", "function", functions={"pg_read_file"})) == "fn"
    assert rule(stmt("update", has_where=True, where_is_trivial=True)) == "trivial"
    assert rule(stmt("select", "read", has_limit=True)) == "limit"
    assert rule(stmt("do", "opaque", opaque=True)) == "opaque"
    assert rule(SELECT, human, SELECT, SELECT) == "multi"
    assert rule(stmt("set", "misc")) == "single"
    assert rule(stmt("set", "misc"), human, SELECT) is None
    assert decide(p, facts(SELECT), Context("dev", None)).action == "allow"


def test_observe_mode_keeps_would_be() -> None:
    p = policy({"id": "no-drop", "when": {"operation": "drop"}, "action": "block"}, mode="observe")
    d = decide(p, facts(DROP), Context("dev", ALICE))
    assert (d.action, d.would_be, d.rule_id, d.refuses) == ("observe", "block", "no-drop", False)
    d.raise_for("DROP TABLE orders")  # does not raise


def test_messages_and_violations() -> None:
    p = policy(
        {
            "id": "delete-needs-where",
            "when": {"operation": "delete", "has_where": False},
            "action": "block",
            "message": "{operation} on {table} has no WHERE clause.",
            "hint": "Add a WHERE clause that selects the rows to {verb}.",
        },
        {"id": "ask", "when": {"operation": "drop"}, "action": "require_approval"},
        {"id": "plain", "when": {"operation": "do"}, "action": "block"},
        {
            "id": "all-fields",
            "when": {"operation": "copy_program"},
            "action": "block",
            "message": "{rule_id}|{class}|{tables}|{functions}|{environment}|{actor}|"
            "{actor_kind}|{estimated_rows}|{statement_count}|{{x}}",
        },
    )
    ctx = Context("prod", ALICE)
    d = decide(p, facts(DELETE_ALL), ctx)
    error = violation(d, "DELETE FROM orders", facts(DELETE_ALL))
    assert type(error) is PolicyViolation
    assert str(error) == (
        "DELETE on public.orders has no WHERE clause (rule delete-needs-where). "
        "Add a WHERE clause that selects the rows to delete."
    )
    assert error.sqlstate == "42501"
    assert (error.rule_id, error.statement) == ("delete-needs-where", "DELETE FROM orders")
    with pytest.raises(PolicyViolation, match="has no WHERE"):
        d.raise_for("DELETE FROM orders")
    d = decide(p, facts(DROP), ctx)
    with pytest.raises(ApprovalRequired) as info:
        d.raise_for("DROP TABLE orders")
    assert str(info.value).startswith("DROP on public.orders needs an approval in prod (rule ask).")
    assert pickle.loads(pickle.dumps(info.value)).rule_id == "ask"
    d = decide(p, facts(stmt("do", "opaque", opaque=True)), ctx)
    assert d.reason == "DO is not allowed in prod"
    d = decide(p, facts(stmt("copy_program", "function", tables_read={"t"})), ctx)
    assert d.reason == "all-fields|function|t|(none)|prod|alice|human|unknown|1|{x}"


def test_time_windows() -> None:
    window = {"days": ["mon-fri"], "hours": "22:00-06:00", "timezone": "Europe/Paris"}
    p = policy(
        {"id": "night", "when": {"operation": "drop", "time": window}, "action": "block"},
        {"id": "weekend", "when": {"operation": "delete", "time": {"days": ["sat", "sun"]}},
         "action": "block"},
        {"id": "office", "when": {"operation": "update",
                                  "time": {"hours": "09:00-18:00", "outside": True}},
         "action": "block"},
    )  # fmt: skip

    def at(s: StatementFacts, iso: str) -> str:
        return decide(p, facts(s), Context("dev", ALICE, datetime.fromisoformat(iso))).action

    # 2024-01-05 is a Friday. Paris is UTC+1 in winter.
    assert at(DROP, "2024-01-05T21:30:00+00:00") == "block"  # Fri 22:30 Paris
    assert at(DROP, "2024-01-06T04:00:00+00:00") == "block"  # Sat 05:00, window opened Fri
    assert at(DROP, "2024-01-06T21:30:00+00:00") == "allow"  # Sat 22:30: not a weekday
    assert at(DROP, "2024-01-08T04:59:00+00:00") == "allow"  # Mon 05:59, opened Sunday
    assert at(DROP, "2024-01-08T12:00:00+00:00") == "allow"
    assert at(DROP, "2024-01-05T21:30:00") == "block"  # naive means UTC
    assert at(DELETE_SOME, "2024-01-06T12:00:00+00:00") == "block"
    assert at(DELETE_SOME, "2024-01-05T12:00:00+00:00") == "allow"
    update = stmt("update", has_where=True)
    assert at(update, "2024-01-05T08:59:00+00:00") == "block"  # before office hours (UTC)
    assert at(update, "2024-01-05T09:00:00+00:00") == "allow"
    assert at(update, "2024-01-05T18:00:00+00:00") == "block"  # the end is exclusive
    d = decide(p, facts(DROP), Context("dev", ALICE, datetime(2024, 1, 8, 12, tzinfo=UTC)))
    assert d.timed
    assert d.cacheable
    assert not decide(p, facts(SELECT), Context("dev", ALICE)).timed


def test_estimated_rows_and_needs_estimate() -> None:
    p = policy(
        {"id": "no-drop", "when": {"operation": "drop"}, "action": "block"},
        {"id": "big", "when": {"class": "write", "estimated_rows": {"gt": 1000}},
         "action": "require_approval", "message": "about {estimated_rows} rows"},
    )  # fmt: skip
    ctx = Context("dev", ALICE)
    assert p.needs_estimate(facts(DELETE_SOME), ctx)
    assert not p.needs_estimate(facts(SELECT), ctx)
    assert not p.needs_estimate(facts(DROP), ctx)  # decided before the estimate rule
    assert p.needs_estimate(facts(SELECT, DELETE_SOME), ctx)
    assert not policy().needs_estimate(facts(DELETE_SOME), ctx)
    unknown = decide(p, facts(DELETE_SOME), ctx)
    assert (unknown.action, unknown.cacheable) == ("allow", False)
    small = decide(p, facts(DELETE_SOME), Context("dev", ALICE, estimated_rows=10))
    assert small.action == "allow"
    big = decide(p, facts(DELETE_SOME), Context("dev", ALICE, estimated_rows=123456))
    assert (big.action, big.reason, big.cacheable) == (
        "require_approval",
        "about 123,456 rows",
        False,
    )
    assert decide(p, facts(DROP), ctx).cacheable


def test_waived_rules_are_skipped() -> None:
    p = policy(
        {"id": "a", "when": {"operation": "drop"}, "action": "block"},
        {"id": "b", "when": {"operation": "drop"}, "action": "require_approval"},
    )
    assert decide(p, facts(DROP), Context("dev", ALICE, waived=frozenset({"a"}))).rule_id == "b"
    both = Context("dev", ALICE, waived=frozenset({"a", "b"}))
    assert decide(p, facts(DROP), both).action == "allow"


def test_decision_cache() -> None:
    p = policy(
        {"id": "no-drop", "when": {"operation": "drop"}, "action": "block"},
        {"id": "night", "when": {"operation": "update", "time": {"hours": "00:00-24:00"}},
         "action": "observe"},
        {"id": "big", "when": {"operation": "delete", "estimated_rows": {"gt": 1}},
         "action": "block"},
    )  # fmt: skip
    cache = DecisionCache(p, maxsize=2)
    ctx = Context("dev", ALICE)
    assert cache.get("DROP TABLE t", ctx) is None
    d = cache.decide("DROP TABLE t", facts(DROP), ctx)
    assert cache.get("DROP TABLE t", ctx) is d
    assert cache.get("DROP TABLE t", Context("dev", BOT)) is None
    assert cache.get("DROP TABLE t", Context("prod", ALICE)) is None
    assert cache.get("DROP TABLE t", Context("dev", ALICE, waived=frozenset({"x"}))) is None
    cache.decide("DELETE FROM t WHERE x", facts(DELETE_SOME), ctx)  # estimate: never cached
    assert len(cache) == 1
    timed = cache.decide("UPDATE t SET a = 1", facts(stmt("update", has_where=True)), ctx)
    assert timed.timed
    assert cache.get("UPDATE t SET a = 1", ctx) is timed  # kept until the minute ends
    explicit = Context("dev", ALICE, now=datetime(2024, 1, 1, tzinfo=UTC))
    cache.clear()
    cache.decide("UPDATE t SET a = 1", facts(stmt("update", has_where=True)), explicit)
    assert len(cache) == 0  # decided for a given time, not the clock: not cached
    for i in range(5):
        cache.decide(f"SELECT {i}", facts(SELECT), ctx)
    assert len(cache) == 2
    assert cache.get("SELECT 4", ctx) is not None
    assert cache.get("SELECT 0", ctx) is None


def test_actor_groups_memoized() -> None:
    p = policy()
    assert p.actor_groups(BOT) == {"bots"}
    assert p.actor_groups(ALICE) == {"admins"}
    assert p.actor_groups(Identity("human", "bob", email="alice")) == {"admins"}
    assert p.actor_groups(None) == frozenset()
    assert p.actor_groups(BOT) is p.actor_groups(Identity("agent", "claude"))
