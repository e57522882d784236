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
    after = rss_mb()  # before reading back (the list of timings is in it: ~4 MB per 100,000)
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
        "peak_rss_mb": after["peak_rss_mb"],
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
    if ctx.impl == "asynctrack":  # this checkout's asynctrack, as every other workload imports
        root = os.path.dirname(os.path.dirname(os.path.abspath(ctx.lib.__file__)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))

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
def _write_history(ctx: Context, run_id: str, n: int) -> None:
    """One metric ``h`` of n points, 1,000 a log_batch call (not timed)."""
    Metric = ctx.Metric
    ts = int(time.time() * 1000)
    for lo in range(0, n, 1000):
        batch = [Metric("h", s * 0.125, ts, s) for s in range(lo, min(n, lo + 1000))]
        ctx.client.log_batch(run_id, metrics=batch, synchronous=True)
    ctx.wait_stored()


def _check_history(checks: Checks, hist: list, n: int, samples: int = 200) -> None:
    """The last timed read itself is checked (a further read of 1M points would cost minutes
    under MLflow): n points, n distinct steps, sampled values."""
    by_step = {m.step: m.value for m in hist}
    checks.counts["stored_h"] = len(hist)
    checks.expect("points of 'h'", len(hist), n)
    checks.expect("distinct steps of 'h'", len(by_step), n)
    steps = sorted({*range(0, n, max(1, n // samples)), n - 1})
    wrong = [s for s in steps if by_step.get(s) != s * 0.125]
    if wrong:
        checks.problems.append(f"'h': {len(wrong)} sampled values wrong, e.g. step {wrong[0]}")


def _history_reads(ctx: Context, name: str, repeats: int) -> dict:
    """get_metric_history of one metric of ``size`` points, ``repeats`` times: first, median."""
    client, n = ctx.client, ctx.size
    run_id = ctx.new_run(name)
    _write_history(ctx, run_id, n)
    client.set_terminated(run_id)
    client.get_run(run_id)  # any read-your-writes flush happens here, not in the timed reads
    times, lengths, hist = [], [], []
    for _ in range(repeats):
        hist = None  # the previous read is freed before the next one
        t0 = time.perf_counter()
        hist = client.get_metric_history(run_id, "h")
        times.append(time.perf_counter() - t0)
        lengths.append(len(hist))
    checks = Checks()
    checks.expect(f"lengths of the {repeats} reads", lengths, [n] * repeats)
    _check_history(checks, hist, n)
    del hist
    checks.run(ctx, run_id, name, {"h": (n - 1) * 0.125})
    first = times[0]
    times.sort()
    return {
        "points": n,
        "reads": repeats,
        "first_ms": first * 1000,
        "median_ms": times[len(times) // 2] * 1000,
        "best_ms": times[0] * 1000,
        **checks.result(),
    }


@workload("get_metric_history", sizes={"asynctrack": 100_000, "mlflow": 100_000})
def get_metric_history(ctx: Context) -> dict:
    """get_metric_history of one metric of `size` points (written first with log_batch), 5 reads."""
    return _history_reads(ctx, "get_metric_history", 5)


@workload("get_metric_history_1m", sizes={"asynctrack": 1_000_000, "mlflow": 1_000_000},
          timeout_s=1200)
def get_metric_history_1m(ctx: Context) -> dict:
    """get_metric_history of one metric of 1,000,000 points: 3 reads for asynctrack, 2 for
    MLflow (each of its reads takes about half a minute here)."""
    return _history_reads(ctx, "get_metric_history_1m", 3 if ctx.impl == "asynctrack" else 2)


# (8) ----------------------------------------------------------------------------------------------
def _timed_calls(fn, run_id: str, prefix: str, n: int, **kwargs) -> tuple[list[int], object]:
    """n calls fn(run_id, f"{prefix}{i}", f"v{i}", **kwargs), each timed alone (ns)."""
    clock = time.perf_counter_ns
    times, ops = [0] * n, None
    for i in range(n):
        t0 = clock()
        ops = fn(run_id, f"{prefix}{i}", f"v{i}", **kwargs)
        times[i] = clock() - t0
    return times, ops


@workload("params_tags", sizes={"asynctrack": 5_000, "mlflow": 200})
def params_tags(ctx: Context) -> dict:
    """``size`` distinct keys each of: log_param and set_tag with synchronous=True (per call),
    then log_param and set_tag with synchronous=False (caller time, and calls/s until stored)."""
    client, n = ctx.client, ctx.size
    run_id = ctx.new_run("params_tags")
    p_sync, _ = _timed_calls(client.log_param, run_id, "sp", n, synchronous=True)
    t_sync, _ = _timed_calls(client.set_tag, run_id, "st", n, synchronous=True)
    start = time.perf_counter()
    p_async, _ = _timed_calls(client.log_param, run_id, "ap", n, synchronous=False)
    t_async, ops = _timed_calls(client.set_tag, run_id, "at", n, synchronous=False)
    ctx.wait_stored(ops)
    async_s = time.perf_counter() - start
    client.set_terminated(run_id)

    checks = Checks()
    checks.run(ctx, run_id, "params_tags")
    run = client.get_run(run_id)
    params, tags = run.data.params, run.data.tags
    for prefix, where in (("sp", params), ("ap", params), ("st", tags), ("at", tags)):
        got = {k: v for k, v in where.items() if k.startswith(prefix) and k[2:].isdigit()}
        checks.expect(f"keys {prefix}0..{prefix}{n - 1} stored with their values", got,
                      {f"{prefix}{i}": f"v{i}" for i in range(n)})
    checks.counts.update(stored_params=len(params), stored_tags=len(tags))
    return {
        **latency_stats(p_sync, "sync_param"),
        **latency_stats(t_sync, "sync_tag"),
        **latency_stats(p_async + t_async, "async_caller"),
        "async_calls_per_s": 2 * n / async_s,
        "calls": 4 * n,
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
           "us", higher_is_better=False, target=5, target_of="mlflow"),
    Figure("async_log_metric", "caller_mean_us", "async `log_metric` caller latency, mean",
           "us", higher_is_better=False, target=10, target_of="mlflow"),
    Figure("async_log_metric", "caller_p99_us", "async `log_metric` caller latency, p99",
           "us", higher_is_better=False),
    Figure("async_log_metric", "caller_max_us", "async `log_metric` caller latency, max",
           "us", higher_is_better=False),
    Figure("async_log_metric", "points_per_s", "async `log_metric`, end to end (until stored)",
           "points/s", higher_is_better=True, floor="floor_bulk.points_per_s"),
    Figure("async_log_metric", "peak_rss_mb", "peak RSS, async `log_metric` of 100,000 points",
           "MB", higher_is_better=False, comparable=False),
    Figure("wide", "points_per_s", "1,000 metric keys every step, async, end to end",
           "points/s", higher_is_better=True),
    Figure("async_1m", "points_per_s", "1,000,000 async points, end to end",
           "points/s", higher_is_better=True, target=0.7, floor="floor_bulk.points_per_s",
           note="floor: the same 1,000,000 rows, prepared before the clock starts, in 50,000-row "
           "commits; asynctrack's figure also pays for the 1,000,000 logging calls, on the same GIL"),
    Figure("async_1m", "peak_rss_mb", "peak RSS while logging 1,000,000 async points",
           "MB", higher_is_better=False, target=2, target_of="mlflow", comparable=False,
           note="MLflow logs far fewer points, and its import alone weighs more"),
    Figure("sync_log_metric", "call_mean_us", "sync `log_metric`, mean",
           "us", higher_is_better=False, target=10, target_of="mlflow"),
    Figure("sync_log_metric", "call_median_us", "sync `log_metric`, median",
           "us", higher_is_better=False),
    Figure("log_batch", "points_per_s", "`log_batch` of 1,000 metrics a call",
           "points/s", higher_is_better=True, target=0.9, floor="floor_log_batch.points_per_s"),
    Figure("import", "import_ms", "`import` in a fresh interpreter",
           "ms", higher_is_better=False, target=10, target_of="mlflow"),
    Figure("get_metric_history", "median_ms", "`get_metric_history` of 100,000 points (median of 5)",
           "ms", higher_is_better=False, target=10, target_of="mlflow"),
    Figure("get_metric_history", "first_ms", "`get_metric_history` of 100,000 points, first read",
           "ms", higher_is_better=False),
    Figure("get_metric_history_1m", "median_ms",
           "`get_metric_history` of 1,000,000 points (median of 3; MLflow: of 2)",
           "ms", higher_is_better=False),
    Figure("get_metric_history_1m", "first_ms", "`get_metric_history` of 1,000,000 points, first read",
           "ms", higher_is_better=False),
    Figure("params_tags", "sync_param_mean_us", "sync `log_param`, mean (distinct keys)",
           "us", higher_is_better=False),
    Figure("params_tags", "sync_tag_mean_us", "sync `set_tag`, mean (distinct keys)",
           "us", higher_is_better=False),
    Figure("params_tags", "async_caller_median_us", "async `log_param` / `set_tag`, caller median",
           "us", higher_is_better=False),
    Figure("params_tags", "async_calls_per_s", "async `log_param` / `set_tag`, end to end",
           "calls/s", higher_is_better=True),
]
