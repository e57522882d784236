"""The module-level API (``import asynctrack as mlflow``): MLflow 3.18's fluent functions."""

from ._artifacts import (
    flush_artifact_async_logging,
    get_artifact_uri,
    load_table,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_image,
    log_table,
    log_text,
)
from ._experiments import (
    _get_experiment_id,
    create_experiment,
    delete_experiment,
    delete_experiment_tag,
    get_experiment,
    get_experiment_by_name,
    restore_experiment,
    set_experiment,
    set_experiment_tag,
    set_experiment_tags,
)
from ._logging import (
    delete_tag,
    flush_async_logging,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    set_tag,
    set_tags,
)
from ._runs import (
    ActiveRun,
    _get_or_start_run,
    active_run,
    delete_run,
    end_run,
    get_parent_run,
    get_run,
    last_active_run,
    restore_run,
    start_run,
)
from ._search import search_experiments, search_runs

from . import _preemption

_preemption.install()

__all__ = [
    "ActiveRun",
    "active_run",
    "create_experiment",
    "delete_experiment",
    "delete_experiment_tag",
    "delete_run",
    "delete_tag",
    "end_run",
    "flush_artifact_async_logging",
    "flush_async_logging",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_parent_run",
    "get_run",
    "last_active_run",
    "load_table",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "restore_experiment",
    "restore_run",
    "search_experiments",
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_tag",
    "set_tags",
    "start_run",
]
