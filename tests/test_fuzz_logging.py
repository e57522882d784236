"""Fuzzed logging calls: a valid call stores exactly what it was given, an invalid one raises
MlflowException (never another type) and stores nothing, and the writer survives either way.

What "valid" and "exactly" mean is a model of MLflow 3.18's rules (below, each with the MLflow
function it is read from), not a memory of them: tests/test_property_models_vs_mlflow.py feeds
the boundary cases (BOUNDARY_*) through MLflow itself and checks the model's verdicts against
what MLflow stores or refuses. The boundaries are also @example cases here, so that they are
tried whatever examples a given hypothesis version happens to draw."""

from __future__ import annotations

import math
import os
import posixpath
import re
import sqlite3

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from asynctrack import MlflowClient, MlflowException

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_FLOAT = 1.7976931348623157e308
REFUSED = "refused"

# -- the model: MLflow 3.18's rules, as its source states them ------------------------------------
# mlflow/utils/validation.py: MAX_ENTITY_KEY_LENGTH, MAX_PARAM_VAL_LENGTH, MAX_TAG_VAL_LENGTH,
# MAX_EXPERIMENT_NAME_LENGTH, MAX_EXPERIMENT_TAG_VAL_LENGTH.
MAX_KEY, MAX_PARAM_VALUE, MAX_TAG_VALUE, MAX_EXPERIMENT_NAME, MAX_EXPERIMENT_TAG_VALUE = 250, 6000, 8000, 500, 20000
# validation.validate_param_and_metric_name (no colon on Windows)
_NAME_CHARS = re.compile(r"[/\w.\- :]*" if os.name != "nt" else r"[/\w.\- ]*")


def name_ok(key) -> bool:
    """_validate_metric_name / _validate_param_name / _validate_tag_name, then the key's
    _validate_length_limit(..., MAX_ENTITY_KEY_LENGTH): allowed characters, a name that is its
    own normalised path (path_not_unique), at most 250 characters. (A non-string key crashes
    MLflow's re.fullmatch; asynctrack refuses it: test_validation's divergence table.)"""
    if not isinstance(key, str) or not _NAME_CHARS.fullmatch(key):
        return False
    norm = posixpath.normpath(key)
    if norm != key or norm == "." or norm.startswith("..") or norm.startswith("/"):
        return False
    return len(key) <= MAX_KEY


def param_model(key, value):
    """MlflowClient.log_param sends Param(key, str(value)); _validate_param cuts the value to
    6000 characters (_validate_length_limit(..., truncate=True), MLFLOW_TRUNCATE_LONG_VALUES
    defaulting to true). Param entities str() their value, so log_batch's params do the same."""
    return str(value)[:MAX_PARAM_VALUE] if name_ok(key) else REFUSED


def set_tag_model(key, value):
    """MlflowClient.set_tag sends RunTag(key, str(value)); _validate_tag cuts it to 8000."""
    return str(value)[:MAX_TAG_VALUE] if name_ok(key) else REFUSED


def batch_tag_model(key, value):
    """log_batch's tags reach _validate_tag as given (RunTag does not str() its value): None is
    stored as None, a string cut to 8000; any other value makes MLflow's len() raise TypeError,
    which asynctrack refuses with INVALID_PARAMETER_VALUE (test_validation's divergences)."""
    if not name_ok(key) or not (value is None or isinstance(value, str)):
        return REFUSED
    return value if value is None else value[:MAX_TAG_VALUE]


class _Now:
    def __repr__(self) -> str:
        return "NOW"


NOW = _Now()  # the timestamp the client fills in when given None


def _is_number(x) -> bool:
    return isinstance(x, (int, float))  # numbers.Number, for the types the fuzzing draws


def metric_model(key, value, timestamp, step, *, client_call=True):
    """(value, timestamp, step) as stored, REFUSED, or NOW in place of a timestamp of None.

    MlflowClient.log_metric: timestamp None -> now, step None -> 0, the value through
    convert_metric_value_to_float_if_possible (float(x); a string float() rejects stays a
    string). log_batch passes timestamp and step as given (client_call=False). Then
    _validate_metric: the name; value None or not a number (bool included once converted) ->
    refused; timestamp not a number or < 0 -> refused; step not a number -> refused. The store
    (SqlAlchemyStore.sanitize_metric_value): NaN stored as NaN (0 + is_nan), +-inf as +-MAX.

    Where MLflow's validator lets a number through that its SQL store then mangles or fails on
    (a step or timestamp that is not an int64: 1.5, inf, NaN, 2**63; a value float() overflows
    on), asynctrack refuses: the divergences tabled in test_validation.py."""
    if not name_ok(key):
        return REFUSED
    if client_call:
        timestamp = NOW if timestamp is None else timestamp
        step = 0 if step is None else step
    if value is None or isinstance(value, (list, dict)):
        return REFUSED
    if type(value) is not float:
        try:
            value = float(value)
        except ValueError:
            return REFUSED  # "abc": stays a string, then "Please specify value as a valid double"
        except OverflowError:
            return REFUSED  # 10**400: OverflowError escapes MLflow (a divergence)
    if timestamp is not NOW:
        if not _is_number(timestamp) or timestamp < 0 or not _int64(timestamp):
            return REFUSED
        timestamp = int(timestamp)
    if not _is_number(step) or not _int64(step):
        return REFUSED
    if math.isinf(value):
        value = MAX_FLOAT if value > 0 else -MAX_FLOAT
    return value, timestamp, int(step)



def _int64(x) -> bool:
    """A step or timestamp SQLite's INTEGER column keeps as that int (divergences above)."""
    if isinstance(x, float) and not (math.isfinite(x) and x.is_integer()):
        return False
    return INT64_MIN <= x <= INT64_MAX


def create_run_tag_model(value):
    """TrackingServiceClient.create_run passes RunTag(key, value) for each tag as given, and
    SqlAlchemyStore.create_run stores SqlTag(key=tag.key, value=tag.value) without
    _validate_tag: no key rule, no length limit, no truncation (8001 or 20001 characters are
    stored whole). SQLite's TEXT column keeps a number as CAST(x AS TEXT) (True -> '1', NaN ->
    NULL, inf -> 'Inf'); an int beyond int64 fails to bind (INTERNAL_ERROR)."""
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        return REFUSED
    return value if value is None or isinstance(value, str) else _as_sqlite_text(value)


def experiment_name_model(name):
    """_validate_experiment_name: None, blank (str.strip()), not a string, > 500 -> refused."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_EXPERIMENT_NAME:
        return REFUSED
    return name


def experiment_tag_model(key, value):
    """_validate_experiment_tag: the tag-name rule, key <= 250 and value <= 20000 characters
    (refused, not cut: no truncate=True); a non-string value crashes MLflow's len() (TypeError),
    asynctrack refuses it."""
    if not name_ok(key) or not (value is None or isinstance(value, str)):
        return REFUSED
    if value is not None and len(value) > MAX_EXPERIMENT_TAG_VALUE:
        return REFUSED
    return value


def _as_sqlite_text(value):
    con = sqlite3.connect(":memory:")
    try:
        return con.execute("SELECT CAST(? AS TEXT)", (value,)).fetchone()[0]
    finally:
        con.close()


# -- boundary cases: @example here, fed through MLflow by test_property_models_vs_mlflow.py ------
NAN, INF = float("nan"), float("inf")
BOUNDARY_KEYS = [
    "x" * 250, "x" * 251, "é" * 250, "é" * 251, "", " ", ".", "..", "a/../b", "a//b", "a/", "/abs", "./a",
    "a..b", "k:1", "a\\b", "tab\t", "new\nline", "日本", "٣", "mlflow.x", "bad!",
]
BOUNDARY_VALUES = [0, 1, 250, 251, 5000, 5001, 6000, 6001, 8000, 8001, 20000, 20001]  # lengths
BOUNDARY_OTHER_VALUES = [None, "", " ", "ünï", "\x00", True, 1, -0.0, NAN, INF, -INF, INT64_MAX, INT64_MAX + 1, 2**70]
BOUNDARY_METRIC_VALUES = [NAN, INF, -INF, -0.0, 5e-324, MAX_FLOAT, 2**70, True, "1.5", "nan", "1e400", "abc", "", None]
BOUNDARY_STEPS = [None, 0, -1, INT64_MAX, INT64_MIN, INT64_MAX + 1, INT64_MIN - 1, 3.0, 1.5, INF, NAN, -0.0, True, "3"]
BOUNDARY_TIMESTAMPS = [None, 0, -1, INT64_MAX, INT64_MAX + 1, 3.0, 1.5, INF, NAN, -0.0, True, "now"]
BOUNDARY_NAMES = ["", " ", "\u2028", "x" * 500, "x" * 501, "a/b", None, 1, 1.5, True]


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
long_values = st.sampled_from(["v" * n for n in BOUNDARY_VALUES if n > 200])

SETTINGS = settings(
    max_examples=500, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _examples(**cases):
    """@example for each combination listed: one argument varied, the others fixed."""
    def decorate(fn):
        for name, (fixed, variants) in cases.items():
            for variant in variants:
                fn = example(**{**fixed, name: variant})(fn)
        return fn
    return decorate


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


def _refusal_code(synchronous: bool) -> str:
    """MLflow's asynchronous logging reports a refused record from RunOperations.wait() as
    INTERNAL_ERROR "The following failures occurred while performing one or more async logging
    operations: [...]" (mlflow/utils/async_logging/run_operations.py); a synchronous call raises
    the validator's INVALID_PARAMETER_VALUE."""
    return "INVALID_PARAMETER_VALUE" if synchronous else "INTERNAL_ERROR"


def _same_value(stored: float, want: float) -> bool:
    return math.isnan(stored) if math.isnan(want) else stored == want


_METRIC = dict(key="loss", value=1.0, step=1, timestamp=5, synchronous=True)


@SETTINGS
@given(key=keys, value=values, step=steps, timestamp=timestamps, synchronous=st.booleans())
@_examples(
    key=(_METRIC, BOUNDARY_KEYS),
    value=(_METRIC, BOUNDARY_METRIC_VALUES),
    step=(_METRIC, BOUNDARY_STEPS),
    timestamp=(_METRIC, BOUNDARY_TIMESTAMPS),
)
def test_log_metric_stores_exactly_or_refuses_cleanly(store, key, value, step, timestamp, synchronous):
    client, run_id, path = store
    want = metric_model(key, value, timestamp, step)
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
    if want == REFUSED:
        assert error is not None, ("MLflow refuses this", key, value, step, timestamp)
        assert error.error_code == _refusal_code(synchronous), error.error_code
        assert after == before, "a refused call stored something"
        return
    assert error is None, ("MLflow stores this", key, value, step, timestamp, error)
    assert after in (before, before + 1)  # an identical point is stored once, as MLflow does
    value_, timestamp_, step_ = want
    history = client.get_metric_history(run_id, key)
    assert any(
        m.step == step_ and _same_value(m.value, value_) and (timestamp_ is NOW or m.timestamp == timestamp_)
        for m in history
    ), (key, value, step, timestamp, [(m.step, m.value, m.timestamp) for m in history][-3:])


_PARAM = dict(key="p", value="v")


@SETTINGS
@given(key=keys, value=st.one_of(st.text(max_size=20), numbers, st.none(), long_values))
@_examples(
    key=(_PARAM, BOUNDARY_KEYS),
    value=(_PARAM, ["é" * n for n in BOUNDARY_VALUES] + BOUNDARY_OTHER_VALUES),
)
def test_log_param_stores_exactly_or_refuses_cleanly(store, key, value):
    client, run_id, path = store
    want = param_model(key, value)
    before = _rows(path, "SELECT count(*) FROM params")[0][0]
    existing = client.get_run(run_id).data.params.get(key) if isinstance(key, str) else None
    try:
        client.log_param(run_id, key, value)
    except MlflowException as exc:
        assert exc.error_code == "INVALID_PARAMETER_VALUE", exc.error_code
        assert _rows(path, "SELECT count(*) FROM params")[0][0] == before
        # refused: a bad key, or a param logged before with another value (the first stays)
        assert want == REFUSED or existing not in (None, want), (key, value, exc)
        if existing is not None:
            assert client.get_run(run_id).data.params[key] == existing
        return
    assert want != REFUSED, ("MLflow refuses this", key, value)
    assert existing in (None, want)
    assert client.get_run(run_id).data.params[key] == want


_TAG = dict(key="t", value="v")


@SETTINGS
@given(key=keys, value=st.one_of(st.text(max_size=20), numbers, st.none(), long_values))
@_examples(
    key=(_TAG, BOUNDARY_KEYS),
    value=(_TAG, ["v" * n for n in BOUNDARY_VALUES] + BOUNDARY_OTHER_VALUES),
)
def test_set_tag_stores_exactly_or_refuses_cleanly(store, key, value):
    client, run_id, path = store
    want = set_tag_model(key, value)
    before = _rows(path, "SELECT count(*) FROM tags")[0][0]
    try:
        client.set_tag(run_id, key, value)
    except MlflowException as exc:
        assert exc.error_code == "INVALID_PARAMETER_VALUE", exc.error_code
        assert want == REFUSED, ("MLflow stores this", key, value, exc)
        assert _rows(path, "SELECT count(*) FROM tags")[0][0] == before
        return
    assert want != REFUSED, ("MLflow refuses this", key, value)
    assert client.get_run(run_id).data.tags[key] == want


metric_entities = st.builds(
    lambda key, value, timestamp, step: (key, value, timestamp, step),
    keys, values, timestamps, steps,
)
short_values = st.one_of(st.text(max_size=10), numbers, st.none(), long_values)


def _batch_examples():
    """One bad or boundary element at a time, beside a valid one of each kind."""
    ok = dict(metrics=[("m", 1.0, 5, 1)], params=[("p", "v")], tags=[("t", "v")], synchronous=True)
    out = [ok]
    out += [{**ok, "tags": [("t", "v" * n)]} for n in BOUNDARY_VALUES]
    out += [{**ok, "params": [("p", "v" * n)]} for n in BOUNDARY_VALUES]
    out += [{**ok, "tags": [("t", v)]} for v in BOUNDARY_OTHER_VALUES]
    out += [{**ok, "params": [("p", v)]} for v in BOUNDARY_OTHER_VALUES]
    out += [{**ok, "tags": [(k, "v")]} for k in BOUNDARY_KEYS]
    out += [{**ok, "metrics": [("m", 1.0, 5, s)]} for s in BOUNDARY_STEPS]
    out += [{**ok, "metrics": [("m", 1.0, t, 1)]} for t in BOUNDARY_TIMESTAMPS]
    out += [{**ok, "metrics": [("m", v, 5, 1)]} for v in BOUNDARY_METRIC_VALUES]
    out += [{**ok, "params": [("p", "a"), ("p", "a")]}, {**ok, "tags": [("t", "a"), ("t", "b")]}]
    out += [{**ok, "tags": [("t", 0.0), ("t", "")]}]  # a refused tag, then the same key valid
    return out


def _with_examples(cases):
    def decorate(fn):
        for case in cases:
            fn = example(**case)(fn)
        return fn
    return decorate


def batch_model(metrics, params, tags):
    """MLflow's log_batch (_validate_batch_log_data, then _validate_param_keys_unique): every
    element valid, or the whole call refused; a repeated param key refuses it; a repeated tag
    key keeps the last value."""
    if len({k for k, _ in params}) != len(params):
        return REFUSED
    stored_metrics = [metric_model(k, v, t, s, client_call=False) for k, v, t, s in metrics]
    stored_params = [(k, param_model(k, v)) for k, v in params]
    stored_tags = [(k, batch_tag_model(k, v)) for k, v in tags]  # each one validated
    if REFUSED in stored_metrics or REFUSED in [v for _, v in stored_params + stored_tags]:
        return REFUSED
    return stored_metrics, dict(stored_params), dict(stored_tags)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    metrics=st.lists(metric_entities, max_size=6),
    params=st.lists(st.tuples(keys, short_values), max_size=4),
    tags=st.lists(st.tuples(keys, short_values), max_size=4),
    synchronous=st.booleans(),
)
@_with_examples(_batch_examples())
def test_log_batch_stores_all_of_it_or_none_of_it(store, metrics, params, tags, synchronous):
    """A batch is validated whole, as MLflow's: one bad element refuses the call and nothing of
    it is stored, never a partial write; a valid one stores each element exactly."""
    from asynctrack.entities import Metric, Param, RunTag

    client, _, path = store
    run_id = client.create_run("0").info.run_id  # a run of its own: counts are this batch's
    want = batch_model(metrics, params, tags)
    entities = (
        [Metric(k, v, t, s) for k, v, t, s in metrics],
        [Param(k, v) for k, v in params],
        [RunTag(k, v) for k, v in tags],
    )
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
    if want == REFUSED:
        assert error is not None, ("MLflow refuses this batch", metrics, params, tags)
        assert error.error_code == _refusal_code(synchronous), error.error_code
        assert (count["metrics"], count["params"], user_tags) == (0, 0, 0), "a refused batch stored something"
        return
    assert error is None, ("MLflow stores this batch", metrics, params, tags, error)
    stored_metrics, stored_params, stored_tags = want
    assert count["metrics"] <= len(metrics) and (count["metrics"] > 0) == bool(metrics)
    for (key, *_), (value, timestamp, step) in zip(metrics, stored_metrics):
        assert any(m.step == step and m.timestamp == timestamp and _same_value(m.value, value)
                   for m in client.get_metric_history(run_id, key)), (key, value, timestamp, step)
    run = client.get_run(run_id)
    assert run.data.params == stored_params
    assert {k: v for k, v in run.data.tags.items() if k in stored_tags} == stored_tags


def test_the_writer_is_alive_after_the_fuzzing(store):
    client, run_id, path = store
    client.log_metric(run_id, "after-fuzz", 1.0, step=123456, synchronous=False).wait()
    assert [m.step for m in client.get_metric_history(run_id, "after-fuzz")] == [123456]
    assert _rows(path, "PRAGMA integrity_check") == [("ok",)]


names = st.one_of(st.text(max_size=12), st.sampled_from(["", " ", "x" * 600, "a/b", "Default"]), st.none(), numbers)
tag_maps = st.one_of(st.none(), st.dictionaries(keys, short_values, max_size=3))


def _creation_examples():
    ok = dict(name=None, tags=None, run_name="r", run_tags=None)
    out = [{**ok, "name": n} for n in BOUNDARY_NAMES]
    out += [{**ok, "name": f"e-{n}", "run_tags": {"t": "v" * n}} for n in BOUNDARY_VALUES]
    out += [{**ok, "name": f"f-{n}", "tags": {"t": "v" * n}} for n in BOUNDARY_VALUES]
    out += [{**ok, "name": f"g-{i}", "run_tags": {"t": v}} for i, v in enumerate(BOUNDARY_OTHER_VALUES)]
    out += [{**ok, "name": f"h-{i}", "tags": {"t": v}} for i, v in enumerate(BOUNDARY_OTHER_VALUES)]
    out += [{**ok, "name": f"i-{i}", "run_tags": {k: "v"}} for i, k in enumerate(BOUNDARY_KEYS)]
    out += [{**ok, "name": f"j-{i}", "tags": {k: "v"}} for i, k in enumerate(BOUNDARY_KEYS)]
    out += [{**ok, "name": f"k-{i}", "run_name": n} for i, n in enumerate(BOUNDARY_NAMES + [2**70])]
    return out


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=names, tags=tag_maps, run_name=names, run_tags=tag_maps)
@_with_examples(_creation_examples())
def test_client_creations_store_exactly_or_refuse_cleanly(store, name, tags, run_name, run_tags):
    """create_experiment and create_run with names and tags of every type: created with exactly
    what was given, or refused with an MLflow code and nothing created."""
    client, _, path = store
    experiments = _rows(path, "SELECT count(*) FROM experiments")[0][0]
    want_name = experiment_name_model(name)
    want_tags = {k: experiment_tag_model(k, v) for k, v in (tags or {}).items()}
    try:
        experiment_id = client.create_experiment(name, tags=tags)
    except MlflowException as exc:
        assert _rows(path, "SELECT count(*) FROM experiments")[0][0] == experiments
        if exc.error_code == "RESOURCE_ALREADY_EXISTS":
            assert client.get_experiment_by_name(name) is not None
            return
        assert exc.error_code == "INVALID_PARAMETER_VALUE", exc.error_code
        assert REFUSED in (want_name, *want_tags.values()), ("MLflow creates this", name, tags, exc)
        return
    assert REFUSED not in (want_name, *want_tags.values()), ("MLflow refuses this", name, tags)
    experiment = client.get_experiment(experiment_id)
    assert experiment.name == name
    assert experiment.tags == want_tags
    runs = _rows(path, "SELECT count(*) FROM runs")[0][0]
    want_run_tags = {k: create_run_tag_model(v) for k, v in (run_tags or {}).items()}
    if isinstance(run_name, int) and not INT64_MIN <= run_name <= INT64_MAX:
        want_run_tags["mlflow.runName"] = REFUSED  # bound as the run's name and its tag
    try:
        run = client.create_run(experiment_id, run_name=run_name, tags=run_tags)
    except MlflowException as exc:
        assert exc.error_code == "INTERNAL_ERROR", exc.error_code
        assert exc.message == "Python int too large to convert to SQLite INTEGER"
        assert REFUSED in want_run_tags.values(), ("MLflow creates this", run_name, run_tags, exc)
        assert _rows(path, "SELECT count(*) FROM runs")[0][0] == runs
        return
    assert REFUSED not in want_run_tags.values(), ("MLflow refuses this", run_name, run_tags)
    stored = client.get_run(run.info.run_id)
    for k, want in want_run_tags.items():
        if not k.startswith("mlflow."):
            assert stored.data.tags[k] == want, (k, run_tags[k])
