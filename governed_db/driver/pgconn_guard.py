"""``conn.pgconn`` outside psycopg and governed_db: libpq's handle, without its senders.

psycopg documents ``Connection.pgconn``, the libpq connection, and its
``exec_``/``send_query`` methods run SQL without any cursor. On a governed
connection, code other than psycopg's and governed_db's own gets a
``GuardedPGconn``: every attribute reads through to the real handle, but the
methods that send a statement or prepare/close prepared statements refuse
(``GovernanceError``, audited). psycopg's own code, which reaches the handle
from its modules, gets the real one. Telling them apart costs one frame
lookup per access, about 0.15 µs; psycopg reads the attribute about once per
``execute``.
"""

from __future__ import annotations

import sys
from typing import Any

from governed_db.errors import GovernanceError

__all__ = [
    "SENDERS",
    "TRUSTED_GLOBALS",
    "TRUSTED_ROOTS",
    "GuardedHandle",
    "GuardedPGconn",
    "guarded_view",
    "trusted_namespace",
]

#: libpq calls that send SQL, or prepare, run or close prepared statements.
SENDERS = frozenset(
    {
        "exec_",
        "exec_params",
        "exec_prepared",
        "prepare",
        "send_query",
        "send_query_params",
        "send_prepare",
        "send_query_prepared",
        "close_prepared",
        "send_close_prepared",
        "close_portal",
        "send_close_portal",
    }
)
TRUSTED_ROOTS = frozenset({"psycopg", "psycopg_pool", "psycopg_binary", "governed_db"})


class GuardedPGconn:
    """A read-through view of a ``psycopg.pq.PGconn`` that cannot send SQL."""

    __slots__ = ("_conn", "_real")

    def __init__(self, real: Any, conn: Any) -> None:
        object.__setattr__(self, "_real", real)
        object.__setattr__(self, "_conn", conn)

    def __getattr__(self, name: str) -> Any:
        if name in SENDERS:
            return self._refuser(name)
        return getattr(self._real, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._real, name, value)

    def __repr__(self) -> str:
        return f"<GuardedPGconn of {self._real!r}>"

    def _refuser(self, name: str) -> Any:
        conn = self._conn

        def refuse(*args: Any, **kwargs: Any) -> Any:
            error = GovernanceError(
                f"conn.pgconn.{name}() sends SQL straight to libpq, past the gate and the "
                "audit trail; refused on a governed connection (fail closed)",
                rule_id="ungoverned-send",
                hint="Run the statement with conn.execute() or a cursor.",
            )
            state = getattr(conn, "_gov_state", None)
            if state is not None:
                query = args[0] if args and isinstance(args[0], bytes) else None
                text = query.decode("utf-8", errors="replace") if query is not None else None
                state[0].driver_refused(state[1], "execute", text, error)
            raise error

        return refuse


#: id(module globals) -> whether that module may use libpq's real handle.
TRUSTED_GLOBALS: dict[int, bool] = {}


def trusted_namespace(namespace: dict[str, Any]) -> bool:
    """True if ``namespace`` (a frame's globals) is psycopg's or governed_db's code."""
    trusted = TRUSTED_GLOBALS.get(id(namespace))
    if trusted is None:
        trusted = namespace.get("__name__", "").partition(".")[0] in TRUSTED_ROOTS
        if len(TRUSTED_GLOBALS) < 4096:
            TRUSTED_GLOBALS[id(namespace)] = (
                trusted  # module namespaces live as long as the process
            )
    return trusted


class GuardedHandle:
    """Mixin for psycopg objects that keep the connection's libpq handle as ``pgconn``.

    psycopg's ``Transaction`` and ``Pipeline`` store ``connection.pgconn`` on
    themselves; read from outside psycopg and governed_db it is the guarded view.
    """

    _conn: Any

    @property
    def pgconn(self) -> Any:
        """libpq's connection; outside psycopg and governed_db, a view that cannot send SQL."""
        real = self.__dict__["_gov_real_pgconn"]
        namespace = sys._getframe(1).f_globals
        if TRUSTED_GLOBALS.get(id(namespace)) or trusted_namespace(namespace):
            return real
        return guarded_view(self._conn, real)

    @pgconn.setter
    def pgconn(self, value: Any) -> None:
        self.__dict__["_gov_real_pgconn"] = value


def guarded_view(conn: Any, real: Any) -> GuardedPGconn:
    """The connection's guarded view of ``real`` (made once)."""
    guarded: GuardedPGconn | None = conn.__dict__.get("_gov_pgconn_view")
    if guarded is None or guarded._real is not real:
        guarded = GuardedPGconn(real, conn)
        conn.__dict__["_gov_pgconn_view"] = guarded
    return guarded
