"""``asynctrack.artifacts``: MLflow 3.18's ``mlflow.artifacts`` (download, list and load the
artifacts of a run, or of any artifact URI: ``runs:/<run_id>/path``, ``file:`` URIs, paths)."""

from __future__ import annotations

import json
import os
import pathlib
import urllib.parse
from typing import Any

from typing import TYPE_CHECKING

from .._extras import require
from ..exceptions import BAD_REQUEST, INVALID_PARAMETER_VALUE, MlflowException

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from ..entities import FileInfo

# The repositories and the client load on first use: ``import asynctrack`` stays fast.

__all__ = ["download_artifacts", "list_artifacts", "load_dict", "load_image", "load_text"]


def _client(tracking_uri: str | None):
    from ..client import MlflowClient

    return MlflowClient(tracking_uri)


def _parse_runs_uri(uri: str) -> tuple[str, str | None]:
    path = urllib.parse.urlparse(uri).path
    run_id = path[1:].split("/")[0] if path.startswith("/") else ""
    if not run_id:
        raise MlflowException(
            f"Not a proper runs:/ URI: {uri}. Runs URIs must be of the form "
            "'runs:/<run_id>/run-relative/path/to/artifact'"
        )
    rest = "/".join(path[1:].split("/")[1:])
    return run_id, rest or None


def _resolve(artifact_uri: str, tracking_uri: str | None) -> tuple[str, bool]:
    """A ``runs:/`` URI as the run's own artifact URI; and whether reads must copy (MLflow
    copies what it reads through ``runs:/``, and hands back local files otherwise)."""
    if urllib.parse.urlparse(artifact_uri).scheme == "runs":
        from ..store.artifact import append_to_uri_path

        run_id, path = _parse_runs_uri(artifact_uri)
        root = _client(tracking_uri)._artifact_uri(run_id)
        return (append_to_uri_path(root, path) if path else root), True
    return artifact_uri, False


def _split(uri: str) -> tuple[str, str]:
    """MLflow's _get_root_uri_and_artifact_path: the parent URI and the last path component."""
    if os.path.exists(uri):
        return os.path.dirname(uri), os.path.basename(uri)
    parsed = urllib.parse.urlparse(uri)
    prefix = ""
    if parsed.scheme and not parsed.path.startswith("/"):
        prefix = parsed.scheme + ":"
        parsed = parsed._replace(scheme="")
    name = parsed.path.rstrip("/").rsplit("/", 1)[-1]
    parent = parsed.path.rstrip("/")[: -len(name)].rstrip("/") if name else parsed.path
    return prefix + urllib.parse.urlunparse(parsed._replace(path=parent or "/")), name


def _check_one_of(run_id, artifact_uri, artifact_path) -> None:
    if (run_id, artifact_uri).count(None) != 1:
        raise MlflowException(
            "Exactly one of `run_id` or `artifact_uri` must be specified", INVALID_PARAMETER_VALUE
        )
    if artifact_uri is not None and artifact_path is not None:
        raise MlflowException(
            "`artifact_path` cannot be specified if `artifact_uri` is specified",
            INVALID_PARAMETER_VALUE,
        )


def download_artifacts(
    artifact_uri: str | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    dst_path: str | None = None,
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
) -> str:
    """Download an artifact file or directory and return its local path (MLflow's rules: the
    last component of the path lands in ``dst_path``, a new temporary directory if None)."""
    from .._client_artifacts import download_from_root, prepare_dst

    _check_one_of(run_id, artifact_uri, artifact_path)
    dst_path = prepare_dst(dst_path)
    if artifact_uri is not None:
        uri, copy = _resolve(artifact_uri, tracking_uri)
        root, name = _split(uri)
        return download_from_root(root, name, dst_path, copy=copy)
    client = _client(tracking_uri)
    root = client._artifact_uri(run_id)
    if artifact_path:
        return download_from_root(root, artifact_path, dst_path, copy=True)
    return download_from_root(root, "", dst_path, copy=False)


def list_artifacts(
    artifact_uri: str | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    tracking_uri: str | None = None,
) -> list[FileInfo]:
    """The artifacts directly under a run's path, or under an artifact URI."""
    from ..store.artifact import repository_for_uri

    _check_one_of(run_id, artifact_uri, artifact_path)
    if artifact_uri is not None:
        uri, _ = _resolve(artifact_uri, tracking_uri)
        root, name = _split(uri)
        return repository_for_uri(root).list_artifacts(name)
    return _client(tracking_uri).list_artifacts(run_id, artifact_path)


def _readable(artifact_uri: str) -> AbstractContextManager[str]:
    """A context giving a local path to read the artifact from: its own file where it is local
    (no copy), else a temporary download (``_client_artifacts.readable``)."""
    from .._client_artifacts import readable

    uri, _ = _resolve(artifact_uri, None)
    return readable(*_split(uri))


def _not_utf8(artifact_uri: str) -> MlflowException:
    return MlflowException(
        f"Artifact {artifact_uri!r} is not valid UTF-8. To read a file in another encoding, "
        "download it with `mlflow.artifacts.download_artifacts` and open it with the correct "
        "`encoding`.",
        BAD_REQUEST,
    )


def load_text(artifact_uri: str) -> str:
    """The artifact's content as text (UTF-8)."""
    with _readable(artifact_uri) as local:
        with open(local, encoding="utf-8") as f:
            try:
                return f.read()
            except UnicodeDecodeError as e:
                raise _not_utf8(artifact_uri) from e


def load_dict(artifact_uri: str) -> dict[str, Any]:
    """A JSON or YAML artifact (by extension, as log_dict wrote it) as a dict."""
    with _readable(artifact_uri) as local:
        is_yaml = pathlib.Path(local).suffix in (".yml", ".yaml")
        yaml = require("yaml", "yaml", "load_dict of a YAML file", "PyYAML") if is_yaml else None
        with open(local, encoding="utf-8") as f:
            try:
                if yaml is not None:
                    return yaml.safe_load(f)
                return json.load(f)
            except UnicodeDecodeError as e:
                raise _not_utf8(artifact_uri) from e
            except json.JSONDecodeError as e:
                raise MlflowException(
                    "Unable to form a JSON object from file content", BAD_REQUEST
                ) from e
            except Exception as e:
                if yaml is not None and isinstance(e, yaml.YAMLError):
                    raise MlflowException(
                        "Unable to form a YAML object from file content", BAD_REQUEST
                    ) from e
                raise


def load_image(artifact_uri: str):
    """The artifact as a loaded PIL image."""
    pil_image = require("PIL.Image", "images", "load_image", "Pillow")
    with _readable(artifact_uri) as local:
        try:
            image = pil_image.open(local)
            image.load()
            return image
        except Exception as e:
            raise MlflowException(
                "Unable to form a PIL Image object from file content", BAD_REQUEST
            ) from e


