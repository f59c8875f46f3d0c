"""The async twin settles approvals the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

import governed_db
from tests.approvals.conftest import ROWS
from tests.approvals.helpers import DELETE, approval_policy, count


async def test_async_connection_runs_under_a_grant(dsn: str, home: Path) -> None:
    setup = approval_policy(home)

    async def connect() -> governed_db.AsyncConnection:
        return await governed_db.AsyncConnection.connect(
            dsn,
            policy=setup.policy_path,
            environment="prod",
            identity="agent:claude",
            audit=False,
            autocommit=True,
        )

    async with await connect() as conn:
        with pytest.raises(governed_db.ApprovalRequired) as info:
            await conn.execute(DELETE)
    assert info.value.approval_id
    setup.decide(info.value.approval_id, "alice", max_rows=10)
    async with await connect() as conn:
        with pytest.raises(governed_db.BlastRadiusExceeded):
            await conn.execute(DELETE)
    assert count(dsn) == ROWS
