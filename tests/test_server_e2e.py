"""asynctrack's client against ``asynctrack server``, end to end, and the same client against a
real ``mlflow server`` as the judge: each scenario runs once per server and what it saw
(entities, pages, errors, artifact listings and contents) must be the same once the ids each
server chose are replaced by labels.

Both servers run in subprocesses (``_servers.py``, ``_asynctrack_server.py``); the scenarios use
their own experiments, so the session servers are shared with other tests."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

import asynctrack
from asynctrack import MlflowClient
from asynctrack.entities import Metric, Param, RunTag, ViewType
from asynctrack.exceptions import MlflowException

from ._asynctrack_server import asynctrack_server_session  # noqa: F401
from ._servers import mlflow_server_session  # noqa: F401

httpx = pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def servers(asynctrack_server_session, mlflow_server_session):  # noqa: F811
    return {"asynctrack": asynctrack_server_session.url, "mlflow": mlflow_server_session.url}


class Labels:
    """Ids a server chose, replaced by stable labels in everything a scenario records."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def add(self, value: str, label: str) -> str:
        self.ids[str(value)] = label
        return value

    def __call__(self, obj: Any) -> Any:
        if isinstance(obj, str):
            if obj in self.ids:
                return self.ids[obj]
            for value, label in sorted(self.ids.items(), key=lambda kv: -len(kv[0])):
                if len(value) >= 8:  # run ids and random names; short experiment ids: whole only
                    obj = obj.replace(value, label)
            return obj
        if isinstance(obj, dict):
            return {self(k): self(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self(v) for v in obj]
        if isinstance(obj, set):
            return sorted(self(v) for v in obj)
        if isinstance(obj, float) and math.isnan(obj):
            return "NaN"
        return obj


def _same(ours: dict, theirs: dict) -> None:
    """Equal, key by key (so that a failure names the part that differs)."""
    assert sorted(ours) == sorted(theirs)
    for key in ours:
        if isinstance(ours[key], list) and isinstance(theirs[key], list) and len(ours[key]) == len(theirs[key]):
            for i, (a, b) in enumerate(zip(ours[key], theirs[key])):
                assert (key, i, a) == (key, i, b)
        assert (key, ours[key]) == (key, theirs[key])


def _error(fn, *args, **kwargs) -> tuple[str, str]:
    with pytest.raises(MlflowException) as info:
        fn(*args, **kwargs)
    return info.value.error_code, re.sub(r"\b1\d{12}\b", "<ms>", info.value.message)  # no times


def _run_view(run) -> dict:
    info = run.info
    tags = {k: v for k, v in run.data.tags.items()}
    return {
        "run_id": info.run_id, "name": info.run_name, "experiment_id": info.experiment_id,
        "status": info.status, "start_time": info.start_time, "end_time": info.end_time,
        "lifecycle_stage": info.lifecycle_stage, "user_id": info.user_id,
        "artifact_uri": info.artifact_uri.replace(f":/{info.experiment_id}/", ":/EXP/"),
        "metrics": run.data.metrics, "params": run.data.params, "tags": tags,
    }


# -- runs and experiments through MlflowClient ---------------------------------------------------
def _client_scenario(url: str) -> Any:
    labels = Labels()
    tag = uuid.uuid4().hex[:10]
    labels.add(tag, "TAG")
    c = MlflowClient(url)
    seen: dict[str, Any] = {}
    exp = labels.add(c.create_experiment(f"e2e-{tag}", tags={"team": "a"}), "EXP")
    others = [labels.add(c.create_experiment(f"e2e-{tag}-{i}"), f"EXP{i}") for i in range(3)]
    c.set_experiment_tag(exp, "phase", "1")
    c.delete_experiment_tag(exp, "team")
    c.rename_experiment(others[0], f"e2e-{tag}-renamed")
    c.delete_experiment(others[1])
    e = c.get_experiment(exp)
    seen["experiment"] = [e.experiment_id, e.name, e.lifecycle_stage, e.tags, e.artifact_location.split("/")[-1]]
    seen["by_name"] = c.get_experiment_by_name(f"e2e-{tag}-renamed").experiment_id
    seen["missing_by_name"] = c.get_experiment_by_name(f"e2e-{tag}-nope")
    pages, token = [], None
    while True:
        page = c.search_experiments(
            view_type=ViewType.ALL, max_results=2, filter_string=f"name LIKE 'e2e-{tag}%'",
            order_by=["name DESC"], page_token=token,
        )
        pages.append([(x.name, x.lifecycle_stage) for x in page])
        token = page.token
        if not token:
            break
    seen["experiment_pages"] = pages
    c.restore_experiment(others[1])
    seen["restored"] = c.get_experiment(others[1]).lifecycle_stage

    runs = []
    for i in range(5):
        r = c.create_run(exp, start_time=1000 + i, tags={"i": str(i)}, run_name=f"r{i}")
        run_id = labels.add(r.info.run_id, f"RUN{i}")
        runs.append(run_id)
        c.log_param(run_id, "lr", str(i / 10))
        c.log_metric(run_id, "loss", 1.0 / (i + 1), timestamp=5, step=0)
        for s in range(1, 30):  # asynchronous: coalesced into log-batch requests
            c.log_metric(run_id, "loss", 1.0 / (i + 1) / (s + 1), timestamp=5 + s, step=s, synchronous=False)
        c.log_param(run_id, "async", "yes", synchronous=False)
        c.set_tag(run_id, "async", "yes", synchronous=False)
        c.log_batch(run_id, metrics=[Metric("acc", i * 0.1, 7, 0), Metric("acc", float("nan"), 8, 1)],
                    params=[Param("opt", "sgd")], tags=[RunTag("k", "v")])
        c.set_tag(run_id, "gone", "x")
        c.delete_tag(run_id, "gone")
    c.flush()
    c.set_terminated(runs[0], "FINISHED", end_time=2000)
    c.set_terminated(runs[1], "FAILED", end_time=2001)
    c.update_run(runs[2], name="renamed")
    c.delete_run(runs[4])
    c.delete_run(runs[3])
    c.restore_run(runs[3])
    seen["runs"] = [_run_view(c.get_run(r)) for r in runs]
    seen["history"] = [[(m.step, m.timestamp, m.value) for m in c.get_metric_history(r, "loss")] for r in runs]
    seen["nan_history"] = [[(m.step, m.value) for m in c.get_metric_history(runs[0], "acc")]]
    pages, token = [], None
    while True:
        page = c.search_runs(
            [exp], "metrics.loss < 0.6 and params.opt = 'sgd'", order_by=["metrics.loss ASC"],
            max_results=2, page_token=token,
        )
        pages.append([r.info.run_id for r in page])
        token = page.token
        if not token:
            break
    seen["run_pages"] = pages
    seen["deleted_only"] = [r.info.run_id for r in c.search_runs([exp], run_view_type=ViewType.DELETED_ONLY)]
    seen["all"] = {r.info.run_id for r in c.search_runs([exp, others[2]], run_view_type=ViewType.ALL)}
    seen["by_tag"] = [r.info.run_id for r in c.search_runs([exp], "tags.i = '2' and attributes.run_name = 'renamed'")]
    seen["errors"] = [
        _error(c.get_run, "f" * 32),
        _error(c.log_param, runs[0], "lr", "changed"),
        _error(c.create_experiment, f"e2e-{tag}"),
        _error(c.get_experiment, "123456789"),
        _error(c.search_runs, [exp], "metrics.loss <"),
        _error(c.log_metric, runs[4], "late", 1.0),  # a deleted run
        _error(c.set_terminated, runs[0], "NOPE"),
    ]
    return labels(seen)


def test_client_lifecycle_logging_and_search_as_mlflow_server(servers):
    ours = _client_scenario(servers["asynctrack"])
    theirs = _client_scenario(servers["mlflow"])
    _same(ours, theirs)
    # and what it is, exactly
    assert [len(h) for h in ours["history"]] == [30] * 5
    assert ours["run_pages"] == [["RUN3", "RUN2"], ["RUN1", "RUN0"]]
    assert ours["all"] == ["RUN0", "RUN1", "RUN2", "RUN3", "RUN4"] and ours["by_tag"] == ["RUN2"]
    assert ours["experiment_pages"][0] == [["e2e-TAG-renamed", "active"], ["e2e-TAG-2", "active"]]
    assert len(ours["errors"]) == 7 and ours["errors"][0][0] == "RESOURCE_DOES_NOT_EXIST"
    assert ours["runs"][0]["params"] == {"lr": "0.0", "async": "yes", "opt": "sgd"}
    assert ours["deleted_only"] == ["RUN4"]


# -- the fluent API -------------------------------------------------------------------------------
def _fluent_scenario(url: str) -> Any:
    labels = Labels()
    tag = uuid.uuid4().hex[:10]
    labels.add(tag, "TAG")
    asynctrack.set_tracking_uri(url)
    try:
        exp = asynctrack.set_experiment(f"fluent-{tag}")
        labels.add(exp.experiment_id, "EXP")
        with asynctrack.start_run(run_name="parent") as parent:
            labels.add(parent.info.run_id, "PARENT")
            asynctrack.log_param("a", 1)
            asynctrack.log_params({"b": 2, "c": "three"})
            asynctrack.log_metric("m", 1.5, step=0, timestamp=10)
            asynctrack.log_metrics({"x": 1.0, "y": 2.0}, step=1, timestamp=11)
            for s in range(200):
                asynctrack.log_metric("async", float(s), step=s, timestamp=100 + s, synchronous=False)
            asynctrack.set_tag("t", "u")
            asynctrack.set_tags({"v": "w"})
            with asynctrack.start_run(run_name="child", nested=True) as child:
                labels.add(child.info.run_id, "CHILD")
                asynctrack.log_metric("cm", 3.0, timestamp=12)
                asynctrack.log_text("fluent ✓", "notes/n.txt")
                asynctrack.log_dict({"a": 1}, "notes/d.json")
        asynctrack.flush_async_logging()
        c = MlflowClient(url)
        runs = [c.get_run(parent.info.run_id), c.get_run(child.info.run_id)]
        frame = asynctrack.search_runs(experiment_names=[f"fluent-{tag}"], order_by=["attributes.run_name"])
        listed = asynctrack.search_runs(output_format="list", filter_string="metrics.cm > 2")
        seen = {
            "runs": [_run_view(r) for r in runs],
            "parent_of_child": asynctrack.get_parent_run(child.info.run_id).info.run_id,
            "async": len(c.get_metric_history(parent.info.run_id, "async")),
            "columns": sorted(frame.columns),
            "names": list(frame["tags.mlflow.runName"]),
            "statuses": list(frame["status"]),
            "listed": [r.info.run_id for r in listed],
            "last": asynctrack.last_active_run().info.run_id,
            "child_artifacts": [
                (f.path, f.is_dir, f.file_size)
                for f in asynctrack.artifacts.list_artifacts(run_id=child.info.run_id, artifact_path="notes")
            ],
            "child_text": asynctrack.artifacts.load_text(f"runs:/{child.info.run_id}/notes/n.txt"),
            "experiments": [e.name for e in asynctrack.search_experiments(filter_string=f"name = 'fluent-{tag}'")],
        }
    finally:
        asynctrack.set_tracking_uri(None)
    seen = labels(seen)
    for view in seen["runs"]:  # where the test runs from, and when
        view["start_time"] = view["end_time"] = None
        for key in ("mlflow.source.name", "mlflow.user", "mlflow.source.git.commit"):
            view["tags"].pop(key, None)
    return seen


def test_fluent_api_as_mlflow_server(servers):
    ours = _fluent_scenario(servers["asynctrack"])
    theirs = _fluent_scenario(servers["mlflow"])
    _same(ours, theirs)
    assert ours["async"] == 200 and ours["names"] == ["child", "parent"] and ours["listed"] == ["CHILD"]
    assert ours["runs"][0]["params"] == {"a": "1", "b": "2", "c": "three"}


# -- artifacts ------------------------------------------------------------------------------------
def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def _artifact_scenario(url: str, work: Path) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = Labels()
    c = MlflowClient(url)
    exp = labels.add(c.create_experiment("arts-" + uuid.uuid4().hex), "EXP")
    run_id = labels.add(c.create_run(exp).info.run_id, "RUN")
    src = work / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.bin").write_bytes(bytes(range(256)) * 40)
    (work / "big.bin").write_bytes(b"\x5a" * (3 * 1024 * 1024 + 7))
    c.log_artifact(run_id, str(src / "a.txt"))
    c.log_artifact(run_id, str(work / "big.bin"), "blobs")
    c.log_artifacts(run_id, str(src), "dir")
    c.log_artifact(run_id, str(src / "sub"), "async", synchronous=False).wait()
    c.log_text(run_id, "text ✓\n", "t/x.txt")
    c.log_dict(run_id, {"k": [1, 2], "s": "ü"}, "d.json")
    c.log_dict(run_id, {"k": [1, 2]}, "conf/d.yaml")
    image = (np.arange(8 * 6 * 3) % 256).astype(np.uint8).reshape(8, 6, 3)
    c.log_image(run_id, image, "img/pic.png")
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1, 2], [2, 0, 1])
    c.log_figure(run_id, fig, "fig/plot.png")
    plt.close(fig)
    c.log_table(run_id, {"a": [1, 2], "b": ["x", "y"]}, "tables/t.json")
    c.log_table(run_id, {"a": [3], "b": ["z"]}, "tables/t.json")  # appended
    dst = work / "dst"
    dst.mkdir()
    downloaded = c.download_artifacts(run_id, "", str(dst))
    asynctrack.set_tracking_uri(url)
    try:
        loaded_image = asynctrack.artifacts.load_image(f"runs:/{run_id}/img/pic.png")
        table = c.load_table(exp, "tables/t.json")
        seen = {
            "root": [(f.path, f.is_dir, f.file_size) for f in c.list_artifacts(run_id)],
            "dir": [(f.path, f.is_dir, f.file_size) for f in c.list_artifacts(run_id, "dir")],
            "sub": [(f.path, f.is_dir, f.file_size) for f in c.list_artifacts(run_id, "dir/sub")],
            "file_listing": c.list_artifacts(run_id, "a.txt"),
            "tree": _tree(Path(downloaded)),
            "text": asynctrack.artifacts.load_text(f"runs:/{run_id}/t/x.txt"),
            "dict": asynctrack.artifacts.load_dict(f"runs:/{run_id}/d.json"),
            "yaml": asynctrack.artifacts.load_dict(f"runs:/{run_id}/conf/d.yaml"),
            "image": np.asarray(loaded_image).tolist() == image.tolist(),
            "table": table.to_dict(orient="list"),
            "one_file": Path(c.download_artifacts(run_id, "dir/sub/b.bin", str(work / "one"))).name,
            "missing": _error(c.download_artifacts, run_id, "nope.txt", str(work / "none"))[0],
        }
    finally:
        asynctrack.set_tracking_uri(None)
    return labels(seen)


def test_artifacts_as_mlflow_server(servers, tmp_path):
    ours = _artifact_scenario(servers["asynctrack"], tmp_path / "ours")
    theirs = _artifact_scenario(servers["mlflow"], tmp_path / "theirs")
    _same(ours, theirs)
    assert ours["image"] is True and ours["table"]["a"] == [1, 2, 3]
    assert ["blobs", True, None] in ours["root"] and len(ours["tree"]) == 11


# -- metric history past one page ----------------------------------------------------------------
def test_metric_history_past_25000_points(asynctrack_server_session):  # noqa: F811
    url = asynctrack_server_session.url
    c = MlflowClient(url)
    run_id = c.create_run(c.create_experiment("hist-" + uuid.uuid4().hex)).info.run_id
    n = 25_010
    for i in range(n):
        c.log_metric(run_id, "h", float(i), timestamp=1_000 + i, step=i, synchronous=False)
    c.flush()
    history = c.get_metric_history(run_id, "h")
    assert [m.step for m in history] == list(range(n))
    assert c.get_run(run_id).data.metrics == {"h": float(n - 1)}
    first = httpx.get(url + "/api/2.0/mlflow/metrics/get-history",
                      params={"run_id": run_id, "metric_key": "h", "max_results": 25_000}).json()
    assert len(first["metrics"]) == 25_000 and first["next_page_token"]
    second = httpx.get(url + "/api/2.0/mlflow/metrics/get-history", params={
        "run_id": run_id, "metric_key": "h", "max_results": 25_000, "page_token": first["next_page_token"],
    }).json()
    assert [m["step"] for m in second["metrics"]] == list(range(25_000, n)) and "next_page_token" not in second
    bulk = httpx.get(url + "/ajax-api/2.0/mlflow/metrics/get-history-bulk",
                     params={"run_id": run_id, "metric_key": "h"}).json()
    assert len(bulk["metrics"]) == 25_000 and bulk["metrics"][-1]["step"] == 24_999


# -- the UI's get-history-bulk, byte for byte --------------------------------------------------------
def _bulk_scenario(url: str) -> Any:
    labels = Labels()
    c = MlflowClient(url)
    exp = c.create_experiment("bulk-" + uuid.uuid4().hex)
    run_id = labels.add(c.create_run(exp).info.run_id, "RUN")
    other = labels.add(c.create_run(exp).info.run_id, "OTHER")
    points = [Metric("m", v, t, s) for v, t, s in [
        (3.0, 5, 2), (1.0, 5, 1), (float("nan"), 4, 9), (float("inf"), 6, 0), (-float("inf"), 6, 0),
        (2.5, 1, 7), (-0.0, 2, 2), (1e-300, 3, 3),
    ]]
    c.log_batch(run_id, metrics=points)
    c.log_batch(other, metrics=[Metric("m", 9.0, 1, 1), Metric("n", 1.0, 1, 1)])
    c.delete_run(other)
    path = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
    queries = [
        [("run_id", run_id), ("metric_key", "m")],
        [("run_id", run_id), ("metric_key", "m"), ("max_results", "3")],
        [("run_id", run_id), ("metric_key", "m"), ("max_results", "0")],
        [("run_id", run_id), ("metric_key", "m"), ("max_results", "-2")],
        [("run_id", run_id), ("run_id", run_id), ("metric_key", "m")],
        [("run_id", "f" * 32), ("metric_key", "m")],
        [("run_id", run_id), ("metric_key", "nope")],
        [("run_id", run_id)],
        [("metric_key", "m")],
        [("run_id", str(i)) for i in range(101)] + [("metric_key", "m")],
        [("run_id", run_id), ("metric_key", "m"), ("metric_key", "n")],
    ]
    seen = []
    for query in queries:
        r = httpx.get(url + path, params=query)
        seen.append((r.status_code, r.headers["content-type"], r.text))
    both = httpx.get(url + path, params=[("run_id", run_id), ("run_id", other), ("metric_key", "m")])
    grouped: dict[str, list] = {}
    for m in json.loads(both.text)["metrics"]:
        grouped.setdefault(m["run_id"], []).append((m["step"], m["timestamp"], m["value"]))
    seen.append((both.status_code, list(grouped) == sorted(grouped), grouped))
    for method, p in [("POST", path), ("GET", "/api/2.0/mlflow/metrics/get-history-bulk")]:
        r = httpx.request(method, url + p, params={"run_id": run_id, "metric_key": "m"})
        seen.append((method, p, r.status_code))
    return labels(dict(enumerate(seen)))


def test_get_history_bulk_as_mlflow_server(servers):
    ours = _bulk_scenario(servers["asynctrack"])
    theirs = _bulk_scenario(servers["mlflow"])
    _same(ours, theirs)
    assert ours[0][0] == 200 and json.loads(ours[0][2].replace("NaN", "null"))["metrics"][0]["step"] == 7


def test_get_history_bulk_refuses_a_non_integer_max_results(servers):
    """Deliberately not MLflow's answer: MLflow's handler lets int()'s ValueError escape (its
    500 page); asynctrack server says what is wrong, with MLflow's error JSON."""
    query = {"run_id": "f" * 32, "metric_key": "m", "max_results": "ten"}
    path = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
    theirs = httpx.get(servers["mlflow"] + path, params=query)
    assert theirs.status_code == 500
    ours = httpx.get(servers["asynctrack"] + path, params=query)
    body = ours.json()
    assert ours.status_code == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert body["message"] == "Invalid value 'ten' for parameter 'max_results': it must be an integer."


# -- the store hook the server uses ----------------------------------------------------------------
def test_store_for_uri_takes_the_servers_artifact_root(tmp_path):
    """``store_for_uri(uri, artifact_root=)``: the root of new experiments, fixed at creation."""
    from asynctrack.store import store_for_uri

    uri = f"sqlite:///{tmp_path / 'a.db'}"
    root = str(tmp_path / "arts")
    store = store_for_uri(uri, artifact_root=root)
    assert store_for_uri(uri) is store and store_for_uri(uri, artifact_root=root) is store
    client = MlflowClient(uri)
    exp = client.create_experiment("rooted")
    assert client.get_experiment(exp).artifact_location == f"{root}/{exp}"
    assert client.get_experiment("0").artifact_location == f"{root}/0"
    with pytest.raises(MlflowException) as info:
        store_for_uri(uri, artifact_root=str(tmp_path / "other"))
    assert info.value.error_code == "INVALID_PARAMETER_VALUE" and "already open" in info.value.message
    with pytest.raises(MlflowException) as info:
        store_for_uri("http://127.0.0.1:9/", artifact_root=root)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    client.flush()
