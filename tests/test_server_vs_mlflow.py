"""``asynctrack server`` against MLflow 3.18's own ``mlflow server``: the same MLflow-client
script (run in the oracle venv) and the same raw HTTP requests against both, results compared
after ids and clock times are normalised."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest

from . import oracle
from ._asynctrack_server import asynctrack_server
from ._servers import mlflow_server

httpx = pytest.importorskip("httpx")
pytestmark = pytest.mark.mlflow


@pytest.fixture(scope="module")
def servers():
    """A fresh pair (same experiment ids when driven the same way): (mlflow, asynctrack)."""
    if oracle.oracle_python() is None:
        pytest.skip("MLflow 3.18 oracle not installed (.venv-oracle)")
    with tempfile.TemporaryDirectory(prefix="server-pair-") as tmp:
        ours = asynctrack_server(Path(tmp) / "ours", workers=2).start()
        try:
            theirs = mlflow_server(Path(tmp) / "theirs").start()
        except BaseException:
            ours.stop()
            raise
        try:
            yield theirs, ours
        finally:
            ours.stop()
            theirs.stop()


_HEX = re.compile(r"\b[0-9a-f]{32}\b")
_TIME_KEYS = {"start_time", "end_time", "creation_time", "last_update_time"}


def normalise(obj):
    """Run ids numbered by first appearance, clock times and ports dropped."""
    text = json.dumps(obj, sort_keys=False)
    seen: dict[str, str] = {}
    text = _HEX.sub(lambda m: seen.setdefault(m.group(0), f"RUN{len(seen)}"), text)
    text = re.sub(r"127\.0\.0\.1:\d+", "HOST", text)
    text = re.sub(r"\b1[0-9]{12}\b", "0", text)  # clock times inside messages
    # SQLAlchemy's quoted parameters in a duplicate-name error: MLflow's server binds None for
    # an absent artifact location, asynctrack's store '' (as MLflow's store does in-process).
    text = re.sub(r"\[parameters: [^\]]*\]", "[parameters: ...]", text)

    def strip(o):
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items() if k not in _TIME_KEYS}
        if isinstance(o, list):
            return [strip(v) for v in o]
        return o

    return strip(json.loads(text))


CLIENT_SCRIPT = r"""
import os, tempfile
import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
url = ARGS["url"]
os.environ["MLFLOW_TRACKING_URI"] = url
c = MlflowClient(url)
out = []
def rec(name, fn):
    try:
        out.append([name, fn()])
    except Exception as e:
        out.append([name, {"error": _err(e)}])
def run_dict(r):
    return {"info": {k: getattr(r.info, k) for k in ("run_id", "run_name", "status", "lifecycle_stage", "artifact_uri", "user_id", "experiment_id")},
            "metrics": r.data.metrics, "params": r.data.params,
            "tags": {k: v for k, v in r.data.tags.items()}}
def exp_dict(e):
    return None if e is None else {"id": e.experiment_id, "name": e.name, "loc": e.artifact_location, "stage": e.lifecycle_stage, "tags": e.tags}
eid = c.create_experiment("server-diff", tags={"team": "a"})
rec("create_dup", lambda: c.create_experiment("server-diff"))
rec("get_exp", lambda: exp_dict(c.get_experiment(eid)))
rec("by_name", lambda: exp_dict(c.get_experiment_by_name("server-diff")))
rec("by_name_missing", lambda: exp_dict(c.get_experiment_by_name("nope")))
rec("get_exp_missing", lambda: exp_dict(c.get_experiment("98765")))
c.set_experiment_tag(eid, "k", "v")
c.delete_experiment_tag(eid, "team")
rec("exp_tags", lambda: exp_dict(c.get_experiment(eid)))
e2 = c.create_experiment("server-diff-2")
c.rename_experiment(e2, "server-diff-renamed")
c.delete_experiment(e2)
rec("search_exp_deleted", lambda: [exp_dict(e) for e in c.search_experiments(view_type=2)])
c.restore_experiment(e2)
rec("search_exp", lambda: [exp_dict(e) for e in c.search_experiments(filter_string="name LIKE 'server-diff%'", order_by=["name DESC"])])
runs = []
for i in range(5):
    r = c.create_run(eid, run_name=f"run-{i}", tags={"i": str(i)}, start_time=1000 + i)
    runs.append(r.info.run_id)
    c.log_batch(r.info.run_id, metrics=[Metric("m", float(i), 100 + i, i), Metric("m", i * 2.5, 200 + i, i + 1), Metric("nan", float("nan"), 5, 0), Metric("big", float("inf"), 5, 0)],
                params=[Param("p", str(i)), Param("lr", "0.1")], tags=[RunTag("t", "x" * i)])
    c.log_metric(r.info.run_id, "single", -1.5 * i, timestamp=50, step=7)
    c.log_param(r.info.run_id, "one", "1")
    c.set_tag(r.info.run_id, "gone", "soon")
    c.delete_tag(r.info.run_id, "gone")
rec("run0", lambda: run_dict(c.get_run(runs[0])))
rec("history", lambda: [m.to_dictionary() for m in c.get_metric_history(runs[2], "m")])
rec("history_missing_run", lambda: c.get_metric_history("0" * 32, "m"))
c.set_terminated(runs[1], "FINISHED", end_time=5000)
c.update_run(runs[2], name="renamed")
c.delete_run(runs[3])
rec("search_filter", lambda: [run_dict(r) for r in c.search_runs([eid], "metrics.m > 2", order_by=["metrics.m DESC"])])
rec("search_deleted", lambda: [run_dict(r) for r in c.search_runs([eid], run_view_type=2)])
c.restore_run(runs[3])
pages, token = [], None
while True:
    page = c.search_runs([eid], "", max_results=2, order_by=["params.p ASC"], page_token=token)
    pages.append([r.info.run_name for r in page])
    token = page.token
    if not token:
        break
rec("pages", lambda: pages)
rec("search_attr", lambda: [r.info.run_name for r in c.search_runs([eid], "attributes.status = 'FINISHED' or tags.i = '4'")])
rec("bad_filter", lambda: c.search_runs([eid], "nonsense.m = 1"))
rec("param_change", lambda: c.log_param(runs[0], "p", "changed"))
rec("bad_metric_key", lambda: c.log_metric(runs[0], "bad//key", 1.0))
rec("bad_run", lambda: c.get_run("nope"))
rec("missing_run", lambda: c.get_run("f" * 32))
rec("deleted_exp_run", lambda: (c.delete_experiment(e2), c.create_run(e2))[1].info.run_id)
rec("log_to_finished", lambda: c.log_metric(runs[1], "m", 1.0))
rec("bad_status", lambda: c.update_run(runs[0], status="WHATEVER"))
rec("too_many_params", lambda: c.log_batch(runs[4], params=[Param(f"k{j}", "v") for j in range(101)]))
rec("run4", lambda: run_dict(c.get_run(runs[4])))
with tempfile.TemporaryDirectory() as d:
    c.log_text(runs[0], "hello", "dir/a.txt")
    c.log_dict(runs[0], {"x": 1}, "d.json")
    rec("artifacts", lambda: [(f.path, f.is_dir, f.file_size) for f in c.list_artifacts(runs[0])])
    rec("artifacts_dir", lambda: [(f.path, f.is_dir, f.file_size) for f in c.list_artifacts(runs[0], "dir")])
    rec("download", lambda: open(c.download_artifacts(runs[0], "dir/a.txt", d)).read())
    rec("download_missing", lambda: c.download_artifacts(runs[0], "none.txt", d))
_out(out)
"""


def test_mlflow_client_sees_the_same(servers):
    theirs, ours = servers
    expected = oracle.run(CLIENT_SCRIPT, url=theirs.url)
    got = oracle.run(CLIENT_SCRIPT, url=ours.url)
    assert [name for name, _ in got] == [name for name, _ in expected]
    for (name, want), (_, have) in zip(normalise(expected), normalise(got)):
        assert have == want, f"{name}: {have} != {want}"


def _answer(resp) -> dict:
    try:
        body = resp.json()
    except ValueError:
        body = resp.text
    kind = resp.headers.get("content-type", "").split(";")[0]
    return {"status": resp.status_code, "type": kind, "body": body}


# (method, path, json body | None, query | None): each sent to both servers under both prefixes.
RAW_REQUESTS = [
    ("POST", "/mlflow/experiments/create", {"name": "raw-exp", "tags": [{"key": "a", "value": "b"}]}, None),
    ("POST", "/mlflow/experiments/create", {"name": 5}, None),
    ("POST", "/mlflow/experiments/create", {}, None),
    ("POST", "/mlflow/experiments/create", {"name": "raw-exp"}, None),
    ("GET", "/mlflow/experiments/get-by-name", None, {"experiment_name": "raw-exp"}),
    ("GET", "/mlflow/experiments/get-by-name", None, {"experiment_name": "missing"}),
    ("GET", "/mlflow/experiments/get", None, {"experiment_id": "424242"}),
    ("GET", "/mlflow/experiments/get", None, {"experiment_id": "abc"}),
    ("GET", "/mlflow/experiments/get", None, None),
    ("GET", "/mlflow/experiments/search", None, {"max_results": "abc"}),
    ("GET", "/mlflow/experiments/search", None, {"max_results": "0"}),
    ("GET", "/mlflow/experiments/search", None, {"max_results": "1", "filter": "name = 'raw-exp'"}),
    ("POST", "/mlflow/experiments/search", {"max_results": 5, "view_type": "ALL", "filter": "name = 'raw-exp'"}, None),
    ("POST", "/mlflow/experiments/search", {"max_results": 5, "order_by": "name"}, None),
    ("POST", "/mlflow/runs/create", {"experiment_id": "1", "start_time": 1000, "run_name": "raw", "tags": [{"key": "t", "value": "v"}]}, None),
    ("POST", "/mlflow/runs/create", {"experiment_id": "1", "start_time": "soon"}, None),
    ("POST", "/mlflow/runs/create", {"experiment_id": "98765", "start_time": 1}, None),
    ("GET", "/mlflow/runs/get", None, {"run_id": "0" * 32}),
    ("GET", "/mlflow/runs/get", None, None),
    ("POST", "/mlflow/runs/log-metric", {"run_id": "0" * 32, "key": "m", "value": "abc", "timestamp": 1}, None),
    ("POST", "/mlflow/runs/log-metric", {"run_id": "0" * 32, "key": "m", "value": 1.0}, None),
    ("POST", "/mlflow/runs/log-metric", {"run_id": "0" * 32, "key": "m", "value": 1.0, "timestamp": 1}, None),
    ("POST", "/mlflow/runs/log-batch", {"run_id": "0" * 32, "metrics": [{"key": "m"}]}, None),
    ("POST", "/mlflow/runs/log-batch", {"run_id": "0" * 32, "metrics": "no"}, None),
    ("POST", "/mlflow/runs/log-batch", {"metrics": []}, None),
    ("POST", "/mlflow/runs/log-parameter", {"run_id": "0" * 32, "value": "v"}, None),
    ("POST", "/mlflow/runs/set-tag", {"run_id": "0" * 32, "key": "k", "value": 3}, None),
    ("POST", "/mlflow/runs/search", {"experiment_ids": ["1"], "max_results": 50001}, None),
    ("POST", "/mlflow/runs/search", {"experiment_ids": ["1"], "order_by": [1]}, None),
    ("POST", "/mlflow/runs/search", {"experiment_ids": ["1"], "filter": "metrics.m = 'x'"}, None),
    ("POST", "/mlflow/runs/update", {"run_id": "0" * 32, "status": "FINISHED"}, None),
    ("GET", "/mlflow/metrics/get-history", None, {"run_id": "0" * 32, "metric_key": "m"}),
    ("GET", "/mlflow/metrics/get-history", None, {"run_id": "0" * 32}),
    ("GET", "/mlflow/metrics/get-history-bulk-interval", None, {"metric_key": "m"}),
    ("GET", "/mlflow/metrics/get-history-bulk-interval", None, {"run_ids": "0" * 32, "metric_key": "m", "max_results": "0"}),
    ("GET", "/mlflow/metrics/get-history-bulk-interval", None, {"run_ids": "0" * 32, "metric_key": "m", "start_step": "1"}),
    ("GET", "/mlflow/no-such-endpoint", None, None),
    ("POST", "/mlflow/experiments/get", {}, None),
]


def test_raw_requests_answer_as_mlflow(servers):
    """Status, content type and JSON of each request, on /api/ and /ajax-api/ alike."""
    theirs, ours = servers
    for prefix in ("/api/2.0", "/ajax-api/2.0"):
        with httpx.Client(base_url=theirs.url, timeout=30) as t, httpx.Client(base_url=ours.url, timeout=30) as o:
            for method, path, body, query in RAW_REQUESTS:
                if body is not None and "name" in body and body.get("name") == "raw-exp":
                    body = {**body, "name": f"raw-exp{prefix}"}
                if query and query.get("experiment_name") == "raw-exp":
                    query = {**query, "experiment_name": f"raw-exp{prefix}"}
                kwargs = {"json": body} if body is not None else {}
                want = _answer(t.request(method, prefix + path, params=query, **kwargs))
                have = _answer(o.request(method, prefix + path, params=query, **kwargs))
                assert normalise(have) == normalise(want), (method, prefix + path, body, query)


def test_bad_json_and_content_type_as_mlflow(servers):
    theirs, ours = servers
    cases = [
        (b"{bad", {"Content-Type": "application/json"}),
        (b'"{\\"name\\": 3}"', {"Content-Type": "application/json"}),  # double-encoded
        (b'{"name": "x"}', {"Content-Type": "text/plain"}),
        (b'{"name": "x"}', {}),
    ]
    for body, headers in cases:
        want = _answer(httpx.post(theirs.url + "/api/2.0/mlflow/experiments/create", content=body, headers=headers))
        have = _answer(httpx.post(ours.url + "/api/2.0/mlflow/experiments/create", content=body, headers=headers))
        assert have == want, body


def test_artifact_endpoints_as_mlflow(servers):
    theirs, ours = servers
    steps = [
        ("PUT", "/api/2.0/mlflow-artifacts/artifacts/raw/x/a.txt", b"hello", None),
        ("PUT", "/api/2.0/mlflow-artifacts/artifacts/raw/x/b.bin", bytes(range(256)), None),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts", None, {"path": "raw"}),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts", None, {"path": "raw/x"}),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts", None, {"path": "raw/none"}),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts", None, {"path": "../etc"}),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts", None, {"path": "/etc"}),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts/raw/x/a.txt", None, None),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts/raw/x/b.bin", None, None),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts/raw/x/none.txt", None, None),
        ("DELETE", "/api/2.0/mlflow-artifacts/artifacts/raw/x/a.txt", None, None),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts", None, {"path": "raw/x"}),
    ]
    for method, path, content, query in steps:
        want = httpx.request(method, theirs.url + path, content=content, params=query)
        have = httpx.request(method, ours.url + path, content=content, params=query)
        assert have.status_code == want.status_code, (method, path)
        if path.endswith((".txt", ".bin")) and method == "GET" and want.status_code == 200:
            assert have.content == want.content
            assert have.headers["content-disposition"] == want.headers["content-disposition"]
        elif want.content:
            assert have.json() == want.json(), (method, path, query)
