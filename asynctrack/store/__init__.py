"""Backends behind one interface; ``store_for_uri`` picks one by the URI's scheme."""

from __future__ import annotations

import threading

from ..exceptions import INVALID_PARAMETER_VALUE, MlflowException
from .base import Store, StoreUnavailable, redacted

_stores: dict[str, Store] = {}
_lock = threading.Lock()


def _create(uri: str, artifact_root: str | None, read_replica_uri: str | None = None) -> Store:
    scheme = uri.split(":", 1)[0] if ":" in uri else ""
    postgres = scheme.split("+", 1)[0].lower() in ("postgresql", "postgres")  # _postgres.uri.SCHEMES
    if read_replica_uri and not postgres:
        raise MlflowException(
            f"A read replica is for a PostgreSQL store; {redacted(uri)!r} has none.",
            INVALID_PARAMETER_VALUE,
        )
    if scheme == "sqlite":
        from ._sqlite import SqliteStore

        return SqliteStore(uri, artifact_root)
    if postgres:
        from ._postgres import PostgresStore

        return PostgresStore(uri, artifact_root, read_replica_uri)
    if artifact_root is not None and scheme in ("http", "https"):
        raise MlflowException(
            f"An artifact root cannot be given for {uri!r}: a tracking server chooses its own.",
            INVALID_PARAMETER_VALUE,
        )
    if scheme in ("http", "https"):
        from ._http import HttpStore

        return HttpStore(uri)
    raise MlflowException(
        f"Tracking URI {uri!r} is not supported: asynctrack stores to SQLite "
        "(sqlite:///path/to/mlflow.db), to PostgreSQL (postgresql://user@host:port/db) or to a "
        "tracking server (http:// or https://).",
        INVALID_PARAMETER_VALUE,
    )


def store_for_uri(
    uri: str, artifact_root: str | None = None, read_replica_uri: str | None = None
) -> Store:
    """The process's one store for ``uri`` (stores hold connections: share them).

    ``artifact_root``: where a SQLite store puts the artifacts of the experiments it creates
    (MLflow's ``--default-artifact-root``; default ``./mlruns``, made absolute). It is the
    store's from its creation on, so asking again with another root is an error rather than a
    silently different root. ``read_replica_uri``: a PostgreSQL store's read replica (MLflow's
    ``--read-replica-backend-store-uri``), which answers its searches and metric histories."""
    store = _stores.get(uri)
    if store is None:
        with _lock:
            store = _stores.get(uri)
            if store is None:
                store = _stores[uri] = _create(uri, artifact_root, read_replica_uri)
                return store
    if read_replica_uri and getattr(store, "read_replica_uri", None) != read_replica_uri:
        raise MlflowException(
            f"The store for {redacted(uri)!r} is already open in this process without the read "
            "replica asked for now.",
            INVALID_PARAMETER_VALUE,
        )
    if artifact_root is not None and getattr(store, "artifact_root", None) != artifact_root:
        raise MlflowException(
            f"The store for {uri!r} is already open in this process with the artifact root "
            f"{getattr(store, 'artifact_root', None)!r}, not {artifact_root!r}.",
            INVALID_PARAMETER_VALUE,
        )
    return store


__all__ = ["Store", "StoreUnavailable", "store_for_uri"]
