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


def _fill(ctx: Context, n: int) -> tuple[str, list[str]]:
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
            runs.append(tuple(row[c] for c in cols))
        params += [(f"p{k}", f"x{i % 2}" if k == 1 else f"v{(i * 31 + k) % 97}", rid)
                   for k in range(N_PARAMS)]
        for k in range(N_METRICS):
            metrics.append((f"m{k}", _m(i, k), 1_700_000_000_000 + i, rid, 0, 0))
            latest.append((f"m{k}", _m(i, k), 1_700_000_000_000 + i, 0, 0, rid))
        tags += [(f"t{k}", f"tag{(i + k) % 13}", rid) for k in range(N_TAGS - 1)]
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


FIGURES = [
    Figure("search", "filter_ms", "`search_runs`, filter matching 1,000 of 10,000 runs (median)",
           "ms", higher_is_better=False, target=0.9, floor="floor_search.with_data_ms"),
    Figure("search", "filter_first_ms", "`search_runs`, same filter, first call",
           "ms", higher_is_better=False),
    Figure("search", "ordered_ms", "`search_runs`, top 1,000 of 10,000 by a metric (median)",
           "ms", higher_is_better=False),
    Figure("search", "paging_ms", "`search_runs`, paging through all 10,000 runs (10 pages)",
           "ms", higher_is_better=False),
]
