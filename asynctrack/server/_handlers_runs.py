"""Run, logging and metric-history endpoints: MLflow 3.18's handlers over asynctrack's client.
Every write is synchronous (answered once durable) through the process's one writer."""

from __future__ import annotations

from typing import Any

from ..entities import Dataset, DatasetInput, InputTag, ViewType
from ..exceptions import INVALID_PARAMETER_VALUE, NOT_IMPLEMENTED, MlflowException
from . import _json
from ._context import Request
from ._handlers_experiments import request_message
from ._plain_batch import plain_log_batch
from ._requests import (
    body_json,
    assert_array,
    assert_floatlike,
    assert_intlike,
    assert_intlike_within_range,
    assert_item_type_string,
    assert_less_than_or_equal,
    assert_required,
    assert_string,
)

MAX_RUNS_GET_METRIC_HISTORY_BULK = 100
MAX_RESULTS_PER_RUN = 2500
MAX_HISTORY_BULK_RESULTS = 25000
_RUN_ID = {"run_id": [assert_required, assert_string]}


def _run_id(msg) -> str:
    return msg.run_id or msg.run_uuid


def create_run(backend, req: Request) -> dict:
    msg = request_message(
        req,
        "CreateRun",
        {"experiment_id": [assert_string], "start_time": [assert_intlike], "run_name": [assert_string]},
    )
    tags = [{"key": t.get("key", ""), "value": t.get("value", "")} for t in msg.tags]
    run = backend.create_run(msg.experiment_id, msg.user_id, msg.start_time, tags, msg.run_name)
    return {"run": _json.run(run, outputs=False)}


def get_run(backend, req: Request) -> dict:
    msg = request_message(req, "GetRun", _RUN_ID)
    return {"run": _json.run(backend.client.get_run(_run_id(msg)))}


def update_run(backend, req: Request) -> dict:
    msg = request_message(
        req,
        "UpdateRun",
        {
            "run_id": [assert_required, assert_string],
            "end_time": [assert_intlike],
            "status": [assert_string],
            "run_name": [assert_string],
        },
    )
    info = backend.update_run_info(
        _run_id(msg),
        msg["status"] if msg.has("status") else None,
        msg["end_time"] if msg.has("end_time") else None,
        msg["run_name"] if msg.has("run_name") else None,
    )
    return {"run_info": _json.run_info(info)}


def delete_run(backend, req: Request) -> dict:
    msg = request_message(req, "DeleteRun", _RUN_ID)
    backend.client.delete_run(msg.run_id)
    return {}


def restore_run(backend, req: Request) -> dict:
    msg = request_message(req, "RestoreRun", _RUN_ID)
    backend.client.restore_run(msg.run_id)
    return {}


def log_metric(backend, req: Request) -> dict:
    msg = request_message(
        req,
        "LogMetric",
        {
            "run_id": [assert_required, assert_string],
            "key": [assert_required, assert_string],
            "value": [assert_required, assert_floatlike],
            "timestamp": [assert_intlike, assert_required],
            "step": [assert_intlike],
            "model_id": [assert_string],
            "dataset_name": [assert_string],
            "dataset_digest": [assert_string],
        },
    )
    backend.client.log_metric(
        _run_id(msg), msg.key, msg.value, msg.timestamp, msg.step, synchronous=True,
        dataset_name=msg.dataset_name or None, dataset_digest=msg.dataset_digest or None,
        model_id=msg.model_id or None,
    )
    return {}


def log_param(backend, req: Request) -> dict:
    msg = request_message(
        req,
        "LogParam",
        {"run_id": [assert_required, assert_string], "key": [assert_required, assert_string], "value": [assert_string]},
    )
    backend.log_param(_run_id(msg), msg.key, msg.value)
    return {}


def set_tag(backend, req: Request) -> dict:
    msg = request_message(
        req,
        "SetTag",
        {"run_id": [assert_required, assert_string], "key": [assert_required, assert_string], "value": [assert_string]},
    )
    backend.client.set_tag(_run_id(msg), msg.key, msg.value, synchronous=True)
    return {}


def delete_tag(backend, req: Request) -> dict:
    msg = request_message(
        req, "DeleteTag", {"run_id": [assert_required, assert_string], "key": [assert_required, assert_string]}
    )
    backend.client.delete_tag(msg.run_id, msg.key)
    return {}


def _fields_present(name: str, required: tuple[str, ...]):
    def check(items: Any) -> None:
        for idx, item in enumerate(items):
            for field in required:
                assert_required(item.get(field), path=f"{name}[{idx}].{field}")

    return check


def log_batch(backend, req: Request) -> dict:
    if req.method == "POST":
        plain = plain_log_batch(body_json(req.method, req.content_type, req.body))
        if plain is not None:  # the usual request, valid as it is: checked as columns
            backend.log_batch_plain(*plain)
            return {}
    msg = request_message(
        req,
        "LogBatch",
        {
            "run_id": [assert_string, assert_required],
            "metrics": [assert_array, _fields_present("metrics", ("key", "value", "timestamp"))],
            "params": [assert_array, _fields_present("params", ("key",))],
            "tags": [assert_array, _fields_present("tags", ("key",))],
        },
    )
    metrics = [
        {"key": m.get("key", ""), "value": m.get("value", 0.0), "timestamp": m.get("timestamp", 0), "step": m.get("step", 0)}
        for m in msg.metrics
    ]
    params = [{"key": p.get("key", ""), "value": p.get("value", "")} for p in msg.params]
    tags = [{"key": t.get("key", ""), "value": t.get("value", "")} for t in msg.tags]
    backend.log_batch(msg.run_id, metrics, params, tags)
    return {}


def log_inputs(backend, req: Request) -> dict:
    msg = request_message(
        req,
        "LogInputs",
        {"run_id": [assert_required, assert_string], "datasets": [assert_array], "models": [assert_array]},
    )
    if msg.models:
        backend.client.get_run(msg.run_id)  # an unknown run is RESOURCE_DOES_NOT_EXIST, as in MLflow
        raise MlflowException(
            "LogInputs with models is not supported by asynctrack's server: "
            "asynctrack does not store logged-model inputs yet.",
            NOT_IMPLEMENTED,
        )
    backend.client.log_inputs(msg.run_id, datasets=[_dataset_input(d) for d in msg.datasets or []])
    return {}


def _dataset_input(d: dict) -> DatasetInput:
    """A DatasetInput message as MLflow's DatasetInput.from_proto reads it: an absent string is
    empty, an absent schema or profile None."""
    ds = d.get("dataset") or {}
    return DatasetInput(
        Dataset(
            ds.get("name", ""), ds.get("digest", ""), ds.get("source_type", ""), ds.get("source", ""),
            ds.get("schema"), ds.get("profile"),
        ),
        [InputTag(t.get("key", ""), t.get("value", "")) for t in d.get("tags") or []],
    )


_VIEW = {"ACTIVE_ONLY": ViewType.ACTIVE_ONLY, "DELETED_ONLY": ViewType.DELETED_ONLY, "ALL": ViewType.ALL}


def search_runs(backend, req: Request) -> dict:
    msg = request_message(
        req,
        "SearchRuns",
        {
            "experiment_ids": [assert_array],
            "filter": [assert_string],
            "max_results": [assert_intlike, lambda x: assert_less_than_or_equal(int(x), 50000)],
            "order_by": [assert_array, assert_item_type_string],
        },
    )
    view = _VIEW[msg["run_view_type"]] if msg.has("run_view_type") else ViewType.ACTIVE_ONLY
    runs = backend.client.search_runs(
        experiment_ids=list(msg.experiment_ids),
        filter_string=msg.filter,
        run_view_type=view,
        max_results=msg["max_results"] if msg.has("max_results") else 1000,
        order_by=list(msg.order_by),
        page_token=msg.page_token or None,
    )
    out: dict[str, Any] = {}
    if runs:
        out["runs"] = [_json.run(r) for r in runs]
    if runs.token:
        out["next_page_token"] = _json.token(runs.token)
    return out


def get_metric_history(backend, req: Request) -> dict:
    msg = request_message(
        req,
        "GetMetricHistory",
        {
            "run_id": [assert_string, assert_required],
            "metric_key": [assert_string, assert_required],
            "page_token": [assert_string],
        },
    )
    max_results = msg["max_results"] if msg.has("max_results") else None
    if max_results is not None and max_results <= 0:
        raise MlflowException(
            f"Invalid value {max_results} for parameter 'max_results' supplied. "
            "It must be a positive integer.",
            INVALID_PARAMETER_VALUE,
        )
    metrics, token = backend.client._read().get_metric_history(
        _run_id(msg), msg.metric_key, max_results=max_results, page_token=msg.page_token or None
    )
    out: dict[str, Any] = {}
    if metrics:
        out["metrics"] = [_json.metric(m) for m in metrics]
    if token:
        out["next_page_token"] = _json.token(token)
    return out


def get_metric_history_bulk_interval(backend, req: Request) -> dict:
    msg = request_message(
        req,
        "GetMetricHistoryBulkInterval",
        {
            "run_ids": [
                assert_required,
                assert_array,
                assert_item_type_string,
                lambda x: assert_less_than_or_equal(
                    len(x),
                    MAX_RUNS_GET_METRIC_HISTORY_BULK,
                    message="GetMetricHistoryBulkInterval request must specify at most "
                    f"{MAX_RUNS_GET_METRIC_HISTORY_BULK} run_ids. Received {len(x)} run_ids.",
                ),
            ],
            "metric_key": [assert_required, assert_string],
            "start_step": [assert_intlike],
            "end_step": [assert_intlike],
            "max_results": [
                assert_intlike,
                lambda x: assert_intlike_within_range(
                    int(x), 1, MAX_RESULTS_PER_RUN,
                    message=f"max_results must be between 1 and {MAX_RESULTS_PER_RUN}.",
                ),
            ],
        },
    )
    # MLflow reads these three from the query string again, as given.
    args = dict(req.query) if req.method == "GET" else {}
    max_results = int(args.get("max_results", MAX_RESULTS_PER_RUN))
    start_step, end_step = args.get("start_step"), args.get("end_step")
    if start_step is not None and end_step is not None:
        start_step, end_step = int(start_step), int(end_step)
        if start_step > end_step:
            raise MlflowException.invalid_parameter_value(
                "end_step must be greater than start_step. "
                f"Found start_step={start_step} and end_step={end_step}."
            )
    elif start_step is not None or end_step is not None:
        raise MlflowException.invalid_parameter_value(
            "If either start step or end step are specified, both must be specified."
        )
    points = backend.metric_history_bulk_interval(
        list(msg.run_ids), msg.metric_key, max_results, start_step, end_step
    )
    out: dict[str, Any] = {}
    if points:
        out["metrics"] = [
            {"key": m.key, "value": _json.double(m.value), "timestamp": m.timestamp, "step": m.step, "run_id": run_id}
            for run_id, m in points
        ]
    return out


def get_metric_history_bulk(backend, req: Request) -> dict:
    """The route MLflow's UI charts with (``/ajax-api`` only): its query string as MLflow's
    handler reads it, its answer as Flask's ``jsonify`` writes it."""
    run_ids = [value for name, value in req.query if name == "run_id"]
    if not run_ids:
        raise MlflowException(
            "GetMetricHistoryBulk request must specify at least one run_id.", INVALID_PARAMETER_VALUE
        )
    if len(run_ids) > MAX_RUNS_GET_METRIC_HISTORY_BULK:
        raise MlflowException(
            f"GetMetricHistoryBulk request cannot specify more than "
            f"{MAX_RUNS_GET_METRIC_HISTORY_BULK} run_ids. Received {len(run_ids)} run_ids.",
            INVALID_PARAMETER_VALUE,
        )
    args = dict(reversed(req.query))  # the first value of each, as Flask's args.get
    metric_key = args.get("metric_key")
    if metric_key is None:
        raise MlflowException(
            "GetMetricHistoryBulk request must specify a metric_key.", INVALID_PARAMETER_VALUE
        )
    raw = args.get("max_results", str(MAX_HISTORY_BULK_RESULTS))
    try:
        max_results = int(raw)
    except ValueError:  # MLflow: an unhandled ValueError, its 500 page
        raise MlflowException(
            f"Invalid value {raw!r} for parameter 'max_results': it must be an integer.",
            INVALID_PARAMETER_VALUE,
        ) from None
    max_results = min(max_results, MAX_HISTORY_BULK_RESULTS)
    points = backend.metric_history_bulk(run_ids, metric_key, max_results)
    metrics = [
        {"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step, "run_id": run_id}
        for run_id, m in points
    ]
    return _json.FlaskJson({"metrics": metrics[:max_results]})


def search_logged_models(backend, req: Request) -> dict:
    """asynctrack stores no logged models: every search finds none (MLflow's client asks for
    them when it lists a run's artifacts)."""
    body_json(req.method, req.content_type, req.body)
    return {}


ROUTES = [
    ("/mlflow/logged-models/search", "POST", search_logged_models),
    ("/mlflow/runs/create", "POST", create_run),
    ("/mlflow/runs/get", "GET", get_run),
    ("/mlflow/runs/update", "POST", update_run),
    ("/mlflow/runs/delete", "POST", delete_run),
    ("/mlflow/runs/restore", "POST", restore_run),
    ("/mlflow/runs/search", "POST", search_runs),
    ("/mlflow/runs/log-metric", "POST", log_metric),
    ("/mlflow/runs/log-parameter", "POST", log_param),
    ("/mlflow/runs/set-tag", "POST", set_tag),
    ("/mlflow/runs/delete-tag", "POST", delete_tag),
    ("/mlflow/runs/log-batch", "POST", log_batch),
    ("/mlflow/runs/log-inputs", "POST", log_inputs),
    ("/mlflow/metrics/get-history", "GET", get_metric_history),
    ("/mlflow/metrics/get-history-bulk-interval", "GET", get_metric_history_bulk_interval),
]

# Served under /ajax-api/2.0 only, as MLflow serves them.
AJAX_ROUTES = [
    ("/mlflow/metrics/get-history-bulk", "GET", get_metric_history_bulk),
]
