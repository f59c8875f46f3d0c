"""The governor's session rules over hand-made facts (no analyzer involved)."""

from __future__ import annotations

from governed_db.governor.session_rules import apply, dynamic, hard_rule, with_prepared
from governed_db.sql import Facts, StatementFacts


def _s(operation: str = "select", **kw: object) -> StatementFacts:
    cls = {"select": "read", "delete": "write", "execute": "opaque"}.get(operation, "misc")
    return StatementFacts(operation=operation, statement_class=cls, **kw)  # type: ignore[arg-type]


def _facts(*statements: StatementFacts) -> Facts:
    return Facts(statements=statements, backend="test", text="t")


def test_execute_is_replaced_by_what_was_prepared_earlier_in_the_same_call() -> None:
    prep = _s("delete", prepares="d", tables_written=frozenset({"public.orders"}))
    run = _s("execute", executes="d", opaque=True)
    facts, changes = with_prepared(_facts(prep, run), {})
    assert [s.operation for s in facts.statements] == ["delete", "delete"]
    assert dynamic(_facts(prep, run))
    prepared: dict[str, object] = {}
    apply(prepared, changes, succeeded=True)
    assert list(prepared) == ["d"]


def test_unknown_names_stay_opaque_and_deallocate_forgets() -> None:
    known = {"x": (_s("select"),)}
    facts, changes = with_prepared(_facts(_s("execute", executes="y", opaque=True)), known)
    assert facts.statements[0].opaque
    _, changes = with_prepared(_facts(_s("deallocate", deallocates="x")), known)
    apply(known, changes, succeeded=True)
    assert known == {}


def test_a_failed_call_keeps_every_candidate_and_forgets_nothing() -> None:
    first, second = _s("select"), _s("delete", prepares="x")
    prepared: dict[str, object] = {"x": (first,)}
    _, changes = with_prepared(_facts(second, _s("deallocate", deallocates="x")), prepared)
    apply(prepared, changes, succeeded=False)
    assert prepared["x"] == (first, second)
    facts, _ = with_prepared(_facts(_s("execute", executes="x", opaque=True)), prepared)
    assert [s.operation for s in facts.statements] == ["select", "delete"]


def test_prepare_then_deallocate_in_one_call_leaves_nothing() -> None:
    prepared: dict[str, object] = {}
    _, changes = with_prepared(
        _facts(_s("select", prepares="x"), _s("deallocate", deallocates="x")), prepared
    )
    apply(prepared, changes, succeeded=True)
    assert prepared == {}


def test_hard_rules() -> None:
    for field in ("prepares", "executes", "deallocates"):
        decision = hard_rule(_facts(_s(**{field: "_pg3_0"})), "dev")
        assert decision is not None
        assert decision.rule_id == "reserved-prepared-name"
        assert decision.refuses
    for name in ("standard_conforming_strings", "client_encoding", "*"):
        decision = hard_rule(_facts(_s("set", settings=frozenset({name}))), "prod")
        assert decision is not None
        assert decision.rule_id == "session-setting-change"
    assert hard_rule(_facts(_s("set", settings=frozenset({"work_mem"}))), "prod") is None
    assert hard_rule(_facts(_s(prepares="mine")), "prod") is None
