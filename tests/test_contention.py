"""Contention on one SQLite file: eight processes and eight threads writing, two threads searching
at the same time. Exact counts, no "database is locked" surfaced, no writer starved."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time

from asynctrack import MlflowClient

POINTS = 3000
SYNC_EVERY = 500


def _write(uri: str, name: str) -> float:
    """Log POINTS asynchronous points (and a synchronous one every SYNC_EVERY) to a new run in
    experiment 'contention'; the longest synchronous call, in seconds."""
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name("contention").experiment_id
    run_id = c.create_run(exp, run_name=name).info.run_id
    worst = 0.0
    for step in range(POINTS):
        c.log_metric(run_id, "m", float(step), step=step, synchronous=False)
        if step % SYNC_EVERY == 0:
            t = time.perf_counter()
            c.log_metric(run_id, "sync", float(step), step=step)
            worst = max(worst, time.perf_counter() - t)
    c.set_terminated(run_id)
    return worst


def _process_writer(args):
    uri, index = args
    return _write(uri, f"proc-{index}")


def test_processes_threads_and_readers_on_one_file(tmp_path):
    uri = f"sqlite:///{tmp_path}/contention.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("contention")
    stop = threading.Event()
    errors: list[BaseException] = []
    searches = [0]

    def reader():
        try:
            while not stop.is_set():
                runs = client.search_runs([exp], "metrics.m >= 0", max_results=100)
                assert all(r.info.experiment_id == exp for r in runs)
                searches[0] += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    worst: list[float] = []

    def thread_writer(i):
        try:
            worst.append(_write(uri, f"thread-{i}"))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=thread_writer, args=(i,)) for i in range(8)]
    for t in readers + writers:
        t.start()
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        worst += pool.map(_process_writer, [(uri, i) for i in range(8)], chunksize=1)
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()

    assert not errors, errors[:3]  # no "database is locked", nor anything else
    assert searches[0] > 0
    assert max(worst) < 10.0, f"a synchronous write waited {max(worst):.1f} s"
    con = sqlite3.connect(tmp_path / "contention.db")
    try:
        assert con.execute("SELECT count(*) FROM runs WHERE status = 'FINISHED'").fetchone() == (16,)
        per_run = con.execute(
            "SELECT r.name, count(m.step) FROM runs r JOIN metrics m ON m.run_uuid = r.run_uuid "
            "AND m.key = 'm' GROUP BY r.run_uuid"
        ).fetchall()
        assert sorted(n for n, _ in per_run) == sorted([f"proc-{i}" for i in range(8)] + [f"thread-{i}" for i in range(8)])
        assert {count for _, count in per_run} == {POINTS}
        assert con.execute("SELECT count(*) FROM metrics WHERE key = 'sync'").fetchone() == (16 * POINTS // SYNC_EVERY,)
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        con.close()
