"""MLflow 3's LoggedModel entity and its status, as ``mlflow.entities.LoggedModel``."""

from __future__ import annotations

import enum
from typing import Any


class LoggedModelStatus(str, enum.Enum):
    """MLflow's statuses; the ``logged_models.status`` column holds ``to_int()``."""

    UNSPECIFIED = "UNSPECIFIED"
    PENDING = "PENDING"
    READY = "READY"
    FAILED = "FAILED"

    def to_int(self) -> int:
        return _TO_INT[self]

    @classmethod
    def from_int(cls, value: int) -> LoggedModelStatus:
        return _FROM_INT[value]

    def __str__(self) -> str:
        return self.value


_TO_INT = {
    LoggedModelStatus.UNSPECIFIED: 0,
    LoggedModelStatus.PENDING: 1,
    LoggedModelStatus.READY: 2,
    LoggedModelStatus.FAILED: 3,
}
_FROM_INT = {v: k for k, v in _TO_INT.items()}


class LoggedModelOutput:
    """A model a run produced, at a step (MLflow's ``LoggedModelOutput``)."""

    def __init__(self, model_id: str, step: int) -> None:
        self.model_id = model_id
        self.step = step

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LoggedModelOutput) and self.__dict__ == other.__dict__

    def to_dictionary(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "step": self.step}

    def __repr__(self) -> str:
        return f"LoggedModelOutput(model_id={self.model_id!r}, step={self.step!r})"


class LoggedModel:
    """A model logged in an experiment (MLflow 3), with its tags, params and metrics."""

    def __init__(
        self,
        experiment_id: str,
        model_id: str,
        name: str,
        artifact_location: str,
        creation_timestamp: int,
        last_updated_timestamp: int,
        model_type: str | None = None,
        source_run_id: str | None = None,
        status: LoggedModelStatus | int = LoggedModelStatus.READY,
        status_message: str | None = None,
        tags: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        metrics: list[Any] | None = None,
    ) -> None:
        self.experiment_id = experiment_id
        self.model_id = model_id
        self.name = name
        self.artifact_location = artifact_location
        self.creation_timestamp = creation_timestamp
        self.last_updated_timestamp = last_updated_timestamp
        self.model_type = model_type
        self.source_run_id = source_run_id
        self.status = status if isinstance(status, LoggedModelStatus) else LoggedModelStatus.from_int(status)
        self.status_message = status_message
        self.tags = dict(tags or {})
        self.params = dict(params or {})
        self.metrics = metrics

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_id}"

    def to_dictionary(self) -> dict[str, Any]:
        """MLflow's: the properties by name (sorted), ``status`` as its int, no ``model_uri``."""
        return {
            "artifact_location": self.artifact_location,
            "creation_timestamp": self.creation_timestamp,
            "experiment_id": self.experiment_id,
            "last_updated_timestamp": self.last_updated_timestamp,
            "metrics": self.metrics,
            "model_id": self.model_id,
            "model_type": self.model_type,
            "name": self.name,
            "params": self.params,
            "source_run_id": self.source_run_id,
            "status": self.status.to_int(),
            "status_message": self.status_message,
            "tags": self.tags,
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LoggedModel) and self.to_dictionary() == other.to_dictionary()

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{k}={getattr(self, k)!r}"
            for k in (
                "artifact_location", "creation_timestamp", "experiment_id",
                "last_updated_timestamp", "model_id", "model_type", "model_uri", "name",
                "source_run_id", "status", "status_message",
            )
        )
        return f"LoggedModel({fields})"
