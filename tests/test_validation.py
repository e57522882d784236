r"""Validation rules: compared with MLflow 3.18 case by case, plus unit and property tests.

Where MLflow raises an MlflowException, asynctrack raises the same code and message. Where MLflow
crashes with another exception, or stores something that is not what the API promises, asynctrack
raises INVALID_PARAMETER_VALUE instead. Every such divergence is below; the tests check both sides
of each row against the oracle, so the table cannot drift from what MLflow really does.

Through MlflowClient(tracking_uri="sqlite:///...") (E2E_DIVERGENCES). "step msg" is MLflow's own
"Invalid value <v> for parameter 'step' supplied: metric '<key>' (value=<value>). Step must be a
valid long (64-bit integer).", "ts msg" its "... Timestamp must be a nonnegative long (64-bit
integer) " (trailing space included), "conv msg" its "Failed to convert metric value to float: <e>".

  call                             | MLflow 3.18                         | asynctrack
  ---------------------------------+-------------------------------------+-------------------------
  log_metric step=2**63            | INTERNAL_ERROR "Python int too      | INVALID_PARAMETER_VALUE
    or step=-2**63-1               |   large to convert to SQLite        |   step msg
                                   |   INTEGER"                          |
  log_metric timestamp=2**63       | INTERNAL_ERROR, same message        | INVALID_PARAMETER_VALUE
                                   |                                     |   ts msg
  log_metric step=1.5 / inf        | stored, reads back as 1.5 / inf     | INVALID_PARAMETER_VALUE
                                   |                                     |   step msg
  log_metric timestamp=1.5         | stored, reads back as 1.5           | INVALID_PARAMETER_VALUE
                                   |                                     |   ts msg
  log_metric step or timestamp     | stored as an 8-byte BLOB            | stored as the int (numpy
    = np.int64(n)                  |   (b'\x03\x00...')                  |   ints denote ints)
  log_metric value=10**400         | OverflowError escapes               | INVALID_PARAMETER_VALUE
                                   |                                     |   conv msg
  log_metric value=1+2j            | TypeError escapes                   | INVALID_PARAMETER_VALUE
                                   |                                     |   conv msg
  log_metric value=np.array(['a']) | ValueError escapes                  | INVALID_PARAMETER_VALUE
                                   |                                     |   conv msg
  log_metric/log_param key=1       | TypeError escapes (re.fullmatch)    | INVALID_PARAMETER_VALUE
                                   |                                     |   "Invalid value 1 for
                                   |                                     |   parameter 'name'
                                   |                                     |   supplied: Names must be
                                   |                                     |   strings, got int."
  log_batch step=2**63             | INTERNAL_ERROR (SQLite overflow)    | INVALID_PARAMETER_VALUE
                                   |                                     |   step msg, 'metrics[i].step'
  log_batch step=1.5               | stored, reads back as 1.5           | INVALID_PARAMETER_VALUE
  log_batch step or timestamp=nan  | BAD_REQUEST "NOT NULL constraint    | INVALID_PARAMETER_VALUE
                                   |   failed: metrics.step" (+ SQL)     |   step msg / ts msg
  log_batch step=Decimal(2)        | BAD_REQUEST "Error binding          | INVALID_PARAMETER_VALUE
                                   |   parameter ..." (+ SQL)            |   step msg
  log_batch run_id=None            | TypeError escapes                   | INVALID_PARAMETER_VALUE
                                   |                                     |   "Invalid value null for
                                   |                                     |   parameter 'run_id'
                                   |                                     |   supplied."

At the function level (FUNCTION_DIVERGENCES), where MLflow's validator lets something through that
its store then mangles, or crashes:

  * validate_metric / validate_batch_log_data: the step and timestamp rules above (MLflow's
    validators accept any number); values that float() rejects (complex: MLflow accepts, its store
    crashes). validate_batch_log_data returns metrics with a float value and int timestamp/step
    (MLflow returns them as given, e.g. value=5).
  * validate_param / validate_tag / validate_experiment_tag with a non-string value: MLflow
    TypeError from len(); asynctrack "Param value must be a string, got int." (the clients
    str() values first, so only direct store calls see this).
  * name validators with a non-string name, validate_run_id(None|int), validate_experiment_id(int):
    MLflow TypeError; asynctrack MLflow's own message for the field.
  * invalid_value() of a value JSON cannot render (np.bool_, Decimal): MLflow's json.dumps raises
    TypeError while building the message; asynctrack renders such values with str().
  * validate_experiment_artifact_location(5): MLflow AttributeError; asynctrack
    "Invalid artifact location: 5. Expects a string."
  * parse_experiment_id('99999999999999999999999'): MLflow returns the int (its SQL store then
    raises INTERNAL_ERROR from SQLite); asynctrack "Invalid experiment ID '...'. Experiment ID
    must be a valid 64-bit integer." parse_experiment_id(inf): MLflow OverflowError.
  * convert_metric_value_to_float_if_possible: TypeError/OverflowError/ValueError escaping MLflow
    (complex, lists, 10**400, np.array(['abc'])) become "Failed to convert metric value to
    float: ...".
"""

from __future__ import annotations

import logging
import math
import os
import posixpath
import random
import re
import subprocess
import sys
import time
import types
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from asynctrack import _validation as v
from asynctrack.entities import Metric, Param, RunTag
from asynctrack.exceptions import INVALID_PARAMETER_VALUE, MlflowException
from tests.oracle import needs_mlflow, oracle_python, run  # noqa: F401 (skipif uses it)

try:
    import numpy as np
except ImportError:  # asynctrack does not need numpy; its cases then run in the oracle only
    np = None

needs_numpy = pytest.mark.skipif(np is None, reason="numpy not installed")


def _local(cases: list[str]) -> list[str]:
    """The cases this interpreter can evaluate (numpy ones need numpy)."""
    return [case for case in cases if np is not None or "np." not in case]

# ===================================================================== shared evaluation helpers


@pytest.fixture(autouse=True, scope="module")
def _mlflow_defaults():
    """The rules read two MLflow environment variables; test them at MLflow's defaults."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRUNCATE_LONG_VALUES", raising=False)
        mp.delenv("MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH", raising=False)
        yield


_NAN = float("nan")


def with_env(name: str, value: str, fn):
    """Call fn() with one environment variable set (both sides of the comparison use this)."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        return fn()
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


def _outcome(fn) -> dict:
    """What a call did, in the shape the oracle snippets report."""
    try:
        result = fn()
    except MlflowException as e:
        return {"error_code": e.error_code, "message": e.message}
    except Exception as e:  # noqa: BLE001 - whatever escapes is part of the comparison
        return {"raises": type(e).__name__}
    return {"ok": None if result is None else repr(result)}


_ORACLE_OUTCOME = """
from mlflow.exceptions import MlflowException
def outcome(fn):
    try:
        result = fn()
    except MlflowException as e:
        return {"error_code": e.error_code, "message": e.message}
    except Exception as e:
        return {"raises": type(e).__name__}
    return {"ok": None if result is None else repr(result)}
def with_env(name, value, fn):
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        return fn()
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old
"""


def _same(ours: dict, theirs: dict) -> bool:
    """Equal outcomes; an MLflow function that returns None only requires that ours succeeds
    (asynctrack's validators return the normalised values MLflow's store recomputes)."""
    if theirs == {"ok": None}:
        return "ok" in ours
    return ours == theirs


# ============================================================ function level, compared with MLflow

_LONG_RETENTION = '{"type": "duration", "value": "' + "1" * 40 + 'd"}'

FUNCTION_CASES = [
    # --- metric names
    "validate_metric_name(None)",
    "validate_metric_name('')",
    "validate_metric_name('a')",
    "validate_metric_name('a/b')",
    "validate_metric_name('a/../b')",
    "validate_metric_name('/a')",
    "validate_metric_name('a/')",
    "validate_metric_name('a//b')",
    "validate_metric_name('./a')",
    "validate_metric_name('..')",
    "validate_metric_name('.')",
    "validate_metric_name('a.b-c_d e:f')",
    "validate_metric_name(' x')",
    "validate_metric_name('x ')",
    "validate_metric_name('a\\nb')",
    "validate_metric_name('a\\tb')",
    "validate_metric_name('a$')",
    "validate_metric_name('é日本')",
    "validate_metric_name('a', path='metrics[2].name')",
    "validate_metric_name(None, path='metrics[2].name')",
    "validate_metric_name(1)",
    "validate_metric_name(b'a')",
    # --- metrics
    "validate_metric('loss', 1.0, 0, 0)",
    "validate_metric('loss', 1, 5, 3)",
    "validate_metric('loss', 1.0, 0, 0, path='metrics[3]')",
    "validate_metric(None, 1.0, 0, 0)",
    "validate_metric('/a', 1.0, 0, 0, path='metrics[1]')",
    "validate_metric('k' * 250, 1.0, 0, 0)",
    "validate_metric('k' * 251, 1.0, 0, 0)",
    "validate_metric('k' * 251, 1.0, 0, 0, path='metrics[0]')",
    "validate_metric('loss', None, 0, 0)",
    "validate_metric('loss', None, 0, 0, path='metrics[4]')",
    "validate_metric('loss', 'abc', 7, 0)",
    "validate_metric('loss', '1', 7, 0)",
    "validate_metric('loss', True, 7, 0)",
    "validate_metric('loss', np.bool_(True), 7, 0)",
    "validate_metric('loss', [1.0], 7, 0)",
    "validate_metric('loss', {'a': 1}, 7, 0)",
    "validate_metric('loss', float('nan'), 0, 0)",
    "validate_metric('loss', float('inf'), 0, 0)",
    "validate_metric('loss', np.float32(1.5), 0, 0)",
    "validate_metric('loss', np.int64(2), 0, 0)",
    "validate_metric('loss', Decimal('1.5'), 0, 0)",
    "validate_metric('loss', 1+2j, 0, 0)",
    "validate_metric('loss', 10**400, 0, 0)",
    "validate_metric('loss', 1.0, -1, 0)",
    "validate_metric('loss', 1.0, -1, 0, path='metrics[0]')",
    "validate_metric('loss', 1.0, '5', 0)",
    "validate_metric('loss', 1.0, None, 0)",
    "validate_metric('loss', 1.0, Decimal(-1), 0)",
    "validate_metric('loss', 1.0, 2**63 - 1, 0)",
    "validate_metric('loss', 1.0, 2**63, 0)",
    "validate_metric('loss', 1.0, 1.5, 0)",
    "validate_metric('loss', 1.0, 2.0, 0)",
    "validate_metric('loss', 1.0, True, 0)",
    "validate_metric('loss', 1.0, float('nan'), 0)",
    "validate_metric('loss', 1.0, float('inf'), 0)",
    "validate_metric('loss', 1.0, np.int64(5), 0)",
    "validate_metric('loss', 1.0, 1j, 0)",
    "validate_metric('loss', 1.0, 0, '3')",
    "validate_metric('loss', 1.0, 0, None)",
    "validate_metric('loss', 1.0, 0, '3', path='metrics[9]')",
    "validate_metric('loss', 1.0, 0, 2**63 - 1)",
    "validate_metric('loss', 1.0, 0, -2**63)",
    "validate_metric('loss', 1.0, 0, 2**63)",
    "validate_metric('loss', 1.0, 0, -2**63 - 1)",
    "validate_metric('loss', 1.0, 0, 1.5)",
    "validate_metric('loss', 1.0, 0, 2.0)",
    "validate_metric('loss', 1.0, 0, True)",
    "validate_metric('loss', 1.0, 0, float('nan'))",
    "validate_metric('loss', 1.0, 0, float('-inf'))",
    "validate_metric('loss', 1.0, 0, np.int64(3))",
    "validate_metric('loss', 1.0, 0, Decimal(2))",
    "validate_metric('k' * 251, 1.0, 0, 2**63)",
    "validate_metric('loss', 'abc', -1, '3')",
    "validate_metric('loss', 2.5, -1, '3')",
    # --- params
    "validate_param('p', 'v')",
    "validate_param('p', 'v', path='params[2]')",
    "validate_param(None, 'v')",
    "validate_param(None, 'v', path='params[1]')",
    "validate_param('', 'v')",
    "validate_param('a/../b', 'v')",
    "validate_param('a*b', 'v')",
    "validate_param('p', None)",
    "validate_param('p', '')",
    "validate_param('p', 'v' * 6000)",
    "validate_param('p', 'v' * 6001)",
    "validate_param('p', 'v' * 7000, path='params[0]')",
    "validate_param('k' * 250, 'v')",
    "validate_param('k' * 251, 'v')",
    "validate_param('k' * 251, 'v', path='params[0]')",
    "with_env('MLFLOW_TRUNCATE_LONG_VALUES', 'false', lambda: validate_param('p', 'v' * 6001))",
    "with_env('MLFLOW_TRUNCATE_LONG_VALUES', '0', lambda: validate_param('p', 'v' * 6000))",
    "with_env('MLFLOW_TRUNCATE_LONG_VALUES', 'TRUE', lambda: validate_param('p', 'v' * 6001))",
    "with_env('MLFLOW_TRUNCATE_LONG_VALUES', 'maybe', lambda: validate_param('p', 'v' * 6001))",
    "validate_param('p', 5)",
    "validate_param(5, 'v')",
    "validate_param_name(None)",
    "validate_param_name('ok')",
    "validate_param_name('bad!', path='params[0].key')",
    # --- run tags
    "validate_tag('t', 'v')",
    "validate_tag('t', 'v', path='tags[1]')",
    "validate_tag(None, 'v')",
    "validate_tag(None, 'v', path='tags[0]')",
    "validate_tag('', 'v')",
    "validate_tag('/t', 'v', path='tags[0]')",
    "validate_tag('t', None)",
    "validate_tag('t', 'v' * 8000)",
    "validate_tag('t', 'v' * 8001)",
    "validate_tag('t', 'v' * 9000, path='tags[3]')",
    "validate_tag('k' * 251, 'v')",
    "validate_tag('k' * 251, 'v', path='tags[0]')",
    "with_env('MLFLOW_TRUNCATE_LONG_VALUES', 'false', lambda: validate_tag('t', 'v' * 8001))",
    "validate_tag('t', 5)",
    "validate_tag_name(None)",
    "validate_tag_name('mlflow.runName')",
    # --- experiment tags
    "validate_experiment_tag('a', 'b')",
    "validate_experiment_tag(None, 'b')",
    "validate_experiment_tag('', 'b')",
    "validate_experiment_tag('a', None)",
    "validate_experiment_tag('k' * 251, 'v')",
    "validate_experiment_tag('a', 'v' * 20000)",
    "validate_experiment_tag('a', 'v' * 20001)",
    "validate_experiment_tag('a', 5)",
    "validate_experiment_tag('mlflow.trace.archivalRetention', '{\"type\": \"duration\", \"value\": \"30d\"}')",
    "validate_experiment_tag('mlflow.trace.archivalRetention', ' {\"type\": \"duration\", \"value\": \" 12h \"}')",
    "validate_experiment_tag('mlflow.trace.archivalRetention', 'bad')",
    "validate_experiment_tag('mlflow.trace.archivalRetention', '[1]')",
    "validate_experiment_tag('mlflow.trace.archivalRetention', '{\"type\": \"x\", \"value\": \"30d\"}')",
    "validate_experiment_tag('mlflow.trace.archivalRetention', '{\"type\": \"duration\", \"value\": \"0d\"}')",
    "validate_experiment_tag('mlflow.trace.archivalRetention', '{\"type\": \"duration\", \"value\": 5}')",
    "validate_experiment_tag('mlflow.trace.archivalRetention', '{\"type\": \"duration\"}')",
    f"validate_experiment_tag('mlflow.trace.archivalRetention', {_LONG_RETENTION!r})",
    "validate_experiment_tag('mlflow.trace.archivalRetention', None)",
    "validate_experiment_tag('mlflow.trace.archiveNow', '{}')",
    "validate_experiment_tag('mlflow.trace.archiveNow', '{\"older_than\": \"2h\"}')",
    "validate_experiment_tag('mlflow.trace.archiveNow', '{\"older_than\": \"2x\"}')",
    "validate_experiment_tag('mlflow.trace.archiveNow', 'null')",
    # --- batches
    "validate_param_keys_unique([])",
    "validate_param_keys_unique([Param('a', '1'), Param('b', '1')])",
    "validate_param_keys_unique([Param('a', '1'), Param('a', '1')])",
    "validate_param_keys_unique([Param('a', '1'), Param('a', '2'), Param('b', '1'), Param('a', '3')])",
    "validate_batch_log_limits([None] * 1000, [], [])",
    "validate_batch_log_limits([None] * 1001, [], [])",
    "validate_batch_log_limits([], [None] * 100, [None] * 100)",
    "validate_batch_log_limits([], [None] * 101, [])",
    "validate_batch_log_limits([], [], [None] * 101)",
    "validate_batch_log_limits([None] * 900, [None] * 100, [None] * 1)",
    "validate_batch_log_limits([None] * 2000, [None] * 200, [None] * 200)",
    "validate_batch_limit('metrics', 10, 11)",
    "validate_batch_limit('metrics', 10, 10)",
    "validate_batch_log_api_req('x' * 1000000)",
    "validate_batch_log_api_req('x' * 1000001)",
    "validate_batch_log_data([], [], [])",
    "validate_batch_log_data([Metric('m', 1.0, 1, 0)], [Param('p', 'v')], [RunTag('t', 'v')])",
    "validate_batch_log_data([Metric('m', 1.0, 1, 0), Metric('m/', 1.0, 1, 0)], [], [])",
    "validate_batch_log_data([Metric('m', None, 1, 0)], [Param(None, 'v')], [])",
    "validate_batch_log_data([], [Param('p', 'v'), Param('q/../r', 'v')], [])",
    "validate_batch_log_data([], [Param('p', 'v' * 6001)], [RunTag('t', 'v' * 8001)])",
    "validate_batch_log_data([], [], [RunTag('a', 'b'), RunTag(None, 'b')])",
    "validate_batch_log_data([], [], [RunTag('t', None)])",
    "validate_batch_log_data([Metric('m', 1.0, 1, 1.5)], [], [])",
    "validate_batch_log_data([Metric('m', 5, 1, 0)], [], [])",
    "validate_batch_log_data([Metric('m', 1.0, 1, 0), Metric('m', 1.0, 1, 2**63)], [], [])",
    # --- runs and experiments
    "validate_run_id('0123456789abcdef0123456789abcdef')",
    "validate_run_id('a' * 256)",
    "validate_run_id('a' * 257)",
    "validate_run_id('a-b_c')",
    "validate_run_id('_abc')",
    "validate_run_id('a/b')",
    "validate_run_id('')",
    "validate_run_id('a b', path='run_uuid')",
    "validate_run_id(None)",
    "validate_run_id(5)",
    "validate_experiment_id(None)",
    "validate_experiment_id('0')",
    "validate_experiment_id('abc-DEF_1')",
    "validate_experiment_id('a' * 64)",
    "validate_experiment_id('a' * 65)",
    "validate_experiment_id('-1')",
    "validate_experiment_id('')",
    "validate_experiment_id('1 ')",
    "validate_experiment_id(5)",
    "parse_experiment_id('0')",
    "parse_experiment_id('12')",
    "parse_experiment_id(12)",
    "parse_experiment_id(' 7 ')",
    "parse_experiment_id('-3')",
    "parse_experiment_id(1.5)",
    "parse_experiment_id(True)",
    "parse_experiment_id('abc')",
    "parse_experiment_id('1.5')",
    "parse_experiment_id('')",
    "parse_experiment_id(None)",
    "parse_experiment_id([1])",
    "parse_experiment_id(float('nan'))",
    "parse_experiment_id(float('inf'))",
    "parse_experiment_id('9223372036854775807')",
    "parse_experiment_id('99999999999999999999999')",
    "parse_experiment_ids(['1', 2])",
    "parse_experiment_ids(['1', 'x'])",
    "validate_experiment_id_type(None)",
    "validate_experiment_id_type('1')",
    "validate_experiment_id_type(1)",
    "validate_experiment_id_type(1.5)",
    "validate_experiment_id_type([1])",
    "validate_experiment_name(None)",
    "validate_experiment_name('')",
    "validate_experiment_name('   ')",
    "validate_experiment_name('x')",
    "validate_experiment_name(5)",
    "validate_experiment_name(['a'])",
    "validate_experiment_name('x' * 500)",
    "validate_experiment_name('x' * 501)",
    "validate_experiment_artifact_location(None)",
    "validate_experiment_artifact_location('runs:/abc')",
    "validate_experiment_artifact_location('runs:')",
    "validate_experiment_artifact_location('s3://bucket/runs:')",
    "validate_experiment_artifact_location('')",
    "validate_experiment_artifact_location(5)",
    "validate_experiment_artifact_location_length('x' * 2048)",
    "validate_experiment_artifact_location_length('x' * 2049)",
    "with_env('MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH', '10', lambda: validate_experiment_artifact_location_length('x' * 11))",
    "with_env('MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH', 'abc', lambda: validate_experiment_artifact_location_length('x'))",
    # --- numbers and conversion
    "[is_numeric(x) for x in (1, 1.5, True, np.float32(1), np.int64(1), Decimal(1), 1j, '1', None, np.bool_(True))]",
    "convert_metric_value_to_float_if_possible(None)",
    "convert_metric_value_to_float_if_possible(1.5)",
    "convert_metric_value_to_float_if_possible(float('nan'))",
    "convert_metric_value_to_float_if_possible(1)",
    "convert_metric_value_to_float_if_possible(2**63)",
    "convert_metric_value_to_float_if_possible('1')",
    "convert_metric_value_to_float_if_possible(' 2.5 ')",
    "convert_metric_value_to_float_if_possible('inf')",
    "convert_metric_value_to_float_if_possible('abc')",
    "convert_metric_value_to_float_if_possible(True)",
    "convert_metric_value_to_float_if_possible(Decimal('1.5'))",
    "convert_metric_value_to_float_if_possible(np.float32(1.1))",
    "convert_metric_value_to_float_if_possible(np.int64(3))",
    "convert_metric_value_to_float_if_possible(np.bool_(False))",
    "convert_metric_value_to_float_if_possible(np.array([2.0]))",
    "convert_metric_value_to_float_if_possible(np.array(3))",
    "convert_metric_value_to_float_if_possible(np.array([[4]]))",
    "convert_metric_value_to_float_if_possible(np.array([1.0, 2.0]))",
    "convert_metric_value_to_float_if_possible(np.array([]))",
    "convert_metric_value_to_float_if_possible(np.array(['abc']))",
    "convert_metric_value_to_float_if_possible(10**400)",
    "convert_metric_value_to_float_if_possible(1+2j)",
    "convert_metric_value_to_float_if_possible([1])",
    "[sanitize_metric_value(x) for x in (1.5, 0.0, -2.0, float('inf'), float('-inf'))]",
    "sanitize_metric_value(float('nan'))",
    "validate_length_limit('E', 3, 'abc')",
    "validate_length_limit('E', 3, 'abcd')",
    "validate_length_limit('E', 3, None)",
    "validate_length_limit('E', 3, 'abcd', truncate=True)",
    "with_env('MLFLOW_TRUNCATE_LONG_VALUES', 'false', lambda: validate_length_limit('E', 3, 'abcd', truncate=True))",
    # --- message helpers
    "invalid_value('p', {'b': 1, 'a': [1, 2]})",
    "invalid_value('p', 'x', 'msg')",
    "invalid_value('p', None, '')",
    "missing_value('x.y')",
    "exceeds_maximum_length('k', 5)",
    "not_integer_value('version', 'x')",
    "[append_to_json_path(a, b) for a, b in (('', 'a'), ('a', '[0]'), ('a', 'b'), ('x[1]', 'key'))]",
    "bad_path_message('a/../b')",
    "bad_character_message()",
    "[path_not_unique(n) for n in ('a', 'a/', '/a', '..', 'a/..', '../a', '.', 'a/b')]",
    "[bool(validate_param_and_metric_name(n)) for n in ('a:b', 'a b', 'a$', '', 'a\\n')]",
]

# Each key: the MLflow outcome observed (asserted, so this table stays true) and asynctrack's.
_STEP_MSG = "metric 'loss' (value=1.0). Step must be a valid long (64-bit integer)."
_TS_MSG = "metric 'loss' (value=1.0). Timestamp must be a nonnegative long (64-bit integer) "


def _bad(message: str) -> dict:
    return {"error_code": "INVALID_PARAMETER_VALUE", "message": message}


def _step(value: str, path: str = "step") -> dict:
    return _bad(f"Invalid value {value} for parameter '{path}' supplied: {_STEP_MSG}")


def _ts(value: str, path: str = "timestamp") -> dict:
    return _bad(f"Invalid value {value} for parameter '{path}' supplied: {_TS_MSG}")


_OK = {"ok": None}
_NOT_STR = "Names must be strings, got {}."

FUNCTION_DIVERGENCES = {
    "validate_metric_name(1)": (
        {"raises": "TypeError"},
        _bad("Invalid value 1 for parameter 'name' supplied: " + _NOT_STR.format("int")),
    ),
    "validate_metric_name(b'a')": (
        {"raises": "TypeError"},
        _bad("Invalid value b'a' for parameter 'name' supplied: " + _NOT_STR.format("bytes")),
    ),
    # MLflow's message builder json.dumps() the bad value and crashes on what JSON cannot render.
    "validate_metric('loss', np.bool_(True), 7, 0)": (
        {"raises": "TypeError"},
        _bad(
            "Invalid value True for parameter 'value' supplied: (timestamp=7). "
            "Please specify value as a valid double (64-bit floating point)"
        ),
    ),
    "validate_metric('loss', 1.0, Decimal(-1), 0)": ({"raises": "TypeError"}, _ts("-1")),
    "validate_metric('loss', 1+2j, 0, 0)": (
        _OK,
        _bad(
            "Invalid value (1+2j) for parameter 'value' supplied: (timestamp=0). "
            "Please specify value as a valid double (64-bit floating point)"
        ),
    ),
    "validate_metric('loss', 10**400, 0, 0)": (
        _OK,
        _bad(
            f"Invalid value {10**400} for parameter 'value' supplied: (timestamp=0). "
            "Please specify value as a valid double (64-bit floating point)"
        ),
    ),
    "validate_metric('loss', 1.0, 2**63, 0)": (_OK, _ts("9223372036854775808")),
    "validate_metric('loss', 1.0, 1.5, 0)": (_OK, _ts("1.5")),
    "validate_metric('loss', 1.0, float('nan'), 0)": (_OK, _ts("NaN")),
    "validate_metric('loss', 1.0, float('inf'), 0)": (_OK, _ts("Infinity")),
    "validate_metric('loss', 1.0, 1j, 0)": ({"raises": "TypeError"}, _ts("1j")),
    "validate_metric('loss', 1.0, 0, 2**63)": (_OK, _step("9223372036854775808")),
    "validate_metric('loss', 1.0, 0, -2**63 - 1)": (_OK, _step("-9223372036854775809")),
    "validate_metric('loss', 1.0, 0, 1.5)": (_OK, _step("1.5")),
    "validate_metric('loss', 1.0, 0, float('nan'))": (_OK, _step("NaN")),
    "validate_metric('loss', 1.0, 0, float('-inf'))": (_OK, _step("-Infinity")),
    "validate_metric('loss', 1.0, 0, Decimal(2))": (_OK, _step("2")),
    "validate_param('p', 5)": (
        {"raises": "TypeError"},
        _bad("Invalid value 5 for parameter 'value' supplied: Param value must be a string, got int."),
    ),
    "validate_param(5, 'v')": (
        {"raises": "TypeError"},
        _bad("Invalid value 5 for parameter 'key' supplied: " + _NOT_STR.format("int")),
    ),
    "validate_tag('t', 5)": (
        {"raises": "TypeError"},
        _bad("Invalid value 5 for parameter 'value' supplied: Tag value must be a string, got int."),
    ),
    "validate_experiment_tag('a', 5)": (
        {"raises": "TypeError"},
        _bad("Invalid value 5 for parameter 'value' supplied: Tag value must be a string, got int."),
    ),
    "validate_batch_log_data([Metric('m', 1.0, 1, 1.5)], [], [])": (
        {"ok": "([<Metric: dataset_digest=None, dataset_name=None, key='m', model_id=None, "
               "run_id=None, step=1.5, timestamp=1, value=1.0>], [], [])"},
        _bad(
            "Invalid value 1.5 for parameter 'metrics[0].step' supplied: metric 'm' (value=1.0). "
            "Step must be a valid long (64-bit integer)."
        ),
    ),
    "validate_batch_log_data([Metric('m', 5, 1, 0)], [], [])": (
        {"ok": "([<Metric: dataset_digest=None, dataset_name=None, key='m', model_id=None, "
               "run_id=None, step=0, timestamp=1, value=5>], [], [])"},
        {"ok": "([<Metric: dataset_digest=None, dataset_name=None, key='m', model_id=None, "
               "run_id=None, step=0, timestamp=1, value=5.0>], [], [])"},
    ),
    "validate_batch_log_data([Metric('m', 1.0, 1, 0), Metric('m', 1.0, 1, 2**63)], [], [])": (
        {"ok": "([<Metric: dataset_digest=None, dataset_name=None, key='m', model_id=None, "
               "run_id=None, step=0, timestamp=1, value=1.0>, <Metric: dataset_digest=None, "
               "dataset_name=None, key='m', model_id=None, run_id=None, step=9223372036854775808, "
               "timestamp=1, value=1.0>], [], [])"},
        _bad(
            "Invalid value 9223372036854775808 for parameter 'metrics[1].step' supplied: "
            "metric 'm' (value=1.0). Step must be a valid long (64-bit integer)."
        ),
    ),
    "validate_run_id(None)": ({"raises": "TypeError"}, _bad("Invalid value null for parameter 'run_id' supplied.")),
    "validate_run_id(5)": ({"raises": "TypeError"}, _bad("Invalid value 5 for parameter 'run_id' supplied.")),
    "validate_experiment_id(5)": ({"raises": "TypeError"}, _bad("Invalid experiment ID: '5'")),
    "parse_experiment_id(float('inf'))": (
        {"raises": "OverflowError"},
        _bad("Invalid experiment ID 'inf'. Experiment ID must be a valid integer."),
    ),
    "parse_experiment_id('99999999999999999999999')": (
        {"ok": "99999999999999999999999"},
        _bad(
            "Invalid experiment ID '99999999999999999999999'. Experiment ID must be a valid "
            "64-bit integer."
        ),
    ),
    "validate_experiment_artifact_location(5)": (
        {"raises": "AttributeError"},
        _bad("Invalid artifact location: 5. Expects a string."),
    ),
    "convert_metric_value_to_float_if_possible(np.array(['abc']))": (
        {"raises": "ValueError"},
        _bad("Failed to convert metric value to float: could not convert string to float: 'abc'"),
    ),
    "convert_metric_value_to_float_if_possible(10**400)": (
        {"raises": "OverflowError"},
        _bad("Failed to convert metric value to float: int too large to convert to float"),
    ),
    "convert_metric_value_to_float_if_possible(1+2j)": (
        {"raises": "TypeError"},
        _bad(
            "Failed to convert metric value to float: float() argument must be a string or a "
            "real number, not 'complex'"
        ),
    ),
    "convert_metric_value_to_float_if_possible([1])": (
        {"raises": "TypeError"},
        _bad(
            "Failed to convert metric value to float: float() argument must be a string or a "
            "real number, not 'list'"
        ),
    ),
}

# Names of asynctrack functions that MLflow has as `mlflow.utils.validation._<name>`.
_PRIVATE_IN_MLFLOW = [
    "validate_metric_name", "validate_metric", "validate_param_name", "validate_param",
    "validate_tag_name", "validate_tag", "validate_experiment_tag", "validate_param_keys_unique",
    "validate_batch_log_limits", "validate_batch_limit", "validate_batch_log_data",
    "validate_batch_log_api_req", "validate_run_id", "validate_experiment_id",
    "parse_experiment_id", "parse_experiment_ids", "validate_experiment_id_type",
    "validate_experiment_name", "validate_experiment_artifact_location",
    "validate_experiment_artifact_location_length", "is_numeric", "validate_length_limit",
]
_PUBLIC_IN_MLFLOW = [
    "invalid_value", "missing_value", "exceeds_maximum_length", "not_integer_value",
    "append_to_json_path", "bad_path_message", "bad_character_message", "path_not_unique",
    "validate_param_and_metric_name",
]


def _our_namespace() -> dict:
    ns = {name: getattr(v, name) for name in _PRIVATE_IN_MLFLOW + _PUBLIC_IN_MLFLOW}
    ns.update(
        convert_metric_value_to_float_if_possible=v.convert_metric_value_to_float_if_possible,
        sanitize_metric_value=v.sanitize_metric_value,
        np=np, Decimal=Decimal, Metric=Metric, Param=Param, RunTag=RunTag, with_env=with_env,
    )
    return ns


def _compare_table(cases, oracle, ours_of, divergences) -> list[str]:
    problems = []
    for case, theirs in zip(cases, oracle):
        ours = ours_of(case)
        if case in divergences:
            mlflow_expected, ours_expected = divergences[case]
            if theirs != mlflow_expected:
                problems.append(f"{case}\n  MLflow now does {theirs}, table says {mlflow_expected}")
            if ours != ours_expected:
                problems.append(f"{case}\n  ours:     {ours}\n  expected: {ours_expected}")
        elif not _same(ours, theirs):
            problems.append(f"{case}\n  ours:   {ours}\n  mlflow: {theirs}")
    return problems


@needs_mlflow
def test_validation_functions_match_mlflow(caplog):
    assert set(FUNCTION_DIVERGENCES) <= set(FUNCTION_CASES)
    cases = _local(FUNCTION_CASES)
    oracle = run(
        _ORACLE_OUTCOME
        + """
import os
from decimal import Decimal
import numpy as np
import mlflow.utils.validation as V
from mlflow.entities import Metric, Param, RunTag
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.tracking.metric_value_conversion_utils import convert_metric_value_to_float_if_possible
ns = {name: getattr(V, "_" + name) for name in ARGS["private"]}
ns.update({name: getattr(V, name) for name in ARGS["public"]})
ns.update(convert_metric_value_to_float_if_possible=convert_metric_value_to_float_if_possible,
          sanitize_metric_value=lambda x: SqlAlchemyStore.sanitize_metric_value(None, x),
          np=np, Decimal=Decimal, Metric=Metric, Param=Param, RunTag=RunTag, with_env=with_env)
_out([outcome(lambda: eval(expr, dict(ns))) for expr in ARGS["cases"]])
""",
        cases=cases,
        private=_PRIVATE_IN_MLFLOW,
        public=_PUBLIC_IN_MLFLOW,
    )
    ns = _our_namespace()
    with caplog.at_level(logging.ERROR):  # truncation warnings are expected here
        problems = _compare_table(
            cases, oracle, lambda c: _outcome(lambda: eval(c, dict(ns))), FUNCTION_DIVERGENCES
        )
    assert not problems, "\n".join(problems)


# ==================================================== end to end, MlflowClient on a SQLite store

# Evaluated with log_metric(key, value, timestamp=None, step=None), log_param(key, value),
# set_tag(key, value), log_batch(run_id=..., metrics=..., params=..., tags=...) in scope. MLflow
# runs them through MlflowClient against a fresh run; asynctrack through its validation pipeline
# (the same conversion, str() of param/tag values and checks, in the same order). Each reports
# what would be read back: metric history rows (value/timestamp/step reprs), params, tags.
E2E_CASES = [
    "log_metric('loss', 1.0, 1000, 0)",
    "log_metric('loss', 1.0, 1000, 2**63)",
    "log_metric('loss', 1.0, 1000, 2**63 - 1)",
    "log_metric('loss', 1.0, 1000, -2**63)",
    "log_metric('loss', 1.0, 1000, -2**63 - 1)",
    "log_metric('loss', 1.0, 1000, 1.5)",
    "log_metric('loss', 1.0, 1000, 2.0)",
    "log_metric('loss', 1.0, 1000, True)",
    "log_metric('loss', 1.0, 1000, '3')",
    "log_metric('loss', 1.0, 1000, float('inf'))",
    "log_metric('loss', 1.0, 1000, np.int64(3))",
    "log_metric('loss', 1.0, 1000, None)",
    "log_metric('loss', 1.0, 2**63, 0)",
    "log_metric('loss', 1.0, 2**63 - 1, 0)",
    "log_metric('loss', 1.0, -1, 0)",
    "log_metric('loss', 1.0, 1.5, 0)",
    "log_metric('loss', 1.0, True, 0)",
    "log_metric('loss', 1.0, np.int64(5), 0)",
    "log_metric('loss', '1', 1000, 0)",
    "log_metric('loss', 'abc', 1000, 0)",
    "log_metric('loss', True, 1000, 0)",
    "log_metric('loss', None, 1000, 0)",
    "log_metric('loss', float('nan'), 1000, 0)",
    "log_metric('loss', float('inf'), 1000, 0)",
    "log_metric('loss', float('-inf'), 1000, 0)",
    "log_metric('loss', np.float32(1), 1000, 0)",
    "log_metric('loss', np.float32(1.1), 1000, 0)",
    "log_metric('loss', np.array([2.0]), 1000, 0)",
    "log_metric('loss', np.array([2.0, 3.0]), 1000, 0)",
    "log_metric('loss', np.array(['abc']), 1000, 0)",
    "log_metric('loss', np.bool_(True), 1000, 0)",
    "log_metric('loss', Decimal('1.5'), 1000, 0)",
    "log_metric('loss', 10**400, 1000, 0)",
    "log_metric('loss', 2**63, 1000, 0)",
    "log_metric('loss', 1+2j, 1000, 0)",
    "log_metric(None, 1.0, 1000, 0)",
    "log_metric('', 1.0, 1000, 0)",
    "log_metric('a/../b', 1.0, 1000, 0)",
    "log_metric('/a', 1.0, 1000, 0)",
    "log_metric('a:b', 1.0, 1000, 0)",
    "log_metric(' x', 1.0, 1000, 0)",
    "log_metric('k' * 250, 1.0, 1000, 0)",
    "log_metric('k' * 251, 1.0, 1000, 0)",
    "log_metric(1, 1.0, 1000, 0)",
    "log_param('p', 'v')",
    "log_param('p', 5)",
    "log_param('p', None)",
    "log_param(None, 'v')",
    "log_param('', 'v')",
    "log_param('p', 'v' * 6000)",
    "log_param('p', 'v' * 6001)",
    "log_param('p', 'v' * 7000)",
    "log_param('k' * 251, 'v')",
    "log_param(1, 'v')",
    "set_tag('t', 'v')",
    "set_tag('t', None)",
    "set_tag('t', 5)",
    "set_tag(None, 'v')",
    "set_tag('', 'v')",
    "set_tag('t', 'v' * 8000)",
    "set_tag('t', 'v' * 9000)",
    "set_tag('k' * 251, 'v')",
    "log_batch(metrics=[Metric('m', 1.0, 1, 0), Metric('m', 2, 2, 1)], params=[Param('p', 1)], tags=[RunTag('t', 'x')])",
    "log_batch(metrics=[Metric('m', 1.0, 1, 2**63)])",
    "log_batch(metrics=[Metric('m', 1.0, 1, 1.5)])",
    "log_batch(metrics=[Metric('m', 1.0, 1, '3')])",
    "log_batch(metrics=[Metric('m', 1.0, 1, Decimal(2))])",
    "log_batch(metrics=[Metric('m', 1.0, float('nan'), 0)])",
    "log_batch(metrics=[Metric('m', 1.0, 1, float('nan'))])",
    "log_batch(metrics=[Metric('m', True, 1, 0), Metric('m', 'abc', 2, 0)])",
    "log_batch(metrics=[Metric('m', None, 1, 0)])",
    "log_batch(metrics=[Metric('m', 1.0, 1, 0), Metric('/m', 1.0, 1, 0)])",
    "log_batch(metrics=[Metric('m', 1.0, 1, 0), Metric('m', 1.0, 1, 0)])",
    "log_batch(params=[Param('p', None), Param('q', 'v' * 7000)])",
    "log_batch(params=[Param('p', 'v'), Param('p', 'v')])",
    "log_batch(params=[Param('p', 'v'), Param('p', 'w'), Param('q', '1'), Param('p', 'x')])",
    "log_batch(params=[Param('k' * 251, 'v')])",
    "log_batch(tags=[RunTag('t', None), RunTag('u', 'v' * 9000)])",
    "log_batch(tags=[RunTag('t', 'a'), RunTag('t', 'b')])",
    "log_batch(tags=[RunTag('k' * 251, 'v')])",
    "log_batch(tags=[RunTag(None, 'v')])",
    "log_batch(metrics=[Metric('m', 1.0, 1, i) for i in range(1001)], params=[Param('p%d' % i, 'v') for i in range(101)])",
    "log_batch(run_id='a/b', metrics=[Metric('m', 1.0, 1, 0)])",
    "log_batch(run_id=None, metrics=[Metric('m', 1.0, 1, 0)])",
    "log_batch()",
]

_SQLITE_OVERFLOW = {"error_code": "INTERNAL_ERROR", "message": "Python int too large to convert to SQLite INTEGER"}


def _row(value: str, timestamp: str, step: str, key: str = "loss") -> dict:
    return {"ok": repr([[key, value, timestamp, step]])}


E2E_DIVERGENCES = {
    "log_metric('loss', 1.0, 1000, 2**63)": (_SQLITE_OVERFLOW, _step("9223372036854775808")),
    "log_metric('loss', 1.0, 1000, -2**63 - 1)": (_SQLITE_OVERFLOW, _step("-9223372036854775809")),
    "log_metric('loss', 1.0, 1000, 1.5)": (_row("1.0", "1000", "1.5"), _step("1.5")),
    "log_metric('loss', 1.0, 1000, float('inf'))": (_row("1.0", "1000", "inf"), _step("Infinity")),
    "log_metric('loss', 1.0, 1000, np.int64(3))": (
        _row("1.0", "1000", repr(b"\x03" + b"\x00" * 7)),
        _row("1.0", "1000", "3"),
    ),
    "log_metric('loss', 1.0, 2**63, 0)": (_SQLITE_OVERFLOW, _ts("9223372036854775808")),
    "log_metric('loss', 1.0, 1.5, 0)": (_row("1.0", "1.5", "0"), _ts("1.5")),
    "log_metric('loss', 1.0, np.int64(5), 0)": (
        _row("1.0", repr(b"\x05" + b"\x00" * 7), "0"),
        _row("1.0", "5", "0"),
    ),
    "log_metric('loss', np.array(['abc']), 1000, 0)": (
        {"raises": "ValueError"},
        _bad("Failed to convert metric value to float: could not convert string to float: 'abc'"),
    ),
    "log_metric('loss', 10**400, 1000, 0)": (
        {"raises": "OverflowError"},
        _bad("Failed to convert metric value to float: int too large to convert to float"),
    ),
    "log_metric('loss', 1+2j, 1000, 0)": (
        {"raises": "TypeError"},
        _bad(
            "Failed to convert metric value to float: float() argument must be a string or a "
            "real number, not 'complex'"
        ),
    ),
    "log_metric(1, 1.0, 1000, 0)": (
        {"raises": "TypeError"},
        _bad("Invalid value 1 for parameter 'name' supplied: " + _NOT_STR.format("int")),
    ),
    "log_param(1, 'v')": (
        {"raises": "TypeError"},
        _bad(
            "Invalid value 1 for parameter 'key' supplied: " + _NOT_STR.format("int")
            + v.PARAM_VALIDATION_MSG
        ),
    ),
    "log_batch(metrics=[Metric('m', 1.0, 1, 2**63)])": (
        _SQLITE_OVERFLOW,
        _bad(
            "Invalid value 9223372036854775808 for parameter 'metrics[0].step' supplied: "
            "metric 'm' (value=1.0). Step must be a valid long (64-bit integer)."
        ),
    ),
    "log_batch(metrics=[Metric('m', 1.0, 1, 1.5)])": (
        {"ok": repr({"metrics": [["m", "1.0", "1", "1.5"]], "params": {}, "tags": {}})},
        _bad(
            "Invalid value 1.5 for parameter 'metrics[0].step' supplied: "
            "metric 'm' (value=1.0). Step must be a valid long (64-bit integer)."
        ),
    ),
    "log_batch(metrics=[Metric('m', 1.0, 1, Decimal(2))])": (
        {"error_code": "BAD_REQUEST", "message": "<sqlite binding error>"},
        _bad(
            "Invalid value 2 for parameter 'metrics[0].step' supplied: "
            "metric 'm' (value=1.0). Step must be a valid long (64-bit integer)."
        ),
    ),
    "log_batch(metrics=[Metric('m', 1.0, float('nan'), 0)])": (
        {"error_code": "BAD_REQUEST", "message": "<NOT NULL constraint failed: metrics.timestamp>"},
        _bad(
            "Invalid value NaN for parameter 'metrics[0].timestamp' supplied: "
            "metric 'm' (value=1.0). Timestamp must be a nonnegative long (64-bit integer) "
        ),
    ),
    "log_batch(metrics=[Metric('m', 1.0, 1, float('nan'))])": (
        {"error_code": "BAD_REQUEST", "message": "<NOT NULL constraint failed: metrics.step>"},
        _bad(
            "Invalid value NaN for parameter 'metrics[0].step' supplied: "
            "metric 'm' (value=1.0). Step must be a valid long (64-bit integer)."
        ),
    ),
    "log_batch(run_id=None, metrics=[Metric('m', 1.0, 1, 0)])": (
        {"raises": "TypeError"},
        _bad("Invalid value null for parameter 'run_id' supplied."),
    ),
}

# MLflow's SQLAlchemy errors carry the SQL text; the table keeps only the telling part.
_SQL_ERROR_GIST = {
    "<sqlite binding error>": "type 'decimal.Decimal' is not supported",
    "<NOT NULL constraint failed: metrics.timestamp>": "NOT NULL constraint failed: metrics.timestamp",
    "<NOT NULL constraint failed: metrics.step>": "NOT NULL constraint failed: metrics.step",
}


def _condense_sql_errors(outcome: dict) -> dict:
    message = outcome.get("message", "")
    if outcome.get("error_code") == "BAD_REQUEST":
        for placeholder, gist in _SQL_ERROR_GIST.items():
            if gist in message:
                return {"error_code": "BAD_REQUEST", "message": placeholder}
    return outcome


def _history_row(key, value: float, timestamp, step) -> list[str]:
    return [key, repr(value), repr(timestamp), repr(step)]


def _stored_metric_row(metric_key, value, timestamp, step) -> list[str]:
    """What MLflow's SQL store reads back: NaN via its is_nan flag, +/-inf clamped."""
    is_nan, stored = v.sanitize_metric_value(value)
    return _history_row(metric_key, _NAN if is_nan else float(stored), timestamp, step)


class _OurPipeline:
    """asynctrack's validation applied exactly where MlflowClient and the SQL store apply MLflow's."""

    RUN_ID = "0123456789abcdef0123456789abcdef"

    @staticmethod
    def log_metric(key, value, timestamp=None, step=None):
        timestamp = timestamp if timestamp is not None else int(time.time() * 1000)
        step = step if step is not None else 0
        value = v.convert_metric_value_to_float_if_possible(value)
        value, timestamp, step = v.validate_metric(key, value, timestamp, step)
        return [_stored_metric_row(key, value, timestamp, step)]

    @staticmethod
    def log_param(key, value):
        try:
            param = v.validate_param(key, str(value))
        except MlflowException as e:  # MlflowClient.log_param adds its hint to these
            if e.error_code == "INVALID_PARAMETER_VALUE":
                raise MlflowException(e.message + v.PARAM_VALIDATION_MSG, INVALID_PARAMETER_VALUE) from e
            raise
        return {param.key: param.value}

    @staticmethod
    def set_tag(key, value):
        tag = v.validate_tag(key, str(value))
        return {tag.key: tag.value}

    @classmethod
    def log_batch(cls, run_id=RUN_ID, metrics=(), params=(), tags=()):
        if not (metrics or params or tags):
            return None
        metrics = [
            Metric(m.key, v.convert_metric_value_to_float_if_possible(m.value), m.timestamp, m.step)
            for m in metrics
        ]
        params = [Param(p.key, str(p.value)) for p in params]
        # MlflowClient splits into <= 100 params/tags and <= 1000 entities per store call.
        stored_metrics, stored_params, stored_tags = set(), {}, {}
        while metrics or params or tags:
            p_chunk, params = params[:100], params[100:]
            t_chunk, tags = tags[:100], tags[100:]
            m_size = max(0, min(1000 - len(p_chunk) - len(t_chunk), 1000))
            m_chunk, metrics = metrics[:m_size], metrics[m_size:]
            v.validate_run_id(run_id)
            m_chunk, p_chunk, t_chunk = v.validate_batch_log_data(m_chunk, p_chunk, t_chunk)
            v.validate_batch_log_limits(m_chunk, p_chunk, t_chunk)
            v.validate_param_keys_unique(p_chunk)
            stored_params.update((p.key, p.value) for p in p_chunk)
            stored_metrics.update(
                tuple(_stored_metric_row(m.key, m.value, m.timestamp, m.step)) for m in m_chunk
            )
            stored_tags.update((t.key, t.value) for t in t_chunk)
        return {"metrics": [list(r) for r in sorted(stored_metrics)], "params": stored_params, "tags": stored_tags}


_ORACLE_E2E = """
import os, tempfile
from decimal import Decimal
import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
tmp = tempfile.mkdtemp()
client = MlflowClient(tracking_uri=f"sqlite:///{tmp}/mlflow.db")
exp = client.create_experiment("e2e", artifact_location=f"{tmp}/artifacts")
def row(m):
    return [m.key, repr(m.value), repr(m.timestamp), repr(m.step)]
def new_run():
    return client.create_run(exp).info.run_id
def user_tags(run):
    return {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
def log_metric(key, value, timestamp=None, step=None):
    rid = new_run()
    client.log_metric(rid, key, value, timestamp=timestamp, step=step)
    return [row(m) for m in client.get_metric_history(rid, key)]
def log_param(key, value):
    rid = new_run()
    client.log_param(rid, key, value)
    return client.get_run(rid).data.params
def set_tag(key, value):
    rid = new_run()
    client.set_tag(rid, key, value)
    return user_tags(client.get_run(rid))
def log_batch(run_id="new", metrics=(), params=(), tags=()):
    rid = new_run() if run_id == "new" else run_id
    client.log_batch(rid, metrics=metrics, params=params, tags=tags)
    if not (metrics or params or tags):
        return None
    run_ = client.get_run(rid)
    rows = sorted({tuple(row(m)) for k in run_.data.metrics for m in client.get_metric_history(rid, k)})
    return {"metrics": [list(r) for r in rows], "params": run_.data.params, "tags": user_tags(run_)}
ns = dict(log_metric=log_metric, log_param=log_param, set_tag=set_tag, log_batch=log_batch,
          np=np, Decimal=Decimal, Metric=Metric, Param=Param, RunTag=RunTag)
_out([outcome(lambda: eval(expr, dict(ns))) for expr in ARGS["cases"]])
"""


@needs_mlflow
def test_end_to_end_through_mlflow_client_matches(tmp_path, caplog):
    assert set(E2E_DIVERGENCES) <= set(E2E_CASES)
    cases = _local(E2E_CASES)
    oracle = run(_ORACLE_OUTCOME + _ORACLE_E2E, cwd=tmp_path, cases=cases)
    oracle = [_condense_sql_errors(o) for o in oracle]
    ns = dict(
        log_metric=_OurPipeline.log_metric,
        log_param=_OurPipeline.log_param,
        set_tag=_OurPipeline.set_tag,
        log_batch=_OurPipeline.log_batch,
        np=np, Decimal=Decimal, Metric=Metric, Param=Param, RunTag=RunTag,
    )
    with caplog.at_level(logging.ERROR):
        problems = _compare_table(
            cases, oracle, lambda c: _outcome(lambda: eval(c, dict(ns))), E2E_DIVERGENCES
        )
    assert not problems, "\n".join(problems)


# ================================================= generated names, compared with MLflow in bulk

_NAME_ALPHABET = list("aZ09_-./ :$\n\té日") + ["..", "//", "/.", "./"]


def _random_names(count: int, seed: int = 1234) -> list[str]:
    rng = random.Random(seed)
    return [
        "".join(rng.choice(_NAME_ALPHABET) for _ in range(rng.randint(0, 6))) for _ in range(count)
    ]


@needs_mlflow
def test_generated_names_match_mlflow():
    names = _random_names(600)
    oracle = run(
        _ORACLE_OUTCOME
        + """
import mlflow.utils.validation as V
out = []
for name in ARGS["names"]:
    out.append([outcome(lambda: V._validate_metric_name(name)),
                outcome(lambda: V._validate_param_name(name, "params[0].key")),
                outcome(lambda: V._validate_tag_name(name))])
_out(out)
""",
        names=names,
    )
    for name, theirs in zip(names, oracle):
        ours = [
            _outcome(lambda: v.validate_metric_name(name)),
            _outcome(lambda: v.validate_param_name(name, "params[0].key")),
            _outcome(lambda: v.validate_tag_name(name)),
        ]
        assert ours == theirs, repr(name)


# ============================================================================ unit tests (local)


def _error(fn, *args, **kwargs) -> MlflowException:
    with pytest.raises(MlflowException) as info:
        fn(*args, **kwargs)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    return info.value


def test_constants():
    assert (v.MAX_PARAM_VAL_LENGTH, v.MAX_TAG_VAL_LENGTH, v.MAX_ENTITY_KEY_LENGTH) == (6000, 8000, 250)
    assert (v.MAX_METRICS_PER_BATCH, v.MAX_PARAMS_TAGS_PER_BATCH, v.MAX_ENTITIES_PER_BATCH) == (1000, 100, 1000)
    assert (v.MAX_EXPERIMENT_NAME_LENGTH, v.MAX_EXPERIMENT_TAG_KEY_LENGTH) == (500, 250)
    assert v.MAX_EXPERIMENT_TAG_VAL_LENGTH == 20000
    assert v.MAX_BATCH_LOG_REQUEST_SIZE == 1_000_000


def test_metric_name_rules():
    v.validate_metric_name("train/loss: epoch 1")
    assert "Metric name cannot be None" in _error(v.validate_metric_name, None).message
    assert "would resolve to 'b'" in _error(v.validate_metric_name, "a/../b").message
    assert "would resolve to '.'" in _error(v.validate_metric_name, "").message
    assert "Names may only contain" in _error(v.validate_metric_name, "a*").message
    assert "'metrics[0].name'" in _error(v.validate_metric_name, "a*", "metrics[0].name").message
    assert "Names must be strings" in _error(v.validate_metric_name, 3).message


def test_name_cache_does_not_change_verdicts():
    for _ in range(2):  # second round is served from the cache
        v.validate_metric_name("cached")
        with pytest.raises(MlflowException):
            v.validate_metric_name("cached/")
    long_bad = "a/" * 200  # over 250 characters: checked without the cache
    assert "would resolve to" in _error(v.validate_metric_name, long_bad).message


def test_param_and_tag_name_none_messages():
    assert _error(v.validate_param_name, None).message == (
        "Invalid value \"\" for parameter 'key' supplied: A key name must be provided."
    )
    assert _error(v.validate_tag_name, None).message == "Missing value for required parameter 'key'."


def test_validate_metric_returns_normalised_values():
    assert v.validate_metric("m", 1, 5, 3) == (1.0, 5, 3)
    assert v.validate_metric("m", 1.0, True, 2.0) == (1.0, 1, 2)
    value, ts, step = v.validate_metric("m", 1.0, 1, 0)
    assert type(value) is float and type(ts) is int and type(step) is int
    assert math.isnan(v.validate_metric("m", _NAN, 0, 0)[0])


def test_metric_value_rules():
    assert _error(v.validate_metric, "m", None, 0, 0).message == "Missing value for required parameter 'value'."
    assert _error(v.validate_metric, "m", True, 5, 0).message == (
        "Invalid value true for parameter 'value' supplied: (timestamp=5). "
        "Please specify value as a valid double (64-bit floating point)"
    )
    assert "valid double" in _error(v.validate_metric, "m", 10**400, 0, 0).message
    assert "valid double" in _error(v.validate_metric, "m", 1j, 0, 0).message


def test_metric_key_length():
    v.validate_metric("k" * 250, 1.0, 0, 0)
    assert _error(v.validate_metric, "k" * 251, 1.0, 0, 0).message == (
        "'Metric name' exceeds the maximum length of 250 characters"
    )


@pytest.mark.parametrize(
    "step, message_value",
    [(2**63, "9223372036854775808"), (-(2**63) - 1, "-9223372036854775809"), (1.5, "1.5"),
     (_NAN, "NaN"), (float("inf"), "Infinity"), ("3", '"3"'), (None, "null"), (Decimal("2"), "2")],
)
def test_step_must_be_a_64_bit_integer(step, message_value):
    assert _error(v.validate_step, step, "loss", 1.0).message == (
        f"Invalid value {message_value} for parameter 'step' supplied: metric 'loss' (value=1.0). "
        "Step must be a valid long (64-bit integer)."
    )


@pytest.mark.parametrize(
    "step, expected",
    [(0, 0), (2**63 - 1, 2**63 - 1), (-(2**63), -(2**63)), (True, 1), (2.0, 2), (-3.0, -3)],
)
def test_step_accepts_integral_values(step, expected):
    result = v.validate_step(step, "loss", 1.0)
    assert result == expected and type(result) is int


@pytest.mark.parametrize(
    "timestamp, message_value",
    [(2**63, "9223372036854775808"), (-1, "-1"), (1.5, "1.5"), (_NAN, "NaN"), ("5", '"5"')],
)
def test_timestamp_must_be_a_nonnegative_64_bit_integer(timestamp, message_value):
    assert _error(v.validate_timestamp, timestamp, "loss", 1.0, "metrics[2]").message == (
        f"Invalid value {message_value} for parameter 'metrics[2].timestamp' supplied: "
        "metric 'loss' (value=1.0). Timestamp must be a nonnegative long (64-bit integer) "
    )


def test_timestamp_accepts_integral_values():
    assert v.validate_timestamp(0, "k", 1.0) == 0
    assert v.validate_timestamp(2**63 - 1, "k", 1.0) == 2**63 - 1
    assert v.validate_timestamp(1e12, "k", 1.0) == 10**12


def test_mlflow_checks_come_before_the_64_bit_rule():
    # MLflow reports the key length first; the 64-bit rule only adds errors MLflow lacks.
    assert "exceeds the maximum length" in _error(v.validate_metric, "k" * 251, 1.0, 0, 2**63).message
    assert "'timestamp'" in _error(v.validate_metric, "m", 1.0, -1, "x").message


def test_param_rules(caplog):
    assert v.validate_param("p", "v") == Param("p", "v")
    assert v.validate_param("p", None).value is None
    with caplog.at_level(logging.WARNING, logger="asynctrack._validation"):
        truncated = v.validate_param("p", "x" * 7000)
    assert truncated.value == "x" * 6000
    assert "(7000 characters) is truncated to 6000 characters" in caplog.text
    assert _error(v.validate_param, "k" * 251, "v").message == (
        "'Param key' exceeds the maximum length of 250 characters"
    )
    assert "Param value must be a string" in _error(v.validate_param, "p", b"bytes").message


def test_truncation_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRUNCATE_LONG_VALUES", "false")
    assert _error(v.validate_param, "p", "x" * 6001).message == (
        "'Param value' exceeds the maximum length of 6000 characters"
    )
    assert _error(v.validate_tag, "t", "x" * 8001, "tags[4]").message == (
        "'tags[4].value' exceeds the maximum length of 8000 characters"
    )
    monkeypatch.setenv("MLFLOW_TRUNCATE_LONG_VALUES", "nonsense")
    with pytest.raises(ValueError, match="MLFLOW_TRUNCATE_LONG_VALUES value must be one of"):
        v.validate_param("p", "x" * 6001)


def test_tag_rules():
    assert v.validate_tag("t", "v" * 9000).value == "v" * 8000
    assert v.validate_tag("t", None) == RunTag("t", None)
    assert _error(v.validate_tag, "k" * 251, "v").message == "'key' exceeds the maximum length of 250 characters"
    assert _error(v.validate_tag, None, "v", "tags[1]").message == (
        "Missing value for required parameter 'tags[1].key'."
    )


def test_experiment_tag_rules():
    v.validate_experiment_tag("a", "v" * 20000)
    assert _error(v.validate_experiment_tag, "a", "v" * 20001).message == (
        "'value' exceeds the maximum length of 20000 characters"
    )
    v.validate_experiment_tag(v.TRACE_ARCHIVAL_RETENTION_TAG, '{"type": "duration", "value": "7d"}')
    assert _error(v.validate_experiment_tag, v.TRACE_ARCHIVE_NOW_TAG, "[]").message == (
        "Trace archival config must be encoded as a JSON object."
    )


def test_param_keys_unique():
    v.validate_param_keys_unique([Param("a", "1"), Param("b", "1")])
    assert _error(v.validate_param_keys_unique, [Param("a", "1"), Param("a", "1")]).message == (
        "Duplicate parameter keys have been submitted: ['a']. Please ensure the request "
        "contains only one param value per param key."
    )


def test_batch_limits():
    v.validate_batch_log_limits([0] * 1000, [], [])
    assert _error(v.validate_batch_log_limits, [0] * 1001, [], []).message == (
        "A batch logging request can contain at most 1000 metrics. Got 1001 metrics. Please "
        "split up metrics across multiple requests and try again."
    )
    assert "at most 100 params" in _error(v.validate_batch_log_limits, [], [0] * 101, []).message
    assert "at most 100 tags" in _error(v.validate_batch_log_limits, [], [], [0] * 101).message
    assert "at most 1000 metrics, params, and tags" in _error(
        v.validate_batch_log_limits, [0] * 901, [0] * 100, []
    ).message
    assert "at most 1000000 bytes" in _error(v.validate_batch_log_api_req, "x" * 1_000_001).message


def test_batch_data_paths_and_normalisation():
    good = Metric("m", 1.0, 1, 0)
    metrics, params, tags = v.validate_batch_log_data(
        [good, Metric("m", 2, True, 1.0, model_id="x", run_id="r")],
        [Param("p", "x" * 6001)],
        [RunTag("t", "y")],
    )
    assert metrics[0] is good
    assert metrics[1] == Metric("m", 2.0, 1, 1, model_id="x", run_id="r")
    assert type(metrics[1].timestamp) is int and type(metrics[1].step) is int
    assert params == [Param("p", "x")] and params[0].value == "x" * 6000
    assert tags[0].value == "y"
    assert "'metrics[1].name'" in _error(v.validate_batch_log_data, [good, Metric("/m", 1.0, 1, 0)], [], []).message
    assert "'params[0].key'" in _error(v.validate_batch_log_data, [], [Param("", "v")], []).message
    assert "'tags[0].key'" in _error(v.validate_batch_log_data, [], [], [RunTag("a*", "v")]).message


def test_run_id_rules():
    v.validate_run_id("a" * 256)
    assert _error(v.validate_run_id, "a" * 257).message == (
        f"Invalid value \"{'a' * 257}\" for parameter 'run_id' supplied."
    )
    assert _error(v.validate_run_id, None).message == "Invalid value null for parameter 'run_id' supplied."
    assert "'run_uuid'" in _error(v.validate_run_id, "-x", "run_uuid").message


def test_experiment_id_rules():
    v.validate_experiment_id(None)
    v.validate_experiment_id("a" * 64)
    assert _error(v.validate_experiment_id, "a" * 65).message == f"Invalid experiment ID: '{'a' * 65}'"
    assert v.parse_experiment_id("12") == 12 and v.parse_experiment_id(3) == 3
    assert v.parse_experiment_ids(["1", 2]) == [1, 2]
    assert _error(v.parse_experiment_id, "x").message == (
        "Invalid experiment ID 'x'. Experiment ID must be a valid integer."
    )
    assert "64-bit" in _error(v.parse_experiment_id, str(2**63)).message
    v.validate_experiment_id_type("1")
    v.validate_experiment_id_type(1)
    assert _error(v.validate_experiment_id_type, 1.5).message == (
        "Invalid experiment id: 1.5 of type <class 'float'>. Must be one of str, int, or None."
    )


def test_experiment_name_rules():
    v.validate_experiment_name("x" * 500)
    assert _error(v.validate_experiment_name, None).message == "Invalid experiment name: 'None'"
    assert _error(v.validate_experiment_name, "  ").message == "Invalid experiment name: '  '"
    assert _error(v.validate_experiment_name, 5).message == "Invalid experiment name: 5. Expects a string."
    assert _error(v.validate_experiment_name, "x" * 501).message == (
        "'name' exceeds the maximum length of 500 characters"
    )


def test_artifact_location_rules(monkeypatch):
    v.validate_experiment_artifact_location(None)
    v.validate_experiment_artifact_location("s3://b/runs:")
    assert _error(v.validate_experiment_artifact_location, "runs:/x").message == (
        "Artifact location cannot be a runs:/ URI. Given: 'runs:/x'"
    )
    v.validate_experiment_artifact_location_length("x" * 2048)
    assert "greater than 2048 characters" in _error(
        v.validate_experiment_artifact_location_length, "x" * 2049
    ).message
    monkeypatch.setenv("MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH", "5")
    assert "greater than 5 characters" in _error(v.validate_experiment_artifact_location_length, "x" * 6).message


def test_is_numeric():
    assert v.is_numeric(1) and v.is_numeric(1.5) and v.is_numeric(Decimal(1))
    assert not v.is_numeric(True) and not v.is_numeric("1") and not v.is_numeric(None)


def test_sanitize_metric_value():
    assert v.sanitize_metric_value(_NAN) == (True, 0)
    assert v.sanitize_metric_value(float("inf")) == (False, 1.7976931348623157e308)
    assert v.sanitize_metric_value(float("-inf")) == (False, -1.7976931348623157e308)
    assert v.sanitize_metric_value(2.5) == (False, 2.5)


class _FakeTensor:
    """Stands in for torch.Tensor: detach().cpu().item()."""

    def __init__(self, items):
        self._items = items

    def detach(self):
        return self

    def cpu(self):
        return self

    def item(self):
        if len(self._items) != 1:
            raise RuntimeError("a Tensor with 2 elements cannot be converted to Scalar")
        return self._items[0]

    def __float__(self):  # only so the "torch not imported" path has something to call
        return float(self.item())


def test_convert_uses_tensor_item_only_when_torch_is_imported(monkeypatch):
    assert v.convert_metric_value_to_float_if_possible(_FakeTensor([2.5])) == 2.5  # via float()
    fake_torch = types.ModuleType("torch")
    fake_torch.Tensor = _FakeTensor  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    assert v.convert_metric_value_to_float_if_possible(_FakeTensor([3])) == 3.0
    assert _error(v.convert_metric_value_to_float_if_possible, _FakeTensor([1, 2])).message == (
        "Failed to convert metric value to float: a Tensor with 2 elements cannot be converted to Scalar"
    )


@needs_numpy
def test_numpy_scalars_are_numbers_and_ints():
    assert v.is_numeric(np.float32(1)) and not v.is_numeric(np.bool_(True))
    assert v.validate_metric("m", np.float32(0.5), np.int64(7), np.int64(2)) == (0.5, 7, 2)
    assert v.validate_step(np.int32(4), "k", 1.0) == 4 and v.validate_step(np.float64(-3.0), "k", 1.0) == -3
    assert v.validate_timestamp(np.uint64(9), "k", 1.0) == 9
    assert type(v.validate_timestamp(np.int64(9), "k", 1.0)) is int
    (metric,), _, _ = v.validate_batch_log_data([Metric("m", 1.0, np.int64(5), np.int64(1))], [], [])
    assert type(metric.timestamp) is int and type(metric.step) is int


@needs_numpy
def test_convert_numpy_values():
    assert v.convert_metric_value_to_float_if_possible(np.array([[4]])) == 4.0
    assert v.convert_metric_value_to_float_if_possible(np.float32(0.5)) == 0.5
    assert _error(v.convert_metric_value_to_float_if_possible, np.array([1.0, 2.0])).message == (
        "Failed to convert metric value to float: can only convert an array of size 1 to a Python scalar"
    )
    assert v.convert_metric_value_to_float_if_possible("abc") == "abc"
    assert v.convert_metric_value_to_float_if_possible(None) is None


def test_validation_module_does_not_import_numpy():
    code = "import sys, asynctrack._validation; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_message_helpers():
    assert v.invalid_value("p", {"b": 1, "a": 2}) == 'Invalid value {"a":2,"b":1} for parameter \'p\' supplied.'
    assert v.invalid_value("p", Decimal("1.5"), "m") == "Invalid value 1.5 for parameter 'p' supplied: m"
    assert v.append_to_json_path("a", "[0]") == "a[0]" and v.append_to_json_path("a", "b") == "a.b"
    assert v.append_to_json_path("", "b") == "b"
    assert v.PARAM_VALIDATION_MSG.startswith("\n\nThe cause of this error")


# ======================================================================== property tests (local)

_REFERENCE_NAME = re.compile(r"[/\w.\- :]*" if os.name != "nt" else r"[/\w.\- ]*")


def _reference_name_ok(name: str) -> bool:
    """The rule from MLflow's docs, written out plainly: allowed characters only, and the name
    must be its own normalised path (no '.', '..', leading or doubled or trailing slashes)."""
    if not _REFERENCE_NAME.fullmatch(name):
        return False
    norm = posixpath.normpath(name)
    return norm == name and norm != "." and not norm.startswith("..") and not norm.startswith("/")


_name_chars = st.sampled_from(list("ab_-./ :$\n") + ["é", "日", "\t", ".."])


@settings(max_examples=400, deadline=None)
@given(st.lists(_name_chars, max_size=8).map("".join))
def test_name_acceptance_matches_reference_rule(name):
    for check in (v.validate_metric_name, v.validate_param_name, v.validate_tag_name):
        try:
            check(name)
            accepted = True
        except MlflowException as e:
            assert e.error_code == "INVALID_PARAMETER_VALUE"
            accepted = False
        assert accepted == _reference_name_ok(name), (check.__name__, name)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-(2**70), max_value=2**70))
@example(2**63 - 1)
@example(2**63)
@example(-(2**63))
@example(-(2**63) - 1)
def test_step_accepts_exactly_the_int64_range(step):
    in_range = -(2**63) <= step <= 2**63 - 1
    try:
        assert v.validate_step(step, "k", 1.0) == step
        assert in_range
    except MlflowException:
        assert not in_range


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
@example(2.0**63)  # == 2**63 once a float: out of range
@example(-(2.0**63))
@example(-0.0)
@example(math.nan)
@example(math.inf)
@example(1.5)
def test_float_steps_accepted_iff_integral_and_in_range(step):
    ok = math.isfinite(step) and step.is_integer() and -(2**63) <= step <= 2**63 - 1
    try:
        assert v.validate_step(step, "k", 1.0) == int(step)
        assert ok
    except MlflowException:
        assert not ok


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-(2**65), max_value=2**65))
@example(0)
@example(-1)
@example(2**63 - 1)
@example(2**63)
def test_timestamp_accepts_exactly_nonnegative_int64(ts):
    try:
        assert v.validate_timestamp(ts, "k", 1.0) == ts
        assert 0 <= ts <= 2**63 - 1
    except MlflowException:
        assert not 0 <= ts <= 2**63 - 1


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=7000))
@example("v" * 6000)
@example("v" * 6001)  # MLflow's _validate_length_limit(..., truncate=True): cut to 6000
@example("é" * 6001)  # characters, not bytes
@example("\U0001f600" * 6001)
def test_param_value_truncates_to_a_prefix(value):
    logger = logging.getLogger("asynctrack._validation")
    level = logger.level
    logger.setLevel(logging.ERROR)  # the truncation warning is expected
    try:
        assert v.validate_param("p", value).value == value[:6000]
    finally:
        logger.setLevel(level)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from("abcd"), max_size=8))
def test_param_keys_unique_lists_every_repeat(keys):
    seen, repeats = set(), []
    for key in keys:
        (repeats.append(key) if key in seen else seen.add(key))
    try:
        v.validate_param_keys_unique([Param(k, "v") for k in keys])
        assert not repeats
    except MlflowException as e:
        assert repeats and f"submitted: {repeats}." in e.message


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.floats(), st.integers(min_value=-(2**1000), max_value=2**1000), st.booleans()))
def test_convert_returns_float_of_real_numbers(x):
    result = v.convert_metric_value_to_float_if_possible(x)
    assert type(result) is float
    assert result == float(x) or (math.isnan(result) and math.isnan(x))


# -- log_batch's column-wise check of plain metrics ---------------------------------------------

_any_value = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70),
    st.booleans(), st.none(), st.text(max_size=3), st.just([1.0]),
)
_any_int = st.one_of(
    st.integers(-(2**64), 2**64), st.sampled_from([-(2**63), 2**63 - 1, 2**63, -(2**63) - 1, 0, -1]),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(), st.text(max_size=2),
)
_any_key = st.one_of(
    st.sampled_from(["loss", "acc", "a/b", "x y", "../up", "/abs", "a:b", "a\\b", "", ".", "k" * 250, "k" * 251]),
    st.text(max_size=6), st.none(), st.integers(0, 3),
)


def _slow_entries(metrics):
    out = []
    for i, m in enumerate(metrics):
        value, ts, step = v.validate_metric(m.key, m.value, m.timestamp, m.step, path=f"metrics[{i}]")
        out.append((m.key, value, ts, step))
    return out


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_any_key, _any_value, _any_int, _any_int), max_size=6))
def test_plain_metric_entries_agree_with_metric_by_metric_validation(rows):
    metrics = [Metric(k, val, ts, step) for k, val, ts, step in rows]
    plain = v.plain_metric_entries(metrics)
    if plain is None:
        return  # the slow way decides: nothing to compare
    # Accepted column-wise: each metric is valid, unchanged, and exactly what the slow way gives.
    slow = _slow_entries(metrics)
    assert plain == slow
    for (k, val, ts, step), m in zip(plain, metrics):
        assert type(val) is float and type(ts) is int and type(step) is int
        assert val is m.value and ts is m.timestamp and step is m.step


def test_plain_metric_entries_refuses_what_the_slow_way_must_judge():
    ok = Metric("loss", 1.0, 5, 1)
    assert v.plain_metric_entries([ok, ok]) == [("loss", 1.0, 5, 1)] * 2
    assert v.plain_metric_entries([]) is None  # nothing to gain: the slow way
    for bad in (
        Metric("loss", 1, 5, 1),  # an int value: converted by the slow way
        Metric("loss", True, 5, 1),
        Metric("loss", 1.0, -1, 1),
        Metric("loss", 1.0, 2**63, 1),
        Metric("loss", 1.0, 5, 2**63),
        Metric("loss", 1.0, 5, 1.0),
        Metric("bad?name", 1.0, 5, 1),
        Metric("../x", 1.0, 5, 1),
        Metric("k" * 251, 1.0, 5, 1),
        Metric(None, 1.0, 5, 1),
    ):
        assert v.plain_metric_entries([ok, bad]) is None
