"""The background writer: one bounded queue, one thread, one anyio event loop per store.

Callers append encoded records to a deque (one C-level append: no lock, no syscall, no thread
hop) and return. The writer thread sleeps until there is work, lets a batch gather for at most
``flush_interval`` seconds (less when the queue passes its high-water mark or a synchronous
caller is waiting), then hands everything queued to the store as one transaction. So the
asynchronous hot path costs an append, and synchronous callers in many threads share commits.

Waking the writer is the only cross-thread signal, and the hot path sends it at most once per
idle period: the writer publishes ``_idle`` before it sleeps and re-checks the queue after, and
a producer checks ``_idle`` after it appends, so one of the two always sees the other.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import itertools
import logging
import os
import signal
import threading
import weakref
from collections.abc import Callable
from typing import Any

import anyio

from .events import decode_many
from .exceptions import INTERNAL_ERROR, MlflowException
from .store import Store

_logger = logging.getLogger("asynctrack")

FLUSH_INTERVAL_S = float(os.environ.get("ASYNCTRACK_FLUSH_INTERVAL", "0.05"))
MAX_QUEUE = int(os.environ.get("ASYNCTRACK_MAX_QUEUE", "200000"))  # records
HIGH_WATER = max(1, MAX_QUEUE // 8)
MAX_BATCH = 50_000  # records per transaction
BIG_PAYLOAD = 1024  # bytes; larger records are accounted by size too
MAX_BIG_BYTES = 64 * 1024 * 1024
MAX_KEPT_ERRORS = 100_000


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
        _all_writers.add(self)

    def _reset(self) -> None:
        """Fresh state: at construction and in the child of a fork (nothing of the parent's)."""
        self._queue: collections.deque = collections.deque()
        self._seq = itertools.count(1)
        self._errors: dict[int, MlflowException] = {}
        self._idle = True  # the writer sleeps with no deadline: the next producer must wake it
        self._urgent = False  # a synchronous caller or a full queue wants a commit now
        self._busy = False  # records have left the queue but are not committed yet
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_event: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._direct = threading.Lock()  # held while a record goes the direct way
        self._room = threading.Condition()
        self._big_bytes = 0
        self._room_waiters = 0

    # -- producers ------------------------------------------------------------------------------
    def submit(self, payload: bytes) -> int:
        """Queue one record without waiting; returns its ticket for ``error_of``."""
        seq = next(self._seq)
        if len(payload) > BIG_PAYLOAD:
            self._reserve(len(payload))
        q = self._queue
        q.append((payload, seq))
        if self._idle:
            self._idle = False
            self._wake()
        elif len(q) >= HIGH_WATER:
            if not self._urgent:
                self._urgent = True
                self._wake()
            if len(q) >= MAX_QUEUE:
                self._wait_for_room()
        return seq

    def submit_wait(self, payload: bytes) -> Any:
        """Queue one record and wait for its commit; returns its result or raises its error."""
        if len(payload) > BIG_PAYLOAD:
            self._reserve(len(payload))
        elif self._loop is not None and not self._queue and not self._busy:
            done, outcome = self._apply_direct(payload)
            if done:
                if isinstance(outcome, BaseException):
                    raise outcome
                return outcome
        waiter = _Waiter()
        self._queue.append((payload, waiter))
        self._idle = False
        self._urgent = True
        self._wake()
        outcome = waiter.wait()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _apply_direct(self, payload: bytes) -> tuple[bool, Any]:
        """A synchronous record while the writer is idle: handed straight to the store's write
        thread (one thread hop fewer than through the event loop), if the store can take it.

        Order holds: nothing is queued or in flight, so everything this thread logged before is
        committed, and whatever comes next reaches the write thread after this record. One
        direct record at a time; the others take the queue. Returns (handled, outcome)."""
        direct = self._direct
        if not direct.acquire(blocking=False):
            return False, None
        waiter = _Waiter()

        def done(outcomes: list) -> None:
            waiter.resolve(outcomes[0])
            direct.release()

        try:
            if self._queue or self._busy:
                handed, error = False, None
            else:
                records, bad = decode_many([payload])
                handed, error = (True, bad[0]) if bad else (self.store.apply_direct(records, done), None)
        except BaseException:
            direct.release()
            raise
        if not handed or error is not None:
            direct.release()
            return handed, error
        outcome = waiter.wait()
        if isinstance(outcome, BaseException) and not isinstance(outcome, MlflowException):
            outcome = _as_mlflow_error(outcome)
        return True, outcome

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

    def error_of(self, ticket: int) -> MlflowException | None:
        """The error an asynchronous record failed with (each error is handed out once)."""
        return self._errors.pop(ticket, None)

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
            ready = threading.Event()
            thread = threading.Thread(
                target=self._run, args=(ready,), name="asynctrack-writer", daemon=True
            )
            thread.start()
            ready.wait()
            self._thread = thread

    def _run(self, ready: threading.Event) -> None:
        block_termination_signals()  # aiosqlite's thread, started from here, inherits the mask
        anyio.run(self._main, ready, backend="asyncio")

    async def _main(self, ready: threading.Event) -> None:
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
            await self.store.close_writer()

    async def _serve(self) -> None:
        queue, wake = self._queue, self._wake_event
        assert wake is not None
        while True:
            if not queue:
                if self._stopping:
                    return
                self._idle = True
                if not queue and not self._stopping:
                    await wake.wait()
                wake.clear()
                self._idle = False
                continue
            if not self._urgent and not self._stopping and len(queue) < HIGH_WATER:
                with anyio.move_on_after(self.flush_interval):
                    await wake.wait()
                wake.clear()
            self._urgent = False
            await self._drain_once()

    async def _drain_once(self) -> None:
        queue = self._queue
        self._busy = True
        try:
            taken = []
            big = 0
            while queue and len(taken) < MAX_BATCH:
                item = queue.popleft()
                taken.append(item)
                if item[0] is not None and len(item[0]) > BIG_PAYLOAD:
                    big += len(item[0])
                    if big > MAX_BIG_BYTES // 4:
                        break
            if big or self._room_waiters:
                with self._room:
                    self._big_bytes -= big
                    self._room.notify_all()
            await self._commit(taken)
        finally:
            self._busy = False

    async def _commit(self, taken: list) -> None:
        payloads, tickets, markers = [], [], []
        for payload, ticket in taken:
            if payload is None:
                markers.append(ticket)
            else:
                payloads.append(payload)
                tickets.append(ticket)
        records, bad = decode_many(payloads)
        if bad:  # a record that does not decode fails alone
            for i in bad:
                self._settle(tickets[i], bad[i])
            tickets = [t for i, t in enumerate(tickets) if i not in bad]
        settled = False

        def settle_all(outcomes: list) -> None:
            # Runs where the store commits (for SQLite, aiosqlite's thread): synchronous callers
            # wake straight from the commit instead of after another hop through this loop.
            nonlocal settled
            settled = True
            settle = self._settle
            for ticket, outcome in zip(tickets, outcomes):
                if outcome is not None or type(ticket) is not int:
                    settle(ticket, outcome)
            for marker in markers:
                marker.resolve(None)

        if records:
            try:
                await self.store.apply(records, settle_all)
            except Exception as exc:  # noqa: BLE001 - the whole batch failed: tell every caller
                if not settled:
                    settle_all([_as_mlflow_error(exc)] * len(records))
        if not settled:
            settle_all([])

    def _settle(self, ticket: Any, outcome: Any) -> None:
        if type(ticket) is int:
            if isinstance(outcome, BaseException):
                if len(self._errors) >= MAX_KEPT_ERRORS:
                    self._errors.pop(next(iter(self._errors)))
                self._errors[ticket] = outcome
                _logger.error("asynctrack: failed to log asynchronously: %s", outcome)
        else:
            ticket.resolve(outcome)

    # -- shutdown -------------------------------------------------------------------------------
    def close(self) -> None:
        """Drain the queue, stop the thread and close the write connection."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None or not thread.is_alive():
            return
        self._stopping = True
        self._urgent = True
        try:
            loop.call_soon_threadsafe(self._wake_event.set)  # type: ignore[union-attr]
        except RuntimeError:
            return
        thread.join()
        self._thread = None
        self._loop = None
        self._stopping = False
        self._idle = True

    def _after_fork_in_child(self) -> None:
        self._reset()
        reset = getattr(self.store, "reset_after_fork", None)
        if reset is not None:
            reset()


def block_termination_signals() -> None:
    """Keep SIGTERM and SIGINT away from a background thread. The kernel hands a process-directed
    signal to any thread that does not block it, and Python runs its handler only once the main
    thread executes bytecode: a main thread blocked in a lock (a Pool worker waiting for a task)
    would then never see it, and Pool.terminate() would hang."""
    mask = getattr(signal, "pthread_sigmask", None)
    if mask is not None:
        mask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})


def _as_mlflow_error(exc: BaseException) -> MlflowException:
    if isinstance(exc, MlflowException):
        return exc
    return MlflowException(f"{type(exc).__name__}: {exc}", INTERNAL_ERROR)


_all_writers: "weakref.WeakSet[Writer]" = weakref.WeakSet()
_writers: dict[int, Writer] = {}
_writers_lock = threading.Lock()


def writer_for(store: Store) -> Writer:
    """The process's one writer for ``store``."""
    writer = _writers.get(id(store))
    if writer is None:
        with _writers_lock:
            writer = _writers.get(id(store))
            if writer is None:
                writer = _writers[id(store)] = Writer(store)
    return writer


def flush_all() -> None:
    """Wait until every writer of this process has committed what it was given."""
    for writer in list(_all_writers):
        writer.flush()


_before_shutdown: list[Callable[[], None]] = []


def before_shutdown(callback: Callable[[], None]) -> None:
    """Run ``callback`` at interpreter exit before the writers drain (the fluent API ends its
    active runs there, and their last records must still find a writer)."""
    _before_shutdown.append(callback)


def _shutdown() -> None:
    """At exit: the callbacks, then every writer drains its queue and closes its connection."""
    for callback in reversed(_before_shutdown):
        try:
            callback()
        except Exception as exc:  # noqa: BLE001 - exit goes on; the writers must still drain
            _logger.error("asynctrack: at exit: %s", exc)
    for writer in list(_all_writers):
        writer.close()


def _register_shutdown() -> None:
    # threading's exit hooks run before non-daemon threads are joined, so the queues drain
    # while the interpreter still runs normally; plain atexit would come later than that. They
    # also run in fork-started multiprocessing children, which skip atexit.
    register = getattr(threading, "_register_atexit", None)
    if register is None:
        atexit.register(_shutdown)
    else:
        register(_shutdown)


_register_shutdown()


def _after_fork_in_child() -> None:
    global _writers_lock
    _writers_lock = threading.Lock()
    for writer in list(_all_writers):
        writer._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
