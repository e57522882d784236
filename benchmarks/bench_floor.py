"""What SQLite itself costs on MLflow's schema: the floor under the write and search targets.

Each workload lets the library create its store (so the file is that library's own, with its
page size), then works on it with nothing but the standard library's ``sqlite3`` (or the build
``run_all.py --sqlite`` swapped in): no tracking library, no validation, no queue, rows
prepared before the clock starts. What remains is SQLite's work on MLflow's tables and indexes (four B-trees per metric
point: the table, its primary key, ``index_metrics_run_uuid`` and
``index_metrics_run_uuid_key_step``) and the commits' WAL writes. A target above these figures
cannot be met by any library that writes MLflow's format with this SQLite on this machine.

* ``floor_log_batch``: the ``log_batch`` workload's rows (1,000 a transaction, 10 keys x 100
  steps) inserted and committed, ``latest_metrics`` upserted per key, SQLite's default
  checkpointing;
* ``floor_bulk``: 1,000,000 points in transactions of 50,000, as a writer that coalesces does;
* ``floor_search``: ``bench_search``'s data and filter: the cheapest SQL found for the filter,
  then that plus every match's run row, params and tags (JSON strings) and latest metrics
  (rows) in one read transaction, as they reach Python (no entities built).
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import statistics
import time

from _common import Checks, Context, Figure, workload

KEYS = 10
STEPS = 100
INSERT = (
    "INSERT OR IGNORE INTO metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES "
)
UPSERT_LATEST = (
    "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
    "VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (key, run_uuid) DO UPDATE SET "
    "value = excluded.value, timestamp = excluded.timestamp, step = excluded.step"
)
ROWS_PER_STATEMENT = 100  # 500 parameters: under every SQLite's limit


def _connect(ctx: Context) -> sqlite3.Connection:
    conn = sqlite3.connect(str(ctx.tmpdir / "mlflow.db"), isolation_level=None, timeout=60)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # what both libraries use
    return conn


def _new_run(ctx: Context, name: str) -> str:
    run_id = ctx.new_run(name)
    ctx.client.set_terminated(run_id)
    ctx.wait_stored()
    if ctx.impl == "asynctrack":
        ctx.client.flush()
    return run_id


def _insert(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    """``rows`` of (key, value, timestamp, step, run_uuid) in multi-row statements."""
    width = ROWS_PER_STATEMENT
    full = (len(rows) // width) * width
    sql = INSERT + ", ".join(["(?, ?, ?, ?, 0, ?)"] * width)
    conn.executemany(
        sql, [list(itertools.chain.from_iterable(rows[i : i + width])) for i in range(0, full, width)]
    )
    if full < len(rows):
        rest = rows[full:]
        conn.execute(INSERT + ", ".join(["(?, ?, ?, ?, 0, ?)"] * len(rest)), list(itertools.chain.from_iterable(rest)))


def _stored(conn: sqlite3.Connection, run_id: str) -> int:
    return conn.execute("SELECT count(*) FROM metrics WHERE run_uuid = ?", (run_id,)).fetchone()[0]


@workload("floor_log_batch", sizes={"asynctrack": 200, "mlflow": 200})
def floor_log_batch(ctx: Context) -> dict:
    """log_batch's rows with raw sqlite3: 1,000 a transaction, latest_metrics per key."""
    run_id = _new_run(ctx, "floor_log_batch")
    conn = _connect(ctx)
    ts = int(time.time() * 1000)
    keys = [f"batch_{k}" for k in range(KEYS)]
    calls = ctx.size
    batches = []
    for j in range(calls):
        rows = [
            (key, (j * STEPS + s) * 0.25 + k, ts, j * STEPS + s, run_id)
            for s in range(STEPS)
            for k, key in enumerate(keys)
        ]
        latest = [rows[-KEYS + k][:4] + (run_id,) for k in range(KEYS)]
        batches.append((rows, latest))
    start = time.perf_counter()
    for rows, latest in batches:
        conn.execute("BEGIN IMMEDIATE")
        _insert(conn, rows)
        conn.executemany(UPSERT_LATEST, latest)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    checks = Checks()
    n = calls * KEYS * STEPS
    checks.expect("rows", _stored(conn, run_id), n)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    return {"points": n, "points_per_s": n / elapsed, "ms_per_call": elapsed / calls * 1000,
            "page_size": page_size, **checks.result()}


@workload("floor_bulk", sizes={"asynctrack": 1_000_000, "mlflow": 1_000_000})
def floor_bulk(ctx: Context) -> dict:
    """1,000,000 points (5 keys a step) with raw sqlite3, 50,000 a transaction."""
    run_id = _new_run(ctx, "floor_bulk")
    conn = _connect(ctx)
    ts = int(time.time() * 1000)
    keys = ("loss", "metric_1", "metric_2", "metric_3", "metric_4")
    n = ctx.size
    rows = [(keys[i % 5], (i // 5) * 0.5 + i % 5, ts + i // 2000, i // 5, run_id) for i in range(n)]
    per_tx = 50_000
    start = time.perf_counter()
    for lo in range(0, n, per_tx):
        conn.execute("BEGIN IMMEDIATE")
        _insert(conn, rows[lo : lo + per_tx])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    checks = Checks()
    checks.expect("rows", _stored(conn, run_id), n)
    conn.close()
    return {"points": n, "points_per_s": n / elapsed, **checks.result()}


@workload("floor_search", sizes={"asynctrack": 10_000, "mlflow": 10_000}, timeout_s=1800)
def floor_search(ctx: Context) -> dict:
    """bench_search's 10,000 runs; the bare SQL of its filter, then with every match's data."""
    import bench_search

    exp, _ids = bench_search._fill(ctx, ctx.size)
    conn = _connect(ctx)
    conn.execute("PRAGMA cache_size=-32768")  # as asynctrack's read connections
    # The cheapest SQL found for the filter (the first clause's key range, then the other
    # clause's probe, then the runs), and one row per match of its run, params and tags (as
    # JSON strings) and latest metrics (as rows: metric values must stay exact, and SQLite
    # 3.40's JSON prints 15 digits).
    filter_sql = (
        "SELECT r.rowid FROM latest_metrics d0 CROSS JOIN params d1 ON d1.run_uuid = d0.run_uuid "
        "AND d1.key = 'p1' AND d1.value = 'x0' CROSS JOIN runs r ON r.run_uuid = d0.run_uuid "
        "WHERE d0.key = 'm0' AND (d0.value < 0.2 AND d0.is_nan = 0) AND r.experiment_id = ? "
        "AND r.lifecycle_stage = 'active' ORDER BY r.start_time DESC, r.run_uuid"
    )
    runs_sql = (
        "SELECT j.key, r.run_uuid, r.name, r.user_id, r.status, r.start_time, r.end_time, "
        "r.lifecycle_stage, r.artifact_uri, r.experiment_id, "
        "(SELECT json_group_object(x.key, x.value) FROM params x WHERE x.run_uuid = r.run_uuid), "
        "(SELECT json_group_object(x.key, x.value) FROM tags x WHERE x.run_uuid = r.run_uuid) "
        "FROM json_each(?) j JOIN runs r ON r.rowid = j.value"
    )
    metrics_sql = (
        "SELECT x.key, iif(x.is_nan, NULL, x.value), x.timestamp, x.step, j.key "
        "FROM json_each(?) j JOIN runs r ON r.rowid = j.value "
        "JOIN latest_metrics x ON x.run_uuid = r.run_uuid"
    )

    def bare() -> list:
        return conn.execute(filter_sql, (int(exp),)).fetchall()

    def with_data() -> tuple:
        conn.execute("BEGIN")
        try:
            ids = [r[0] for r in bare()]
            rowids = json.dumps(ids)
            metrics = conn.execute(metrics_sql, (rowids,)).fetchall()
            runs = conn.execute(runs_sql, (rowids,)).fetchall()
        finally:
            conn.execute("ROLLBACK")
        return ids, runs, metrics

    def timed(fn, repeats: int = 15) -> tuple[float, object]:
        fn()
        times, result = [], None
        for _ in range(repeats):
            t0 = time.perf_counter()
            result = fn()
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times), result

    filter_ms, matched = timed(bare)
    data_ms, (ids, runs, metrics) = timed(with_data)
    checks = Checks()
    checks.expect("runs matched", len(matched), 1000)
    params = sum(len(json.loads(r[10])) for r in runs)
    tags = sum(len(json.loads(r[11])) for r in runs)
    checks.expect("their runs, params, tags, metrics", (len(runs), params, tags, len(metrics)),
                  (1000, 1000 * bench_search.N_PARAMS, 1000 * bench_search.N_TAGS, 1000 * bench_search.N_METRICS))
    conn.close()
    return {"filter_ms": filter_ms, "with_data_ms": data_ms, **checks.result()}


FIGURES = [
    Figure("floor_log_batch", "points_per_s", "raw sqlite3 floor: `log_batch`'s rows, 1,000 a commit",
           "points/s", higher_is_better=True,
           note="no library at all: the most any library writing MLflow's format can reach here"),
    Figure("floor_bulk", "points_per_s", "raw sqlite3 floor: 1,000,000 points, 50,000 a commit",
           "points/s", higher_is_better=True),
    Figure("floor_search", "filter_ms", "raw sqlite3 floor: the search filter's bare SQL (1,000 of 10,000 runs)",
           "ms", higher_is_better=False),
    Figure("floor_search", "with_data_ms", "raw sqlite3 floor: that SQL plus the matches' runs, params, tags, metrics",
           "ms", higher_is_better=False),
]
