"""Shared fixtures: every fluent test gets its own store, working directory and clean state."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

import asynctrack as mlflow
from asynctrack import tracking_uri
from asynctrack.fluent import _experiments, _runs
from tests._postgres import postgres_server, postgres_template  # noqa: F401 (fixtures)
from tests._store_fixtures import parametrize_store_kind, tracking_uri_of_kind

# Hypothesis profiles. The suite's ("asynctrack", loaded unless --hypothesis-profile names
# another): every property test tries the same examples on every run of one hypothesis version
# (derandomize), and no example database replays one machine's failures on the next run. The
# boundaries each model depends on are @example cases, tried whatever the version draws.
# "fuzz" explores: `pytest --hypothesis-profile=fuzz --hypothesis-seed=N tests/test_fuzz_logging.py`
# (or --hypothesis-seed=N alone) draws new examples for each N.
settings.register_profile("asynctrack", derandomize=True, database=None)
settings.register_profile("fuzz", derandomize=False, database=None)


def pytest_configure(config):
    """The suite's profile, unless one is named; a --hypothesis-seed alone means "fuzz" (under
    derandomize a seed would change nothing)."""
    if not config.getoption("hypothesis_profile", None):
        seeded = config.getoption("hypothesis_seed", None) is not None
        settings.load_profile("fuzz" if seeded else "asynctrack")


def pytest_generate_tests(metafunc):
    """The store suite runs once per store kind (tests/_store_fixtures.py)."""
    parametrize_store_kind(metafunc)


@pytest.fixture
def fluent(store_kind, tmp_path, monkeypatch, request):
    """A fresh store of each kind as the tracking URI (``sqlite:///<tmp>/mlflow.db``, or a new
    PostgreSQL database), no active experiment or run, and no MLFLOW_* variables; the
    environment is put back afterwards (set_tracking_uri and set_experiment export variables,
    as MLflow's do)."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("MLFLOW_")]:
        del os.environ[name]
    monkeypatch.chdir(tmp_path)
    uri = tracking_uri_of_kind(store_kind, tmp_path, request)
    monkeypatch.setattr(tracking_uri, "_tracking_uri", uri)
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
