"""Artifacts through a real ``mlflow server``'s proxy (``mlflow-artifacts:`` run roots): what
asynctrack uploads MLflow's client lists and downloads identically, and the other way round."""

from __future__ import annotations

import os

import pytest

import asynctrack
from asynctrack import MlflowClient
from asynctrack.exceptions import MlflowException
from asynctrack.store.artifact.http import resolve_uri
from tests.oracle import run

from ._servers import mlflow_server_session  # noqa: F401


def test_resolve_uri_is_mlflows():
    assert resolve_uri("mlflow-artifacts:/1/r/artifacts", "http://h:5000") == (
        "http://h:5000/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts"
    )
    assert resolve_uri("mlflow-artifacts://other:9/1/r", "https://h/prefix") == (
        "https://other:9/prefix/api/2.0/mlflow-artifacts/artifacts/1/r"
    )
    with pytest.raises(MlflowException, match="the tracking URI must be a valid http or https URI"):
        resolve_uri("mlflow-artifacts:/1", "sqlite:///x.db")


def test_artifacts_round_trip_with_mlflows_client(mlflow_server_session, tmp_path):  # noqa: F811
    url = mlflow_server_session.url
    client = MlflowClient(url)
    run_id = client.create_run(client.create_experiment("arts-" + os.urandom(4).hex())).info.run_id
    assert client.get_run(run_id).info.artifact_uri.startswith("mlflow-artifacts:/")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.bin").write_bytes(bytes(range(256)) * 10)
    client.log_artifact(run_id, str(src / "a.txt"))
    client.log_artifacts(run_id, str(src), "dir")
    client.log_text(run_id, "text ✓", "t/x.txt")
    client.log_dict(run_id, {"k": [1, 2]}, "d.json")
    assert [(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id)] == [
        ("a.txt", False, 5), ("d.json", False, 29), ("dir", True, None), ("t", True, None)
    ]
    assert [f.path for f in client.list_artifacts(run_id, "dir")] == ["dir/a.txt", "dir/sub"]
    assert client.list_artifacts(run_id, "a.txt") == []
    dst = tmp_path / "dst"
    dst.mkdir()
    local = client.download_artifacts(run_id, "dir", str(dst))
    assert (dst / "dir" / "sub" / "b.bin").read_bytes() == bytes(range(256)) * 10
    assert local == str(dst / "dir")
    asynctrack.set_tracking_uri(url)
    try:
        assert asynctrack.artifacts.load_text(f"runs:/{run_id}/t/x.txt") == "text ✓"
        assert asynctrack.artifacts.load_dict(f"runs:/{run_id}/d.json") == {"k": [1, 2]}
    finally:
        asynctrack.set_tracking_uri(None)
    theirs = run(
        """
        import mlflow, tempfile, os, hashlib
        mlflow.set_tracking_uri(ARGS["url"])
        c = mlflow.MlflowClient()
        d = c.download_artifacts(ARGS["run_id"], "dir", tempfile.mkdtemp())
        c.log_text(ARGS["run_id"], "from mlflow", "m/y.txt")
        _out({
            "listing": [[f.path, f.is_dir, f.file_size] for f in c.list_artifacts(ARGS["run_id"])],
            "text": mlflow.artifacts.load_text(f"runs:/{ARGS['run_id']}/t/x.txt"),
            "bin": hashlib.sha256(open(os.path.join(d, "sub", "b.bin"), "rb").read()).hexdigest(),
        })
        """,
        url=url, run_id=run_id,
    )
    import hashlib

    assert theirs["text"] == "text ✓"
    assert theirs["bin"] == hashlib.sha256(bytes(range(256)) * 10).hexdigest()
    assert theirs["listing"] == [["a.txt", False, 5], ["d.json", False, 29], ["dir", True, None], ["m", True, None], ["t", True, None]]
    # MLflow 3.18 downloads a runs' artifact into dst/<basename> (asynctrack does the same)
    assert client.download_artifacts(run_id, "m/y.txt", str(dst)) == str(dst / "y.txt")
    assert (dst / "y.txt").read_text() == "from mlflow"


def test_missing_artifact_is_an_mlflow_exception(mlflow_server_session, tmp_path):  # noqa: F811
    client = MlflowClient(mlflow_server_session.url)
    run_id = client.create_run("0").info.run_id
    with pytest.raises(MlflowException):
        client.download_artifacts(run_id, "nope.txt", str(tmp_path))
