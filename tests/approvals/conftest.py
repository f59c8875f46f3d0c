"""Each approvals test gets its own governed-db home (keys, file store) and a table."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

ROWS = 20


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("GOVERNED_DB_HOME", str(path))
    for name in ("GOVERNED_DB_POLICY", "GOVERNED_DB_APPROVER", "GOVERNED_DB_APPROVER_KEY"):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.fixture
def dsn(pg_dsn: str) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("create table orders (id int primary key, note text)")
        conn.execute(f"insert into orders select g, 'n' || g from generate_series(1, {ROWS}) g")
        conn.execute("analyze orders")
    return pg_dsn
