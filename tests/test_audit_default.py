"""Audit is on by default: the user data directory's spool, a key made on first use,
and ``audit=False`` / ``audit: false`` recorded as such.

Each case runs in a fresh interpreter (the first-use key and its notice are once
per process), with its own data and config directories.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import platformdirs
import pytest

from governed_db.audit import PublicKeys, Verifier, spool_files
from governed_db.audit.defaults import DATA_DIR_ENV, default_spool
from governed_db.audit.reader import iter_records

ROOT = Path(__file__).resolve().parent.parent


def _run(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "import governed_db, os\ndsn = os.environ['TEST_DSN']\n" + textwrap.dedent(script)
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def env(pg_dsn: str, tmp_path: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNED_DB_")}
    out.update(
        TEST_DSN=pg_dsn,
        GOVERNED_DB_DATA_DIR=str(tmp_path / "data"),
        GOVERNED_DB_HOME=str(tmp_path / "config"),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    return out


def _records(env: dict[str, str]) -> list[dict[str, Any]]:
    return list(iter_records(Path(env["GOVERNED_DB_DATA_DIR"]) / "audit"))


def _verify(env: dict[str, str]) -> None:
    keys = PublicKeys()
    keys.load(Path(env["GOVERNED_DB_HOME"]) / "public-keys")
    spool = Path(env["GOVERNED_DB_DATA_DIR"]) / "audit"
    report = Verifier(keys).verify(spool_files(spool))
    assert report.ok, report.errors


def test_no_configuration_records_to_the_data_dir_signed(env: dict[str, str]) -> None:
    script = """
    with governed_db.connect(dsn, autocommit=True) as conn:
        conn.execute("select 1 as answer").fetchall()
    """
    first = _run(script, env)
    assert first.returncode == 0, first.stderr
    notice = [line for line in first.stderr.splitlines() if "signing key" in line]
    key_file = Path(env["GOVERNED_DB_HOME"]) / "signing-key.pem"
    assert len(notice) == 1, first.stderr
    assert str(key_file) in notice[0]
    assert "created audit signing key" in notice[0]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    second = _run(script, env)  # the key exists now: no notice, same key
    assert second.returncode == 0, second.stderr
    assert "signing key" not in second.stderr

    records = _records(env)
    genesis = [r for r in records if r["kind"] == "genesis"]
    assert len(genesis) == 2
    assert {g["durability"] for g in genesis} == {"batch"}
    assert {g["signing"] for g in genesis} == {"checkpoint"}
    intents = [r for r in records if r["kind"] == "intent"]
    assert [r["db.query.text"] for r in intents] == ["select 1 as answer"] * 2
    assert sum(r["kind"] == "outcome" for r in records) == 2
    assert {r["kind"] for r in records} >= {"session", "end", "close"}
    assert all("audit" not in r for r in records if r["kind"] == "session")
    assert len({r["kid"] for r in records if "kid" in r}) == 1
    _verify(env)


def test_settings_without_a_place_get_the_default_spool(env: dict[str, str]) -> None:
    done = _run(
        """
        with governed_db.connect(dsn, autocommit=True, audit={"durability": "strict"}) as c:
            c.execute("select 2")
        """,
        env,
    )
    assert done.returncode == 0, done.stderr
    records = _records(env)
    assert [r["durability"] for r in records if r["kind"] == "genesis"] == ["strict"]
    assert [r["db.query.text"] for r in records if r["kind"] == "intent"] == ["select 2"]


def test_policy_section_without_a_path_gets_the_default_spool(
    env: dict[str, str], tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nguardrails: []\naudit:\n  redact_literals: true\n")
    env["GOVERNED_DB_POLICY"] = str(policy)
    done = _run("governed_db.connect(dsn, autocommit=True).execute(\"select 'x'\")", env)
    assert done.returncode == 0, done.stderr
    intents = [r for r in _records(env) if r["kind"] == "intent"]
    assert [r["query_redacted"] for r in intents] == [True]


@pytest.mark.parametrize("how", ["argument", "policy"])
def test_audit_off_is_said_by_the_session_record(
    env: dict[str, str], tmp_path: Path, how: str
) -> None:
    if how == "policy":
        policy = tmp_path / "off.yaml"
        policy.write_text("version: 1\nguardrails: []\naudit: false\n")
        env["GOVERNED_DB_POLICY"] = str(policy)
        kwargs, by = "", f"policy {policy} (audit: false)"
    else:
        kwargs, by = ", audit=False", "connect(audit=False)"
    done = _run(
        f"""
        with governed_db.connect(dsn, autocommit=True{kwargs}) as conn:
            conn.execute("select 42").fetchall()
            conn.execute("select 43").fetchall()
        """,
        env,
    )
    assert done.returncode == 0, done.stderr
    records = _records(env)
    sessions = [r for r in records if r["kind"] == "session"]
    assert len(sessions) == 1
    assert sessions[0]["audit"] == "off"
    assert sessions[0]["audit.off_by"] == by
    assert [r["session.id"] for r in records if r["kind"] == "end"] == [sessions[0]["session.id"]]
    assert not [r for r in records if r["kind"] in ("intent", "outcome", "refused")]
    _verify(env)


def test_explicit_argument_wins_over_policy_off(env: dict[str, str], tmp_path: Path) -> None:
    policy = tmp_path / "off.yaml"
    policy.write_text("version: 1\nguardrails: []\naudit: false\n")
    env["GOVERNED_DB_POLICY"] = str(policy)
    done = _run("governed_db.connect(dsn, autocommit=True, audit=True).execute('select 7')", env)
    assert done.returncode == 0, done.stderr
    assert [r["db.query.text"] for r in _records(env) if r["kind"] == "intent"] == ["select 7"]


def test_unwritable_default_spool_fails_closed_with_what_to_do(
    env: dict[str, str], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env[DATA_DIR_ENV] = str(blocker / "data")  # below a file: never a directory
    done = _run(
        """
        import psycopg
        try:
            governed_db.connect(dsn, autocommit=True)
        except governed_db.AuditError as exc:
            print("REFUSED", exc)
        with psycopg.connect(dsn) as raw:
            print("ROWS", raw.execute("select count(*) from pg_stat_activity").fetchone())
        """,
        env,
    )
    assert done.returncode == 0, done.stderr
    assert "REFUSED" in done.stdout
    assert DATA_DIR_ENV in done.stdout
    assert "audit=False" in done.stdout


def test_audit_off_still_connects_where_nothing_can_be_written(
    env: dict[str, str], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env[DATA_DIR_ENV] = str(blocker / "data")
    done = _run(
        """
        with governed_db.connect(dsn, autocommit=True, audit=False) as conn:
            print("GOT", conn.execute("select 5").fetchone()[0])
        with governed_db.connect(dsn, autocommit=True, audit=False) as conn:
            print("GOT", conn.execute("select 6").fetchone()[0])
        """,
        env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["GOT", "5", "GOT", "6"]
    warned = [line for line in done.stderr.splitlines() if "could not be recorded" in line]
    assert len(warned) == 1, done.stderr  # once per process, not per connection


def test_code_sinks_alone_write_no_spool(env: dict[str, str]) -> None:
    done = _run(
        """
        from governed_db.audit import MemorySink
        sink = MemorySink()
        with governed_db.connect(dsn, autocommit=True, audit=sink) as conn:
            conn.execute("select 8")
        print("KINDS", sorted({r["kind"] for r in sink.records}))
        """,
        env,
    )
    assert done.returncode == 0, done.stderr
    assert "'intent'" in done.stdout
    assert not (Path(env[DATA_DIR_ENV]) / "audit").exists()


def test_default_spool_location() -> None:
    assert default_spool({DATA_DIR_ENV: "/srv/x", "GOVERNED_DB_HOME": "/h"}) == Path("/srv/x/audit")
    assert default_spool({"GOVERNED_DB_HOME": "/h"}) == Path("/h/audit")
    expected = Path(platformdirs.user_data_dir("governed-db", appauthor=False)) / "audit"
    assert default_spool({}) == expected


def test_the_suite_never_writes_to_the_real_user_data_dir() -> None:
    real = Path(platformdirs.user_data_dir("governed-db", appauthor=False))
    assert DATA_DIR_ENV in os.environ
    assert not default_spool().is_relative_to(real)
    assert os.environ["PYTHON_KEYRING_BACKEND"] == "keyring.backends.fail.Keyring"


def test_a_forked_child_writes_a_chain_of_its_own(env: dict[str, str]) -> None:
    done = _run(
        """
        import sys
        conn = governed_db.connect(dsn, autocommit=True)
        conn.execute("select 'parent-before'")
        pid = os.fork()
        if pid == 0:  # the child: its own connection, its own chain
            with governed_db.connect(dsn, autocommit=True) as child:
                child.execute("select 'child'")
            sys.exit(0)
        _, status = os.waitpid(pid, 0)
        conn.execute("select 'parent-after'")
        conn.close()
        print("CHILD", status)
        """,
        env,
    )
    assert done.returncode == 0, done.stderr
    assert "CHILD 0" in done.stdout
    records = _records(env)
    chains: dict[str, list[str]] = {}
    for r in records:
        if r["kind"] == "intent":
            chains.setdefault(r["chain"], []).append(r["db.query.text"])
    assert sorted(chains.values()) == [
        ["select 'child'"],
        ["select 'parent-before'", "select 'parent-after'"],
    ]
    assert sum(r["kind"] == "close" for r in records) == 2  # both closed normally
    _verify(env)
