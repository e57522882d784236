"""Experiment endpoints: MLflow 3.18's handlers (``mlflow/server/handlers.py``) over
asynctrack's client, request schemas and answers as MLflow's."""

from __future__ import annotations

from typing import Any

from ..entities import ViewType
from ..exceptions import RESOURCE_DOES_NOT_EXIST, MlflowException
from . import _json
from ._context import Request
from ._requests import (
    FIELDS,
    Message,
    Schema,
    assert_array,
    assert_intlike,
    assert_required,
    assert_string,
    body_json,
    parse_message,
    query_json,
)


def request_message(req: Request, name: str, schema: Schema | None = None) -> Message:
    """MLflow's ``_get_request_message``: a GET's query string, else the JSON body."""
    if req.method == "GET" and req.query:
        request_json: Any = query_json(req.query, FIELDS[name])
    else:
        request_json = body_json(req.method, req.content_type, req.body)
    return parse_message(request_json, name, schema)


_EXPERIMENT_ID = {"experiment_id": [assert_required, assert_string]}


def create_experiment(backend, req: Request) -> dict:
    msg = request_message(
        req,
        "CreateExperiment",
        {"name": [assert_required, assert_string], "artifact_location": [assert_string], "tags": [assert_array]},
    )
    tags = {t.get("key", ""): t.get("value", "") for t in msg.tags}
    experiment_id = backend.create_experiment(msg.name, msg.artifact_location, tags)
    return {"experiment_id": experiment_id}


def get_experiment(backend, req: Request) -> dict:
    msg = request_message(req, "GetExperiment", _EXPERIMENT_ID)
    return {"experiment": _json.experiment(backend.client.get_experiment(msg.experiment_id))}


def get_experiment_by_name(backend, req: Request) -> dict:
    msg = request_message(req, "GetExperimentByName", {"experiment_name": [assert_required, assert_string]})
    exp = backend.client.get_experiment_by_name(msg.experiment_name)
    if exp is None:
        raise MlflowException(
            f"Could not find experiment with name '{msg.experiment_name}'", RESOURCE_DOES_NOT_EXIST
        )
    return {"experiment": _json.experiment(exp)}


def delete_experiment(backend, req: Request) -> dict:
    msg = request_message(req, "DeleteExperiment", _EXPERIMENT_ID)
    backend.client.delete_experiment(msg.experiment_id)
    return {}


def restore_experiment(backend, req: Request) -> dict:
    msg = request_message(req, "RestoreExperiment", _EXPERIMENT_ID)
    backend.client.restore_experiment(msg.experiment_id)
    return {}


def update_experiment(backend, req: Request) -> dict:
    msg = request_message(
        req,
        "UpdateExperiment",
        {"experiment_id": [assert_required, assert_string], "new_name": [assert_string, assert_required]},
    )
    if msg.new_name:
        backend.client.rename_experiment(msg.experiment_id, msg.new_name)
    return {}


def set_experiment_tag(backend, req: Request) -> dict:
    msg = request_message(
        req,
        "SetExperimentTag",
        {
            "experiment_id": [assert_required, assert_string],
            "key": [assert_required, assert_string],
            "value": [assert_string],
        },
    )
    backend.client.set_experiment_tag(msg.experiment_id, msg.key, msg.value)
    return {}


def delete_experiment_tag(backend, req: Request) -> dict:
    msg = request_message(
        req,
        "DeleteExperimentTag",
        {"experiment_id": [assert_required, assert_string], "key": [assert_required, assert_string]},
    )
    backend.client.delete_experiment_tag(msg.experiment_id, msg.key)
    return {}


_VIEW = {"ACTIVE_ONLY": ViewType.ACTIVE_ONLY, "DELETED_ONLY": ViewType.DELETED_ONLY, "ALL": ViewType.ALL}


def search_experiments(backend, req: Request) -> dict:
    msg = request_message(
        req,
        "SearchExperiments",
        {
            "view_type": [assert_intlike],
            "max_results": [assert_intlike],
            "order_by": [assert_array],
            "filter": [assert_string],
            "page_token": [assert_string],
        },
    )
    # Unset fields read as protobuf's defaults (view ACTIVE_ONLY, max_results 0, which
    # MLflow's store then refuses), as MLflow's handler passes them on.
    view = _VIEW[msg["view_type"]] if msg.has("view_type") else ViewType.ACTIVE_ONLY
    experiments = backend.client.search_experiments(
        view_type=view,
        max_results=msg.max_results,
        filter_string=msg.filter,
        order_by=list(msg.order_by),
        page_token=msg.page_token or None,
    )
    out: dict[str, Any] = {}
    if experiments:
        out["experiments"] = [_json.experiment(e) for e in experiments]
    if experiments.token:
        out["next_page_token"] = _json.token(experiments.token)
    return out


ROUTES = [
    ("/mlflow/experiments/create", "POST", create_experiment),
    ("/mlflow/experiments/get", "GET", get_experiment),
    ("/mlflow/experiments/get-by-name", "GET", get_experiment_by_name),
    ("/mlflow/experiments/search", "POST", search_experiments),
    ("/mlflow/experiments/search", "GET", search_experiments),
    ("/mlflow/experiments/delete", "POST", delete_experiment),
    ("/mlflow/experiments/restore", "POST", restore_experiment),
    ("/mlflow/experiments/update", "POST", update_experiment),
    ("/mlflow/experiments/set-experiment-tag", "POST", set_experiment_tag),
    ("/mlflow/experiments/delete-experiment-tag", "POST", delete_experiment_tag),
]
