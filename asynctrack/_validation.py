"""MLflow 3.18's tracking validation rules, with its exact messages and error codes.

Every check MLflow makes runs first and in MLflow's order, so wherever MLflow raises an
MlflowException asynctrack raises the same one. The checks MLflow lacks (it then crashes with a
TypeError/OverflowError, or lets SQLite store a REAL or BLOB into an integer column) run *after*
MLflow's own and raise INVALID_PARAMETER_VALUE in MLflow's wording; the test module lists each.

Nothing here imports numpy, torch or tensorflow: array and tensor values are recognised only
when the caller has already imported those libraries (MLflow's rule too).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import numbers
import operator
import os
import posixpath
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from asynctrack.entities import Metric, Param, RunTag
from asynctrack.exceptions import INVALID_PARAMETER_VALUE, MlflowException

_logger = logging.getLogger(__name__)

MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_DATASETS_PER_BATCH = 1000
MAX_ENTITIES_PER_BATCH = 1000
MAX_BATCH_LOG_REQUEST_SIZE = int(1e6)
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_EXPERIMENT_TAG_KEY_LENGTH = 250
MAX_EXPERIMENT_TAG_VAL_LENGTH = 20000
MAX_ENTITY_KEY_LENGTH = 250
MAX_EXPERIMENTS_LISTED_PER_PAGE = 50000
MAX_TRACE_ARCHIVAL_RETENTION_LENGTH = 32
DEFAULT_ARTIFACT_LOCATION_MAX_LENGTH = 2048

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# NB: SQL cannot hold +/-inf; MLflow's SQL store writes the largest finite double instead.
MAX_FLOAT_VALUE = 1.7976931348623157e308

_RUN_ID_REGEX = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
_EXPERIMENT_ID_REGEX = re.compile(r"^[a-zA-Z0-9][\w\-]{0,63}$")
_TRACE_ARCHIVAL_RETENTION_REGEX = re.compile(r"^[1-9][0-9]*[mhd]$")
_IS_WINDOWS = os.name == "nt"
# Names: slashes, alphanumerics, underscores, periods, dashes, spaces and (not on Windows) colons.
_NAME_REGEX = re.compile(r"^[/\w.\- ]*$" if _IS_WINDOWS else r"^[/\w.\- :]*$")

_MISSING_KEY_NAME_MESSAGE = "A key name must be provided."

# Experiment tags that configure trace archival (mlflow.tracing.constant.TraceExperimentTagKey).
TRACE_ARCHIVAL_RETENTION_TAG = "mlflow.trace.archivalRetention"
TRACE_ARCHIVE_NOW_TAG = "mlflow.trace.archiveNow"

# What MlflowClient.log_param appends to INVALID_PARAMETER_VALUE messages from the store.
PARAM_VALIDATION_MSG = """

The cause of this error is typically due to repeated calls
to an individual run_id event logging.

Incorrect Example:
---------------------------------------
with mlflow.start_run():
    mlflow.log_param("depth", 3)
    mlflow.log_param("depth", 5)
---------------------------------------

Which will throw an MlflowException for overwriting a
logged parameter.

Correct Example:
---------------------------------------
with mlflow.start_run():
    with mlflow.start_run(nested=True):
        mlflow.log_param("depth", 3)
    with mlflow.start_run(nested=True):
        mlflow.log_param("depth", 5)
---------------------------------------

Which will create a new nested run for each individual
model and prevent parameter key collisions within the
tracking store."""


# ---------------------------------------------------------------------------------------------
# Message builders (MLflow's wording)
# ---------------------------------------------------------------------------------------------


def _to_str(value: Any) -> str:
    """str(value), or a stand-in when even that fails (ints beyond Python's digit limit)."""
    try:
        return str(value)
    except ValueError:
        return f"<{type(value).__name__}>"


def _format_value(value: Any) -> str:
    """MLflow's JSON rendering of a bad value; values JSON cannot render fall back to str()."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return _to_str(value)


def invalid_value(path: str, value: Any, message: str | None = None) -> str:
    """MLflow's standard 'Invalid value ... for parameter ...' message."""
    formatted = _format_value(value)
    if message:
        return f"Invalid value {formatted} for parameter '{path}' supplied: {message}"
    return f"Invalid value {formatted} for parameter '{path}' supplied."


def missing_value(path: str) -> str:
    return f"Missing value for required parameter '{path}'."


def not_integer_value(path: str, value: Any) -> str:
    return f"Parameter '{path}' must be an integer, got '{value}'."


def exceeds_maximum_length(path: str, limit: int) -> str:
    return f"'{path}' exceeds the maximum length of {limit} characters"


def append_to_json_path(current_path: str, value: str) -> str:
    """Join request paths the way MLflow reports them: 'metrics[0].name', 'tags[1].value'."""
    if not current_path:
        return value
    if value.startswith("["):
        return f"{current_path}{value}"
    return f"{current_path}.{value}"


def bad_path_message(name: str) -> str:
    return (
        "Names may be treated as files in certain cases, and must not resolve to other names"
        f" when treated as such. This name would resolve to {posixpath.normpath(name)!r}"
    )


def bad_character_message() -> str:
    msg = (
        "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.),"
        " spaces ( ){} and slashes (/)."
    )
    return msg.format("") if _IS_WINDOWS else msg.format(", colon(:)")


def path_not_unique(name: str) -> bool:
    """True when `name`, read as a file path, would normalise to something else."""
    norm = posixpath.normpath(name)
    return norm != str(name) or norm == "." or norm.startswith("..") or norm.startswith("/")


def validate_param_and_metric_name(name: str) -> bool:
    """Whether `name` has only the characters MLflow allows in metric/param/tag names."""
    return _NAME_REGEX.fullmatch(name) is not None


def _invalid(message: str) -> MlflowException:
    return MlflowException(message, INVALID_PARAMETER_VALUE)


# ---------------------------------------------------------------------------------------------
# Names (metric, param, tag keys)
# ---------------------------------------------------------------------------------------------

_NAME_OK, _NAME_BAD_CHARS, _NAME_BAD_PATH = 0, 1, 2


@functools.lru_cache(maxsize=8192)
def _cached_name_problem(name: str) -> int:
    return _name_problem(name)


def _name_problem(name: str) -> int:
    if _NAME_REGEX.fullmatch(name) is None:
        return _NAME_BAD_CHARS
    if path_not_unique(name):
        return _NAME_BAD_PATH
    return _NAME_OK


def _check_name_chars_and_path(name: Any, path: str) -> None:
    """The character and path rules shared by metric, param and tag names (name not None)."""
    if not isinstance(name, str):
        # MLflow: TypeError from re.fullmatch (asynctrack divergence).
        message = f"Names must be strings, got {type(name).__name__}."
        raise _invalid(invalid_value(path, name, message))
    # Keys are logged over and over; cache the verdict for names short enough to be valid.
    if len(name) <= MAX_ENTITY_KEY_LENGTH:
        problem = _cached_name_problem(name)
    else:
        problem = _name_problem(name)
    if problem == _NAME_BAD_CHARS:
        raise _invalid(invalid_value(path, name, bad_character_message()))
    if problem == _NAME_BAD_PATH:
        raise _invalid(invalid_value(path, name, bad_path_message(name)))


def validate_metric_name(name: Any, path: str = "name") -> None:
    """Raise unless `name` is a valid metric name."""
    if name is None:
        raise _invalid(
            invalid_value(path, name, f"Metric name cannot be None. {_MISSING_KEY_NAME_MESSAGE}")
        )
    _check_name_chars_and_path(name, path)


def validate_param_name(name: Any, path: str = "key") -> None:
    """Raise unless `name` is a valid param name (MLflow renders a None key as "")."""
    if name is None:
        raise _invalid(invalid_value(path, "", _MISSING_KEY_NAME_MESSAGE))
    _check_name_chars_and_path(name, path)


def validate_tag_name(name: Any, path: str = "key") -> None:
    """Raise unless `name` is a valid run or experiment tag key."""
    if name is None:
        raise _invalid(missing_value(path))
    _check_name_chars_and_path(name, path)


# ---------------------------------------------------------------------------------------------
# Lengths
# ---------------------------------------------------------------------------------------------


def truncate_long_values() -> bool:
    """MLFLOW_TRUNCATE_LONG_VALUES (default true), parsed as MLflow parses boolean variables."""
    val = os.environ.get("MLFLOW_TRUNCATE_LONG_VALUES")
    if val is None:
        return True
    lowercased = val.lower()
    if lowercased not in ["true", "false", "1", "0"]:
        raise ValueError(
            "MLFLOW_TRUNCATE_LONG_VALUES value must be one of ['true', 'false', '1', '0'] "
            f"(case-insensitive), but got {val}"
        )
    return lowercased in ["true", "1"]


def validate_length_limit(
    entity_name: str, limit: int, value: Any, *, truncate: bool = False
) -> Any:
    """`value` if within `limit`; truncated (with a warning) when allowed, else an error.

    None passes through, as in MLflow.
    """
    if value is None:
        return None
    if len(value) <= limit:
        return value
    if truncate and truncate_long_values():
        _logger.warning(
            f"{entity_name} '{value[:100]}...' ({len(value)} characters) is truncated to "
            f"{limit} characters to meet the length limit."
        )
        return value[:limit]
    raise _invalid(exceeds_maximum_length(entity_name, limit))


def _require_str_value(value: Any, path: str, what: str) -> None:
    """MLflow crashes with TypeError on len() of a non-string value (asynctrack divergence)."""
    if value is not None and not isinstance(value, str):
        raise _invalid(
            invalid_value(path, value, f"{what} must be a string, got {type(value).__name__}.")
        )


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


def is_numeric(value: Any) -> bool:
    """True for numbers other than bools (bool is an int subclass, but not a metric value)."""
    return not isinstance(value, bool) and isinstance(value, numbers.Number)


def _as_int64(x: Any) -> int | None:
    """`x` as a 64-bit int when it denotes one exactly (ints, bools, numpy ints, integral
    floats), else None."""
    if type(x) is int:
        i = x
    else:
        try:
            i = operator.index(x)
        except TypeError:
            if not isinstance(x, numbers.Real):
                return None
            try:
                f = float(x)
            except (TypeError, ValueError, OverflowError):
                return None
            if not f.is_integer():  # also rejects nan and +/-inf
                return None
            i = int(f)
    if INT64_MIN <= i <= INT64_MAX:
        return i
    return None


def _timestamp_error(timestamp: Any, key: Any, value: Any, path: str) -> MlflowException:
    return _invalid(
        invalid_value(
            append_to_json_path(path, "timestamp"),
            timestamp,
            f"metric '{_to_str(key)}' (value={_to_str(value)}). "
            "Timestamp must be a nonnegative long (64-bit integer) ",
        )
    )


def _step_error(step: Any, key: Any, value: Any, path: str) -> MlflowException:
    return _invalid(
        invalid_value(
            append_to_json_path(path, "step"),
            step,
            f"metric '{_to_str(key)}' (value={_to_str(value)}). "
            "Step must be a valid long (64-bit integer).",
        )
    )


def _value_error(value: Any, timestamp: Any, path: str) -> MlflowException:
    return _invalid(
        invalid_value(
            append_to_json_path(path, "value"),
            value,
            f"(timestamp={_to_str(timestamp)}). "
            "Please specify value as a valid double (64-bit floating point)",
        )
    )


def validate_timestamp(timestamp: Any, key: Any, value: Any, path: str = "") -> int:
    """The timestamp as an int in [0, 2**63-1]; MLflow's message otherwise.

    MLflow rejects only non-numbers and negatives; larger values crash SQLite, and fractional
    or numpy values are stored as REAL/BLOB. Here all of those are errors, except numpy ints,
    bools and integral floats, which are converted to the int they denote.
    """
    if type(timestamp) is int and 0 <= timestamp <= INT64_MAX:
        return timestamp
    as_int = _as_int64(timestamp)
    if as_int is None or as_int < 0:
        raise _timestamp_error(timestamp, key, value, path)
    return as_int


def validate_step(step: Any, key: Any, value: Any, path: str = "") -> int:
    """The step as an int in [-2**63, 2**63-1]; MLflow's message otherwise (see
    `validate_timestamp` for what MLflow itself lets through)."""
    if type(step) is int and INT64_MIN <= step <= INT64_MAX:
        return step
    as_int = _as_int64(step)
    if as_int is None:
        raise _step_error(step, key, value, path)
    return as_int


def _is_negative(number: Any) -> bool:
    """`number < 0`, False where numbers do not compare (complex; MLflow crashes there and
    `validate_timestamp` rejects them later)."""
    try:
        return bool(number < 0)
    except TypeError:
        return False


def _metric_value_as_float(value: Any, timestamp: Any, path: str) -> float:
    """The value as a float; MLflow's 'valid double' message when it has none (complex, ints
    beyond a double's range: MLflow crashes on those)."""
    if type(value) is float:
        return value
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise _value_error(value, timestamp, path) from None


def validate_metric(
    key: Any, value: Any, timestamp: Any, step: Any, path: str = ""
) -> tuple[float, int, int]:
    """Raise unless the metric is valid; return its (value, timestamp, step) ready to store:
    a float and two 64-bit ints."""
    # MLflow's checks, in MLflow's order.
    validate_metric_name(key, append_to_json_path(path, "name"))
    if value is None:
        raise _invalid(missing_value(append_to_json_path(path, "value")))
    if not is_numeric(value):
        raise _value_error(value, timestamp, path)
    if not isinstance(timestamp, numbers.Number) or _is_negative(timestamp):
        raise _timestamp_error(timestamp, key, value, path)
    if not isinstance(step, numbers.Number):
        raise _step_error(step, key, value, path)
    validate_length_limit("Metric name", MAX_ENTITY_KEY_LENGTH, key)
    # asynctrack's additions: what MLflow leaves to SQLite.
    float_value = _metric_value_as_float(value, timestamp, path)
    return (
        float_value,
        validate_timestamp(timestamp, key, value, path),
        validate_step(step, key, value, path),
    )


def sanitize_metric_value(metric_value: float) -> tuple[bool, float]:
    """(is_nan, value to store) as MLflow's SQL store writes it: NaN as 0 plus the is_nan flag,
    +/-inf as the largest finite double."""
    if math.isnan(metric_value):
        return True, 0
    if math.isinf(metric_value):
        return False, MAX_FLOAT_VALUE if metric_value > 0 else -MAX_FLOAT_VALUE
    return False, metric_value


def _conversion_error(e: BaseException, use_repr: bool = False) -> MlflowException:
    detail = repr(e) if use_repr else str(e)
    return _invalid(f"Failed to convert metric value to float: {detail}")


def _loaded_type(module_name: str, attr: str) -> type | None:
    """A class from an already imported module, or None; never imports anything."""
    module = sys.modules.get(module_name)
    cls = getattr(module, attr, None) if module is not None else None
    return cls if isinstance(cls, type) else None


def convert_metric_value_to_float_if_possible(x: Any) -> Any:
    """MLflow's client-side conversion: numpy arrays and torch/TensorFlow tensors through their
    single item, anything else through float(); strings float() rejects are returned as they are
    (for the validator to report).

    MLflow lets TypeError and OverflowError escape here (complex values, ints beyond a double);
    asynctrack raises INVALID_PARAMETER_VALUE with MLflow's conversion message instead.
    """
    if x is None or type(x) is float:
        return x
    ndarray = _loaded_type("numpy", "ndarray")
    if ndarray is not None and isinstance(x, ndarray):
        return _item_as_float(x)
    tf_tensor = _loaded_type("tensorflow", "Tensor")
    if tf_tensor is not None and isinstance(x, tf_tensor):
        try:
            return float(x)
        except Exception as e:
            raise _conversion_error(e, use_repr=True) from e
    torch_tensor = _loaded_type("torch", "Tensor")
    if torch_tensor is not None and isinstance(x, torch_tensor):
        return _item_as_float(x.detach().cpu())
    try:
        return float(x)
    except ValueError:
        return x  # left for validate_metric to report, as MLflow does
    except (TypeError, OverflowError) as e:
        raise _conversion_error(e) from e


def _item_as_float(x: Any) -> float:
    try:
        item = x.item()
    except Exception as e:
        raise _conversion_error(e) from e
    try:
        return float(item)
    except (TypeError, ValueError, OverflowError) as e:  # MLflow: these escape unwrapped
        raise _conversion_error(e) from e


# ---------------------------------------------------------------------------------------------
# Params and tags
# ---------------------------------------------------------------------------------------------


def validate_param(key: Any, value: Any, path: str = "") -> Param:
    """The Param to store: key checked, value truncated to 6000 characters unless
    MLFLOW_TRUNCATE_LONG_VALUES is false (then an error)."""
    validate_param_name(key, append_to_json_path(path, "key"))
    key = validate_length_limit("Param key", MAX_ENTITY_KEY_LENGTH, key)
    _require_str_value(value, append_to_json_path(path, "value"), "Param value")
    value = validate_length_limit("Param value", MAX_PARAM_VAL_LENGTH, value, truncate=True)
    return Param(key, value)


def validate_tag(key: Any, value: Any, path: str = "") -> RunTag:
    """The RunTag to store: key checked, value truncated to 8000 characters (see
    `validate_param`)."""
    validate_tag_name(key, append_to_json_path(path, "key"))
    key = validate_length_limit(append_to_json_path(path, "key"), MAX_ENTITY_KEY_LENGTH, key)
    value_path = append_to_json_path(path, "value")
    _require_str_value(value, value_path, "Tag value")
    return RunTag(key, validate_length_limit(value_path, MAX_TAG_VAL_LENGTH, value, truncate=True))


def validate_experiment_tag(key: Any, value: Any) -> None:
    """Raise unless (key, value) is a valid experiment tag; values are never truncated."""
    validate_tag_name(key)
    validate_length_limit("key", MAX_EXPERIMENT_TAG_KEY_LENGTH, key)
    _require_str_value(value, "value", "Tag value")
    validate_length_limit("value", MAX_EXPERIMENT_TAG_VAL_LENGTH, value)
    _validate_trace_experiment_tag(key, value)


def _validate_trace_archival_retention_string(value: Any) -> str:
    form_message = (
        "Trace archival retention must be in the form `<int><unit>`, "
        "where unit is one of 'm', 'h', or 'd'."
    )
    if not isinstance(value, str):
        raise _invalid(form_message)
    trimmed = value.strip()
    if len(trimmed) > MAX_TRACE_ARCHIVAL_RETENTION_LENGTH:
        raise _invalid("Trace archival duration must be at most 32 characters.")
    if _TRACE_ARCHIVAL_RETENTION_REGEX.fullmatch(trimmed) is None:
        raise _invalid(form_message)
    return trimmed


def _parse_trace_archival_duration_config(
    value: Any,
    *,
    duration_key: str,
    expected_type: str | None = None,
    allow_missing_duration: bool = False,
) -> str | None:
    if value is None:
        return None
    try:
        payload = json.loads(value)
    except Exception:
        raise _invalid("Trace archival config must be encoded as a JSON object.") from None
    if not isinstance(payload, dict):
        raise _invalid("Trace archival config must be encoded as a JSON object.")
    if expected_type is not None and payload.get("type") != expected_type:
        raise _invalid(f"Trace archival config must use type '{expected_type}'.")
    duration_value = payload.get(duration_key)
    if duration_value is None and allow_missing_duration:
        return None
    return _validate_trace_archival_retention_string(duration_value)


def _validate_trace_experiment_tag(key: str, value: Any) -> None:
    """The two experiment tags that configure trace archival must hold a valid JSON config."""
    if key == TRACE_ARCHIVAL_RETENTION_TAG:
        _parse_trace_archival_duration_config(value, duration_key="value", expected_type="duration")
    elif key == TRACE_ARCHIVE_NOW_TAG:
        _parse_trace_archival_duration_config(
            value, duration_key="older_than", allow_missing_duration=True
        )


# ---------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------


def validate_param_keys_unique(params: Iterable[Param]) -> None:
    """A batch may carry each param key once; every repeat is listed in the error."""
    unique_keys: set[Any] = set()
    dupe_keys = []
    for param in params:
        if param.key not in unique_keys:
            unique_keys.add(param.key)
        else:
            dupe_keys.append(param.key)
    if dupe_keys:
        raise _invalid(
            f"Duplicate parameter keys have been submitted: {dupe_keys}. Please ensure "
            "the request contains only one param value per param key."
        )


def validate_batch_limit(entity_name: str, limit: int, length: int) -> None:
    if length > limit:
        raise _invalid(
            f"A batch logging request can contain at most {limit} {entity_name}. "
            f"Got {length} {entity_name}. Please split up {entity_name} across multiple"
            " requests and try again."
        )


def validate_batch_log_limits(
    metrics: Sequence[Any], params: Sequence[Any], tags: Sequence[Any]
) -> None:
    """At most 1000 metrics, 100 params, 100 tags and 1000 entities in all per batch."""
    validate_batch_limit("metrics", MAX_METRICS_PER_BATCH, len(metrics))
    validate_batch_limit("params", MAX_PARAMS_TAGS_PER_BATCH, len(params))
    validate_batch_limit("tags", MAX_PARAMS_TAGS_PER_BATCH, len(tags))
    validate_batch_limit(
        "metrics, params, and tags",
        MAX_ENTITIES_PER_BATCH,
        len(metrics) + len(params) + len(tags),
    )


_KEY = operator.attrgetter("key")
_VALUE = operator.attrgetter("value")
_TIMESTAMP = operator.attrgetter("timestamp")
_STEP = operator.attrgetter("step")
_SLOTS = tuple(map(operator.attrgetter, ("_key", "_value", "_timestamp", "_step")))
_OUR_METRIC = {Metric}
_FLOAT_ONLY = {float}
_INT_ONLY = {int}


def plain_metric_key(key: Any) -> bool:
    """A metric name that passes validate_metric's name checks."""
    return type(key) is str and len(key) <= MAX_ENTITY_KEY_LENGTH and not _cached_name_problem(key)


def plain_metric_entries(metrics: Sequence[Any]) -> list[tuple] | None:
    """``(key, value, timestamp, step)`` of each metric when every one passes `validate_metric`
    unchanged in the plain way (float value, int timestamp in [0, 2**63-1] and step in int64, a
    valid name): checked column by column at C speed instead of metric by metric. None when any
    is not plain (it may still be valid): `validate_batch_log_data` then checks each one, with
    MLflow's order and messages."""
    try:
        if set(map(type, metrics)) == _OUR_METRIC:  # its slots, read in C (not its properties)
            get_key, get_value, get_timestamp, get_step = _SLOTS
        else:
            get_key, get_value, get_timestamp, get_step = _KEY, _VALUE, _TIMESTAMP, _STEP
        values = list(map(get_value, metrics))
        if set(map(type, values)) != _FLOAT_ONLY:
            return None
        stamps = list(map(get_timestamp, metrics))
        steps = list(map(get_step, metrics))
        if set(map(type, stamps)) != _INT_ONLY or set(map(type, steps)) != _INT_ONLY:
            return None
        if min(stamps) < 0 or max(stamps) > INT64_MAX or min(steps) < INT64_MIN or max(steps) > INT64_MAX:
            return None
        keys = list(map(get_key, metrics))
        for key in set(keys):
            if not plain_metric_key(key):
                return None
    except (AttributeError, TypeError):  # no such field, an unhashable key: the slow way says
        return None
    return list(zip(keys, values, stamps, steps))


def validate_batch_log_data(
    metrics: Sequence[Metric], params: Sequence[Param], tags: Sequence[RunTag]
) -> tuple[list[Metric], list[Param], list[RunTag]]:
    """Validate a batch in MLflow's order (metrics, params, tags) with 'metrics[i].name' style
    paths. Returns the entities to store: metrics normalised (float value, int timestamp and
    step; unchanged objects are passed through), params and tags possibly truncated."""
    out_metrics = []
    for index, metric in enumerate(metrics):
        value, timestamp, step = validate_metric(
            metric.key, metric.value, metric.timestamp, metric.step, path=f"metrics[{index}]"
        )
        if value is metric.value and timestamp is metric.timestamp and step is metric.step:
            out_metrics.append(metric)
        else:
            out_metrics.append(
                Metric(
                    metric.key,
                    value,
                    timestamp,
                    step,
                    model_id=metric.model_id,
                    dataset_name=metric.dataset_name,
                    dataset_digest=metric.dataset_digest,
                    run_id=metric.run_id,
                )
            )
    return (
        out_metrics,
        [validate_param(p.key, p.value, path=f"params[{idx}]") for idx, p in enumerate(params)],
        [validate_tag(t.key, t.value, path=f"tags[{idx}]") for idx, t in enumerate(tags)],
    )


def validate_batch_log_api_req(json_req: str) -> None:
    """A REST log-batch body may be at most 1 MB."""
    if len(json_req) > MAX_BATCH_LOG_REQUEST_SIZE:
        raise _invalid(
            f"Batched logging API requests must be at most {MAX_BATCH_LOG_REQUEST_SIZE} bytes, "
            f"got a request of size {len(json_req)}."
        )


# ---------------------------------------------------------------------------------------------
# Runs and experiments
# ---------------------------------------------------------------------------------------------


def validate_run_id(run_id: Any, path: str = "run_id") -> None:
    """Run IDs: an alphanumeric then up to 255 word characters or dashes."""
    if not isinstance(run_id, str) or _RUN_ID_REGEX.fullmatch(run_id) is None:
        # (MLflow: TypeError for a non-string.)
        raise _invalid(invalid_value(path, run_id))


def validate_experiment_id(exp_id: Any) -> None:
    """Experiment IDs (when given): an alphanumeric then up to 63 word characters or dashes."""
    if exp_id is None:
        return
    if not isinstance(exp_id, str) or _EXPERIMENT_ID_REGEX.fullmatch(exp_id) is None:
        # (MLflow: TypeError for a non-string.)
        raise _invalid(f"Invalid experiment ID: '{exp_id}'")


def parse_experiment_id(experiment_id: Any) -> int:
    """The SQL store's integer experiment ID (int() of the given value, as MLflow)."""
    try:
        parsed = int(experiment_id)
    except (ValueError, TypeError, OverflowError):
        raise _invalid(
            f"Invalid experiment ID '{experiment_id}'. Experiment ID must be a valid integer."
        ) from None
    if not INT64_MIN <= parsed <= INT64_MAX:
        # MLflow: INTERNAL_ERROR 'Python int too large to convert to SQLite INTEGER'.
        raise _invalid(
            f"Invalid experiment ID '{experiment_id}'. Experiment ID must be a valid 64-bit "
            "integer."
        )
    return parsed


def parse_experiment_ids(experiment_ids: Iterable[Any]) -> list[int]:
    return [parse_experiment_id(experiment_id) for experiment_id in experiment_ids]


def validate_experiment_id_type(experiment_id: Any) -> None:
    """A user-supplied experiment ID must be a str, an int or None."""
    if experiment_id is not None and not isinstance(experiment_id, (str, int)):
        raise _invalid(
            f"Invalid experiment id: {experiment_id} of type {type(experiment_id)}. "
            "Must be one of str, int, or None."
        )


def validate_experiment_name(experiment_name: Any) -> None:
    """Experiment names: non-blank strings of at most 500 characters."""
    if experiment_name is None or (
        isinstance(experiment_name, str) and not experiment_name.strip()
    ):
        raise _invalid(f"Invalid experiment name: '{experiment_name}'")
    if not isinstance(experiment_name, str):
        raise _invalid(f"Invalid experiment name: {experiment_name}. Expects a string.")
    if len(experiment_name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise _invalid(exceeds_maximum_length("name", MAX_EXPERIMENT_NAME_LENGTH))


def validate_experiment_artifact_location(artifact_location: Any) -> None:
    """An experiment's artifact location may not be a runs:/ URI."""
    if artifact_location is None:
        return
    if not isinstance(artifact_location, str):
        # (MLflow: AttributeError from .startswith.)
        raise _invalid(
            f"Invalid artifact location: {_to_str(artifact_location)}. Expects a string."
        )
    if artifact_location.startswith("runs:"):
        raise _invalid(f"Artifact location cannot be a runs:/ URI. Given: '{artifact_location}'")


def artifact_location_max_length() -> int:
    """MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH (default 2048), read as MLflow reads it."""
    val = os.environ.get("MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH")
    if val is None:
        return DEFAULT_ARTIFACT_LOCATION_MAX_LENGTH
    try:
        return int(val)
    except Exception as e:
        raise ValueError(
            f"Failed to convert {val!r} for MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH: {e}"
        ) from None


def validate_experiment_artifact_location_length(artifact_location: str) -> None:
    """The (resolved) artifact location must fit MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH."""
    max_length = artifact_location_max_length()
    if len(artifact_location) > max_length:
        raise _invalid(
            "Invalid artifact path length. The length of the artifact path cannot be "
            f"greater than {max_length} characters. To configure this limit, please set the "
            "MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH environment variable."
        )
