"""governed_db: database governance inside the driver.

``governed_db.connect()`` is a drop-in replacement for ``psycopg.connect()``:
every statement is checked against guardrails before it runs, sensitive values
are masked in fetched rows, and every action is written to a signed audit trail.
"""

from __future__ import annotations

from typing import Any

from psycopg import (
    BINARY,
    DATETIME,
    NUMBER,
    ROWID,
    STRING,
    Binary,
    DatabaseError,
    DataError,
    Date,
    DateFromTicks,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    Time,
    TimeFromTicks,
    Timestamp,
    TimestampFromTicks,
    Warning,
)

from governed_db.connection import AsyncConnection, Connection, UnknownKeywordError
from governed_db.cursor import (
    AsyncClientCursor,
    AsyncCursor,
    AsyncRawCursor,
    AsyncRawServerCursor,
    AsyncServerCursor,
    ClientCursor,
    Cursor,
    RawCursor,
    RawServerCursor,
    ServerCursor,
)
from governed_db.errors import (
    ApprovalRequired,
    AuditError,
    BlastRadiusExceeded,
    GovernanceError,
    PolicyError,
    PolicyViolation,
)
from governed_db.governor import Call, Governor, Outcome, Session, Ticket

__version__ = "0.1.0"

# DB-API 2.0 globals, as psycopg declares them.
apilevel = "2.0"
threadsafety = 2
paramstyle = "pyformat"


def connect(
    conninfo: str = "",
    *,
    policy: Any = None,
    identity: Any = None,
    environment: str | None = None,
    **kwargs: Any,
) -> Connection:
    """Open a governed connection; a drop-in for ``psycopg.connect()``.

    ``policy`` is a path to a YAML policy, a loaded policy, or None (then the
    ``GOVERNED_DB_POLICY`` environment variable, else the built-in baseline).
    ``identity`` says who is acting (detected when None); ``environment``
    names the environment (matched from the DSN when None). Every other
    keyword goes to psycopg unchanged.
    """
    return Connection.connect(
        conninfo, policy=policy, identity=identity, environment=environment, **kwargs
    )


__all__ = [
    "BINARY",
    "DATETIME",
    "NUMBER",
    "ROWID",
    "STRING",
    "ApprovalRequired",
    "AsyncClientCursor",
    "AsyncConnection",
    "AsyncCursor",
    "AsyncRawCursor",
    "AsyncRawServerCursor",
    "AsyncServerCursor",
    "AuditError",
    "Binary",
    "BlastRadiusExceeded",
    "Call",
    "ClientCursor",
    "Connection",
    "Cursor",
    "DataError",
    "DatabaseError",
    "Date",
    "DateFromTicks",
    "Error",
    "GovernanceError",
    "Governor",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "Outcome",
    "PolicyError",
    "PolicyViolation",
    "ProgrammingError",
    "RawCursor",
    "RawServerCursor",
    "ServerCursor",
    "Session",
    "Ticket",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
    "UnknownKeywordError",
    "Warning",
    "__version__",
    "apilevel",
    "connect",
    "paramstyle",
    "threadsafety",
]
