"""Processes that end badly: SIGTERM (drain, KILLED), a user's own handler, the opt-out, and
kill -9 (the database stays sound, the run resumable, every flushed point there)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

import asynctrack as mlflow
from tests._store_fixtures import fetch_all, scalar, tracking_uri_of_kind

N = 5000


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ASYNCTRACK_"))}
    env["ASYNCTRACK_FLUSH_INTERVAL"] = "60"  # nothing is written until something asks for it
    env.update(extra)
    return env


LOG_THEN_WAIT = textwrap.dedent(f"""
    import sys, time
    {{prelude}}
    import asynctrack as mlflow
    run = mlflow.start_run(run_name="job")
    for i in range({N}):
        mlflow.log_metric("m", float(i), step=i, synchronous=False)
    print("ready", flush=True)
    time.sleep(60)
""")


@pytest.fixture
def uri(store_kind, tmp_path, request):
    """A fresh store of each kind, for the programs these tests start (MLFLOW_TRACKING_URI)."""
    return tracking_uri_of_kind(store_kind, tmp_path, request)


def _run_until_ready(tmp_path, uri, prelude="", **env):
    proc = subprocess.Popen(
        [sys.executable, "-c", LOG_THEN_WAIT.format(prelude=prelude)],
        cwd=tmp_path, env=_env(MLFLOW_TRACKING_URI=uri, **env), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def _stored(uri):
    """(points stored, the runs' statuses, SQLite's integrity check or "ok" for PostgreSQL)."""
    integrity = scalar(uri, "PRAGMA integrity_check") if uri.startswith("sqlite:") else "ok"
    return (
        scalar(uri, "SELECT count(*) FROM metrics"),
        fetch_all(uri, "SELECT status FROM runs"),
        integrity,
    )


def test_sigterm_drains_the_queue_and_ends_runs_killed(tmp_path, uri):
    proc = _run_until_ready(tmp_path, uri)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == -signal.SIGTERM  # dies of the signal, as it would have
    assert _stored(uri) == (N, [("KILLED",)], "ok")


def test_a_users_sigterm_handler_is_left_alone_and_still_runs(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    prelude = "import signal\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(3))"
    proc = _run_until_ready(tmp_path, uri, prelude=prelude)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 3
    # the user's handler exited normally: the exit hook ended the run and stored everything
    assert _stored(uri) == (N, [("FINISHED",)], "ok")


def test_sigterm_handling_can_be_turned_off(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = _run_until_ready(tmp_path, uri, ASYNCTRACK_HANDLE_SIGTERM="false")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == -signal.SIGTERM
    count, statuses, integrity = _stored(uri)
    assert (count, statuses, integrity) == (0, [("RUNNING",)], "ok")  # what the handler prevents


def test_kill_9_keeps_every_flushed_point_and_the_run_resumable(tmp_path, fluent):
    uri = fluent.get_tracking_uri()
    script = textwrap.dedent("""
        import asynctrack as mlflow
        run = mlflow.start_run(run_name="doomed")
        print(run.info.run_id, flush=True)
        i = 0
        while True:
            mlflow.log_metric("m", float(i), step=i, synchronous=False)
            i += 1
            if i % 20000 == 0:
                mlflow.flush_async_logging()
                print(i, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path,
                            env=_env(ASYNCTRACK_FLUSH_INTERVAL="0.05", MLFLOW_TRACKING_URI=uri),
                            stdout=subprocess.PIPE, text=True)
    run_id = proc.stdout.readline().strip()
    flushed = 0
    while flushed < 100_000:
        flushed = int(proc.stdout.readline())
    proc.kill()
    proc.wait(30)
    assert _stored(uri)[2] == "ok"
    stored = scalar(uri, "SELECT count(*) FROM metrics")
    steps = fetch_all(uri, "SELECT count(DISTINCT step), max(step) FROM metrics")[0]
    assert stored >= flushed  # every point flushed before the kill is there
    assert steps == (stored, stored - 1)  # and they are a prefix: nothing in between was lost
    assert fluent.get_run(run_id).info.status == "RUNNING"
    with fluent.start_run(run_id=run_id):
        fluent.log_metric("m", -1.0, step=stored)
    run = fluent.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["m"] == -1.0


def _start_writer_in_worker(uri):
    import asynctrack as mlflow

    client = mlflow.MlflowClient(uri)
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "m", 1.0)  # the writer and aiosqlite threads are running now
    return signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_pool_terminate_is_not_held_up_by_idle_workers(tmp_path):
    """Pool workers keep SIGTERM's default action (no drain handler), and asynctrack's threads
    block it: an idle worker waiting for a task dies at once when the pool terminates."""
    import multiprocessing
    import time

    uri = f"sqlite:///{tmp_path}/pool.db"
    for _ in range(3):
        pool = multiprocessing.get_context("spawn").Pool(4)
        assert all(pool.map(_start_writer_in_worker, [uri] * 4, chunksize=1))
        started = time.monotonic()
        pool.terminate()
        pool.join()
        assert time.monotonic() - started < 10


def test_a_fork_child_gets_the_default_sigterm_back(tmp_path):
    script = textwrap.dedent("""
        import os, signal
        import asynctrack
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # installed here
        pid = os.fork()
        if pid == 0:
            os._exit(0 if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL else 1)
        assert os.waitpid(pid, 0)[1] == 0
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_a_fork_child_signalled_before_its_hooks_leave_the_parents_run_alone(tmp_path):
    """Pool.terminate() can signal a fork child while it still runs the after-fork hooks that
    come before asynctrack's SIGTERM reset (it hung in CI, ending the parent's run KILLED):
    the inherited handler then only dies, as the default action would."""
    script = textwrap.dedent("""
        import os, signal, time
        # Registered before asynctrack's own hooks, so it runs first in the child.
        os.register_at_fork(after_in_child=lambda: os.kill(os.getpid(), signal.SIGTERM))
        import asynctrack as mlflow
        with mlflow.start_run(run_name="parent") as run:
            mlflow.log_metric("m", 1.0, synchronous=False)
            pid = os.fork()
            if pid == 0:
                time.sleep(30)  # the signal must have ended it long before
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM, status
            assert mlflow.MlflowClient().get_run(run.info.run_id).info.status == "RUNNING"
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    assert _stored(f"sqlite:///{tmp_path}/mlflow.db") == (1, [("FINISHED",)], "ok")


ENDING = textwrap.dedent("""
    import asynctrack as mlflow
    mlflow.start_run(run_name="job")
    for i in range(20000):
        mlflow.log_metric("m", float(i), step=i, synchronous=False)
    mlflow.log_param("p", "1", synchronous=False)
    {ending}
""")


@pytest.mark.parametrize(
    "ending, returncode",
    [("pass", 0), ("raise ValueError('boom')", 1), ("raise KeyboardInterrupt", -2), ("import sys; sys.exit(3)", 3)],
    ids=["normal", "exception", "keyboard-interrupt", "sys-exit"],
)
def test_every_way_of_ending_stores_everything(tmp_path, uri, ending, returncode):
    """Normal exit, an uncaught exception, Ctrl-C, sys.exit: all 20,000 queued points and the
    param are stored, and the run is ended FINISHED, as MLflow 3.18's exit hook ends it (MLflow
    itself loses queued points on Ctrl-C)."""
    proc = subprocess.run([sys.executable, "-c", ENDING.format(ending=ending)], cwd=tmp_path,
                          env=_env(ASYNCTRACK_FLUSH_INTERVAL="0.05", MLFLOW_TRACKING_URI=uri),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == returncode, proc.stderr
    count, statuses, integrity = _stored(uri)
    assert (count, statuses, integrity) == (20000, [("FINISHED",)], "ok")


SYNC_LOOP = textwrap.dedent("""
    import asynctrack as mlflow
    mlflow.start_run(run_name="job")
    mlflow.log_metric("m", 0.0, step=0)
    print("ready", flush=True)
    i = 1
    while True:
        mlflow.log_metric("m", float(i), step=i)  # synchronous: most of the time inside SQLite
        i += 1
""")


@pytest.mark.parametrize("attempt", range(4))
def test_sigterm_during_a_synchronous_write_ends_promptly(tmp_path, uri, attempt):
    """SIGTERM lands while the main thread is inside a synchronous write's transaction: the
    handler waits for that write instead of deadlocking on it; the run ends KILLED with an
    unbroken prefix of steps stored."""
    proc = subprocess.Popen([sys.executable, "-c", SYNC_LOOP], cwd=tmp_path, env=_env(MLFLOW_TRACKING_URI=uri),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    import time

    time.sleep(0.3 + 0.1 * attempt)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM, err
    count, statuses, integrity = _stored(uri)
    steps = [s for (s,) in fetch_all(uri, "SELECT step FROM metrics ORDER BY step")]
    assert steps == list(range(len(steps))) and len(steps) > 1
    assert (statuses, integrity) == ([("KILLED",)], "ok")
