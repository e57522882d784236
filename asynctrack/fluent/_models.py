"""The fluent LoggedModel calls of MLflow 3.18 (``mlflow.get_logged_model`` and friends)."""

from __future__ import annotations

import threading
from typing import Any

from ..entities._logged_model import LoggedModel, LoggedModelOutput, LoggedModelStatus
from ..exceptions import INVALID_PARAMETER_VALUE, MlflowException
from ._client import client
from ._experiments import _get_experiment_id
from ._runs import active_run


def create_logged_model(
    name: str | None = None,
    source_run_id: str | None = None,
    tags: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    model_type: str | None = None,
    experiment_id: str | None = None,
) -> LoggedModel:
    """A new PENDING model, of the active run and its experiment when there is one."""
    from ._context import resolve_tags

    run = active_run()
    if source_run_id is None and run:
        source_run_id = run.info.run_id
    if experiment_id is None and run:
        experiment_id = run.info.experiment_id
    elif experiment_id is None:
        experiment_id = _get_experiment_id() or (
            client().get_run(source_run_id).info.experiment_id if source_run_id else None
        )
    return _remember(client().create_logged_model(
        experiment_id, name, source_run_id, resolve_tags(tags), params, model_type
    ))


def get_logged_model(model_id: str) -> LoggedModel:
    return client().get_logged_model(model_id)


# The id of the model this thread logged or created last (MLflow's _last_logged_model_id).
_last = threading.local()


def _remember(model: LoggedModel) -> LoggedModel:
    _last.model_id = model.model_id
    return model


def last_logged_model() -> LoggedModel | None:
    """The model this thread logged or created last, as it is stored now; None before any."""
    model_id = getattr(_last, "model_id", None)
    return get_logged_model(model_id) if model_id else None


def log_outputs(models: list[LoggedModelOutput] | None = None) -> None:
    """Link models to the active run as its outputs (a run is started if none is active)."""
    from ._runs import _get_or_start_run

    run = _get_or_start_run()
    client().log_outputs(run.info.run_id, models or [])


def delete_logged_model(model_id: str) -> None:
    client().delete_logged_model(model_id)


def finalize_logged_model(model_id: str, status: LoggedModelStatus | str) -> LoggedModel:
    return client().finalize_logged_model(model_id, status)


def set_logged_model_tags(model_id: str, tags: dict[str, Any]) -> None:
    client().set_logged_model_tags(model_id, tags)


def delete_logged_model_tag(model_id: str, key: str) -> None:
    client().delete_logged_model_tag(model_id, key)


def search_logged_models(
    experiment_ids: list[str] | None = None,
    filter_string: str | None = None,
    datasets: list[dict[str, str]] | None = None,
    max_results: int | None = None,
    order_by: list[dict[str, Any]] | None = None,
    output_format: str = "pandas",
) -> Any:
    """All matching models (every page), as a DataFrame or a list, as MLflow's."""
    experiment_ids = experiment_ids or [_get_experiment_id()]
    models: list[LoggedModel] = []
    page_token = None
    while True:
        page = client().search_logged_models(
            experiment_ids, filter_string, datasets, max_results, order_by, page_token
        )
        models.extend(page)
        if max_results is not None and len(models) >= max_results:
            break
        if not page.token:
            break
        page_token = page.token
    if max_results is not None:
        models = models[:max_results]
    if output_format == "list":
        return models
    if output_format == "pandas":
        import pandas as pd

        rows = []
        for model in models:
            row = model.to_dictionary()
            row["status"] = LoggedModelStatus.from_int(row["status"])
            rows.append(row)
        return pd.DataFrame(rows)
    raise MlflowException(
        f"Unsupported output format: {output_format!r}. Supported string values are "
        "'pandas' or 'list'",
        INVALID_PARAMETER_VALUE,
    )
