"""asynctrack against a real MLflow 3.18 ``mlflow server``: reads, writes through the writer,
coalesced log-batch requests, culprits found alone, exact counts of what the server stored."""

from __future__ import annotations

import math
import uuid

import pytest

import asynctrack
from asynctrack import MlflowClient
from asynctrack.entities import Metric, Param, RunTag, ViewType
from asynctrack.exceptions import MlflowException
from asynctrack.store._http import _writes

from ._servers import mlflow_server_session, fresh_mlflow_server  # noqa: F401


@pytest.fixture
def client(mlflow_server_session):  # noqa: F811
    return MlflowClient(mlflow_server_session.url)


@pytest.fixture
def run_id(client):
    exp = client.create_experiment(f"e-{uuid.uuid4().hex}")
    return client.create_run(exp).info.run_id


def _mlflow_count(server, run_id: str, key: str) -> int:
    """How many points of ``key`` the server holds, through MLflow's own client."""
    from tests.oracle import run

    return run(
        """
        import mlflow
        _out(len(mlflow.MlflowClient(ARGS["url"]).get_metric_history(ARGS["run_id"], ARGS["key"])))
        """,
        url=server.url, run_id=run_id, key=key,
    )


def test_experiments_round_trip(client):
    name = f"exp-{uuid.uuid4().hex}"
    exp_id = client.create_experiment(name, tags={"a": "1"})
    assert isinstance(exp_id, str)
    exp = client.get_experiment(exp_id)
    assert (exp.name, exp.tags, exp.lifecycle_stage) == (name, {"a": "1"}, "active")
    assert exp.artifact_location == f"mlflow-artifacts:/{exp_id}"
    assert isinstance(exp.creation_time, int) and exp.creation_time == exp.last_update_time
    assert client.get_experiment_by_name(name).experiment_id == exp_id
    assert client.get_experiment_by_name(f"missing-{uuid.uuid4().hex}") is None
    client.set_experiment_tag(exp_id, "b", "2")
    client.delete_experiment_tag(exp_id, "a")
    client.rename_experiment(exp_id, name + "-new")
    assert client.get_experiment(exp_id).tags == {"b": "2"}
    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    client.restore_experiment(exp_id)
    exp = client.get_experiment(exp_id)
    assert (exp.name, exp.lifecycle_stage) == (name + "-new", "active")
    with pytest.raises(MlflowException) as info:
        client.create_experiment(name + "-new")
    assert info.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as info:
        client.get_experiment("987654321")
    assert (info.value.error_code, info.value.message) == (
        "RESOURCE_DOES_NOT_EXIST", "RESOURCE_DOES_NOT_EXIST: No Experiment with id=987654321 exists"
    )


def test_runs_get_the_servers_id_and_lifecycle(client):
    exp = client.create_experiment(f"e-{uuid.uuid4().hex}")
    run = client.create_run(exp, start_time=123, tags={"t": "v"}, run_name="my-run")
    run_id = run.info.run_id
    assert (run.info.start_time, run.info.run_name, run.info.status) == (123, "my-run", "RUNNING")
    assert run.info.artifact_uri == f"mlflow-artifacts:/{exp}/{run_id}/artifacts"
    assert run.data.tags == {"t": "v", "mlflow.runName": "my-run"}
    client.update_run(run_id, name="renamed")
    client.set_terminated(run_id, "FAILED", end_time=456)
    info = client.get_run(run_id).info
    assert (info.run_name, info.status, info.end_time) == ("renamed", "FAILED", 456)
    client.delete_tag(run_id, "t")
    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    client.restore_run(run_id)
    assert client.get_run(run_id).data.tags == {"mlflow.runName": "renamed"}


def test_logging_and_values(client, run_id):
    client.log_metric(run_id, "m", 1.5, timestamp=10, step=2)
    client.log_metric(run_id, "nan", float("nan"), timestamp=10, step=0)
    client.log_metric(run_id, "inf", float("inf"), timestamp=10, step=0)
    client.log_metric(run_id, "big", 1.0, timestamp=2**62, step=-(2**62))
    client.log_param(run_id, "p", 3)
    client.set_tag(run_id, "t", "x")
    client.log_batch(run_id, [Metric("b", 2.0, 5, 1)], [Param("q", "1")], [RunTag("t", "y")])
    run = client.get_run(run_id)
    assert run.data.params == {"p": "3", "q": "1"}
    assert run.data.tags["t"] == "y"
    metrics = run.data.metrics
    assert math.isnan(metrics["nan"]) and metrics["inf"] == 1.7976931348623157e308
    assert (metrics["m"], metrics["b"]) == (1.5, 2.0)
    (big,) = client.get_metric_history(run_id, "big")
    assert (big.timestamp, big.step, type(big.timestamp)) == (2**62, -(2**62), int)


def test_sync_param_conflict_is_mlflows_error(client, run_id):
    client.log_param(run_id, "p", "a")
    with pytest.raises(MlflowException) as info:
        client.log_param(run_id, "p", "b")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert info.value.message.startswith(
        "INVALID_PARAMETER_VALUE: Changing param values is not allowed. Param with key='p' was "
        "already logged with value='a'"
    )


def test_async_records_coalesce_and_are_all_stored(client, run_id, mlflow_server_session):  # noqa: F811
    n = 2_500
    for i in range(n):
        client.log_metric(run_id, "x", float(i), timestamp=i, step=i, synchronous=False)
    for i in range(150):
        client.log_param(run_id, f"p{i}", i, synchronous=False)
        client.set_tag(run_id, "last", i, synchronous=False)
    client.flush()
    history = client.get_metric_history(run_id, "x")
    assert len(history) == n
    assert sorted(m.step for m in history) == list(range(n))
    run = client.get_run(run_id)
    assert len(run.data.params) == 150
    assert run.data.tags["last"] == "149"  # the last value of a tag wins
    assert _mlflow_count(mlflow_server_session, run_id, "x") == n


def test_one_bad_record_fails_alone(client, run_id):
    client.log_param(run_id, "p5", "original")
    operations = [client.log_param(run_id, f"p{i}", f"v{i}", synchronous=False) for i in range(10)]
    metric_ops = [client.log_metric(run_id, "m", float(i), step=i, synchronous=False) for i in range(5)]
    errors = []
    for op in operations + metric_ops:
        try:
            op.wait()
        except MlflowException as exc:
            errors.append(exc)
    # RunOperations.wait wraps the record's error as MLflow does (INTERNAL_ERROR)
    assert len(errors) == 1 and "Param with key='p5' was already logged" in errors[0].message
    params = client.get_run(run_id).data.params
    assert len(params) == 10 and params["p5"] == "original" and params["p4"] == "v4"
    assert len(client.get_metric_history(run_id, "m")) == 5


def test_first_param_value_wins_within_a_batch(client, run_id):
    first = client.log_param(run_id, "k", "first", synchronous=False)
    second = client.log_param(run_id, "k", "second", synchronous=False)
    first.wait()
    with pytest.raises(MlflowException) as info:
        second.wait()
    assert "INVALID_PARAMETER_VALUE: Changing param values is not allowed" in info.value.message
    assert client.get_run(run_id).data.params == {"k": "first"}


def test_packing_respects_mlflows_limits():
    records = [(1, 1, "r", f"k{i % 3}", 1.0, i, i) for i in range(2_500)]
    records += [(1, 2, "r", f"p{i}", "v") for i in range(150)]
    records += [(1, 2, "r", "p149", "v")]  # a key already in the request starts a new one
    chains = _writes.pack(records, list(range(len(records))))
    assert len(chains) == 1
    sizes = [(len(r.metrics), len(r.params)) for r in chains[0]]
    assert sizes == [(1000, 0), (1000, 0), (500, 100), (0, 50), (0, 1)]


def test_large_values_split_by_bytes():
    value = "v" * 6000
    records = [(1, 3, "r", f"t{i}", value) for i in range(100)]
    chains = _writes.pack(records, list(range(100)))
    assert all(r.size <= _writes.MAX_REQUEST_BYTES for r in chains[0])
    assert sum(len(r.tags) for r in chains[0]) == 100 and len(chains[0]) > 1


def test_resent_batch_stores_each_point_once(client, run_id, mlflow_server_session):  # noqa: F811
    metrics = [Metric("d", float(i), 100 + i, i) for i in range(50)]
    client.log_batch(run_id, metrics, [Param("p", "1")], [RunTag("t", "1")])
    client.log_batch(run_id, metrics, [Param("p", "1")], [RunTag("t", "1")])  # as a replay does
    assert len(client.get_metric_history(run_id, "d")) == 50
    assert _mlflow_count(mlflow_server_session, run_id, "d") == 50


def test_metric_history_pages_through_25000(client, run_id):
    n = 25_010
    for start in range(0, n, 1000):
        client.log_batch(run_id, [Metric("h", float(i), i, i) for i in range(start, min(n, start + 1000))])
    history = client.get_metric_history(run_id, "h")
    assert len(history) == n and {m.step for m in history} == set(range(n))


def test_search_runs_pages_with_the_servers_tokens(client):
    exp = client.create_experiment(f"e-{uuid.uuid4().hex}")
    ids = {client.create_run(exp).info.run_id for _ in range(5)}
    pages, token = [], None
    while True:
        page = client.search_runs([exp], max_results=2, page_token=token, order_by=["start_time"])
        pages.append(len(page))
        token = page.token
        if token is None:
            break
    assert pages == [2, 2, 1]
    found = client.search_runs([exp], filter_string="attributes.status = 'RUNNING'", max_results=10)
    assert {r.info.run_id for r in found} == ids
    client.delete_run(next(iter(ids)))
    assert len(client.search_runs([exp], run_view_type=ViewType.DELETED_ONLY)) == 1
    assert len(client.search_runs([exp], run_view_type=ViewType.ALL)) == 5


def test_search_experiments_and_fluent_pages(client, mlflow_server_session, monkeypatch):  # noqa: F811
    prefix = f"s-{uuid.uuid4().hex}"
    for i in range(3):
        client.create_experiment(f"{prefix}-{i}")
    page = client.search_experiments(max_results=2, filter_string=f"name LIKE '{prefix}%'")
    assert len(page) == 2 and page.token
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server_session.url)
    found = asynctrack.search_experiments(filter_string=f"name LIKE '{prefix}%'")
    assert sorted(e.name for e in found) == [f"{prefix}-{i}" for i in range(3)]


def test_fluent_api_over_http(mlflow_server_session, monkeypatch):  # noqa: F811
    asynctrack.set_tracking_uri(mlflow_server_session.url)
    try:
        asynctrack.set_experiment(f"fluent-{uuid.uuid4().hex}")
        with asynctrack.start_run() as run:
            asynctrack.log_metric("a", 1.0)
            asynctrack.log_metrics({"b": 2.0, "c": 3.0}, step=1)
            asynctrack.log_params({"x": 1, "y": 2})
            asynctrack.set_tags({"t": "u"})
        stored = MlflowClient(mlflow_server_session.url).get_run(run.info.run_id)
        assert stored.info.status == "FINISHED"
        assert stored.data.metrics == {"a": 1.0, "b": 2.0, "c": 3.0}
        assert stored.data.params == {"x": "1", "y": "2"}
    finally:
        asynctrack.set_tracking_uri(None)


@pytest.mark.parametrize(
    "value, stored",
    [(3, "3"), (2.5, "2.5"), (1e20, "1.0e+20"), (True, "1"), ("s", "s"), (None, "")],
)
def test_non_str_tag_values_are_stored_as_sqlite_text(client, value, stored):
    """MLflow's SQLite store keeps ``tags={"n": 3}`` as "3"; MLflow's server reads a number in
    a string field as a broken request (it stored '' and dropped the run's name and other
    tags), so the HTTP store sends the text SQLite makes of the value (MLflow's own client
    crashes in protobuf instead: tests/test_client_vs_mlflow.py). None is sent as null: ''."""
    exp = client.create_experiment(f"e-{uuid.uuid4().hex}")
    run = client.create_run(exp, run_name="named", tags={"n": value, "other": "o"})
    for got in (run, client.get_run(run.info.run_id)):
        assert got.data.tags == {"n": stored, "other": "o", "mlflow.runName": "named"}
        assert got.info.run_name == "named"
    assert _writes._text(value) == (None if value is None else stored)
