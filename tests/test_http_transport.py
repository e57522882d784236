"""The HTTP transport: MLflow's environment variables, retries and errors (asynctrack._rest),
against a scripted loopback server and, for the messages, MLflow's own client on the same one."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time

import pytest

from asynctrack import MlflowClient
from asynctrack._rest import RestConfig, SyncTransport
from asynctrack._rest._transport import backoff_s
from asynctrack.exceptions import MlflowException
from tests.oracle import oracle_python, run

from ._http_helpers import Reply, ScriptedServer, mlflow_error

EXPERIMENT = json.dumps({"experiment": {"experiment_id": "7", "name": "e", "artifact_location": "x",
                                        "lifecycle_stage": "active", "creation_time": "12"}})


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in (
        "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
        "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_SERVER_CERT_PATH",
        "MLFLOW_TRACKING_CLIENT_CERT_PATH", "MLFLOW_HTTP_REQUEST_TIMEOUT",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
        "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", "/nonexistent-home-for-tests")  # no ~/.mlflow/credentials


def _error(fn) -> MlflowException:
    with pytest.raises(MlflowException) as info:
        fn()
    return info.value


def test_defaults_are_mlflows():
    config = RestConfig.from_env("http://h/")
    assert (config.host, config.timeout, config.max_retries, config.backoff_factor) == ("http://h", 120, 7, 2)
    assert (config.backoff_jitter, config.verify, config.authorization) == (1.0, True, None)


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "11",
         "The configured max_retries value (11) is in excess of the maximum allowable retries (10)"),
        ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "-1",
         "The max_retries value must be either 0 a positive integer. Got -1"),
        ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "121",
         "The configured backoff_factor value (121) is in excess of the maximum allowable "
         "backoff_factor limit (120)"),
        ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "-2",
         "The backoff_factor value must be either 0 a positive integer. Got -2"),
    ],
)
def test_retry_settings_are_checked_like_mlflow(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    error = _error(lambda: RestConfig.from_env("http://h"))
    assert (error.error_code, error.message) == ("INVALID_PARAMETER_VALUE", message)


def test_insecure_tls_and_server_cert_together_are_refused(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", "/ca.pem")
    error = _error(lambda: MlflowClient("http://127.0.0.1:9"))
    assert error.error_code == "INVALID_PARAMETER_VALUE"
    assert "'MLFLOW_TRACKING_INSECURE_TLS' and 'MLFLOW_TRACKING_SERVER_CERT_PATH'" in error.message


def test_tls_settings(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
    assert RestConfig.from_env("https://h").verify is False
    monkeypatch.delenv("MLFLOW_TRACKING_INSECURE_TLS")
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", "/ca.pem")
    monkeypatch.setenv("MLFLOW_TRACKING_CLIENT_CERT_PATH", "/client.pem")
    config = RestConfig.from_env("https://h")
    assert (config.verify, config.client_cert) == ("/ca.pem", "/client.pem")


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"MLFLOW_TRACKING_USERNAME": "u", "MLFLOW_TRACKING_PASSWORD": "p:w"},
         "Basic " + base64.b64encode(b"u:p:w").decode()),
        ({"MLFLOW_TRACKING_TOKEN": "tok"}, "Bearer tok"),
        ({"MLFLOW_TRACKING_USERNAME": "u", "MLFLOW_TRACKING_PASSWORD": "p", "MLFLOW_TRACKING_TOKEN": "t"},
         "Basic " + base64.b64encode(b"u:p").decode()),
        ({"MLFLOW_TRACKING_USERNAME": "u"}, None),
    ],
)
def test_authorization_header(monkeypatch, env, expected):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with ScriptedServer([Reply(body=EXPERIMENT)]) as server:
        experiment = MlflowClient(server.url).get_experiment("7")
    assert (experiment.experiment_id, experiment.creation_time, experiment.last_update_time) == ("7", 12, None)
    assert len(server.seen) == 1
    assert server.seen[0].headers.get("Authorization") == expected
    assert server.seen[0].path == "/api/2.0/mlflow/experiments/get?experiment_id=7"


def test_backoff_schedule_is_urllib3s():
    import dataclasses

    config = dataclasses.replace(RestConfig.from_env("http://h"), backoff_jitter=0.0)
    assert [backoff_s(config, n) for n in range(1, 9)] == [0, 4, 8, 16, 32, 64, 120, 120]
    jittered = dataclasses.replace(config, backoff_jitter=1.0)
    assert all(4 <= backoff_s(jittered, 2) < 5 for _ in range(50))


def test_retryable_statuses_are_retried_with_retry_after(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    script = [
        Reply(503, "busy", {"Retry-After": "1"}),
        Reply(429, "slow down"),
        Reply(500, "<html>oops</html>"),
        Reply(body=EXPERIMENT),
    ]
    with ScriptedServer(script) as server:
        started = time.monotonic()
        assert MlflowClient(server.url).get_experiment("7").name == "e"
    assert len(server.seen) == 4
    assert server.seen[1].at - server.seen[0].at >= 0.95  # Retry-After: 1 was respected
    assert time.monotonic() - started < 5


def test_retries_end_after_max_retries(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    with ScriptedServer([Reply(502, "<html>bad gateway</html>")]) as server:
        error = _error(lambda: MlflowClient(server.url).get_experiment("7"))
    assert len(server.seen) == 3
    assert error.error_code == "INTERNAL_ERROR"
    assert error.message == (
        "API request to endpoint /api/2.0/mlflow/experiments/get failed with error code 502 != 200. "
        "Response body: '<html>bad gateway</html>'"
    )


def test_a_non_retryable_status_is_not_retried():
    with ScriptedServer([Reply(403, mlflow_error("PERMISSION_DENIED", "no"))]) as server:
        error = _error(lambda: MlflowClient(server.url).get_experiment("7"))
    assert len(server.seen) == 1
    assert (error.error_code, error.message) == ("PERMISSION_DENIED", "PERMISSION_DENIED: no")


def test_timeout_gives_mlflows_message(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with ScriptedServer([Reply(body=EXPERIMENT, delay=3)]) as server:
        error = _error(lambda: MlflowClient(server.url).get_experiment("7"))
    assert error.message.startswith(f"API request to {server.url}/api/2.0/mlflow/experiments/get failed with timeout exception")
    assert error.message.endswith(
        "To increase the timeout, set the environment variable MLFLOW_HTTP_REQUEST_TIMEOUT "
        "(default: 120) to a larger value."
    )


def test_connection_refused_is_an_mlflow_exception(monkeypatch):
    from tests._servers import free_port

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    url = f"http://127.0.0.1:{free_port()}"
    error = _error(lambda: MlflowClient(url).get_run("0" * 32))
    assert error.error_code == "INTERNAL_ERROR"
    assert error.message.startswith(f"API request to {url}/api/2.0/mlflow/runs/get failed with exception ")


def _script_for_messages(seen):
    if "get-by-name" in seen.path:
        return Reply(200, "not json")
    if "experiments/get" in seen.path:
        return Reply(404, mlflow_error("RESOURCE_DOES_NOT_EXIST", "No Experiment with id=7 exists"))
    if "runs/get" in seen.path:
        return Reply(401, "<html>login</html>")
    return Reply(400, json.dumps({"error_code": "404", "message": "odd code"}))


def test_error_messages_match_mlflows_client():
    """The same answers through MLflow 3.18's client and asynctrack's: same codes, messages."""
    if oracle_python() is None:
        pytest.skip("MLflow oracle not installed (.venv-oracle)")
    calls = [["get_experiment", "7"], ["get_run", "a" * 32], ["get_experiment_by_name", "x"],
             ["search_experiments"]]
    with ScriptedServer(_script_for_messages) as server:
        theirs = run(
            """
            import mlflow, os
            os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
            c = mlflow.MlflowClient(ARGS["url"])
            out = []
            for name, *args in ARGS["calls"]:
                try:
                    getattr(c, name)(*args); out.append("ok")
                except Exception as e:
                    out.append(_err(e))
            _out(out)
            """,
            url=server.url,
            calls=calls,
        )
        ours = []
        client = MlflowClient(server.url)
        for name, *args in calls:
            try:
                getattr(client, name)(*args)
                ours.append("ok")
            except MlflowException as e:
                ours.append({"error_code": e.error_code, "message": e.message})
    assert ours == theirs


def test_missing_httpx_names_the_extra(tmp_path):
    code = (
        "import sys; sys.modules['httpx'] = None\n"
        "from asynctrack import MlflowClient\n"
        "try:\n"
        "    MlflowClient('http://127.0.0.1:9').get_run('a' * 32)\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e.error_code, e.message)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert "MissingExtraError INTERNAL_ERROR" in out.stdout, out.stderr
    assert "pip install 'asynctrack[http]'" in out.stdout


def test_import_asynctrack_does_not_import_httpx():
    code = "import sys, asynctrack; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_sync_transport_survives_many_threads():
    import concurrent.futures

    with ScriptedServer([Reply(body=EXPERIMENT)]) as server:
        transport = SyncTransport()
        config = RestConfig.from_env(server.url)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: transport.call(config, "GET", "/x"), range(40)))
        transport.close()
    assert len(results) == 40 and len(server.seen) == 40


def test_server_errors_are_rest_exceptions_as_mlflows():
    """An error the server answered with is an MlflowException named RestException, as MLflow's,
    with the server's JSON: RunOperations.wait lists failures by repr, and MLflow's list says
    ``RestException('RESOURCE_DOES_NOT_EXIST: ...')`` (tests/test_client_vs_mlflow.py compares it)."""
    from asynctrack._rest import RestException

    body = {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Run 'x' not found"}
    with ScriptedServer([Reply(404, json.dumps(body))]) as server:
        with pytest.raises(MlflowException) as raised:
            MlflowClient(server.url).get_run("a" * 32)
    e = raised.value
    assert type(e) is RestException and type(e).__name__ == "RestException"
    assert (e.error_code, e.message, e.json) == (
        "RESOURCE_DOES_NOT_EXIST", "RESOURCE_DOES_NOT_EXIST: Run 'x' not found", body
    )
    assert repr(e) == "RestException(\"RESOURCE_DOES_NOT_EXIST: Run 'x' not found\")"
    assert e.get_http_status_code() == 404
