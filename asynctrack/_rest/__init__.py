"""The HTTP transport to an MLflow tracking server (a leaf: the tracking store and the artifact
repository both use it). Nothing here imports httpx until a request is made."""

from __future__ import annotations

from ._config import RestConfig
from ._transport import (
    API_PREFIX,
    AsyncTransport,
    JsonBody,
    Policy,
    RestException,
    SyncTransport,
    Unreachable,
    httpx_module,
    unreachable_error,
    verify,
)

__all__ = [
    "API_PREFIX",
    "AsyncTransport",
    "JsonBody",
    "Policy",
    "RestConfig",
    "RestException",
    "SyncTransport",
    "Unreachable",
    "httpx_module",
    "unreachable_error",
    "verify",
]
