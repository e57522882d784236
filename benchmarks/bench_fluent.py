"""The module-level API under concurrency: child runs in threads, and a spawn-pool sweep.

Both use ``ctx.lib`` as ``mlflow`` (``import asynctrack as mlflow`` / ``import mlflow``), exactly
as a user's script would, and check afterwards that every point is stored in the right run under
the right parent: a run that lost points or parents is reported as FAILED, not as a figure.
"""

from __future__ import annotations

import multiprocessing
import threading
import time

import _fluent_tasks
from _common import Checks, Context, Figure, workload

THREADS = 8


HUNG_AFTER_S = 120.0  # MLflow's async-logging shutdown can deadlock here (see below)


@workload("threads_nested", sizes={"asynctrack": 5_000, "mlflow": 50}, timeout_s=600)
def threads_nested(ctx: Context) -> dict:
    """8 threads, each a nested child run (start_run(nested=True)) logging ``size`` points with
    synchronous=False and ending at once; points/s from the first thread's start to the parent's
    end."""
    mlflow, n = ctx.lib, ctx.size
    mlflow.set_tracking_uri(ctx.uri)
    mlflow.set_experiment("bench-threads")
    child_ids: list = [None] * THREADS

    def child(index: int) -> None:
        with mlflow.start_run(nested=True, run_name=f"child-{index}") as run:
            for step in range(n):
                mlflow.log_metric("loss", step * 0.5 + index, step=step, synchronous=False)
        child_ids[index] = run.info.run_id

    start = time.perf_counter()
    parent = mlflow.start_run(run_name="parent")  # not `with`: a hung child must not reach end_run
    threads = [threading.Thread(target=child, args=(i,), daemon=True) for i in range(THREADS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + HUNG_AFTER_S
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    hung = sum(t.is_alive() for t in threads)
    if hung:
        # Seen with MLflow 3.18: every child's end_run waits in its async-logging queue's
        # ThreadPoolExecutor.shutdown (py-spy), for ever, with no CPU used.
        return {"ok": False, "hung": True, "problems": [
            f"{hung} of {THREADS} threads' end_run had not returned after {HUNG_AFTER_S:.0f} s "
            "(hung; MLflow 3.18: in its async-logging queue's ThreadPoolExecutor.shutdown)"]}
    mlflow.end_run()
    elapsed = time.perf_counter() - start

    checks = Checks()
    client = ctx.client
    stored = 0
    for i, run_id in enumerate(child_ids):
        if run_id is None:
            checks.problems.append(f"child {i} never finished")
            continue
        hist = checks.history(client, run_id, "loss", n, lambda s, i=i: s * 0.5 + i)
        stored += len(hist)
        run = client.get_run(run_id)
        checks.expect(f"child {i} parent tag", run.data.tags.get("mlflow.parentRunId"), parent.info.run_id)
        checks.expect(f"child {i} status", run.info.status, "FINISHED")
    checks.counts = {"stored_points": stored}
    return {"points": THREADS * n, "points_per_s": THREADS * n / elapsed, **checks.result()}


@workload("spawn_sweep", sizes={"asynctrack": 1_000, "mlflow": 100}, timeout_s=900)
def spawn_sweep(ctx: Context) -> dict:
    """A spawn pool of 4 processes running 32 trials (child runs) of ``size`` asynchronous points
    each; points/s of wall time, pool start-up included."""
    mlflow, n = ctx.lib, ctx.size
    procs, trials = 4, 32
    mlflow.set_tracking_uri(ctx.uri)
    mlflow.set_experiment("bench-sweep")
    start = time.perf_counter()
    with mlflow.start_run(run_name="sweep") as parent:
        tasks = [(ctx.impl, ctx.uri, parent.info.run_id, i, n) for i in range(trials)]
        with multiprocessing.get_context("spawn").Pool(procs) as pool:
            run_ids = pool.map(_fluent_tasks.trial, tasks, chunksize=1)
    elapsed = time.perf_counter() - start

    checks = Checks()
    stored = 0
    for i, run_id in enumerate(run_ids):
        hist = ctx.client.get_metric_history(run_id, "loss")
        stored += len(hist)
        checks.expect(f"points of trial {i}", len(hist), n)
        run = ctx.client.get_run(run_id)
        checks.expect(f"trial {i} parent tag", run.data.tags.get("mlflow.parentRunId"), parent.info.run_id)
        checks.expect(f"trial {i} param", run.data.params.get("trial"), str(i))
    checks.counts = {"stored_points": stored}
    return {"points": trials * n, "points_per_s": trials * n / elapsed, **checks.result()}


LOG_METRICS_KEYS = ("loss", "accuracy", "lr", "grad_norm", "epoch_time")


@workload("fluent_log_metrics", sizes={"asynctrack": 1_000_000, "mlflow": 10_000}, timeout_s=600)
def fluent_log_metrics(ctx: Context) -> dict:
    """A training loop as most scripts write it: ``mlflow.log_metrics({5 metrics}, step=step,
    synchronous=False)`` each step, ``size`` points in all; points/s until all are stored."""
    mlflow, n = ctx.lib, ctx.size
    mlflow.set_tracking_uri(ctx.uri)
    mlflow.set_experiment("bench-log-metrics")
    keys = LOG_METRICS_KEYS
    steps = n // len(keys)
    ops = None
    with mlflow.start_run(run_name="log_metrics") as run:
        start = time.perf_counter()
        for step in range(steps):
            base = step * 0.5
            ops = mlflow.log_metrics({key: base + k for k, key in enumerate(keys)}, step=step, synchronous=False)
        logged = time.perf_counter()
        ctx.wait_stored(ops)
        stored = time.perf_counter()

    checks = Checks()
    for k, key in enumerate(keys):
        checks.history(ctx.client, run.info.run_id, key, steps, lambda s, k=k: s * 0.5 + k)
    got = ctx.client.get_run(run.info.run_id).data.metrics
    checks.expect("latest metrics", got, {key: (steps - 1) * 0.5 + k for k, key in enumerate(keys)})
    return {
        "points": steps * len(keys),
        "points_per_s": steps * len(keys) / (stored - start),
        "caller_us_per_call": (logged - start) / steps * 1e6,
        **checks.result(),
    }


FIGURES = [
    Figure("threads_nested", "points_per_s", "8 threads × nested async child runs, end to end",
           "points/s", True, target=0.35, floor="floor_bulk.points_per_s"),
    Figure("spawn_sweep", "points_per_s", "spawn pool, 4 processes × 32 trials, wall",
           "points/s", True),
    Figure("fluent_log_metrics", "points_per_s", "1,000,000 points as async `log_metrics` of 5 a step, end to end",
           "points/s", True, floor="floor_bulk.points_per_s"),
    Figure("fluent_log_metrics", "caller_us_per_call", "async `log_metrics` of 5 metrics, caller time a call",
           "us", higher_is_better=False),
]
