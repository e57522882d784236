"""MLflow's REST JSON (protobuf's JSON mapping) to asynctrack entities, as MLflow's client's
``from_proto`` builds them: int64 fields arrive as numbers or strings, doubles as numbers or
"NaN"/"Infinity"/"-Infinity", and a field left out means protobuf's default."""

from __future__ import annotations

from typing import Any

from ...entities import (
    Dataset,
    DatasetInput,
    Experiment,
    ExperimentTag,
    InputTag,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
    RunTag,
)

_SPECIAL_FLOATS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def _float(value: Any) -> float:
    if isinstance(value, str):
        special = _SPECIAL_FLOATS.get(value)
        return special if special is not None else float(value)
    return float(value) if value is not None else 0.0


def metric(js: dict) -> Metric:
    return Metric(
        js.get("key", ""),
        _float(js.get("value")),
        _int(js.get("timestamp")),
        _int(js.get("step")),
        model_id=js.get("model_id") or None,
        dataset_name=js.get("dataset_name") or None,
        dataset_digest=js.get("dataset_digest") or None,
        run_id=js.get("run_id") or None,
    )


def experiment(js: dict) -> Experiment:
    return Experiment(
        js.get("experiment_id", ""),
        js.get("name", ""),
        js.get("artifact_location", ""),
        js.get("lifecycle_stage", ""),
        tags=[ExperimentTag(t.get("key", ""), t.get("value", "")) for t in js.get("tags", ())],
        creation_time=_int(js.get("creation_time")) or None,
        last_update_time=_int(js.get("last_update_time")) or None,
        workspace=js.get("workspace"),
    )


def run_info(js: dict) -> RunInfo:
    return RunInfo(
        js.get("run_id", ""),
        js.get("experiment_id", ""),
        js.get("user_id", ""),
        js.get("status", "RUNNING"),
        _int(js.get("start_time")),
        _int(js.get("end_time")) or None,
        js.get("lifecycle_stage", ""),
        js.get("artifact_uri", ""),
        run_name=js.get("run_name", ""),
    )


def run(js: dict) -> Run:
    data = js.get("data") or {}
    return Run(
        run_info(js.get("info") or {}),
        RunData(
            metrics=[metric(m) for m in data.get("metrics", ())],
            params=[Param(p.get("key", ""), p.get("value", "")) for p in data.get("params", ())],
            tags=[RunTag(t.get("key", ""), t.get("value", "")) for t in data.get("tags", ())],
        ),
        RunInputs(dataset_inputs=[dataset_input(d) for d in (js.get("inputs") or {}).get("dataset_inputs", ())]),
        RunOutputs(),
    )


def dataset_input(js: dict) -> DatasetInput:
    """As MLflow's DatasetInput.from_proto: an absent schema or profile is None."""
    ds = js.get("dataset") or {}
    return DatasetInput(
        Dataset(
            ds.get("name", ""), ds.get("digest", ""), ds.get("source_type", ""), ds.get("source", ""),
            ds.get("schema"), ds.get("profile"),
        ),
        [InputTag(t.get("key", ""), t.get("value", "")) for t in js.get("tags", ())],
    )
