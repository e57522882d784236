"""Which store a client talks to when it is not told: MLflow 3's resolution order."""

from __future__ import annotations

import os

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"

_tracking_uri: str | None = None


def set_tracking_uri(uri: str | os.PathLike) -> None:
    """Set the process-wide tracking URI (None or "" returns to the default).

    As in MLflow, it is exported as ``MLFLOW_TRACKING_URI`` too, so that spawned workers and
    subprocesses log to the same store.
    """
    global _tracking_uri
    if isinstance(uri, os.PathLike) and not isinstance(uri, str):
        import pathlib  # MLflow turns a Path into a file: URI

        uri = pathlib.Path(uri).absolute().resolve().as_uri()
    new = os.fspath(uri) if uri else None
    if new == _tracking_uri:
        return
    _tracking_uri = new
    if new is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = new


def get_tracking_uri() -> str:
    """set_tracking_uri, then MLFLOW_TRACKING_URI, then ``sqlite:///mlflow.db``."""
    return _tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def is_tracking_uri_set() -> bool:
    return bool(_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))
