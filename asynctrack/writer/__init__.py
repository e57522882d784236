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

from ._process import before_shutdown, close_all, defer_signal_inside_direct_write, flush_all, writer_for
from ._signals import block_termination_signals
from ._writer import Writer

__all__ = [
    "Writer",
    "before_shutdown",
    "block_termination_signals",
    "close_all",
    "defer_signal_inside_direct_write",
    "flush_all",
    "writer_for",
]
