"""The writers of a process: one per store, flushed and drained together, and what exit, fork
and signal handlers need of them."""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable

from ..store import Store
from ._writer import Writer, all_writers, deferred_signals

_logger = logging.getLogger("asynctrack")

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
    for writer in list(all_writers):
        writer.flush()


def close_all() -> None:
    """Drain and stop every writer of this process: a flush that also spools what a store
    that is down could not take (the process is about to end)."""
    for writer in list(all_writers):
        writer.close()


def defer_signal_inside_direct_write(signum: int) -> bool:
    """For a signal handler that writes (SIGTERM ends the runs): True, and the signal is raised
    again once the write is over, when it interrupted this thread inside a direct write. The
    handler's own writes would otherwise wait on the very transaction they interrupted."""
    me = threading.get_ident()
    if any(w._direct_owner == me for w in list(all_writers)):
        deferred_signals.append(signum)
        return True
    return False


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
    close_all()


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
    for writer in list(all_writers):
        writer._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
