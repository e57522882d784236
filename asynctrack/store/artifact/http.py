"""Artifacts through a tracking server's proxy (``mlflow server``'s default): ``mlflow-artifacts:``
URIs resolved against the tracking URI as MLflow's ``MlflowArtifactsRepository`` does, and the
``/api/2.0/mlflow-artifacts/artifacts`` endpoints used as ``HttpArtifactRepository`` uses them
(PUT a file, GET ``?path=`` to list, GET a file to download). Errors are MlflowExceptions with
the server's message (MLflow lets requests' HTTPError through)."""

from __future__ import annotations

import mimetypes
import os
import posixpath
import re
import urllib.parse

from ..._rest import Policy, RestConfig, SyncTransport, Unreachable, unreachable_error, verify
from ..._validation import bad_path_message
from ...entities import FileInfo
from ...exceptions import INVALID_PARAMETER_VALUE, MlflowException
from ._paths import path_not_unique
from .base import ArtifactRepository

ARTIFACTS_ROOT = "/api/2.0/mlflow-artifacts/artifacts"
_IN_MEMORY_MAX = 64 * 1024 * 1024  # larger uploads stream from the file, without retries
_transport = SyncTransport()


def resolve_uri(artifact_uri: str, tracking_uri: str) -> str:
    """MLflow's MlflowArtifactsRepository.resolve_uri: the http(s) URL of ``artifact_uri``."""
    track = urllib.parse.urlparse(tracking_uri)
    parsed = urllib.parse.urlparse(artifact_uri)
    if parsed.hostname and _is_number(parsed.hostname) and not parsed.port:
        raise MlflowException(
            "The mlflow-artifacts uri was supplied with a port number: "
            f"{parsed.hostname}, but no host was defined."
        )
    if track.scheme not in ("http", "https"):
        _, _, host_port = track.netloc.rpartition("@")
        redacted = track._replace(netloc=host_port, params="", query="", fragment="").geturl()
        raise MlflowException(
            "When an mlflow-artifacts URI was supplied, the tracking URI must be a valid http or "
            f"https URI, but it was currently set to {redacted}. Perhaps you forgot to set the "
            "tracking URI to the running MLflow server. To set the tracking URI, use either of "
            "the following methods:\n1. Set the MLFLOW_TRACKING_URI environment variable to the "
            "desired tracking URI. `export MLFLOW_TRACKING_URI=http://localhost:5000`\n2. Set "
            "the tracking URI programmatically by calling `mlflow.set_tracking_uri`. "
            "`mlflow.set_tracking_uri('http://localhost:5000')`",
            INVALID_PARAMETER_VALUE,
        )
    if parsed.path == "/":
        resolved = f"{ARTIFACTS_ROOT}{parsed.path}"
    elif parsed.path == ARTIFACTS_ROOT:
        resolved = ARTIFACTS_ROOT
    else:
        resolved = f"{track.path}/{ARTIFACTS_ROOT}/{parsed.path}"
    resolved = re.sub(r"//+", "/", resolved)
    return urllib.parse.urlunparse((track.scheme, parsed.netloc or track.netloc, resolved, "", "", ""))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class HttpArtifactRepository(ArtifactRepository):
    """A run's artifacts at an http(s) URL of a server's artifact proxy."""

    def _call(self, base: str, method: str, endpoint: str, body=None, headers=None, stream_to=None,
              retries: int | None = None):
        config = RestConfig.from_env(base)
        try:
            response = _transport.send(
                config, method, endpoint, body, Policy(max_retries=retries), headers,
                stream_to=stream_to,
            )
        except Unreachable as exc:
            raise unreachable_error(exc) from None
        if response.status_code != 200:
            verify(response, endpoint)  # raises MLflow's error for the status
        return response

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        _check_artifact_path(artifact_path)
        name = os.path.basename(local_file)
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        paths = (artifact_path, name) if artifact_path else (name,)
        endpoint = "/" + "/".join(urllib.parse.quote(p) for p in posixpath.join(*paths).split("/"))
        size = os.path.getsize(local_file)
        with open(local_file, "rb") as f:
            if size <= _IN_MEMORY_MAX:
                self._call(self.artifact_uri, "PUT", endpoint, f.read(), {"Content-Type": mime})
            else:
                self._call(self.artifact_uri, "PUT", endpoint, f, {"Content-Type": mime}, retries=0)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        local_dir = os.path.abspath(local_dir)
        for root, _, filenames in os.walk(local_dir):
            if root == local_dir:
                artifact_dir = artifact_path
            else:
                rel = os.path.relpath(root, local_dir).replace(os.sep, "/")
                artifact_dir = posixpath.join(artifact_path, rel) if artifact_path else rel
            for name in filenames:
                self.log_artifact(os.path.join(root, name), artifact_dir)

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        endpoint = "/mlflow-artifacts/artifacts"
        url, tail = self.artifact_uri.split(endpoint, 1)
        root = tail.lstrip("/")
        query = {"path": posixpath.join(root, path) if path else root}
        response = self._call(url, "GET", endpoint, query)  # url ends with /api/2.0
        body = verify(response, endpoint)
        infos = []
        for f in body.get("files", []):
            rel = f["path"]
            if rel.startswith("/") or ".." in rel.split("/"):
                raise MlflowException(f"Invalid path: {rel}", INVALID_PARAMETER_VALUE)
            infos.append(
                FileInfo(
                    posixpath.join(path, rel) if path else rel,
                    f["is_dir"],
                    int(f["file_size"]) if "file_size" in f else None,
                )
            )
        if (
            len(infos) == 1
            and not infos[0].is_dir
            and path is not None
            and infos[0].path == posixpath.join(path, os.path.basename(path))
        ):
            parent = posixpath.dirname(path) or None
            if not any(f.is_dir and f.path == path for f in self.list_artifacts(parent)):
                return []
        return sorted(infos, key=lambda f: f.path)

    def _download_file(self, remote_file_path: str, local_path: str) -> None:
        endpoint = "/" + urllib.parse.quote(remote_file_path)

        def write(response) -> None:
            with open(local_path, "wb") as out:
                for chunk in response.iter_bytes(1024 * 1024):
                    out.write(chunk)

        self._call(self.artifact_uri, "GET", endpoint, stream_to=write)


def _check_artifact_path(artifact_path: str | None) -> None:
    """MLflow's ``artifact_repo.verify_artifact_path``, which its HttpArtifactRepository calls
    (its words, and its INTERNAL_ERROR: the local repository's message differs)."""
    if artifact_path and path_not_unique(artifact_path):
        raise MlflowException(f"Invalid artifact path: '{artifact_path}'. {bad_path_message(artifact_path)}")


def http_repository(artifact_uri: str, tracking_uri: str | None = None) -> HttpArtifactRepository:
    return HttpArtifactRepository(artifact_uri)


def mlflow_artifacts_repository(artifact_uri: str, tracking_uri: str | None = None) -> HttpArtifactRepository:
    """``mlflow-artifacts:`` against ``tracking_uri`` (the client's; else the process's)."""
    if tracking_uri is None:
        from ...tracking_uri import get_tracking_uri

        tracking_uri = get_tracking_uri()
    return HttpArtifactRepository(resolve_uri(artifact_uri, tracking_uri))
