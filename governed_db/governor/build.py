"""``build_governor``: the gate for a new connection, from ``connect()``'s keywords."""

from __future__ import annotations

from typing import Any

from governed_db.governor.base import Governor

__all__ = ["build_governor"]


def build_governor(
    *,
    policy: Any = None,
    identity: Any = None,
    environment: str | None = None,
    governor: Governor | None = None,
) -> Governor:
    """``governor`` as given, else a gate for ``policy`` (see ``governed_db.connect``)."""
    if governor is not None:
        if policy is not None:
            raise TypeError("connect() takes either policy= or governor=, not both")
        if not isinstance(governor, Governor):
            raise TypeError(
                f"governor= must be a governed_db.Governor, not {type(governor).__name__}"
            )
        return governor
    return Governor()
