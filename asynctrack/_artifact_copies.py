"""Asynchronous artifact copies (``synchronous=False``): a small thread pool per process, and the
pending copies of each run, so that end_run and flush can wait for them.

Process-wide rather than per client: the fluent API makes a client per call, and end_run must
see the copies that any client started for its run.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

from .writer import block_termination_signals

_logger = logging.getLogger(__name__)
_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pending: dict[str, set[Future]] = {}


def _workers() -> int:
    return min(8, 2 * (os.cpu_count() or 1))


def submit(run_id: str, fn: Callable[[], None]) -> Future:
    """Run ``fn`` off the caller's thread; its future is pending for ``run_id`` until done."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                _workers(),
                thread_name_prefix="asynctrack-artifacts",
                initializer=block_termination_signals,
            )
        future = _pool.submit(fn)
        _pending.setdefault(run_id, set()).add(future)
    future.add_done_callback(lambda f: _done(run_id, f))
    return future


def _done(run_id: str, future: Future) -> None:
    with _lock:
        futures = _pending.get(run_id)
        if futures is not None:
            futures.discard(future)
            if not futures:
                del _pending[run_id]
    if not future.cancelled() and future.exception() is not None:
        _logger.warning("Asynchronous artifact logging failed: %s", future.exception())


def wait_for(run_id: str | None = None) -> None:
    """Block until the pending copies of ``run_id`` (of every run if None) are done."""
    with _lock:
        if run_id is None:
            futures = [f for fs in _pending.values() for f in fs]
        else:
            futures = list(_pending.get(run_id, ()))
    if futures:
        wait(futures)


def _after_fork() -> None:
    global _pool, _lock
    _pool = None
    _lock = threading.Lock()
    _pending.clear()


os.register_at_fork(after_in_child=_after_fork)
