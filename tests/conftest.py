"""Shared fixtures: every fluent test gets its own store, working directory and clean state."""

from __future__ import annotations

import os

import pytest

import asynctrack as mlflow
from asynctrack import tracking_uri
from asynctrack.fluent import _experiments, _runs


@pytest.fixture
def fluent(tmp_path, monkeypatch):
    """A fresh ``sqlite:///<tmp>/mlflow.db`` as the tracking URI, no active experiment or run,
    and no MLFLOW_* variables; the environment is put back afterwards (set_tracking_uri and
    set_experiment export variables, as MLflow's do)."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("MLFLOW_")]:
        del os.environ[name]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tracking_uri, "_tracking_uri", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setattr(_experiments, "_active_experiment_id", None)
    try:
        yield mlflow
    finally:
        while _runs.active_run() is not None:
            mlflow.end_run()
        _runs._local.last_run_id = None
        mlflow.flush_async_logging()
        os.environ.clear()
        os.environ.update(saved)
