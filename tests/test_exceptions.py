"""MlflowException and the error codes: unit tests, and a table compared with MLflow 3.18.

Divergence from MLflow (deliberate, asked for by the design):
  * error_code given as a *name* ("INVALID_PARAMETER_VALUE") is honoured; MLflow's
    `ErrorCode.Name()` rejects strings, so MLflow records INTERNAL_ERROR for them.
"""

from __future__ import annotations

import json
import pickle

import pytest

from asynctrack import exceptions as ex
from asynctrack.exceptions import MlflowException
from tests.oracle import needs_mlflow, oracle_python, run  # noqa: F401 (skipif evaluates oracle_python)


# ----------------------------------------------------------------------------------- unit tests


def test_error_code_is_the_name_of_an_int_code():
    e = MlflowException("boom", ex.INVALID_PARAMETER_VALUE)
    assert e.error_code == "INVALID_PARAMETER_VALUE"
    assert e.message == "boom"
    assert str(e) == "boom"
    assert e.args == ("boom",)


def test_default_code_is_internal_error():
    assert MlflowException("x").error_code == "INTERNAL_ERROR"
    assert MlflowException("x").get_http_status_code() == 500


def test_code_given_by_name_is_honoured():
    assert MlflowException("x", "RESOURCE_DOES_NOT_EXIST").error_code == "RESOURCE_DOES_NOT_EXIST"
    assert MlflowException("x", error_code="BAD_REQUEST").get_http_status_code() == 400


@pytest.mark.parametrize("code", [0, 99999, -1, 1000.0, None, "NOPE", object()])
def test_unknown_or_mistyped_codes_become_internal_error(code):
    assert MlflowException("x", code).error_code == "INTERNAL_ERROR"


def test_message_is_stringified():
    e = MlflowException(ValueError("inner"), ex.BAD_REQUEST)
    assert e.message == "inner" and str(e) == "inner"


def test_numeric_values_match_databricks_proto():
    assert (ex.INTERNAL_ERROR, ex.TEMPORARILY_UNAVAILABLE, ex.BAD_REQUEST) == (1, 2, 4)
    assert (ex.INVALID_PARAMETER_VALUE, ex.ENDPOINT_NOT_FOUND, ex.INVALID_STATE) == (1000, 1001, 1003)
    assert (ex.PERMISSION_DENIED, ex.NOT_FOUND) == (1004, 11)
    assert (ex.RESOURCE_ALREADY_EXISTS, ex.RESOURCE_DOES_NOT_EXIST) == (3001, 3002)


def test_name_number_maps_are_inverse():
    assert len(ex.ERROR_CODE_NAME_TO_NUMBER) == len(ex.ERROR_CODE_NUMBER_TO_NAME)
    for name, number in ex.ERROR_CODE_NAME_TO_NUMBER.items():
        assert ex.ERROR_CODE_NUMBER_TO_NAME[number] == name
        assert ex.error_code_number(name) == number
        assert ex.error_code_name(number) == name


def test_http_status_codes():
    cases = {
        ex.INVALID_PARAMETER_VALUE: 400,
        ex.RESOURCE_ALREADY_EXISTS: 400,
        ex.BAD_REQUEST: 400,
        ex.RESOURCE_DOES_NOT_EXIST: 404,
        ex.ENDPOINT_NOT_FOUND: 404,
        ex.PERMISSION_DENIED: 403,
        ex.INVALID_STATE: 500,
        ex.TEMPORARILY_UNAVAILABLE: 503,
        ex.NOT_IMPLEMENTED: 501,
        ex.REQUEST_LIMIT_EXCEEDED: 429,
        ex.ERROR_CODE_NAME_TO_NUMBER["QUOTA_EXCEEDED"]: 500,  # not mapped: 500
    }
    for code, status in cases.items():
        assert MlflowException("x", code).get_http_status_code() == status, code


def test_get_error_code_from_http_status():
    assert ex.get_error_code(400) == ex.BAD_REQUEST
    assert ex.get_error_code(404) == ex.ENDPOINT_NOT_FOUND
    assert ex.get_error_code(403) == ex.PERMISSION_DENIED
    assert ex.get_error_code(418) == ex.INTERNAL_ERROR


def test_serialize_as_json_carries_classification_and_kwargs():
    e = MlflowException("bad", ex.INVALID_PARAMETER_VALUE, extra=1)
    assert json.loads(e.serialize_as_json()) == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "bad",
        "sqlstate": "KAM00",
        "error_class": "INVALID_PARAMETER_VALUE",
        "extra": 1,
    }


def test_serialize_without_classification_omits_fields():
    e = MlflowException("q", ex.ERROR_CODE_NAME_TO_NUMBER["QUOTA_EXCEEDED"])
    assert json.loads(e.serialize_as_json()) == {"error_code": "QUOTA_EXCEEDED", "message": "q"}


def test_explicit_error_class_drives_sqlstate():
    e = MlflowException("s", ex.INVALID_PARAMETER_VALUE, error_class="SCHEMA_ENFORCEMENT_FAILED")
    assert (e.error_class, e.sqlstate) == ("SCHEMA_ENFORCEMENT_FAILED", "KAM01")
    e = MlflowException("s", ex.INTERNAL_ERROR, sqlstate="ZZZZZ")
    assert e.sqlstate == "ZZZZZ"


def test_invalid_parameter_value_constructor():
    e = MlflowException.invalid_parameter_value("nope", hint="x")
    assert isinstance(e, MlflowException)
    assert e.error_code == "INVALID_PARAMETER_VALUE"
    assert e.json_kwargs == {"hint": "x"}


def test_pickle_round_trip_keeps_code_and_kwargs():
    e = pickle.loads(pickle.dumps(MlflowException("p", ex.RESOURCE_DOES_NOT_EXIST, k=2)))
    assert (e.error_code, e.message, e.json_kwargs) == ("RESOURCE_DOES_NOT_EXIST", "p", {"k": 2})


# ------------------------------------------------------------------------ compared with MLflow

# (message, error_code, kwargs); error codes are ints (string names diverge on purpose, above).
_CASES = [
    ("m", 1, {}),
    ("m", 2, {}),
    ("m", 4, {}),
    ("m", 11, {}),
    ("m", 1000, {}),
    ("m", 1001, {}),
    ("m", 1003, {}),
    ("m", 1004, {}),
    ("m", 1010, {}),
    ("m", 3001, {}),
    ("m", 3002, {}),
    ("m", 4001, {}),
    ("m", 9060, {}),
    ("m", 0, {}),
    ("m", 123456, {}),
    ("with kwargs", 1000, {"a": 1, "b": [1, 2]}),
    ("", 1000, {}),
]


def _describe(e) -> dict:
    return {
        "error_code": e.error_code,
        "message": e.message,
        "str": str(e),
        "http": e.get_http_status_code(),
        "json": json.loads(e.serialize_as_json()),
    }


@needs_mlflow
def test_exceptions_match_mlflow():
    oracle = run(
        """
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import ErrorCode
        import json
        out = []
        for message, code, kwargs in ARGS["cases"]:
            e = MlflowException(message, code, **kwargs)
            out.append({"error_code": e.error_code, "message": e.message, "str": str(e),
                        "http": e.get_http_status_code(), "json": json.loads(e.serialize_as_json())})
        pv = MlflowException.invalid_parameter_value("p", k=1)
        _out({"cases": out, "codes": {k: ErrorCode.Value(k) for k in ErrorCode.keys()},
              "ipv": json.loads(pv.serialize_as_json())})
        """,
        cases=_CASES,
    )
    assert oracle["codes"] == ex.ERROR_CODE_NAME_TO_NUMBER
    for case, expected in zip(_CASES, oracle["cases"]):
        message, code, kwargs = case
        assert _describe(MlflowException(message, code, **kwargs)) == expected, case
    ours = MlflowException.invalid_parameter_value("p", k=1)
    assert json.loads(ours.serialize_as_json()) == oracle["ipv"]
    # Module constants carry MLflow's numbers.
    for name, number in oracle["codes"].items():
        if hasattr(ex, name):
            assert getattr(ex, name) == number, name
