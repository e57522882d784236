"""search_runs' DataFrame, built column by column, against MLflow 3.18's own ``_runs_to_pandas``
(copied below, unchanged) run on the same runs under whatever pandas is installed: pandas 2 and
3 infer different dtypes from the same lists (datetime units, ``str`` columns, all-None times),
and the oracle tests only see the oracle's pandas. Every cell, dtype, column and the index must
be the same, for runs read lazily from the store, runs read after their data was built, and
runs made by their constructors."""

from __future__ import annotations

import math

import pytest

from asynctrack.entities import Metric, Param, Run, RunData, RunInfo, RunTag
from asynctrack.fluent._search import runs_to_pandas
from tests._search_data import build_frames

pd = pytest.importorskip("pandas")


def _mlflow_runs_to_pandas(runs):
    """mlflow/tracking/fluent.py ``_runs_to_pandas``, MLflow 3.18.0 (Apache-2.0), verbatim."""
    import numpy as np
    import pandas as pd

    info = {
        "run_id": [],
        "experiment_id": [],
        "status": [],
        "artifact_uri": [],
        "start_time": [],
        "end_time": [],
    }
    params = {}
    metrics = {}
    tags = {}
    PARAM_NULL = None
    METRIC_NULL = np.nan
    TAG_NULL = None
    for i, run in enumerate(runs):
        info["run_id"].append(run.info.run_id)
        info["experiment_id"].append(run.info.experiment_id)
        info["status"].append(run.info.status)
        info["artifact_uri"].append(run.info.artifact_uri)
        info["start_time"].append(pd.to_datetime(run.info.start_time, unit="ms", utc=True))
        info["end_time"].append(pd.to_datetime(run.info.end_time, unit="ms", utc=True))

        # Params
        param_keys = set(params.keys())
        for key in param_keys:
            if key in run.data.params:
                params[key].append(run.data.params[key])
            else:
                params[key].append(PARAM_NULL)
        new_params = set(run.data.params.keys()) - param_keys
        for p in new_params:
            params[p] = [PARAM_NULL] * i  # Fill in null values for all previous runs
            params[p].append(run.data.params[p])

        # Metrics
        metric_keys = set(metrics.keys())
        for key in metric_keys:
            if key in run.data.metrics:
                metrics[key].append(run.data.metrics[key])
            else:
                metrics[key].append(METRIC_NULL)
        new_metrics = set(run.data.metrics.keys()) - metric_keys
        for m in new_metrics:
            metrics[m] = [METRIC_NULL] * i
            metrics[m].append(run.data.metrics[m])

        # Tags
        tag_keys = set(tags.keys())
        for key in tag_keys:
            if key in run.data.tags:
                tags[key].append(run.data.tags[key])
            else:
                tags[key].append(TAG_NULL)
        new_tags = set(run.data.tags.keys()) - tag_keys
        for t in new_tags:
            tags[t] = [TAG_NULL] * i
            tags[t].append(run.data.tags[t])

    data = {}
    data.update(info)
    for key, value in metrics.items():
        data["metrics." + key] = value
    for key, value in params.items():
        data["params." + key] = value
    for key, value in tags.items():
        data["tags." + key] = value
    return pd.DataFrame(data)


def _cell(value) -> tuple:
    """A cell told apart from every other: None, NaN, NaT, -0.0 and a Timestamp's unit too."""
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else value.hex())
    unit = getattr(value, "unit", None)
    return (type(value).__name__, repr(value), unit)


def assert_same_frame(ours, theirs) -> None:
    """Same columns (MLflow's order within metrics./params./tags. comes from a set, so only the
    groups' order and each group's members are compared), dtypes, index and cells."""
    assert list(ours.columns[:6]) == list(theirs.columns[:6])

    def groups(df):
        names = [c.split(".", 1)[0] for c in df.columns[6:]]
        return [g for i, g in enumerate(names) if i == 0 or names[i - 1] != g]

    assert groups(ours) == groups(theirs)
    assert sorted(ours.columns) == sorted(theirs.columns)
    theirs = theirs[list(ours.columns)]
    assert {c: str(t) for c, t in ours.dtypes.items()} == {c: str(t) for c, t in theirs.dtypes.items()}
    assert ours.index.equals(theirs.index) and type(ours.index) is type(theirs.index)
    for column in ours.columns:
        assert [_cell(v) for v in ours[column].tolist()] == [
            _cell(v) for v in theirs[column].tolist()
        ], column
    pd.testing.assert_frame_equal(ours, theirs, check_exact=True)


def _same_as_mlflow(runs) -> None:
    assert_same_frame(runs_to_pandas(runs), _mlflow_runs_to_pandas(runs))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_frames(f"sqlite:///{tmp_path_factory.mktemp('frame') / 'mlflow.db'}")


@pytest.mark.parametrize("which", ["mixed", "running", "empty"])
def test_frame_same_as_mlflow_lazy_runs(store, which):
    runs = store["client"].search_runs([store[which]])
    assert len(runs) == {"mixed": 5, "running": 3, "empty": 0}[which]
    _same_as_mlflow(runs)


def test_frame_same_as_mlflow_built_or_half_built_runs(store):
    """Runs whose data was read before (built parts) or only partly (some parts still raw)."""
    runs = store["client"].search_runs([store["mixed"], store["running"]])
    reads = [lambda d: d.metrics, lambda d: d.params, lambda d: d.tags, lambda d: None]
    for i, run in enumerate(runs):
        reads[i % len(reads)](run.data)  # builds one part of a run, or none
    states = [run.data.__dict__ for run in runs]
    assert any("_raw_params" in d for d in states) and any("_raw_params" not in d for d in states)
    _same_as_mlflow(runs)  # ours first: MLflow's reads build every part


def test_frame_same_as_mlflow_constructed_runs():
    """Runs made by the constructors (their parts built from the start): a metric key twice,
    end_time missing in some runs or all of them, times at 0."""
    def run(i, start, end, metrics=(), params=(), tags=()):
        info = RunInfo(f"r{i}", "0", "u", "FINISHED", start, end, "active", f"file:///a/{i}")
        return Run(info, RunData(list(metrics), list(params), list(tags)))

    runs = [
        run(0, 1_700_000_000_000, None, [Metric("m", 1.0, 0, 0), Metric("m", 2.0, 1, 1)]),
        run(1, 1, 5, params=[Param("p", "v")]),
        run(2, 0, 0, tags=[RunTag("t", "")]),
    ]
    _same_as_mlflow(runs)
    _same_as_mlflow(runs[:1])  # every end_time missing
    _same_as_mlflow([])


def test_frame_is_not_vacuous(store):
    """The comparison tells None from NaN from NaT, and the dtypes apart."""
    ours = runs_to_pandas(store["client"].search_runs([store["mixed"]]))
    broken = ours.copy()
    broken["end_time"] = broken["end_time"].astype(object)
    with pytest.raises(AssertionError):
        assert_same_frame(broken, ours)
    assert ours["metrics.m1"].isna().sum() == 3 and ours["end_time"].isna().sum() == 2
    assert ours["params.p1"].isna().sum() == 2 and str(ours["start_time"].dtype).endswith("UTC]")


def test_frame_same_as_mlflow_pairs_fallback(tmp_path):
    """A BLOB param (SQLite's JSON functions refuse it) makes the store read params and tags as
    key/value rows instead of JSON texts, and a run with none has no pairs at all."""
    import sqlite3

    from asynctrack import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment("blob")
    ids = []
    for i in range(3):
        run_id = client.create_run(exp, start_time=1 + i).info.run_id
        if i:
            client.log_param(run_id, "p", "v")
            client.set_tag(run_id, "t", "w")
        ids.append(run_id)
    client.flush()
    con = sqlite3.connect(tmp_path / "mlflow.db")
    with con:
        con.execute("UPDATE params SET value = x'00ff' WHERE run_uuid = ?", (ids[1],))
    con.close()
    runs = client.search_runs([exp])
    assert not any(type(run.data.__dict__["_raw_params"]) is str for run in runs)
    _same_as_mlflow(runs)
    assert runs_to_pandas(client.search_runs([exp]))["params.p"].tolist()[1] == b"\x00\xff"
