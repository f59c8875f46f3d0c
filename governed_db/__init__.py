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

from governed_db.audit import AuditSink, AuditTrail, MemorySink, Signer
from governed_db.driver import (
    AsyncClientCursor,
    AsyncConnection,
    AsyncCursor,
    AsyncRawCursor,
    AsyncRawServerCursor,
    AsyncServerCursor,
    ClientCursor,
    Connection,
    Cursor,
    RawCursor,
    RawServerCursor,
    ServerCursor,
    UnknownKeywordError,
)
from governed_db.errors import (
    ApprovalRequired,
    AuditError,
    BlastRadiusExceeded,
    GovernanceError,
    PolicyError,
    PolicyViolation,
    UnreadableQueryError,
)
from governed_db.governor import Call, Governor, Outcome, Session, Ticket
from governed_db.governor.policy_gate import PolicyGovernor
from governed_db.identity import Identity, acting_as, current_identity, detect_identity
from governed_db.policy import Context, Decision, Policy, decide, load_policy
from governed_db.sql import Facts, StatementFacts, analyze

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
    audit: Any = None,
    **kwargs: Any,
) -> Connection:
    """Open a governed connection; a drop-in for ``psycopg.connect()``.

    ``policy`` is a path to a YAML policy, a loaded policy, or None (then the
    ``GOVERNED_DB_POLICY`` environment variable, else the built-in baseline).
    ``identity`` says who is acting (detected when None); ``environment``
    names the environment (matched from the DSN when None). ``audit`` is an
    ``AuditTrail``, an audit settings mapping, an ``AuditSink`` or a list of
    them (added to the policy's), or False (off: only the session record, in
    the default spool, says so); None means the policy's ``audit`` section,
    and without one the default spool in the user data directory
    (docs/audit.md). Every other keyword goes to psycopg unchanged.
    """
    return Connection.connect(
        conninfo,
        policy=policy,
        identity=identity,
        environment=environment,
        audit=audit,
        **kwargs,
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
    "AuditSink",
    "AuditTrail",
    "Binary",
    "BlastRadiusExceeded",
    "Call",
    "ClientCursor",
    "Connection",
    "Context",
    "Cursor",
    "DataError",
    "DatabaseError",
    "Date",
    "DateFromTicks",
    "Decision",
    "Error",
    "Facts",
    "GovernanceError",
    "Governor",
    "Identity",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "MemorySink",
    "NotSupportedError",
    "OperationalError",
    "Outcome",
    "Policy",
    "PolicyError",
    "PolicyGovernor",
    "PolicyViolation",
    "ProgrammingError",
    "RawCursor",
    "RawServerCursor",
    "ServerCursor",
    "Session",
    "Signer",
    "StatementFacts",
    "Ticket",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
    "UnknownKeywordError",
    "UnreadableQueryError",
    "Warning",
    "__version__",
    "acting_as",
    "analyze",
    "apilevel",
    "connect",
    "current_identity",
    "decide",
    "detect_identity",
    "load_policy",
    "paramstyle",
    "threadsafety",
]
