"""Bad ``masking:`` sections: a PolicyError at FILE:LINE naming the key, never a fallback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import governed_db.masking
from governed_db.errors import PolicyError
from governed_db.policy import load_policy
from governed_db.policy.masking_section import MASKING_CONDITIONS
from governed_db.policy.rules import CONDITION_KEYS, parse_conditions
from governed_db.policy.schema import Reader
from governed_db.policy.yaml_lines import load_yaml

HEAD = "version: 1\nguardrails: []\n"
# line 3: masking:, 4: rules:, 5: "- id: r", 6 and on: the rule's other keys
RULE = HEAD + "masking:\n  rules:\n    - id: r\n"
NAMES = RULE + "      column_names: [x]\n"  # line 6
R0 = "masking.rules[0]"

CASES = [
    # (file text, line, key or None, message fragment)
    # methods and options
    (
        NAMES + "      method: hsh\n",
        7, f"{R0}.method", "unknown masking method 'hsh' (did you mean 'hash'?)",
    ),
    (NAMES + "      method: 3\n", 7, f"{R0}.method", "expected a string"),
    (
        NAMES + "      method: partial\n      options:\n        keep_frist: 1\n",
        9, f"{R0}.options.keep_frist", "has no option 'keep_frist' (did you mean 'keep_first'?)",
    ),
    (
        NAMES + "      method: email\n      options: {keep_first: 1}\n",
        8, f"{R0}.options.keep_first", "'email' has no option 'keep_first'",
    ),
    (
        NAMES + "      method: partial\n      options: {keep_last: -1}\n",
        8, f"{R0}.options.keep_last", "must be a non-negative int",
    ),
    (
        NAMES + "      method: partial\n      options: {keep_last: '2'}\n",
        8, f"{R0}.options.keep_last", "must be a non-negative int",
    ),
    (
        NAMES + "      method: hash\n      options: {length: 4}\n",
        8, f"{R0}.options.length", "length must be between 8 and 64",
    ),
    (
        NAMES + "      method: hash\n      options:\n        prefix: {a: 1}\n",
        9, f"{R0}.options.prefix", "an option value must be a string, number or boolean",
    ),
    (
        NAMES + "      options: {keep_first: 1}\n",
        7, f"{R0}.options", "options belong to a method",
    ),
    (NAMES + "      method: partial\n      options: 5\n", 8, f"{R0}.options", "expected a mapping"),
    # mask and reveal conflicts
    (
        NAMES + "      action: reveal\n      method: hash\n",
        8, f"{R0}.method", "a reveal rule shows values as they are: 'method'",
    ),
    (
        NAMES + "      action: reveal\n      options: {keep_first: 1}\n",
        8, f"{R0}.options", "'options' belongs to a mask rule",
    ),
    (
        NAMES + "      action: reveal\n      category: email\n",
        8, f"{R0}.category", "'category' belongs to a mask rule",
    ),
    (
        NAMES + "      action: hide\n",
        7, f"{R0}.action", "unknown masking action 'hide'; expected one of: mask, reveal",
    ),
    # detectors
    (
        RULE + "      detectors: [emial]\n",
        6, f"{R0}.detectors[0]", "unknown detector 'emial' (did you mean 'email'?)",
    ),
    (
        RULE + "      detectors:\n        - email\n        - secret\n",
        8, f"{R0}.detectors[1]", "unknown detector 'secret' (did you mean 'secrets'?)",
    ),
    (RULE + "      detectors: []\n", 6, f"{R0}.detectors", "at least one detector"),
    (
        RULE + "      detectors: [email]\n      category: mail\n",
        7, f"{R0}.category", "'category' applies to rules that mask whole columns",
    ),
    (
        RULE + "      detectors: [email]\n      scope: some\n",
        7, f"{R0}.scope", "unknown scope 'some'; expected one of: all, computed",
    ),
    (
        NAMES + "      scope: computed\n",
        7, f"{R0}.scope", "'scope' says which columns detectors scan; this rule has none",
    ),
    (
        RULE + "      columns: [customers.notes]\n      detectors: [email]\n"
        "      scope: computed\n",
        8, f"{R0}.scope", "could never apply",
    ),
    # column globs
    (
        RULE + "      columns: ['customers.[ab']\n",
        6, f"{R0}.columns[0]", "bad glob 'customers.[ab': unbalanced",
    ),
    (RULE + "      columns: ['a b.c']\n", 6, f"{R0}.columns[0]", "without spaces"),
    (RULE + "      columns: []\n", 6, f"{R0}.columns", "at least one pattern"),
    (
        RULE + "      columns: [email]\n",
        6, f"{R0}.columns[0]", "bad column glob 'email': write table.column",
    ),
    (RULE + "      columns: [a.b.c.d]\n", 6, f"{R0}.columns[0]", "bad column glob 'a.b.c.d'"),
    (RULE + "      columns: ['customers.']\n", 6, f"{R0}.columns[0]", "bad column glob"),
    (
        RULE + "      column_names: [customers.email]\n",
        6, f"{R0}.column_names[0]", "use 'columns' for table.column",
    ),
    (
        RULE + "      column_names: ['*token*]']\n",
        6, f"{R0}.column_names[0]", "unbalanced",
    ),
    (
        RULE + "      columns: [customers.email]\n      column_names: [email]\n",
        7, f"{R0}.column_names", "not both: write two rules",
    ),
    (
        RULE + "      method: redact\n",
        5, R0, "needs one of 'columns', 'column_names' or 'detectors'",
    ),
    # keys, ids
    (
        RULE + "      colums: [customers.email]\n",
        6, f"{R0}.colums", "unknown key 'colums' (did you mean 'columns'?)",
    ),
    (HEAD + "masking:\n  rules:\n    - columns: [a.b]\n", 5, R0, "missing required key 'id'"),
    (HEAD + "masking:\n  rules:\n    - id: 'a b'\n", 5, f"{R0}.id", "bad rule id 'a b'"),
    (
        NAMES + "    - id: r\n      column_names: [y]\n",
        7, "masking.rules[1]", "duplicate rule id 'r' (first at line 5)",
    ),
    (
        HEAD + "masking:\n  rules:\n    - id: baseline-email-columns\n      column_names: [x]\n",
        5, R0, "'baseline-email-columns' is a baseline rule's id",
    ),
    (
        NAMES + "      category: Email Address\n",
        7, f"{R0}.category", "bad category 'Email Address'",
    ),
    # when
    (
        NAMES + "      when: {operation: select}\n",
        7, f"{R0}.when.operation", "'operation' is a condition on statements",
    ),
    (
        NAMES + "      when:\n        environment: dev\n        tables: [customers]\n",
        9, f"{R0}.when.tables", "'tables' is a condition on statements",
    ),
    (
        NAMES + "      when: {estimated_rows: {gt: 5}}\n",
        7, f"{R0}.when.estimated_rows", "a masking rule applies to fetched columns",
    ),
    (
        NAMES + "      when: {enviroment: dev}\n",
        7, f"{R0}.when.enviroment", "unknown key 'enviroment' (did you mean 'environment'?)",
    ),
    (
        NAMES + "      when: {environment: prdo}\n",
        7, f"{R0}.when.environment", "unknown environment 'prdo'",
    ),
    (
        NAMES + "      when: {actors: [robots]}\n",
        7, f"{R0}.when.actors[0]", "unknown actor group 'robots'",
    ),
    (
        NAMES + "      when: {actor_kind: robot}\n",
        7, f"{R0}.when.actor_kind", "unknown actor kind 'robot'",
    ),
    (
        NAMES + "      when:\n        time: {hours: '9-17'}\n",
        8, f"{R0}.when.time.hours", "bad time range '9-17'",
    ),
    (NAMES + "      when: prod\n", 7, f"{R0}.when", "expected a mapping"),
    # the section
    (HEAD + "masking: false\n", 3, "masking", "write 'masking: {enabled: false}'"),
    (HEAD + "masking: [a]\n", 3, "masking", "expected a mapping"),
    (
        HEAD + "masking:\n  rule: []\n",
        4, "masking.rule", "unknown key 'rule' (did you mean 'rules'?)",
    ),
    (HEAD + "masking:\n  rules: {id: a}\n", 4, "masking.rules", "expected a list of rules"),
    (
        HEAD + "masking:\n  enabled: false\n  rules:\n    - id: a\n      column_names: [x]\n",
        5, "masking.rules", "masking is off (enabled: false)",
    ),
    (HEAD + "masking:\n  enabled: sometimes\n", 4, "masking.enabled", "expected a boolean"),
    (HEAD + "masking:\n  baseline: maybe\n", 4, "masking.baseline", "expected a boolean"),
    (
        HEAD + "masking:\n  phone_regions: [US, XX]\n",
        4, "masking.phone_regions[1]", "unknown phone region 'XX'",
    ),
    (HEAD + "masking:\n  phone_regions: []\n", 4, "masking.phone_regions", "at least one region"),
    (HEAD + "masking:\n  limits: {max_chars: 0}\n", 4, "masking.limits.max_chars", "must be > 0"),
    (
        HEAD + "masking:\n  limits: {time_budget: 5}\n",
        4, "masking.limits.time_budget", "did you mean 'time_budget_ms'",
    ),
    (
        HEAD + "masking:\n  limits: {time_budget_ms: 1.5}\n",
        4, "masking.limits.time_budget_ms", "expected an integer",
    ),
    (HEAD + "masking:\n  detectors: false\n", 4, "masking.detectors", "{enabled: false}"),
    (
        HEAD + "masking:\n  detectors: {scope: computd}\n",
        4, "masking.detectors.scope", "unknown scope 'computd' (did you mean 'computed'?)",
    ),
    (
        HEAD + "masking:\n  detectors: {enabled: false, scope: computed}\n",
        4, "masking.detectors.scope", "'scope' has no effect",
    ),
    (
        HEAD + "masking:\n  detectors: {enabled: false}\n  rules:\n    - id: a\n"
        "      detectors: [email]\n",
        7, "masking.rules[0].detectors", "detectors are turned off for this policy",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "key", "fragment"), CASES)
def test_bad_masking_section(
    tmp_path: Path, text: str, line: int, key: str | None, fragment: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    err = info.value
    assert fragment in str(err)
    assert str(err).startswith(f"{path}:{line}: ")
    assert (err.path, err.line, err.key) == (str(path), line, key)


def test_every_case_is_a_masking_error() -> None:
    """Each bad text differs from a good one only in its masking section."""
    assert all("masking:" in text for text, *_ in CASES)


def test_a_mapping_policy_fails_with_the_key(tmp_path: Path) -> None:
    source: dict[str, Any] = {
        "version": 1,
        "guardrails": [],
        "masking": {"rules": [{"id": "a", "column_names": ["x"], "method": "hsh"}]},
    }
    with pytest.raises(PolicyError, match="did you mean 'hash'") as info:
        load_policy(source)
    assert info.value.key == "masking.rules[0].method"


@pytest.fixture
def initials() -> Iterator[str]:
    def mask(value: object, sep: str = ".", *, upper: bool = False) -> str:
        text = sep.join(w[0] for w in str(value).split()) + sep
        return text.upper() if upper else text

    governed_db.masking.register("initials_for_test", mask)
    yield "initials_for_test"
    governed_db.masking.unregister("initials_for_test")


def test_a_registered_method_takes_only_its_own_options(tmp_path: Path, initials: str) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(NAMES + f"      method: {initials}\n      options: {{sep: '-', upper: true}}\n")
    rule = load_policy(good).masking.rules[0].rule
    assert (rule.method, dict(rule.options)) == (initials, {"sep": "-", "upper": True})

    bad = tmp_path / "bad.yaml"
    bad.write_text(NAMES + f"      method: {initials}\n      options:\n        sepp: '-'\n")
    with pytest.raises(PolicyError) as info:
        load_policy(bad)
    assert str(info.value).startswith(f"{bad}:9: {R0}.options.sepp: ")
    assert f"masking method {initials!r} takes no option 'sepp'" in str(info.value)


def test_an_unregistered_method_fails_the_load(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(NAMES + "      method: initials_for_test\n")
    with pytest.raises(PolicyError, match="register") as info:
        load_policy(path)
    assert isinstance(info.value, governed_db.masking.UnknownMethodError)
    assert info.value.line == 7


def test_an_unknown_detector_keeps_its_class(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(RULE + "      detectors: [passport]\n")
    with pytest.raises(governed_db.masking.UnknownDetectorError) as info:
        load_policy(path)
    assert (info.value.line, info.value.key) == (6, f"{R0}.detectors[0]")


def test_condition_keys_are_every_guardrail_condition() -> None:
    """CONDITION_KEYS (which masking rules refuse with a clear message) is complete."""
    reader = Reader(load_yaml("{}", None), "", None)
    parse_conditions(reader, (), ())
    assert reader._seen == CONDITION_KEYS
    assert MASKING_CONDITIONS < CONDITION_KEYS
