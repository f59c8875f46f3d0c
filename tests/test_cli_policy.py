"""``governed-db policy validate|explain``, run in-process."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from governed_db.cli import policy_cmd

ROOT = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "policies"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="governed-db")
    policy_cmd.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "validate", str(ROOT / "policies.example.yaml")]) == 0
    out = capsys.readouterr().out
    assert "ok (version 1, mode enforce, 21 rules" in out


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("bad_unknown_key.yaml", "bad_unknown_key.yaml:9: guardrails[0].when.tables_writen"),
        ("bad_duplicate_rule.yaml", "bad_duplicate_rule.yaml:8: guardrails[1]: duplicate rule id"),
        ("bad_yaml_syntax.yaml", "bad_yaml_syntax.yaml:5: YAML syntax error"),
    ],
)
def test_validate_bad(name: str, where: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "validate", str(FIXTURES / name)]) == 1
    captured = capsys.readouterr()
    assert where in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_explain(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "explain", str(ROOT / "policies.example.yaml")]) == 0
    out = capsys.readouterr().out
    for text in (
        "Environments",
        "Actor groups",
        "Guardrails (enforce mode)",
        "drop-truncate-in-prod",
        "require_approval",
        "reporting-*",
        "first whose conditions all hold decides",
    ):
        assert text in out, text


def test_explain_defaults_to_baseline(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOVERNED_DB_POLICY", raising=False)
    assert main(["policy", "explain"]) == 0
    out = capsys.readouterr().out
    assert "<baseline>" in out
    assert "opaque-needs-approval-in-prod" in out


def test_explain_bad_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "explain", str(FIXTURES / "bad_unknown_key.yaml")]) == 1
    assert "tables_writen" in capsys.readouterr().err


def test_policy_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["policy"])
    assert info.value.code == 2


@pytest.mark.parametrize("action", ["validate", "explain"])
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.yaml", "policy file not found"),
        ("", "policy path is a directory, not a file"),  # FIXTURES itself
    ],
)
def test_unreadable_file_exits_2(
    action: str, name: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(FIXTURES / name) if name else str(FIXTURES)
    assert main(["policy", action, path]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"governed-db policy: error: {path}: {message}\n"


@pytest.mark.parametrize("action", ["validate", "explain"])
@pytest.mark.parametrize("name", ["", "  "])
def test_empty_file_name_exits_2(
    action: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["policy", action, name]) == 2
    assert capsys.readouterr().err == "governed-db policy: error: the policy file name is empty\n"


def test_explain_env_policy_missing_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVERNED_DB_POLICY", str(tmp_path / "gone.yaml"))
    assert main(["policy", "explain"]) == 2
    err = capsys.readouterr().err
    assert err == f"governed-db policy: error: {tmp_path / 'gone.yaml'}: policy file not found\n"
