"""The writer of one store: its queue, its thread and event loop, its batches."""

from __future__ import annotations

import collections
import itertools
import logging
import operator
import os
import signal
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from ..events import MetricBlock, decode_many, decode_metric_block
from ..exceptions import INTERNAL_ERROR, MlflowException
from ..store import Store, StoreUnavailable
from ._outage import EXIT_TIMEOUT_S, Outage, spool_now
from ._signals import block_termination_signals

if TYPE_CHECKING:
    import asyncio

_logger = logging.getLogger("asynctrack")

FLUSH_INTERVAL_S = float(os.environ.get("ASYNCTRACK_FLUSH_INTERVAL", "0.05"))
MAX_QUEUE = int(os.environ.get("ASYNCTRACK_MAX_QUEUE", "200000"))  # records
HIGH_WATER = max(1, MAX_QUEUE // 8)
MAX_BATCH = 50_000  # records per transaction
BIG_PAYLOAD = 1024  # bytes; larger records are accounted by size too
MAX_BIG_BYTES = 64 * 1024 * 1024
MAX_KEPT_ERRORS = 100_000
# A producer past HIGH_WATER (the writer is behind) hands the GIL over every YIELD_MASK + 1
# records. The writer's SQLite statements run without the GIL, but each one must take it back
# to bind the next, and a producer that never blocks keeps it for the whole switch interval
# (5 ms) each time: the writer then crawls (a SQLite insert loop next to a busy thread: 3.2 s
# -> 16.7 s per 1,000,000 rows here). A short sleep lets it in; 1,000,000 async points end to
# end went from ~182,000 to ~225,000 points/s on 2 cores. Records below HIGH_WATER never pay it.
# Every 64 records (benchmarks/constants.py, against every 256 in the same round): 1,000,000
# async points 1.00-1.05x on Python 3.11-3.13 here, 1.07x on a 16-core host's 3.12 / SQLite
# 3.45; every 1,024: 0.94-0.98x; never: 0.83-0.85x on all of them.
YIELD_MASK = 63
YIELD_S = 1e-5
_sleep = time.sleep


class _Waiter:
    """What a synchronous caller blocks on: a lock the writer releases after the commit."""

    __slots__ = ("lock", "outcome")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.outcome: Any = None

    def resolve(self, outcome: Any) -> None:
        self.outcome = outcome
        self.lock.release()

    def wait(self) -> Any:
        self.lock.acquire()
        return self.outcome


class Writer:
    """Drains one store's queue on a background thread."""

    def __init__(self, store: Store, flush_interval: float = FLUSH_INTERVAL_S) -> None:
        self.store = store
        self.flush_interval = flush_interval
        self._reset()
        all_writers.add(self)

    def _reset(self) -> None:
        """Fresh state: at construction and in the child of a fork (nothing of the parent's)."""
        self._queue: collections.deque = collections.deque()
        self._past_high_water = 0  # records queued past HIGH_WATER, see YIELD_MASK (racy on purpose)
        self._errors: dict[int, tuple[bytes, list[MlflowException]]] = {}  # by id(payload)
        self._idle = True  # the writer sleeps with no deadline: the next producer must wake it
        self._urgent = False  # a synchronous caller or a full queue wants a commit now
        self._busy = False  # records have left the queue but are not committed yet
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_event: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._direct = threading.Lock()  # held while a record goes the direct way
        self._direct_owner: int | None = None  # the thread that holds it
        self._room = threading.Condition()
        self._big_bytes = 0
        self._room_waiters = 0
        self._outage = Outage(self.store, self._store_pairs, MAX_BATCH)  # the store's, if it is down
        self._inflight: tuple = ()  # (payloads, tickets) the store is applying now (spooled if exit cannot wait)
        self._last_mark: tuple | None = None  # see _progress_stalled
        self._upkeep: asyncio.Future | None = None  # the store's housekeeping, if running

    # -- producers ------------------------------------------------------------------------------
    def submit(self, payload: bytes) -> bytes:
        """Queue one record without waiting; returns its ticket for ``error_of``: the payload
        object itself. The queue then holds the caller's bytes and nothing more (no tuple per
        record, which the cyclic GC would scan while it waits)."""
        if len(payload) > BIG_PAYLOAD:
            self._reserve(len(payload))
        q = self._queue
        q.append(payload)
        if self._idle:
            self._idle = False
            self._wake()
        elif len(q) >= HIGH_WATER:
            if not self._urgent:
                self._urgent = True
                self._wake()
            if len(q) >= MAX_QUEUE:
                self._wait_for_room()
            else:
                self._past_high_water += 1
                if not self._past_high_water & YIELD_MASK:
                    _sleep(YIELD_S)
        return payload

    def submit_wait(self, payload: bytes, record: tuple | None = None) -> Any:
        """Queue one record and wait for its commit; returns its result or raises its error.
        ``record``: the tuple ``payload`` was encoded from, if the caller has it; applied
        directly, it then needs no decoding back (a 1,000-metric batch: ~90 µs)."""
        if self._loop is not None and not self._queue and not self._busy and not self._outage.active:
            done, outcome = self._apply_direct(payload, record)
            if done:
                if isinstance(outcome, BaseException):
                    raise outcome
                return outcome
        if len(payload) > BIG_PAYLOAD:  # only what is queued is accounted
            self._reserve(len(payload))
        waiter = _Waiter()
        self._queue.append((payload, waiter))
        self._idle = False
        self._urgent = True
        self._wake()
        outcome = waiter.wait()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _apply_direct(self, payload: bytes, record: tuple | None = None) -> tuple[bool, Any]:
        """A synchronous record while the writer is idle: applied by the store without the
        event loop (SQLite applies it in this very thread: no thread hop at all), if it can.

        Order holds: nothing is queued or in flight, so everything this thread logged before is
        committed, and whatever comes next is queued after this record. One direct record at a
        time; the others take the queue. Returns (handled, outcome)."""
        direct = self._direct
        if not direct.acquire(blocking=False):
            return False, None
        self._direct_owner = threading.get_ident()
        waiter = _Waiter()

        def done(outcomes: list) -> None:
            waiter.resolve(outcomes[0])
            self._direct_owner = None
            direct.release()

        try:
            if self._queue or self._busy:
                handed, error = False, None
            else:
                records, bad = ([record], {}) if record is not None else decode_many([payload])
                handed, error = (True, bad[0]) if bad else (self.store.apply_direct(records, done), None)
        except BaseException:
            if self._direct_owner is not None:
                self._direct_owner = None
                direct.release()
            raise
        if not handed or error is not None:
            self._direct_owner = None
            direct.release()
            return handed, error
        outcome = waiter.wait()
        if self.store.wants_upkeep and self._idle:
            self._wake()  # the loop does it, off this caller's path
        if deferred_signals and threading.current_thread() is threading.main_thread():
            signal.raise_signal(deferred_signals.pop(0))  # now that the transaction is over
        if isinstance(outcome, StoreUnavailable):
            return False, None  # the queue's way retries it, and tells the caller if it must
        if isinstance(outcome, BaseException) and not isinstance(outcome, MlflowException):
            outcome = _as_mlflow_error(outcome)
        return True, outcome

    def submit_wait_many(self, payloads: list[bytes]) -> list[Any]:
        """Queue records as one synchronous group; their outcomes (None, a result, or the
        exception each failed with), in order. What ``asynctrack replay`` stores a spool with."""
        waiters = [_Waiter() for _ in payloads]
        self._queue.extend(zip(payloads, waiters))
        self._idle = False
        self._urgent = True
        self._wake()
        return [w.wait() for w in waiters]

    def flush(self) -> None:
        """Return once everything queued before this call is committed (or has failed)."""
        if self._direct.locked():
            with self._direct:  # a direct record in flight (see _apply_direct) is waited for
                pass
        if not self._queue and not self._busy:
            return
        waiter = _Waiter()
        self._queue.append((None, waiter))
        self._idle = False
        self._urgent = True
        self._wake()
        waiter.wait()

    def error_of(self, ticket: bytes) -> MlflowException | None:
        """The error an asynchronous record failed with (each error is handed out once)."""
        entry = self._errors.get(id(ticket))
        if entry is None or entry[0] is not ticket:
            return None
        error = entry[1].pop(0)
        if not entry[1]:
            del self._errors[id(ticket)]
        return error

    def _wake(self) -> None:
        loop = self._loop
        if loop is None:
            self._start()
            loop = self._loop
        try:
            loop.call_soon_threadsafe(self._wake_event.set)  # type: ignore[union-attr]
        except RuntimeError:
            pass  # the loop has closed: shutdown is draining what is left

    def _reserve(self, size: int) -> None:
        with self._room:
            while self._big_bytes > MAX_BIG_BYTES and self._thread is not None:
                self._room_waiters += 1
                self._room.wait(0.05)
                self._room_waiters -= 1
            self._big_bytes += size

    def _wait_for_room(self) -> None:
        with self._room:
            self._room_waiters += 1
            try:
                while len(self._queue) >= MAX_QUEUE:
                    self._room.wait(0.05)
            finally:
                self._room_waiters -= 1

    # -- the thread -----------------------------------------------------------------------------
    def _start(self) -> None:
        with self._start_lock:
            if self._loop is not None:
                return
            _import_event_loop()
            self.store.prepare_writer()
            ready = threading.Event()
            thread = threading.Thread(
                target=self._run, args=(ready,), name="asynctrack-writer", daemon=True
            )
            thread.start()
            ready.wait()
            self._thread = thread

    def _run(self, ready: threading.Event) -> None:
        import anyio

        block_termination_signals()  # aiosqlite's thread, started from here, inherits the mask
        anyio.run(self._main, ready, backend="asyncio")

    async def _main(self, ready: threading.Event) -> None:
        import asyncio

        self._loop = asyncio.get_running_loop()
        self._wake_event = asyncio.Event()
        ready.set()
        try:
            await self.store.open_writer()
        except BaseException as exc:  # noqa: BLE001 - reported to every caller below
            _logger.error("asynctrack: cannot open the store for writing: %s", exc)
        try:
            await self._serve()
        finally:
            if self._upkeep is not None:
                await self._upkeep  # never raises
            await self.store.close_writer()

    async def _serve(self) -> None:
        import asyncio

        import anyio

        queue, wake, outage = self._queue, self._wake_event, self._outage
        assert wake is not None
        loop = asyncio.get_running_loop()
        while True:
            if not queue and not outage.active:
                if self._stopping:
                    return
                self._start_upkeep()
                self._idle = True
                if not queue and not self._stopping:
                    await wake.wait()
                wake.clear()
                self._idle = False
                continue
            if outage.active:
                if self._stopping:
                    await self._drain_once()
                    if not queue:
                        await outage.end_at_exit()
                        return
                    continue
                # The store is down: try again when the backoff says, or at once for a
                # synchronous caller, a flush or a filling queue.
                delay = outage.retry_at - loop.time()
                if not self._urgent and delay > 0:
                    with anyio.move_on_after(delay):
                        await wake.wait()
                    wake.clear()
                    if not self._urgent and not self._stopping and loop.time() < outage.retry_at:
                        continue
            elif not self._urgent and not self._stopping and len(queue) < HIGH_WATER:
                # A wake left over from before (the one that started this thread) must not cut
                # the batch short: clear it, then look at _urgent again (a caller sets _urgent
                # before it schedules its wake, which then lands after this clear).
                wake.clear()
                if not self._urgent:
                    with anyio.move_on_after(self.flush_interval):
                        await wake.wait()
                    wake.clear()
            self._urgent = False
            await self._drain_once()
            self._start_upkeep()

    def _start_upkeep(self) -> None:
        """The store's housekeeping, if it asks for some and none is running and the store is
        up: not awaited, so that the store's thread does it while this loop waits or decodes
        the next batch (which then queues behind it there)."""
        if self.store.wants_upkeep and not self._outage.active and (self._upkeep is None or self._upkeep.done()):
            import asyncio  # a lookup: this thread imported it

            self._upkeep = asyncio.ensure_future(self.store.upkeep())

    async def _drain_once(self) -> None:
        queue = self._queue
        self._busy = True
        try:
            # Taken at C speed; only when big records were reserved (read after taking: a
            # producer reserves before it appends) are sizes looked at, and the batch cut short
            # past a quarter of MAX_BIG_BYTES.
            taken = list(itertools.starmap(queue.popleft, itertools.repeat((), min(len(queue), MAX_BATCH))))
            big = 0
            if self._big_bytes:
                for i, item in enumerate(taken):
                    payload = item if type(item) is bytes else item[0]
                    if payload is not None and len(payload) > BIG_PAYLOAD:
                        big += len(payload)
                        if big > MAX_BIG_BYTES // 4:
                            queue.extendleft(reversed(taken[i + 1 :]))
                            del taken[i + 1 :]
                            break
            if big or self._room_waiters:
                with self._room:
                    self._big_bytes -= big
                    self._room.notify_all()
            await self._commit(taken)
        finally:
            self._busy = False

    async def _commit(self, taken: list) -> None:
        """``taken``: asynchronous payloads, (payload, waiter) of synchronous records and
        (None, waiter) of flush markers, in queue order."""
        asynchronous = True
        if set(map(type, taken)) == _ONLY_BYTES:  # asynchronous records only: their own tickets
            payloads, tickets, markers = taken, taken, []
        else:
            payloads, tickets, markers = [], [], []
            for item in taken:
                if type(item) is bytes:
                    payloads.append(item)
                    tickets.append(item)
                elif item[0] is None:
                    markers.append(item[1])
                else:
                    payloads.append(item[0])
                    tickets.append(item[1])
                    asynchronous = False
        if self._outage.active:
            await self._outage.retry(list(zip(payloads, tickets)))
        elif payloads:
            # Asynchronous records all come from this process's encoder (see
            # decode_metric_block): metric points, the usual batch, decode as one flat block.
            block = decode_metric_block(payloads) if asynchronous else None
            failure, pairs = await self._store(payloads, tickets, block)
            if failure is not None:
                failure, pairs = await self._outage.retry_briefly(pairs, failure, self._stopping)
            if failure is not None:
                self._outage.hold(pairs, failure)
        for marker in markers:
            marker.resolve(None)

    async def _store_pairs(self, pairs: list) -> tuple[StoreUnavailable | None, list]:
        """``_store`` for the outage, which keeps records as (payload, ticket) pairs."""
        return await self._store(list(map(_FIRST, pairs)), list(map(_SECOND, pairs)))

    async def _store(
        self, payloads: list, tickets: list, block: MetricBlock | None = None
    ) -> tuple[StoreUnavailable | None, list]:
        """Decode (unless ``block`` is ``payloads`` decoded) and apply ``payloads`` as one
        transaction and settle their callers (``tickets``, in the same order); or, when the
        store cannot take them, settle nobody and return the failure with the (payload, ticket)
        pairs (undecodable ones fail alone and are left out)."""
        records: Any = block
        if records is None:
            records, bad = decode_many(payloads)
            if bad:  # a record that does not decode fails alone
                for i in bad:
                    self._settle(tickets[i], bad[i])
                kept = [i for i in range(len(payloads)) if i not in bad]
                payloads, tickets = [payloads[i] for i in kept], [tickets[i] for i in kept]
        if not records:
            return None, []
        settled = False

        def settle_all(outcomes: list) -> None:
            # Runs where the store commits (for SQLite, aiosqlite's thread): synchronous callers
            # wake straight from the commit instead of after another hop through this loop.
            nonlocal settled
            settled = True
            if outcomes.count(None) == len(outcomes) and set(map(type, tickets)) == _ONLY_BYTES:
                return  # all stored, nobody waiting: the common asynchronous batch
            settle = self._settle
            for ticket, outcome in zip(tickets, outcomes):
                if outcome is not None or type(ticket) is not bytes:
                    settle(ticket, outcome)

        self._inflight = payloads, tickets
        try:
            await self.store.apply(records, settle_all)
        except StoreUnavailable as exc:
            if not settled:
                return exc, list(zip(payloads, tickets))
        except Exception as exc:  # noqa: BLE001 - the whole batch failed: tell every caller
            if not settled:
                settle_all([_as_mlflow_error(exc)] * len(records))
        finally:
            self._inflight = ()
        if not settled:
            settle_all([])
        return None, []

    def _settle(self, ticket: Any, outcome: Any) -> None:
        if type(ticket) is bytes:
            if isinstance(outcome, BaseException):
                entry = self._errors.get(id(ticket))
                if entry is not None and entry[0] is ticket:  # the same bytes queued twice
                    entry[1].append(outcome)
                else:
                    if len(self._errors) >= MAX_KEPT_ERRORS:
                        self._errors.pop(next(iter(self._errors)))
                    self._errors[id(ticket)] = (ticket, [outcome])
                _logger.error("asynctrack: failed to log asynchronously: %s", outcome)
        else:
            ticket.resolve(outcome)

    # -- shutdown -------------------------------------------------------------------------------
    def close(self) -> None:
        """Drain the queue, stop the thread and close the write connection. Bounded: a store
        that cannot be written gets EXIT_TIMEOUT_S, then what is left goes to a spool file."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None or not thread.is_alive():
            return
        self._stopping = True
        self._urgent = True
        # A lock that never lets go must not hold exit up: busy retries end with the wait.
        self.store.limit_retries(time.monotonic() + EXIT_TIMEOUT_S)
        try:
            loop.call_soon_threadsafe(self._wake_event.set)  # type: ignore[union-attr]
        except RuntimeError:
            return
        # A healthy drain takes as long as it takes (the queue is bounded, so not long); only a
        # writer stuck inside the store for EXIT_TIMEOUT_S and more is given up on.
        while True:
            thread.join(EXIT_TIMEOUT_S + 5)
            if not thread.is_alive():
                break
            if self._progress_stalled():
                self._spool_from_outside()
                return
        self._thread = None
        self._loop = None
        self._stopping = False
        self._idle = True
        self.store.limit_retries(None)

    def _progress_stalled(self) -> bool:
        mark = (len(self._queue), id(self._inflight))
        stalled, self._last_mark = mark == self._last_mark, mark
        return stalled

    def _spool_from_outside(self) -> None:
        """The writer thread is stuck in the store: spool a copy of everything asynchronous it
        has not stored (the batch in flight included; a replay skips what did get stored)."""
        taken = [p for p, t in (*zip(*self._inflight), *self._outage.held) if type(t) is bytes]
        queued = [item for item in list(self._queue) if type(item) is bytes]  # its own ticket
        spool_now(self.store, taken + queued, "the store did not answer at exit")

    def _after_fork_in_child(self) -> None:
        if self._loop is not None:
            _own_selector(self._loop)
        self._reset()
        reset = getattr(self.store, "reset_after_fork", None)
        if reset is not None:
            reset()




def _own_selector(loop: asyncio.AbstractEventLoop) -> None:
    """In the child of a fork: give the parent's loop object a fresh epoll of its own.

    The child's copy of the loop holds the same epoll instance as the parent's (a file both
    processes share). When the child drops that copy, closing it, or a connection's transport
    on it, removes descriptors from the shared instance: the parent's writer then never hears
    its socket's answer, nor its own wake-up (a PostgreSQL writer hung so, in the parent of a
    fork pool). Pointing the child's descriptor at a new epoll first keeps all that cleanup in
    the child. (kqueue is not inherited by a fork; poll and select keep no kernel state.)"""
    import select
    import selectors

    selector = getattr(loop, "_selector", None)
    if not isinstance(selector, selectors.EpollSelector):
        return
    try:
        fresh = select.epoll()
        try:
            os.dup2(fresh.fileno(), selector.fileno())
        finally:
            fresh.close()
    except (OSError, ValueError):  # a closed loop has no descriptor left to share
        pass


def _import_event_loop() -> None:
    """The event loop's modules, imported by the first writer to start, not with asynctrack:
    a process that only reads never needs them, and they are a third of `import asynctrack`.
    In the thread that starts the writer, before the writer's thread exists: an import under
    way in another thread when the process forks leaves the child that module's lock, held."""
    import asyncio  # noqa: F401

    import anyio  # noqa: F401

    try:
        import anyio._backends._asyncio  # noqa: F401  (what anyio.run(backend="asyncio") loads)
    except ImportError:  # another anyio layout: anyio.run imports it in the writer's thread
        pass


_ONLY_BYTES = {bytes}
_FIRST = operator.itemgetter(0)
_SECOND = operator.itemgetter(1)


def _as_mlflow_error(exc: BaseException) -> MlflowException:
    if isinstance(exc, MlflowException):
        return exc
    return MlflowException(f"{type(exc).__name__}: {exc}", INTERNAL_ERROR)


all_writers: "weakref.WeakSet[Writer]" = weakref.WeakSet()  # every writer of this process
deferred_signals: list[int] = []  # see _process.defer_signal_inside_direct_write
