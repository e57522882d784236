"""Requests parsed as MLflow 3.18's handlers parse them (``_get_request_message``).

MLflow reads a GET's query string (repeated fields as lists, booleans from "true"/"false") or a
POST's JSON body, parses it into the request's protobuf message with ``ParseDict`` (unknown
fields ignored), then runs the handler's schema: type checks only where protobuf parsing failed,
required checks always, each failure an INVALID_PARAMETER_VALUE with MLflow's message. Protobuf
is not a dependency here, so the messages are described by small field tables (``FIELDS``, read
from MLflow's ``service.proto``) and ``ParseDict``'s conversions are reproduced.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from ..exceptions import INVALID_PARAMETER_VALUE, MlflowException

_TAG = {"key": "string", "value": "string"}
_METRIC = {
    "key": "string", "value": "double", "timestamp": "int64", "step": "int64",
    "dataset_name": "string", "dataset_digest": "string", "model_id": "string", "run_id": "string",
}
_DATASET_INPUT = {
    "tags": ("repeated", _TAG),
    "dataset": {
        "name": "string", "digest": "string", "source_type": "string", "source": "string",
        "schema": "string", "profile": "string",
    },
}

# Request messages: field -> "string" | "int64" | "int32" | "double" | "bool" | "enum:Name" |
# {nested message} | ("repeated", one of those). Copied from MLflow 3.18's service.proto.
FIELDS: dict[str, dict[str, Any]] = {
    "CreateExperiment": {"name": "string", "artifact_location": "string", "tags": ("repeated", _TAG)},
    "GetExperiment": {"experiment_id": "string"},
    "GetExperimentByName": {"experiment_name": "string"},
    "SearchExperiments": {
        "max_results": "int64", "page_token": "string", "filter": "string",
        "order_by": ("repeated", "string"), "view_type": "enum:ViewType",
    },
    "UpdateExperiment": {"experiment_id": "string", "new_name": "string"},
    "DeleteExperiment": {"experiment_id": "string"},
    "RestoreExperiment": {"experiment_id": "string"},
    "SetExperimentTag": {"experiment_id": "string", "key": "string", "value": "string"},
    "DeleteExperimentTag": {"experiment_id": "string", "key": "string"},
    "CreateRun": {
        "experiment_id": "string", "user_id": "string", "run_name": "string",
        "start_time": "int64", "tags": ("repeated", _TAG),
    },
    "GetRun": {"run_id": "string", "run_uuid": "string"},
    "UpdateRun": {
        "run_id": "string", "run_uuid": "string", "status": "enum:RunStatus",
        "end_time": "int64", "run_name": "string",
    },
    "DeleteRun": {"run_id": "string"},
    "RestoreRun": {"run_id": "string"},
    "SearchRuns": {
        "experiment_ids": ("repeated", "string"), "filter": "string",
        "run_view_type": "enum:ViewType", "max_results": "int32",
        "order_by": ("repeated", "string"), "page_token": "string",
    },
    "LogBatch": {
        "run_id": "string", "metrics": ("repeated", _METRIC),
        "params": ("repeated", _TAG), "tags": ("repeated", _TAG),
    },
    "LogMetric": {
        "run_id": "string", "run_uuid": "string", "key": "string", "value": "double",
        "timestamp": "int64", "step": "int64", "model_id": "string", "dataset_name": "string",
        "dataset_digest": "string",
    },
    "LogParam": {"run_id": "string", "run_uuid": "string", "key": "string", "value": "string"},
    "SetTag": {"run_id": "string", "run_uuid": "string", "key": "string", "value": "string"},
    "DeleteTag": {"run_id": "string", "key": "string"},
    "LogInputs": {
        "run_id": "string", "datasets": ("repeated", _DATASET_INPUT),
        "models": ("repeated", {"model_id": "string"}),
    },
    "GetMetricHistory": {
        "run_id": "string", "run_uuid": "string", "metric_key": "string",
        "page_token": "string", "max_results": "int32",
    },
    "GetMetricHistoryBulkInterval": {
        "run_ids": ("repeated", "string"), "metric_key": "string", "start_step": "int32",
        "end_step": "int32", "max_results": "int32",
    },
    "ListArtifacts": {"run_id": "string", "run_uuid": "string", "path": "string", "page_token": "string"},
    "ListArtifactsMlflowArtifacts": {"path": "string"},
    "DeleteArtifact": {},
}

_ENUMS = {
    "ViewType": {"ACTIVE_ONLY": 1, "DELETED_ONLY": 2, "ALL": 3},
    "RunStatus": {"RUNNING": 1, "SCHEDULED": 2, "FINISHED": 3, "FAILED": 4, "KILLED": 5},
}
_INT_RANGE = {"int64": (-(2**63), 2**63 - 1), "int32": (-(2**31), 2**31 - 1)}
_UNPAIRED_SURROGATE = re.compile("[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]")
_DEFAULTS = {"string": "", "int64": 0, "int32": 0, "double": 0.0, "bool": False}


class _ParseError(Exception):
    pass


class Message(dict):
    """A parsed request: the fields protobuf accepted (``has``), proto defaults for the rest."""

    def __init__(self, fields: dict[str, Any]) -> None:
        super().__init__()
        self._fields = fields

    def has(self, name: str) -> bool:
        return name in self

    def get_or_default(self, name: str) -> Any:
        if name in self:
            return self[name]
        spec = self._fields.get(name)
        if isinstance(spec, tuple):
            return []
        if isinstance(spec, str) and spec.startswith("enum:"):
            return None
        return _DEFAULTS.get(spec) if isinstance(spec, str) else None

    __getattr__ = get_or_default  # msg.run_id as in MLflow's handlers


# -- ParseDict -------------------------------------------------------------------------------
def _convert_scalar(value: Any, spec: str) -> Any:
    if spec in _INT_RANGE:
        if isinstance(value, bool):
            raise _ParseError("bool for integer field")
        if isinstance(value, float) and not value.is_integer():
            raise _ParseError("non-integer")
        if isinstance(value, str) and " " in value:
            raise _ParseError("space in integer")
        try:
            number = int(value)
        except (TypeError, ValueError, OverflowError):
            try:
                as_float = float(value)
            except (TypeError, ValueError):
                raise _ParseError("not an integer") from None
            if not as_float.is_integer():
                raise _ParseError("not an integer") from None
            number = int(as_float)
        low, high = _INT_RANGE[spec]
        if not low <= number <= high:
            raise _ParseError("integer out of range")
        return number
    if spec == "double":
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            raise _ParseError("unquoted NaN/Infinity")
        if value == "nan":
            raise _ParseError("nan")
        if isinstance(value, (dict, list)) or value is None:
            raise _ParseError("not a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            specials = {"-Infinity": -math.inf, "Infinity": math.inf, "NaN": math.nan}
            if value in specials:
                return specials[value]
            raise _ParseError("not a number") from None
    if spec == "bool":
        if not isinstance(value, bool):
            raise _ParseError("not a bool")
        return value
    if spec == "string":
        if not isinstance(value, str) or _UNPAIRED_SURROGATE.search(value):
            raise _ParseError("not a string")
        return value
    if spec.startswith("enum:"):
        names = _ENUMS[spec[5:]]
        if isinstance(value, str) and value in names:
            return value
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise _ParseError("bad enum value") from None
        if isinstance(value, int) and not isinstance(value, bool):
            for name, number in names.items():
                if number == value:
                    return name
        raise _ParseError("bad enum value")
    raise _ParseError("unknown type")


def _convert(value: Any, spec: Any) -> Any:
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise _ParseError("not an object")
        return parse_dict(value, spec)
    return _convert_scalar(value, spec)


def parse_dict(js: Any, fields: dict[str, Any], into: Message | None = None) -> Message:
    """``ParseDict(js, message, ignore_unknown_fields=True)``: fills ``into`` as far as it gets,
    then raises ``_ParseError`` at the first value protobuf would refuse."""
    message = Message(fields) if into is None else into
    if not isinstance(js, dict):
        raise _ParseError("not an object")
    for name, value in js.items():
        spec = fields.get(name)
        if spec is None or value is None:
            continue
        if isinstance(spec, tuple):
            if not isinstance(value, list):
                raise _ParseError("repeated field is not a list")
            items = message.setdefault(name, [])
            for item in value:
                if item is None:
                    raise _ParseError("null in repeated field")
                items.append(_convert(item, spec[1]))
        else:
            message[name] = _convert(value, spec)
    return message


# -- MLflow's schema validators -----------------------------------------------------------------
def _invalid_value(param: str, value: Any, hint: str) -> str:
    try:
        formatted = json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        formatted = repr(value)
    return f"Invalid value {formatted} for parameter '{param}' supplied: {hint}"


def assert_string(x: Any) -> None:
    assert isinstance(x, str)


def assert_intlike(x: Any) -> None:
    try:
        x = int(x)
    except (TypeError, ValueError, OverflowError):  # MLflow: ValueError only (a list -> 500)
        pass
    assert isinstance(x, int)


def assert_floatlike(x: Any) -> None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        pass
    assert isinstance(x, float)


def assert_array(x: Any) -> None:
    assert isinstance(x, list)


def assert_item_type_string(x: Any) -> None:
    assert all(isinstance(item, str) for item in x)


def assert_required(x: Any, path: str | None = None) -> None:
    if path is None:
        assert x is not None
        assert x != ""
    else:
        assert x is not None, f"Missing value for required parameter '{path}'."
        assert x != "", f"Missing value for required parameter '{path}'."


def assert_less_than_or_equal(x: Any, max_value: int, message: str | None = None) -> None:
    if x > max_value:
        raise AssertionError(message) if message else AssertionError()


def assert_intlike_within_range(x: Any, low: int, high: int, message: str | None = None) -> None:
    if not low <= x <= high:
        raise AssertionError(message) if message else AssertionError()


_TYPE_VALIDATORS = {assert_intlike, assert_string, assert_floatlike, assert_array, assert_item_type_string}
Schema = dict[str, list[Callable[[Any], None]]]


def _validate_param(validators: list, param: str, value: Any, parsed: bool) -> None:
    for check in validators:
        if check in _TYPE_VALIDATORS and parsed:
            continue
        try:
            check(value)
        except (AssertionError, TypeError, ValueError, AttributeError) as e:
            if isinstance(e, AssertionError) and e.args:
                message = e.args[0]
            elif check is assert_required:
                message = f"Missing value for required parameter '{param}'."
            else:
                message = _invalid_value(param, value, f" Hint: Value was of type '{type(value).__name__}'.")
            raise MlflowException(
                message + " See the API docs for more information about request parameters.",
                INVALID_PARAMETER_VALUE,
            ) from None


def validate_schema(request_json: dict, schema: Schema | None, parsed: bool) -> None:
    for key, validators in (schema or {}).items():
        if key in request_json or assert_required in validators:
            value = request_json.get(key)
            if key == "run_id" and value is None and "run_uuid" in request_json:
                value = request_json.get("run_uuid")
            _validate_param(validators, key, value, parsed)


# -- the request --------------------------------------------------------------------------------
def check_content_type(method: str, content_type: str | None) -> None:
    """MLflow's ``_validate_content_type(request, ["application/json"])``."""
    if method not in ("POST", "PUT"):
        return
    if content_type is None:
        raise MlflowException("Bad Request. Content-Type header is missing.", INVALID_PARAMETER_VALUE)
    if content_type.split(";")[0] != "application/json":
        raise MlflowException(
            "Bad Request. Content-Type must be one of ['application/json'].", INVALID_PARAMETER_VALUE
        )


def body_json(method: str, content_type: str | None, body: bytes) -> dict:
    """MLflow's ``_get_normalized_request_json``: bad JSON reads as no body at all."""
    check_content_type(method, content_type)
    try:
        data = json.loads(body) if body else None
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, str):  # older clients double-encode
        try:
            data = json.loads(data)
        except (ValueError, RecursionError):
            raise MlflowException("Malformed JSON request body", INVALID_PARAMETER_VALUE) from None
    if data is None:
        data = {}
    return data


def query_json(query: list[tuple[str, str]], fields: dict[str, Any]) -> dict:
    """A GET's query string as MLflow turns it into JSON: only the message's own fields."""
    request_json: dict[str, Any] = {}
    for name, spec in fields.items():
        values = [v for k, v in query if k == name]
        if not values:
            continue
        if isinstance(spec, tuple):
            request_json[name] = values
        else:
            value: Any = values[0]
            if spec == "bool":
                if value.lower() not in ("true", "false"):
                    raise MlflowException.invalid_parameter_value(
                        f"Invalid boolean value: {value}, must be 'true' or 'false'."
                    )
                value = value.lower() == "true"
            request_json[name] = value
    return request_json


def parse_message(request_json: Any, message_name: str, schema: Schema | None = None) -> Message:
    """The message MLflow's handler would see, after its schema checks."""
    fields = FIELDS[message_name]
    if not isinstance(request_json, dict):
        # ParseDict fails on a JSON array or number; MLflow's schema then runs .get on it and
        # fails with a 500. Reported as the bad request it is.
        raise MlflowException(
            "Invalid request: the JSON body must be an object.", INVALID_PARAMETER_VALUE
        )
    message = Message(fields)
    parsed = True
    try:
        parse_dict(request_json, fields, message)
    except _ParseError:
        parsed = False
    validate_schema(request_json, schema, parsed)
    if not parsed:
        # MLflow goes on with the half-parsed message; what its store then makes of it differs
        # field by field. Refused here instead, with the field protobuf would not read.
        raise MlflowException(
            f"Invalid request: a field of {message_name} has a value of the wrong type.",
            INVALID_PARAMETER_VALUE,
        )
    return message
