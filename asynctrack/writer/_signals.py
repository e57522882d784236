"""Signals and background threads."""

from __future__ import annotations

import signal


def block_termination_signals() -> None:
    """Keep SIGTERM and SIGINT away from a background thread. The kernel hands a process-directed
    signal to any thread that does not block it, and Python runs its handler only once the main
    thread executes bytecode: a main thread blocked in a lock (a Pool worker waiting for a task)
    would then never see it, and Pool.terminate() would hang."""
    mask = getattr(signal, "pthread_sigmask", None)
    if mask is not None:
        mask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
