"""Backends behind one interface; ``store_for_uri`` picks one by the URI's scheme."""

from __future__ import annotations

import threading

from ..exceptions import INVALID_PARAMETER_VALUE, MlflowException
from .base import Store, StoreUnavailable

_stores: dict[str, Store] = {}
_lock = threading.Lock()


def _create(uri: str) -> Store:
    scheme = uri.split(":", 1)[0] if ":" in uri else ""
    if scheme == "sqlite":
        from ._sqlite import SqliteStore

        return SqliteStore(uri)
    if scheme in ("http", "https"):
        from ._http import HttpStore

        return HttpStore(uri)
    raise MlflowException(
        f"Tracking URI {uri!r} is not supported yet: asynctrack stores to SQLite "
        "(sqlite:///path/to/mlflow.db) or to a tracking server (http:// or https://).",
        INVALID_PARAMETER_VALUE,
    )


def store_for_uri(uri: str) -> Store:
    """The process's one store for ``uri`` (stores hold connections: share them)."""
    store = _stores.get(uri)
    if store is None:
        with _lock:
            store = _stores.get(uri)
            if store is None:
                store = _stores[uri] = _create(uri)
    return store


__all__ = ["Store", "StoreUnavailable", "store_for_uri"]
