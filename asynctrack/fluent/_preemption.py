"""SIGTERM, what Slurm and Kubernetes send before they kill a job: drain, end runs KILLED, die.

Installed at import, from the main thread, only where SIGTERM still has its default action: a
handler the user installed (before or after) is never replaced, and
``ASYNCTRACK_HANDLE_SIGTERM=false`` opts out. After draining, the default action is restored and
the signal raised again, so the process ends exactly as it would have (status -15).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from ..writer import close_all, defer_signal_inside_direct_write
from ._runs import KILLED, end_all_runs

_logger = logging.getLogger("asynctrack")


_installed_in: int | None = None  # the pid that installed the handler


def _on_sigterm(signum: int, frame) -> None:
    if os.getpid() != _installed_in:
        # A fork child, signalled before its after-fork hook gave SIGTERM back (another hook,
        # a writer's reset, ran first): its runs are the parent's, not its own to end KILLED.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    if defer_signal_inside_direct_write(signum):
        return  # raised again as soon as the interrupted write is committed
    try:
        end_all_runs(KILLED)  # each end waits for what its run logged
        close_all()  # and whatever was logged outside runs (spooled if the store is down)
    except Exception as exc:  # noqa: BLE001 - the process must still end
        _logger.error("asynctrack: on SIGTERM: %s", exc)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _is_multiprocessing_child() -> bool:
    mp = sys.modules.get("multiprocessing")
    return mp is not None and mp.parent_process() is not None


def install() -> bool:
    """Handle SIGTERM if nobody else does; True when installed.

    Not in multiprocessing children: there SIGTERM is how Pool.terminate() ends idle workers,
    which must die at once (their runs end with their tasks), and a handler waiting for a main
    thread blocked on the task queue would make terminate() hang. A fork child gives the
    inherited handler back (``_after_fork_in_child``)."""
    if os.environ.get("ASYNCTRACK_HANDLE_SIGTERM", "true").strip().lower() in ("false", "0", "no"):
        return False
    if threading.current_thread() is not threading.main_thread():
        return False  # signal handlers can only be set from the main thread
    if _is_multiprocessing_child():
        return False
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return False
        global _installed_in
        _installed_in = os.getpid()
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError, AttributeError):
        return False
    return True


def _after_fork_in_child() -> None:
    try:
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except (ValueError, OSError):
        pass


os.register_at_fork(after_in_child=_after_fork_in_child)
