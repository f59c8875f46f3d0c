"""Every labelled corpus entry, analyzed and decided under policies.example.yaml.

The sql engineer labels tests/corpus/*.yaml with the decision each statement
gets under the example policy for a human in ``env`` (prod unless given).
pglast must give exactly that decision. sqlparse must too, except where it
fell back to opaque: then its decision must still refuse (never more lenient).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from governed_db.identity import Identity
from governed_db.policy import ACTIONS, Context, Policy, decide, load_policy
from governed_db.sql import analyze, available_backends

ROOT = Path(__file__).parent.parent
CORPUS = Path(__file__).parent / "corpus"
HUMAN = Identity("human", "corpus-reviewer", email="reviewer@example.com")
RANK = {a: i for i, a in enumerate(ACTIONS)}


def _entries() -> list[dict[str, Any]]:
    if not CORPUS.is_dir():
        return []
    entries = []
    for path in sorted(CORPUS.glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            if "decision" in entry:
                entries.append({"env": "prod", **entry})
    return entries


ENTRIES = _entries()
AGREEMENT: Counter[str] = Counter()


@pytest.fixture(scope="module")
def example() -> Policy:
    return load_policy(ROOT / "policies.example.yaml")


@pytest.fixture(scope="module", autouse=True)
def _report_agreement() -> Iterator[None]:
    yield
    if AGREEMENT:
        print("\npolicy corpus agreement:", dict(sorted(AGREEMENT.items())))


def test_corpus_is_there() -> None:
    if not ENTRIES:
        pytest.skip("tests/corpus/ has no entries with a 'decision' label yet")
    assert len(ENTRIES) >= 50
    assert {e["decision"] for e in ENTRIES} <= set(ACTIONS)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["id"] for e in ENTRIES])
def test_pglast_decision_matches_label(entry: dict[str, Any], example: Policy) -> None:
    if "pglast" not in available_backends():
        pytest.skip("pglast not installed")
    context = Context(entry["env"], HUMAN)
    decision = decide(example, analyze(entry["sql"], backend="pglast"), context)
    AGREEMENT["pglast agree" if decision.action == entry["decision"] else "pglast differ"] += 1
    assert decision.action == entry["decision"], decision


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["id"] for e in ENTRIES])
def test_sqlparse_decision_matches_or_is_stricter(entry: dict[str, Any], example: Policy) -> None:
    facts = analyze(entry["sql"], backend="sqlparse")
    decision = decide(example, facts, Context(entry["env"], HUMAN))
    if decision.action == entry["decision"]:
        AGREEMENT["sqlparse agree"] += 1
        return
    AGREEMENT["sqlparse stricter (opaque)"] += 1
    assert facts.opaque, f"sqlparse decided {decision} without falling back to opaque"
    assert RANK[decision.action] >= RANK["require_approval"] or entry["env"] != "prod", decision
