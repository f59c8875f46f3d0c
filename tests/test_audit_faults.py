"""Outcomes say what happened, under real faults: pipelines, closes mid-call, dead backends.

Each test runs statements against a real server with a strict-durability
trail and reads the trail back: every intent has exactly one outcome, and
that outcome is the statement's own (its rowcount, its error, or "not run").
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors

import governed_db
from governed_db.audit import AuditTrail, Signer
from governed_db.audit.reader import iter_records

KEY = Signer.generate()


@pytest.fixture
def trail(tmp_path: Path) -> Any:
    t = AuditTrail.from_settings(
        {"path": str(tmp_path / "audit"), "durability": "strict"}, signer=KEY
    )
    yield t
    t.close()


def _outcomes(trail: Any, tmp_path: Path) -> dict[str, dict[str, Any]]:
    """Statement text -> its outcome record (each intent must have exactly one)."""
    trail.flush()
    records = list(iter_records(tmp_path / "audit"))
    intents = {r["seq"]: r for r in records if r["kind"] == "intent"}
    outcomes = [r for r in records if r["kind"] == "outcome"]
    assert sorted(o["intent_seq"] for o in outcomes) == sorted(intents), "one outcome per intent"
    return {intents[o["intent_seq"]]["db.query.text"]: o for o in outcomes}


def _kinds(trail: Any, tmp_path: Path) -> list[str]:
    trail.flush()
    return [r["kind"] for r in iter_records(tmp_path / "audit")]


def _end_reasons(trail: Any, tmp_path: Path) -> list[str]:
    trail.flush()
    return [r["reason"] for r in iter_records(tmp_path / "audit") if r["kind"] == "end"]


def test_a_failing_statement_in_a_pipeline_has_its_own_error(
    pg_dsn: str, trail: Any, tmp_path: Path
) -> None:
    with governed_db.connect(pg_dsn, autocommit=True, audit=trail) as conn:
        first, second = conn.cursor(), conn.cursor()
        with pytest.raises(errors.DivisionByZero), conn.pipeline():
            first.execute("select 1 as ok")
            first.execute("select 1/0 as boom")
            second.execute("select 2 as later")
            second.execute("select 3 as latest")
    out = _outcomes(trail, tmp_path)
    assert out["select 1 as ok"]["rowcount"] == 1
    assert out["select 1 as ok"]["error.type"] is None
    assert out["select 1/0 as boom"]["db.response.status_code"] == "22012"
    assert out["select 1/0 as boom"]["error.type"] == "DivisionByZero"
    assert "select 2 as later" in out  # queued after the failure (its call raised it)
    for text, outcome in out.items():
        if text.startswith(("select 2", "select 3")):
            assert outcome["error.type"] == "PipelineAborted", "not run"
            assert outcome["rowcount"] is None


def test_pipeline_successes_carry_their_rowcounts(pg_dsn: str, trail: Any, tmp_path: Path) -> None:
    with governed_db.connect(pg_dsn, audit=trail) as conn:
        conn.execute("create temp table t (id int)")
        cur = conn.cursor()
        with conn.pipeline():
            cur.execute("insert into t select generate_series(1, 3)")
            cur.execute("update t set id = id + 1 where id > 1")
            cur.executemany("insert into t values (%s)", [(10,), (11,), (12,), (13,)])
            psycopg.Cursor(conn).execute("delete from t where id = 10")
    out = _outcomes(trail, tmp_path)
    assert out["insert into t select generate_series(1, 3)"]["rowcount"] == 3
    assert out["update t set id = id + 1 where id > 1"]["rowcount"] == 2
    assert out["insert into t values ($1)"]["rowcount"] == 4
    assert out["delete from t where id = 10"]["rowcount"] == 1


def test_an_error_in_a_pipelined_executemany_is_its_own(
    pg_dsn: str, trail: Any, tmp_path: Path
) -> None:
    with governed_db.connect(pg_dsn, autocommit=True, audit=trail) as conn:
        conn.execute("create temp table u (id int primary key)")
        cur = conn.cursor()
        with pytest.raises(errors.UniqueViolation), conn.pipeline():
            cur.executemany("insert into u values (%s)", [(1,), (1,), (2,)])
            cur.execute("select 'after' as later")
            cur.execute("select 'later still' as latest")
    out = _outcomes(trail, tmp_path)
    assert out["insert into u values ($1)"]["error.type"] == "UniqueViolation"
    for text, outcome in out.items():
        if "later" in text or "latest" in text:
            assert outcome["error.type"] == "PipelineAborted"


async def test_async_pipeline_outcomes(pg_dsn: str, trail: Any, tmp_path: Path) -> None:
    conn = await governed_db.AsyncConnection.connect(pg_dsn, autocommit=True, audit=trail)
    async with conn:
        cur = conn.cursor()
        with pytest.raises(errors.DivisionByZero):
            async with conn.pipeline():
                await cur.execute("select 10 as fine")
                await cur.execute("select 1/0 as bad")
                await cur.execute("select 11 as skipped")
                await cur.execute("select 12 as skipped")
    out = _outcomes(trail, tmp_path)
    assert out["select 10 as fine"]["rowcount"] == 1
    assert out["select 1/0 as bad"]["error.type"] == "DivisionByZero"
    assert "select 11 as skipped" in out
    for text, outcome in out.items():
        if "skipped" in text:
            assert outcome["error.type"] == "PipelineAborted"


@pytest.mark.parametrize("how", ["stream", "copy"])
def test_close_while_running_keeps_the_outcome_and_psycopgs_error(
    pg_dsn: str, trail: Any, tmp_path: Path, how: str
) -> None:
    conn = governed_db.connect(pg_dsn, autocommit=True, audit=trail)
    cur = conn.cursor()
    with pytest.raises(psycopg.OperationalError) as info:
        if how == "stream":
            for i, _row in enumerate(cur.stream("select generate_series(1, 100000) as n")):
                if i == 5:
                    conn.close()
        else:
            with cur.copy("copy (select generate_series(1, 100000)) to stdout") as copy:
                for i, _data in enumerate(copy):
                    if i == 5:
                        conn.close()
    assert not isinstance(info.value, governed_db.GovernanceError)
    (outcome,) = _outcomes(trail, tmp_path).values()
    assert outcome["error.type"] == "OperationalError"
    kinds = _kinds(trail, tmp_path)
    assert kinds.index("outcome") < kinds.index("end"), "the outcome precedes the session's end"
    assert _end_reasons(trail, tmp_path) == ["closed"]


@pytest.mark.parametrize("how", ["stream", "copy"])
async def test_async_close_while_running_keeps_the_outcome(
    pg_dsn: str, trail: Any, tmp_path: Path, how: str
) -> None:
    conn = await governed_db.AsyncConnection.connect(pg_dsn, autocommit=True, audit=trail)
    cur = conn.cursor()
    with pytest.raises(psycopg.OperationalError) as info:
        if how == "stream":
            i = 0
            async for _row in cur.stream("select generate_series(1, 100000) as n"):
                i += 1
                if i == 5:
                    await conn.close()
        else:
            async with cur.copy("copy (select generate_series(1, 100000)) to stdout") as copy:
                i = 0
                async for _data in copy:
                    i += 1
                    if i == 5:
                        await conn.close()
    assert not isinstance(info.value, governed_db.GovernanceError)
    (outcome,) = _outcomes(trail, tmp_path).values()
    assert outcome["error.type"] == "OperationalError"


def _terminate(dsn: str, pid: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("select pg_terminate_backend(%s)", (pid,))


def test_a_terminated_backend_ends_the_session_without_close(
    pg_dsn: str, trail: Any, tmp_path: Path
) -> None:
    conn = governed_db.connect(pg_dsn, autocommit=True, audit=trail)
    conn.execute("select 1")
    _terminate(pg_dsn, conn.info.backend_pid)
    with pytest.raises(psycopg.OperationalError):
        conn.execute("select 'after the kill' as x")
    # A pool discards a broken connection without closing it: the end is already written.
    out = _outcomes(trail, tmp_path)
    assert out["select 'after the kill' as x"]["error.type"] is not None
    assert _kinds(trail, tmp_path)[-1] == "end"
    with pytest.raises(psycopg.OperationalError):  # psycopg's own error, not a governance one
        conn.execute("select 2")
    conn.close()
    assert _end_reasons(trail, tmp_path) == ["broken"]


async def test_async_terminated_backend_ends_the_session(
    pg_dsn: str, trail: Any, tmp_path: Path
) -> None:
    conn = await governed_db.AsyncConnection.connect(pg_dsn, autocommit=True, audit=trail)
    await conn.execute("select 1")
    await asyncio.to_thread(_terminate, pg_dsn, conn.info.backend_pid)
    with pytest.raises(psycopg.OperationalError):
        await conn.execute("select 'gone' as x")
    assert _kinds(trail, tmp_path)[-1] == "end"
    await conn.close()
    assert _end_reasons(trail, tmp_path) == ["broken"]


_EXITS_WITHOUT_CLOSE = """
import sys
import governed_db
from governed_db.audit import AuditTrail, Signer

trail = AuditTrail.from_settings(
    {"path": sys.argv[2], "durability": "batch"}, signer=Signer.generate()
)
conn = governed_db.connect(sys.argv[1], autocommit=True, audit=trail)
conn.execute("select 'still open at exit' as x").fetchone()
# no close(): the process just ends
"""


def test_a_session_left_open_at_exit_gets_its_end(pg_dsn: str, tmp_path: Path) -> None:
    script = tmp_path / "exits.py"
    script.write_text(_EXITS_WITHOUT_CLOSE)
    done = subprocess.run(
        [sys.executable, str(script), pg_dsn, str(tmp_path / "audit")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    records = list(iter_records(tmp_path / "audit"))
    kinds = [r["kind"] for r in records]
    assert kinds.count("session") == 1
    assert [r["reason"] for r in records if r["kind"] == "end"] == ["exit"]
    assert kinds.index("outcome") < kinds.index("end")
