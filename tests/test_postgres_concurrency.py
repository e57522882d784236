"""Concurrency across hosts on the PostgreSQL store: many processes, each its own interpreter,
released together by a barrier onto one database. Exact counts read back by SQL; no
RESOURCE_ALREADY_EXISTS, deadlock or lost update reaches a user.

The processes are one spawned pool of 64 (tests/_postgres_workers.py), made once for the
module: a worker that waits at a barrier of N takes no other task, so a race of N tasks runs
in N distinct processes (their pids are checked).
"""

from __future__ import annotations

import collections
import multiprocessing
import random
from collections.abc import Iterator
from typing import Any

import pytest

from tests import _postgres_workers as workers
from tests._postgres import postgres_db, postgres_server  # noqa: F401  (fixtures)

PROCESSES = 64
LATEST_PROCESSES = 12
MIXED_PROCESSES = 8
PARTIES = (PROCESSES, LATEST_PROCESSES, MIXED_PROCESSES)
TIMEOUT_S = 120  # far beyond what any of these takes; reaching it is a hang (a deadlock)


@pytest.fixture(scope="module")
def pool(postgres_server: str) -> Iterator[Any]:  # noqa: F811
    """64 spawned worker processes with asynctrack imported, and a barrier per race size."""
    ctx = multiprocessing.get_context("spawn")
    barriers = {n: ctx.Barrier(n) for n in PARTIES}
    p = ctx.Pool(PROCESSES, initializer=workers.init, initargs=(barriers,))
    try:
        yield p
    finally:
        p.close()
        p.join()


def run_all(pool: Any, fn: Any, tasks: list) -> list:
    """``fn`` over ``tasks`` in the pool, one task per worker; fails past TIMEOUT_S."""
    try:
        return pool.map_async(fn, tasks, chunksize=1).get(TIMEOUT_S)
    except multiprocessing.TimeoutError:
        pytest.fail(f"{fn.__name__} did not finish within {TIMEOUT_S} s: a deadlock or a hang")


def sql(uri: str, query: str, *args: Any) -> list[tuple]:
    import psycopg

    with psycopg.connect(uri) as conn:
        return conn.execute(query, args).fetchall()


def mlflow_order(point: tuple[float, int, int]) -> tuple[int, int, float]:
    """MLflow's order of a (value, timestamp, step): step, then timestamp, then value."""
    value, timestamp, step = point
    return step, timestamp, value


# -- set_experiment and create_run raced by 64 processes -------------------------------------
RUNS_EACH = 2


def test_64_processes_racing_set_experiment_on_an_empty_database_make_one(pool, postgres_db):  # noqa: F811
    """The 64 also race to create the schema: the database is empty when they are released."""
    tasks = [(postgres_db, "raced", PROCESSES, RUNS_EACH)] * PROCESSES
    results = run_all(pool, workers.race_set_experiment, tasks)

    assert len({pid for pid, *_ in results}) == PROCESSES
    experiment_ids = {exp_id for _, exp_id, _, _ in results}
    run_experiment_ids = {e for _, _, ids, _ in results for e in ids}
    assert len(experiment_ids) == 1 and run_experiment_ids == experiment_ids
    (exp_id,) = experiment_ids
    run_ids = [r for *_, ids in results for r in ids]
    assert len(set(run_ids)) == PROCESSES * RUNS_EACH

    total = PROCESSES * RUNS_EACH
    assert sql(postgres_db, "SELECT experiment_id, name FROM experiments ORDER BY 1") == [
        (0, "Default"),
        (int(exp_id), "raced"),
    ]
    assert sql(postgres_db, "SELECT count(*) FROM runs WHERE experiment_id = %s", int(exp_id)) == [(total,)]
    assert sql(postgres_db, "SELECT count(*), count(DISTINCT run_uuid) FROM runs") == [(total, total)]
    assert sql(postgres_db, "SELECT status, count(*) FROM runs GROUP BY 1") == [("FINISHED", total)]
    assert sql(postgres_db, "SELECT count(*) FROM metrics") == [(total,)]
    assert sql(postgres_db, "SELECT count(*) FROM latest_metrics") == [(total,)]
    assert sql(postgres_db, "SELECT count(DISTINCT value), count(*) FROM params WHERE key = 'pid'") == [(PROCESSES, total)]
    assert sql(postgres_db, "SELECT version_num FROM alembic_version") == [("f4a9b2c7d1e6",)]


def test_64_processes_create_runs_at_once(pool, postgres_db):  # noqa: F811
    from asynctrack import MlflowClient

    client = MlflowClient(postgres_db)
    exp_id = client.create_experiment("created")
    tasks = [(postgres_db, exp_id, PROCESSES, i, RUNS_EACH) for i in range(PROCESSES)]
    results = run_all(pool, workers.create_runs, tasks)

    assert len({pid for pid, _ in results}) == PROCESSES
    run_ids = [r for _, ids in results for r in ids]
    total = PROCESSES * RUNS_EACH
    assert len(set(run_ids)) == total
    assert sql(postgres_db, "SELECT experiment_id, status, count(*) FROM runs GROUP BY 1, 2") == [
        (int(exp_id), "FINISHED", total)
    ]
    assert sql(
        postgres_db,
        "SELECT count(*) FROM runs r JOIN params p ON p.run_uuid = r.run_uuid AND p.key = 'worker' "
        "JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = 'worker' AND t.value = p.value "
        "WHERE r.name = 'w' || p.value || '-0' OR r.name = 'w' || p.value || '-1'",
    ) == [(total,)]
    for i, (_, ids) in enumerate(results):  # every run readable, as its worker made it
        for n, run_id in enumerate(ids):
            run = client.get_run(run_id)
            assert (run.info.run_name, run.info.status) == (f"w{i}-{n}", "FINISHED")
            assert run.data.params == {"worker": str(i)} and run.data.tags["worker"] == str(i)
    found = client.search_runs([exp_id], max_results=1000)
    assert sorted(r.info.run_id for r in found) == sorted(run_ids)


# -- latest_metrics: no lost update ----------------------------------------------------------
MODES = ("async", "sync", "batch_async", "batch_sync")
STEPS = 25
BASE_TS = 1_700_000_000_000


def _points_of(worker: int) -> list[tuple[str, list[workers.Point]]]:
    """One worker's points for keys ``loss`` and ``acc``: every step, a few points with close
    timestamps and values from a small set (so that workers tie on step, and on timestamp, and
    log the very same points), logged in rising order, in groups each logged its own way."""
    rng = random.Random(worker)
    points: set[workers.Point] = set()
    for step in range(STEPS):
        for key in ("loss", "acc"):
            for _ in range(3):
                points.add((key, rng.choice((-2.5, -1.0, 0.0, 0.5, 1.0, 3.25)), BASE_TS + rng.randrange(4), step))
    ordered = sorted(points, key=lambda p: (p[3], p[2], p[1], p[0]))
    groups, i = [], 0
    while i < len(ordered):
        size = rng.randint(1, 12)
        groups.append((MODES[len(groups) % len(MODES)], ordered[i : i + size]))
        i += size
    return groups


def test_no_latest_metrics_update_is_lost(pool, postgres_db):  # noqa: F811
    from asynctrack import MlflowClient

    client = MlflowClient(postgres_db)
    run_id = client.create_run("0").info.run_id
    plans = [_points_of(w) for w in range(LATEST_PROCESSES)]
    tasks = [(postgres_db, run_id, LATEST_PROCESSES, plan) for plan in plans]
    results = run_all(pool, workers.log_points, tasks)

    assert len({pid for pid, _ in results}) == LATEST_PROCESSES
    assert [errors for _, errors in results] == [[]] * LATEST_PROCESSES
    every = {p for plan in plans for _, points in plan for p in points}
    for key in ("loss", "acc"):
        mine = [(v, ts, step) for k, v, ts, step in every if k == key]
        best = max(mine, key=mlflow_order)
        assert sql(
            postgres_db,
            'SELECT value, "timestamp", step, is_nan FROM latest_metrics WHERE run_uuid = %s AND key = %s',
            run_id,
            key,
        ) == [(*best, False)]
        # the duplicate rule across processes: each distinct point stored once
        assert sql(postgres_db, "SELECT count(*) FROM metrics WHERE run_uuid = %s AND key = %s", run_id, key) == [
            (len(mine),)
        ]
        assert client.get_run(run_id).data.metrics[key] == best[0]
        assert len(client.get_metric_history(run_id, key)) == len(mine)


# -- mixed writes: no deadlock reaches a user ------------------------------------------------
ROUNDS = 12


def test_mixed_writes_in_every_order_neither_deadlock_nor_fail(pool, postgres_db):  # noqa: F811
    from asynctrack import MlflowClient

    client = MlflowClient(postgres_db)
    run_ids = [client.create_run("0", run_name=f"shared-{n}").info.run_id for n in range(4)]
    tasks = [(postgres_db, run_ids, MIXED_PROCESSES, i, ROUNDS, 1000 + i) for i in range(MIXED_PROCESSES)]
    results = run_all(pool, workers.mixed_writes, tasks)

    assert len({pid for pid, _, _ in results}) == MIXED_PROCESSES
    assert [errors for *_, errors in results] == [[]] * MIXED_PROCESSES  # no 40P01, nor anything
    logged = [p for _, points, _ in results for p in points]
    per_series = collections.Counter((run, key) for run, key, *_ in logged)
    assert sorted(
        sql(postgres_db, "SELECT run_uuid, key, count(*) FROM metrics GROUP BY 1, 2")
    ) == sorted((run, key, n) for (run, key), n in per_series.items())
    latest = {}
    for run, key, value, ts, step in logged:
        best = latest.get((run, key))
        if best is None or mlflow_order((value, ts, step)) > mlflow_order(best):
            latest[(run, key)] = (value, ts, step)
    assert sorted(
        sql(postgres_db, 'SELECT run_uuid, key, value, "timestamp", step FROM latest_metrics')
    ) == sorted((run, key, *best) for (run, key), best in latest.items())
    assert sql(postgres_db, "SELECT count(*), count(DISTINCT (run_uuid, key)) FROM params") == [
        (MIXED_PROCESSES * ROUNDS * 4,) * 2
    ]
    assert sql(
        postgres_db,
        "SELECT run_uuid, key FROM tags WHERE key LIKE 'shared.%%' OR key LIKE 'w%%.tmp' ORDER BY 1, 2",
    ) == sorted((run, tag) for run in run_ids for tag in workers.SHARED_TAGS)
    for run_id in run_ids:
        run = client.get_run(run_id)
        assert run.info.status in (*workers.STATUSES, "RUNNING")
        assert (run.info.end_time is None) == (run.info.status == "RUNNING")
        assert set(run.data.metrics) == set(workers.SHARED_KEYS)
