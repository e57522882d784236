"""Where a model URI's files are, as MLflow 3.18 resolves them: a local path or ``file://``,
``models:/m-<id>`` (the LoggedModel's artifact location), and ``runs:/<run_id>/<path>`` (the
run's artifacts at that path, else the model of that name the run logged, as MLflow's
RunsArtifactRepository falls back to). A remote location is downloaded to a temporary folder."""

from __future__ import annotations

import os
import posixpath
import tempfile

from ..exceptions import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, MlflowException
from ..store.artifact._paths import is_local_uri, local_file_uri_to_path

MLMODEL = "MLmodel"


def _local(location: str, sub: str = "") -> str:
    """A local folder holding ``location``/``sub``: the folder itself, or a download of it."""
    if is_local_uri(location):
        base = local_file_uri_to_path(location) if location.startswith("file:") else location
        return os.path.join(base, sub) if sub else base
    from ..store.artifact import repository_for_uri

    repo = repository_for_uri(location)
    return repo.download_artifacts(sub or "", tempfile.mkdtemp())


def _client():
    from ..client import MlflowClient

    return MlflowClient()


def _models_uri(uri: str) -> str:
    rest = uri[len("models:/"):].lstrip("/")
    model_id, _, sub = rest.partition("/")
    if not model_id.startswith("m-"):
        raise MlflowException(
            f"asynctrack has no model registry: {uri!r} names a registered model; use "
            "models:/m-<model_id>",
            INVALID_PARAMETER_VALUE,
        )
    model = _client().get_logged_model(model_id)
    return _local(model.artifact_location, sub)


def _runs_uri(uri: str) -> str:
    rest = uri[len("runs:/"):].lstrip("/")
    run_id, _, path = rest.partition("/")
    if not run_id:
        raise MlflowException(f"Not a proper runs:/ URI: {uri}", INVALID_PARAMETER_VALUE)
    client = _client()
    run = client.get_run(run_id)
    root = run.info.artifact_uri
    if path and is_local_uri(root):
        candidate = _local(root, path)
        if os.path.exists(candidate):
            return candidate
    name, _, sub = path.partition("/")
    if name:
        page_token = None
        while True:
            page = client.search_logged_models(
                [run.info.experiment_id], filter_string=f"name = '{name}'", page_token=page_token
            )
            for model in page:
                if model.source_run_id == run_id:
                    return _local(model.artifact_location, sub)
            if not page.token:
                break
            page_token = page.token
    if not is_local_uri(root):
        return _local(posixpath.join(root, path) if path else root)
    raise MlflowException(
        f"Failed to download artifacts from path {path!r}, please ensure that the path is correct.",
        RESOURCE_DOES_NOT_EXIST,
    )


def model_dir(model_uri: str) -> str:
    """A local directory holding the model's ``MLmodel``."""
    uri = os.fspath(model_uri)
    if uri.startswith("models:/"):
        path = _models_uri(uri)
    elif uri.startswith("runs:/"):
        path = _runs_uri(uri)
    elif uri.startswith("file:"):
        path = local_file_uri_to_path(uri)
    elif "://" in uri:
        path = _local(uri)
    else:
        path = uri
    if not os.path.exists(os.path.join(path, MLMODEL)):
        raise MlflowException(
            f'Could not find an "{MLMODEL}" configuration file at "{path}"',
            RESOURCE_DOES_NOT_EXIST,
        )
    return path
