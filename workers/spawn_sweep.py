"""A hyper-parameter sweep over a ``spawn`` process pool, every trial a child run.

    python workers/spawn_sweep.py [--processes 4] [--trials 32] [--points 1000] [--tracking-uri URI]

Spawned workers inherit nothing but the environment, and ``set_tracking_uri`` /
``set_experiment`` export ``MLFLOW_TRACKING_URI`` / ``MLFLOW_EXPERIMENT_ID`` there: each trial
just calls ``start_run``. All processes write one SQLite file (WAL, ``BEGIN IMMEDIATE`` and
retries: nobody sees "database is locked"), and each trial's ``end_run`` returns once its points
are stored, before the pool hands out the next trial.
"""

from __future__ import annotations

import argparse
import itertools
import math
import multiprocessing
import time

import asynctrack as mlflow


def trial(args: tuple[str, float, int, int]) -> str:
    """One trial in a worker process: a child run of ``parent_id``; its run id."""
    parent_id, lr, depth, points = args
    with mlflow.start_run(parent_run_id=parent_id, run_name=f"lr={lr} depth={depth}") as run:
        mlflow.log_params({"lr": lr, "depth": depth})
        for step in range(points):
            loss = math.exp(-lr * step) / depth
            mlflow.log_metric("loss", loss, step=step, synchronous=False)
        mlflow.log_metric("final_loss", loss)
    return run.info.run_id


def sweep(processes: int, trials: int, points: int, experiment: str = "spawn-sweep") -> tuple[str, list[str]]:
    """Run ``trials`` trials on a spawn pool under one parent run; (parent id, trial run ids)."""
    mlflow.set_experiment(experiment)
    grid = list(itertools.islice(itertools.cycle(itertools.product(
        [0.001, 0.003, 0.01, 0.03], [2, 4, 8, 16])), trials))
    with mlflow.start_run(run_name="sweep") as parent:
        tasks = [(parent.info.run_id, lr, depth, points) for lr, depth in grid]
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            run_ids = pool.map(trial, tasks, chunksize=1)
    return parent.info.run_id, run_ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args()
    if args.tracking_uri:
        mlflow.set_tracking_uri(args.tracking_uri)
    else:
        mlflow.set_tracking_uri(mlflow.get_tracking_uri())  # exported for the workers

    start = time.perf_counter()
    parent_id, run_ids = sweep(args.processes, args.trials, args.points)
    elapsed = time.perf_counter() - start

    client = mlflow.MlflowClient()
    stored = sum(len(client.get_metric_history(r, "loss")) for r in run_ids)
    children = sum(client.get_run(r).data.tags.get("mlflow.parentRunId") == parent_id for r in run_ids)
    total = args.trials * args.points
    print(f"{args.trials} trials on {args.processes} spawned processes: {children} children of "
          f"the sweep run, {stored}/{total} points stored in {elapsed:.2f} s "
          f"({total / elapsed:,.0f} points/s wall)")
    if stored != total or children != args.trials:
        raise SystemExit("LOST OR MISPLACED RUNS OR POINTS")


if __name__ == "__main__":
    main()
