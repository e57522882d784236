"""Module-level search_runs / search_experiments without the oracle: experiment resolution,
output formats, the empty DataFrame, and the error when pandas is not installed."""

from __future__ import annotations

import sys

import pytest

import asynctrack as mlflow
from asynctrack import MlflowException


@pytest.fixture
def tracking(fluent):
    """The fluent fixture's fresh store (conftest.py), with two experiments of three runs."""
    client = mlflow.MlflowClient()
    a = client.create_experiment("a")
    b = client.create_experiment("b")
    runs = {}
    for exp in (a, b):
        for i in range(3):
            run = client.create_run(exp, start_time=1000 + i, run_name=f"{exp}-{i}")
            client.log_metric(run.info.run_id, "m", float(i))
            client.log_param(run.info.run_id, "p", f"v{i}")
            runs.setdefault(exp, []).append(run.info.run_id)
    return {"a": a, "b": b, "runs": runs, "client": client}


def test_search_runs_resolves_experiments(tracking):
    a, b, runs = tracking["a"], tracking["b"], tracking["runs"]
    by_id = mlflow.search_runs([a], output_format="list")
    assert [r.info.run_id for r in by_id] == runs[a][::-1]  # start_time DESC
    by_name = mlflow.search_runs(experiment_names=["b", "missing"], output_format="list")
    assert [r.info.run_id for r in by_name] == runs[b][::-1]
    every = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert {r.info.run_id for r in every} == set(runs[a] + runs[b])
    mlflow.set_experiment(experiment_id=b)
    active = mlflow.search_runs(output_format="list", order_by=["metrics.m DESC"])
    assert [r.data.metrics["m"] for r in active] == [2.0, 1.0, 0.0]
    assert len(mlflow.search_runs([a, b], max_results=4, output_format="list")) == 4


def test_search_runs_errors(tracking):
    with pytest.raises(MlflowException, match="Only experiment_ids or experiment_names"):
        mlflow.search_runs([tracking["a"]], experiment_names=["a"])
    with pytest.raises(ValueError, match="Unsupported output format: csv"):
        mlflow.search_runs([tracking["a"]], output_format="csv")
    with pytest.raises(MlflowException, match="Invalid clause"):
        mlflow.search_runs([tracking["a"]], filter_string="metrics.m > 1 OR metrics.m < 0")


def test_search_runs_dataframe(tracking):
    pytest.importorskip("pandas")
    df = mlflow.search_runs([tracking["a"]], filter_string="params.p != 'v0'")
    assert list(df.columns[:6]) == [
        "run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"
    ]
    assert {"metrics.m", "params.p", "tags.mlflow.runName"} <= set(df.columns)
    assert len(df) == 2 and str(df["start_time"].dtype).startswith("datetime64")
    empty = mlflow.search_runs([tracking["a"]], filter_string="params.p = 'nope'")
    assert list(empty.columns) == [
        "run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"
    ] and len(empty) == 0


def test_search_runs_without_pandas(tracking, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError
    with pytest.raises(MlflowException, match=r"pip install 'asynctrack\[pandas\]'"):
        mlflow.search_runs([tracking["a"]])
    assert len(mlflow.search_runs([tracking["a"]], output_format="list")) == 3


def test_search_experiments(tracking):
    names = [e.name for e in mlflow.search_experiments(order_by=["name"])]
    assert names == ["Default", "a", "b"]
    assert [e.name for e in mlflow.search_experiments(filter_string="name = 'b'")] == ["b"]
    assert len(mlflow.search_experiments(max_results=2)) == 2
    page = tracking["client"].search_experiments(max_results=2)
    rest = tracking["client"].search_experiments(max_results=2, page_token=page.token)
    assert len(page) == 2 and len(rest) == 1 and rest.token is None


def test_experiment_workspace_store_first_then_environment(tracking, monkeypatch):
    """MLflow's order: the store's workspace, else MLFLOW_WORKSPACE, else "default" (the
    variable is read only when the store gives none: search_experiments builds one a row)."""
    from asynctrack.entities import Experiment

    monkeypatch.setenv("MLFLOW_WORKSPACE", " elsewhere ")
    assert {e.workspace for e in tracking["client"].search_experiments()} == {"default"}
    assert Experiment("1", "n", "loc", "active").workspace == "elsewhere"
    assert Experiment("1", "n", "loc", "active", workspace=" w ").workspace == "w"
    assert Experiment("1", "n", "loc", "active", workspace=" ").workspace == "elsewhere"
    monkeypatch.setenv("MLFLOW_WORKSPACE", "  ")
    assert Experiment("1", "n", "loc", "active").workspace == "default"
