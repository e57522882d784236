"""Spool files: the events a writer could not store, kept on disk as they were queued.

When the store stays unreachable (its file removed, its disk full, read-only), the writer puts
the records it holds here rather than lose them or stop the training loop, and ``asynctrack
replay`` stores them later. A spool is a msgpack stream: one header map, then every event's
original bytes as a msgpack ``bin``, appended in order with an fsync after each append. The
records are the very bytes the logging calls encoded (``asynctrack.events``), and every op that
can be logged asynchronously is idempotent, so replaying a spool twice stores nothing twice.
A spool cut short by a crash reads back up to its last complete record.
"""

from __future__ import annotations

import itertools
import os
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import msgpack

from . import events as ev
from .exceptions import INVALID_PARAMETER_VALUE, MlflowException

FORMAT = "asynctrack-spool"
FORMAT_VERSION = 1
_counter = itertools.count(1)


@dataclass(frozen=True)
class SpoolHeader:
    """What a spool says about itself: where its events were headed, and who wrote it."""

    tracking_uri: str
    events_version: int
    created_ms: int
    host: str
    pid: int
    reason: str


def spool_dirs() -> list[str]:
    """Where a spool may go, best first: ``ASYNCTRACK_SPOOL_DIR``, the user's cache, the temp
    directory. Not beside the database: its directory or disk may be what failed."""
    dirs = []
    if os.environ.get("ASYNCTRACK_SPOOL_DIR"):
        dirs.append(os.environ["ASYNCTRACK_SPOOL_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    dirs.append(os.path.join(cache, "asynctrack", "spool"))
    dirs.append(os.path.join(tempfile.gettempdir(), "asynctrack-spool"))
    return dirs


class Spool:
    """One spool file, created on the first append and appended to after that."""

    def __init__(self, tracking_uri: str, reason: str) -> None:
        self.tracking_uri = tracking_uri
        self.reason = reason
        self.path: str | None = None
        self.count = 0

    def append(self, payloads: Iterable[bytes]) -> int:
        """Append ``payloads`` durably; returns how many. Raises OSError when no spool
        directory can be written at all."""
        pack = msgpack.Packer(use_bin_type=True).pack
        payloads = list(payloads)
        if not payloads:
            return 0
        data = b"".join(pack(p) for p in payloads)
        if self.path is None:
            self.path = self._create()
        with open(self.path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self.count += len(payloads)
        return len(payloads)

    def _create(self) -> str:
        header = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "tracking_uri": self.tracking_uri,
            "events_version": ev.VERSION,
            "created_ms": int(time.time() * 1000),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "reason": self.reason,
        }
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        name = f"spool-{stamp}-{socket.gethostname()}-{os.getpid()}-{next(_counter)}.msgpack"
        last: OSError | None = None
        for directory in spool_dirs():
            try:
                os.makedirs(directory, exist_ok=True)
                path = os.path.join(directory, name)
                with open(path, "xb") as f:
                    f.write(msgpack.packb(header, use_bin_type=True))
                    f.flush()
                    os.fsync(f.fileno())
                return path
            except OSError as exc:
                last = exc
        raise last or OSError("no spool directory")


def read_spool(path: str) -> tuple[SpoolHeader, Iterator[bytes], list[str]]:
    """The header and the event payloads of a spool; ``problems`` fills in (after the iterator
    is exhausted) with what could not be read, such as a record cut short at the end."""
    f = open(path, "rb")
    unpacker = msgpack.Unpacker(f, raw=False, max_buffer_size=256 * 1024 * 1024)
    try:
        head: Any = next(unpacker)
    except (StopIteration, ValueError, msgpack.UnpackException) as exc:
        f.close()
        raise MlflowException(f"{path} is not an asynctrack spool file ({exc}).", INVALID_PARAMETER_VALUE)
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        f.close()
        raise MlflowException(f"{path} is not an asynctrack spool file.", INVALID_PARAMETER_VALUE)
    if head.get("version") != FORMAT_VERSION:
        f.close()
        raise MlflowException(
            f"{path} is spool format {head.get('version')}; this asynctrack reads format "
            f"{FORMAT_VERSION}.",
            INVALID_PARAMETER_VALUE,
        )
    header = SpoolHeader(
        tracking_uri=head.get("tracking_uri", ""),
        events_version=head.get("events_version", ev.VERSION),
        created_ms=head.get("created_ms", 0),
        host=head.get("host", ""),
        pid=head.get("pid", 0),
        reason=head.get("reason", ""),
    )
    problems: list[str] = []

    def payloads() -> Iterator[bytes]:
        count = 0
        try:
            while True:
                try:
                    item = next(unpacker)
                except StopIteration:
                    return
                except (ValueError, msgpack.UnpackException) as exc:
                    problems.append(f"unreadable data after {count} records: {exc}")
                    return
                if not isinstance(item, bytes):
                    problems.append(f"record {count + 1} is not an event (skipped)")
                    continue
                count += 1
                yield item
        finally:
            # A record cut short at the end (the writer was killed mid-append) leaves bytes in
            # the buffer that never make an object.
            left = os.path.getsize(path) - unpacker.tell()
            if left > 0 and not problems:
                problems.append(
                    f"{left} bytes at the end do not make a complete record (the file was cut "
                    "short); the records before them are read"
                )
            f.close()

    return header, payloads(), problems
