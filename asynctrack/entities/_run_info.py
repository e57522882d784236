"""RunInfo: a run's metadata (id, experiment, status, times, lifecycle stage)."""

from __future__ import annotations

from typing import Any

from asynctrack.entities._mlflow_object import _MlflowObject


class searchable_attribute(property):
    """A property that search filters may name as `attributes.<name>`."""


class orderable_attribute(property):
    """A property that search `order_by` may name (all searchable ones are orderable too)."""


class _RunUuidAlias:
    """`run_uuid`, the pre-3.0 name of `run_id`. Not a `property`, so it stays out of
    `dict(info)` and `repr(info)`, which must match MLflow 3.18 (whose RunInfo lacks it)."""

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        return obj._run_id


class RunInfo(_MlflowObject):
    """Metadata about a run, as `mlflow.entities.RunInfo`."""

    def __init__(
        self,
        run_id: str,
        experiment_id: str,
        user_id: str,
        status: str,
        start_time: int,
        end_time: int | None,
        lifecycle_stage: str,
        artifact_uri: str | None = None,
        run_name: str | None = None,
    ) -> None:
        if experiment_id is None:
            raise Exception("experiment_id cannot be None")
        if user_id is None:
            raise Exception("user_id cannot be None")
        if status is None:
            raise Exception("status cannot be None")
        if start_time is None:
            raise Exception("start_time cannot be None")
        self._run_id = run_id
        self._experiment_id = experiment_id
        self._user_id = user_id
        self._status = status
        self._start_time = start_time
        self._end_time = end_time
        self._lifecycle_stage = lifecycle_stage
        self._artifact_uri = artifact_uri
        self._run_name = run_name

    @classmethod
    def _from_store(
        cls, run_id, experiment_id, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri, run_name
    ) -> RunInfo:
        """A RunInfo from a store row the caller has checked (none of the required fields
        None): the constructor's attributes, in its order, without its checks (a search
        builds a thousand at once)."""
        info = object.__new__(cls)
        info._run_id = run_id
        info._experiment_id = experiment_id
        info._user_id = user_id
        info._status = status
        info._start_time = start_time
        info._end_time = end_time
        info._lifecycle_stage = lifecycle_stage
        info._artifact_uri = artifact_uri
        info._run_name = run_name
        return info

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self.__dict__ == other.__dict__
        return False

    __hash__ = None  # type: ignore[assignment]

    def _copy_with_overrides(
        self,
        status: str | None = None,
        end_time: int | None = None,
        lifecycle_stage: str | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        """A copy with some fields replaced; empty optional fields come back as MLflow's proto
        round trip leaves them ('' for artifact_uri and run_name, None for a zero end_time)."""
        return RunInfo(
            run_id=self._run_id,
            experiment_id=self._experiment_id,
            user_id=self._user_id,
            status=status or self._status,
            start_time=self._start_time,
            end_time=end_time or self._end_time or None,
            lifecycle_stage=lifecycle_stage or self._lifecycle_stage,
            artifact_uri=self._artifact_uri or "",
            run_name=run_name or self._run_name or "",
        )

    run_uuid = _RunUuidAlias()

    @searchable_attribute
    def run_id(self) -> str:
        """String containing run id."""
        return self._run_id

    @property
    def experiment_id(self) -> str:
        """String ID of the experiment for the current run."""
        return self._experiment_id

    @searchable_attribute
    def run_name(self) -> str | None:
        """String containing run name."""
        return self._run_name

    def _set_run_name(self, new_name: str | None) -> None:
        self._run_name = new_name

    @searchable_attribute
    def user_id(self) -> str:
        """String ID of the user who initiated this run."""
        return self._user_id

    @searchable_attribute
    def status(self) -> str:
        """One of the RunStatus names describing the status of the run."""
        return self._status

    @searchable_attribute
    def start_time(self) -> int:
        """Start time of the run, in milliseconds since the UNIX epoch."""
        return self._start_time

    @searchable_attribute
    def end_time(self) -> int | None:
        """End time of the run, in milliseconds since the UNIX epoch."""
        return self._end_time

    @searchable_attribute
    def artifact_uri(self) -> str | None:
        """String root artifact URI of the run."""
        return self._artifact_uri

    @property
    def lifecycle_stage(self) -> str:
        """'active' or 'deleted'."""
        return self._lifecycle_stage

    @classmethod
    def get_searchable_attributes(cls) -> list[str]:
        return sorted(p for p in cls.__dict__ if isinstance(getattr(cls, p), searchable_attribute))

    @classmethod
    def get_orderable_attributes(cls) -> list[str]:
        return sorted(
            p
            for p in cls.__dict__
            if isinstance(getattr(cls, p), (searchable_attribute, orderable_attribute))
        )
