"""Shared fixtures of the artifact tests: a store in a temporary cwd, a client, a run."""

from __future__ import annotations

import os

import pytest

import asynctrack
from asynctrack import MlflowClient


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        monkeypatch.delenv(key)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    asynctrack.set_tracking_uri(uri)
    client = MlflowClient(uri)
    run = client.create_run("0")
    yield client, run.info.run_id, tmp_path
    client.flush()
    asynctrack.set_tracking_uri(None)


def files_under(root) -> list[str]:
    """Every file below ``root``, relative, sorted (temp files included: none may be left)."""
    out = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            out.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(out)
