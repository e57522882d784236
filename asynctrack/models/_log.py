"""``log_model`` as MLflow 3.18's ``Model.log``: create a LoggedModel (the run's params copied
in, the context tags set), link it to the active run as a RUN_OUTPUT -> MODEL_OUTPUT input,
save the flavour into a temporary directory, upload it to the model's artifact location
(``<experiment artifacts>/models/m-<id>/artifacts``) and finalize the model READY (FAILED if
saving or uploading raised)."""

from __future__ import annotations

import logging
import tempfile
from typing import Any, Callable

from ..exceptions import INVALID_PARAMETER_VALUE, MlflowException
from .model import Model

_logger = logging.getLogger(__name__)


class ModelInfo:
    """What ``log_model`` returns (MLflow's ``ModelInfo``)."""

    def __init__(self, model: Model, logged_model: Any) -> None:
        self._model = model
        self.artifact_path = model.artifact_path
        self.flavors = model.flavors
        self.model_uri = f"models:/{logged_model.model_id}"
        self.model_uuid = model.model_uuid
        self.model_id = logged_model.model_id
        self.run_id = model.run_id
        self.signature = model.signature
        self.saved_input_example_info = model.saved_input_example_info
        self.utc_time_created = model.utc_time_created
        self.mlflow_version = model.mlflow_version
        self.metadata = model.metadata
        self.logged_model = logged_model
        self.registered_model_version = None
        self.name = logged_model.name
        self.params = logged_model.params
        self.tags = logged_model.tags
        self.metrics = logged_model.metrics
        self.model_type = logged_model.model_type

    def __repr__(self) -> str:
        return f"ModelInfo(model_uri={self.model_uri!r}, run_id={self.run_id!r})"


def log_model(
    save: Callable[..., None],
    name: str | None,
    artifact_path: str | None,
    params: dict[str, Any] | None,
    tags: dict[str, Any] | None,
    model_type: str | None,
    step: int,
    model_id: str | None,
    **save_kwargs: Any,
) -> ModelInfo:
    """Log a model saved by ``save(path=..., mlflow_model=..., **save_kwargs)``."""
    from .. import fluent
    from ..client import MlflowClient
    from ..entities import RunOutputs
    from ..entities._logged_model import LoggedModelOutput, LoggedModelStatus
    from ..fluent._context import resolve_tags
    from ..fluent._models import _remember

    if name is not None and artifact_path is not None:
        raise MlflowException(
            "Both `artifact_path` (deprecated) and `name` parameters were specified. "
            "Please only specify `name`.",
            INVALID_PARAMETER_VALUE,
        )
    if artifact_path is not None:
        _logger.warning("`artifact_path` is deprecated. Please use `name` instead.")
        name = artifact_path
    client = MlflowClient()
    run = fluent.active_run()
    run_id = run.info.run_id if run else None
    if model_id is not None:
        logged = client.get_logged_model(model_id)
    else:
        all_params = {**(params or {}), **(client.get_run(run_id).data.params if run_id else {})}
        experiment_id = run.info.experiment_id if run else fluent._get_experiment_id()
        logged = client.create_logged_model(
            experiment_id, name, run_id, resolve_tags(tags), all_params, model_type
        )
        _remember(logged)
    try:
        if run_id is not None:
            output = LoggedModelOutput(logged.model_id, step)
            client.log_outputs(run_id, [output])
            # the active run's outputs follow, as MLflow keeps its cached run in sync
            if run.outputs is None:
                run._outputs = RunOutputs([output])
            else:
                run.outputs.model_outputs.append(output)
            client._copy_run_metrics_to_model(run_id, logged.model_id, step)
        mlflow_model = Model(
            artifact_path=logged.artifact_location,
            model_uuid=logged.model_id,
            run_id=run_id,
            model_id=logged.model_id,
        )
        with tempfile.TemporaryDirectory() as tmp:
            local = f"{tmp}/model"
            save(path=local, mlflow_model=mlflow_model, **save_kwargs)
            client.log_model_artifacts(logged.model_id, local)
    except BaseException:
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    logged = client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    return ModelInfo(mlflow_model, logged)
