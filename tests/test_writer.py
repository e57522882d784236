"""The writer on its own, against a recording store: order, coalescing, errors that fail alone,
flush, back-pressure, the direct path for synchronous records, and shutdown."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from asynctrack import MlflowClient, MlflowException
from asynctrack import events as ev
from asynctrack.writer import _writer as writer_module
from asynctrack.exceptions import INVALID_PARAMETER_VALUE
from asynctrack.store.base import Store
from asynctrack.writer import Writer


class RecordingStore(Store):
    """Applies nothing; remembers every batch, fails records whose key is 'bad'."""

    uri = "memory://recording"

    def __init__(self, direct: bool = False, delay: float = 0.0) -> None:
        self.batches: list[list[tuple]] = []
        self.kinds: list[type] = []  # what each batch came as
        self.direct_batches: list[list[tuple]] = []
        self.direct = direct
        self.delay = delay
        self.closed = False

    async def open_writer(self) -> None:
        pass

    def _outcomes(self, records):
        return [
            MlflowException("bad record", INVALID_PARAMETER_VALUE) if r[1] == ev.METRIC and r[3] == "bad" else None
            for r in records
        ]

    async def apply(self, records: Sequence[tuple], on_commit: Callable | None = None) -> list[Any]:
        if self.delay:
            time.sleep(self.delay)
        self.batches.append(list(records))
        self.kinds.append(type(records))
        outcomes = self._outcomes(records)
        if on_commit is not None:
            on_commit(outcomes)
        return outcomes

    def apply_direct(self, records, done) -> bool:
        if not self.direct:
            return False
        self.direct_batches.append(list(records))
        threading.Thread(target=done, args=(self._outcomes(records),)).start()
        return True

    async def close_writer(self) -> None:
        self.closed = True

    def get_experiment(self, experiment_id): raise NotImplementedError
    def get_experiment_by_name(self, name): raise NotImplementedError
    def get_run(self, run_id): raise NotImplementedError
    def get_metric_history(self, run_id, key, max_results=None, page_token=None): raise NotImplementedError


def metric(key: str, step: int) -> bytes:
    return ev.encode_metric("r" * 32, key, float(step), 1000, step)


def applied(store: RecordingStore) -> list[tuple]:
    return [r for batch in store.batches + store.direct_batches for r in batch]


@pytest.fixture
def make_writer():
    writers = []

    def make(**kw) -> tuple[Writer, RecordingStore]:
        store = RecordingStore(**kw)
        w = Writer(store, flush_interval=0.02)
        writers.append(w)
        return w, store

    yield make
    for w in writers:
        w.close()


def test_records_are_applied_in_order_and_coalesce(make_writer):
    w, store = make_writer()
    for step in range(10_000):
        w.submit(metric("m", step))
    w.flush()
    assert [r[6] for r in applied(store)] == list(range(10_000))
    assert len(store.batches) < 100  # coalesced into few transactions, not one per record


def test_a_bad_record_fails_alone(make_writer):
    w, store = make_writer()
    tickets = [w.submit(metric("bad" if step == 5 else "m", step)) for step in range(10)]
    w.flush()
    assert len(applied(store)) == 10
    errors = [w.error_of(t) for t in tickets]
    assert [i for i, e in enumerate(errors) if e is not None] == [5]
    assert errors[5].error_code == "INVALID_PARAMETER_VALUE"
    assert w.error_of(tickets[5]) is None  # handed out once


def test_the_same_bytes_queued_twice_get_an_error_each(make_writer):
    """An asynchronous record's ticket is its payload object: one object queued twice fails
    twice, and each ticket hands out one error."""
    w, store = make_writer()
    payload = metric("bad", 1)
    first, second = w.submit(payload), w.submit(payload)
    other = w.submit(metric("bad", 1))  # equal bytes, another object: its own ticket
    w.flush()
    assert first is second is payload and other is not payload
    assert w.error_of(first).error_code == "INVALID_PARAMETER_VALUE"
    assert w.error_of(second).error_code == "INVALID_PARAMETER_VALUE"
    assert w.error_of(first) is None
    assert w.error_of(other).error_code == "INVALID_PARAMETER_VALUE"
    assert w.error_of(metric("bad", 1)) is None  # never queued


def test_queued_asynchronous_records_are_bytes_the_gc_does_not_track(make_writer):
    """The queue holds each asynchronous record's own bytes (no tuple per record for the
    cyclic GC to scan); a batch of metric points reaches the store as one MetricBlock, a batch
    with anything else in it as records."""
    import gc

    w, store = make_writer(delay=0.3)  # the writer is stuck in its first batch
    w.submit(metric("start", 0))
    time.sleep(0.1)
    for step in range(5000):
        w.submit(metric("m", step))
    queued = list(w._queue)
    assert len(queued) == 5000
    assert all(type(item) is bytes and not gc.is_tracked(item) for item in queued)
    w.flush()
    w.submit(metric("m", 5000))
    w.submit(ev.encode(ev.PARAM, "r" * 32, "p", "v"))
    w.flush()
    assert store.kinds == [ev.MetricBlock, ev.MetricBlock, list]
    assert [len(b) for b in store.batches] == [1, 5000, 2]
    assert [r[6] for r in store.batches[1]] == list(range(5000))


def test_undecodable_bytes_fail_alone(make_writer):
    w, store = make_writer()
    good = w.submit(metric("m", 1))
    bad = w.submit(b"\xc1 not msgpack")
    w.flush()
    assert w.error_of(good) is None and w.error_of(bad).error_code == "INTERNAL_ERROR"
    assert len(applied(store)) == 1


def test_synchronous_callers_in_many_threads_share_commits(make_writer):
    w, store = make_writer(delay=0.005)  # a commit takes 5 ms: callers pile up behind it
    errors = []

    def caller(i):
        try:
            for step in range(20):
                w.submit_wait(metric(f"t{i}", step))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(applied(store)) == 160
    assert len(store.batches) < 160  # several callers' records went in one transaction
    for i in range(8):  # each thread's records in its own order
        assert [r[6] for r in applied(store) if r[3] == f"t{i}"] == list(range(20))


def test_synchronous_error_is_raised_to_its_caller(make_writer):
    w, _ = make_writer()
    with pytest.raises(MlflowException, match="bad record"):
        w.submit_wait(metric("bad", 1))


def test_a_full_queue_makes_the_producer_wait_and_drops_nothing(make_writer, monkeypatch):
    monkeypatch.setattr(writer_module, "MAX_QUEUE", 100)
    monkeypatch.setattr(writer_module, "HIGH_WATER", 10)
    w, store = make_writer(delay=0.002)
    longest = 0
    for step in range(2000):
        w.submit(metric("m", step))
        longest = max(longest, len(w._queue))
    w.flush()
    assert longest <= 101  # bounded memory
    assert [r[6] for r in applied(store)] == list(range(2000))


def test_the_direct_path_only_when_idle_and_in_order(make_writer):
    w, store = make_writer(direct=True)
    w.submit_wait(metric("first", 0))  # starts the writer: through the loop
    w.submit_wait(metric("idle", 1))  # nothing queued: the direct way
    assert [r[3] for r in store.direct_batches[-1]] == ["idle"]
    for step in range(5000):
        w.submit(metric("async", step))
    w.submit_wait(metric("after", 2))  # queued records ahead of it: through the loop, behind them
    order = [r[3] for r in applied(store)]
    assert order.index("after") > max(i for i, k in enumerate(order) if k == "async")
    w.flush()
    assert len(applied(store)) == 5003


def test_a_producer_past_high_water_hands_over_the_gil_and_only_then(make_writer, monkeypatch):
    """Past HIGH_WATER a producer sleeps briefly every YIELD_MASK + 1 records (so the writer's
    thread gets the GIL back between its SQLite statements); below it, never."""
    sleeps = []
    monkeypatch.setattr(writer_module, "_sleep", sleeps.append)
    monkeypatch.setattr(writer_module, "HIGH_WATER", 1000)
    w, store = make_writer(delay=0.5)  # the writer is stuck in its first batch
    w.submit(metric("start", 0))
    time.sleep(0.1)  # the first batch is in the store now; the queue is empty
    for step in range(999):
        w.submit(metric("below", step))
    assert sleeps == []
    for step in range(2048):
        w.submit(metric("above", step))
    # the 2,048 records queued past high water: one sleep per YIELD_MASK + 1 (64) of them
    assert sleeps == [writer_module.YIELD_S] * (2048 // (writer_module.YIELD_MASK + 1))
    w.flush()
    assert len(applied(store)) == 1 + 999 + 2048


def test_big_records_bound_the_queue_by_bytes_and_cut_batches(make_writer, monkeypatch):
    """Records over BIG_PAYLOAD are accounted by size: producers wait while more than
    MAX_BIG_BYTES are queued, a batch stops past a quarter of it (the rest stays queued, in
    order), and the account is back at zero once all is stored."""
    monkeypatch.setattr(writer_module, "MAX_BIG_BYTES", 64 * 1024)
    w, store = make_writer(delay=0.01)
    payloads = [ev.encode(ev.TAG, "r" * 32, f"k{i}", "v" * 2000) for i in range(200)]
    size = len(payloads[0])
    assert size > writer_module.BIG_PAYLOAD
    seen = []
    for p in payloads:
        w.submit(p)
        seen.append(w._big_bytes)
    w.flush()
    assert max(seen) <= 64 * 1024 + size  # waited for room instead of queueing more
    assert [r[3] for r in applied(store)] == [f"k{i}" for i in range(200)]
    assert max(len(b) for b in store.batches) <= 64 * 1024 // 4 // size + 1
    assert w._big_bytes == 0


def test_a_big_synchronous_record_takes_the_direct_path_when_idle(make_writer):
    w, store = make_writer(direct=True)
    w.submit_wait(metric("first", 0))  # starts the writer
    big = ev.encode(ev.BATCH, "r" * 32, [["k", float(i), 1000, i] for i in range(500)], [], [])
    assert len(big) > writer_module.BIG_PAYLOAD
    w.submit_wait(big)
    assert [r[1] for r in store.direct_batches[-1]] == [ev.BATCH]
    assert w._big_bytes == 0  # nothing queued, nothing accounted


def test_a_direct_record_given_with_its_bytes_is_not_decoded_back(make_writer, monkeypatch):
    w, store = make_writer(direct=True)
    w.submit_wait(metric("first", 0))  # starts the writer
    record = (ev.VERSION, ev.BATCH, "r" * 32, [("k", 1.0, 1000, 3)], [], [])
    monkeypatch.setattr(writer_module, "decode_many", lambda payloads: pytest.fail("decoded"))
    w.submit_wait(ev.encode_record(record), record)
    assert store.direct_batches[-1] == [record]


def test_close_drains_and_closes_the_store(make_writer):
    w, store = make_writer()
    for step in range(1000):
        w.submit(metric("m", step))
    w.close()
    assert len(applied(store)) == 1000 and store.closed


def test_direct_path_against_sqlite_keeps_read_your_writes_in_every_thread(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path}/w.db")
    run_ids = [client.create_run("0").info.run_id for _ in range(6)]
    problems = []

    def worker(run_id):
        for step in range(300):
            client.log_metric(run_id, "a", float(step), step=step, synchronous=False)
            if step % 50 == 49:
                client.log_metric(run_id, "s", float(step), step=step)  # synchronous
                # everything this thread logged before is stored, in order
                n = len(client.get_metric_history(run_id, "a"))
                if n < step + 1:
                    problems.append((run_id, step, n))

    threads = [threading.Thread(target=worker, args=(r,)) for r in run_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.flush()
    assert not problems, problems[:3]
    for r in run_ids:
        assert len(client.get_metric_history(r, "a")) == 300
        assert [m.step for m in client.get_metric_history(r, "s")] == [49, 99, 149, 199, 249, 299]


def test_the_event_loop_modules_wait_for_the_first_writer(tmp_path):
    """`import asynctrack` and reading do without asyncio, anyio and aiosqlite (a third of the
    import); the first write imports them in the caller's thread, before the writer's thread
    exists (an import under way on another thread at fork() would leave the child its lock)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import sys, threading
        import asynctrack
        loop_modules = ("asyncio", "anyio", "aiosqlite")
        assert not [m for m in loop_modules if m in sys.modules], "imported with asynctrack"
        client = asynctrack.MlflowClient("sqlite:///{tmp_path}/r.db")
        client.search_experiments()
        client.get_experiment("0")
        assert not [m for m in loop_modules if m in sys.modules], "imported by reading"
        assert threading.active_count() == 1
        run = client.create_run("0").info.run_id
        assert all(m in sys.modules for m in loop_modules)
        client.log_metric(run, "m", 1.0)
        assert len(client.get_metric_history(run, "m")) == 1
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
