"""The active experiment, and the module-level experiment calls.

Resolution follows MLflow 3.18: the experiment given to ``set_experiment``, else
``MLFLOW_EXPERIMENT_NAME`` (created if missing) or ``MLFLOW_EXPERIMENT_ID``, else ``Default``
("0"). ``set_experiment`` also exports ``MLFLOW_EXPERIMENT_ID`` so that spawned workers inherit
it. Unlike MLflow, a process that loses the race to create an experiment by name still makes it
active (MLflow returns it without activating it, leaving that process in ``Default``).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from ..entities import Experiment, LifecycleStage
from ..exceptions import INVALID_PARAMETER_VALUE, MlflowException
from ._client import client

_active_experiment_id: str | None = None
_experiment_lock = threading.Lock()


def _refuse_trace_location(trace_location: Any) -> None:
    if trace_location is not None:
        raise MlflowException(
            "trace_location (Unity Catalog trace destinations) is not supported by asynctrack.",
            INVALID_PARAMETER_VALUE,
        )


def _create_or_get(name: str) -> str:
    """The id of experiment ``name``, created if missing, whoever wins a race to create it."""
    c = client()
    try:
        return c.create_experiment(name)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        found = c.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def set_experiment(
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    trace_location: Any = None,
) -> Experiment:
    """Make an experiment (by name, created if missing, or by id) the active one."""
    if (experiment_name is None) == (experiment_id is None):
        raise MlflowException(
            "Must specify exactly one of: `experiment_id` or `experiment_name`.",
            INVALID_PARAMETER_VALUE,
        )
    _refuse_trace_location(trace_location)
    c = client()
    with _experiment_lock:
        if experiment_id is None:
            experiment = c.get_experiment_by_name(experiment_name)
            if experiment is None:
                experiment = c.get_experiment(_create_or_get(experiment_name))
        else:
            experiment = c.get_experiment(experiment_id)  # the store's RESOURCE_DOES_NOT_EXIST
        if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
            raise MlflowException(
                f"Cannot set a deleted experiment {experiment.name!r} as the active experiment. "
                "You can restore the experiment, or permanently delete the experiment to create "
                "a new one.",
                INVALID_PARAMETER_VALUE,
            )
    global _active_experiment_id
    _active_experiment_id = experiment.experiment_id
    os.environ["MLFLOW_EXPERIMENT_ID"] = experiment.experiment_id  # spawned workers inherit it
    return experiment


def _get_experiment_id_from_env() -> str | None:
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME")
    experiment_id = os.environ.get("MLFLOW_EXPERIMENT_ID")
    c = client()
    if name is not None:
        found = c.get_experiment_by_name(name)
        if found is None:
            return _create_or_get(name)
        if experiment_id and experiment_id != found.experiment_id:
            raise MlflowException(
                "The provided MLFLOW_EXPERIMENT_ID environment variable value "
                f"`{experiment_id}` does not match the experiment id `{found.experiment_id}` "
                f"for experiment name `{name}`",
                INVALID_PARAMETER_VALUE,
            )
        return found.experiment_id
    if experiment_id is not None:
        try:
            return c.get_experiment(experiment_id).experiment_id
        except MlflowException as error:
            raise MlflowException(
                f"The provided MLFLOW_EXPERIMENT_ID environment variable value `{experiment_id}` "
                "does not exist in the tracking server. Provide a valid experiment_id.",
                INVALID_PARAMETER_VALUE,
            ) from error
    return None


def _get_experiment_id() -> str:
    """The experiment new runs go to, resolved as MLflow resolves it."""
    if _active_experiment_id:
        return _active_experiment_id
    return _get_experiment_id_from_env() or "0"


def create_experiment(
    name: str,
    artifact_location: str | None = None,
    tags: dict[str, Any] | None = None,
    trace_location: Any = None,
) -> str:
    """Create an experiment; its id."""
    _refuse_trace_location(trace_location)
    return client().create_experiment(name, artifact_location, tags)


def get_experiment(experiment_id: str) -> Experiment:
    return client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    return client().get_experiment_by_name(name)


def delete_experiment(experiment_id: str) -> None:
    client().delete_experiment(experiment_id)


def restore_experiment(experiment_id: str) -> None:
    client().restore_experiment(experiment_id)


def set_experiment_tag(key: str, value: Any) -> None:
    """Tag the active experiment."""
    client().set_experiment_tag(_get_experiment_id(), key, value)


def set_experiment_tags(tags: dict[str, Any]) -> None:
    for key, value in tags.items():
        set_experiment_tag(key, value)


def delete_experiment_tag(key: str) -> None:
    client().delete_experiment_tag(_get_experiment_id(), key)


__all__ = [
    "create_experiment",
    "delete_experiment",
    "delete_experiment_tag",
    "get_experiment",
    "get_experiment_by_name",
    "restore_experiment",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
]
