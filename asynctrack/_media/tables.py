"""log_table/load_table: a pandas DataFrame as a JSON (orient="split") or Parquet artifact,
appended to when logged again, and the ``mlflow.loggedArtifacts`` tag that finds it."""

from __future__ import annotations

import json
import os
from typing import Any

from .._extras import require
from ..exceptions import INVALID_PARAMETER_VALUE, MlflowException

LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"
_FORBIDDEN = ['"', "'", ",", ":", "[", "]", "{", "}"]


class InvalidTableFile(MlflowException, ValueError):
    """A table file name MLflow refuses (MLflow raises ValueError)."""


def pandas():
    return require("pandas", "pandas", "Logging or loading a table")


def check_artifact_file(artifact_file: str, logging: bool) -> None:
    for char in _FORBIDDEN:
        if char in artifact_file:
            raise InvalidTableFile(
                f"The artifact_file contains forbidden character: {char}", INVALID_PARAMETER_VALUE
            )
    if logging and not artifact_file.endswith((".json", ".parquet")):
        raise InvalidTableFile(
            f"Invalid artifact file path '{artifact_file}'. Please ensure the file you are trying "
            "to log as a table has a file name with either '.json' or '.parquet' extension.",
            INVALID_PARAMETER_VALUE,
        )


def to_frame(data: Any) -> Any:
    """A copy of ``data`` as a DataFrame (a dict of scalars becomes one row, as in MLflow)."""
    pd = pandas()
    if isinstance(data, dict):
        try:
            return pd.DataFrame(data)
        except ValueError:  # "If using all scalar values, you must pass an index"
            return pd.DataFrame([data])
    if isinstance(data, pd.DataFrame):
        return data.copy()
    raise MlflowException.invalid_parameter_value("data must be a pandas.DataFrame or a dictionary")


def is_image(obj: Any) -> bool:
    return all(callable(getattr(obj, a, None)) for a in ("save", "resize")) and hasattr(obj, "size")


def image_columns(frame: Any) -> list[Any]:
    """Columns made of images only; a column mixing images and other values is refused."""
    columns = []
    for column in frame.columns:
        if frame[column].dtype != object:  # images live in object columns only
            continue
        flags = frame[column].map(is_image)
        if flags.any() and not flags.all():
            raise MlflowException(
                f"Column `{column}` contains a mix of images and non-images. Please ensure that "
                "all elements in the column are of the same type.",
                INVALID_PARAMETER_VALUE,
            )
        if len(flags) and flags.all():
            columns.append(column)
    return columns


def read(path: str, infer_dtypes: bool = True) -> Any:
    pd = pandas()
    if path.endswith(".json"):
        if infer_dtypes:
            return pd.read_json(path, orient="split")
        if int(pd.__version__.split(".")[0]) >= 3:  # dtype=False covers dates there
            return pd.read_json(path, orient="split", dtype=False)
        return pd.read_json(path, orient="split", dtype=False, convert_dates=False)
    if path.endswith(".parquet"):
        return pd.read_parquet(path)
    raise InvalidTableFile(
        f"Unsupported file type in {path}. Expected .json or .parquet", INVALID_PARAMETER_VALUE
    )


def check_engine(artifact_file: str) -> None:
    """Parquet needs pyarrow: say which extra, before anything is written."""
    if artifact_file.endswith(".parquet"):
        require("pyarrow", "parquet", "Logging or loading a table as Parquet")


def write(frame: Any, path: str, artifact_file: str) -> None:
    try:
        if artifact_file.endswith(".json"):
            frame.to_json(path, orient="split", index=False, date_format="iso")
        else:
            frame.to_parquet(path, index=False)
    except Exception as e:  # noqa: BLE001 - MLflow's message for any serialization failure
        raise MlflowException(
            f"Failed to save {frame} as table as the data is not JSON serializable. Error: {e}"
        ) from e


def tag_with(current: str | None, artifact_file: str) -> str | None:
    """The new value of the loggedArtifacts tag, or None when it already lists the table."""
    entries = json.loads(current or "[]")
    entry = {"path": artifact_file, "type": "table"}
    if entry in entries:
        return None
    entries.append(entry)
    return json.dumps(entries)


def lists_table(tag_value: str | None, artifact_file: str) -> bool:
    try:
        entries = json.loads(tag_value or "[]")
    except ValueError:
        return False
    return {"path": artifact_file, "type": "table"} in entries


def run_columns(run: Any) -> dict[str, Any]:
    """A run as a row of MLflow's search_runs DataFrame (for load_table's extra_columns)."""
    info = run.info
    row: dict[str, Any] = {
        "run_id": info.run_id,
        "experiment_id": info.experiment_id,
        "status": info.status,
        "artifact_uri": info.artifact_uri,
        "start_time": info.start_time,
        "end_time": info.end_time,
    }
    row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
    row.update({f"params.{k}": v for k, v in run.data.params.items()})
    row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
    return row


def split_ext(artifact_file: str) -> str:
    return os.path.splitext(artifact_file)[0]
