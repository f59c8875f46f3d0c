"""``governed-db check``: SQL that does not parse and bad options are errors (issue 7 §5).

A statement PostgreSQL's grammar rejects used to pass (exit 0, at most an
"opaque" warning). Now it is an error naming the file and line, and, when the
scanner says where, the line and column. Bad options (an unknown identity
kind, an empty value, a missing policy file) print one line and exit 2.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli_check import EXAMPLE, check, main, sql_file

KNOWN = "known kinds: agent, ci, human, service"
GOVERNED_DB = shutil.which("governed-db", path=str(Path(sys.executable).parent)) or "governed-db"


# -- statements that do not parse ---------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "SELEC 1",
        "select from where",
        "select (1",
        "select 1 from",
        "create tabel t (i int)",
        "update set x = 1",
        "delete orders where id = 1",
        "drop table",
        "insert into t values (1,",
        "frobnicate the database",
        "select * fromm t",
    ],
)
@pytest.mark.parametrize("env", ["prod", "dev"])
def test_grammar_error_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], statement: str, env: str
) -> None:
    path = sql_file(tmp_path, "m.sql", f"SELECT 1;\n\n{statement};\nSELECT 2;\n")
    assert check(path, env=env) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"{path}:3: error: statement does not parse, or is a kind of statement governed_db"
        " cannot read (the gate would treat it as opaque)"
    )
    assert out[-1] == "1 file(s), 3 statement(s): 1 error(s), 0 warning(s), 0 notice(s)"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "SELECT 1;\nSELECT 'abc;\n",
            2,
            """unterminated quoted string at or near "'abc;" (line 2, column 8)""",
        ),
        (
            "SELECT 1;\n  SELECT $$abc;\n",
            2,
            'unterminated dollar-quoted string at or near "$$abc;" (line 2, column 10)',
        ),
        (
            'SELECT 1;\nSELECT "abc FROM t;\n',
            2,
            'unterminated quoted identifier at or near ""abc FROM t;" (line 2, column 8)',
        ),
        (
            "SELECT 1;\nSELECT 2;\ninsert into t values (1e);\n",
            3,
            'trailing junk after numeric literal at or near "1e" (line 3, column 23)',
        ),
        (
            "SELECT 1;\n/* never closed\nSELECT 2;\n",
            2,
            'unterminated /* comment at or near "/* never closed SELECT 2;" (line 2, column 1)',
        ),
        (
            "SELECT 'é', 1;\nSELECT e'\\\n",
            2,
            """unterminated quoted string at or near "e'\\" (line 2, column 8)""",
        ),
    ],
)
def test_scanner_error_names_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, message: str
) -> None:
    path = sql_file(tmp_path, "s.sql", "")
    Path(path).write_text(text, encoding="utf-8")
    assert check(path) == 1
    out = capsys.readouterr().out
    assert f"{path}:{line}: error: statement does not parse: {message}" in out.splitlines()


def test_scanner_error_is_one_line_and_short(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rest = "\n".join(f"SELECT {i};" for i in range(200))
    path = sql_file(tmp_path, "long.sql", "")
    Path(path).write_text(f"SELECT 1;\n/* forgot to close\n{rest}\n", encoding="utf-8")
    assert check(path) == 1
    lines = [x for x in capsys.readouterr().out.splitlines() if "does not parse" in x]
    assert len(lines) == 1
    assert re.fullmatch(
        rf"{re.escape(path)}:2: error: statement does not parse: unterminated /\* comment at or"
        r' near "/\* forgot to close SELECT 0; S…" \(line 2, column 1\)',
        lines[0],
    )


def test_unparsed_in_json_and_github(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = sql_file(tmp_path, "j.sql", "SELECT 1;\nSELEC 2;\nSELECT 'x;\n")
    assert check(path, fmt="json") == 1
    doc = json.loads(capsys.readouterr().out)
    found = [(f["line"], f["severity"], f["kind"], f["rule_id"]) for f in doc["findings"]]
    assert found == [(2, "error", "unparsed", None), (3, "error", "unparsed", None)]
    assert doc["counts"]["error"] == 2
    assert check(path, fmt="github") == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"::error file={path},line=2,title=governed-db unparsed::")
    assert out[1].startswith(f"::error file={path},line=3,title=governed-db unparsed::")
    assert "line 3, column 8" in out[1]


def test_unparsed_cannot_be_waived(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "-- governed-db: allow opaque-needs-approval-in-prod because we know\nSELEC 1;\n"
    path = sql_file(tmp_path, "w.sql", text)
    assert check(path) == 1
    out = capsys.readouterr().out
    assert f"{path}:2: error: statement does not parse" in out
    assert "matched no refused statement" in out


@pytest.mark.parametrize(
    "text",
    [
        "SELECT 1;",
        "CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; END;",
        "DO $$ BEGIN PERFORM 1; END $$;",
        "SELECT 'it''s; fine' -- a comment\r; SELECT 2;",
        "COPY t FROM STDIN;",
        "-- only a comment\n",
        "",
    ],
)
def test_statements_that_parse_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    path = sql_file(tmp_path, "ok.sql", "")
    Path(path).write_text(text, encoding="utf-8")
    assert check(path, env="dev") == 0
    assert "does not parse" not in capsys.readouterr().out


# -- bad options: one line, exit 2 -------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "message"),
    [
        ("robot:x", f"--actor: identity 'robot:x': unknown identity kind 'robot'; {KNOWN}"),
        ("Robot:x", f"--actor: identity 'Robot:x': unknown identity kind 'Robot'; {KNOWN}"),
        ("agents:claude", "--actor: identity 'agents:claude': unknown identity kind 'agents'"),
        ("alice", "--actor: identity 'alice' names no kind: write KIND:NAME, e.g. 'human:alice'"),
        ("", "--actor: identity '' is empty"),
        ("  ", "--actor: identity '  ' is empty"),
        ("agent:", "--actor: identity 'agent:': the name is empty"),
        (":bob", f"--actor: identity ':bob': no identity kind; {KNOWN}"),
    ],
)
def test_bad_actor_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], actor: str, message: str
) -> None:
    path = sql_file(tmp_path, "a.sql", "DROP TABLE t;\n")
    assert check(path, actor=actor) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"governed-db check: error: {message}")
    assert captured.err.count("\n") == 1


@pytest.mark.parametrize("actor", ["Agent:claude", "AGENT:claude", " agent:claude "])
def test_actor_kind_any_case_gets_agent_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], actor: str
) -> None:
    text = "-- governed-db: allow drop-truncate-in-prod because reviewed\nDROP TABLE t;\n"
    path = sql_file(tmp_path, "a.sql", text)
    assert check(path, actor=actor) == 1
    assert "agent claude may not run DROP in prod (rule agents-no-ddl-in-prod)" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--env", "", "--env is empty"),
        ("--env", " ", "--env is empty"),
        ("--policy", "", "--policy is empty"),
        ("--policy", "missing.yaml", "missing.yaml: policy file not found"),
        ("--policy", ".", ".: policy path is a directory, not a file"),
        ("--env", "production", "unknown environment 'production'"),
    ],
)
def test_bad_option_exits_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    option: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    path = sql_file(tmp_path, "a.sql", "SELECT 1;\n")
    args = ["check", path, "--actor", "human:bob"]
    if option != "--policy":
        args += ["--policy", EXAMPLE]
    assert main([*args, option, value]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"governed-db check: error: {message}")
    assert captured.err.count("\n") == 1


# -- the real command, in a real process --------------------------------------------------------


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNED_DB_")}
    return subprocess.run(
        [GOVERNED_DB, "check", *args],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"GOVERNED_DB_ACTOR": "x", "GOVERNED_DB_ACTOR_KIND": "robot"},
            f"GOVERNED_DB_ACTOR_KIND='robot': unknown identity kind 'robot'; {KNOWN}",
        ),
        (
            {"GOVERNED_DB_ACTOR": "Robot:x"},
            f"GOVERNED_DB_ACTOR='Robot:x': unknown identity kind 'Robot'; {KNOWN}",
        ),
        ({"GOVERNED_DB_ACTOR": ""}, "GOVERNED_DB_ACTOR is set but empty"),
        (
            {"GOVERNED_DB_ACTOR_KIND": "agent"},
            "GOVERNED_DB_ACTOR_KIND is set but GOVERNED_DB_ACTOR is not",
        ),
        (
            {"GOVERNED_DB_ACTOR": "x", "GOVERNED_DB_ACTOR_KND": "agent"},
            "unknown variable GOVERNED_DB_ACTOR_KND",
        ),
        ({"GOVERNED_DB_POLICY": "nowhere.yaml"}, "nowhere.yaml: policy file not found"),
    ],
)
def test_process_environment_errors(tmp_path: Path, env: dict[str, str], message: str) -> None:
    (tmp_path / "a.sql").write_text("SELECT 1;\n")
    done = _run(tmp_path, "a.sql", **env)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.startswith(f"governed-db check: error: {message}")
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_process_env_actor_kind_any_case(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("DROP TABLE t; -- governed-db: allow drop-truncate-in-prod "
                                    "because reviewed\n")  # fmt: skip
    args = ("a.sql", "--policy", EXAMPLE, "--env", "prod")
    done = _run(tmp_path, *args, GOVERNED_DB_ACTOR="claude", GOVERNED_DB_ACTOR_KIND="AGENT")
    assert done.returncode == 1
    assert "rule agents-no-ddl-in-prod" in done.stdout
    done = _run(tmp_path, *args, GOVERNED_DB_ACTOR="Agent:claude")
    assert done.returncode == 1
    assert "rule agents-no-ddl-in-prod" in done.stdout


def test_process_bad_actor_and_unparsed(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("SELECT 1;\nSELEC 2;\n")
    done = _run(tmp_path, "a.sql", "--actor", "robot:x")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"governed-db check: error: --actor: identity 'robot:x': unknown identity kind 'robot';"
        f" {KNOWN}\n"
    )
    done = _run(tmp_path, "a.sql", "--actor", "human:bob")
    assert done.returncode == 1
    assert done.stdout.startswith("a.sql:2: error: statement does not parse")
