"""Module-level logging: to this thread's active run (started if there is none), as MLflow does.

``log_metric`` is the hot path: a thread-local lookup, then the run's own client, whose
asynchronous path is an encode and a queue append. No client is built and no run is read per
call (MLflow reads the run back from the store on every ``log_metric``).
"""

from __future__ import annotations

import weakref
from typing import Any

from ..client import _now_ms
from .._inputs import as_entity, dataset_input
from ..entities import DatasetInput, Param, RunTag
from ..exceptions import INVALID_PARAMETER_VALUE, MlflowException
from ..run_operations import RunOperations
from ..writer import flush_all
from ._client import client
from ._runs import _get_or_start_run, _local


def _run_client(run_id: str | None):
    """(run_id, client) for a call that may name its run; the active run's otherwise."""
    if run_id is None:
        stack = _local.stack
        run = stack[-1] if stack else _get_or_start_run()
        return run._run_id, run._client
    c = client()
    c.get_run(run_id)  # MLflow reads the named run first: a missing one fails here
    return run_id, c


def _refuse_model_link_dataset(model_id: Any, dataset: Any, run_id: str | None = None, c: Any = None) -> None:
    """model_id= is refused; dataset= links the dataset to the run first, as MLflow's
    _log_inputs_for_metrics_if_necessary does (the store links a run to a dataset once)."""
    if model_id is not None:
        raise MlflowException(
            "Logging metrics against a logged model (model_id=) is not supported by asynctrack yet.",
            INVALID_PARAMETER_VALUE,
        )
    if dataset is not None:
        # Linked once per client, run and dataset: the link is waited for (its errors are the
        # caller's), and a loop logging each step with dataset= must not wait at every step.
        linked = _linked.setdefault(c, set())
        key = (run_id, dataset.name, dataset.digest)
        if key not in linked:
            c.log_inputs(run_id, datasets=[DatasetInput(as_entity(dataset), tags=[])])
            linked.add(key)


_linked: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # client -> datasets it linked


def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    synchronous: bool | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
    model_id: str | None = None,
    dataset: Any = None,
) -> RunOperations | None:
    """Log one metric point (step 0 and the current time unless given)."""
    if run_id is None:
        stack = _local.stack
        run = stack[-1] if stack else _get_or_start_run()
        c, run_id = run._client, run._run_id
    else:
        run_id, c = _run_client(run_id)
    if model_id is not None or dataset is not None:
        # (the metrics table keeps no dataset fields, as MLflow's: the link is all there is)
        _refuse_model_link_dataset(model_id, dataset, run_id, c)
    return c.log_metric(run_id, key, value, timestamp, step or 0, synchronous=synchronous)


def log_metrics(
    metrics: dict[str, float],
    step: int | None = None,
    synchronous: bool | None = None,
    run_id: str | None = None,
    timestamp: int | None = None,
    model_id: str | None = None,
    dataset: Any = None,
) -> RunOperations | None:
    """Log several metrics at one step and time, as one batch."""
    run_id, c = _run_client(run_id)
    # MLflow links the dataset per metric logged: none for an empty dict.
    _refuse_model_link_dataset(model_id, dataset if metrics else None, run_id, c)
    timestamp = timestamp if timestamp is not None else _now_ms()
    return c._log_metric_dict(run_id, metrics, timestamp, step or 0, synchronous)


def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    """Log one param; returns the value, as MLflow does."""
    run_id, c = _run_client(None)
    return c.log_param(run_id, key, value, synchronous=synchronous)


def log_params(
    params: dict[str, Any], synchronous: bool | None = None, run_id: str | None = None
) -> RunOperations | None:
    run_id, c = (run_id, client()) if run_id else _run_client(None)
    batch = [Param(key, str(value)) for key, value in params.items()]
    return c.log_batch(run_id, metrics=[], params=batch, tags=[], synchronous=synchronous)


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> RunOperations | None:
    run_id, c = _run_client(None)
    return c.set_tag(run_id, key, value, synchronous=synchronous)


def set_tags(tags: dict[str, Any], synchronous: bool | None = None) -> RunOperations | None:
    run_id, c = _run_client(None)
    batch = [RunTag(key, str(value)) for key, value in tags.items()]
    return c.log_batch(run_id, metrics=[], params=[], tags=batch, synchronous=synchronous)


def delete_tag(key: str) -> None:
    run_id, c = _run_client(None)
    c.delete_tag(run_id, key)


def log_input(dataset: Any = None, context: str | None = None, tags: dict[str, str] | None = None,
              model: Any = None) -> None:
    """Link a dataset (with a context, e.g. ``training``, and tags) to the active run."""
    run_id, c = _run_client(None)
    datasets = [dataset_input(dataset, context, tags)] if dataset else None
    c.log_inputs(run_id=run_id, datasets=datasets, models=[model] if model else None)


def log_inputs(
    datasets: list[Any] | None = None,
    contexts: list[str | None] | None = None,
    tags_list: list[dict[str, str] | None] | None = None,
    models: list[Any] | None = None,
) -> None:
    """Link several datasets to the active run: ``datasets``, ``contexts`` and ``tags_list``
    of the same length (None entries allowed)."""
    run_id, c = _run_client(None)
    datasets, contexts, tags_list = datasets or [], contexts or [], tags_list or []
    if not (len(datasets) == len(contexts) == len(tags_list)):
        raise MlflowException(
            "`mlflow.log_inputs` requires `datasets`, `contexts`, `tags_list` to be "
            "non-empty list and have the same length."
        )
    if models:
        raise MlflowException("'models' argument is only supported by Databricks managed MLflow.")
    inputs = [dataset_input(d, ctx, tags) for d, ctx, tags in zip(datasets, contexts, tags_list)]
    c.log_inputs(run_id=run_id, datasets=inputs, models=None)  # None entries fail as in MLflow


def flush_async_logging() -> None:
    """Wait until everything this process logged asynchronously is stored."""
    flush_all()
