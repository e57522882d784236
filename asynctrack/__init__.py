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


# Loaded on first use, as ``mlflow.artifacts``, ``mlflow.data`` or ``mlflow.sklearn`` is reached:
# they need optional extras (pandas; scikit-learn, cloudpickle, PyYAML).
_LAZY = ("artifacts", "data", "models", "pyfunc", "sklearn")


def __getattr__(name: str):
    """``asynctrack.artifacts``, ``.data``, ``.models``, ``.pyfunc`` and ``.sklearn`` load on first use."""
    if name in _LAZY:
        import importlib

        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "MlflowClient",
    "MlflowException",
    "RunOperations",
    "artifacts",
    "data",
    "models",
    "pyfunc",
    "sklearn",
    "entities",
    "exceptions",
    "get_tracking_uri",
    "is_tracking_uri_set",
    "set_tracking_uri",
    *_fluent_all,
]
