"""MLflow 3's logged models in MLflow's SQL tables (``logged_models``, ``logged_model_params``,
``logged_model_tags``, ``logged_model_metrics``; ``inputs`` rows RUN_OUTPUT -> MODEL_OUTPUT), as
MLflow 3.18's SqlAlchemyStore writes and reads them. Each function takes a connection that
accepts ``?`` placeholders; writes run inside the caller's transaction."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from typing import Any

from ...entities import Metric
from ...entities._logged_model import LoggedModel, LoggedModelStatus
from ...exceptions import (
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    RESOURCE_DOES_NOT_EXIST,
    MlflowException,
)
from .rules import run_not_active, run_not_found

MODELS_FOLDER = "models"
ARTIFACTS_FOLDER = "artifacts"
MAX_RESULTS_DEFAULT = 100
_BAD_NAME_CHARS = ("/", ":", ".", "%", '"', "'")

_COLUMNS = (
    "model_id, experiment_id, name, artifact_location, creation_timestamp_ms, "
    "last_updated_timestamp_ms, status, model_type, source_run_id, status_message"
)


def validate_name(name: str | None) -> None:
    """MLflow's ``_validate_logged_model_name``."""
    if name is None:
        return
    if not name or any(c in name for c in _BAD_NAME_CHARS):
        raise MlflowException(
            f"Invalid model name ({name!r}) provided. Model name must be a non-empty string "
            f"and cannot contain the following characters: {_BAD_NAME_CHARS}",
            INVALID_PARAMETER_VALUE,
        )


def not_found(model_id: str) -> MlflowException:
    return MlflowException(f"Logged model with ID '{model_id}' not found.", RESOURCE_DOES_NOT_EXIST)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def create(
    conn: Any,
    experiment_id: int,
    artifact_root: str,
    name: str,
    source_run_id: str | None,
    tags: dict[str, str],
    params: dict[str, str],
    model_type: str | None,
) -> str:
    """Insert a PENDING model as ``create_logged_model`` does; returns its id."""
    model_id = f"m-{uuid.uuid4().hex}"
    location = "/".join([artifact_root.rstrip("/"), MODELS_FOLDER, model_id, ARTIFACTS_FOLDER])
    now = _now_ms()
    conn.execute(
        "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, "
        "creation_timestamp_ms, last_updated_timestamp_ms, status, lifecycle_stage, model_type, "
        "source_run_id, status_message) VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, NULL)",
        (model_id, experiment_id, name, location, now, now,
         LoggedModelStatus.PENDING.to_int(), model_type, source_run_id),
    )
    for key, value in params.items():
        conn.execute(
            "INSERT INTO logged_model_params (model_id, experiment_id, param_key, param_value) "
            "VALUES (?, ?, ?, ?)",
            (model_id, experiment_id, key, value),
        )
    for key, value in tags.items():
        conn.execute(
            "INSERT INTO logged_model_tags (model_id, experiment_id, tag_key, tag_value) "
            "VALUES (?, ?, ?, ?)",
            (model_id, experiment_id, key, value),
        )
    return model_id


def _experiment_of(conn: Any, model_id: str) -> int:
    row = conn.execute(
        "SELECT experiment_id FROM logged_models WHERE model_id = ?", (model_id,)
    ).fetchone()
    if row is None:
        raise not_found(model_id)
    return row[0]


def finalize(conn: Any, model_id: str, status: LoggedModelStatus) -> None:
    _experiment_of(conn, model_id)
    conn.execute(
        "UPDATE logged_models SET status = ?, last_updated_timestamp_ms = ? WHERE model_id = ?",
        (status.to_int(), _now_ms(), model_id),
    )


def delete(conn: Any, model_id: str) -> None:
    """A soft delete, as MLflow's: lifecycle_stage 'deleted' (get and search skip it)."""
    _experiment_of(conn, model_id)
    conn.execute(
        "UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp_ms = ? "
        "WHERE model_id = ?",
        (_now_ms(), model_id),
    )


def set_tags(conn: Any, model_id: str, tags: dict[str, str]) -> None:
    """Upsert: a repeated key keeps the last value, as MLflow's ``_bulk_upsert``."""
    experiment_id = _experiment_of(conn, model_id)
    for key, value in tags.items():
        conn.execute(
            "DELETE FROM logged_model_tags WHERE model_id = ? AND tag_key = ?", (model_id, key)
        )
        conn.execute(
            "INSERT INTO logged_model_tags (model_id, experiment_id, tag_key, tag_value) "
            "VALUES (?, ?, ?, ?)",
            (model_id, experiment_id, key, value),
        )


def delete_tag(conn: Any, model_id: str, key: str) -> None:
    _experiment_of(conn, model_id)
    cur = conn.execute(
        "DELETE FROM logged_model_tags WHERE model_id = ? AND tag_key = ?", (model_id, key)
    )
    if cur.rowcount == 0:
        raise MlflowException(
            f"No tag with key {key!r} found for model with ID {model_id!r}.",
            RESOURCE_DOES_NOT_EXIST,
        )


def log_metrics(conn: Any, model_id: str, metrics: list[tuple]) -> None:
    """``logged_model_metrics`` rows (name, value, timestamp, step, run_id, dataset name,
    dataset digest) of the model; a point already there is kept (MLflow's log_batch)."""
    experiment_id = _experiment_of(conn, model_id)
    for name, value, timestamp, step, run_id, dataset_name, dataset_digest in metrics:
        conn.execute(
            "INSERT INTO logged_model_metrics (model_id, metric_name, metric_timestamp_ms, "
            "metric_step, metric_value, experiment_id, run_id, dataset_uuid, dataset_name, "
            "dataset_digest) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?) ON CONFLICT DO NOTHING",
            (model_id, name, timestamp, step, value, experiment_id, run_id, dataset_name,
             dataset_digest),
        )


def log_outputs(conn: Any, run_id: str, outputs: list[tuple[str, int]]) -> None:
    """``inputs`` rows RUN_OUTPUT(run) -> MODEL_OUTPUT(model), with the step (``log_outputs``)."""
    row = conn.execute(
        "SELECT lifecycle_stage FROM runs WHERE run_uuid = ?", (run_id,)
    ).fetchone()
    if row is None:
        raise run_not_found(run_id)
    if row[0] != "active":
        raise run_not_active(run_id, row[0])
    for model_id, step in outputs:
        conn.execute(
            "INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, "
            "destination_id, step) VALUES (?, 'RUN_OUTPUT', ?, 'MODEL_OUTPUT', ?, ?)",
            (uuid.uuid4().hex, run_id, model_id, step),
        )


def _entity(conn: Any, row: tuple) -> LoggedModel:
    model_id, exp_id, name, location, created, updated, status, mtype, run_id, message = row
    tags = dict(conn.execute(
        "SELECT tag_key, tag_value FROM logged_model_tags WHERE model_id = ?", (model_id,)
    ).fetchall())
    params = dict(conn.execute(
        "SELECT param_key, param_value FROM logged_model_params WHERE model_id = ?", (model_id,)
    ).fetchall())
    metrics = [
        Metric(key, value, ts, step, run_id=rid, dataset_name=dname, dataset_digest=ddigest, model_id=model_id)
        for key, value, ts, step, rid, dname, ddigest in conn.execute(
            "SELECT metric_name, metric_value, metric_timestamp_ms, metric_step, run_id, "
            "dataset_name, dataset_digest FROM logged_model_metrics WHERE model_id = ?",
            (model_id,),
        ).fetchall()
    ]
    return LoggedModel(
        str(exp_id), model_id, name, location, created, updated, mtype, run_id, status,
        message, tags=tags, params=params, metrics=metrics,
    )


def get(conn: Any, model_id: str, allow_deleted: bool = False) -> LoggedModel:
    stage = "" if allow_deleted else " AND lifecycle_stage = 'active'"
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM logged_models WHERE model_id = ?{stage}", (model_id,)
    ).fetchone()
    if row is None:
        raise not_found(model_id)
    return _entity(conn, row)


# MLflow's SqlLoggedModel: its filter aliases, its columns, and the numeric ones
_ALIASES = {
    "creation_time": "creation_timestamp_ms",
    "creation_timestamp": "creation_timestamp_ms",
    "last_updated_timestamp": "last_updated_timestamp_ms",
}
_COLUMN_NAMES = {
    "model_id", "experiment_id", "name", "artifact_location", "creation_timestamp_ms",
    "last_updated_timestamp_ms", "status", "lifecycle_stage", "model_type", "source_run_id",
    "status_message",
}
_NUMERIC = {"creation_timestamp_ms", "last_updated_timestamp_ms"}
_NUMERIC_OPS = ("<", "<=", ">", ">=", "=", "!=")
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_ENTITIES = ["attributes", "metrics", "params", "tags"]
_IDENTIFIER = re.compile(r"^([a-z]+)\.(.+)$")
_CLAUSE = re.compile(
    r"^\s*(?P<ident>`[^`]+`|[\w.`]+)\s*"
    r"(?P<op><=|>=|!=|=|<|>|(?:NOT\s+)?I?LIKE\b|(?:NOT\s+)?IN\b)\s*"
    r"(?P<value>'(?:[^']|'')*'|\"[^\"]*\"|\([^)]*\)|[-+]?[\d.]+(?:[eE][-+]?\d+)?)\s*$",
    re.IGNORECASE,
)
_SPLIT_AND = re.compile(r"\s+AND\s+(?=(?:[^']*'[^']*')*[^']*$)", re.IGNORECASE)


def _bad_filter(filter_string: str) -> MlflowException:
    return MlflowException(
        f"Invalid filter string: {filter_string!r}. Expected a list of comparisons separated "
        "by 'AND' (e.g. 'metrics.loss > 0.1 AND params.lr = 0.01').",
        INVALID_PARAMETER_VALUE,
    )


def _parse(filter_string: str) -> list[tuple[str, str, str, Any]]:
    """(entity, key, op, value) per comparison, as MLflow's ``parse_filter_string``."""
    import ast

    out = []
    for clause in _SPLIT_AND.split(filter_string.strip()):
        m = _CLAUSE.match(clause)
        if not m:
            raise _bad_filter(filter_string)
        ident, op, raw = m["ident"], " ".join(m["op"].upper().split()), m["value"]
        if im := _IDENTIFIER.match(ident):
            entity, key = im.group(1), im.group(2).strip("`")
            if entity not in _ENTITIES:
                raise MlflowException(
                    f"Invalid entity type: {entity!r}. Expected one of {_ENTITIES}.",
                    INVALID_PARAMETER_VALUE,
                )
        else:
            entity, key = "attributes", _ALIASES.get(ident, ident).strip("`")
        numeric = entity == "metrics" or (entity == "attributes" and key in _NUMERIC)
        ops = _NUMERIC_OPS if numeric else _STRING_OPS
        if op not in ops:
            raise MlflowException(
                f"Invalid comparison operator for {entity}.{key}: {op!r}. Expected one of {ops}.",
                INVALID_PARAMETER_VALUE,
            )
        if numeric:
            try:
                value: Any = float(raw)
            except ValueError:
                raise MlflowException(
                    f"could not convert string to float: {raw!r}", INVALID_PARAMETER_VALUE
                ) from None
        elif raw.startswith("(") and raw.endswith(")"):
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                raise _bad_filter(filter_string) from None
            value = (value,) if isinstance(value, str) else tuple(value)
        else:
            value = raw.strip("'")
        out.append((entity, key, op, value))
    return out


def _where(filter_string: str | None) -> tuple[list[str], list[Any]]:
    """SQL conditions and arguments for MLflow's logged-model filter: ``AND``-joined
    comparisons on attributes, ``params.*``, ``tags.*`` and ``metrics.*``."""
    if not filter_string:
        return [], []
    conds: list[str] = []
    args: list[Any] = []
    for entity, key, op, value in _parse(filter_string):
        if entity == "attributes" and key == "status":
            if op not in ("=", "!=", "IN", "NOT IN"):
                raise MlflowException(
                    f"Invalid comparison operator for status: {op}", INVALID_PARAMETER_VALUE
                )
            values = value if op in ("IN", "NOT IN") else (value,)
            try:
                ints = tuple(LoggedModelStatus(v).to_int() for v in values)
            except ValueError:
                raise MlflowException(
                    f"Unknown model status in filter: {value!r}", INVALID_PARAMETER_VALUE
                ) from None
            value = ints if op in ("IN", "NOT IN") else ints[0]
        if op in ("IN", "NOT IN"):
            rhs, vals = "(" + ", ".join("?" * len(value)) + ")", list(value)
        else:
            rhs, vals = "?", [value]
        if op == "ILIKE":
            cmp = "LOWER({}) LIKE LOWER(?)"
        else:
            cmp = "{} " + op + " " + rhs
        if entity == "attributes":
            if key not in _COLUMN_NAMES:
                raise MlflowException(
                    f"type object 'SqlLoggedModel' has no attribute '{key}'", INTERNAL_ERROR
                )
            conds.append(cmp.format(key))
        else:
            table, kcol, vcol = {
                "params": ("logged_model_params", "param_key", "param_value"),
                "tags": ("logged_model_tags", "tag_key", "tag_value"),
                "metrics": ("logged_model_metrics", "metric_name", "metric_value"),
            }[entity]
            where = f"{kcol} = ? AND " + cmp.format(vcol)
            if entity == "metrics":  # the latest value (MLflow compares with it)
                where = (
                    f"{kcol} = ? AND " + cmp.format(vcol) + " AND metric_timestamp_ms = "
                    "(SELECT MAX(metric_timestamp_ms) FROM logged_model_metrics l2 WHERE "
                    "l2.model_id = logged_model_metrics.model_id AND l2.metric_name = "
                    "logged_model_metrics.metric_name)"
                )
            conds.append(f"model_id IN (SELECT model_id FROM {table} WHERE {where})")
            vals = [key, *vals]
        args.extend(vals)
    return conds, args


def _token(offset: int, experiment_ids: list[str], filter_string: str | None, order_by: Any) -> str:
    payload = {"experiment_ids": experiment_ids, "filter_string": filter_string,
               "order_by": order_by, "offset": offset}
    return base64.b64encode(json.dumps(payload).encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.b64decode(token))["offset"])
    except Exception:
        raise MlflowException("Invalid page token", INVALID_PARAMETER_VALUE) from None


def search(
    conn: Any,
    experiment_ids: list[int],
    filter_string: str | None,
    max_results: int | None,
    order_by: list[dict[str, Any]] | None,
    page_token: str | None,
) -> tuple[list[LoggedModel], str | None]:
    """A page of active models of the experiments, newest first then by id (MLflow's default
    order; ``order_by`` on attributes with ``field_name``/``ascending``)."""
    conds, args = _where(filter_string)
    marks = ", ".join("?" * len(experiment_ids)) or "NULL"
    where = " AND ".join([f"experiment_id IN ({marks})", "lifecycle_stage = 'active'", *conds])
    order = []
    names = set()
    for ob in order_by or []:
        field = ob["field_name"]
        column = _ALIASES.get(field, field)
        if field.startswith("metrics."):
            raise MlflowException(
                f"asynctrack does not order logged models by metrics yet: {field}",
                INVALID_PARAMETER_VALUE,
            )
        if "." in field or column not in _COLUMN_NAMES:
            raise MlflowException(
                f"Invalid order by field name: {field}"
                + (". Only metrics are supported." if "." in field else ""),
                INVALID_PARAMETER_VALUE,
            )
        names.add(column)
        order.append(f"{column} {'ASC' if ob.get('ascending', True) else 'DESC'}")
    if "creation_timestamp_ms" not in names:
        order.append("creation_timestamp_ms DESC")
    if "model_id" not in names:
        order.append("model_id ASC")
    limit = max_results or MAX_RESULTS_DEFAULT
    offset = _offset(page_token)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM logged_models WHERE {where} ORDER BY {', '.join(order)} "
        "LIMIT ? OFFSET ?",
        (*experiment_ids, *args, limit + 1, offset),
    ).fetchall()
    models = [_entity(conn, row) for row in rows[:limit]]
    ids = [str(e) for e in experiment_ids]
    token = _token(offset + limit, ids, filter_string, order_by) if len(rows) > limit else None
    return models, token
