"""Opening SQLite files the way several processes can share them, and riding out contention.

WAL lets readers run beside the one writer; ``synchronous=NORMAL`` in WAL mode keeps every
committed transaction safe from a killed process (only an OS crash can lose the last ones);
``BEGIN IMMEDIATE`` takes the write lock up front so a transaction never fails half-way on a
lock upgrade; and whatever SQLITE_BUSY still gets through the busy timeout is retried here with
jittered backoff, so that no caller ever sees "database is locked".
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from ...exceptions import (
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    TEMPORARILY_UNAVAILABLE,
    MlflowException,
)

T = TypeVar("T")

BUSY_TIMEOUT_S = 5.0
# How long a write or read keeps retrying through contention before it gives up with a clear
# error. Generous: a training job would rather wait than lose data.
RETRY_DEADLINE_S = float(os.environ.get("ASYNCTRACK_SQLITE_RETRY_DEADLINE", "300"))


class _ForkGate:
    """Lets any number of threads work inside SQLite at once, and fork() wait until none is.

    SQLite keeps process-wide mutexes (its allocator, the unix VFS's inode list). A fork() taken
    while another thread is inside SQLite copies them locked, and the child's first connection
    then waits forever. With every transaction and read inside this gate, the child of a fork
    starts with SQLite idle. Readers and the writer still run side by side (WAL); the cost is
    two uncontended lock operations per transaction or read, never per logging call.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._inside = 0
        self._forking = False

    def __enter__(self) -> None:
        with self._cond:
            while self._forking:
                self._cond.wait()
            self._inside += 1

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._inside -= 1
            if self._inside == 0:
                self._cond.notify_all()

    def before_fork(self) -> None:
        self._cond.acquire()  # held across the fork: nobody enters meanwhile
        self._forking = True
        while self._inside:
            self._cond.wait()

    def after_fork_in_parent(self) -> None:
        self._forking = False
        self._cond.notify_all()
        self._cond.release()

    def after_fork_in_child(self) -> None:
        self.__init__()  # the child's only thread is the one that forked


SQLITE_FORK_GATE = _ForkGate()
os.register_at_fork(
    before=SQLITE_FORK_GATE.before_fork,
    after_in_parent=SQLITE_FORK_GATE.after_fork_in_parent,
    after_in_child=SQLITE_FORK_GATE.after_fork_in_child,
)


def path_from_uri(uri: str) -> str:
    """The file path of a ``sqlite:`` URI, as SQLAlchemy (and so MLflow) reads it."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme != "sqlite":
        raise MlflowException(f"Not a sqlite URI: {uri!r}", INVALID_PARAMETER_VALUE)
    # sqlite:///relative.db -> path "/relative.db" -> "relative.db";
    # sqlite:////abs/x.db -> "//abs/x.db" -> "/abs/x.db".
    rest = uri[len("sqlite://") :]
    if rest.startswith("/"):
        rest = rest[1:]
    path = rest.split("?", 1)[0]
    if path in ("", ":memory:"):
        raise MlflowException(
            "asynctrack needs a database file: in-memory SQLite cannot be shared between the "
            "writer and readers. Use sqlite:///path/to/file.db.",
            INVALID_PARAMETER_VALUE,
        )
    return urllib.parse.unquote(path)


def is_busy(exc: BaseException) -> bool:
    """True for the transient lock errors that a retry cures."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


# Result codes (the primary byte) that say the file cannot be written now, not that a record is
# wrong: permission, out of memory, read-only, I/O error, corrupt, full, cannot open, locking
# protocol, not a database. A batch that meets one is kept and retried whole, never failed.
_STORE_FAILURE_CODES = frozenset({3, 7, 8, 10, 11, 13, 14, 15, 26})
_STORE_FAILURE_WORDS = ("readonly", "read-only", "disk i/o", "disk is full", "unable to open",
                        "not a database", "malformed", "out of memory", "no such table")


def is_store_failure(exc: BaseException) -> bool:
    """True when ``exc`` is about the database file (locked, gone, read-only, full, failing),
    not about the statement: the whole batch must wait and be retried, none of it failed."""
    if not isinstance(exc, sqlite3.Error):
        return False
    if is_busy(exc):
        return True
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    if code is not None:
        return (code & 0xFF) in _STORE_FAILURE_CODES or "no such table" in str(exc).lower()
    msg = str(exc).lower()
    return any(word in msg for word in _STORE_FAILURE_WORDS)


# How a connection opens an existing file (SQLite URI parameters): "rw" (the normal way),
# "ro" (a read-only file: SQLite still creates the -shm it reads a WAL with) or "immutable" (a
# directory that takes no -wal or -shm either: SQLite then reads the file alone, without locks,
# trusting that nobody writes it; see access.py for when that holds).
OPEN_MODES = {"rw": "mode=rw", "ro": "mode=ro", "immutable": "mode=ro&immutable=1"}


def connect(
    path: str,
    *,
    check_same_thread: bool = True,
    create: bool = False,
    pragmas: tuple[str, ...] = (),
    mode: str = "rw",
) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN ourselves) with the shared pragmas, then
    ``pragmas`` (READER_PRAGMAS or WRITER_PRAGMAS). Only schema creation makes a new file: a
    reader must never leave an empty database where one was removed (a restore would then meet
    a stranger). ``mode``: one of OPEN_MODES."""
    target = path if create else f"file:{urllib.parse.quote(path)}?{OPEN_MODES[mode]}"
    conn = sqlite3.connect(
        target,
        timeout=BUSY_TIMEOUT_S,
        isolation_level=None,
        check_same_thread=check_same_thread,
        uri=not create,
    )
    configure(conn, PRAGMAS + pragmas)
    return conn


PRAGMAS = (
    "PRAGMA synchronous=NORMAL",
    "PRAGMA cache_size=-8192",
    "PRAGMA temp_store=MEMORY",
)


# On each thread's read connection: one filtered search over 10,000 runs touches ~18 MB of
# pages, more than 8 MB holds, so each search read them all again (a 1,000-run search 33-42 ms
# with 8 MB, 29-31 ms with 32 MB). Pages are only held once read.
READER_PRAGMAS = ("PRAGMA cache_size=-32768",)

# On the connections that write: the writer checkpoints the WAL in the background (see
# SqliteWriter.checkpoint), so a commit pays for a checkpoint itself only past this many pages,
# should the background ever fall behind (SQLite's own default is 1,000 pages).
WRITER_PRAGMAS = ("PRAGMA wal_autocheckpoint=8000",)


def configure(conn: sqlite3.Connection, pragmas: tuple[str, ...]) -> None:
    for pragma in pragmas:
        retry_sync(lambda p=pragma: conn.execute(p))


def backoff_delays(until: float | None = None) -> Iterator[float]:
    """Jittered exponential backoff, capped, until the deadline (or ``until``) passes."""
    deadline = time.monotonic() + RETRY_DEADLINE_S
    if until is not None:
        deadline = min(deadline, until)
    delay = 0.002
    while time.monotonic() < deadline:
        yield delay * (0.5 + random.random())
        delay = min(delay * 2, 0.25)


def unavailable(exc: BaseException) -> MlflowException:
    return MlflowException(
        f"The SQLite database stayed locked for {RETRY_DEADLINE_S:.0f} s ({exc}); another "
        "process holds a write transaction or an exclusive lock on it.",
        TEMPORARILY_UNAVAILABLE,
    )


def retry_sync(fn: Callable[[], T]) -> T:
    """Run ``fn`` and retry it through SQLITE_BUSY."""
    last: BaseException | None = None
    for delay in backoff_delays():
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            last = exc
            time.sleep(delay)
    raise unavailable(last or RuntimeError("deadline"))


def isolated(conn: sqlite3.Connection, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(conn, *args)`` in a savepoint of the open transaction: if it fails with an
    MlflowException or a statement's error, only its own writes are undone and the error is
    returned as its outcome; a store failure goes up, for the whole batch to be retried."""
    conn.execute("SAVEPOINT one")
    try:
        result = fn(conn, *args)
    except MlflowException as exc:
        conn.execute("ROLLBACK TO one")
        conn.execute("RELEASE one")
        return exc
    except sqlite3.Error as exc:
        if is_store_failure(exc):
            raise
        conn.execute("ROLLBACK TO one")
        conn.execute("RELEASE one")
        return MlflowException(f"SQLite error: {exc}", INTERNAL_ERROR)
    conn.execute("RELEASE one")
    return result
