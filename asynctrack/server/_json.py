"""Entities as MLflow's server writes them: ``message_to_json(entity.to_proto())``.

Field order is protobuf's field-number order, int64 fields are JSON numbers, doubles that JSON
cannot hold are the strings "NaN", "Infinity" and "-Infinity", fields MLflow leaves unset are
omitted, and the text is ``json.dumps(..., indent=2)``.
"""

from __future__ import annotations

import json
import math
from typing import Any

_STATUS = {"RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"}


def dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, indent=2)


class FlaskJson(dict):
    """An answer MLflow's server returns as a plain dict, which Flask's ``jsonify`` writes
    (sorted keys, compact, a trailing newline, NaN as the bare token) instead of
    ``message_to_json``."""


def flask_dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n"


def token(value: str | bytes) -> str:
    """A page token as text (the store may hand out its base64 as bytes)."""
    return value.decode("ascii") if isinstance(value, bytes) else value


def double(value: float) -> Any:
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def experiment(exp: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "experiment_id": exp.experiment_id,
        "name": exp.name,
        "artifact_location": exp.artifact_location,
        "lifecycle_stage": exp.lifecycle_stage,
    }
    if exp.last_update_time:
        out["last_update_time"] = exp.last_update_time
    if exp.creation_time:
        out["creation_time"] = exp.creation_time
    if exp.tags:
        out["tags"] = _tags(exp.tags)
    retention = getattr(exp, "effective_trace_archival_retention", None)
    if retention is not None:
        out["effective_trace_archival_retention"] = retention
    workspace = getattr(exp, "workspace", None)
    if workspace is not None:
        out["workspace"] = workspace
    return out


def run_info(info: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"run_uuid": info.run_id, "experiment_id": info.experiment_id}
    if info.run_name is not None:
        out["run_name"] = info.run_name
    out["user_id"] = info.user_id
    out["status"] = info.status
    out["start_time"] = info.start_time
    if info.end_time:
        out["end_time"] = info.end_time
    if info.artifact_uri:
        out["artifact_uri"] = info.artifact_uri
    out["lifecycle_stage"] = info.lifecycle_stage
    out["run_id"] = info.run_id
    return out


def metric(m: Any, run_id: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": m.key, "value": double(m.value), "timestamp": m.timestamp, "step": m.step,
    }
    for name in ("dataset_name", "dataset_digest", "model_id"):
        value = getattr(m, name, None)
        if value:
            out[name] = value
    if run_id:
        out["run_id"] = run_id
    return out


def run(r: Any, outputs: bool = True) -> dict[str, Any]:
    """A Run; ``outputs``: MLflow's store sets it on runs it reads, not on the one it creates."""
    data: dict[str, Any] = {}
    metrics = [metric(m) for m in r.data._metric_objs]
    if metrics:
        data["metrics"] = metrics
    if r.data.params:
        data["params"] = _tags(r.data.params)
    if r.data.tags:
        data["tags"] = _tags(r.data.tags)
    inputs = r.inputs.dataset_inputs if r.inputs is not None else []
    out: dict[str, Any] = {
        "info": run_info(r.info),
        "data": data,
        "inputs": {"dataset_inputs": [dataset_input(d) for d in inputs]} if inputs else {},
    }
    if outputs:
        out["outputs"] = {}
    return out


def dataset_input(d: Any) -> dict[str, Any]:
    """A DatasetInput message: its tags (when any), then its dataset (schema and profile when
    set, as MLflow's to_proto)."""
    ds = d.dataset
    dataset = {"name": ds.name, "digest": ds.digest, "source_type": ds.source_type, "source": ds.source}
    if ds.schema:
        dataset["schema"] = ds.schema
    if ds.profile:
        dataset["profile"] = ds.profile
    out: dict[str, Any] = {}
    if d.tags:
        out["tags"] = [{"key": t.key, "value": t.value} for t in d.tags]
    out["dataset"] = dataset
    return out


def file_info(path: str, is_dir: bool, file_size: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"path": path, "is_dir": is_dir}
    if file_size:
        out["file_size"] = file_size
    return out
