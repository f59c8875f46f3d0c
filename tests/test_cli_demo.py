"""``governed-db demo``: works from any directory, never ignores a named policy (issue 7 §5).

The demo's policy ships inside the package and is read with importlib.resources,
so the demo runs the same from a directory far from the source checkout. A
``--policy`` that names no readable file is an error (exit 2, one line) before
any server starts. The demo survives any step going otherwise than planned.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import psycopg
import pytest

import governed_db
from governed_db.cli.main import main

ROOT = Path(__file__).parent.parent
GOVERNED_DB = shutil.which("governed-db", path=str(Path(sys.executable).parent)) or "governed-db"


def demo(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the installed command, as a user would, in ``cwd``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNED_DB_")}
    return subprocess.run(
        [GOVERNED_DB, "demo", *args],
        cwd=cwd,
        env={**clean, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_demo_policy_ships_in_the_package() -> None:
    shipped = resources.files("governed_db").joinpath("demo_policy.yaml")
    assert shipped.is_file()
    with resources.as_file(shipped) as path:
        policy = governed_db.load_policy(path)
    assert "prod" in policy.environment_names
    assert policy.audit in (None, {})  # the demo never writes a trail into the cwd
    assert policy.limits_for("prod").max_rows_affected == 1000
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["governed_db"]
    assert any(fnmatch.fnmatch("demo_policy.yaml", p) for p in patterns)


def test_demo_runs_outside_the_checkout(tmp_path: Path) -> None:
    done = demo(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Traceback" not in out + done.stderr
    assert "policy: demo_policy.yaml (shipped with governed_db)" in out
    assert "environment: prod" in out
    # Exit 0 means every step went as the policy intends: the reads and the small
    # write ran, everything destructive was refused (by whichever rule).
    assert "✓ ran: 20 rows affected" in out
    assert "values masked" in " ".join(out.split())  # the trail counts what the reads masked
    assert "drop table shop.orders" in out
    assert out.count("✗ ") >= 6
    assert "intact:" in out
    assert "record content does not match its hash" in out
    assert list(tmp_path.iterdir()) == []  # nothing written where it was started


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "missing.yaml"], "missing.yaml: policy file not found"),
        (["--policy", "sub/dir/missing.yaml"], "sub/dir/missing.yaml: policy file not found"),
        (["--policy", "/nonexistent/p.yaml"], "/nonexistent/p.yaml: policy file not found"),
        (["--policy", "."], ".: policy path is a directory, not a file"),
        (["--policy", ""], "--policy is empty"),
        (["--policy", "  "], "--policy is empty"),
        (["--env", "staging"], "unknown environment 'staging'"),
        (["--env", ""], "unknown environment ''"),
    ],
)
def test_bad_options_exit_2_before_starting_anything(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"governed-db demo: error: {message}")
    assert captured.err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_invalid_policy_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("version: 1\nguardrails:\n  - {id: x, action: nope}\n")
    done = demo(tmp_path, "--policy", "bad.yaml")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("governed-db demo: error: bad.yaml:3: ")
    assert done.stderr.count("\n") == 1


def test_missing_policy_in_a_real_process(tmp_path: Path) -> None:
    # Even with a policies.example.yaml right there: a named file is never swapped.
    shutil.copy(ROOT / "policies.example.yaml", tmp_path / "policies.example.yaml")
    done = demo(tmp_path, "--policy", "missing.yaml")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "governed-db demo: error: missing.yaml: policy file not found\n"


def test_demo_survives_a_policy_that_allows_everything(tmp_path: Path) -> None:
    """Every destructive step runs, later steps fail on the server: the demo goes on."""
    (tmp_path / "open.yaml").write_text("version: 1\nenvironments: {prod: {}}\nguardrails: []\n")
    done = demo(tmp_path, "--policy", "open.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Traceback" not in out + done.stderr
    assert "policy: open.yaml" in out
    assert "✓ ran: 3000 rows affected" in out  # the DELETE without WHERE
    assert "the server refused it (UndefinedTable)" in out  # after the DROP ran
    assert "intact:" in out


def test_demo_policy_with_other_rules_still_runs(tmp_path: Path) -> None:
    """Refusals by rules the demo does not know about are narrated, not fatal."""
    (tmp_path / "strict.yaml").write_text(
        "version: 1\nenvironments: {prod: {}}\n"
        "guardrails:\n  - {id: nothing-at-all, action: block, message: 'no {operation}'}\n"
    )
    done = demo(tmp_path, "--policy", "strict.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("(rule nothing-at-all)") == 9  # every step of the script


def test_demo_leaves_a_schema_it_did_not_make(tmp_path: Path, pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("create schema shop; create table shop.precious (i int)")
    done = demo(tmp_path, "--dsn", pg_dsn)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("governed-db demo: error: schema shop already exists")
    assert done.stderr.count("\n") == 1
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("select to_regclass('shop.precious')").fetchone() == ("shop.precious",)


def test_demo_reruns_on_its_own_schema(tmp_path: Path, pg_dsn: str) -> None:
    for _ in range(2):
        done = demo(tmp_path, "--dsn", pg_dsn)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "✓ ran: 20 rows affected" in done.stdout
