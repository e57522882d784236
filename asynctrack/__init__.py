"""asynctrack: the MLflow Tracking API, on a background writer into MLflow's own SQLite file.

``import asynctrack as mlflow``: the names here are MLflow's.
"""

from . import entities, exceptions
from .client import MlflowClient
from .exceptions import MlflowException
from .fluent import *  # noqa: F403 - the module-level API is MLflow's, name for name
from .fluent import __all__ as _fluent_all
from .run_operations import RunOperations
from .tracking_uri import get_tracking_uri, is_tracking_uri_set, set_tracking_uri

__version__ = "0.1.0"


def __getattr__(name: str):
    """``asynctrack.artifacts`` and ``asynctrack.data`` load on first use, as ``mlflow.artifacts``
    and ``mlflow.data`` are reached."""
    if name in ("artifacts", "data"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "MlflowClient",
    "MlflowException",
    "RunOperations",
    "artifacts",
    "data",
    "entities",
    "exceptions",
    "get_tracking_uri",
    "is_tracking_uri_set",
    "set_tracking_uri",
    *_fluent_all,
]
