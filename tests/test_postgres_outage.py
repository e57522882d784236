"""PostgreSQL outages (issue #16), on a real server: PostgreSQL restarted under a run, the
writer's connection killed mid-transaction, ``statement_timeout``, a read-only database.

The rules are SQLite's (tests/test_store_failure.py): asynchronous records are kept and then
stored exactly once; synchronous calls and reads raise ``TEMPORARILY_UNAVAILABLE``, never a
driver's error; a batch is stored whole or not at all; a store that stays down spools at exit
and ``asynctrack replay`` stores the spool, idempotently.

A full disk cannot be provoked safely on a shared machine. It takes the same path as the
read-only database here: both are store failures by SQLSTATE (53100 disk full and 25006
read-only, asynctrack/store/_postgres/errors.py), so the batch is rolled back and kept.

The tests that stop PostgreSQL start a server of their own with scripts/postgres.sh (``pause``
and ``resume`` keep its port, so clients find it again); the others change one fresh database
of the session's server and drop it afterwards.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from asynctrack import MlflowClient
from asynctrack._replay import replay_spool
from asynctrack.entities import Metric, Param, RunTag
from asynctrack.exceptions import MlflowException
from asynctrack.store import store_for_uri
from asynctrack.writer import _outage as outage_module
from asynctrack.writer import writer_for
from tests._postgres import NO_POSTGRES, SCRIPT, bindir, postgres_db, postgres_server  # noqa: F401

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 not installed: pip install -e '.[postgres]'")
pytest.importorskip("asyncpg", reason="asyncpg not installed: pip install -e '.[postgres]'")


# -- helpers ----------------------------------------------------------------------------------


def _script(*args: str) -> str:
    env = dict(os.environ, ASYNCTRACK_POSTGRES_WATCH_PID=str(os.getpid()))
    proc = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, f"scripts/postgres.sh {' '.join(args)}: {proc.stderr}"
    return proc.stdout


@pytest.fixture
def own_server() -> Iterator[tuple[str, str]]:
    """A PostgreSQL server of this test's own (it gets stopped under its clients): (URI, DIR)."""
    if bindir() is None:
        pytest.skip(NO_POSTGRES)
    if os.geteuid() == 0 and subprocess.run(["id", "postgres"], capture_output=True).returncode:
        pytest.skip("PostgreSQL tests: running as root and no 'postgres' OS user to run initdb as")
    uri, folder = _script("start").split()
    try:
        yield uri, folder
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", folder], capture_output=True, timeout=60)


def _count(uri: str, sql: str = "SELECT count(*) FROM metrics") -> object:
    with psycopg.connect(uri, autocommit=True) as conn:
        return conn.execute(sql).fetchone()[0]


def _client(uri: str) -> tuple[MlflowClient, str, str, object]:
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("e")
    run_id = client.create_run(experiment_id).info.run_id
    return client, experiment_id, run_id, writer_for(store_for_uri(uri))


def _log(client: MlflowClient, run_id: str, steps: range, key: str = "m") -> None:
    for i in steps:
        client.log_metric(run_id, key, float(i), timestamp=1000 + i, step=i, synchronous=False)


def _until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _stored_again(client: MlflowClient, writer) -> None:
    """The writer's outage ends (it retries at once on each flush)."""

    def over() -> bool:
        client.flush()
        return not writer._outage.active

    _until(over, "the kept records to be stored")


def _unavailable(call: Callable[[], object]) -> MlflowException:
    with pytest.raises(MlflowException) as info:
        call()
    assert info.value.error_code == "TEMPORARILY_UNAVAILABLE", info.value
    return info.value


def _spools(tmp_path) -> list[str]:
    return sorted(glob.glob(str(tmp_path / "spool" / "*.msgpack")))


def _database(uri: str) -> str:
    return uri.rsplit("/", 1)[1]


def _refresh_sessions(admin, database: str) -> None:
    """End every session of ``database`` (but the admin's): a per-database setting applies to
    sessions started after it, so the writer and the readers reconnect and meet it. Returns
    once they are gone (a terminated backend takes a moment to exit)."""
    others = "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
    admin.execute(f"SELECT pg_terminate_backend(pid) {others}", (database,))
    _until(lambda: admin.execute(f"SELECT count(*) {others}", (database,)).fetchone()[0] == 0, "the sessions to end")


# -- the server restarted ---------------------------------------------------------------------


def test_a_server_down_mid_run_keeps_async_records_and_tells_sync_callers_and_readers(own_server, monkeypatch, tmp_path):
    """PostgreSQL stopped mid-run, then started again on its port: asynchronous logging
    returns without error and is kept (past HOLD_MAX, in a spool file); a synchronous call and
    every read raise TEMPORARILY_UNAVAILABLE (MlflowException, not psycopg's or asyncpg's
    errors) and store nothing; once the server is back, everything kept is stored exactly once
    (the spool first, then removed) and synchronous calls and reads work again."""
    monkeypatch.setattr(outage_module, "STORE_RETRY_S", 0.2)
    monkeypatch.setattr(outage_module, "HOLD_MAX", 1000)
    monkeypatch.setenv("ASYNCTRACK_SPOOL_DIR", str(tmp_path / "spool"))
    uri, folder = own_server
    client, experiment_id, run_id, writer = _client(uri)
    _log(client, run_id, range(100))
    client.flush()
    assert client.get_run(run_id).data.metrics == {"m": 99.0}  # the reader has its connection

    _script("pause", folder)
    _log(client, run_id, range(100, 3100))
    client.log_param(run_id, "lr", "0.1", synchronous=False)
    client.set_tag(run_id, "t", "x", synchronous=False)
    client.log_batch(run_id, [Metric("b", 1.0, 5, 0)], [Param("bp", "1")], [RunTag("bt", "y")], synchronous=False)
    error = _unavailable(lambda: client.log_metric(run_id, "sync", 1.0))
    assert "Nothing of this call was stored" in error.message
    for read in (
        lambda: client.get_run(run_id),
        lambda: client.get_metric_history(run_id, "m"),
        lambda: client.search_runs([experiment_id]),
        lambda: client.get_experiment_by_name("e"),
    ):
        error = _unavailable(read)
        assert "PostgreSQL store" in error.message and type(error) is MlflowException
    client.flush()  # returns: the records are kept, not lost and not waited for forever
    assert writer._outage.active
    assert len(writer._outage.held) <= 1000 and len(_spools(tmp_path)) == 1  # memory bounded

    _script("resume", folder)
    _stored_again(client, writer)
    assert not _spools(tmp_path)  # stored, so removed
    assert _count(uri) == 3101  # 3000 kept points and the batch's, once each
    assert _count(uri, "SELECT count(*) FROM metrics WHERE key = 'sync'") == 0
    assert _count(uri, "SELECT count(*) FROM params") == 2
    assert _count(uri, "SELECT count(*) FROM tags WHERE key IN ('t', 'bt')") == 2
    data = client.get_run(run_id).data  # the reader reconnects by itself
    assert data.metrics == {"m": 3099.0, "b": 1.0}
    assert len(client.get_metric_history(run_id, "m")) == 3100
    client.log_metric(run_id, "sync", 2.0)  # synchronous calls work again
    assert _count(uri, "SELECT count(*) FROM metrics WHERE key = 'sync'") == 1


def test_restarts_under_a_logging_loop_lose_nothing(own_server, monkeypatch):
    """Three restarts while a training loop logs asynchronously as fast as it can: no
    exception in the loop, and every point is stored exactly once."""
    monkeypatch.setattr(outage_module, "STORE_RETRY_S", 0.2)
    uri, folder = own_server
    client, _, run_id, writer = _client(uri)
    total = 30_000
    logged = [0]
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            for i in range(total):
                client.log_metric(run_id, "m", float(i), timestamp=1000 + i, step=i, synchronous=False)
                logged[0] = i + 1
                if i % 500 == 0:
                    time.sleep(0.005)  # a training step
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=loop)
    thread.start()
    for k in range(1, 4):
        _until(lambda: logged[0] >= k * total // 5 or not thread.is_alive(), "the loop to log on")
        _script("restart", folder)
    thread.join(timeout=60)
    assert not thread.is_alive() and not errors
    _stored_again(client, writer)
    assert _count(uri) == total
    assert _count(uri, "SELECT count(DISTINCT step) FROM metrics") == total
    assert _count(uri, "SELECT value FROM latest_metrics") == total - 1


# -- a connection killed mid-transaction --------------------------------------------------------


def _blocked_backend(admin, database: str, killed: set[int]) -> int:
    """The pid of the session of ``database`` that waits for a lock (the writer's), other than
    those ``killed`` already (a terminated backend may still be listed while it exits)."""
    found: list[int] = []

    def blocked() -> bool:
        found[:] = [
            pid
            for (pid,) in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                (database,),
            ).fetchall()
            if pid not in killed
        ]
        return bool(found)

    _until(blocked, "the writer to block on the lock")
    assert len(found) == 1, found
    return found[0]


def test_a_writer_killed_mid_transaction_leaves_nothing_half_written(postgres_db, postgres_server):
    """The writer's backend is terminated (pg_terminate_backend) while its batch has written
    metrics and params and waits to write tags (another session holds a lock on tags): none
    of the batch is visible, then or after; the writer reconnects and runs it again (killed a
    second time, the same); once the lock goes, the asynchronous batch and a synchronous call
    made meanwhile are stored exactly once, and the synchronous caller sees no error."""
    client, _, run_id, writer = _client(postgres_db)
    _log(client, run_id, range(100))
    client.flush()
    database = _database(postgres_db)
    locker = psycopg.connect(postgres_db)  # a transaction, held open
    admin = psycopg.connect(postgres_server, autocommit=True)
    try:
        locker.execute("LOCK TABLE tags IN EXCLUSIVE MODE")  # reads go on; writes wait
        metrics = [Metric("b", float(i), 2000 + i, i) for i in range(500)]
        params = [Param(f"p{i}", str(i)) for i in range(10)]
        tags = [RunTag(f"t{i}", str(i)) for i in range(10)]
        client.log_batch(run_id, metrics, params, tags, synchronous=False)
        outcome: list[object] = []

        def synchronous() -> None:
            try:
                outcome.append(client.log_batch(run_id, [Metric("s", 1.0, 1, 0)], [Param("sp", "1")]))
            except BaseException as exc:  # noqa: BLE001 - asserted below
                outcome.append(exc)

        sync = threading.Thread(target=synchronous)
        sync.start()
        killed: set[int] = set()
        for _ in range(2):
            pid = _blocked_backend(admin, database, killed)  # a new connection each time
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            killed.add(pid)
            assert _count(postgres_db) == 100  # nothing of the batch
            assert _count(postgres_db, "SELECT count(*) FROM params") == 0
        _blocked_backend(admin, database, killed)  # tried a third time, and waiting
        assert sync.is_alive()  # the synchronous caller waits for its batch, not told an error
    finally:
        locker.rollback()
        locker.close()
        admin.close()
    sync.join(timeout=30)
    assert outcome and not isinstance(outcome[0], BaseException)
    client.flush()
    assert not writer._outage.active
    assert _count(postgres_db) == 100 + 500 + 1
    assert _count(postgres_db, "SELECT count(*) FROM params") == 11
    assert _count(postgres_db, "SELECT count(*) FROM tags WHERE key LIKE 't%'") == 10
    assert _count(postgres_db, "SELECT count(*) FROM latest_metrics") == 3
    assert client.get_run(run_id).data.metrics == {"m": 99.0, "b": 499.0, "s": 1.0}


# -- statement_timeout --------------------------------------------------------------------------


def test_statement_timeout_keeps_async_records_and_tells_sync_callers_and_readers(postgres_db, postgres_server, monkeypatch):
    """Every write runs past the database's statement_timeout (a lock held on metrics):
    asynchronous records are kept; a synchronous call, and a read that also runs past it, raise
    TEMPORARILY_UNAVAILABLE saying so; reads that finish in time work; once writes finish in
    time again, everything kept is stored exactly once."""
    monkeypatch.setattr(outage_module, "STORE_RETRY_S", 0.3)
    client, experiment_id, run_id, writer = _client(postgres_db)
    _log(client, run_id, range(100))
    client.flush()
    database = _database(postgres_db)
    admin = psycopg.connect(postgres_server, autocommit=True)
    admin.execute(f'ALTER DATABASE "{database}" SET statement_timeout = 400')
    _refresh_sessions(admin, database)
    locker = psycopg.connect(postgres_db)
    try:
        locker.execute("LOCK TABLE metrics IN EXCLUSIVE MODE")  # reads go on; writes wait
        locker.execute("LOCK TABLE experiments IN ACCESS EXCLUSIVE MODE")  # reads of it wait
        _log(client, run_id, range(100, 1100))
        client.log_param(run_id, "lr", "0.1", synchronous=False)
        client.set_tag(run_id, "t", "x", synchronous=False)
        error = _unavailable(lambda: client.log_metric(run_id, "sync", 1.0))
        assert "statement timeout" in error.message and "Nothing of this call was stored" in error.message
        error = _unavailable(lambda: client.get_experiment(experiment_id))
        assert "statement timeout" in error.message
        assert client.get_run(run_id).data.metrics == {"m": 99.0}
        client.flush()
        assert writer._outage.active
    finally:
        locker.rollback()
        locker.close()
    try:
        _stored_again(client, writer)
    finally:
        admin.execute(f'ALTER DATABASE "{database}" RESET statement_timeout')
        admin.close()
    assert _count(postgres_db) == 1100
    assert _count(postgres_db, "SELECT count(*) FROM params") == 1
    assert _count(postgres_db, "SELECT count(*) FROM tags WHERE key = 't'") == 1
    assert _count(postgres_db, "SELECT count(*) FROM metrics WHERE key = 'sync'") == 0
    assert client.get_run(run_id).data.metrics == {"m": 1099.0}
    client.log_metric(run_id, "sync", 2.0)
    assert _count(postgres_db, "SELECT count(*) FROM metrics WHERE key = 'sync'") == 1


# -- a read-only database, the spool and replay ---------------------------------------------------

READ_ONLY_JOB = textwrap.dedent("""
    import os, time
    import asynctrack as mlflow
    from asynctrack.exceptions import MlflowException
    mlflow.set_tracking_uri(os.environ["JOB_URI"])
    mlflow.set_experiment("job")
    with mlflow.start_run(run_name="job") as run:
        for i in range(1000):
            mlflow.log_metric("m", float(i), step=i, synchronous=False)
        mlflow.flush_async_logging()
        print(run.info.run_id, flush=True)
        input()  # the test makes the database read-only
        for i in range(1000, 4000):
            mlflow.log_metric("m", float(i), step=i, synchronous=False)
        mlflow.log_params({"a": "1", "b": "2"}, synchronous=False)
        mlflow.set_tag("phase", "done", synchronous=False)
        started = time.monotonic()
        try:
            mlflow.log_metric("sync", 1.0)
        except MlflowException as exc:
            print(exc.error_code, round(time.monotonic() - started, 1), flush=True)
            print(exc.message.replace(chr(10), " "), flush=True)
        print(mlflow.get_run(run.info.run_id).data.metrics["m"], flush=True)  # reads work
        mlflow.flush_async_logging()
        print("logged", flush=True)
""")


def test_a_read_only_database_spools_at_exit_and_replay_stores_it_once(postgres_db, postgres_server, tmp_path):
    """default_transaction_read_only turned on under a running job: a lasting outage. The job
    logs on without an exception, its synchronous call is told at once (TEMPORARILY_UNAVAILABLE,
    naming the read-only transaction), reads still work, and at exit its records go to one spool
    named in one log line. Turned off again, `asynctrack replay` (the real command, then the
    function it calls, again) stores every record exactly once into the postgresql:// store, and the run ends FINISHED."""
    database = _database(postgres_db)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ASYNCTRACK_"))}
    env.update(
        JOB_URI=postgres_db,
        ASYNCTRACK_SPOOL_DIR=str(tmp_path / "spool"),
        ASYNCTRACK_EXIT_TIMEOUT="1",
        ASYNCTRACK_STORE_RETRY="5",  # a lasting outage does not wait for it
    )
    job = subprocess.Popen(
        [sys.executable, "-c", READ_ONLY_JOB], cwd=tmp_path, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    admin = psycopg.connect(postgres_server, autocommit=True)
    try:
        run_id = job.stdout.readline().strip()
        assert run_id, job.communicate(timeout=60)[1]
        admin.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
        _refresh_sessions(admin, database)
        job.stdin.write("\n")
        job.stdin.flush()
        out, err = job.communicate(timeout=90)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    try:
        assert job.returncode == 0, err
        told, message, latest, logged = out.splitlines()  # (after the run id line)
        code, seconds = told.split()
        assert code == "TEMPORARILY_UNAVAILABLE" and float(seconds) < 3, out
        assert "read-only transaction" in message and "Nothing of this call was stored" in message
        assert (float(latest), logged) == (999.0, "logged")
        assert "Traceback" not in err
        spools = _spools(tmp_path)
        assert len(spools) == 1
        lines = [line for line in err.splitlines() if spools[0] in line]
        assert len(lines) == 1 and "asynctrack replay" in lines[0], err
        assert _count(postgres_db) == 1000
        assert _count(postgres_db, "SELECT status FROM runs") == "RUNNING"
    finally:
        admin.execute(f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
        admin.close()

    replay_env = {k: v for k, v in env.items() if k != "JOB_URI"}
    for again in (False, True):  # the real command, then (idempotent) the function it calls
        if again:
            report = replay_spool(spools[0])
            assert (report.read, report.stored, report.failed, report.problems) == (3003, 3003, [], [])
        else:
            done = subprocess.run([sys.executable, "-m", "asynctrack", "replay", spools[0]], cwd=tmp_path,
                                  capture_output=True, text=True, timeout=120, env=replay_env)
            assert done.returncode == 0, done.stderr
            assert "3003 records read, 3003 stored" in done.stdout  # 3000 points, the params, a tag, the end
        assert _count(postgres_db) == 4000
        assert _count(postgres_db, "SELECT count(DISTINCT step) FROM metrics") == 4000
        assert _count(postgres_db, "SELECT count(*) FROM metrics WHERE key = 'sync'") == 0
        assert _count(postgres_db, "SELECT count(*) FROM params") == 2
        assert _count(postgres_db, "SELECT value FROM tags WHERE key = 'phase'") == "done"
        assert _count(postgres_db, "SELECT status FROM runs") == "FINISHED"
        assert _count(postgres_db, "SELECT value FROM latest_metrics") == 3999.0
    assert MlflowClient(postgres_db).get_run(run_id).data.metrics == {"m": 3999.0}


def test_a_writer_connection_killed_while_idle_loses_nothing(postgres_db, postgres_server):
    """The writer's connection is terminated between batches (an idle-session reaper, a
    failover), five times over: the next batch finds the connection dead, and it, and a
    synchronous call with it, are stored on a new connection with no error to anyone."""
    client, _, run_id, writer = _client(postgres_db)
    database = _database(postgres_db)
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        for round_ in range(5):
            _log(client, run_id, range(round_ * 100, round_ * 100 + 100))
            client.flush()
            _refresh_sessions(admin, database)
            _log(client, run_id, range(1000 + round_ * 100, 1000 + round_ * 100 + 100))
            client.log_param(run_id, f"p{round_}", "1")  # synchronous: no error
    client.flush()
    assert not writer._errors
    assert _count(postgres_db) == 1000
    assert _count(postgres_db, "SELECT count(*) FROM params") == 5


@pytest.mark.asyncio
async def test_a_connection_lost_in_commit_may_have_stored_the_batch(postgres_db, tmp_path, monkeypatch):
    """The connection dies while COMMIT is on its way: the server may have committed, so the
    caller must not be told that nothing was stored; the batch, rerun, is stored once."""
    from asyncpg.transaction import Transaction

    from asynctrack import events as ev
    from asynctrack.store._postgres import PostgresStore
    from asynctrack.store.base import StoreUnavailable
    from tests._store_fixtures import rec

    store = PostgresStore(postgres_db, str(tmp_path))
    try:
        run_id = uuid.uuid4().hex
        assert await store.apply([rec(ev.CREATE_RUN, run_id, "0", "me", 1, [], "r")]) == [None]
        commit = Transaction.commit

        async def lost(self):
            self._connection.terminate()
            await commit(self)

        monkeypatch.setattr(Transaction, "commit", lost)
        with pytest.raises(StoreUnavailable) as info:
            await store.apply([rec(ev.METRIC, run_id, "m", 1.0, 5, 0)])
        assert info.value.maybe_stored
        monkeypatch.setattr(Transaction, "commit", commit)
        assert await store.apply([rec(ev.METRIC, run_id, "m", 1.0, 5, 0)]) == [None]
        assert len(store.get_metric_history(run_id, "m")[0]) == 1
    finally:
        await store.close_writer()
        store.close()
