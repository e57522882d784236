"""Search: MLflow's filter language over 10,000 runs, against MLflow on the very same data.

Setup (not timed): the client creates the store (MLflow's schema, either library) and one
experiment and run; the other 9,999 runs are then cloned from it with the standard library's
sqlite3, each with 10 params, 10 metrics (history and latest) and 5 tags. Logging 10,000 runs
through MLflow's client would take many minutes and measure logging, not search; inserting the
rows directly gives both libraries byte-for-byte the same kind of file (MLflow's format is
asynctrack's).

Timed, through the client API only (``ctx.client.search_runs``), each the median of several:

* ``filter``: ``metrics.m0 < 0.2 AND params.p1 = 'x0'``, which 1,000 runs match (one page);
* ``ordered``: no filter, ``order_by=["metrics.m1 DESC"]``: the 1,000 best of 10,000;
* ``paging``: every run, 1,000 a page, following page tokens to the end (10 pages).

Each result is checked (counts, order, every run once, the loaded params/metrics/tags).

``search_frame``: the module-level ``search_runs`` over 1,000 runs of 1 param, 1 metric and
1 tag (a third still running), as a pandas DataFrame (the default) and as a list, in alternating
rounds: the DataFrame's cost as a multiple of the list's, measured in the same rounds, and
each DataFrame checked (shape, columns, values, NaT for the running runs).
"""

from __future__ import annotations

import sqlite3
import statistics
import time
import uuid

from _common import Checks, Context, Figure, workload

N_PARAMS, N_METRICS, N_TAGS = 10, 10, 5
FILTER = "metrics.m0 < 0.2 AND params.p1 = 'x0'"


def _m(i: int, k: int) -> float:
    """Metric k of run i: m0 cycles through 0.00..0.99; the others are spread out."""
    return (i % 100) / 100 if k == 0 else ((i * 7919 + k * 104729) % 10007) / 10007


def _fill(
    ctx: Context,
    n: int,
    n_params: int = N_PARAMS,
    n_metrics: int = N_METRICS,
    n_tags: int = N_TAGS - 1,
    running_every: int = 0,
) -> tuple[str, list[str]]:
    """``n`` runs of ``n_params`` params, ``n_metrics`` metrics and ``n_tags`` tags (and
    mlflow.runName); with ``running_every``, every such run after the first has no end_time."""
    exp = ctx.client.create_experiment("bench-search")
    first = ctx.client.create_run(exp, start_time=1_700_000_000_000, run_name="r0").info.run_id
    ctx.client.set_terminated(first)
    if ctx.impl == "asynctrack":
        ctx.client.flush()
    con = sqlite3.connect(str(ctx.tmpdir / "mlflow.db"), timeout=60)
    cols = [r[1] for r in con.execute("PRAGMA table_info(runs)")]
    template = dict(zip(cols, con.execute("SELECT * FROM runs WHERE run_uuid = ?", (first,)).fetchone()))
    ids = [first] + [uuid.uuid4().hex for _ in range(n - 1)]
    runs, params, metrics, latest, tags = [], [], [], [], []
    for i, rid in enumerate(ids):
        if i:
            row = dict(template)
            row.update(run_uuid=rid, name=f"r{i}", start_time=1_700_000_000_000 + i * 10,
                       artifact_uri=template["artifact_uri"].replace(first, rid))
            if running_every and i % running_every == 0:
                row.update(status="RUNNING", end_time=None)
            runs.append(tuple(row[c] for c in cols))
        params += [(f"p{k}", f"x{i % 2}" if k == 1 else f"v{(i * 31 + k) % 97}", rid)
                   for k in range(n_params)]
        for k in range(n_metrics):
            metrics.append((f"m{k}", _m(i, k), 1_700_000_000_000 + i, rid, 0, 0))
            latest.append((f"m{k}", _m(i, k), 1_700_000_000_000 + i, 0, 0, rid))
        tags += [(f"t{k}", f"tag{(i + k) % 13}", rid) for k in range(n_tags)]
        tags.append(("mlflow.runName", f"r{i}", rid))
    with con:
        con.executemany(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", runs)
        con.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", params)
        con.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)",
            metrics)
        con.executemany(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
            "VALUES (?, ?, ?, ?, ?, ?)", latest)
        con.execute("DELETE FROM tags WHERE run_uuid = ?", (first,))
        con.executemany("INSERT OR REPLACE INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tags)
    con.close()
    return exp, ids


def _timed(fn, repeats: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times, result


@workload("search", sizes={"asynctrack": 10_000, "mlflow": 10_000}, timeout_s=1800)
def search(ctx: Context) -> dict:
    """search_runs over 10,000 runs: a 1,000-run filter, an ordered top 1,000, paging all."""
    n = ctx.size
    exp, ids = _fill(ctx, n)
    client = ctx.client
    repeats = 9 if ctx.impl == "asynctrack" else 3
    checks = Checks()

    filter_times, found = _timed(lambda: client.search_runs([exp], FILTER, max_results=1000), repeats)
    want = {rid for i, rid in enumerate(ids) if i % 100 < 20 and i % 2 == 0}
    checks.expect("runs matching the filter", {r.info.run_id for r in found}, want)
    checks.expect("token after the filtered page", found.token, None)
    sample = found[0]
    checks.expect("params of a found run", len(sample.data.params), N_PARAMS)
    checks.expect("metrics of a found run", len(sample.data.metrics), N_METRICS)
    checks.expect("tags of a found run", len(sample.data.tags), N_TAGS)

    ordered_times, top = _timed(
        lambda: client.search_runs([exp], "", max_results=1000, order_by=["metrics.m1 DESC"]), repeats
    )
    m1 = sorted(((_m(i, 1), rid) for i, rid in enumerate(ids)), key=lambda x: -x[0])[:1000]
    checks.expect("top 1,000 by m1 (values)", [r.data.metrics["m1"] for r in top], [v for v, _ in m1])

    def page_all():
        out, token = [], None
        while True:
            page = client.search_runs([exp], "", max_results=1000, page_token=token)
            out.extend(r.info.run_id for r in page)
            token = page.token
            if not token:
                return out

    paging_times, every = _timed(page_all, max(1, repeats // 3))
    checks.expect("runs seen paging, each once", (len(every), len(set(every))), (n, n))
    checks.expect("default order (start_time DESC)", every[:3], ids[::-1][:3])
    return {
        "filter_ms": statistics.median(filter_times),
        "filter_first_ms": filter_times[0],
        "ordered_ms": statistics.median(ordered_times),
        "paging_ms": statistics.median(paging_times),
        "found": len(found),
        **checks.result(),
    }


FRAME_RUNS, RUNNING_EVERY = 1_000, 3


@workload("search_frame", sizes={"asynctrack": FRAME_RUNS, "mlflow": FRAME_RUNS}, timeout_s=900)
def search_frame(ctx: Context) -> dict:
    """Module-level search_runs of 1,000 runs (1 param, metric and tag each): DataFrame vs list."""
    mlflow, n = ctx.lib, ctx.size
    exp, ids = _fill(ctx, n, 1, 1, 1, running_every=RUNNING_EVERY)
    mlflow.set_tracking_uri(ctx.uri)
    rounds = 15 if ctx.impl == "asynctrack" else 5
    search = mlflow.search_runs
    search(experiment_ids=[exp], max_results=n)  # first call: imports pandas, opens the store
    frame_times, list_times = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        df = search(experiment_ids=[exp], max_results=n)
        t1 = time.perf_counter()
        runs = search(experiment_ids=[exp], max_results=n, output_format="list")
        t2 = time.perf_counter()
        frame_times.append((t1 - t0) * 1000)
        list_times.append((t2 - t1) * 1000)

    checks = Checks()
    running = {rid for i, rid in enumerate(ids) if i and i % RUNNING_EVERY == 0}
    checks.expect("runs in the list", {r.info.run_id for r in runs}, set(ids))
    checks.expect("DataFrame rows", len(df), n)
    checks.expect("DataFrame columns", sorted(df.columns), sorted([
        "run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time",
        "metrics.m0", "params.p0", "tags.t0", "tags.mlflow.runName",
    ]))
    checks.expect("run ids, newest first", list(df["run_id"]), ids[::-1])
    checks.expect("start_time's dtype", str(df["start_time"].dtype).endswith(", UTC]"), True)
    checks.expect("runs without end_time", set(df["run_id"][df["end_time"].isna()]), running)
    checks.expect("metrics.m0", list(df["metrics.m0"]), [_m(i, 0) for i in range(n)][::-1])
    checks.expect("params.p0", list(df["params.p0"]), [f"v{(i * 31) % 97}" for i in range(n)][::-1])
    ratios = sorted(f / lst for f, lst in zip(frame_times, list_times))
    return {
        "frame_ms": statistics.median(frame_times),
        "list_ms": statistics.median(list_times),
        "frame_over_list": statistics.median(ratios),
        "rounds_frame_ms": frame_times,
        "rounds_list_ms": list_times,
        **checks.result(),
    }


FIGURES = [
    Figure("search", "filter_ms", "`search_runs`, filter matching 1,000 of 10,000 runs (median)",
           "ms", higher_is_better=False, target=0.9, floor="floor_search.with_data_ms"),
    Figure("search", "filter_first_ms", "`search_runs`, same filter, first call",
           "ms", higher_is_better=False),
    Figure("search", "ordered_ms", "`search_runs`, top 1,000 of 10,000 by a metric (median)",
           "ms", higher_is_better=False),
    Figure("search", "paging_ms", "`search_runs`, paging through all 10,000 runs (10 pages)",
           "ms", higher_is_better=False),
    Figure("search_frame", "frame_ms", "module-level `search_runs`, 1,000 runs as a DataFrame "
           "(median)", "ms", higher_is_better=False),
    Figure("search_frame", "list_ms", "module-level `search_runs`, the same 1,000 runs as a list "
           "(median)", "ms", higher_is_better=False),
    Figure("search_frame", "frame_over_list", "DataFrame time ÷ list time, 1,000 runs (median of "
           "rounds)", "x", higher_is_better=False, target=1.5, target_of="value", comparable=False),
]
