"""The module-level artifact calls (``import asynctrack as mlflow``): to the active run, started
when there is none, and end_run waits for asynchronous copies."""

from __future__ import annotations

import os
import threading

import pytest

import asynctrack as mlflow
from asynctrack.entities import FileInfo
from asynctrack.store.artifact import LocalArtifactRepository


@pytest.fixture
def fluent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        monkeypatch.delenv(key)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    yield tmp_path
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def test_fluent_round_trip(fluent):
    tmp = fluent
    (tmp / "f.txt").write_text("f")
    (tmp / "d").mkdir()
    (tmp / "d" / "g.txt").write_text("g")
    with mlflow.start_run() as run:
        rid = run.info.run_id
        mlflow.log_artifact(str(tmp / "f.txt"))
        mlflow.log_artifacts(str(tmp / "d"), "dir")
        mlflow.log_text("t", "t.txt")
        mlflow.log_dict({"a": 1}, "d.json")
        assert mlflow.get_artifact_uri() == f"{tmp}/mlruns/0/{rid}/artifacts"
        assert mlflow.get_artifact_uri("x/y.txt") == f"{tmp}/mlruns/0/{rid}/artifacts/x/y.txt"
    client = mlflow.MlflowClient()
    assert client.list_artifacts(rid) == [
        FileInfo("d.json", False, 12),
        FileInfo("dir", True, None),
        FileInfo("f.txt", False, 1),
        FileInfo("t.txt", False, 1),
    ]
    assert mlflow.artifacts.load_dict(f"runs:/{rid}/d.json") == {"a": 1}


def test_fluent_starts_a_run_and_takes_run_id(fluent):
    mlflow.log_text("x", "auto.txt")
    rid = mlflow.active_run().info.run_id
    mlflow.end_run()
    other = mlflow.MlflowClient().create_run("0").info.run_id
    mlflow.log_text("y", "named.txt", run_id=other)
    assert mlflow.active_run() is None
    assert [f.path for f in mlflow.MlflowClient().list_artifacts(rid)] == ["auto.txt"]
    assert [f.path for f in mlflow.MlflowClient().list_artifacts(other)] == ["named.txt"]


def test_end_run_waits_for_async_copies(fluent, monkeypatch):
    tmp = fluent
    (tmp / "f.txt").write_text("f")
    gate = threading.Event()
    real = LocalArtifactRepository.log_artifact

    def gated(self, local_file, artifact_path=None):
        gate.wait()
        real(self, local_file, artifact_path)

    monkeypatch.setattr(LocalArtifactRepository, "log_artifact", gated)
    with mlflow.start_run() as run:
        ops = mlflow.log_artifact(str(tmp / "f.txt"), synchronous=False)
        threading.Timer(0.05, gate.set).start()
    # the run ended only once the copy was in place
    assert os.path.exists(os.path.join(run.info.artifact_uri, "f.txt"))
    ops.wait()


def test_fluent_image_figure_table(fluent):
    np = pytest.importorskip("numpy")
    pytest.importorskip("PIL")
    pytest.importorskip("pandas")
    with mlflow.start_run() as run:
        ops = mlflow.log_image(np.zeros((3, 3), np.uint8), key="k", step=1)  # async by default
        ops.wait()
        mlflow.log_image(np.zeros((3, 3), np.uint8), "i.png")
        mlflow.log_table({"a": [1]}, "t.json")
        mlflow.log_table({"a": [2]}, "t.json")
        matplotlib = pytest.importorskip("matplotlib")
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(1, 1))
        mlflow.log_figure(fig, "f.svg")
        plt.close(fig)
    paths = [f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id)]
    assert paths == ["f.svg", "i.png", "images", "t.json"]
    assert mlflow.load_table("t.json", extra_columns=["run_id"]).to_dict("list") == {
        "a": [1, 2],
        "run_id": [run.info.run_id] * 2,
    }
    mlflow.flush_artifact_async_logging()
