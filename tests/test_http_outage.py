"""A tracking server that goes away: a real ``mlflow server`` killed and restarted on its port.
Asynchronous records are kept and stored once it is back; synchronous calls are told
TEMPORARILY_UNAVAILABLE; a process that exits meanwhile spools, and ``asynctrack replay``
stores the spool into the restarted server exactly once."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import textwrap
import time

import pytest

from asynctrack import MlflowClient
from asynctrack.exceptions import MlflowException

from ._servers import fresh_mlflow_server  # noqa: F401


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch):
    from asynctrack.writer import _outage

    monkeypatch.setattr(_outage, "STORE_RETRY_S", 0.3)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # reads: fail fast here


def _wait_for(predicate, timeout: float = 90.0) -> None:
    """The writer retries a down store with backoff (at most RETRY_MAX_DELAY_S apart), and
    flush() does not wait for records held through an outage: poll."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the kept records were not stored in time"
        time.sleep(0.2)


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ASYNCTRACK_"))}
    env["ASYNCTRACK_SPOOL_DIR"] = str(tmp_path / "spool")
    env.update(extra)
    return env


def test_async_records_survive_a_server_restart(fresh_mlflow_server):  # noqa: F811
    server = fresh_mlflow_server
    client = MlflowClient(server.url)
    run_id = client.create_run(client.create_experiment("outage")).info.run_id
    client.log_metric(run_id, "m", -1.0, step=0, timestamp=0)
    server.kill()
    for i in range(1, 501):
        client.log_metric(run_id, "m", float(i), step=i, timestamp=i, synchronous=False)
    client.log_param(run_id, "p", "kept", synchronous=False)
    client.set_tag(run_id, "t", "kept", synchronous=False)
    started = time.monotonic()
    with pytest.raises(MlflowException) as info:
        client.log_metric(run_id, "sync", 1.0)
    assert info.value.error_code == "TEMPORARILY_UNAVAILABLE"
    assert time.monotonic() - started < 30  # not MLflow's minutes of backoff
    with pytest.raises(MlflowException) as info:
        client.set_tag(run_id, "sync", "x")
    assert info.value.error_code == "TEMPORARILY_UNAVAILABLE"
    server.start()
    _wait_for(lambda: client._writer._outage.active is False and not client._writer._outage.held)
    client.flush()
    history = client.get_metric_history(run_id, "m")
    assert len(history) == 501 and sorted(m.step for m in history) == list(range(501))
    run = client.get_run(run_id)
    assert run.data.params == {"p": "kept"}
    assert run.data.tags.get("t") == "kept" and "sync" not in run.data.tags
    assert "sync" not in run.data.metrics  # nothing of a refused synchronous call is stored


def test_end_run_never_raises_while_the_server_is_down(fresh_mlflow_server, monkeypatch):  # noqa: F811
    import asynctrack

    server = fresh_mlflow_server
    asynctrack.set_tracking_uri(server.url)
    try:
        asynctrack.set_experiment("ending")
        run = asynctrack.start_run()
        server.kill()
        asynctrack.log_metric("m", 1.0, synchronous=False)
        asynctrack.end_run()  # kept with the asynchronous records: no exception
        server.start()
        client = MlflowClient(server.url)
        _wait_for(lambda: client.get_run(run.info.run_id).info.status == "FINISHED")
        stored = client.get_run(run.info.run_id)
        assert stored.info.status == "FINISHED"
        assert stored.data.metrics == {"m": 1.0}
    finally:
        asynctrack.set_tracking_uri(None)


LOGGER = textwrap.dedent("""
    import sys
    from asynctrack import MlflowClient
    c = MlflowClient(sys.argv[1])
    run_id = c.create_run(c.create_experiment("spooled")).info.run_id
    print(run_id, flush=True)
    input()  # the test kills the server now
    for i in range(2000):
        c.log_metric(run_id, "m", float(i), step=i, timestamp=i, synchronous=False)
    c.log_param(run_id, "p", "1", synchronous=False)
    c.set_tag(run_id, "phase", "done", synchronous=False)
    print("logged", flush=True)
""")


def test_spool_at_exit_replays_into_the_restarted_server_once(fresh_mlflow_server, tmp_path):  # noqa: F811
    server = fresh_mlflow_server
    proc = subprocess.Popen(
        [sys.executable, "-c", LOGGER, server.url], cwd=tmp_path, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env(tmp_path, ASYNCTRACK_EXIT_TIMEOUT="1", ASYNCTRACK_STORE_RETRY="0.2"),
    )
    run_id = proc.stdout.readline().strip()
    server.kill()
    out, err = proc.communicate("\n", timeout=120)
    assert proc.returncode == 0, err
    assert out.strip() == "logged" and "Traceback" not in err
    spools = glob.glob(str(tmp_path / "spool" / "*"))
    assert len(spools) == 1
    lines = [line for line in err.splitlines() if spools[0] in line]
    assert len(lines) == 1 and "asynctrack replay" in lines[0] and server.url in lines[0], err

    server.start()
    client = MlflowClient(server.url)
    for _ in range(2):  # a second replay stores nothing twice
        done = subprocess.run(
            [sys.executable, "-m", "asynctrack", "replay", spools[0]], cwd=tmp_path,
            capture_output=True, text=True, timeout=300, env=_env(tmp_path),
        )
        assert done.returncode == 0, done.stderr
        assert "2002 records read, 2002 stored" in done.stdout, done.stdout
        history = client.get_metric_history(run_id, "m")
        assert len(history) == 2000 and len({m.step for m in history}) == 2000
        run = client.get_run(run_id)
        assert run.data.params == {"p": "1"} and run.data.tags["phase"] == "done"
