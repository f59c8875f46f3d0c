"""``governed-db check``: lint SQL files without a database, run in-process."""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

import pytest

from governed_db.cli import check_cmd
from governed_db.cli.check_cmd import split_sql

EXAMPLE = str(Path(__file__).parent.parent / "policies.example.yaml")

MIGRATION = """\
-- 001: create and seed
CREATE TABLE users (id int, name text);
INSERT INTO users VALUES (1, 'a');
SELECT * FROM users WHERE id = 1;
"""

DANGEROUS = """\
-- cleanup
DELETE FROM users;

-- governed-db: allow delete-needs-where because the table was created above
DELETE FROM users;
UPDATE users SET name = 'x'; -- governed-db: allow update-needs-where
DROP TABLE users; -- governed-db: allow drop-truncate-in-prod because rollback of 001
SELECT pg_read_file('/etc/passwd');
/* governed-db: allow nope because typo */
SELECT 1;
-- governed-db: allow trivial-where because nothing below needs it
SELECT 2;
"""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="governed-db")
    check_cmd.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def sql_file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def check(*files: str, env: str = "prod", fmt: str = "text", actor: str = "human:bob") -> int:
    return main(["check", *files, "--policy", EXAMPLE, "--env", env, "--actor", actor,
                 "--format", fmt])  # fmt: skip


def test_clean_file_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check(sql_file(tmp_path, "001.sql", MIGRATION)) == 0
    out = capsys.readouterr().out
    assert "1 file(s), 3 statement(s): 0 error(s), 0 warning(s), 0 notice(s)" in out


def test_findings_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = sql_file(tmp_path, "002.sql", DANGEROUS)
    assert check(path) == 1
    lines = capsys.readouterr().out.splitlines()
    expected = [
        f"{path}:2: error: DELETE on public.users has no WHERE clause (rule delete-needs-where)."
        " Add a WHERE clause that selects the rows to delete.",
        f"{path}:5: notice: rule delete-needs-where waived because the table was created above"
        " (DELETE on public.users has no WHERE clause)",
        f"{path}:6: error: escape hatch gives no reason: write"
        " '-- governed-db: allow RULE_ID because REASON'",
        f"{path}:6: error: UPDATE on public.users has no WHERE clause (rule update-needs-where)."
        " Add a WHERE clause that selects the rows to update.",
        f"{path}:7: notice: rule drop-truncate-in-prod waived because rollback of 001"
        " (DROP on public.users is not allowed in prod)",
        f"{path}:8: warning: SELECT calls pg_read_file, which can act outside the query, in prod"
        " (rule dangerous-functions-need-approval). Ask an approver to grant this statement.",
        f"{path}:9: error: escape hatch names unknown rule 'nope'",
        f"{path}:11: warning: escape hatch for 'trivial-where' matched no refused statement",
    ]
    assert lines[:-1] == expected
    assert lines[-1] == "1 file(s), 7 statement(s): 4 error(s), 2 warning(s), 2 notice(s)"


def test_waiver_then_next_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "-- governed-db: allow drop-truncate-in-prod because reviewed in PR 12\nDROP TABLE t;\n"
    path = sql_file(tmp_path, "003.sql", text)
    assert check(path) == 0  # a human: nothing else applies
    assert "2: notice: rule drop-truncate-in-prod waived" in capsys.readouterr().out
    assert check(path, actor="agent:claude") == 1  # waived the drop rule; the agents rule blocks
    out = capsys.readouterr().out
    assert "2: notice: rule drop-truncate-in-prod waived because reviewed in PR 12" in out
    assert "2: error: agent claude may not run DROP in prod (rule agents-no-ddl-in-prod)" in out


def test_github_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = sql_file(tmp_path, "a,b.sql", "SELECT 1;\n\nTRUNCATE orders;\n")
    assert check(path, fmt="github") == 1
    captured = capsys.readouterr()
    escaped = path.replace(",", "%2C")
    assert captured.out.splitlines() == [
        f"::error file={escaped},line=3,title=governed-db drop-truncate-in-prod::"
        "TRUNCATE on public.orders is not allowed in prod (rule drop-truncate-in-prod)."
        " Run destructive schema changes through a reviewed migration outside this session."
    ]
    assert "1 error(s)" in captured.err


def test_json_format_and_env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = sql_file(tmp_path, "b.sql", "TRUNCATE orders;\nDO $$ BEGIN END $$;\n")
    assert check(path, env="dev", fmt="json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["files"] == 1
    assert doc["statements"] == 2
    assert doc["findings"] == []
    assert check(path, env="prod", fmt="json") == 1
    doc = json.loads(capsys.readouterr().out)
    kinds = [(f["line"], f["kind"], f["rule_id"]) for f in doc["findings"]]
    assert kinds == [
        (1, "block", "drop-truncate-in-prod"),
        (2, "require_approval", "opaque-needs-approval-in-prod"),
    ]
    assert doc["counts"] == {"error": 1, "warning": 1, "notice": 0}


def test_observe_mode_reports_would_be(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "observe.yaml"
    policy.write_text("version: 1\nmode: observe\nguardrails:\n"
                      "  - {id: no-drop, action: block, when: {operation: drop}}\n")  # fmt: skip
    path = sql_file(tmp_path, "c.sql", "DROP TABLE t;\n")
    assert main(["check", path, "--policy", str(policy), "--actor", "human:bob"]) == 0
    out = capsys.readouterr().out
    assert "notice: DROP on public.t is not allowed in default" in out
    assert "[observe mode: would be block]" in out


def test_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check(str(tmp_path / "missing.sql")) == 2
    assert "cannot read" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nguardrails: [\n")
    assert main(["check", str(tmp_path / "x.sql"), "--policy", str(bad)]) == 2
    assert "bad.yaml:3: YAML syntax error" in capsys.readouterr().err
    path = sql_file(tmp_path, "d.sql", "SELECT 1;\n")
    assert check(path, env="production") == 2
    assert "unknown environment 'production'" in capsys.readouterr().err


def test_many_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [sql_file(tmp_path, f"{i:03}.sql", "SELECT 1;\n") for i in range(25)]
    files.append(sql_file(tmp_path, "999.sql", "DELETE FROM t WHERE true;\n"))
    assert check(*files) == 1
    out = capsys.readouterr().out
    assert "26 file(s), 26 statement(s): 1 error(s)" in out
    assert "999.sql:1: error: DELETE on public.t has a WHERE clause that is always true" in out


def test_split_sql_lines_and_comments() -> None:
    text = "-- head\nSELECT 'a;b'\n  FROM t;\n/* c */ DO $$ BEGIN PERFORM 1; END $$;\nSELECT 2"
    pieces, comments = split_sql(text)
    assert [(p.text, p.line, p.end_line) for p in pieces] == [
        ("SELECT 'a;b'\n  FROM t", 2, 3),
        ("DO $$ BEGIN PERFORM 1; END $$", 4, 4),
        ("SELECT 2", 5, 5),
    ]
    assert [(line, body) for _, line, body in comments] == [(1, "-- head"), (4, "/* c */")]


def test_split_sql_keeps_what_does_not_parse() -> None:
    pieces, _ = split_sql("SELEC 1;\nSELECT 2;")
    assert [(p.text, p.line) for p in pieces] == [("SELEC 1", 1), ("SELECT 2", 2)]
    body = "CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; END"
    pieces, _ = split_sql(body + ";\nSELECT 3;")
    assert [p.text for p in pieces] == [body, "SELECT 3"]
    pieces, _ = split_sql("SELECT 'unterminated;\n-- c\n")  # the scanner fails: sqlparse
    assert pieces[0].line == 1


def test_garbage_is_an_error_not_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = sql_file(tmp_path, "e.sql", "SELECT 1;\nfrobnicate the database;\n")
    assert check(path) == 1
    assert check(path, env="dev") == 1  # not only where opaque statements need approval
    out = capsys.readouterr().out
    assert f"{path}:2: error: statement does not parse" in out
