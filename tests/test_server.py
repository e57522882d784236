"""``asynctrack server`` on its own: many clients at once, SIGTERM while logging, hostile
requests (fuzzed), artifact path tricks, basic auth, body limits and the command line."""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from ._asynctrack_server import asynctrack_server, asynctrack_server_session, fresh_asynctrack_server  # noqa: F401

httpx = pytest.importorskip("httpx")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

API = "/api/2.0/mlflow"


def _new_run(url: str, name: str) -> str:
    exp = httpx.post(url + API + "/experiments/create", json={"name": name}).json()["experiment_id"]
    run = httpx.post(url + API + "/runs/create", json={"experiment_id": exp, "start_time": 1}).json()
    return run["run"]["info"]["run_id"]


def _count(db: str, sql: str, *args) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchone()[0]


def _db(server) -> str:
    return str(server.root / "mlflow.db")


def test_health_version_and_loopback(asynctrack_server_session):
    url = asynctrack_server_session.url
    assert httpx.get(url + "/health").text == "OK"
    assert httpx.get(url + "/version").text == "3.18.0"
    assert "--host" in asynctrack_server_session.argv and "127.0.0.1" in asynctrack_server_session.argv


def test_hundred_concurrent_clients_log_batch(asynctrack_server_session):
    """100 threads, each its own httpx client, 20 log-batch requests of 50 points: every
    acknowledged point stored, exactly once."""
    server = asynctrack_server_session
    run_id = _new_run(server.url, "concurrent-100")
    errors: list = []

    def client(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            for b in range(20):
                metrics = [
                    {"key": f"c{n}", "value": float(i), "timestamp": 1000 + b, "step": b * 50 + i}
                    for i in range(50)
                ]
                resp = c.post(API + "/runs/log-batch", json={"run_id": run_id, "metrics": metrics})
                if resp.status_code != 200:
                    errors.append(resp.text)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _count(_db(server), "SELECT COUNT(*) FROM metrics WHERE run_uuid = ?", run_id) == 100 * 20 * 50
    assert _count(_db(server), "SELECT COUNT(*) FROM latest_metrics WHERE run_uuid = ?", run_id) == 100


def test_sigterm_while_logging_loses_nothing_acknowledged(fresh_asynctrack_server):
    """Clients log until SIGTERM stops the server: every point whose request was answered 200
    is stored, and nothing else is."""
    server = fresh_asynctrack_server
    run_id = _new_run(server.url, "sigterm")
    acked = [0] * 8
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            step = 0
            while not stop.is_set():
                metrics = [{"key": f"k{n}", "value": 1.0, "timestamp": 1, "step": step + i} for i in range(10)]
                try:
                    resp = c.post(API + "/runs/log-batch", json={"run_id": run_id, "metrics": metrics})
                except httpx.HTTPError:
                    return
                if resp.status_code != 200:
                    return
                acked[n] += 10
                step += 10

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    os.killpg(server.proc.pid, signal.SIGTERM)
    server.proc.wait(30)
    stop.set()
    for t in threads:
        t.join()
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit by SIGTERM).
    assert server.proc.returncode in (0, -signal.SIGTERM)
    output = server.proc.stdout.read()
    assert "Application shutdown complete" in output and "Traceback" not in output
    assert sum(acked) > 0
    stored = _count(_db(server), "SELECT COUNT(*) FROM metrics WHERE run_uuid = ?", run_id)
    # A request in flight at SIGTERM finishes (stored) but its client may see the connection
    # close before reading the answer: at most one unanswered batch per client.
    assert sum(acked) <= stored <= sum(acked) + 8 * 10
    for n in range(8):
        per_key = _count(_db(server), "SELECT COUNT(*) FROM metrics WHERE run_uuid = ? AND key = ?", run_id, f"k{n}")
        assert acked[n] <= per_key <= acked[n] + 10


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
_ENDPOINTS = [
    "/experiments/create", "/experiments/update", "/experiments/delete", "/experiments/search",
    "/experiments/set-experiment-tag", "/runs/create", "/runs/update", "/runs/log-batch",
    "/runs/log-metric", "/runs/log-parameter", "/runs/set-tag", "/runs/delete-tag", "/runs/search",
    "/runs/log-inputs",
]
_FIELDS = ["name", "experiment_id", "run_id", "key", "value", "timestamp", "step", "metrics",
           "params", "tags", "max_results", "filter", "order_by", "status", "end_time", "new_name"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    endpoint=st.sampled_from(_ENDPOINTS),
    body=st.dictionaries(st.sampled_from(_FIELDS), _json_values, max_size=5) | _json_values,
)
def test_fuzzed_requests_get_mlflow_error_json(asynctrack_server_session, endpoint, body):
    """Whatever the body, the answer is 200 or MLflow's error JSON with the code's status,
    never a 500 with a traceback; the server stays up."""
    url = asynctrack_server_session.url
    resp = httpx.post(url + API + endpoint, content=json.dumps(body), timeout=30,
                      headers={"Content-Type": "application/json"})
    if resp.status_code != 200:
        err = resp.json()
        assert set(err) >= {"error_code", "message"}
        assert resp.status_code < 500 or err["error_code"] == "NOT_IMPLEMENTED", err
        assert "Traceback" not in err["message"]
    assert httpx.get(url + "/health").text == "OK"


def test_fuzz_leaves_stored_data_intact(asynctrack_server_session):
    """Hostile requests against a run change nothing of it: exact counts before and after."""
    url = asynctrack_server_session.url
    run_id = _new_run(url, "fuzz-target")
    ok = httpx.post(url + API + "/runs/log-batch", json={
        "run_id": run_id, "metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": s} for s in range(7)],
        "params": [{"key": "p", "value": "1"}]})
    assert ok.status_code == 200
    hostile = [
        {"run_id": run_id, "metrics": [{"key": "m", "value": "x", "timestamp": 1}]},
        {"run_id": run_id, "metrics": [{"key": "../m", "value": 1.0, "timestamp": 1}]},
        {"run_id": run_id, "params": [{"key": "p", "value": "2"}]},
        {"run_id": run_id, "metrics": [{"key": "m", "value": 1.0, "timestamp": 1}] * 1001},
        {"run_id": run_id, "tags": [{"key": "\u202e\x00", "value": "v"}]},
        {"run_id": run_id + "'; DROP TABLE metrics; --", "metrics": []},
    ]
    for body in hostile:
        resp = httpx.post(url + API + "/runs/log-batch", json=body)
        assert resp.status_code == 400, resp.text
        assert resp.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    db = _db(asynctrack_server_session)
    assert _count(db, "SELECT COUNT(*) FROM metrics WHERE run_uuid = ?", run_id) == 7
    assert _count(db, "SELECT COUNT(*) FROM params WHERE run_uuid = ?", run_id) == 1
    run = httpx.get(url + API + "/runs/get", params={"run_id": run_id}).json()["run"]
    assert run["data"]["params"] == [{"key": "p", "value": "1"}]


def test_body_limit(tmp_path):
    server = asynctrack_server(tmp_path / "s", extra=["--max-request-bytes", "4096", "--max-artifact-bytes", "1000"]).start()
    try:
        resp = httpx.post(server.url + API + "/experiments/create", json={"name": "x" * 5000})
        assert resp.status_code == 400 and resp.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "4096" in resp.json()["message"]
        up = httpx.put(server.url + "/api/2.0/mlflow-artifacts/artifacts/big.bin", content=b"x" * 1001)
        assert up.status_code == 400
        chunks = (b"x" * 300 for _ in range(5))  # chunked, no Content-Length: cut off while streaming
        up = httpx.put(server.url + "/api/2.0/mlflow-artifacts/artifacts/big2.bin", content=chunks)
        assert up.status_code == 400
        assert not any(p.name.startswith(("big", ".upload")) for p in server.artifacts.rglob("*"))
        assert httpx.put(server.url + "/api/2.0/mlflow-artifacts/artifacts/ok.bin", content=b"y" * 1000).status_code == 200
        assert (server.artifacts / "ok.bin").read_bytes() == b"y" * 1000
    finally:
        server.stop()


@pytest.mark.parametrize("path", [
    "../escape.txt", "..%2fescape.txt", "%2e%2e/escape.txt", "%252e%252e%252fescape.txt",
    "a/../../escape.txt", "/etc/passwd", "%2Fetc%2Fpasswd", "a\\..\\..\\escape.txt", "C:/x.txt",
    "a%23b", "file:///etc/passwd",
])
def test_artifact_paths_cannot_leave_the_root(asynctrack_server_session, path):
    url = asynctrack_server_session.url + "/api/2.0/mlflow-artifacts/artifacts/"
    for method in ("PUT", "GET", "DELETE"):
        resp = httpx.request(method, url + path, content=b"x" if method == "PUT" else None)
        assert resp.status_code in (400, 404), (method, path, resp.status_code)
        assert resp.status_code == 404 or resp.json()["message"] == "Invalid path"
    assert not (asynctrack_server_session.root / "escape.txt").exists()
    listing = httpx.get(url.rstrip("/"), params={"path": path})
    assert listing.status_code == 400 or listing.json() == {}


def test_symlink_out_of_the_root_is_refused(asynctrack_server_session, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    root = asynctrack_server_session.artifacts
    root.mkdir(exist_ok=True)
    (root / "link").symlink_to(tmp_path, target_is_directory=True)
    url = asynctrack_server_session.url + "/api/2.0/mlflow-artifacts/artifacts"
    assert httpx.get(url + "/link/secret.txt").status_code == 400
    assert httpx.put(url + "/link/new.txt", content=b"x").status_code == 400
    assert httpx.get(url, params={"path": "link"}).status_code == 400
    assert httpx.delete(url + "/link/secret.txt").status_code == 400
    assert secret.read_text() == "secret" and not (tmp_path / "new.txt").exists()


def test_basic_auth(tmp_path):
    users = tmp_path / "users"
    users.write_text("# comment\nalice:s3cret\n")
    server = asynctrack_server(tmp_path / "s", extra=["--basic-auth-file", str(users)],
                               env={"ASYNCTRACK_SERVER_BASIC_AUTH": "bob:pw"}).start()
    try:
        url = server.url + API + "/experiments/search"
        for auth in (None, ("alice", "wrong"), ("mallory", "s3cret")):
            resp = httpx.get(url, params={"max_results": "5"}, auth=auth)
            assert resp.status_code == 401
            assert resp.json()["error_code"] == "UNAUTHENTICATED"
            assert "s3cret" not in resp.text and "alice" not in resp.text
        bad = httpx.get(url, headers={"Authorization": "Basic " + base64.b64encode(b"\xff\xfe").decode()})
        assert bad.status_code == 401
        for auth in (("alice", "s3cret"), ("bob", "pw")):
            assert httpx.get(url, params={"max_results": "5"}, auth=auth).status_code == 200
        assert httpx.get(server.url + "/health").status_code == 200
    finally:
        server.stop()


def test_log_inputs_is_honest(asynctrack_server_session):
    url = asynctrack_server_session.url
    run_id = _new_run(url, "inputs")
    assert httpx.post(url + API + "/runs/log-inputs", json={"run_id": run_id}).status_code == 200
    resp = httpx.post(url + API + "/runs/log-inputs", json={"run_id": run_id, "datasets": [
        {"dataset": {"name": "d", "digest": "x", "source_type": "local", "source": "s"}}]})
    assert resp.status_code == 200  # datasets are stored (tests/test_datasets.py)
    got = httpx.get(url + API + "/runs/get", params={"run_id": run_id}).json()["run"]["inputs"]
    assert got == {"dataset_inputs": [{"dataset": {"name": "d", "digest": "x", "source_type": "local", "source": "s"}}]}
    resp = httpx.post(url + API + "/runs/log-inputs", json={"run_id": run_id, "models": [{"model_id": "m-1"}]})
    assert resp.status_code == 501 and resp.json()["error_code"] == "NOT_IMPLEMENTED"


def _cli(cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asynctrack", "server", "--port", "1", *args],
                          capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.mark.parametrize("args, needle", [
    (["--bogus"], "No such option"),
    (["--gunicorn-opts", "-w 2"], "--gunicorn-opts is not supported"),
    (["--dev"], "--dev is not supported"),
    (["--backend-store-uri", "mysql://u:secret@x/y"], "stores to SQLite"),
    (["--artifacts-destination", "s3://bucket"], "local directory only"),
    (["--workers", "0"], "at least 1"),
])
def test_cli_refuses_clearly(tmp_path, args, needle):
    proc = _cli(tmp_path, *args)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr and "secret" not in proc.stderr  # no password shown
    assert list(tmp_path.iterdir()) == []  # refused before creating anything


def test_import_asynctrack_does_not_import_the_server_stack():
    code = "import asynctrack, sys; print(sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'starlette', 'uvicorn')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
