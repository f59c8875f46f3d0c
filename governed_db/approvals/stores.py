"""``open_store``: the store a policy's ``approvals.store`` names (shared per process)."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

from governed_db.approvals.file_store import FileStore
from governed_db.approvals.keys import data_dir
from governed_db.approvals.pg_store import PostgresStore
from governed_db.approvals.store import ApprovalStore
from governed_db.policy import StoreConfig

__all__ = ["close_all", "default_root", "open_store"]

_lock = threading.Lock()
_open: dict[tuple[str, str], ApprovalStore] = {}


def default_root(environ: Mapping[str, str] | None = None) -> str:
    """``<user data dir>/approvals`` (``$GOVERNED_DB_HOME/approvals`` when set)."""
    return str(data_dir(environ) / "approvals")


def open_store(config: StoreConfig, environ: Mapping[str, str] | None = None) -> ApprovalStore:
    """The store for ``config``; one per location per process."""
    if config.type == "postgres":
        key = ("postgres", config.dsn or "")
    else:
        key = ("file", os.path.abspath(config.path or default_root(environ)))
    with _lock:
        found = _open.get(key)
        if found is None:
            found = PostgresStore(key[1]) if key[0] == "postgres" else FileStore(key[1])
            _open[key] = found
        return found


def close_all() -> None:
    """Close and forget every store opened so far (tests; before a fork)."""
    with _lock:
        stores = list(_open.values())
        _open.clear()
    for store in stores:
        store.close()
