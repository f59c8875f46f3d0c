"""Bad policy files: a PolicyError at FILE:LINE naming the key, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from governed_db.errors import PolicyError
from governed_db.policy import load_policy

HEAD = "version: 1\n"
RULE = HEAD + "guardrails:\n  - id: a\n    action: block\n"

CASES = [
    # (file text, line, key or None, message fragment)
    ("version: 1\nguardrails: []\nextra: 1\n", 3, "extra", "unknown key 'extra'"),
    ("version: 1\nguardrail: []\n", 2, "guardrail", "did you mean 'guardrails'"),
    ("guardrails: []\n", 1, None, "missing required key 'version'"),
    ("version: 1\n", 1, None, "missing required key 'guardrails'"),
    ("version: 2\nguardrails: []\n", 1, "version", "unsupported version 2"),
    ("version: one\nguardrails: []\n", 1, "version", "expected an integer, got str"),
    ("version: true\nguardrails: []\n", 1, "version", "expected an integer, got bool"),
    ("- 1\n", 1, None, "must be a mapping"),
    ("version: 1\nguardrails: [\n", 3, None, "YAML syntax error"),
    ("version: 1\nguardrails: []\nversion: 1\n", 3, "version", "duplicate key 'version'"),
    ("version: 1\nguardrails: []\n1: x\n", 3, "1", "keys must be strings"),
    ("version: 1\nmode: loud\nguardrails: []\n", 2, "mode", "unknown mode 'loud'"),
    (
        HEAD + "guardrails:\n  - id: a\n    action: block\n  - id: a\n    action: allow\n",
        5, "guardrails[1]", "duplicate rule id 'a' (first at line 3)",
    ),
    (HEAD + "guardrails:\n  - action: block\n", 3, "guardrails[0]", "missing required key 'id'"),
    (HEAD + "guardrails:\n  - id: 'a b'\n    action: x\n", 3, "guardrails[0].id", "bad rule id"),
    (
        HEAD + "guardrails:\n  - id: a\n    action: deny\n",
        4, "guardrails[0].action", "unknown action 'deny'",
    ),
    (
        RULE + "    when: {operation: delet}\n",
        5, "guardrails[0].when.operation", "unknown operation 'delet' (did you mean 'delete'?)",
    ),
    (
        RULE + "    when: {class: dml}\n",
        5, "guardrails[0].when.class", "unknown statement class 'dml'",
    ),
    (
        RULE + "    when: {enviroment: prod}\n",
        5, "guardrails[0].when.enviroment", "did you mean 'environment'",
    ),
    (
        RULE + "    when: {environment: prdo}\n",
        5, "guardrails[0].when.environment", "unknown environment 'prdo'",
    ),
    (
        HEAD + "guardrails:\n  - id: a\n    action: block\n"
        "    when: {environment: default, environments: [default]}\n",
        5, "guardrails[0].when", "either 'environment' or 'environments'",
    ),
    (
        RULE + "    when: {actor: robots}\n",
        5, "guardrails[0].when.actor", "unknown actor group 'robots'",
    ),
    (
        RULE + "    when: {actor_kind: robot}\n",
        5, "guardrails[0].when.actor_kind", "unknown actor kind 'robot'",
    ),
    (
        RULE + "    when:\n      tables: ['public.[ab']\n",
        6, "guardrails[0].when.tables[0]", "bad glob 'public.[ab'",
    ),
    (
        RULE + "    when: {tables: ''}\n",
        5, "guardrails[0].when.tables", "bad glob ''",
    ),
    (
        RULE + "    when: {tables: []}\n",
        5, "guardrails[0].when.tables", "at least one pattern",
    ),
    (
        RULE + "    when: {has_where: maybe}\n",
        5, "guardrails[0].when.has_where", "expected a boolean",
    ),
    (
        HEAD + "guardrails:\n  - id: a\n    action: block\n"
        "    when: {statement_count: {min: 3, max: 1}}\n",
        5, "guardrails[0].when.statement_count", "min (3) is greater than max (1)",
    ),
    (
        RULE + "    when: {statement_count: {}}\n",
        5, "guardrails[0].when.statement_count", "give 'min' and/or 'max'",
    ),
    (
        RULE + "    when: {estimated_rows: 5}\n",
        5, "guardrails[0].when.estimated_rows", "expected a mapping",
    ),
    (
        RULE + "    when: {estimated_rows: {more: 5}}\n",
        5, "guardrails[0].when.estimated_rows.more", "unknown key 'more'",
    ),
    (
        RULE + "    when:\n      time: {hours: '9-17'}\n",
        6, "guardrails[0].when.time.hours", "bad time range '9-17'",
    ),
    (
        RULE + "    when:\n      time: {days: [funday]}\n",
        6, "guardrails[0].when.time.days[0]", "bad day 'funday'",
    ),
    (
        RULE + "    when:\n"
        "      time: {hours: '09:00-17:00', timezone: Mars/Olympus}\n",
        6, "guardrails[0].when.time.timezone", "unknown timezone 'Mars/Olympus'",
    ),
    (
        RULE + "    when:\n      time: {outside: true}\n",
        6, "guardrails[0].when.time", "give 'days' and/or 'hours'",
    ),
    (
        HEAD + "guardrails:\n  - id: a\n    action: block\n    message: '{operaton} refused'\n",
        5, "guardrails[0].message", "unknown placeholder {operaton}",
    ),
    (
        HEAD + "guardrails:\n  - id: a\n    action: block\n    hint: 'use {'\n",
        5, "guardrails[0].hint", "bad template",
    ),
    (
        HEAD + "guardrails: []\nenvironments:\n  prod:\n    match: [{hots: x}]\n",
        5, "environments.prod.match[0].hots", "unknown key 'hots'",
    ),
    (
        HEAD + "guardrails: []\nenvironments:\n  prod:\n    match: [{}]\n",
        5, "environments.prod.match[0]", "at least one of host, dbname, port",
    ),
    (
        HEAD + "guardrails: []\nenvironments:\n  'bad name': {}\n",
        4, "environments.bad name", "bad environment name",
    ),
    (
        HEAD + "guardrails: []\nactors:\n  bots:\n    - {kind: robot}\n",
        5, "actors.bots[0].kind", "unknown actor kind 'robot'",
    ),
    (
        HEAD + "guardrails: []\nactors:\n  bots:\n    - {}\n",
        5, "actors.bots[0]", "at least one of kind, name, email",
    ),
    (HEAD + "guardrails: []\nactors:\n  bots:\n", 4, "actors.bots", "at least one member"),
    (
        HEAD + "guardrails: []\nlimits:\n  prod: {max_rows_affected: 5}\n",
        4, "limits.prod", "unknown environment 'prod'",
    ),
    (
        HEAD + "guardrails: []\nlimits:\n  default: {statement_timeout: 30}\n",
        4, "limits.default.statement_timeout", "needs a unit, e.g. '30s'",
    ),
    (
        HEAD + "guardrails: []\nlimits:\n  default: {lock_timeout: 5 sec}\n",
        4, "limits.default.lock_timeout", "bad duration '5sec'",
    ),
    (
        HEAD + "guardrails: []\nlimits:\n  default: {max_rows_affected: -1}\n",
        4, "limits.default.max_rows_affected", "must be ≥ 0",
    ),
    (
        HEAD + "guardrails: []\naudit:\n  durability: sometimes\n",
        4, "audit.durability", "unknown durability 'sometimes'",
    ),
    (
        HEAD + "guardrails: []\naudit:\n  sinks:\n    - {type: kafka}\n",
        5, "audit.sinks[0].type", "unknown sink type 'kafka'",
    ),
    (
        HEAD + "guardrails: []\naudit:\n  sinks:\n    - {path: x}\n",
        5, "audit.sinks[0]", "missing required key 'type'",
    ),
    (
        HEAD + "guardrails: []\naudit:\n  rotate: {max_age: soon}\n",
        4, "audit.rotate.max_age", "bad duration 'soon'",
    ),
    (
        HEAD + "guardrails: []\naudit:\n  fail_closed: 'yes please'\n",
        4, "audit.fail_closed", "expected a boolean",
    ),
    (
        HEAD + "guardrails: []\naudit:\n  checkpoint_seconds: 0\n",
        4, "audit.checkpoint_seconds", "must be > 0",
    ),
    (HEAD + "guardrails: []\naudit:\n  spool: x\n", 4, "audit.spool", "unknown key 'spool'"),
    (
        HEAD + "guardrails: []\naudit:\n  path: env:GOVERNED_DB_TEST_UNSET\n",
        4, "audit.path", "environment variable GOVERNED_DB_TEST_UNSET is not set",
    ),
    (HEAD + "guardrails: []\naudit:\n  path: 'env:'\n", 4, "audit.path", "names no variable"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "key", "fragment"), CASES)
def test_bad_file(tmp_path: Path, text: str, line: int, key: str | None, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as info:
        load_policy(path, environ={})
    error = info.value
    assert fragment in str(error)
    assert error.path == str(path)
    assert error.line == line, str(error)
    assert error.key == key
    assert str(error).startswith(f"{path}:{line}: ")


def test_fixture_files_locate_their_errors() -> None:
    here = Path(__file__).parent / "policies"
    expected = {
        "bad_unknown_key.yaml": (9, "guardrails[0].when.tables_writen"),
        "bad_duplicate_rule.yaml": (8, "guardrails[1]"),
        "bad_yaml_syntax.yaml": (5, None),
    }
    for name, (line, key) in expected.items():
        with pytest.raises(PolicyError) as info:
            load_policy(here / name, environ={})
        assert (info.value.line, info.value.key) == (line, key), name
    assert load_policy(here / "good_minimal.yaml").rules[0].id == "no-drop"
