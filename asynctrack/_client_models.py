"""MlflowClient's LoggedModel calls (MLflow 3): create, finalize, tag, search, link to a run
and upload a model's files. Each flushes the writer first, so that a model sees the run's
params and tags logged before it."""

from __future__ import annotations

from typing import Any

from .entities._paged_list import PagedList
from .entities._logged_model import LoggedModel, LoggedModelOutput, LoggedModelStatus
from .exceptions import INVALID_PARAMETER_VALUE, MlflowException


class LoggedModelCalls:
    """Mixin of MlflowClient (see the module)."""

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        """A new PENDING model in the experiment (a random name as MLflow's when none)."""
        if name is None:
            from ._names import generate_run_name

            name = generate_run_name()
        return self._read().create_logged_model(  # type: ignore[attr-defined]
            str(experiment_id), name, source_run_id, _strs(tags), _strs(params), model_type
        )

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        return self._read().get_logged_model(model_id, allow_deleted)  # type: ignore[attr-defined]

    def finalize_logged_model(
        self, model_id: str, status: LoggedModelStatus | str
    ) -> LoggedModel:
        status = LoggedModelStatus(status) if isinstance(status, str) else status
        return self._read().finalize_logged_model(model_id, status)  # type: ignore[attr-defined]

    def set_logged_model_tags(self, model_id: str, tags: dict[str, Any]) -> None:
        """MLflow's client checks that the model can be read first, and says so if not."""
        _model_id_given(model_id)
        try:
            self.get_logged_model(model_id)
        except Exception as exc:
            raise MlflowException(
                f"Failed to get logged model with ID {model_id}. You may not have access to "
                "the logged model, or the logged model may have been deleted. If you are "
                "attempting to set tags on a Registered Model Version, use "
                "`set_model_version_tag` instead.",
                INVALID_PARAMETER_VALUE,
            ) from exc
        self._read().set_logged_model_tags(model_id, _strs(tags))  # type: ignore[attr-defined]

    def delete_logged_model(self, model_id: str) -> None:
        """Mark the model deleted (MLflow's soft delete; its files stay)."""
        self._read().delete_logged_model(model_id)  # type: ignore[attr-defined]

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self._read().delete_logged_model_tag(model_id, key)  # type: ignore[attr-defined]

    def log_outputs(self, run_id: str, models: list[LoggedModelOutput]) -> None:
        self._read().log_outputs(  # type: ignore[attr-defined]
            run_id, [(m.model_id, int(m.step)) for m in models]
        )

    def _copy_run_metrics_to_model(self, run_id: str, model_id: str, step: int) -> None:
        """The run's metric points at ``step`` become the model's too (MLflow's ``Model.log``
        logs them again with the model's id: ``log_model_metrics_for_step``)."""
        points = []
        for key in self.get_run(run_id).data.metrics:  # type: ignore[attr-defined]
            for m in self.get_metric_history(run_id, key):  # type: ignore[attr-defined]
                if m.step == step and m.model_id is None:
                    points.append(
                        (m.key, m.value, m.timestamp, m.step, run_id, m.dataset_name, m.dataset_digest)
                    )
        if points:
            self._read().log_logged_model_metrics(model_id, points)  # type: ignore[attr-defined]

    def search_logged_models(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        datasets: list[dict[str, Any]] | None = None,
        max_results: int | None = None,
        order_by: list[dict[str, Any]] | None = None,
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        if datasets:
            raise MlflowException(
                "asynctrack does not search logged models by dataset yet",
                INVALID_PARAMETER_VALUE,
            )
        models, token = self._read().search_logged_models(  # type: ignore[attr-defined]
            [str(e) for e in experiment_ids], filter_string, max_results, order_by, page_token
        )
        return PagedList(models, token)

    def log_model_artifacts(self, model_id: str, local_dir: str) -> None:
        """Upload a model directory's files into the model's artifact location."""
        from .store.artifact import repository_for_uri

        model = self.get_logged_model(model_id)
        repo = repository_for_uri(model.artifact_location, self.tracking_uri)  # type: ignore[attr-defined]
        repo.log_artifacts(local_dir)


def _model_id_given(model_id: Any) -> None:
    if not model_id:
        raise MlflowException(
            f"`model_id` must be a non-empty string, but got {model_id!r}",
            INVALID_PARAMETER_VALUE,
        )


def _strs(d: dict[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (d or {}).items()}
