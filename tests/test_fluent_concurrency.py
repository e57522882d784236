"""Threads and processes for real: exact counts, parents and statuses, nothing locked, nothing
written twice. The workers are the programs in ``workers/``, as users run them."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import sys
import threading
import textwrap
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "workers"))

import spawn_sweep  # noqa: E402
import threaded_children  # noqa: E402

from tests._store_fixtures import fetch_all, tracking_uri_of_kind  # noqa: E402


def rows(db, sql, *args):
    """``sql``'s rows in the SQLite file ``db``, or in the tracking store at the URI ``db``."""
    return fetch_all(db if isinstance(db, str) else f"sqlite:///{db}", sql, *args)


# -- threads -----------------------------------------------------------------------------------
def test_eight_threads_of_nested_children_lose_nothing(fluent, tmp_path):
    parent_id, child_ids = threaded_children.fan_out(threads=8, points=5000)
    db = fluent.get_tracking_uri()
    assert len(set(child_ids)) == 8
    for run_id in child_ids:
        # end_run returned in each thread: every point of that child was stored by then
        assert rows(db, "SELECT count(*) FROM metrics WHERE run_uuid = ?", run_id) == [(5000,)]
        assert rows(db, "SELECT value FROM tags WHERE run_uuid = ? AND key = 'mlflow.parentRunId'", run_id) == [(parent_id,)]
        assert rows(db, "SELECT status FROM runs WHERE run_uuid = ?", run_id) == [("FINISHED",)]
    assert rows(db, "SELECT count(*) FROM metrics") == [(40000,)]
    assert rows(db, "SELECT status FROM runs WHERE run_uuid = ?", parent_id) == [("FINISHED",)]


def test_each_thread_has_its_own_active_run(fluent):
    main_run = fluent.start_run(run_name="main")
    seen = {}
    barrier = threading.Barrier(3)

    def own_run(name):
        assert fluent.active_run() is None  # the main thread's run is not this thread's
        with fluent.start_run(run_name=name) as run:  # not nested: a top-level run
            barrier.wait()
            for i in range(500):
                fluent.log_metric("x", float(i), step=i, synchronous=False)
            seen[name] = (run.info.run_id, fluent.active_run().info.run_id)

    threads = [threading.Thread(target=own_run, args=(f"t{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    barrier.wait()
    fluent.log_metric("main", 1.0)
    for t in threads:
        t.join()
    assert fluent.active_run().info.run_id == main_run.info.run_id
    fluent.end_run()
    client = fluent.MlflowClient()
    for name, (run_id, active_id) in seen.items():
        assert run_id == active_id
        run = client.get_run(run_id)
        assert "mlflow.parentRunId" not in run.data.tags and run.info.status == "FINISHED"
        assert len(client.get_metric_history(run_id, "x")) == 500
    assert client.get_run(main_run.info.run_id).data.metrics == {"main": 1.0}


def test_nested_in_a_thread_without_a_main_run_is_top_level(fluent):
    out = {}

    def work():
        with fluent.start_run(nested=True) as run:
            out["run"] = run

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert "mlflow.parentRunId" not in out["run"].data.tags


def test_thread_nests_under_its_own_run_before_the_main_threads(fluent):
    fluent.start_run(run_name="main")
    out = {}

    def work():
        with fluent.start_run(run_name="own") as own:
            with fluent.start_run(nested=True) as inner:
                out["ids"] = own.info.run_id, inner.data.tags.get("mlflow.parentRunId")

    t = threading.Thread(target=work)
    t.start()
    t.join()
    own_id, inner_parent = out["ids"]
    assert inner_parent == own_id
    fluent.end_run()


# -- processes ---------------------------------------------------------------------------------
def test_spawn_pool_sweep_exact_counts(fluent, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fluent.get_tracking_uri())  # for the workers
    parent_id, run_ids = spawn_sweep.sweep(processes=4, trials=16, points=500)
    db = fluent.get_tracking_uri()
    assert len(set(run_ids)) == 16
    assert rows(db, "SELECT count(*) FROM metrics WHERE key = 'loss'") == [(16 * 500,)]
    assert rows(db, "SELECT count(*) FROM metrics WHERE key = 'final_loss'") == [(16,)]
    assert rows(db, "SELECT count(*) FROM tags WHERE key = 'mlflow.parentRunId' AND value = ?", parent_id) == [(16,)]
    assert rows(db, "SELECT status, count(*) FROM runs GROUP BY status") == [("FINISHED", 17)]
    exp_id = fluent.get_experiment_by_name("spawn-sweep").experiment_id
    assert rows(db, "SELECT DISTINCT experiment_id FROM runs") == [(int(exp_id),)]
    assert rows(db, "SELECT count(*) FROM params") == [(32,)]


def _race_worker(args):
    uri, name = args
    import asynctrack as mlflow

    mlflow.set_tracking_uri(uri)
    exp = mlflow.set_experiment(name)
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0)
    return exp.experiment_id, run.info.experiment_id, os.environ["MLFLOW_EXPERIMENT_ID"]


def test_processes_racing_in_set_experiment_all_get_it(tmp_path):
    uri = f"sqlite:///{tmp_path}/race.db"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(6) as pool:
        results = pool.map(_race_worker, [(uri, "raced")] * 12, chunksize=1)
    ids = {r for result in results for r in result}
    assert len(ids) == 1  # every process made the same experiment active, and ran in it
    assert rows(tmp_path / "race.db", "SELECT count(*) FROM experiments WHERE name = 'raced'") == [(1,)]
    assert rows(tmp_path / "race.db", "SELECT count(*) FROM runs WHERE experiment_id = ?", int(ids.pop())) == [(12,)]


def _writer_process(uri, index, points):
    import asynctrack as mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("shared")
    with mlflow.start_run(run_name=f"proc-{index}"):
        for step in range(points):
            mlflow.log_metric("m", float(step), step=step, synchronous=False)
            if step % 1000 == 0:
                mlflow.log_metric("sync", float(step), step=step)  # a synchronous write too


def test_several_processes_write_one_file_at_once(tmp_path):
    uri = f"sqlite:///{tmp_path}/shared.db"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer_process, args=(uri, i, 10000)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 4
    db = tmp_path / "shared.db"
    assert rows(db, "SELECT count(*) FROM metrics WHERE key = 'm'") == [(40000,)]
    assert rows(db, "SELECT count(*) FROM metrics WHERE key = 'sync'") == [(40,)]
    assert rows(db, "SELECT count(DISTINCT run_uuid), min(status), max(status) FROM runs") == [(4, "FINISHED", "FINISHED")]
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]


def test_fork_child_does_not_write_the_parents_queue_twice(tmp_path):
    script = textwrap.dedent("""
        import os, sys
        import asynctrack as mlflow
        with mlflow.start_run(run_name="parent") as parent:
            for i in range(20000):
                mlflow.log_metric("p", float(i), step=i, synchronous=False)
            pid = os.fork()  # with the parent's queue likely not drained yet
            if pid == 0:
                with mlflow.start_run(run_name="child", nested=True) as child:
                    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
                    for i in range(3000):
                        mlflow.log_metric("c", float(i), step=i, synchronous=False)
                os._exit(0)  # no atexit, as multiprocessing's fork children end
            _, status = os.waitpid(pid, 0)
            assert status == 0, status
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    db = tmp_path / "mlflow.db"
    assert rows(db, "SELECT count(*) FROM metrics WHERE key = 'p'") == [(20000,)]
    assert rows(db, "SELECT count(*) FROM metrics WHERE key = 'c'") == [(3000,)]
    assert rows(db, "SELECT name, status FROM runs ORDER BY name") == [("child", "FINISHED"), ("parent", "FINISHED")]


def _fork_task(n):
    import asynctrack as mlflow

    with mlflow.start_run(run_name=f"fork-{n}"):
        for i in range(1000):
            mlflow.log_metric("f", float(i), step=i, synchronous=False)
    return n


def test_fork_pool_workers(fluent, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fluent.get_tracking_uri())  # for the workers
    with fluent.start_run(run_name="before-fork"):
        for i in range(5000):
            fluent.log_metric("pre", float(i), step=i, synchronous=False)
        with multiprocessing.get_context("fork").Pool(3) as pool:
            assert sorted(pool.map(_fork_task, range(6))) == list(range(6))
    db = fluent.get_tracking_uri()
    assert rows(db, "SELECT count(*) FROM metrics WHERE key = 'pre'") == [(5000,)]
    assert rows(db, "SELECT count(*) FROM metrics WHERE key = 'f'") == [(6000,)]
    assert rows(db, "SELECT count(*) FROM runs WHERE status = 'FINISHED'") == [(7,)]


def test_import_is_cheap_for_spawned_workers():
    """The figure lives in benchmarks/; here only that importing pulls in nothing heavy."""
    code = "import sys, asynctrack; print(','.join(sorted(m for m in ('pandas','numpy','sqlalchemy','matplotlib','PIL') if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_forking_while_the_writer_is_busy_never_hangs_the_child(tmp_path):
    """fork() while the writer thread is inside SQLite: the child must still open and write."""
    script = textwrap.dedent("""
        import os, threading
        import asynctrack as mlflow
        mlflow.start_run(run_name="busy")
        stop = False
        def logger():
            i = 0
            while not stop:
                mlflow.MlflowClient().log_batch(run_id, metrics=[mlflow.entities.Metric("b", float(i), 0, i + j) for j in range(200)])
                i += 200
        run_id = mlflow.active_run().info.run_id
        t = threading.Thread(target=logger)
        t.start()
        for n in range(25):
            pid = os.fork()
            if pid == 0:
                with mlflow.start_run(run_name=f"child-{n}"):
                    mlflow.log_metric("c", 1.0)
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            assert status == 0, status
        stop = True
        t.join()
        mlflow.end_run()
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert rows(tmp_path / "mlflow.db", "SELECT count(*) FROM metrics WHERE key = 'c'") == [(25,)]


FORK_CHILD_COLLECTS = textwrap.dedent("""
    import faulthandler, gc, os, warnings
    warnings.simplefilter("ignore", DeprecationWarning)  # 3.12: fork() of a threaded process
    faulthandler.dump_traceback_later(30, exit=True)  # a hang fails the test, with stacks
    import asynctrack as mlflow
    with mlflow.start_run() as run:
        mlflow.log_metric("a", 1.0)  # the writer, its loop and its connection are running
        mlflow.search_runs(["0"])  # and this thread's read connection is open
        pid = os.fork()
        if pid == 0:
            gc.collect()  # the child frees its copies of the parent's loop and connections
            os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
        mlflow.log_metric("b", 2.0)
        for i in range(100):
            mlflow.log_metric("c", float(i), step=i, synchronous=False)
    print(len(mlflow.MlflowClient().get_metric_history(run.info.run_id, "c")), len(mlflow.search_runs(["0"])))
""")


def test_a_fork_child_freeing_its_copy_of_the_writer_leaves_the_parents_working(store_kind, tmp_path, request):
    """The child's copy of the writer's event loop shared the parent's epoll instance: freeing
    it (its gc) removed the parent's sockets and wake-up from it, and the parent's next
    synchronous call on PostgreSQL waited forever (a fork pool hung so in CI)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = tracking_uri_of_kind(store_kind, tmp_path, request)
    out = subprocess.run([sys.executable, "-c", FORK_CHILD_COLLECTS], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["100", "1"]
