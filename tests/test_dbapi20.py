"""Stuart Bishop's DB-API 2.0 compliance suite, run with ``driver = governed_db``."""

from __future__ import annotations

from typing import Any

import pytest

import governed_db

from . import dbapi20


@pytest.fixture(autouse=True)
def _dsn(request: pytest.FixtureRequest, pg_dsn: str) -> None:
    request.instance.connect_args = (pg_dsn,)


class TestGovernedDbApi20(dbapi20.DatabaseAPI20Test):
    driver = governed_db
    connect_args: tuple[Any, ...] = ()
    connect_kw_args: dict[str, Any] = {}  # noqa: RUF012
    lower_func = "lower"
    _opened: list[Any]

    def _connect(self) -> Any:
        # Two of the suite's tests never close their connection: track and close them.
        conn = super()._connect()
        self.__dict__.setdefault("_opened", []).append(conn)
        return conn

    def tearDown(self) -> None:
        for conn in self.__dict__.get("_opened", []):
            conn.close()
        super().tearDown()

    def test_nextset(self) -> None:
        pytest.skip("DB-API's nextset test needs a stored procedure returning several sets")

    def test_setoutputsize(self) -> None:
        pytest.skip("setoutputsize is a documented no-op in psycopg 3")


# The suite predates unittest's current names; alias them to avoid DeprecationWarning.
TestGovernedDbApi20.failUnless = TestGovernedDbApi20.assertTrue  # type: ignore[assignment]
TestGovernedDbApi20.failIf = TestGovernedDbApi20.assertFalse  # type: ignore[assignment]
TestGovernedDbApi20.assertEquals = TestGovernedDbApi20.assertEqual  # type: ignore[assignment]
