"""The mask plan: rule order, reveal, scopes, JSON and arrays, both ways of applying it."""

from __future__ import annotations

from typing import Any

import pytest

from governed_db.errors import PolicyError
from governed_db.masking import (
    BASELINE_MASKING,
    ColumnIdentity,
    MaskedValues,
    MaskRule,
    MaskRules,
    baseline_rules,
)
from governed_db.masking.scan import UNSCANNED

COLS = [
    ColumnIdentity("id", "public.customers.id", 23),
    ColumnIdentity("email", "public.customers.email", 25),
    ColumnIdentity("card", "public.customers.card_number", 25),
    ColumnIdentity("api_token", "public.customers.api_token", 25),
    ColumnIdentity("notes", "public.customers.notes", 25),
    ColumnIdentity("doc", None, 3802),
]
ROW = (
    1,
    "john@example.com",
    "4111111111111111",
    "tok_live_abc",
    "Call +1 415-555-2671 or write to jane@corp.io.",
    {"password": "hunter2", "contact": ["ssn 536-90-4399"], "n": 4111111111111111},
)


def baseline() -> MaskRules:
    return MaskRules(baseline_rules())


def test_the_issue_example() -> None:
    plan = baseline().plan(COLS[:4])
    assert plan.apply(ROW[:4]) == (1, "j***@example.com", "************1111", "[REDACTED:secret]")


def test_baseline_plan_actions() -> None:
    plan = baseline().plan(COLS)
    actions = [(c.action, c.rule_id) for c in plan.columns]
    assert actions[:4] == [
        ("untouched", None),
        ("mask", "baseline-email-columns"),
        ("mask", "baseline-card-columns"),
        ("mask", "baseline-secret-columns"),
    ]
    assert actions[4][0] == actions[5][0] == "scan"
    assert plan.needs_masking
    assert plan.describe()[5] == {
        "name": "doc",
        "source": "computed",
        "action": "scan",
        "rule": "baseline-secrets-detected",
    }


def test_row_at_a_time_and_batch_agree() -> None:
    plan = baseline().plan(COLS)
    expected = (
        1,
        "j***@example.com",
        "************1111",
        "[REDACTED:secret]",
        "Call *************71 or write to j***@corp.io.",
        {
            "password": "[REDACTED:secret]",
            "contact": ["ssn [REDACTED:ssn]"],
            "n": "************1111",
        },
    )
    assert plan.start().apply(ROW) == expected
    assert plan.start().wrap(tuple)(list(ROW)) == expected
    assert plan.start().apply_rows([ROW, ROW]) == [expected, expected]
    assert ROW[5]["password"] == "hunter2"  # the input is never changed


def test_counts_per_column_rule_and_method() -> None:
    plan = baseline().plan(COLS)
    masker = plan.start()
    masker.apply_rows([ROW, ROW, (2, None, None, None, "nothing", None)])
    masker.apply(ROW)
    counts = {(c.column, c.rule_id, c.method): c.values for c in masker.counts()}
    assert counts[("email", "baseline-email-columns", "email")] == 3
    assert counts[("notes", "baseline-phone-detected", "partial")] == 3
    assert counts[("notes", "baseline-email-detected", "email")] == 3
    assert counts[("doc", "baseline-secret-columns", "redact")] == 3
    assert counts[("doc", "baseline-card-detected", "last4")] == 3
    assert all(c.source != "hunter2" for c in masker.counts())


def _as_dict(counts: Any) -> dict[tuple[str, str, str], int]:
    return {(c.column, c.rule_id, c.method): c.values for c in counts}


@pytest.mark.parametrize(
    "steps",
    [
        ["plain"],  # the row maker, no detector firing: only per-column counters move
        ["plain", "plain"],
        ["row"],  # the row maker with detector hits
        ["rows"],  # the bulk path alone
        ["row", "rows", "row"],
        ["rows", "row", "apply"],
        [],  # nothing since the mark
    ],
)
def test_counts_since_a_mark_are_the_difference(steps: list[str]) -> None:
    plan = baseline().plan(COLS)
    masker = plan.start()
    maker = masker.wrap(tuple)
    masker.apply_rows([ROW])  # before the mark: never in what follows
    maker(list(ROW))
    before = _as_dict(masker.counts())
    mark = masker.mark()
    for step in steps:
        if step == "plain":
            maker([3, "ann@example.org", "4111111111111111", "tok", "nothing here", None])
        elif step == "row":
            maker(list(ROW))
        elif step == "rows":
            masker.apply_rows([ROW, (2, None, None, None, "nothing", None)])
        else:
            masker.apply(ROW)
    since = _as_dict(masker.counts(mark))
    total = _as_dict(masker.counts())
    expected = {k: n - before.get(k, 0) for k, n in total.items() if n != before.get(k, 0)}
    assert since == expected
    assert [c.values for c in masker.counts(mark)] == [since[k] for k in since]  # no zeros


def test_untouched_plan_returns_the_row_maker_itself() -> None:
    plan = baseline().plan([ColumnIdentity("id", "public.t.id", 23), ColumnIdentity("n", None, 20)])
    assert not plan.needs_masking
    assert plan.start().wrap(tuple) is tuple
    rows = [(1, 2)]
    assert plan.start().apply_rows(rows) == rows


def test_first_matching_column_rule_wins_and_reveal_is_explicit() -> None:
    rules = MaskRules(
        [
            MaskRule(id="support-sees-email", action="reveal", columns=["customers.email"]),
            *baseline_rules(),
        ]
    )
    plan = rules.plan(COLS[:2])
    assert plan.columns[1].action == "reveal"
    assert plan.apply(ROW[:2]) == ROW[:2]
    assert plan.describe()[1]["rule"] == "support-sees-email"
    other_schema = rules.plan([ColumnIdentity("email", "crm.customers.email", 25)])
    assert other_schema.columns[0].action == "reveal"
    not_it = rules.plan([ColumnIdentity("email", "crm.leads.email", 25)])
    assert not_it.columns[0].action == "mask"


def test_column_names_match_source_or_result_name() -> None:
    rules = MaskRules([MaskRule(id="ssn", column_names=["ssn"], method="redact", category="ssn")])
    aliased = rules.plan([ColumnIdentity("x", "public.people.ssn", 25)])
    renamed = rules.plan([ColumnIdentity("ssn", None, 25)])
    assert aliased.apply(("1",)) == renamed.apply(("1",)) == ("[REDACTED:ssn]",)


def test_detector_scope_and_reveal() -> None:
    rules = MaskRules(
        [
            MaskRule(id="no-phones", action="reveal", detectors=["phone"]),
            MaskRule(id="computed-only", detectors=["pii"], scope="computed"),
        ]
    )
    text = "mail a@b.co or call +1 415-555-2671"
    sourced = rules.plan([ColumnIdentity("notes", "public.t.notes", 25)])
    computed = rules.plan([ColumnIdentity("concat", None, 25)])
    assert sourced.apply((text,)) == (text,)
    assert computed.apply((text,)) == ("mail [REDACTED:email] or call +1 415-555-2671",)


def test_detector_rule_limited_to_columns() -> None:
    rules = MaskRules([MaskRule(id="notes", column_names=["notes"], detectors=["email"])])
    plan = rules.plan([ColumnIdentity("notes", None, 25), ColumnIdentity("other", None, 25)])
    assert plan.apply(("a@b.co", "a@b.co")) == ("[REDACTED:email]", "a@b.co")


def test_json_text_keeps_its_structure_and_key_rules_apply() -> None:
    plan = baseline().plan([ColumnIdentity("j", None, 25)])
    text = '{"user": {"email": "x", "name": "Ann", "note": "mail a@b.co"}, "tags": ["ok"]}'
    (out,) = plan.apply((text,))
    assert out == (
        '{"user": {"email": "***", "name": "Ann", "note": "mail a***@b.co"}, "tags": ["ok"]}'
    )
    escaped = '{"note": "mail a\\u0040b.co"}'
    assert plan.apply((escaped,)) == ('{"note": "mail a***@b.co"}',)
    assert plan.apply(('{"broken": "a@b.co"',)) == ('{"broken": "a***@b.co"',)


def test_arrays_and_tuples_keep_their_shape() -> None:
    plan = baseline().plan([ColumnIdentity("a", None, 1009), ColumnIdentity("u", None, None)])
    row = (["a@b.co", None, ["c@d.io"]], ("x", "536-90-4399"))
    assert plan.apply(row) == (["a***@b.co", None, ["c***@d.io"]], ("x", "[REDACTED:ssn]"))


def test_untyped_columns_take_any_value() -> None:
    plan = baseline().plan([ColumnIdentity("v", None, None)])
    values: list[Any] = [None, 5, 2.5, b"a@b.co", "plain", "a@b.co", [], {}]
    out = [r[0] for r in plan.start().apply_rows([(v,) for v in values])]
    assert out == [None, 5, 2.5, b"a***@b.co", "plain", "a***@b.co", [], {}]


def test_nul_in_untrusted_text_does_not_shift_results() -> None:
    plan = baseline().plan([ColumnIdentity("v", None, None)])
    rows = [("a\x00b",), ("a@b.co",), ({"k": "x\x00y", "m": "c@d.io"},), ("z",)]
    out = [r[0] for r in plan.start().apply_rows(rows)]
    assert out == ["a\x00b", "a***@b.co", {"k": "x\x00y", "m": "c***@d.io"}, "z"]


def test_pathological_values_are_masked_whole() -> None:
    rules = MaskRules(baseline_rules(), budget=0.01, max_chars=200_000)
    plan = rules.plan([ColumnIdentity("v", None, 25)])
    digits = "4111 " * 30_000  # a trigger everywhere, a Luhn check at every position
    ats = "a@b." * 40_000
    huge = "x" * 300_000 + " a@b.co"
    clean = "x" * 300_000  # no trigger anywhere: provably clean, however long
    out = plan.start().apply_rows([(digits,), (ats,), (huge,), (clean,), ("fine",)])
    assert [r[0] for r in out] == [UNSCANNED, UNSCANNED, UNSCANNED, clean, "fine"]
    assert plan.apply((digits,)) == (UNSCANNED,)


def test_memory_learns_what_was_emitted() -> None:
    memory = MaskedValues()
    plan = baseline().plan(COLS)
    plan.start(memory).apply_rows([ROW])
    plan.start(memory).apply(ROW)
    assert "j***@example.com" in memory
    assert "Call *************71 or write to j***@corp.io." in memory
    assert memory.find_in_params({"note": "please write to j***@corp.io."}) == "j***@corp.io"
    assert "hunter2" not in memory


def test_plans_are_cached_per_shape() -> None:
    rules = baseline()
    assert rules.plan(COLS) is rules.plan(list(COLS))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"id": "r", "columns": ["email"]}, "table.column"),
        ({"id": "r"}, "matches nothing"),
        ({"id": "r", "column_names": ["x"], "action": "hide"}, "mask or reveal"),
        ({"id": "r", "detectors": ["emial"]}, "did you mean 'email'"),
        ({"id": "r", "column_names": ["x"], "method": "partial", "options": {"x": 1}}, "option"),
        ({"id": "r", "detectors": ["pii"], "scope": "some"}, "scope"),
        ({"id": "r", "colums": ["a.b"]}, "unknown keys"),
    ],
)
def test_bad_rules_fail_at_load(data: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        MaskRules([MaskRule.from_dict(data)])


def test_baseline_data_round_trips() -> None:
    rules = baseline_rules()
    assert [r.id for r in rules] == [r["id"] for r in BASELINE_MASKING["rules"]]
    assert all(r.action == "mask" for r in rules)


def test_row_maker_per_result_counts_and_no_copy_when_nothing_fires() -> None:
    plan = baseline().plan([ColumnIdentity("id", "public.t.id", 23), ColumnIdentity("n", None, 25)])
    first, second = plan.start(), plan.start()
    make1, make2 = first.wrap(tuple), second.wrap(list)
    clean = (1, "nothing to see")
    assert make1(clean) is clean  # psycopg's tuple is passed on as it is
    assert make2((2, "mail a@b.co")) == [2, "mail a***@b.co"]
    assert first.counts() == []
    assert [c.values for c in second.counts()] == [1]


def test_row_maker_failure_names_the_column() -> None:
    from governed_db.masking import MaskingError, register, unregister

    register("explode", lambda v: 1 / 0, replace=True)
    try:
        rules = MaskRules([MaskRule(id="boom", column_names=["b"], method="explode")])
        plan = rules.plan([ColumnIdentity("a", None, 25), ColumnIdentity("b", None, 25)])
        make = plan.start(MaskedValues()).wrap(tuple)
        assert make(("x", None)) == ("x", None)
        with pytest.raises(MaskingError, match="column 'b'") as info:
            make(("x", "secret"))
        assert "ZeroDivisionError" in str(info.value)
    finally:
        unregister("explode")
