"""log_inputs' validation and record: MLflow 3.18's dataset-input rules (field lengths, missing
fields) checked in the caller's thread, then one LOG_INPUTS record with the uuids fixed here
(so that a replay from a spool stores the same rows)."""

from __future__ import annotations

import uuid
from typing import Any

from . import events
from ._validation import validate_run_id
from .entities import DatasetInput, InputTag
from .exceptions import INVALID_PARAMETER_VALUE, MlflowException

MAX_DATASET_NAME_SIZE = 500
MAX_DATASET_DIGEST_SIZE = 36
MAX_DATASET_SCHEMA_SIZE = 1048575
MAX_DATASET_SOURCE_SIZE = 65535
MAX_DATASET_PROFILE_SIZE = 16777215
MAX_INPUT_TAG_KEY_SIZE = 255
MAX_INPUT_TAG_VALUE_SIZE = 500

MLFLOW_DATASET_CONTEXT = "mlflow.data.context"


def _too_long(path: str, limit: int) -> MlflowException:
    return MlflowException(
        f"'{path}' exceeds the maximum length of {limit} characters", INVALID_PARAMETER_VALUE
    )


def _none(what: str) -> MlflowException:
    return MlflowException(f"{what} cannot be None", INVALID_PARAMETER_VALUE)


def _validate_dataset(dataset: Any) -> None:
    if dataset is None:
        raise _none("Dataset")
    for field in ("name", "digest", "source_type", "source"):
        if getattr(dataset, field) is None:
            raise _none(f"Dataset {field}")
    if len(dataset.name) > MAX_DATASET_NAME_SIZE:
        raise _too_long("name", MAX_DATASET_NAME_SIZE)
    if len(dataset.digest) > MAX_DATASET_DIGEST_SIZE:
        raise _too_long("digest", MAX_DATASET_DIGEST_SIZE)
    if len(dataset.source) > MAX_DATASET_SOURCE_SIZE:
        raise _too_long("source", MAX_DATASET_SOURCE_SIZE)
    if dataset.schema is not None and len(dataset.schema) > MAX_DATASET_SCHEMA_SIZE:
        raise _too_long("schema", MAX_DATASET_SCHEMA_SIZE)
    if dataset.profile is not None and len(dataset.profile) > MAX_DATASET_PROFILE_SIZE:
        raise _too_long("profile", MAX_DATASET_PROFILE_SIZE)


def _validate_input_tag(tag: Any) -> None:
    if tag is None:
        raise _none("InputTag")
    if tag.key is None:
        raise _none("InputTag key")
    if tag.value is None:
        raise _none("InputTag value")
    if len(tag.key) > MAX_INPUT_TAG_KEY_SIZE:
        raise _too_long("key", MAX_INPUT_TAG_KEY_SIZE)
    if len(tag.value) > MAX_INPUT_TAG_VALUE_SIZE:
        raise _too_long("value", MAX_INPUT_TAG_VALUE_SIZE)


def log_inputs_record(run_id: str, datasets: Any) -> tuple:
    """The LOG_INPUTS record of ``datasets`` (DatasetInput entities), once MLflow's store
    rules pass: the run id's form, a list, each dataset's and tag's fields."""
    validate_run_id(run_id)
    datasets = [] if datasets is None else datasets
    if not isinstance(datasets, list):
        raise TypeError(f"Argument 'datasets' should be a list, got '{type(datasets)}'")
    for dataset_input in datasets:
        _validate_dataset(dataset_input.dataset)
        for tag in dataset_input.tags:
            _validate_input_tag(tag)
    entries = [
        [
            uuid.uuid4().hex,
            uuid.uuid4().hex,
            d.dataset.name,
            d.dataset.digest,
            d.dataset.source_type,
            d.dataset.source,
            d.dataset.schema,
            d.dataset.profile,
            [[t.key, t.value] for t in d.tags],
        ]
        for d in datasets
    ]
    return (events.LOG_INPUTS, run_id, entries)


def dataset_input(dataset: Any, context: str | None = None, tags: dict[str, str] | None = None) -> DatasetInput | None:
    """fluent log_input's DatasetInput: the tags, then the context as ``mlflow.data.context``."""
    if (context or tags) and dataset is None:
        raise MlflowException(
            "`dataset` must be specified if `context` or `tags` is specified.", INVALID_PARAMETER_VALUE
        )
    tags_to_log = [InputTag(key=k, value=v) for k, v in tags.items()] if tags else []
    if context:
        tags_to_log.append(InputTag(key=MLFLOW_DATASET_CONTEXT, value=context))
    return DatasetInput(dataset=dataset._to_mlflow_entity(), tags=tags_to_log) if dataset else None


def as_entity(dataset: Any) -> Any:
    """A dataset (mlflow.data's or an entity) as the entity stored."""
    from .entities import Dataset as DatasetEntity

    return dataset if isinstance(dataset, DatasetEntity) else dataset._to_mlflow_entity()
