"""Artifact repositories: where a run's files live, chosen by the scheme of its artifact URI.

Local paths and ``file:`` URIs today. A new store (S3, HTTP...) is a subclass of
``ArtifactRepository`` registered with ``register_repository(scheme, factory)``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable

from ...exceptions import INVALID_PARAMETER_VALUE, MlflowException
from ._paths import append_to_uri_path, is_local_uri
from .base import ArtifactRepository
from .local import LocalArtifactRepository

_factories: dict[str, Callable[[str], ArtifactRepository]] = {}


def register_repository(scheme: str, factory: Callable[[str], ArtifactRepository]) -> None:
    """Serve artifact URIs of ``scheme`` (e.g. ``"s3"``) with ``factory(artifact_uri)``."""
    _factories[scheme] = factory


def _server_repository(artifact_uri: str, tracking_uri: str | None = None) -> ArtifactRepository:
    """http(s):// and mlflow-artifacts: URIs: a tracking server's artifact proxy (the module,
    and httpx with it, load only when such a URI is used)."""
    from . import http

    if artifact_uri.startswith("mlflow-artifacts:"):
        return http.mlflow_artifacts_repository(artifact_uri, tracking_uri)
    return http.http_repository(artifact_uri)


_SERVER_SCHEMES = ("http", "https", "mlflow-artifacts")


def repository_for_uri(artifact_uri: str, tracking_uri: str | None = None) -> ArtifactRepository:
    """The repository holding ``artifact_uri``; ``tracking_uri`` resolves ``mlflow-artifacts:``
    URIs (MLflow: the client's tracking URI, else the process's)."""
    if is_local_uri(artifact_uri):
        return LocalArtifactRepository(artifact_uri)
    scheme = urllib.parse.urlparse(artifact_uri).scheme
    factory = _factories.get(scheme)
    if factory is None and scheme in _SERVER_SCHEMES:
        return _server_repository(artifact_uri, tracking_uri)
    if factory is None:
        raise MlflowException(
            f"Could not find a registered artifact repository for: {artifact_uri}. "
            f"Currently registered schemes are: {['', 'file', *_SERVER_SCHEMES, *sorted(_factories)]}",
            INVALID_PARAMETER_VALUE,
        )
    return factory(artifact_uri)


__all__ = [
    "ArtifactRepository",
    "LocalArtifactRepository",
    "append_to_uri_path",
    "register_repository",
    "repository_for_uri",
]
