"""A deterministic, awkward set of runs for the search tests: ties on start_time, missing keys,
NaN and ±inf metrics, keys with spaces and dots, LIKE wildcards and GLOB metacharacters in
values, mixed case, running (no end_time) and deleted runs, several experiments."""

from __future__ import annotations

import random

STRINGS = ["abc", "Abc", "ABC", "a_c", "a%c", "a*c", "a?c", "[ab]c", "", "x y", "é", "b", "ab", "abcd"]
METRIC_VALUES = [0.0, -1.0, 0.5, 1.0, 1.0, 2.5, 100.0, float("nan"), float("inf"), float("-inf"), 1e-3]
STATUSES = ["RUNNING", "FINISHED", "FAILED", "KILLED", "SCHEDULED"]
PARAM_KEYS = ["p1", "p2", "a b", "with.dot"]
METRIC_KEYS = ["m1", "m2", "m 3"]
TAG_KEYS = ["t1", "t2", "T1"]


def build(uri: str, n_runs: int = 60, seed: int = 7, lib=None) -> dict:
    """Fill a store; return {"experiments": [...ids], "runs": [...ids], "deleted_experiment": id}.

    ``lib``: the package whose client fills it, asynctrack (None) or MLflow itself (``mlflow``,
    in the oracle: tests/test_postgres_search_vs_mlflow.py runs this module there)."""
    if lib is None:
        from asynctrack import MlflowClient
        from asynctrack.entities import Metric, Param, RunTag
    else:
        MlflowClient = lib.MlflowClient
        Metric, Param, RunTag = lib.entities.Metric, lib.entities.Param, lib.entities.RunTag
    rnd = random.Random(seed)
    client = MlflowClient(uri)
    exps = [
        client.create_experiment("search-a", tags={"team": "x", "k": "Abc"}),
        client.create_experiment("search-b", tags={"team": "y"}),
        client.create_experiment("Search-C"),
        client.create_experiment("other_d", tags={"k": "a_c"}),
    ]
    runs = []
    for i in range(n_runs):
        exp = exps[i % 3]
        start = 1_700_000_000_000 + rnd.choice([0, 0, 1, 2, 5, 10, 10, 20]) * 1000
        name = rnd.choice(["alpha", "Alpha", "beta", "gamma_1", "a%z", None])
        tags = {"mlflow.user": rnd.choice(["ann", "bob", "Bob"])}
        run = client.create_run(exp, start_time=start, tags=tags, run_name=name)
        rid = run.info.run_id
        params = [Param(k, rnd.choice(STRINGS)) for k in PARAM_KEYS if rnd.random() < 0.7]
        metrics = [
            Metric(k, rnd.choice(METRIC_VALUES), start + 1, 0) for k in METRIC_KEYS if rnd.random() < 0.7
        ]
        run_tags = [RunTag(k, rnd.choice(STRINGS)) for k in TAG_KEYS if rnd.random() < 0.5]
        if runs and rnd.random() < 0.3:
            run_tags.append(RunTag("mlflow.parentRunId", rnd.choice(runs)))
        client.log_batch(rid, metrics=metrics, params=params, tags=run_tags)
        status = rnd.choice(STATUSES)
        if status != "RUNNING":
            client.set_terminated(rid, status, end_time=start + rnd.choice([1, 1000, 50_000]))
        if rnd.random() < 0.15:
            client.delete_run(rid)
        runs.append(rid)
    client.delete_experiment(exps[3])
    if lib is None:
        client.flush()
    return {"experiments": exps[:3], "runs": runs, "deleted_experiment": exps[3]}


def build_frames(uri: str) -> dict:
    """Experiments of awkward runs: keys missing from some runs, NaN/±inf/-0.0 metrics, running
    runs (no end_time), a metric that is NaN in every run, runs with nothing logged, an
    experiment whose runs all run, and an empty one. Returns the client and their ids."""
    from asynctrack import MlflowClient
    from asynctrack.entities import Metric, Param, RunTag

    client = MlflowClient(uri)
    mixed = client.create_experiment("mixed")
    running = client.create_experiment("running")
    empty = client.create_experiment("empty")
    t0 = 1_700_000_000_123
    plan = [
        ({"m1": float("nan"), "both": 1.0}, {"p1": "a"}, {"t1": "x"}, None),
        ({"m2": 1.5, "both": float("nan")}, {"p2": "b", "p1": ""}, {}, t0 + 5_000),
        ({}, {}, {}, t0 + 999),
        ({"m1": float("inf"), "m3": -0.0}, {"p3": "c"}, {"t2": "y", "t1": "z"}, None),
        ({"m3": float("-inf"), "m1": 1e-300}, {"p1": "é x"}, {"t2": ""}, t0 + 86_400_000),
    ]
    for i, (metrics, params, tags, end) in enumerate(plan):
        rid = client.create_run(mixed, start_time=t0 + i).info.run_id
        client.log_batch(
            rid,
            metrics=[Metric(k, v, t0, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        if end is not None:
            client.set_terminated(rid, end_time=end)
    for i in range(3):
        rid = client.create_run(running, start_time=t0 + i).info.run_id
        client.log_metric(rid, "only_nan", float("nan"))
        if i:
            client.log_param(rid, "late", str(i))
    client.flush()
    return {"client": client, "mixed": mixed, "running": running, "empty": empty}
