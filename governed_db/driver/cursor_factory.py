"""``governed_class``: a user's cursor class combined with the gate, never replaced."""

from __future__ import annotations

from typing import Any

import psycopg

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

__all__ = ["governed_class"]

_MIXINS: tuple[tuple[type[Any], type[GovernedCursorBase]], ...] = (
    # Most specific first: server cursors subclass the client ones.
    (psycopg.AsyncServerCursor, AsyncGovernedServerCursorMixin),
    (psycopg.ServerCursor, GovernedServerCursorMixin),
    (psycopg.AsyncCursor, AsyncGovernedCursorMixin),
    (psycopg.Cursor, GovernedCursorMixin),
)
_MIXINS_RAW_SERVER: tuple[tuple[type[Any], type[GovernedCursorBase]], ...] = (
    (psycopg.AsyncRawServerCursor, AsyncGovernedServerCursorMixin),
    (psycopg.RawServerCursor, GovernedServerCursorMixin),
)


def governed_class(cls: type[Any]) -> type[Any]:
    """``cls`` itself if already governed, else a subclass with the gate mixed in."""
    if issubclass(cls, GovernedCursorBase):
        return cls
    if cls in _OWN_TWINS:
        return _OWN_TWINS[cls]
    combined = _COMBINED.get(cls)
    if combined is None:
        combined = _COMBINED.setdefault(cls, _combine(cls))
    return combined


_COMBINED: dict[type[Any], type[Any]] = {}


def _combine(cls: type[Any]) -> type[Any]:
    for base, mixin in _MIXINS_RAW_SERVER + _MIXINS:
        if issubclass(cls, base):
            return type(cls.__name__, (mixin, cls), {"__module__": cls.__module__})
    raise TypeError(
        f"{cls.__qualname__} is not a psycopg cursor class; "
        "cursor_factory must subclass psycopg.Cursor, psycopg.ServerCursor or their async twins"
    )


_OWN_TWINS: dict[type[Any], type[Any]] = {
    psycopg.Cursor: Cursor,
    psycopg.ClientCursor: ClientCursor,
    psycopg.RawCursor: RawCursor,
    psycopg.ServerCursor: ServerCursor,
    psycopg.RawServerCursor: RawServerCursor,
    psycopg.AsyncCursor: AsyncCursor,
    psycopg.AsyncClientCursor: AsyncClientCursor,
    psycopg.AsyncRawCursor: AsyncRawCursor,
    psycopg.AsyncServerCursor: AsyncServerCursor,
    psycopg.AsyncRawServerCursor: AsyncRawServerCursor,
}
