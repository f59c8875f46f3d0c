"""Audit settings fail closed: unknown keys and wrong types are errors, never defaults."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db.audit import AuditSettings
from governed_db.errors import PolicyError


@pytest.mark.parametrize(
    ("settings", "key", "suggestion"),
    [
        ({"pth": "x"}, "audit.pth", "path"),
        ({"path": "x", "durabilty": "strict"}, "audit.durabilty", "durability"),
        ({"batchms": 10}, "audit.batchms", "batch_ms"),
        ({"failclosed": True}, "audit.failclosed", "fail_closed"),
        ({"sink": []}, "audit.sink", "sinks"),
        ({"rotate": {"max_byte": 10}}, "audit.rotate.max_byte", "max_bytes"),
        ({"rotate": {"maxage": "1d"}}, "audit.rotate.maxage", "max_age"),
        (
            {"path": "p", "sinks": [{"type": "http", "url": "http://x/", "urll": "y"}]},
            "audit.sinks[0].urll",
            "url",
        ),
        (
            {"path": "p", "sinks": [{"type": "syslog", "address": "udp://h:1", "facilty": "x"}]},
            "audit.sinks[0].facilty",
            "facility",
        ),
        (
            {"sinks": [{"type": "file", "path": "p", "durabilty": "strict"}]},
            "audit.sinks[0].durabilty",
            "durability",
        ),
        (
            {"path": "p", "sinks": [{"type": "htp", "url": "http://x/"}]},
            "audit.sinks[0].type",
            "http",
        ),
        ({"durability": "batc"}, "audit.durability", "batch"),
        ({"signing": "evry"}, "audit.signing", "every"),
    ],
)
def test_unknown_keys_and_values_suggest_the_known_one(
    settings: dict[str, Any], key: str, suggestion: str
) -> None:
    with pytest.raises(PolicyError) as info:
        AuditSettings.from_mapping(settings)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")
    assert f"did you mean {suggestion!r}?" in str(info.value)


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"path": 3}, "audit.path"),
        ({"path": ""}, "audit.path"),
        ({"durability": True}, "audit.durability"),
        ({"batch_ms": "50"}, "audit.batch_ms"),
        ({"batch_ms": 1.5}, "audit.batch_ms"),
        ({"fail_closed": "yes"}, "audit.fail_closed"),
        ({"fail_closed": 1}, "audit.fail_closed"),
        ({"redact_literals": None}, "audit.redact_literals"),
        ({"parameters": False}, "audit.parameters"),
        ({"checkpoint_every": True}, "audit.checkpoint_every"),
        ({"checkpoint_seconds": "soon"}, "audit.checkpoint_seconds"),
        ({"rotate": "daily"}, "audit.rotate"),
        ({"sinks": {"type": "memory"}}, "audit.sinks"),
        ({"sinks": "memory"}, "audit.sinks"),
        ({"sinks": ["memory"]}, "audit.sinks[0]"),
        ({"sinks": [{"name": "m"}]}, "audit.sinks[0].type"),
        ({"sinks": [{"type": "memory", "name": 7}]}, "audit.sinks[0].name"),
        ({"sinks": [{"type": "stdout", "format": 1}]}, "audit.sinks[0].format"),
        ({"path": "p", "sinks": [{"type": "http", "url": 5}]}, "audit.sinks[0].url"),
        (
            {"path": "p", "sinks": [{"type": "http", "url": "http://x/", "headers": ["a"]}]},
            "audit.sinks[0].headers",
        ),
        (
            {"path": "p", "sinks": [{"type": "http", "url": "http://x/", "batch_size": "9"}]},
            "audit.sinks[0].batch_size",
        ),
        (
            {"path": "p", "sinks": [{"type": "otlp", "endpoint": "collector:4318"}]},
            "audit.sinks[0].endpoint",
        ),
        (
            {"path": "p", "sinks": [{"type": "syslog", "address": "udp://h:1", "facility": 3}]},
            "audit.sinks[0].facility",
        ),
        (
            {"path": "p", "sinks": [{"type": "syslog", "address": "udp://h:1", "app_name": 3}]},
            "audit.sinks[0].app_name",
        ),
        ({"sinks": [{"type": "file", "path": "p", "batch_ms": "1"}]}, "audit.sinks[0].batch_ms"),
        ({1: "x"}, "audit.1"),
    ],
)
def test_every_value_is_type_checked(settings: dict[Any, Any], key: str) -> None:
    with pytest.raises(PolicyError) as info:
        AuditSettings.from_mapping(settings)
    assert info.value.key == key


def test_settings_must_be_a_mapping() -> None:
    with pytest.raises(PolicyError, match="audit: the audit settings is a mapping"):
        AuditSettings.from_mapping(["path", "x"])  # type: ignore[arg-type]


def test_valid_settings_still_load(tmp_path: Path) -> None:
    s = AuditSettings.from_mapping(
        {
            "path": tmp_path,
            "durability": "strict",
            "rotate": {"max_bytes": "1MB", "max_age": 3600},
            "sinks": [
                {"type": "syslog", "address": "udp://127.0.0.1:514", "facility": "local3"},
                {"type": "memory", "name": "mem"},
            ],
        }
    )
    assert s.path == tmp_path
    assert [x.type for x in s.sinks] == ["syslog", "memory"]


def test_connect_refuses_a_misspelt_audit_mapping_before_connecting() -> None:
    # No server is needed: the settings fail before a connection is attempted.
    with pytest.raises(PolicyError, match=r"audit\.pth: unknown key 'pth'.*did you mean 'path'"):
        governed_db.connect("host=/nonexistent dbname=x", audit={"pth": "x"})


@pytest.mark.parametrize("bad", ["audit.jsonl", 3, b"x", object()])
def test_connect_refuses_an_audit_argument_of_the_wrong_kind(bad: object) -> None:
    with pytest.raises(TypeError, match="audit= takes"):
        governed_db.connect("host=/nonexistent dbname=x", audit=bad)


def _policy(tmp_path: Path, audit: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\nguardrails: []\n" + textwrap.dedent(audit))
    return path


@pytest.mark.parametrize(
    ("section", "line", "key", "suggestion"),
    [
        ("audit:\n  pth: spool\n", 4, "audit.pth", "path"),
        (
            "audit:\n  path: spool\n  sinks:\n    - type: http\n      url: http://x/\n"
            "      timout: 5s\n",
            8,
            "audit.sinks[0].timout",
            "timeout",
        ),
        (
            "audit:\n  path: spool\n  sinks:\n    - type: memory\n    - type: stdout\n"
            "      fromat: json\n",
            8,
            "audit.sinks[1].fromat",
            "format",
        ),
        (
            "audit:\n  sinks:\n    - type: file\n      path: spool\n      rotate: {max_byte: 5}\n",
            7,
            "audit.sinks[0].rotate.max_byte",
            "max_bytes",
        ),
    ],
)
def test_policy_audit_errors_carry_file_and_line(
    tmp_path: Path, section: str, line: int, key: str, suggestion: str
) -> None:
    path = _policy(tmp_path, section)
    with pytest.raises(PolicyError) as info:
        governed_db.load_policy(path)
    assert info.value.path == str(path)
    assert info.value.line == line
    assert info.value.key == key
    assert str(info.value).startswith(f"{path}:{line}: {key}: ")
    assert f"did you mean {suggestion!r}" in str(info.value)


def test_policy_audit_false_and_true(tmp_path: Path) -> None:
    off = governed_db.load_policy(_policy(tmp_path, "audit: false\n"))
    assert off.audit_enabled is False
    assert dict(off.audit) == {}
    on = governed_db.load_policy(_policy(tmp_path, "audit:\n  durability: batch\n"))
    assert on.audit_enabled is True
    with pytest.raises(PolicyError, match=r":3: audit: write `audit: false`"):
        governed_db.load_policy(_policy(tmp_path, "audit: true\n"))
    with pytest.raises(PolicyError, match=r"audit: expected a mapping"):
        governed_db.load_policy(_policy(tmp_path, "audit: spool\n"))


def test_policy_max_age_in_policy_units_reaches_the_audit_room(tmp_path: Path) -> None:
    policy = governed_db.load_policy(
        _policy(tmp_path, "audit:\n  path: s\n  rotate: {max_age: 1h30m}\n")
    )
    assert AuditSettings.from_mapping(policy.audit).rotate_seconds == 5400
