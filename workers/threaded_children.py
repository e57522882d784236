"""A parent run with child runs in threads, each logging asynchronously.

    python workers/threaded_children.py [--threads 8] [--points 5000] [--tracking-uri URI]

Each thread calls ``start_run(nested=True)`` with no run of its own, which makes its run a child
of the main thread's active run (what MLflow documents for child runs in threads), logs its
points with ``synchronous=False`` and ends its run at once: ``end_run`` returns when that child's
points are stored. The summary reads back every child's count and parent.
"""

from __future__ import annotations

import argparse
import threading
import time

import asynctrack as mlflow


def child(index: int, points: int, run_ids: list) -> None:
    with mlflow.start_run(nested=True, run_name=f"child-{index}") as run:
        mlflow.log_param("thread", index)
        for step in range(points):
            mlflow.log_metric("loss", 1.0 / (step + 1) + index, step=step, synchronous=False)
    run_ids[index] = run.info.run_id


def fan_out(threads: int, points: int, experiment: str = "threaded-children") -> tuple[str, list[str]]:
    """One parent, ``threads`` children of ``points`` points each; (parent id, child ids)."""
    mlflow.set_experiment(experiment)
    run_ids: list = [None] * threads
    with mlflow.start_run(run_name="parent") as parent:
        workers = [threading.Thread(target=child, args=(i, points, run_ids)) for i in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
    return parent.info.run_id, run_ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--points", type=int, default=5000)
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args()
    if args.tracking_uri:
        mlflow.set_tracking_uri(args.tracking_uri)

    start = time.perf_counter()
    parent_id, child_ids = fan_out(args.threads, args.points)
    elapsed = time.perf_counter() - start

    client = mlflow.MlflowClient()
    lost = 0
    for run_id in child_ids:
        run = client.get_run(run_id)
        stored = len(client.get_metric_history(run_id, "loss"))
        lost += args.points - stored
        parent_ok = run.data.tags.get("mlflow.parentRunId") == parent_id
        print(f"{run.info.run_name:>9}: {stored} points, {run.info.status}, "
              f"child of parent: {parent_ok}")
        if not parent_ok:
            lost += 1
    total = args.threads * args.points
    print(f"{total} points in {elapsed:.2f} s ({total / elapsed:,.0f} points/s end to end)")
    if lost:
        raise SystemExit(f"LOST OR MISPLACED: {lost}")


if __name__ == "__main__":
    main()
