"""The programs of tests/test_postgres_concurrency.py's processes: each runs in a spawned
interpreter of its own (a host of a cluster, as far as PostgreSQL can tell), uses asynctrack as
a user does, and waits at a barrier so that all of them hit the database at the same moment.

Kept apart from the test module so that a spawned worker imports asynctrack and this file only
(no pytest, no hypothesis): 64 interpreters start on two cores.
"""

from __future__ import annotations

import logging
import os
import random
from typing import Any

RELEASE_TIMEOUT_S = 120.0
_barriers: dict[int, Any] = {}  # parties -> multiprocessing Barrier, from the pool's initializer
_async_errors: list[str] = []  # what the writer logged as failed asynchronous writes


class _Keep(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        _async_errors.append(record.getMessage())


def init(barriers: dict[int, Any]) -> None:
    """Pool initializer: the barriers, asynctrack imported once, its errors kept, and no
    MLFLOW_* variable of the parent's (each task names its URI and experiment)."""
    global _barriers
    _barriers = barriers
    for name in [n for n in os.environ if n.startswith("MLFLOW_")]:
        del os.environ[name]
    import asynctrack  # noqa: F401  (the import is paid before the tasks, not inside the race)

    logging.getLogger("asynctrack").addHandler(_Keep(level=logging.ERROR))


def _release(parties: int) -> None:
    """Wait until ``parties`` workers are here; then all go at once. A worker of a pool blocked
    here takes no other task, so ``parties`` tasks run in ``parties`` distinct processes."""
    _barriers[parties].wait(timeout=RELEASE_TIMEOUT_S)


def ready(parties: int) -> int:
    """Returns once ``parties`` workers have started (asynctrack imported): this one's pid."""
    _release(parties)
    return os.getpid()


def _errors_since(start: int) -> list[str]:
    import asynctrack

    asynctrack.flush_async_logging()
    return _async_errors[start:]


def race_set_experiment(task: tuple[str, str, int, int]) -> tuple[int, str, list[str], list[str]]:
    """set_experiment(name) on the same (maybe empty) database as every other worker, then
    ``runs`` runs through the fluent API: (pid, the experiment's id, each run's experiment id,
    the run ids)."""
    uri, name, parties, runs = task
    import asynctrack as mlflow

    mlflow.set_tracking_uri(uri)
    _release(parties)
    experiment = mlflow.set_experiment(name)
    run_ids, experiment_ids = [], []
    for n in range(runs):
        with mlflow.start_run(run_name=f"{os.getpid()}-{n}") as run:
            mlflow.log_metric("m", float(n), step=n)
            mlflow.log_param("pid", os.getpid())
        run_ids.append(run.info.run_id)
        experiment_ids.append(run.info.experiment_id)
    return os.getpid(), experiment.experiment_id, experiment_ids, run_ids


def create_runs(task: tuple[str, str, int, int, int]) -> tuple[int, list[str]]:
    """``runs`` runs made with MlflowClient.create_run in an existing experiment, each with a
    param and a tag, then ended: (pid, run ids)."""
    uri, experiment_id, parties, index, runs = task
    from asynctrack import MlflowClient

    client = MlflowClient(uri)
    client.get_experiment(experiment_id)  # the store opened before the race, as a user's would be
    _release(parties)
    run_ids = [
        client.create_run(experiment_id, run_name=f"w{index}-{n}", tags={"worker": str(index)}).info.run_id
        for n in range(runs)
    ]
    for run_id in run_ids:
        client.log_param(run_id, "worker", index)
        client.set_terminated(run_id)
    return os.getpid(), run_ids


# A metric point as the tasks below are given it: (key, value, timestamp, step).
Point = tuple[str, float, int, int]


def log_points(task: tuple[str, str, int, list[tuple[str, list[Point]]]]) -> tuple[int, list[str]]:
    """Log groups of points to one run, each group its own way: ``async`` (log_metric, not
    waiting), ``sync`` (log_metric, waiting), ``batch_async`` / ``batch_sync`` (log_batch):
    (pid, the errors met, asynchronous ones included)."""
    uri, run_id, parties, groups = task
    from asynctrack import MlflowClient
    from asynctrack.entities import Metric

    client = MlflowClient(uri)
    client.get_run(run_id)
    start = len(_async_errors)
    errors: list[str] = []
    _release(parties)
    for how, points in groups:
        try:
            if how.startswith("batch"):
                metrics = [Metric(k, v, ts, step) for k, v, ts, step in points]
                client.log_batch(run_id, metrics=metrics, synchronous=how == "batch_sync")
            else:
                for k, v, ts, step in points:
                    client.log_metric(run_id, k, v, timestamp=ts, step=step, synchronous=how == "sync")
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on any
            errors.append(f"{how}: {exc!r}")
    return os.getpid(), errors + _errors_since(start)


SHARED_KEYS = ("a", "b", "c")  # metric keys every worker logs to every run
SHARED_TAGS = ("shared.x", "shared.y", "shared.z")  # tags every worker sets on every run
STATUSES = ("FINISHED", "FAILED", "KILLED")


def mixed_writes(task: tuple[str, list[str], int, int, int, int]) -> tuple[int, list[tuple], list[str]]:
    """Write to the same runs and keys as every other worker, in an order of this worker's
    own, to provoke lock-order deadlocks: each round, a log_batch to every run (runs, metric
    keys and tags shuffled; params of this worker's own), half of them waiting, half not; then
    one of: set_terminated of a shared run, a tag set and deleted again, a lone synchronous
    metric and tag. Returns (pid, the points it logged as (run, key, value, timestamp, step),
    the errors met)."""
    uri, run_ids, parties, index, rounds, seed = task
    from asynctrack import MlflowClient
    from asynctrack.entities import Metric, Param, RunTag

    rng = random.Random(seed)
    client = MlflowClient(uri)
    client.get_run(run_ids[0])
    start = len(_async_errors)
    errors: list[str] = []
    logged: list[tuple] = []
    _release(parties)
    for n in range(rounds):
        step = index * 1_000_000 + n  # every worker's points are distinct rows
        runs = list(run_ids)
        rng.shuffle(runs)
        try:
            for run_id in runs:
                keys, tags = list(SHARED_KEYS), list(SHARED_TAGS)
                rng.shuffle(keys)
                rng.shuffle(tags)
                metrics = [Metric(k, rng.uniform(-1, 1), 1_700_000_000_000 + n, step) for k in keys]
                logged.extend((run_id, m.key, m.value, m.timestamp, m.step) for m in metrics)
                client.log_batch(
                    run_id,
                    metrics=metrics,
                    params=[Param(f"w{index}.r{n}", str(n))],
                    tags=[RunTag(t, f"{index}.{n}") for t in tags],
                    synchronous=rng.random() < 0.5,
                )
            target = rng.choice(run_ids)
            what = n % 3
            if what == 0:
                client.set_terminated(target, status=rng.choice(STATUSES))
            elif what == 1:
                client.set_tag(target, f"w{index}.tmp", str(n), synchronous=False)
                client.delete_tag(target, f"w{index}.tmp")
            else:
                key = rng.choice(SHARED_KEYS)
                value = rng.uniform(-1, 1)
                client.log_metric(target, key, value, timestamp=1_700_000_000_000 + n, step=step + 500_000)
                logged.append((target, key, value, 1_700_000_000_000 + n, step + 500_000))
                client.set_tag(target, rng.choice(SHARED_TAGS), f"{index}.{n}.sync")
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on any
            errors.append(f"round {n}: {exc!r}")
    return os.getpid(), logged, errors + _errors_since(start)
