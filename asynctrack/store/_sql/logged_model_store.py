"""The Store's logged-model calls for every SQL store. A store supplies ``_read`` and
``_write_now(fn, *args)``: ``fn(connection, *args)`` in a write transaction of its own, committed
before it returns. Logged models are written synchronously, beside the background writer: each
call needs its answer (the new model's id and location) and they are few per run, so nothing
is gained by queueing them; the client flushes its queued writes first, so order holds."""

from __future__ import annotations

from typing import Any, Callable

from ...entities._logged_model import LoggedModel, LoggedModelStatus
from ...exceptions import INVALID_PARAMETER_VALUE, MlflowException
from . import logged_models


class SqlLoggedModels:
    """Mixin: MLflow 3's LoggedModel calls over MLflow's SQL tables."""

    def _read(self, fn: Callable[..., Any], *args: Any, raw: bool = False, heavy: bool = False) -> Any:
        raise NotImplementedError

    def _write_now(self, fn: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    def create_logged_model(
        self,
        experiment_id: str,
        name: str,
        source_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        logged_models.validate_name(name)
        experiment = self.get_experiment(experiment_id)  # type: ignore[attr-defined]
        if experiment.lifecycle_stage != "active":
            raise MlflowException(
                f"The experiment {experiment.experiment_id} must be in the 'active' state. "
                f"Current state is {experiment.lifecycle_stage}.",
                INVALID_PARAMETER_VALUE,
            )
        model_id = self._write_now(
            logged_models.create,
            int(experiment.experiment_id),
            experiment.artifact_location,
            name,
            source_run_id,
            dict(tags or {}),
            dict(params or {}),
            model_type,
        )
        return self.get_logged_model(model_id)

    def finalize_logged_model(self, model_id: str, status: LoggedModelStatus) -> LoggedModel:
        self._write_now(logged_models.finalize, model_id, status)
        return self.get_logged_model(model_id)

    def delete_logged_model(self, model_id: str) -> None:
        self._write_now(logged_models.delete, model_id)

    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        self._write_now(logged_models.set_tags, model_id, tags)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self._write_now(logged_models.delete_tag, model_id, key)

    def log_logged_model_metrics(self, model_id: str, metrics: list[tuple]) -> None:
        self._write_now(logged_models.log_metrics, model_id, metrics)

    def log_outputs(self, run_id: str, outputs: list[tuple[str, int]]) -> None:
        self._write_now(logged_models.log_outputs, run_id, outputs)

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        return self._read(logged_models.get, model_id, allow_deleted)

    def search_logged_models(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        max_results: int | None = None,
        order_by: list[dict[str, Any]] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[LoggedModel], str | None]:
        ids = [int(e) for e in experiment_ids]
        return self._read(
            logged_models.search, ids, filter_string, max_results, order_by, page_token
        )
