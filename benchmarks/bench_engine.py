"""The engine: logging latency, throughput, memory, import time and reading back, against MLflow.

Every workload runs in a fresh interpreter on a fresh store (see ``_common.py``), only through
the client API shared by ``asynctrack.MlflowClient`` and ``mlflow.MlflowClient``, and checks
what was stored before its figures count. MLflow runs smaller sizes where it is far slower
(``sizes``); the figures are per call or per point, so they compare all the same.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from _common import Checks, Context, Figure, latency_stats, rss_mb, timer_overhead_ns, workload


# (1) ----------------------------------------------------------------------------------------------
@workload("async_log_metric", sizes={"asynctrack": 100_000, "mlflow": 5_000})
def async_log_metric(ctx: Context) -> dict:
    """Caller latency of log_metric(synchronous=False), timed call by call, then until stored."""
    client, n = ctx.client, ctx.size
    run_id = ctx.new_run("async_log_metric")
    overhead = timer_overhead_ns()
    clock = time.perf_counter_ns
    log = client.log_metric
    times = [0] * n
    ops = None
    start = clock()
    for i in range(n):
        t0 = clock()
        ops = log(run_id, "loss", i * 0.5, step=i, synchronous=False)
        times[i] = clock() - t0
    logged = clock()
    ctx.wait_stored(ops)
    stored = clock()
    client.set_terminated(run_id)

    checks = Checks()
    checks.history(client, run_id, "loss", n, lambda s: s * 0.5)
    checks.run(ctx, run_id, "async_log_metric", {"loss": (n - 1) * 0.5})
    return {
        **latency_stats(times, "caller"),
        "timer_overhead_us": overhead / 1000,
        "caller_points_per_s": n / ((logged - start) / 1e9),
        "points_per_s": n / ((stored - start) / 1e9),
        "drain_after_last_call_s": (stored - logged) / 1e9,
        "points": n,
        **checks.result(),
    }


# (2) ----------------------------------------------------------------------------------------------
ASYNC_KEYS = ("loss", "metric_1", "metric_2", "metric_3", "metric_4")


@workload("async_1m", sizes={"asynctrack": 1_000_000, "mlflow": 10_000})
def async_1m(ctx: Context) -> dict:
    """A training loop: 5 metrics a step, synchronous=False, until every point is stored; RSS."""
    client = ctx.client
    run_id = ctx.new_run("async_1m")
    keys = ASYNC_KEYS
    steps = ctx.size // len(keys)
    n = steps * len(keys)
    log = client.log_metric
    before = rss_mb()
    ops = None
    start = time.perf_counter()
    for step in range(steps):
        base = step * 0.5
        for k, key in enumerate(keys):
            ops = log(run_id, key, base + k, step=step, synchronous=False)
    logged = time.perf_counter()
    ctx.wait_stored(ops)
    stored = time.perf_counter()
    after = rss_mb()  # before reading anything back: reading 1M points costs memory of its own
    client.set_terminated(run_id)

    checks = Checks()
    for k, key in enumerate(keys):
        checks.history(client, run_id, key, steps, lambda s, k=k: s * 0.5 + k)
    checks.counts["stored_points"] = sum(
        checks.counts.get(f"stored_{key}", 0) for key in keys
    )
    checks.run(ctx, run_id, "async_1m", {key: (steps - 1) * 0.5 + k for k, key in enumerate(keys)})
    return {
        "points": n,
        "points_per_s": n / (stored - start),
        "caller_points_per_s": n / (logged - start),
        "drain_after_last_call_s": stored - logged,
        "rss_before_mb": before["rss_mb"],
        "peak_rss_mb": after["peak_rss_mb"],
        "rss_growth_mb": after["peak_rss_mb"] - before["rss_mb"],
        **checks.result(),
    }


# (3) ----------------------------------------------------------------------------------------------
@workload("sync_log_metric", sizes={"asynctrack": 5_000, "mlflow": 500})
def sync_log_metric(ctx: Context) -> dict:
    """log_metric(synchronous=True): each call returns once its point is committed."""
    client, n = ctx.client, ctx.size
    run_id = ctx.new_run("sync_log_metric")
    clock = time.perf_counter_ns
    log = client.log_metric
    times = [0] * n
    start = clock()
    for i in range(n):
        t0 = clock()
        log(run_id, "acc", i * 0.25, step=i, synchronous=True)
        times[i] = clock() - t0
    elapsed = clock() - start
    client.set_terminated(run_id)

    checks = Checks()
    checks.history(client, run_id, "acc", n, lambda s: s * 0.25)
    checks.run(ctx, run_id, "sync_log_metric", {"acc": (n - 1) * 0.25})
    return {
        **latency_stats(times, "call"),
        "points_per_s": n / (elapsed / 1e9),
        "points": n,
        **checks.result(),
    }


# (4) ----------------------------------------------------------------------------------------------
BATCH_KEYS = 10
BATCH_STEPS = 100  # 10 keys x 100 steps = 1,000 metrics a call, MLflow's limit per request


@workload("log_batch", sizes={"asynctrack": 200, "mlflow": 20})
def log_batch(ctx: Context) -> dict:
    """log_batch of 1,000 metrics a call (10 keys x 100 steps), synchronous; size = calls."""
    client, calls = ctx.client, ctx.size
    run_id = ctx.new_run("log_batch")
    Metric = ctx.Metric
    ts = int(time.time() * 1000)
    keys = [f"batch_{k}" for k in range(BATCH_KEYS)]
    # Built before the clock starts: the figure is the library's, not the entities'.
    batches = [
        [
            Metric(key, (j * BATCH_STEPS + s) * 0.25 + k, ts, j * BATCH_STEPS + s)
            for s in range(BATCH_STEPS)
            for k, key in enumerate(keys)
        ]
        for j in range(calls)
    ]
    per_call = []
    start = time.perf_counter()
    for batch in batches:
        t0 = time.perf_counter()
        client.log_batch(run_id, metrics=batch, synchronous=True)
        per_call.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    client.set_terminated(run_id)
    n = calls * BATCH_STEPS * BATCH_KEYS
    steps = calls * BATCH_STEPS

    checks = Checks()
    for k, key in enumerate(keys):
        checks.history(client, run_id, key, steps, lambda s, k=k: s * 0.25 + k, samples=50)
    checks.counts["stored_points"] = sum(checks.counts.get(f"stored_{key}", 0) for key in keys)
    per_call.sort()
    return {
        "points": n,
        "calls": calls,
        "points_per_s": n / elapsed,
        "call_median_ms": per_call[len(per_call) // 2] * 1000,
        **checks.result(),
    }


# (5) ----------------------------------------------------------------------------------------------
@workload("import", sizes={"asynctrack": 5, "mlflow": 5}, timeout_s=300)
def import_time(ctx: Context) -> dict:
    """`python -c "import <lib>"` minus `python -c "pass"`, best of `size`, fresh interpreters."""
    name = ctx.lib.__name__
    env = dict(os.environ)

    def best(code: str) -> tuple[float, subprocess.CompletedProcess]:
        times, proc = [], None
        for _ in range(ctx.size):
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, env=env
            )
            times.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                break
        return min(times), proc

    # warm the OS cache and the bytecode caches once, then time (interleaved runs would let
    # one side inherit the other's cache state; best-of absorbs the noise)
    best(f"import {name}")
    empty, _ = best("pass")
    full, proc = best(f"import {name}; print({name}.__file__)")
    checks = Checks()
    checks.expect(f"`import {name}` exit status", proc.returncode, 0)
    if proc.returncode != 0:
        checks.problems.append(proc.stderr.strip()[-500:])
    return {
        "import_ms": (full - empty) * 1000,
        "interpreter_ms": empty * 1000,
        "module_file": proc.stdout.strip(),
        **checks.result(),
    }


# (6) ----------------------------------------------------------------------------------------------
@workload("get_metric_history", sizes={"asynctrack": 100_000, "mlflow": 100_000})
def get_metric_history(ctx: Context) -> dict:
    """get_metric_history of one metric of `size` points (written first with log_batch)."""
    client, n = ctx.client, ctx.size
    run_id = ctx.new_run("get_metric_history")
    Metric = ctx.Metric
    ts = int(time.time() * 1000)
    for lo in range(0, n, 1000):
        batch = [Metric("h", s * 0.125, ts, s) for s in range(lo, min(n, lo + 1000))]
        client.log_batch(run_id, metrics=batch, synchronous=True)
    ctx.wait_stored()
    client.set_terminated(run_id)
    client.get_run(run_id)  # any read-your-writes flush happens here, not in the timed reads

    times, lengths = [], []
    for _ in range(5):
        t0 = time.perf_counter()
        hist = client.get_metric_history(run_id, "h")
        times.append(time.perf_counter() - t0)
        lengths.append(len(hist))
        del hist
    checks = Checks()
    checks.expect("lengths of the 5 reads", lengths, [n] * 5)
    checks.history(client, run_id, "h", n, lambda s: s * 0.125)
    checks.run(ctx, run_id, "get_metric_history", {"h": (n - 1) * 0.125})
    first = times[0]
    times.sort()
    return {
        "points": n,
        "first_ms": first * 1000,
        "median_ms": times[len(times) // 2] * 1000,
        "best_ms": times[0] * 1000,
        **checks.result(),
    }


# -- the report's rows --------------------------------------------------------------------------------
# (7) ----------------------------------------------------------------------------------------------
WIDE_KEYS = 1000


@workload("wide", sizes={"asynctrack": 200, "mlflow": 5})
def wide(ctx: Context) -> dict:
    """The wide case: 1,000 distinct metric keys (per-layer statistics) logged every step with
    synchronous=False, ``size`` steps; points/s until stored."""
    client = ctx.client
    run_id = ctx.new_run("wide")
    keys = [f"layer_{i:04d}/grad_norm" for i in range(WIDE_KEYS)]
    log = client.log_metric
    ops = None
    start = time.perf_counter()
    for step in range(ctx.size):
        for k, key in enumerate(keys):
            ops = log(run_id, key, step + k / 1000, step=step, synchronous=False)
    ctx.wait_stored(ops)
    stored = time.perf_counter()
    client.set_terminated(run_id)

    checks = Checks()
    total = 0
    for k in range(0, WIDE_KEYS, 37):  # every 37th key's whole history, and the last key's
        hist = checks.history(client, run_id, keys[k], ctx.size, lambda s, k=k: s + k / 1000)
        total += len(hist)
    checks.history(client, run_id, keys[-1], ctx.size, lambda s: s + (WIDE_KEYS - 1) / 1000)
    checks.run(ctx, run_id, "wide")
    checks.expect("latest metrics", len(client.get_run(run_id).data.metrics), WIDE_KEYS)
    n = ctx.size * WIDE_KEYS
    return {"points": n, "points_per_s": n / (stored - start), **checks.result()}


FIGURES = [
    Figure("async_log_metric", "caller_median_us", "async `log_metric` caller latency, median",
           "us", higher_is_better=False, target=3),
    Figure("async_log_metric", "caller_mean_us", "async `log_metric` caller latency, mean",
           "us", higher_is_better=False, target=5),
    Figure("async_log_metric", "caller_p99_us", "async `log_metric` caller latency, p99",
           "us", higher_is_better=False),
    Figure("async_log_metric", "caller_max_us", "async `log_metric` caller latency, max",
           "us", higher_is_better=False),
    Figure("async_log_metric", "points_per_s", "async `log_metric`, end to end (until stored)",
           "points/s", higher_is_better=True),
    Figure("wide", "points_per_s", "1,000 metric keys every step, async, end to end",
           "points/s", higher_is_better=True),
    Figure("async_1m", "points_per_s", "1,000,000 async points, end to end",
           "points/s", higher_is_better=True, target=200_000),
    Figure("async_1m", "peak_rss_mb", "peak RSS while logging 1,000,000 async points",
           "MB", higher_is_better=False, target=150, comparable=False,
           note="MLflow logs far fewer points, and its import alone weighs more"),
    Figure("sync_log_metric", "call_mean_us", "sync `log_metric`, mean",
           "us", higher_is_better=False, target=150),
    Figure("sync_log_metric", "call_median_us", "sync `log_metric`, median",
           "us", higher_is_better=False),
    Figure("log_batch", "points_per_s", "`log_batch` of 1,000 metrics a call",
           "points/s", higher_is_better=True, target=250_000),
    Figure("import", "import_ms", "`import` in a fresh interpreter",
           "ms", higher_is_better=False, target=100),
    Figure("get_metric_history", "median_ms", "`get_metric_history` of 100,000 points (median of 5)",
           "ms", higher_is_better=False, target=100),
    Figure("get_metric_history", "first_ms", "`get_metric_history` of 100,000 points, first read",
           "ms", higher_is_better=False),
]
