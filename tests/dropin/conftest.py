"""Fixtures of the differential drop-in suite, and its lists of expected failures.

Every test that uses ``impl`` (directly or through ``connect``/``conn``/
``aconnect``/``aconn``) runs twice: ids ``psycopg`` and ``governed``.

Databases: most tests use one database shared by the whole session and keep
to temporary tables (``create temp table``), which die with their connection.
A fresh database per test (the repo's ``pg_dsn``) costs about 0.13 s, and the
suite has over 400 items, so only tests that need persistent state seen from
several connections, or new types/extensions, ask for one with
``@pytest.mark.fresh_db``.

``divergences.py`` lists the accepted divergences and the known governed_db
bugs; both become ``xfail(strict=True)`` on the ``governed`` run only, so a
test that starts passing fails until its entry is removed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from psycopg.conninfo import make_conninfo
from pytest_postgresql.executors import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from .divergences import DIVERGENCES, KNOWN_BUGS
from .support import IMPLS, Impl

_SHARED_DBNAME = "governed_dropin_shared"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fresh_db: the test gets a fresh database (pg_dsn) instead of the shared one"
    )


def _expected_failure(item: pytest.Item) -> pytest.MarkDecorator | None:
    """The xfail marker for the governed run of a listed test, else None."""
    callspec = getattr(item, "callspec", None)
    if callspec is None or callspec.params.get("impl") != "governed":
        return None
    file = item.path.name
    name = item.name.replace("[governed-", "[").replace("-governed]", "]")
    name = name.replace("[governed]", "")
    for key in (f"{file}::{name}", f"{file}::{getattr(item, 'originalname', item.name)}"):
        for prefix, table in (
            ("governed_db bug", KNOWN_BUGS),
            ("accepted divergence", DIVERGENCES),
        ):
            if key in table:
                expected = table[key]
                reason, raises = expected if isinstance(expected, tuple) else (expected, None)
                return pytest.mark.xfail(reason=f"{prefix}: {reason}", raises=raises, strict=True)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        marker = _expected_failure(item)
        if marker is not None:
            item.add_marker(marker)


@pytest.fixture(scope="session")
def shared_dsn(pg_server: NoopExecutor) -> Iterator[str]:
    """One database for the tests that keep to temporary tables."""
    janitor = DatabaseJanitor(
        user=pg_server.user,
        host=pg_server.host,
        port=pg_server.port,
        dbname=_SHARED_DBNAME,
        template_dbname=pg_server.template_dbname,
        password=pg_server.password,
    )
    janitor.drop()
    with janitor:
        params = {
            "host": pg_server.host,
            "port": pg_server.port,
            "user": pg_server.user,
            "dbname": _SHARED_DBNAME,
        }
        if pg_server.password:
            params["password"] = pg_server.password
        yield make_conninfo(**params)


@pytest.fixture
def dsn(request: pytest.FixtureRequest, shared_dsn: str) -> str:
    if request.node.get_closest_marker("fresh_db"):
        return str(request.getfixturevalue("pg_dsn"))
    return shared_dsn


@pytest.fixture(params=["psycopg", "governed"])
def impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Impl:
    """psycopg's classes, or governed_db's with the built-in baseline policy."""
    monkeypatch.delenv("GOVERNED_DB_POLICY", raising=False)
    return IMPLS[request.param]


@pytest.fixture
def connect(impl: Impl, dsn: str) -> Iterator[Callable[..., Any]]:
    """``impl.Connection.connect`` on this test's database; closed at teardown."""
    opened: list[Any] = []

    def _connect(**kwargs: Any) -> Any:
        conn = impl.Connection.connect(dsn, **kwargs)
        opened.append(conn)
        return conn

    yield _connect
    for conn in opened:
        conn.close()


@pytest.fixture
def conn(connect: Callable[..., Any]) -> Any:
    return connect()


@pytest.fixture
async def aconnect(impl: Impl, dsn: str) -> AsyncIterator[Callable[..., Any]]:
    """``impl.AsyncConnection.connect`` on this test's database; closed at teardown."""
    opened: list[Any] = []

    async def _connect(**kwargs: Any) -> Any:
        conn = await impl.AsyncConnection.connect(dsn, **kwargs)
        opened.append(conn)
        return conn

    yield _connect
    for conn in opened:
        await conn.close()


@pytest.fixture
async def aconn(aconnect: Callable[..., Any]) -> Any:
    return await aconnect()
