"""What each process of the spawn-pool test runs (a module of its own: a spawned child imports
it, and nothing else of the test suite)."""

from __future__ import annotations


def log_one_run(args: tuple[str, str, int, int]) -> str:
    """A run of ``points`` asynchronous points in experiment ``experiment_id``; its id."""
    url, experiment_id, worker, points = args
    from asynctrack import MlflowClient

    client = MlflowClient(url)
    run_id = client.create_run(experiment_id, run_name=f"worker-{worker}").info.run_id
    for i in range(points):
        client.log_metric(run_id, "m", float(i), timestamp=i, step=i, synchronous=False)
    client.log_param(run_id, "worker", str(worker), synchronous=False)
    client.set_terminated(run_id, "FINISHED")
    client.flush()
    return run_id
