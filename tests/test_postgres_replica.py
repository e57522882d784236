"""Read replicas for heavy search (issue #16's third stage): a streaming hot standby of the
PostgreSQL server that asynctrack writes to serves asynctrack's reads, from MlflowClient and
from ``asynctrack server``, once it has replayed the primary's WAL; a write to it is a clear
MlflowException. The primary and its standby are this module's own (scripts/postgres.sh start,
then replica); each test makes a database of its own on the primary, which replicates too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asynctrack import MlflowClient
from asynctrack.entities import Metric, Param, RunTag
from asynctrack.exceptions import MlflowException
from asynctrack.store import store_for_uri
from asynctrack.writer import writer_for
from tests._postgres import NO_POSTGRES, SCRIPT, bindir, fresh_database, with_database

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 not installed: pip install -e '.[postgres]'")
pytest.importorskip("asyncpg", reason="asyncpg not installed: pip install -e '.[postgres]'")

ROOT = Path(__file__).resolve().parent.parent


def _script(*args: str) -> list[str]:
    env = dict(os.environ, ASYNCTRACK_POSTGRES_WATCH_PID=str(os.getpid()))
    proc = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, f"scripts/postgres.sh {' '.join(args)}: {proc.stderr}"
    return proc.stdout.split()


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    """(primary URI, replica URI): a server of this module's own and a hot standby of it."""
    if bindir() is None:
        pytest.skip(NO_POSTGRES)
    if os.geteuid() == 0 and subprocess.run(["id", "postgres"], capture_output=True).returncode:
        pytest.skip("PostgreSQL tests: running as root and no 'postgres' OS user to run initdb as")
    primary, primary_dir = _script("start")
    folders = [primary_dir]
    try:
        replica, replica_dir = _script("replica", primary_dir)
        folders.append(replica_dir)
        yield primary, replica
    finally:
        for folder in reversed(folders):
            subprocess.run(["bash", str(SCRIPT), "stop", folder], capture_output=True, timeout=60)


@pytest.fixture
def pair(servers) -> Iterator[tuple[str, str]]:
    """A fresh database on the primary: (its URI, the same database's URI on the replica)."""
    primary, replica = servers
    with fresh_database(primary) as db:
        yield db, with_database(replica, db.rsplit("/", 1)[1])


def _caught_up(primary: str, replica: str, timeout: float = 30.0) -> None:
    """Wait until the replica has replayed everything the primary has logged so far (the
    insert position: with synchronous_commit off, a commit may not be written out yet). Asked
    of each server's ``postgres`` database: the test's may not be on the replica yet."""
    primary, replica = with_database(primary, "postgres"), with_database(replica, "postgres")
    with psycopg.connect(primary, autocommit=True) as conn:
        target = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
    deadline = time.monotonic() + timeout
    with psycopg.connect(replica, autocommit=True) as conn:
        while not conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()[0]:
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.01)


def _populate(uri: str) -> tuple[str, list[str]]:
    """An experiment of 12 runs with metric histories, params and tags, logged on ``uri``."""
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("heavy", tags={"team": "search"})
    run_ids = []
    for k in range(12):
        run_id = client.create_run(experiment_id, run_name=f"r{k}").info.run_id
        run_ids.append(run_id)
        for i in range(200):
            client.log_metric(run_id, "loss", 1.0 / (1 + i + k), timestamp=1000 + i, step=i, synchronous=False)
        client.log_batch(run_id, [Metric("acc", k / 12, 5000, 0)], [Param("lr", str(0.1 * (k % 4)))],
                         [RunTag("family", "odd" if k % 2 else "even")], synchronous=False)
        if k % 3 == 0:
            client.set_terminated(run_id, "FINISHED")
    client.flush()
    return experiment_id, run_ids


def _view(runs) -> list[tuple]:
    return [(r.info.run_id, r.info.status, r.data.metrics, r.data.params, r.data.tags) for r in runs]


SEARCHES = [
    dict(filter_string="", order_by=None),
    dict(filter_string="metrics.acc > 0.3 and params.lr != '0.0'", order_by=["metrics.acc DESC"]),
    dict(filter_string="tags.family = 'odd'", order_by=["metrics.loss ASC", "attributes.start_time DESC"]),
    dict(filter_string="attributes.status = 'FINISHED'", order_by=["params.lr DESC"]),
    dict(filter_string="attributes.run_name ILIKE 'R1%'", order_by=["attributes.run_name"]),
]


def test_a_replica_serves_searches_and_reads_of_what_the_primary_stored(pair):
    """asynctrack writes to the primary; a store opened on the replica (its construction
    writes nothing: the schema is there) gives the same searches, pages, runs and metric
    histories, and follows the primary as it goes on."""
    primary, replica = pair
    experiment_id, run_ids = _populate(primary)
    _caught_up(primary, replica)
    on_primary, on_replica = MlflowClient(primary), MlflowClient(replica)
    for search in SEARCHES:
        want = on_primary.search_runs([experiment_id], **search)
        got = on_replica.search_runs([experiment_id], **search)
        assert _view(got) == _view(want) and len(got) > 0, search
    page = on_replica.search_runs([experiment_id], order_by=["metrics.loss"], max_results=5)
    pages = [page]
    while page.token:
        page = on_replica.search_runs([experiment_id], order_by=["metrics.loss"], max_results=5, page_token=page.token)
        pages.append(page)
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [r.info.run_id for p in pages for r in p] == [
        r.info.run_id for r in on_primary.search_runs([experiment_id], order_by=["metrics.loss"])
    ]
    for run_id in run_ids[:3]:
        assert _view([on_replica.get_run(run_id)]) == _view([on_primary.get_run(run_id)])
        history = on_replica.get_metric_history(run_id, "loss")
        assert [(m.step, m.value) for m in history] == [
            (m.step, m.value) for m in on_primary.get_metric_history(run_id, "loss")
        ]
        assert len(history) == 200
    assert on_replica.get_experiment_by_name("heavy").tags == {"team": "search"}
    assert [e.name for e in on_replica.search_experiments()] == [e.name for e in on_primary.search_experiments()]

    on_primary.log_metric(run_ids[0], "late", 7.0)  # the replica follows
    _caught_up(primary, replica)
    assert on_replica.get_run(run_ids[0]).data.metrics["late"] == 7.0


def test_a_write_to_the_replica_is_a_clear_error(pair):
    """Every synchronous write to the replica raises at once an MlflowException naming the hot
    standby (no driver error, no wait for a store that will not come back)."""
    primary, replica = pair
    experiment_id, run_ids = _populate(primary)
    _caught_up(primary, replica)
    client = MlflowClient(replica)
    for write in (
        lambda: client.create_experiment("new"),
        lambda: client.create_run(experiment_id),
        lambda: client.log_metric(run_ids[0], "m", 1.0),
        lambda: client.log_param(run_ids[0], "p", "v"),
        lambda: client.set_terminated(run_ids[1], "FAILED"),
        lambda: client.delete_experiment(experiment_id),
    ):
        started = time.monotonic()
        with pytest.raises(MlflowException) as info:
            write()
        assert time.monotonic() - started < 2
        assert info.value.error_code == "TEMPORARILY_UNAVAILABLE"
        assert "hot standby (a read-only replica); log to its primary" in info.value.message
        assert "Nothing of this call was stored" in info.value.message
    assert not writer_for(store_for_uri(replica))._outage.active  # nothing kept, nothing to spool
    assert MlflowClient(primary).get_run(run_ids[1]).info.status == "RUNNING"


def test_a_replica_of_a_database_without_the_schema_is_refused_clearly(pair):
    """The primary's database was never opened by asynctrack or MLflow: the replica cannot
    make the schema, and says so: INVALID_STATE, not TEMPORARILY_UNAVAILABLE (retrying will not
help), and not psycopg's error."""
    primary, replica = pair
    _caught_up(primary, replica)
    with pytest.raises(MlflowException) as info:
        store_for_uri(replica)
    assert info.value.error_code == "INVALID_STATE"
    assert "has no MLflow schema yet and is read-only (a hot standby" in info.value.message


def _started_server(tmp_path: Path, backend: str, *options: str):
    """``asynctrack server --backend-store-uri backend *options``, started (stop it)."""
    pytest.importorskip("uvicorn", reason="asynctrack[server] not installed")
    from tests._servers import Server, free_port

    port = free_port()
    argv = [
        sys.executable, "-m", "asynctrack", "server", "--backend-store-uri", backend, *options,
        "--artifacts-destination", str(tmp_path / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ASYNCTRACK_"))}
    env["PYTHONPATH"] = str(ROOT)
    server = Server(argv, f"http://127.0.0.1:{port}", port, tmp_path, backend, tmp_path / "artifacts", env)
    server.start()
    return server


def test_asynctrack_server_on_a_replica_serves_searches(pair, tmp_path):
    """``asynctrack server --backend-store-uri <replica>`` starts (it writes nothing at start),
    answers searches over HTTP with what the primary stored, and refuses a write clearly."""
    primary, replica = pair
    experiment_id, _ = _populate(primary)
    _caught_up(primary, replica)
    server = _started_server(tmp_path, replica)
    try:
        over_http = MlflowClient(server.url)
        on_primary = MlflowClient(primary)
        for search in SEARCHES:
            got = over_http.search_runs([experiment_id], **search)
            assert _view(got) == _view(on_primary.search_runs([experiment_id], **search)), search
        assert len(over_http.get_metric_history(got[0].info.run_id, "loss")) == 200
        with pytest.raises(MlflowException) as info:
            over_http.create_experiment("written-to-a-replica")
        assert info.value.error_code == "TEMPORARILY_UNAVAILABLE"
        assert "hot standby (a read-only replica)" in info.value.message
    finally:
        server.stop()


def _replay(replica: str, on: bool) -> None:
    """Pause or resume the replica's WAL replay (what lag looks like, for as long as we like)."""
    with psycopg.connect(with_database(replica, "postgres"), autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_resume()" if on else "SELECT pg_wal_replay_pause()")


def test_a_read_replica_answers_searches_and_histories_and_the_primary_the_rest(pair):
    """MLflow's --read-replica-backend-store-uri, as a store: searches and metric histories are
    read on the replica, every write and point lookup on the primary. Proven by pausing the
    replica's replay: a run logged meanwhile is there for get_run at once (create_run reads
    back what it wrote), but not in a search until the replica catches up."""
    primary, replica = pair
    store = store_for_uri(primary, read_replica_uri=replica)
    assert store.read_replica_uri == replica
    experiment_id, run_ids = _populate(primary)
    _caught_up(primary, replica)
    client = MlflowClient(primary)
    assert len(client.search_runs([experiment_id])) == 12
    _replay(replica, on=False)
    try:
        late = client.create_run(experiment_id, run_name="late").info.run_id
        client.log_metric(late, "loss", 0.5, step=0)
        client.log_metric(run_ids[0], "loss", 9.0, timestamp=9000, step=999)
        assert client.get_run(late).info.run_name == "late"  # the primary's
        assert client.get_run(run_ids[0]).data.metrics["loss"] == 9.0
        assert len(client.search_runs([experiment_id])) == 12  # the replica's, not caught up
        assert len(client.get_metric_history(run_ids[0], "loss")) == 200
    finally:
        _replay(replica, on=True)
    _caught_up(primary, replica)
    assert late in {r.info.run_id for r in client.search_runs([experiment_id])}
    assert len(client.get_metric_history(run_ids[0], "loss")) == 201
    with pytest.raises(MlflowException, match="without the read replica"):
        store_for_uri(primary, read_replica_uri=with_database(replica, "postgres"))


def test_a_read_replica_is_refused_for_sqlite_and_checked_for_the_schema(pair, tmp_path, monkeypatch):
    from asynctrack.store._postgres import store as postgres_store

    monkeypatch.setattr(postgres_store, "REPLICA_SCHEMA_WAIT_S", 0.5)  # it never comes here
    primary, replica = pair
    with pytest.raises(MlflowException, match="A read replica is for a PostgreSQL store"):
        store_for_uri(f"sqlite:///{tmp_path}/x.db", read_replica_uri=replica)
    with pytest.raises(MlflowException) as info:  # not a replica of the primary's database
        store_for_uri(primary, read_replica_uri=with_database(replica, "postgres"))
    assert info.value.error_code == "INVALID_STATE" and "has no MLflow schema" in info.value.message


def test_asynctrack_server_with_a_read_replica_searches_there(pair, tmp_path):
    """``asynctrack server --read-replica-backend-store-uri``, as MLflow's: MLflow's own
    client logs through it to the primary and searches what the replica has replayed."""
    primary, replica = pair
    experiment_id, _ = _populate(primary)
    _caught_up(primary, replica)
    server = _started_server(tmp_path, primary, "--read-replica-backend-store-uri", replica)
    try:
        over_http = MlflowClient(server.url)
        assert len(over_http.search_runs([experiment_id])) == 12
        _replay(replica, on=False)
        try:
            run = over_http.create_run(experiment_id, run_name="through-the-server")
            over_http.log_batch(run.info.run_id, [Metric("acc", 1.0, 1, 0)])
            assert over_http.get_run(run.info.run_id).data.metrics == {"acc": 1.0}
            assert len(over_http.search_runs([experiment_id])) == 12
        finally:
            _replay(replica, on=True)
        _caught_up(primary, replica)
        assert len(over_http.search_runs([experiment_id])) == 13
    finally:
        server.stop()
