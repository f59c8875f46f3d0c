"""The labelled corpus (tests/corpus/*.yaml) against both analyzer backends.

pglast must get every entry exactly right. sqlparse must be exactly right or,
where it cannot be sure, conservatively opaque: never less risky than the truth.
The per-backend agreement is printed at the end of the run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from governed_db.sql import CLASS_RANK, OPERATIONS, analyze, available_backends
from governed_db.sql.facts import Facts, StatementFacts

CORPUS = Path(__file__).parent / "corpus"
FIELDS = (
    "operation",
    "class",
    "tables_read",
    "tables_written",
    "has_where",
    "where_is_trivial",
    "has_limit",
    "opaque",
    "functions",
    "effects",
    "row_locks",
    "lock_waits",
    "explain_analyze",
    "prepares",
    "executes",
    "deallocates",
    "settings",
    "objects",
    "alter_actions",
    "copy_endpoint",
)
SETS = (
    "tables_read",
    "tables_written",
    "functions",
    "row_locks",
    "lock_waits",
    "settings",
    "objects",
    "alter_actions",
)
DECISIONS = ("allow", "block", "require_approval", "observe")
SEVERITY = {"allow": 0, "observe": 0, "require_approval": 1, "block": 2}


def _load() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for path in sorted(CORPUS.glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text(encoding="utf-8")):
            entry.setdefault("env", "prod")
            entry["source"] = path.stem
            entries.append(entry)
    return entries


ENTRIES = _load()
IDS = [e["id"] for e in ENTRIES]


def expected_statements(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-statement labels with defaults filled in."""
    raw = entry.get("statements") or [{k: entry[k] for k in FIELDS if k in entry}]
    out = []
    for label in raw:
        full = {
            "operation": label["operation"],
            "class": label["class"],
            "has_where": label.get("has_where", False),
            "where_is_trivial": label.get("where_is_trivial", False),
            "has_limit": label.get("has_limit", False),
            "opaque": label.get("opaque", False),
            "effects": frozenset(label.get("effects", [label["operation"]])),
            "explain_analyze": label.get("explain_analyze", False),
            "prepares": label.get("prepares"),
            "executes": label.get("executes"),
            "deallocates": label.get("deallocates"),
            "copy_endpoint": label.get("copy_endpoint"),
        }
        full.update({key: frozenset(label.get(key, [])) for key in SETS})
        out.append(full)
    return out


def observed(s: StatementFacts) -> dict[str, Any]:
    out = {key: getattr(s, key) for key in FIELDS if key != "class"}
    out["class"] = s.statement_class
    return out


def mismatches(entry: dict[str, Any], facts: Facts) -> list[str]:
    want = expected_statements(entry)
    if len(want) != facts.statement_count:
        return [f"statement count {facts.statement_count} != {len(want)}"]
    out = []
    for n, (w, s) in enumerate(zip(want, facts.statements, strict=True)):
        got = observed(s)
        out += [f"#{n} {k}: got {got[k]!r}, want {w[k]!r}" for k in FIELDS if got[k] != w[k]]
    return out


def conservative(entry: dict[str, Any], facts: Facts) -> bool:
    """Every statement is exactly right or opaque (the fallback's way of saying 'not sure')."""
    want = expected_statements(entry)
    if len(want) != facts.statement_count:
        return False
    return all(
        observed(s) == w or (s.opaque and s.statement_class == "opaque")
        for w, s in zip(want, facts.statements, strict=True)
    )


CODE = {"function", "procedure", "routine", "aggregate", "rule", "trigger", "event_trigger",
        "operator", "cast", "language", "transform", "view", "materialized_view",
        "extension"}  # fmt: skip
DESTRUCTIVE = {"drop_column", "alter_type", "alter_type_using", "set_expression", "set_unlogged",
               "drop_constraint", "disable_trigger", "disable_rule", "enable_row_security",
               "disable_row_security", "force_row_security", "no_force_row_security",
               "detach_partition", "no_inherit", "rename", "set_schema"}  # fmt: skip
SETTINGS = {"search_path", "session_replication_role", "transform_null_equals",
            "standard_conforming_strings", "role", "session_authorization", "*"}  # fmt: skip


def rule_decision(labels: list[dict[str, Any]]) -> str:
    """The decision the labels imply under policies.example.yaml (env prod, human actor)."""
    worst = "allow"
    for s in labels:
        effects = s["effects"]
        if (
            effects & {"drop", "truncate"}
            or ("delete" in effects and not s["has_where"])
            or ("update" in effects and not s["has_where"])
            or (effects & {"delete", "update"} and s["where_is_trivial"])
        ):
            verdict = "block"
        elif (
            (effects & {"create", "alter"} and s["objects"] & CODE)
            or ("table" in s["objects"] and s["alter_actions"] & DESTRUCTIVE)
            or s["settings"] & SETTINGS
            or "copy_program" in effects
            or s["copy_endpoint"] == "file"
            or s["functions"]
            or s["opaque"]
        ):
            verdict = "require_approval"
        else:
            verdict = "allow"
        if SEVERITY[verdict] > SEVERITY[worst]:
            worst = verdict
    return worst


def test_corpus_is_big_and_well_formed() -> None:
    assert len(ENTRIES) >= 150
    assert len(set(IDS)) == len(IDS), "duplicate ids"
    for entry in ENTRIES:
        assert entry["decision"] in DECISIONS, entry["id"]
        for label in expected_statements(entry):
            assert label["operation"] in OPERATIONS, entry["id"]
            assert label["class"] in CLASS_RANK, entry["id"]


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_labelled_decision_follows_the_rules(entry: dict[str, Any]) -> None:
    if entry["env"] == "prod":
        assert rule_decision(expected_statements(entry)) == entry["decision"]


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_pglast_matches_labels(entry: dict[str, Any]) -> None:
    if "pglast" not in available_backends():
        pytest.skip("pglast not installed")
    facts = analyze(entry["sql"], backend="pglast")
    assert mismatches(entry, facts) == []


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_sqlparse_is_right_or_conservatively_opaque(entry: dict[str, Any]) -> None:
    facts = analyze(entry["sql"], backend="sqlparse")
    assert conservative(entry, facts), mismatches(entry, facts)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_backends_share_text_and_fingerprints(entry: dict[str, Any]) -> None:
    if "pglast" not in available_backends():
        pytest.skip("pglast not installed")
    a = analyze(entry["sql"], backend="pglast")
    b = analyze(entry["sql"], backend="sqlparse")
    assert a.fingerprint == b.fingerprint
    assert [(s.text, s.normalized, s.fingerprint) for s in a.statements] == [
        (s.text, s.normalized, s.fingerprint) for s in b.statements
    ]


def agreement() -> dict[str, tuple[int, int]]:
    """backend -> (entries fully right, entries right or conservatively opaque)."""
    out = {}
    for backend in available_backends():
        exact = safe = 0
        for entry in ENTRIES:
            facts = analyze(entry["sql"], backend=backend)
            exact += not mismatches(entry, facts)
            safe += conservative(entry, facts)
        out[backend] = (exact, safe)
    return out


def test_agreement_summary(
    capsys: pytest.CaptureFixture[str], record_property: Callable[[str, object], None]
) -> None:
    result = agreement()
    lines = [f"corpus agreement ({len(ENTRIES)} entries):"]
    for backend, (exact, safe) in result.items():
        lines.append(
            f"  {backend:8} exact {exact}/{len(ENTRIES)}, exact-or-opaque {safe}/{len(ENTRIES)}"
        )
        record_property(f"{backend}_exact", exact)
        record_property(f"{backend}_exact_or_opaque", safe)
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    if "pglast" in result:
        assert result["pglast"][0] == len(ENTRIES)
    assert result["sqlparse"][1] == len(ENTRIES)
