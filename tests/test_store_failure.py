"""When the store fails: transient errors retried with nothing lost; a store that stays down
(read-only, full, its file or directory gone, a lock held past exit) never raises in an
asynchronous caller, tells synchronous callers, keeps the records, spools them at exit within a
bounded wait, and ``asynctrack replay`` stores the spool, idempotently."""

from __future__ import annotations

import glob
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from asynctrack import MlflowClient
from asynctrack.writer import _outage as outage_module
from asynctrack.writer import _writer as writer_module
from asynctrack._replay import replay_spool
from asynctrack._spool import Spool, read_spool
from asynctrack.exceptions import MlflowException
from asynctrack.store import store_for_uri
from asynctrack.store._sqlite import writes
from asynctrack.writer import writer_for


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ASYNCTRACK_"))}
    env["ASYNCTRACK_SPOOL_DIR"] = str(tmp_path / "spool")
    env.update(extra)
    return env


def _count(db, sql="SELECT count(*) FROM metrics"):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def _spools(tmp_path):
    return sorted(glob.glob(str(tmp_path / "spool" / "*.msgpack")))


def _client(tmp_path, name="mlflow.db"):
    uri = f"sqlite:///{tmp_path}/{name}"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("e")).info.run_id
    return client, run_id, writer_for(store_for_uri(uri))


# -- transient failures -----------------------------------------------------------------------


def test_transient_failures_mid_transaction_are_retried_and_nothing_is_lost(tmp_path, monkeypatch):
    """SQLite I/O errors raised after a batch's statements ran but before COMMIT, in 30% of
    transactions: every batch is rolled back and retried; every point and param is stored once
    and no caller, synchronous or not, sees an error."""
    client, run_id, _ = _client(tmp_path)
    rng = random.Random(8)
    real = writes.SqliteWriter._apply_all
    injected = []

    def flaky(self, conn, records):
        outcomes = real(self, conn, records)
        if rng.random() < 0.3:
            injected.append(len(records))
            raise sqlite3.OperationalError("disk I/O error")
        return outcomes

    monkeypatch.setattr(writes.SqliteWriter, "_apply_all", flaky)

    def work(t):
        for i in range(2000):
            client.log_metric(run_id, f"m{t}", float(i), step=i, synchronous=False)
            if i % 200 == 0:
                client.log_param(run_id, f"p{t}_{i}", str(i))  # synchronous

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.flush()
    assert len(injected) > 5  # the failures really happened
    assert _count(tmp_path / "mlflow.db") == 8000
    assert _count(tmp_path / "mlflow.db", "SELECT count(*) FROM params") == 40
    assert _count(tmp_path / "mlflow.db", "SELECT count(*) FROM latest_metrics") == 4
    assert not _spools(tmp_path)


class _FlakyStore:
    """A store wrapper that refuses batches at random, as a flaky network store would."""

    def __init__(self, inner, rate, seed):
        self._inner, self._rate, self._rng = inner, rate, random.Random(seed)
        self.refused = 0

    def __getattr__(self, name):
        return getattr(self._inner, name)

    async def apply(self, records, on_commit=None):
        from asynctrack.store import StoreUnavailable

        if self._rng.random() < self._rate:
            self.refused += 1
            raise StoreUnavailable("injected: connection reset")
        return await self._inner.apply(records, on_commit)

    def apply_direct(self, records, done):
        return False


def test_a_store_that_refuses_at_random_loses_nothing(tmp_path):
    """Half of all batches refused by the store: asynchronous records are held and retried, so
    the exact count arrives; the writer never gives up on them."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("e")).info.run_id
    flaky = _FlakyStore(store_for_uri(uri), 0.5, seed=3)
    writer = writer_module.Writer(flaky, flush_interval=0.005)
    from asynctrack import events

    tickets = []
    for i in range(5000):
        tickets.append(writer.submit(events.encode_metric(run_id, "m", float(i), 1000 + i, i)))
        if i % 500 == 499:
            # each 500 its own batch(es), however busy the machine: ten or more applies, so the
            # seeded draws refuse six or more (a busy writer once coalesced it all into four)
            writer.flush()
    deadline = time.monotonic() + 60
    while _count(tmp_path / "mlflow.db") < 5000 and time.monotonic() < deadline:
        writer.flush()
        time.sleep(0.05)
    writer.close()
    assert flaky.refused > 3
    assert _count(tmp_path / "mlflow.db") == 5000
    assert all(writer.error_of(t) is None for t in tickets)


# -- a store that stays down, in this process ---------------------------------------------------


@pytest.mark.parametrize(
    "pragma, words",
    [("PRAGMA query_only=1", "readonly"), ("PRAGMA max_page_count=1", "full")],
    ids=["read-only", "disk-full"],
)
def test_store_down_then_back_keeps_async_records_and_tells_sync_callers(tmp_path, monkeypatch, pragma, words):
    """SQLite itself refuses (SQLITE_READONLY, SQLITE_FULL) on every connection the writer
    opens: asynchronous logging returns without error and is kept; a synchronous call raises
    TEMPORARILY_UNAVAILABLE and stores nothing; once the store takes writes again, everything
    kept is stored, exactly once."""
    monkeypatch.setattr(outage_module, "STORE_RETRY_S", 0.2)
    client, run_id, writer = _client(tmp_path)
    for i in range(100):
        client.log_metric(run_id, "m", float(i), step=i, synchronous=False)
    client.flush()
    db = tmp_path / "mlflow.db"
    assert _count(db) == 100

    healthy = writes.PRAGMAS
    monkeypatch.setattr(writes, "PRAGMAS", healthy + (pragma,))
    writer.store._writer._stale = True  # the next batch reopens, and meets the failure
    ops = [client.log_metric(run_id, "m", float(i), step=i, synchronous=False) for i in range(100, 3100)]
    client.log_param(run_id, "lr", "0.1", synchronous=False)
    client.set_tag(run_id, "t", "x", synchronous=False)
    with pytest.raises(MlflowException) as info:
        client.log_metric(run_id, "sync", 1.0)
    assert info.value.error_code == "TEMPORARILY_UNAVAILABLE"
    assert words in str(info.value).lower()
    client.flush()  # returns: the records are kept, not lost and not waited for forever
    ops[-1].wait()
    assert _count(db) == 100
    assert writer._outage.active

    monkeypatch.setattr(writes, "PRAGMAS", healthy)
    deadline = time.monotonic() + 30
    while writer._outage.active and time.monotonic() < deadline:
        client.flush()
        time.sleep(0.05)
    assert _count(db) == 3100
    assert _count(db, "SELECT count(*) FROM metrics WHERE key = 'sync'") == 0
    assert _count(db, "SELECT count(*) FROM params") == 1
    assert _count(db, "SELECT count(*) FROM tags WHERE key = 't'") == 1
    assert client.get_run(run_id).data.metrics["m"] == 3099.0
    assert _count(db, "PRAGMA integrity_check") == "ok"
    client.log_metric(run_id, "sync", 2.0)  # and synchronous calls work again
    assert _count(db, "SELECT count(*) FROM metrics WHERE key = 'sync'") == 1


def test_a_long_outage_spills_to_disk_and_memory_stays_bounded(tmp_path, monkeypatch):
    """Past HOLD_MAX records the held ones go to a spool file; when the store comes back the
    spool is stored first (order kept: the last tag value wins) and removed."""
    monkeypatch.setattr(outage_module, "STORE_RETRY_S", 0.1)
    monkeypatch.setattr(outage_module, "HOLD_MAX", 1000)
    monkeypatch.setenv("ASYNCTRACK_SPOOL_DIR", str(tmp_path / "spool"))
    client, run_id, writer = _client(tmp_path)
    healthy = writes.PRAGMAS
    monkeypatch.setattr(writes, "PRAGMAS", healthy + ("PRAGMA query_only=1",))
    writer.store._writer._stale = True
    for i in range(5000):
        client.log_metric(run_id, "m", float(i), step=i, synchronous=False)
        if i % 1000 == 999:
            client.set_tag(run_id, "phase", str(i), synchronous=False)
            client.flush()
    assert len(writer._outage.held) <= 1000 + writer_module.MAX_BATCH
    assert len(_spools(tmp_path)) == 1
    _, payloads, problems = read_spool(_spools(tmp_path)[0])
    assert len(list(payloads)) >= 4000 and not problems

    monkeypatch.setattr(writes, "PRAGMAS", healthy)
    deadline = time.monotonic() + 30
    while writer._outage.active and time.monotonic() < deadline:
        client.flush()
        time.sleep(0.05)
    db = tmp_path / "mlflow.db"
    assert _count(db) == 5000
    assert client.get_run(run_id).data.tags["phase"] == "4999"
    assert not _spools(tmp_path)  # stored, so removed


# -- processes that end while the store is down ------------------------------------------------

VANISH = textwrap.dedent("""
    import os, sys, time
    import asynctrack as mlflow
    mlflow.set_tracking_uri("sqlite:///" + os.path.abspath("db/mlflow.db"))
    with mlflow.start_run(run_name="job") as run:
        for i in range(1000):
            mlflow.log_metric("m", float(i), step=i, synchronous=False)
        mlflow.flush_async_logging()
        print(run.info.run_id, flush=True)
        os.rename("db", "db-away")  # the directory vanishes under the writer
        for i in range(1000, 4000):
            mlflow.log_metric("m", float(i), step=i, synchronous=False)
        mlflow.log_params({"a": "1", "b": "2"}, synchronous=False)
        mlflow.set_tag("phase", "done", synchronous=False)
        mlflow.flush_async_logging()
        print("logged", flush=True)
""")


def test_vanished_database_is_spooled_at_exit_and_replayed_idempotently(tmp_path):
    """The database directory disappears mid-run: the process logs on without an exception,
    exits within its bounded wait, and leaves one spool named in one log line; replaying it
    (twice, through the real command) stores every point once and ends the run FINISHED."""
    (tmp_path / "db").mkdir()
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", VANISH], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env=_env(tmp_path, ASYNCTRACK_EXIT_TIMEOUT="1", ASYNCTRACK_STORE_RETRY="0.2"),
    )
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    run_id, logged = proc.stdout.split()
    assert logged == "logged"
    assert "Traceback" not in proc.stderr
    spools = _spools(tmp_path)
    assert len(spools) == 1
    lines = [line for line in proc.stderr.splitlines() if spools[0] in line]
    assert len(lines) == 1 and "asynctrack replay" in lines[0], proc.stderr
    assert elapsed < 60

    os.rename(tmp_path / "db-away", tmp_path / "db")
    db = tmp_path / "db" / "mlflow.db"
    # A batch committed just as the directory moved went into the moved file (found by the stat
    # after COMMIT, it was kept and spooled too: replay skips it).
    assert 1000 <= _count(db) <= 4000
    assert _count(db, "SELECT status FROM runs") == "RUNNING"
    for _ in range(2):
        out = subprocess.run([sys.executable, "-m", "asynctrack", "replay", spools[0]], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120, env=_env(tmp_path))
        assert out.returncode == 0, out.stderr
        assert "3003 records read, 3003 stored" in out.stdout  # 3000 points, the params batch, a tag, the end
        assert _count(db) == 4000
        assert _count(db, "SELECT count(DISTINCT step) FROM metrics") == 4000
        assert _count(db, "SELECT count(*) FROM params") == 2
        assert _count(db, "SELECT value FROM tags WHERE key = 'phase'") == "done"
        assert _count(db, "SELECT status FROM runs") == "FINISHED"
        assert _count(db, "SELECT max(value) FROM latest_metrics") == 3999.0


LOCKED = textwrap.dedent("""
    import os, time
    from asynctrack import MlflowClient
    c = MlflowClient("sqlite:///" + os.path.abspath("mlflow.db"))
    run_id = c.create_run(c.create_experiment("e")).info.run_id
    print(run_id, flush=True)
    input()  # the test now holds the write lock
    for i in range(2000):
        c.log_metric(run_id, "m", float(i), step=i, synchronous=False)
    print("logged", flush=True)
""")


def test_exit_waits_a_bounded_time_for_a_lock_then_spools(tmp_path):
    """Another process holds the database's write lock and never lets go: the logging process
    still exits, after about ASYNCTRACK_EXIT_TIMEOUT, and its points are in the spool."""
    proc = subprocess.Popen([sys.executable, "-c", LOCKED], cwd=tmp_path, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(tmp_path, ASYNCTRACK_EXIT_TIMEOUT="2", ASYNCTRACK_STORE_RETRY="0.5"))
    run_id = proc.stdout.readline().strip()
    locker = sqlite3.connect(tmp_path / "mlflow.db", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    start = time.monotonic()
    proc.stdin.write("\n")
    proc.stdin.flush()
    try:
        _, err = proc.communicate(timeout=90)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert proc.returncode == 0, err
    assert time.monotonic() - start < 45
    spools = _spools(tmp_path)
    assert len(spools) == 1 and "asynctrack replay" in err
    report = replay_spool(spools[0])
    assert (report.read, report.stored, report.failed) == (2000, 2000, [])
    assert _count(tmp_path / "mlflow.db") == 2000
    assert _count(tmp_path / "mlflow.db", f"SELECT count(*) FROM metrics WHERE run_uuid = '{run_id}'") == 2000


def test_sigterm_while_the_store_is_down_spools_and_keeps_the_killed_status(tmp_path):
    """Preempted during an outage: the queue and the run's KILLED status go to the spool."""
    (tmp_path / "db").mkdir()
    # A training loop runs bytecode often; a main thread asleep in one 60 s C call would see the
    # handler only when it wakes, if the signal went to another thread (seen here, rarely).
    script = VANISH.replace('print("logged", flush=True)', 'print("logged", flush=True)\n    for _ in range(600): time.sleep(0.1)')
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=_env(tmp_path, ASYNCTRACK_EXIT_TIMEOUT="1", ASYNCTRACK_STORE_RETRY="0.2"))
    assert proc.stdout.readline().strip()
    assert proc.stdout.readline().strip() == "logged"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM, err
    os.rename(tmp_path / "db-away", tmp_path / "db")
    (spool,) = _spools(tmp_path)
    report = replay_spool(spool)
    assert report.ok and report.read == 3003
    db = tmp_path / "db" / "mlflow.db"
    assert _count(db) == 4000
    assert _count(db, "SELECT status FROM runs") == "KILLED"


# -- replay -----------------------------------------------------------------------------------


def _spool_of(tmp_path, run_id, n, uri):
    from asynctrack import events

    spool = Spool(uri, "test")
    spool.append(events.encode_metric(run_id, "m", float(i), 1000 + i, i) for i in range(n))
    return spool.path


def test_replay_reports_refused_records_and_stores_the_rest(tmp_path, monkeypatch):
    monkeypatch.setenv("ASYNCTRACK_SPOOL_DIR", str(tmp_path / "spool"))
    client, run_id, _ = _client(tmp_path)
    client.log_param(run_id, "lr", "0.1")
    from asynctrack import events

    spool = Spool(f"sqlite:///{tmp_path}/mlflow.db", "test")
    spool.append([
        events.encode_metric(run_id, "m", 1.0, 1000, 1),
        events.encode(events.PARAM, run_id, "lr", "0.2"),  # conflicts with the stored value
        events.encode_metric("0" * 32, "m", 1.0, 1000, 1),  # no such run
        events.encode_metric(run_id, "m", 2.0, 1001, 2),
    ])
    report = replay_spool(spool.path)
    assert (report.read, report.stored) == (4, 2)
    assert [(i, f["op"]) for i, f, _ in report.failed] == [(1, events.PARAM), (2, events.METRIC)]
    assert "INVALID_PARAMETER_VALUE" in report.failed[0][2] or "lr" in report.failed[0][2]
    assert _count(tmp_path / "mlflow.db") == 2


def test_replay_of_a_spool_cut_short_stores_every_complete_record(tmp_path, monkeypatch):
    monkeypatch.setenv("ASYNCTRACK_SPOOL_DIR", str(tmp_path / "spool"))
    client, run_id, _ = _client(tmp_path)
    path = _spool_of(tmp_path, run_id, 100, f"sqlite:///{tmp_path}/mlflow.db")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 5)  # killed in the middle of the last record
    out = subprocess.run([sys.executable, "-m", "asynctrack", "replay", path], capture_output=True,
                         text=True, timeout=120, env=_env(tmp_path))
    assert out.returncode == 1
    assert "99 records read, 99 stored" in out.stdout
    assert "cut short" in out.stderr
    assert _count(tmp_path / "mlflow.db") == 99


def test_replay_into_another_store_and_into_one_that_is_down(tmp_path, monkeypatch):
    monkeypatch.setenv("ASYNCTRACK_SPOOL_DIR", str(tmp_path / "spool"))
    client, run_id, _ = _client(tmp_path)
    path = _spool_of(tmp_path, run_id, 50, "sqlite:////nonexistent-dir/x.db")
    # The recorded store is gone for good: --tracking-uri names where the records go.
    out = subprocess.run([sys.executable, "-m", "asynctrack", "replay", path, "--tracking-uri",
                          f"sqlite:///{tmp_path}/mlflow.db", "--delete"], capture_output=True,
                         text=True, timeout=120, env=_env(tmp_path))
    assert out.returncode == 0, out.stderr
    assert _count(tmp_path / "mlflow.db") == 50
    assert not os.path.exists(path)  # --delete, once all of it is stored


def test_replay_refuses_what_is_not_a_spool(tmp_path):
    bogus = tmp_path / "x.msgpack"
    bogus.write_bytes(b"not a spool")
    out = subprocess.run([sys.executable, "-m", "asynctrack", "replay", str(bogus)], capture_output=True,
                         text=True, timeout=60, env=_env(tmp_path))
    assert out.returncode == 1
    assert "not an asynctrack spool" in out.stderr
    missing = subprocess.run([sys.executable, "-m", "asynctrack", "replay", str(tmp_path / "nope")],
                             capture_output=True, text=True, timeout=60, env=_env(tmp_path))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
