"""Fuzzed logging calls: a valid call stores exactly what it was given, an invalid one raises
MlflowException (never another type) and stores nothing, and the writer survives either way."""

from __future__ import annotations

import math
import sqlite3

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from asynctrack import MlflowClient, MlflowException

MLFLOW_CODES = {"INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "INTERNAL_ERROR"}

VALID_KEYS = ["loss", "a/b", "x.y", "with space", "k:1", "-dash", "x" * 250, "ünï"]
keys = st.one_of(
    st.sampled_from(VALID_KEYS),
    st.sampled_from(VALID_KEYS),
    st.sampled_from(["", "..", "a/../b", "/abs", "bad!", "tab\t", "x" * 251]),
    st.text(max_size=12),
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
)
values = st.one_of(numbers, st.sampled_from(["1.5", "abc", "", "nan", "1e400"]), st.none())
steps = st.one_of(
    st.none(), st.integers(0, 10**6), st.integers(0, 10**6),
    st.integers(min_value=-(2**65), max_value=2**65), st.floats(), st.sampled_from(["3", "x"]),
)
timestamps = st.one_of(
    st.none(), st.none(), st.integers(0, 2**42),
    st.integers(min_value=-(2**65), max_value=2**65), st.floats(allow_nan=False), st.just("now"),
)

SETTINGS = settings(
    max_examples=500, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "mlflow.db"
    client = MlflowClient(f"sqlite:///{path}")
    run_id = client.create_run("0").info.run_id
    return client, run_id, path


def _rows(path, sql, *args):
    con = sqlite3.connect(path)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def _same_value(stored: float, given) -> bool:
    want = float(given)
    if math.isnan(want):
        return math.isnan(stored)
    if math.isinf(want):
        return stored == (1.7976931348623157e308 if want > 0 else -1.7976931348623157e308) or stored == want
    return stored == want


@SETTINGS
@given(key=keys, value=values, step=steps, timestamp=timestamps, synchronous=st.booleans())
def test_log_metric_stores_exactly_or_refuses_cleanly(store, key, value, step, timestamp, synchronous):
    client, run_id, path = store
    before = _rows(path, "SELECT count(*) FROM metrics")[0][0]
    error = None
    try:
        ops = client.log_metric(run_id, key, value, timestamp=timestamp, step=step, synchronous=synchronous)
        if ops is not None:
            ops.wait()
    except MlflowException as exc:
        error = exc
    # anything else (TypeError, OverflowError, sqlite3 errors...) fails the test by propagating
    client.flush()
    after = _rows(path, "SELECT count(*) FROM metrics")[0][0]
    event("refused" if error is not None else "stored")
    if error is not None:
        assert error.error_code in MLFLOW_CODES, error.error_code
        assert after == before, "a refused call stored something"
        return
    assert after in (before, before + 1)  # an identical point is stored once, as MLflow does
    history = client.get_metric_history(run_id, key)
    wanted_step = int(step) if step is not None else 0
    assert any(m.step == wanted_step and _same_value(m.value, value) for m in history), (
        key, value, step, [(m.step, m.value) for m in history][-3:]
    )


@SETTINGS
@given(key=keys, value=st.one_of(st.text(max_size=20), numbers, st.none(), st.just("v" * 6001)))
def test_log_param_stores_exactly_or_refuses_cleanly(store, key, value):
    client, run_id, path = store
    before = _rows(path, "SELECT count(*) FROM params")[0][0]
    existing = client.get_run(run_id).data.params.get(key) if isinstance(key, str) else None
    try:
        client.log_param(run_id, key, value)
    except MlflowException as exc:
        assert exc.error_code in MLFLOW_CODES
        assert _rows(path, "SELECT count(*) FROM params")[0][0] == before
        if existing is not None:
            assert client.get_run(run_id).data.params[key] == existing  # the first value stays
        return
    stored = client.get_run(run_id).data.params[key]
    assert stored == str(value)[:6000]  # MLflow truncates long param values (with a warning)


@SETTINGS
@given(key=keys, value=st.one_of(st.text(max_size=20), numbers, st.none()))
def test_set_tag_stores_exactly_or_refuses_cleanly(store, key, value):
    client, run_id, path = store
    before = _rows(path, "SELECT count(*) FROM tags")[0][0]
    try:
        client.set_tag(run_id, key, value)
    except MlflowException as exc:
        assert exc.error_code in MLFLOW_CODES
        assert _rows(path, "SELECT count(*) FROM tags")[0][0] == before
        return
    assert client.get_run(run_id).data.tags[key] == str(value)


def test_the_writer_is_alive_after_the_fuzzing(store):
    client, run_id, path = store
    client.log_metric(run_id, "after-fuzz", 1.0, step=123456, synchronous=False).wait()
    assert [m.step for m in client.get_metric_history(run_id, "after-fuzz")] == [123456]
    assert _rows(path, "PRAGMA integrity_check") == [("ok",)]
