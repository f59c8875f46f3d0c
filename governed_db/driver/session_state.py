"""Session settings that change how the server reads text, pinned.

The gate reads a statement the way the server does only while
``standard_conforming_strings`` is ``on`` (backslashes in ``'...'`` are
literal) and ``client_encoding`` is ``UTF8``. Either can be changed by a
``SET``, by ``options=`` at connect, by ``ALTER DATABASE/ROLE ... SET`` or by
the server's default. libpq keeps the server's current values on the client
(ParameterStatus messages), so checking them before every statement costs two
lookups; a drift refuses the statement (fail closed).
"""

from __future__ import annotations

from typing import Any

from governed_db.errors import GovernanceError

__all__ = ["PINNED", "check_session_state"]

#: setting -> the only value under which statements are read exactly.
PINNED: dict[bytes, bytes] = {
    b"standard_conforming_strings": b"on",
    b"client_encoding": b"UTF8",
}
_SCS = b"standard_conforming_strings"
_ENCODING = b"client_encoding"


def check_session_state(pgconn: Any) -> None:
    """Raise ``GovernanceError`` unless the pinned settings hold on ``pgconn``."""
    if pgconn.parameter_status(_SCS) == b"on" and pgconn.parameter_status(_ENCODING) == b"UTF8":
        return
    for name, wanted in PINNED.items():
        value = pgconn.parameter_status(name)
        if value != wanted:
            shown = "(unknown)" if value is None else value.decode(errors="replace")
            raise GovernanceError(
                f"the session's {name.decode()} is {shown}, not {wanted.decode()}: the server "
                "would read statement text differently from the gate, so no statement runs "
                "on this connection (fail closed)",
                rule_id="session-state",
                hint=(
                    f"Connect with {name.decode()}={wanted.decode()} (check options=, "
                    "PGOPTIONS/PGCLIENTENCODING and ALTER DATABASE/ROLE ... SET), and do "
                    "not change it during the session."
                ),
            )
