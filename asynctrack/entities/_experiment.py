"""Experiment: a named group of runs, with MLflow's properties (and hence its repr and dict)."""

from __future__ import annotations

import os
from typing import Any

from asynctrack.entities._mlflow_object import _MlflowObject
from asynctrack.entities._tags import ExperimentTag

DEFAULT_WORKSPACE_NAME = "default"


def _resolve_workspace(workspace: str | None) -> str:
    """Explicit workspace, else MLFLOW_WORKSPACE, else "default" (MLflow's order, minus servers).
    The environment is read only when needed: a search builds one Experiment per row, and the
    store gives each its workspace."""
    if workspace is not None and workspace.strip():
        return workspace.strip()
    candidate = os.environ.get("MLFLOW_WORKSPACE")
    if candidate is not None and candidate.strip():
        return candidate.strip()
    return DEFAULT_WORKSPACE_NAME


class Experiment(_MlflowObject):
    """Experiment object, as `mlflow.entities.Experiment`."""

    DEFAULT_EXPERIMENT_NAME = "Default"

    def __init__(
        self,
        experiment_id: str,
        name: str,
        artifact_location: str,
        lifecycle_stage: str,
        tags: list[ExperimentTag] | None = None,
        creation_time: int | None = None,
        last_update_time: int | None = None,
        workspace: str | None = None,
        trace_location: Any = None,
        effective_trace_archival_retention: str | None = None,
    ) -> None:
        self._experiment_id = experiment_id
        self._name = name
        self._artifact_location = artifact_location
        self._lifecycle_stage = lifecycle_stage
        self._tags = {tag.key: tag.value for tag in (tags or [])}
        self._creation_time = creation_time
        self._last_update_time = last_update_time
        self._workspace = _resolve_workspace(workspace)
        self._trace_location = trace_location
        self._effective_trace_archival_retention = effective_trace_archival_retention

    @property
    def experiment_id(self) -> str:
        """String ID of the experiment."""
        return self._experiment_id

    @property
    def name(self) -> str:
        """String name of the experiment."""
        return self._name

    def _set_name(self, new_name: str) -> None:
        self._name = new_name

    @property
    def artifact_location(self) -> str:
        """String corresponding to the root artifact URI for the experiment."""
        return self._artifact_location

    @property
    def lifecycle_stage(self) -> str:
        """Lifecycle stage of the experiment: 'active' or 'deleted'."""
        return self._lifecycle_stage

    @property
    def tags(self) -> dict[str, str]:
        """Tags that have been set on the experiment."""
        return self._tags

    def _add_tag(self, tag: ExperimentTag) -> None:
        self._tags[tag.key] = tag.value

    @property
    def creation_time(self) -> int | None:
        return self._creation_time

    def _set_creation_time(self, creation_time: int | None) -> None:
        self._creation_time = creation_time

    @property
    def last_update_time(self) -> int | None:
        return self._last_update_time

    def _set_last_update_time(self, last_update_time: int | None) -> None:
        self._last_update_time = last_update_time

    @property
    def effective_trace_archival_retention(self) -> str | None:
        """Effective trace archival retention (always None for a local store)."""
        return self._effective_trace_archival_retention

    @effective_trace_archival_retention.setter
    def effective_trace_archival_retention(self, value: str | None) -> None:
        self._effective_trace_archival_retention = value

    @property
    def trace_location(self) -> Any:
        """Trace storage location; tracking-only stores have none."""
        return self._trace_location

    @trace_location.setter
    def trace_location(self, value: Any) -> None:
        self._trace_location = value

    @property
    def workspace(self) -> str:
        """Workspace that owns the experiment."""
        return self._workspace
