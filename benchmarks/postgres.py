"""asynctrack vs MLflow 3.18 vs the raw COPY floor on PostgreSQL (issue #16): prints figures.

Each workload runs on a fresh database of one throwaway server (scripts/postgres.sh, or
ASYNCTRACK_BENCH_POSTGRES_URI); ratios are taken within one run. Not a test.

    python benchmarks/postgres.py            # the issue's layout: 16 processes x 100,000 points
    python benchmarks/postgres.py --quick    # smaller counts, same shape
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, oracle_python  # noqa: E402
from servers import RESULT, ServerProcess, child_log, free_port, read_result, virtual_users  # noqa: E402  (the same client the servers use)

ME = Path(__file__).resolve()
ROUNDS = 5  # the single-process rows: asynctrack and the floor measured in turns this many times


# -- the server and its databases -----------------------------------------------------------------
def start_server() -> tuple[str, str | None]:
    """The base URI, and the folder to stop afterwards (None when the user gave a server)."""
    uri = os.environ.get("ASYNCTRACK_BENCH_POSTGRES_URI")
    if uri:
        return uri, None
    out = subprocess.run(["bash", str(ROOT / "scripts/postgres.sh"), "start"], check=True,
                         capture_output=True, text=True).stdout.split()
    return out[0], out[1]


def fresh_database(base: str, name: str) -> str:
    """A new empty database on the server; its URI."""
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + "/" + name


def server_version(base: str) -> str:
    import psycopg

    with psycopg.connect(base) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def mlflow_uri(uri: str) -> str:
    return uri.replace("postgresql://", "postgresql+psycopg2://", 1)


def uri_for(impl: str, uri: str) -> str:
    return mlflow_uri(uri) if impl == "mlflow" else uri


# -- children -------------------------------------------------------------------------------------
def child_floor(uri: str, points: int, index: int) -> None:
    """The floor: one asyncpg COPY of the same rows into metrics, plus the cheapest latest upsert."""
    import asyncpg

    import asynctrack

    asynctrack.set_tracking_uri(uri)
    asynctrack.set_experiment("bench")
    run = asynctrack.start_run(run_name=f"floor-{index}")
    asynctrack.end_run()
    asynctrack.MlflowClient().flush()
    run_id = run.info.run_id
    print("READY", flush=True)
    sys.stdin.readline()

    async def go() -> None:
        conn = await asyncpg.connect(uri)
        ts = int(time.time() * 1000)
        rows = [("loss", step * 0.5, ts, step, False, run_id) for step in range(points)]
        async with conn.transaction():
            await conn.copy_records_to_table(
                "metrics", records=rows,
                columns=["key", "value", "timestamp", "step", "is_nan", "run_uuid"])
            last = rows[-1]
            await conn.execute(
                "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key, run_uuid) DO UPDATE SET "
                "value = EXCLUDED.value, timestamp = EXCLUDED.timestamp, step = EXCLUDED.step", *last)
        await conn.close()

    t0 = time.time()
    asyncio.run(go())
    t1 = time.time()
    print(RESULT + json.dumps({"run_id": run_id, "t0": t0, "t1": t1}), flush=True)


def child_single_floor(uri: str, what: str, n: int) -> None:
    """The floor of the log_batch and latency rows: the same points by raw asyncpg on one open
    connection with no checks: a call's rows by COPY into metrics plus the cheapest latest
    upsert, in one transaction; a single point by one statement, autocommitted."""
    import asyncpg

    import asynctrack

    client = asynctrack.MlflowClient(uri)
    exp = client.create_experiment(f"bench-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(exp).info.run_id
    client.flush()
    latest = ("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
              "VALUES ($1, $2, $3, $4, false, $5) ON CONFLICT (key, run_uuid) DO UPDATE SET "
              "value = EXCLUDED.value, timestamp = EXCLUDED.timestamp, step = EXCLUDED.step")
    columns = ["key", "value", "timestamp", "step", "is_nan", "run_uuid"]
    out: dict = {}

    async def go() -> None:
        conn = await asyncpg.connect(uri)
        ts = int(time.time() * 1000)
        async with conn.transaction():  # untimed, as child_single's first calls
            await conn.copy_records_to_table(
                "metrics", records=[("warmup", 0.5, ts, -1, False, run_id)], columns=columns)
            await conn.execute(latest, "warmup", 0.5, ts, -1, run_id)
        if what == "batch":
            t = time.perf_counter()
            for b in range(n):
                rows = [("loss", i * 0.5, ts, b * 1000 + i, False, run_id) for i in range(1000)]
                async with conn.transaction():
                    await conn.copy_records_to_table("metrics", records=rows, columns=columns)
                    await conn.execute(latest, "loss", rows[-1][1], ts, rows[-1][3], run_id)
            out["points_per_s"] = n * 1000 / (time.perf_counter() - t)
        else:
            # The cheapest raw way: one statement (the point and its upsert) and no explicit
            # transaction, one round trip, where asynctrack's writer takes three (BEGIN, one
            # statement that also checks the run is active, COMMIT).
            one_point = ("WITH stored AS (INSERT INTO metrics (key, value, timestamp, step, is_nan, run_uuid) "
                         "VALUES ($1, $2, $3, $4, false, $5)) " + latest.replace("$1, $2, $3, $4, false, $5", "$1::text, $2::float8, $3::int8, $4::int8, false, $5::text"))
            samples = []
            for i in range(n):
                t = time.perf_counter_ns()
                await conn.execute(one_point, "loss", i * 0.5, ts, i, run_id)
                samples.append(time.perf_counter_ns() - t)
            samples.sort()
            out["p50_ms"] = samples[len(samples) // 2] / 1e6
            out["p99_ms"] = samples[int(len(samples) * 0.99)] / 1e6
        await conn.close()

    asyncio.run(go())
    print(RESULT + json.dumps(out), flush=True)


def child_single(impl: str, uri: str, what: str, n: int) -> None:
    """log_batch throughput and synchronous log_metric latency in one process."""
    if impl == "floor":
        return child_single_floor(uri, what, n)
    if impl == "mlflow":
        import mlflow as lib
        from mlflow.entities import Metric
    else:
        import asynctrack as lib
        from asynctrack.entities import Metric
    lib.set_tracking_uri(uri)
    client = lib.MlflowClient(uri)
    exp = client.create_experiment(f"bench-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(exp).info.run_id
    out: dict = {}
    # One untimed call of each kind first, for every side alike: connections, prepared
    # statements and SQLAlchemy's compiled statements are made there, not in the timed calls.
    ts = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric("warmup", i * 0.5, ts, i) for i in range(1000)], synchronous=True)
    client.log_metric(run_id, "warmup", 0.5, step=-1, synchronous=True)
    if what == "batch":  # n batches of 1000 metrics (MLflow's limit a call)
        t = time.perf_counter()
        for b in range(n):
            client.log_batch(run_id, metrics=[Metric("loss", i * 0.5, ts, b * 1000 + i) for i in range(1000)],
                             synchronous=True)
        if impl != "mlflow":
            client.flush()
        out["points_per_s"] = n * 1000 / (time.perf_counter() - t)
    else:  # synchronous log_metric latency
        samples = []
        for i in range(n):
            t = time.perf_counter_ns()
            client.log_metric(run_id, "loss", i * 0.5, step=i, synchronous=True)
            samples.append(time.perf_counter_ns() - t)
        samples.sort()
        out["p50_ms"] = samples[len(samples) // 2] / 1e6
        out["p99_ms"] = samples[int(len(samples) * 0.99)] / 1e6
    print(RESULT + json.dumps(out), flush=True)


def child_search(impl: str, uri: str, exp_id: str, repeat: int) -> None:
    if impl == "mlflow":
        import mlflow as lib
    else:
        import asynctrack as lib
    client = lib.MlflowClient(uri)
    filt = "metrics.loss < 50 and params.lr = '0.1'"
    times, ids = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        runs = client.search_runs([exp_id], filter_string=filt, order_by=["metrics.loss ASC"], max_results=1000)
        times.append(time.perf_counter() - t)
        ids = [r.info.run_id for r in runs]
    print(RESULT + json.dumps({"ms": 1000 * statistics.median(times), "ids": ids}), flush=True)


# -- the parent -----------------------------------------------------------------------------------
def spawn(py: str, *args: object) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # MLflow's async logging only where the workload is async: it turns the client's default
    # synchronous=None into async too, which would make log_batch and the latency row unfair.
    env["MLFLOW_ENABLE_ASYNC_LOGGING"] = "true" if args[0] == "log" else "false"
    # 16 MLflow processes with SQLAlchemy's default pool (5 + 10 overflow) pass PostgreSQL's
    # max_connections=100; 4 a process is more than one process's async logger uses at once.
    env["MLFLOW_SQLALCHEMYSTORE_POOL_SIZE"] = "4"
    env["MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW"] = "0"
    return subprocess.Popen([py, str(ME), "--child", *map(str, args)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env, cwd=str(ROOT))


def parallel_log(py: str, mode: str, impl: str, uri: str, procs: int, points: int) -> float:
    """Points a second from the barrier to the last process's end (all stored)."""
    kids = [spawn(py, mode, impl, uri, points, i) for i in range(procs)]
    for k in kids:
        for line in k.stdout:
            if line.startswith("READY"):
                break
    for k in kids:
        k.stdin.write("go\n")
        k.stdin.flush()
    results = [read_result(k.stdout) for k in kids]
    for k in kids:
        k.wait()
    t0 = min(r["t0"] for r in results)
    t1 = max(r["t1"] for r in results)
    return procs * points / (t1 - t0)


def one(py: str, *args: object) -> dict:
    k = spawn(py, *args)
    k.stdin.close()
    out = read_result(k.stdout)
    k.wait()
    return out


def seed_search(uri: str, runs: int) -> str:
    import asynctrack
    from asynctrack.entities import Metric, Param

    client = asynctrack.MlflowClient(uri)
    exp = client.create_experiment("search")
    ts = int(time.time() * 1000)
    for i in range(runs):
        rid = client.create_run(exp).info.run_id
        client.log_batch(rid, metrics=[Metric("loss", float(i % 100), ts, 0)],
                         params=[Param("lr", "0.1" if i % 2 else "0.01")])
    client.flush()
    return exp


def floor_search(uri: str, exp_id: str, repeat: int) -> tuple[float, list[str]]:
    """The cheapest hand-written SQL returning the same run ids, on one open connection."""
    import psycopg

    sql = ("SELECT r.run_uuid FROM runs r JOIN latest_metrics m ON m.run_uuid = r.run_uuid AND m.key = 'loss' "
           "JOIN params p ON p.run_uuid = r.run_uuid AND p.key = 'lr' "
           "WHERE r.experiment_id = %s AND r.lifecycle_stage = 'active' AND m.value < 50 AND p.value = '0.1' "
           "ORDER BY m.value ASC, r.start_time DESC, r.run_uuid ASC LIMIT 1000")
    times, ids = [], []
    with psycopg.connect(uri) as conn:
        for _ in range(repeat):
            t = time.perf_counter()
            ids = [r[0] for r in conn.execute(sql, (int(exp_id),)).fetchall()]
            times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times), ids


def server_load(uri: str, workers: int, users: int, seconds: float, tmp: str) -> dict:
    """servers.py's LogMetricBatch500 virtual users against asynctrack server on PostgreSQL."""
    port = free_port()
    argv = [sys.executable, "-m", "asynctrack", "server", "--backend-store-uri", uri,
            "--artifacts-destination", tmp, "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers)]
    server = ServerProcess(f"asynctrack server --workers {workers}", argv, port,
                           dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        return virtual_users(server.url, users, seconds)
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        mode, rest = argv[1], argv[2:]
        if mode == "log":
            child_log(rest[0], uri_for(rest[0], rest[1]), int(rest[2]), int(rest[3]))
        elif mode == "floor":
            child_floor(rest[1], int(rest[2]), int(rest[3]))
        elif mode == "single":
            child_single(rest[0], uri_for(rest[0], rest[1]), rest[2], int(rest[3]))
        elif mode == "search":
            child_search(rest[0], uri_for(rest[0], rest[1]), rest[2], int(rest[3]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller counts (same shape)")
    p.add_argument("--procs", type=int, default=16)
    p.add_argument("--points", type=int, default=100_000)
    p.add_argument("--mlflow-points", type=int, default=2_000, help="per MLflow process (scaled)")
    p.add_argument("--only", default="async,batch,sync,search,server",
                   help="comma-separated rows to measure (default: all): async, batch, sync, search, server")
    args = p.parse_args(argv)
    if args.quick:
        args.procs, args.points, args.mlflow_points = 4, 20_000, 500
    mlflow_py = oracle_python()
    me = sys.executable
    base, folder = start_server()
    try:
        print(f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
              f"PostgreSQL {server_version(base)}, {os.cpu_count()} CPUs")
        rows = []
        n = 0

        def db() -> str:
            nonlocal n
            n += 1
            uri = fresh_database(base, f"bench{n}")
            # the schema first: MLflow's processes would race each other creating it
            from asynctrack.store._postgres.schema import ensure_schema_at

            ensure_schema_at(uri)
            return uri

        only = set(args.only.split(","))
        if "async" in only:  # async log_metric throughput, procs x points
            a = parallel_log(me, "log", "asynctrack", db(), args.procs, args.points)
            f = parallel_log(me, "floor", "asynctrack", db(), args.procs, args.points)
            m = parallel_log(mlflow_py, "log", "mlflow", db(), args.procs, args.mlflow_points) if mlflow_py else float("nan")
            rows.append((f"async log_metric, {args.procs} procs x {args.points:,} (MLflow x {args.mlflow_points:,})",
                         "points/s", a, f, m))
        def alternated(what: str, n: int, key: str) -> tuple[float, float]:
            """asynctrack and the floor in turns, ROUNDS times, each its median: this machine's
            load drifts within a minute, and a row measured side after side took the drift
            into its ratio (0.67 and 0.89 of the floor for the same code, minutes apart)."""
            got: dict[str, list[float]] = {"asynctrack": [], "floor": []}
            for _ in range(ROUNDS):
                for impl in got:
                    got[impl].append(one(me, "single", impl, db(), what, n)[key])
            return statistics.median(got["asynctrack"]), statistics.median(got["floor"])

        if "batch" in only:  # log_batch, one process, synchronous calls
            nb = 20 if args.quick else 50
            a, f = alternated("batch", nb, "points_per_s")
            m = one(mlflow_py, "single", "mlflow", db(), "batch", max(5, nb // 5))["points_per_s"] if mlflow_py else float("nan")
            rows.append((f"log_batch of 1000 metrics, 1 proc (median of {ROUNDS})", "points/s", a, f, m))
        if "sync" in only:  # synchronous log_metric latency
            k = 200 if args.quick else 500
            a, f = alternated("sync", k, "p50_ms")
            m = one(mlflow_py, "single", "mlflow", db(), "sync", k // 2)["p50_ms"] if mlflow_py else float("nan")
            rows.append((f"synchronous log_metric p50 (median of {ROUNDS})", "ms", a, f, m))
        if "search" in only:
            uri = db()
            exp = seed_search(uri, 200 if args.quick else 2000)
            fa = one(me, "search", "asynctrack", uri, exp, 5)
            ff_ms, ff_ids = floor_search(uri, exp, 5)
            fm = one(mlflow_py, "search", "mlflow", uri, exp, 3) if mlflow_py else {"ms": float("nan"), "ids": fa["ids"]}
            same = "same ids" if fa["ids"] == ff_ids == fm["ids"] else "IDS DIFFER"
            rows.append((f"search_runs filter+order ({same})", "ms", fa["ms"], ff_ms, fm["ms"]))

        # asynctrack server on PostgreSQL: --workers 4 vs --workers 1, 20 virtual users
        import tempfile

        secs = 5.0 if args.quick else 10.0
        for w in (1, 4) if "server" in only else ():
            with tempfile.TemporaryDirectory() as tmp:
                r = server_load(db(), w, 20, secs, tmp)
            print(f"asynctrack server --workers {w} on PostgreSQL, 20 VUs LogMetricBatch500 for {secs:.0f} s: "
                  f"{r.get('requests')} requests, {r.get('errors')} errors, mean {r.get('mean_ms', float('nan')):.0f} ms, "
                  f"p50 {r.get('p50_ms', float('nan')):.0f} ms, p99 {r.get('p99_ms', float('nan')):.0f} ms")
        print(f"{'workload':58} {'unit':9} {'asynctrack':>12} {'floor':>12} {'MLflow':>12} {'at/floor':>9} {'at/MLflow':>9}")
        for name, unit, a, f, m in rows:
            lower = unit == "ms"
            r_f = (f / a if lower else a / f) if f == f else float("nan")
            r_m = (m / a if lower else a / m) if m == m else float("nan")
            print(f"{name:58} {unit:9} {a:12,.3f} {f:12,.3f} {m:12,.3f} {r_f:9.2f} {r_m:9.1f}")
        print("(ratios: asynctrack's speed over the other's; for ms figures, the other's time over asynctrack's)")
    finally:
        if folder:
            subprocess.run(["bash", str(ROOT / "scripts/postgres.sh"), "stop", folder], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
