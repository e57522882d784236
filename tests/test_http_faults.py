"""Faults between asynctrack's client and a tracking server, with exact counts of what was
stored (read from the server's own SQLite file, not through the client that logged it).

``asynctrack server`` is killed with -9 and restarted on its port; a fault-injecting proxy
(``_fault_proxy.py``) in front of ``asynctrack server`` and of MLflow's own ``mlflow server``
answers 429/503 (before or after the server did the work), drops connections before and after
forwarding, and stalls; 100 threads and a spawn pool of 8 processes log through one
``asynctrack server``. Each test says what a caller sees, and checks nothing was lost or stored
twice."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
import uuid

import pytest

from asynctrack import MlflowClient
from asynctrack.entities import Metric, Param, RunTag
from asynctrack.exceptions import MlflowException

from ._asynctrack_server import asynctrack_server_session, fresh_asynctrack_server  # noqa: F401
from ._fault_workers import log_one_run
from ._servers import mlflow_server_session  # noqa: F401

pytest.importorskip("httpx")
from ._fault_proxy import (  # noqa: E402
    DROP_AFTER_FAULT,
    DROP_BEFORE_FAULT,
    FaultProxy,
    any_of,
    every_nth,
    first,
    reply,
)

LOG_BATCH = "/runs/log-batch"


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch):
    """The writer's brief retry shortened (the outage path is what these tests exercise), and
    reads that fail fast unless a test wants MLflow's retries."""
    from asynctrack.writer import _outage

    monkeypatch.setattr(_outage, "STORE_RETRY_S", 0.3)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


@pytest.fixture(params=["asynctrack", "mlflow"])
def any_server(request):
    """Each of the two servers (the session's)."""
    name = "asynctrack_server_session" if request.param == "asynctrack" else "mlflow_server_session"
    return request.getfixturevalue(name)


def _db(server) -> str:
    return str(server.root / "mlflow.db")


def _count(server, sql: str, *args) -> int:
    with sqlite3.connect(_db(server), timeout=30) as conn:
        return conn.execute(sql, args).fetchone()[0]


def _points(server, run_id: str, key: str) -> int:
    return _count(server, "SELECT COUNT(*) FROM metrics WHERE run_uuid = ? AND key = ?", run_id, key)


def _distinct_steps(server, run_id: str, key: str) -> int:
    return _count(server, "SELECT COUNT(DISTINCT step) FROM metrics WHERE run_uuid = ? AND key = ?", run_id, key)


def _runs_in(server, experiment_id: str) -> int:
    return _count(server, "SELECT COUNT(*) FROM runs WHERE experiment_id = ?", int(experiment_id))


def _settled(client: MlflowClient, timeout: float = 90.0) -> None:
    """Wait until the writer holds nothing back (flush() does not wait through an outage)."""
    deadline = time.monotonic() + timeout
    while client._writer._outage.active or client._writer._outage.held:
        assert time.monotonic() < deadline, "the kept records were not stored in time"
        time.sleep(0.1)
    client.flush()


def _new_run(url: str, name: str) -> tuple[str, str]:
    c = MlflowClient(url)
    exp = c.create_experiment(f"{name}-{uuid.uuid4().hex[:8]}")
    return exp, c.create_run(exp).info.run_id


# -- kill -9 ------------------------------------------------------------------------------------------
def test_server_killed_mid_run_and_restarted_loses_nothing(fresh_asynctrack_server):  # noqa: F811
    server = fresh_asynctrack_server
    client = MlflowClient(server.url)
    exp, run_id = _new_run(server.url, "kill9")
    n, killed_at = 3000, 1000
    for i in range(n):
        if i == killed_at:
            server.kill()  # SIGKILL, the whole process group, with requests maybe in flight
        client.log_metric(run_id, "m", float(i), timestamp=i, step=i, synchronous=False)
        if i % 500 == 0:
            client.log_param(run_id, f"p{i}", str(i), synchronous=False)
            client.set_tag(run_id, "last", str(i), synchronous=False)
    with pytest.raises(MlflowException) as info:
        client.log_metric(run_id, "sync", 1.0)
    assert info.value.error_code == "TEMPORARILY_UNAVAILABLE"
    server.start()  # the same port, the same file
    _settled(client)
    client.set_terminated(run_id, "FINISHED")
    assert _points(server, run_id, "m") == n and _distinct_steps(server, run_id, "m") == n
    assert _points(server, run_id, "sync") == 0
    assert _count(server, "SELECT COUNT(*) FROM params WHERE run_uuid = ?", run_id) == n // 500
    run = client.get_run(run_id)
    assert run.data.tags["last"] == str(n - 500) and run.data.metrics["m"] == float(n - 1)
    assert run.info.status == "FINISHED" and _runs_in(server, exp) == 1


# -- 429 and 503 ----------------------------------------------------------------------------------------
def _log_through(url: str, run_id: str, rounds: int, per_round: int) -> int:
    """Asynchronous points in rounds (each flushed: one or more log-batch requests), a
    synchronous point and a param and tag per round; returns the points logged per key."""
    client = MlflowClient(url)
    for r in range(rounds):
        for i in range(per_round):
            step = r * per_round + i
            client.log_metric(run_id, "m", float(step), timestamp=step, step=step, synchronous=False)
        client.log_param(run_id, f"p{r}", str(r), synchronous=False)
        client.set_tag(run_id, "round", str(r), synchronous=False)
        client.log_batch(run_id, [Metric("sync", float(r), r, r)], [Param(f"q{r}", "1")], [RunTag("s", str(r))])
        client.flush()
    _settled(client)
    return rounds * per_round


def test_429_and_503_retried_log_batch_stores_each_point_once(any_server, monkeypatch):
    """503 before the server sees the request, and 429/503 after it has stored it (the answer
    lost): every batch is retried until stored, and nothing is stored twice."""
    from asynctrack.writer import _outage

    # Up to three failed attempts in a row must fit in the brief retry on a loaded machine
    # (0.3 s did not, with two CI lanes at once: a synchronous call was told of an outage).
    monkeypatch.setattr(_outage, "STORE_RETRY_S", 5.0)
    exp, run_id = _new_run(any_server.url, "status")
    rule = any_of(  # about half the log-batch requests, never more than three in a row
        every_nth(5, reply(503), LOG_BATCH),
        # (Retry-After 0: one longer than the brief retry, 5 s here, is an outage, and the
        # synchronous calls below would be told so; test_writes_wait_out_retry_after has that.)
        every_nth(7, reply(429, retry_after="0"), LOG_BATCH),
        every_nth(6, reply(503, after=True), LOG_BATCH),
        every_nth(11, reply(429, after=True), LOG_BATCH),
    )
    with FaultProxy(any_server.url, rule) as proxy:
        n = _log_through(proxy.url, run_id, rounds=12, per_round=150)
        assert proxy.done("reply:503", LOG_BATCH) >= 3 and proxy.done("reply:429", LOG_BATCH) >= 2
        assert proxy.done("reply-after:", LOG_BATCH) >= 3
    assert _points(any_server, run_id, "m") == n
    assert _points(any_server, run_id, "sync") == 12
    assert _count(any_server, "SELECT COUNT(*) FROM params WHERE run_uuid = ?", run_id) == 24
    run = MlflowClient(any_server.url).get_run(run_id)
    assert run.data.tags["round"] == "11" and run.data.tags["s"] == "11"
    assert _runs_in(any_server, exp) == 1


def test_writes_wait_out_retry_after(asynctrack_server_session):  # noqa: F811
    server = asynctrack_server_session
    _, run_id = _new_run(server.url, "retry-after")
    with FaultProxy(server.url, first(1, reply(429, retry_after="1"), LOG_BATCH)) as proxy:
        client = MlflowClient(proxy.url)
        for i in range(50):
            client.log_metric(run_id, "m", float(i), timestamp=i, step=i, synchronous=False)
        # Retry-After (1 s) is past the brief retry (0.3 s here): an outage, retried after 1 s.
        deadline = time.monotonic() + 30
        while _points(server, run_id, "m") < 50 and time.monotonic() < deadline:
            time.sleep(0.1)
        _settled(client)
        batches = [s for s in proxy.seen if LOG_BATCH in s.path]
    assert _points(server, run_id, "m") == 50  # stored once either way
    assert [b.done for b in batches] == ["reply:429", "forward"]
    assert batches[1].at - batches[0].at >= 1.0


def test_reads_wait_out_429_with_retry_after(any_server, monkeypatch):
    """Reads follow MLflow's retries: a 429 with Retry-After is waited out and retried."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    _, run_id = _new_run(any_server.url, "read429")
    MlflowClient(any_server.url).log_metric(run_id, "m", 2.0, timestamp=1, step=1)
    with FaultProxy(any_server.url, first(2, reply(429, retry_after="1"), "/runs/get")) as proxy:
        started = time.monotonic()
        run = MlflowClient(proxy.url).get_run(run_id)
        waited = time.monotonic() - started
        assert run.data.metrics == {"m": 2.0} and proxy.done("reply:429") == 2
        assert waited >= 1.9  # Retry-After: 1, twice
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with FaultProxy(any_server.url, first(1, reply(503), "/runs/get")) as proxy:
        with pytest.raises(MlflowException) as info:
            MlflowClient(proxy.url).get_run(run_id)
        assert info.value.error_code == "TEMPORARILY_UNAVAILABLE"  # the server's JSON, as MLflow


# -- dropped connections ----------------------------------------------------------------------------------
def test_dropped_connections_lose_nothing_and_store_nothing_twice(any_server):
    exp, run_id = _new_run(any_server.url, "drops")
    rule = any_of(every_nth(3, DROP_BEFORE_FAULT, LOG_BATCH), every_nth(4, DROP_AFTER_FAULT, LOG_BATCH))
    with FaultProxy(any_server.url, rule) as proxy:
        n = _log_through(proxy.url, run_id, rounds=10, per_round=120)
        assert proxy.done("drop_before", LOG_BATCH) >= 3 and proxy.done("drop_after", LOG_BATCH) >= 2
    assert _points(any_server, run_id, "m") == n and _distinct_steps(any_server, run_id, "m") == n
    assert _points(any_server, run_id, "sync") == 10
    assert _count(any_server, "SELECT COUNT(*) FROM params WHERE run_uuid = ?", run_id) == 20
    assert _runs_in(any_server, exp) == 1


def test_dropped_create_run_is_not_sent_twice(asynctrack_server_session):  # noqa: F811
    """Creating a run is not idempotent: when the connection drops after the request was sent
    the caller is told (as MLflow's client: a POST is not retried after a read error), and the
    server has the one run it created; dropped before, it has none."""
    server = asynctrack_server_session
    for fault, stored in ((DROP_AFTER_FAULT, 1), (DROP_BEFORE_FAULT, 0)):
        exp = MlflowClient(server.url).create_experiment(f"create-{uuid.uuid4().hex[:8]}")
        with FaultProxy(server.url, first(1, fault, "/runs/create")) as proxy:
            with pytest.raises(MlflowException) as info:
                MlflowClient(proxy.url).create_run(exp)
            assert "runs/create" in info.value.message
            assert _runs_in(server, exp) == stored
            run = MlflowClient(proxy.url).create_run(exp)  # the next one goes through
            assert run.info.experiment_id == exp
        assert _runs_in(server, exp) == stored + 1


# -- a stalled server ---------------------------------------------------------------------------------------
def test_stall_longer_than_the_timeout(asynctrack_server_session, monkeypatch):  # noqa: F811
    """MLFLOW_HTTP_REQUEST_TIMEOUT=2 and a 12 s stall: a synchronous call times out and is told
    TEMPORARILY_UNAVAILABLE; a read is MLflow's timeout error; asynchronous records are kept and
    stored once the server answers again. The stalled requests reach the server in the end
    (a slow server still does the work), so the refused call's point is stored as well: a
    timed-out write may or may not have been stored, as with MLflow's client."""
    server = asynctrack_server_session
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    exp, run_id = _new_run(server.url, "stall")
    with FaultProxy(server.url) as proxy:
        client = MlflowClient(proxy.url)
        client.log_metric(run_id, "m", -1.0, timestamp=0, step=0)
        proxy.stall(12)
        started = time.monotonic()
        for i in range(1, 401):
            client.log_metric(run_id, "m", float(i), timestamp=i, step=i, synchronous=False)
        with pytest.raises(MlflowException) as info:
            client.log_metric(run_id, "sync", 1.0, timestamp=1, step=0)
        assert info.value.error_code == "TEMPORARILY_UNAVAILABLE"
        with pytest.raises(MlflowException) as info:
            client.get_run(run_id)
        assert "timeout" in info.value.message and "MLFLOW_HTTP_REQUEST_TIMEOUT" in info.value.message
        assert time.monotonic() - started < 11  # told by the timeouts, before the stall is over
        for i in range(401, 601):
            client.log_metric(run_id, "m", float(i), timestamp=i, step=i, synchronous=False)
        _settled(client)
        proxy.wait_idle()
    assert _points(server, run_id, "m") == 601 and _distinct_steps(server, run_id, "m") == 601
    assert _points(server, run_id, "sync") == 1
    assert _runs_in(server, exp) == 1


def test_timed_out_write_is_not_called_unstored(asynctrack_server_session, monkeypatch):  # noqa: F811
    server = asynctrack_server_session
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    _, run_id = _new_run(server.url, "timed-out")
    with FaultProxy(server.url) as proxy:
        client = MlflowClient(proxy.url)
        proxy.stall(4)
        with pytest.raises(MlflowException) as info:
            client.log_metric(run_id, "sync", 1.0, timestamp=1, step=0)
        assert info.value.error_code == "TEMPORARILY_UNAVAILABLE"
        proxy.wait_idle()
        _settled(client)
    assert _points(server, run_id, "sync") == 1  # the stalled request was stored in the end
    assert "Nothing of this call was stored" not in info.value.message


def test_real_30s_stall_within_mlflows_timeout(asynctrack_server_session):  # noqa: F811
    """The one slow test (30 s): with MLflow's default timeout (120 s) a 30 s stall is waited
    out; a synchronous call made during it succeeds when the server answers, and every
    asynchronous record is stored once."""
    server = asynctrack_server_session
    exp, run_id = _new_run(server.url, "stall30")
    with FaultProxy(server.url) as proxy:
        client = MlflowClient(proxy.url)
        client.log_metric(run_id, "m", 0.0, timestamp=0, step=0)
        proxy.stall(30)
        started = time.monotonic()
        for i in range(1, 1001):
            client.log_metric(run_id, "m", float(i), timestamp=i, step=i, synchronous=False)
        client.log_param(run_id, "p", "during", synchronous=False)
        client.log_metric(run_id, "sync", 1.0, timestamp=1, step=0)  # waits, then succeeds
        assert 25 < time.monotonic() - started < 120
        _settled(client)
        proxy.wait_idle()
    assert _points(server, run_id, "m") == 1001 and _points(server, run_id, "sync") == 1
    assert MlflowClient(server.url).get_run(run_id).data.params == {"p": "during"}
    assert _runs_in(server, exp) == 1


# -- many clients --------------------------------------------------------------------------------------------
def test_hundred_concurrent_clients_through_asynctrack_server(asynctrack_server_session):  # noqa: F811
    server = asynctrack_server_session
    url = server.url
    exp = MlflowClient(url).create_experiment(f"hundred-{uuid.uuid4().hex[:8]}")
    points, errors, run_ids = 300, [], []
    lock = threading.Lock()
    barrier = threading.Barrier(100)

    def one(worker: int) -> None:
        try:
            client = MlflowClient(url)
            run_id = client.create_run(exp, run_name=f"t{worker}").info.run_id
            with lock:
                run_ids.append(run_id)
            barrier.wait(60)
            for i in range(points):
                client.log_metric(run_id, "m", float(i), timestamp=i, step=i, synchronous=False)
            client.log_param(run_id, "worker", str(worker), synchronous=False)
            client.set_terminated(run_id, "FINISHED")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(w,)) for w in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == []
    MlflowClient(url).flush()
    assert len(set(run_ids)) == 100 and _runs_in(server, exp) == 100
    for run_id in run_ids:
        assert _points(server, run_id, "m") == points
    assert _count(
        server, "SELECT COUNT(*) FROM runs WHERE experiment_id = ? AND status = 'FINISHED'", int(exp)
    ) == 100
    assert _count(
        server, "SELECT COUNT(*) FROM params p JOIN runs r ON p.run_uuid = r.run_uuid WHERE r.experiment_id = ?", int(exp)
    ) == 100


def test_spawn_pool_of_eight_through_asynctrack_server(asynctrack_server_session):  # noqa: F811
    server = asynctrack_server_session
    exp = MlflowClient(server.url).create_experiment(f"spawn-{uuid.uuid4().hex[:8]}")
    points = 2000
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        run_ids = pool.map(log_one_run, [(server.url, exp, w, points) for w in range(8)])
    assert len(set(run_ids)) == 8 and _runs_in(server, exp) == 8
    for run_id in run_ids:
        assert _points(server, run_id, "m") == points and _distinct_steps(server, run_id, "m") == points
    assert _count(
        server, "SELECT COUNT(*) FROM runs WHERE experiment_id = ? AND status = 'FINISHED'", int(exp)
    ) == 8
