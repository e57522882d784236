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


metric_entities = st.builds(
    lambda key, value, timestamp, step: (key, value, timestamp, step),
    keys, values, timestamps, steps,
)
short_values = st.one_of(st.text(max_size=10), numbers, st.none(), st.just("v" * 8001))


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    metrics=st.lists(metric_entities, max_size=6),
    params=st.lists(st.tuples(keys, short_values), max_size=4),
    tags=st.lists(st.tuples(keys, short_values), max_size=4),
    synchronous=st.booleans(),
)
def test_log_batch_stores_all_of_it_or_none_of_it(store, metrics, params, tags, synchronous):
    """A batch is validated whole, as MLflow's: one bad element refuses the call and nothing of
    it is stored, never a partial write; a valid one stores each element exactly."""
    from asynctrack.entities import Metric, Param, RunTag

    client, _, path = store
    run_id = client.create_run("0").info.run_id  # a run of its own: counts are this batch's
    try:
        entities = (
            [Metric(k, v, t, s) for k, v, t, s in metrics],
            [Param(k, v) for k, v in params],
            [RunTag(k, v) for k, v in tags],
        )
    except Exception:  # noqa: BLE001 - entities take anything, as MLflow's do
        return
    error = None
    try:
        ops = client.log_batch(run_id, *entities, synchronous=synchronous)
        if ops is not None:
            ops.wait()
    except MlflowException as exc:
        error = exc
    client.flush()
    count = {t: _rows(path, f"SELECT count(*) FROM {t} WHERE run_uuid = ?", run_id)[0][0]
             for t in ("metrics", "params")}
    user_tags = _rows(path, "SELECT count(*) FROM tags WHERE run_uuid = ? AND key NOT LIKE 'mlflow.%'", run_id)[0][0]
    event("refused" if error is not None else "stored")
    if error is not None:
        assert error.error_code in MLFLOW_CODES, error.error_code
        assert (count["metrics"], count["params"], user_tags) == (0, 0, 0), "a refused batch stored something"
        return
    assert count["params"] == len({k for k, _ in params})
    assert count["metrics"] <= len(metrics) and (count["metrics"] > 0) == bool(metrics)
    stored_tags = client.get_run(run_id).data.tags
    for k, v in dict(tags).items():
        assert stored_tags[k] == (None if v is None else str(v)[:8000])  # None stays None, as in MLflow


def test_the_writer_is_alive_after_the_fuzzing(store):
    client, run_id, path = store
    client.log_metric(run_id, "after-fuzz", 1.0, step=123456, synchronous=False).wait()
    assert [m.step for m in client.get_metric_history(run_id, "after-fuzz")] == [123456]
    assert _rows(path, "PRAGMA integrity_check") == [("ok",)]


names = st.one_of(st.text(max_size=12), st.sampled_from(["", " ", "x" * 600, "a/b", "Default"]), st.none(), numbers)
tag_maps = st.one_of(st.none(), st.dictionaries(keys, short_values, max_size=3))


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=names, tags=tag_maps, run_name=names, run_tags=tag_maps)
def test_client_creations_store_exactly_or_refuse_cleanly(store, name, tags, run_name, run_tags):
    """create_experiment and create_run with names and tags of every type: created with exactly
    what was given, or refused with an MLflow code and nothing created."""
    client, _, path = store
    experiments = _rows(path, "SELECT count(*) FROM experiments")[0][0]
    try:
        experiment_id = client.create_experiment(name, tags=tags)
    except MlflowException as exc:
        assert exc.error_code in MLFLOW_CODES | {"RESOURCE_ALREADY_EXISTS"}, exc.error_code
        assert _rows(path, "SELECT count(*) FROM experiments")[0][0] == experiments
        return
    experiment = client.get_experiment(experiment_id)
    assert experiment.name == name
    assert {k: v for k, v in experiment.tags.items()} == {k: (None if v is None else str(v)) for k, v in (tags or {}).items()}
    runs = _rows(path, "SELECT count(*) FROM runs")[0][0]
    try:
        run = client.create_run(experiment_id, run_name=run_name, tags=run_tags)
    except MlflowException as exc:
        assert exc.error_code in MLFLOW_CODES, exc.error_code
        assert _rows(path, "SELECT count(*) FROM runs")[0][0] == runs
        return
    stored = client.get_run(run.info.run_id)
    for k, v in (run_tags or {}).items():
        if not k.startswith("mlflow."):  # as MLflow's: a number is kept as SQLite's TEXT casts it
            want = None if v is None else v[:8000] if isinstance(v, str) else _as_sqlite_text(v)
            assert stored.data.tags[k] == want


def _as_sqlite_text(value):
    con = sqlite3.connect(":memory:")
    try:
        return con.execute("SELECT CAST(? AS TEXT)", (value,)).fetchone()[0]
    finally:
        con.close()
