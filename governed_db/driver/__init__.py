"""The driver: psycopg's connection and cursor classes with the gate in front.

It owns everything that needs the connection (admission at the wire, row
limits and lock timeouts, planner estimates, governed_db's own bookkeeping
cursors) and calls the governor for every decision.
"""

from governed_db.driver.connection import AsyncConnection, Connection, UnknownKeywordError
from governed_db.driver.cursor import (
    ClientCursor,
    Cursor,
    GovernedCursorBase,
    GovernedCursorMixin,
    GovernedServerCursorMixin,
    RawCursor,
    RawServerCursor,
    ServerCursor,
)
from governed_db.driver.cursor_async import (
    AsyncClientCursor,
    AsyncCursor,
    AsyncGovernedCursorMixin,
    AsyncGovernedServerCursorMixin,
    AsyncRawCursor,
    AsyncRawServerCursor,
    AsyncServerCursor,
)
from governed_db.driver.cursor_factory import governed_class

__all__ = [
    "AsyncClientCursor",
    "AsyncConnection",
    "AsyncCursor",
    "AsyncGovernedCursorMixin",
    "AsyncGovernedServerCursorMixin",
    "AsyncRawCursor",
    "AsyncRawServerCursor",
    "AsyncServerCursor",
    "ClientCursor",
    "Connection",
    "Cursor",
    "GovernedCursorBase",
    "GovernedCursorMixin",
    "GovernedServerCursorMixin",
    "RawCursor",
    "RawServerCursor",
    "ServerCursor",
    "UnknownKeywordError",
    "governed_class",
]
