"""A training loop that logs at high rate without waiting for the database.

    python workers/train_loop.py [--steps 20000] [--metrics 5] [--tracking-uri sqlite:///mlflow.db]

Every step logs a few metrics with ``synchronous=False``: each call only queues a msgpack record
(a few microseconds) and a background writer batches them into SQLite. Ending the run waits for
everything it logged, so the summary printed at the end reads back exactly what was stored.
"""

from __future__ import annotations

import argparse
import math
import random
import time

import asynctrack as mlflow


def train(steps: int, n_metrics: int, experiment: str = "train-loop") -> str:
    """Log ``steps`` × ``n_metrics`` points to a new run; its id once all of them are stored."""
    mlflow.set_experiment(experiment)
    with mlflow.start_run(tags={"worker": "train_loop"}) as run:
        mlflow.log_params({"steps": steps, "lr": 0.01})
        for step in range(steps):
            loss = math.exp(-step / (steps / 5)) + random.random() * 0.01
            mlflow.log_metric("loss", loss, step=step, synchronous=False)
            for m in range(1, n_metrics):
                mlflow.log_metric(f"metric_{m}", loss * m, step=step, synchronous=False)
    return run.info.run_id  # the with block ended the run: everything above is stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--metrics", type=int, default=5)
    parser.add_argument("--experiment", default="train-loop")
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args()
    if args.tracking_uri:
        mlflow.set_tracking_uri(args.tracking_uri)

    start = time.perf_counter()
    run_id = train(args.steps, args.metrics, args.experiment)
    elapsed = time.perf_counter() - start

    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    stored = sum(len(client.get_metric_history(run_id, k)) for k in run.data.metrics)
    logged = args.steps * args.metrics
    print(f"tracking URI : {mlflow.get_tracking_uri()}")
    print(f"run          : {run_id} ({run.info.run_name}), status {run.info.status}")
    print(f"params       : {run.data.params}")
    print(f"last metrics : { {k: round(v, 5) for k, v in sorted(run.data.metrics.items())} }")
    print(f"points       : logged {logged}, stored {stored} in {elapsed:.2f} s "
          f"({logged / elapsed:,.0f} points/s end to end)")
    if stored != logged:
        raise SystemExit(f"LOST POINTS: {logged - stored}")


if __name__ == "__main__":
    main()
