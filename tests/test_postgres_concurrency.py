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
        # every worker started before the first race (its start-up is not the race's time)
        assert len(set(run_all(p, workers.ready, [PROCESSES] * PROCESSES))) == PROCESSES
        yield p
    finally:
        p.terminate()  # every task flushed its writes; the workers' exit would only wait on
        p.join()  # connections to databases dropped already


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
KEYS = tuple(f"k{n:02}" for n in range(16))  # each key one more race for the last word
STEPS = 8
BASE_TS = 1_700_000_000_000
VALUES = (-2.5, -1.0, 0.0, 0.5, 1.0, 3.25)


def _points_of(worker: int, shared: bool) -> list[tuple[str, list[workers.Point]]]:
    """One worker's points for every key of KEYS: every step, two points with close
    timestamps (workers tie on step, and on timestamp), logged in rising order (a worker's
    last word on a key is its best), in groups each logged its own way. ``shared``: values
    from one small set, so that workers also log the very same points; else values of this
    worker's own (no point is another's, and most blocks take the COPY path)."""
    rng = random.Random(worker)
    points: set[workers.Point] = set()
    for step in range(STEPS):
        for key in KEYS:
            for _ in range(2):
                value = rng.choice(VALUES) + (0 if shared else worker / 1024)
                points.add((key, value, BASE_TS + rng.randrange(4), step))
    ordered = sorted(points, key=lambda p: (p[3], p[2], p[1], p[0]))
    groups, i = [], 0
    while i < len(ordered):
        how = MODES[len(groups) % len(MODES)]
        size = rng.randint(16, 64) if how == "async" else rng.randint(1, 8)  # async: the bulk path
        groups.append((how, ordered[i : i + size]))
        i += size
    return groups


def _race_for_latest(pool: Any, uri: str, shared: bool) -> None:
    """LATEST_PROCESSES workers log their points to one new run at once; then latest_metrics
    holds each key's best point by MLflow's order, and metrics each distinct point once."""
    from asynctrack import MlflowClient

    client = MlflowClient(uri)
    run_id = client.create_run("0").info.run_id
    plans = [_points_of(w, shared) for w in range(LATEST_PROCESSES)]
    tasks = [(uri, run_id, LATEST_PROCESSES, plan) for plan in plans]
    results = run_all(pool, workers.log_points, tasks)

    assert len({pid for pid, _ in results}) == LATEST_PROCESSES
    assert [errors for _, errors in results] == [[]] * LATEST_PROCESSES
    every = {p for plan in plans for _, points in plan for p in points}
    best: dict[str, tuple] = {}
    for key, value, ts, step in every:
        if key not in best or mlflow_order((value, ts, step)) > mlflow_order(best[key]):
            best[key] = (value, ts, step)
    assert sorted(
        sql(uri, 'SELECT key, value, "timestamp", step, is_nan FROM latest_metrics WHERE run_uuid = %s', run_id)
    ) == sorted((key, *point, False) for key, point in best.items())
    per_key = collections.Counter(key for key, *_ in every)
    assert sorted(sql(uri, "SELECT key, count(*) FROM metrics WHERE run_uuid = %s GROUP BY 1", run_id)) == sorted(
        per_key.items()
    )
    assert client.get_run(run_id).data.metrics == {key: point[0] for key, point in best.items()}
    assert len(client.get_metric_history(run_id, KEYS[0])) == per_key[KEYS[0]]


def test_no_latest_metrics_update_is_lost(pool, postgres_db):  # noqa: F811
    _race_for_latest(pool, postgres_db, shared=False)


def test_the_same_points_from_many_processes_are_stored_once(pool, postgres_db):  # noqa: F811
    """Workers logging the very same points wait on each other's uncommitted rows of metrics
    and latest_metrics (PostgreSQL detects deadlocks among them): each is stored once, and
    latest_metrics is still the best."""
    _race_for_latest(pool, postgres_db, shared=True)


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
