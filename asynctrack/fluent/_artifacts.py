"""Module-level artifact calls: to this thread's active run (started if there is none), with
MLflow 3.18's signatures (``synchronous`` on log_artifact(s) is asynctrack's addition)."""

from __future__ import annotations

import logging
import os
from typing import Any

from ..run_operations import RunOperations
from ._client import client
from ._experiments import _get_experiment_id
from ._runs import _get_or_start_run, active_run

_logger = logging.getLogger(__name__)


def _target(run_id: str | None):
    """(run_id, client): the named run through the current URI's client, else the active run."""
    if run_id:
        return run_id, client()
    run = _get_or_start_run()
    return run._run_id, run._client


def log_artifact(
    local_path: str | os.PathLike,
    artifact_path: str | None = None,
    run_id: str | None = None,
    synchronous: bool | None = None,
) -> RunOperations | None:
    """Log a local file or directory as an artifact of the run."""
    run_id, c = _target(run_id)
    return c.log_artifact(run_id, local_path, artifact_path, synchronous=synchronous)


def log_artifacts(
    local_dir: str | os.PathLike,
    artifact_path: str | None = None,
    run_id: str | None = None,
    synchronous: bool | None = None,
) -> RunOperations | None:
    """Log the contents of a local directory as artifacts of the run."""
    run_id, c = _target(run_id)
    return c.log_artifacts(run_id, local_dir, artifact_path, synchronous=synchronous)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    """The absolute URI of ``artifact_path`` in the active run (its artifact root if None)."""
    if not active_run():
        _logger.warning(
            "No active run found. A new active run will be created. If this is not intended, "
            "please create a run using `mlflow.start_run()` first."
        )
    from ..store.artifact import append_to_uri_path

    run_id, c = _target(None)
    root = c._artifact_uri(run_id)
    return root if artifact_path is None else append_to_uri_path(root, artifact_path)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    """Log ``text`` as the artifact file ``artifact_file``."""
    run_id, c = _target(run_id)
    c.log_text(run_id, text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Log a dict as JSON, or YAML when ``artifact_file`` ends in .yml/.yaml."""
    run_id, c = _target(run_id)
    c.log_dict(run_id, dictionary, artifact_file)


def log_figure(
    figure: Any, artifact_file: str, *, save_kwargs: dict[str, Any] | None = None
) -> None:
    """Log a matplotlib or plotly figure (format by extension)."""
    run_id, c = _target(None)
    c.log_figure(run_id, figure, artifact_file, save_kwargs=save_kwargs)


def log_image(
    image: Any,
    artifact_file: str | None = None,
    key: str | None = None,
    step: int | None = None,
    timestamp: int | None = None,
    synchronous: bool | None = False,
) -> RunOperations | None:
    """Log an image as a file, or as one step of the image series ``key`` (asynchronous by
    default, as MLflow's module-level log_image)."""
    run_id, c = _target(None)
    return c.log_image(run_id, image, artifact_file, key, step, timestamp, synchronous)


def log_table(data: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Log a dict or DataFrame as a table, appended to one logged before under the same name."""
    run_id, c = _target(run_id)
    c.log_table(run_id, data, artifact_file)


def load_table(
    artifact_file: str, run_ids: list[str] | None = None, extra_columns: list[str] | None = None
) -> Any:
    """The table ``artifact_file`` of the current experiment's runs, as one DataFrame."""
    return client().load_table(_get_experiment_id(), artifact_file, run_ids, extra_columns)


def flush_artifact_async_logging() -> None:
    """Wait for every pending asynchronous artifact copy of this process."""
    from .. import _artifact_copies

    _artifact_copies.wait_for(None)
