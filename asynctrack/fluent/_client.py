"""The client the module-level API talks through: one per tracking URI, made once.

MLflow's fluent functions build ``MlflowClient()`` on every call; here that would cost more than
the logging call itself, so clients are kept per URI (they share the process's store and writer
anyway).
"""

from __future__ import annotations

from ..client import MlflowClient
from ..tracking_uri import get_tracking_uri

_clients: dict[str, MlflowClient] = {}


def client() -> MlflowClient:
    """The client of the current tracking URI."""
    uri = get_tracking_uri()
    found = _clients.get(uri)
    if found is None:
        found = _clients.setdefault(uri, MlflowClient(uri))
    return found
