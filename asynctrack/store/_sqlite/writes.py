"""Applying batches of event records to MLflow's tables, through aiosqlite.

One batch is one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``, retried whole on SQLITE_BUSY),
run as one function on aiosqlite's connection thread: a batch costs one hop between the writer's
event loop and SQLite, not one per statement. Runs of consecutive logging records are written in
bulk (``_bulk``), a record that breaks a rule left out with its own MlflowException while every
other record is stored; lifecycle records are applied one by one (``_lifecycle``), each inside a
SAVEPOINT so that one failing leaves the rest of the batch intact. The rules themselves are
MLflow's, shared with every SQL store (``store._sql``).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ... import events as ev
from ...exceptions import MlflowException
from .._sql.batch import segments
from ..base import StoreUnavailable
from . import _bulk, _lifecycle
from .connection import (
    BUSY_TIMEOUT_S,
    PRAGMAS,
    SQLITE_FORK_GATE,
    WRITER_PRAGMAS,
    backoff_delays,
    connect,
    is_busy,
    is_store_failure,
    isolated,
    retry_sync,
    unavailable,
)
from .schema import _revision as _revision_of
from .schema import check_revision

if TYPE_CHECKING:
    import aiosqlite

_logger = logging.getLogger("asynctrack")

CHECKPOINT_ROWS = 20_000  # rows committed between background WAL checkpoints


def _identity_of(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


class _InlineConnection:
    """What SqliteWriter uses of an aiosqlite connection, run on the caller's (the event
    loop's) thread: where no thread can be started for aiosqlite (see SqliteWriter.open),
    blocking the loop is the only way left to write, and at exit it has nothing else to do."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def _execute(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    async def close(self) -> None:
        self._conn.close()


class SqliteWriter:
    """The write side of the SQLite store: one aiosqlite connection, owned by the writer.

    Whatever keeps the file from being written (it was removed or replaced, turned read-only,
    its disk filled up, its I/O failed, a lock outlived every retry) surfaces as
    ``StoreUnavailable`` with the transaction rolled back, so the writer can keep the batch and
    try again; the connection is then reopened on the path, never on a file that is gone.
    """

    def __init__(self, path: str, artifact_root: str) -> None:
        self._path = path
        self._artifact_root = artifact_root
        self._conn: aiosqlite.Connection | None = None
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the file we opened
        self._stale = False  # the file at the path is no longer the one the connection has open
        self.give_up_at: float | None = None  # see Store.limit_retries
        # apply_direct's connections, one per calling thread; a reopen bumps the generation so
        # that none of them goes on writing to a file that was replaced.
        self._inline = threading.local()
        self._generation = 0
        self.wants_checkpoint = False  # see checkpoint
        self._unchecked = 0  # rows committed since the last checkpoint

    async def open(self) -> None:
        """Open the existing file (never create one: the store did, and a file that vanished
        must not come back empty) and check it is still MLflow's at our revision."""
        import aiosqlite  # with the writer's thread, not with asynctrack (see Writer._start)

        uri = f"file:{urllib.parse.quote(self._path)}?mode=rw"
        pending = aiosqlite.connect(uri, timeout=BUSY_TIMEOUT_S, isolation_level=None, uri=True)
        thread = getattr(pending, "_thread", None)
        if thread is not None:
            # The writer closes this connection at exit; should anything keep it from doing so,
            # a daemon thread still lets the interpreter end instead of hanging on it.
            thread.daemon = True
        try:
            conn = await pending
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open {self._path}: {exc}") from exc
        except RuntimeError:
            # No thread for aiosqlite: Python 3.12+ starts none once the interpreter is
            # shutting down, which is when the writer reopens a store that was down, to drain
            # its queue before spooling. The connection then runs on this loop's own thread.
            try:
                conn = _InlineConnection(
                    sqlite3.connect(uri, timeout=BUSY_TIMEOUT_S, isolation_level=None, uri=True,
                                    check_same_thread=False)
                )
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"cannot open {self._path}: {exc}") from exc
        if not hasattr(conn, "_execute"):
            await conn.close()
            raise MlflowException(
                f"aiosqlite {aiosqlite.__version__} lacks Connection._execute, which asynctrack "
                "uses to run a whole batch in one hop; install a supported aiosqlite (>=0.20)."
            )
        try:
            for pragma in PRAGMAS + WRITER_PRAGMAS:
                await self._retry(conn._execute, lambda p=pragma: conn._conn.execute(p))
            revision = await self._retry(conn._execute, lambda: _revision_of(conn._conn))
            check_revision(revision)
            self._identity = _identity_of(self._path)
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, sqlite3.Error) and is_store_failure(exc):
                raise StoreUnavailable(f"cannot use {self._path}: {exc}") from exc
            if isinstance(exc, (MlflowException, OSError)):
                raise StoreUnavailable(f"cannot use {self._path}: {exc}") from exc
            raise
        self._stale = False
        self._generation += 1
        self._conn = conn

    async def close(self) -> None:
        # No direct writes until the next open, whose new generation makes each thread close
        # its own direct connection (never closed from here: its thread may be inside it).
        self._identity = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    async def _retry(self, run, fn, *args) -> Any:
        import asyncio  # the writer's thread has it (see Writer._start): a lookup

        last: BaseException | None = None
        for delay in backoff_delays(self.give_up_at):
            try:
                return await run(fn, *args)
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
                last = exc
                await asyncio.sleep(delay)
        raise StoreUnavailable(str(unavailable(last or RuntimeError("deadline"))))

    # -- the batch -------------------------------------------------------------------------------
    async def apply(
        self, records: Sequence[tuple], on_commit: Callable[[list[Any]], None] | None = None
    ) -> list[Any]:
        """Apply ``records`` in one transaction; one outcome (result or MlflowException) each.

        ``on_commit(outcomes)`` runs on aiosqlite's thread right after COMMIT, so that callers
        blocked on this batch wake without waiting for the event loop to hear of it. Raises
        ``StoreUnavailable`` when the file cannot take the batch; nothing of it is then stored.
        """
        if self._stale:
            await self.close()
        if self._conn is None:
            await self.open()
        aconn = self._conn
        assert aconn is not None
        # The sqlite3 connection lives on aiosqlite's thread; the batch runs there in one hop.
        try:
            return await self._retry(aconn._execute, self._transaction, aconn, records, on_commit)
        except Exception as exc:
            unavailable = self._as_unavailable(exc)
            if unavailable is None:
                raise
            await self.close()
            raise unavailable from exc

    def _as_unavailable(self, exc: BaseException) -> StoreUnavailable | None:
        """``exc`` as the store failure it is (the file, not the statement), or None."""
        if isinstance(exc, StoreUnavailable):
            return exc
        if isinstance(exc, sqlite3.Error) and is_store_failure(exc):
            return StoreUnavailable(f"cannot write {self._path}: {exc}")
        if isinstance(exc, MlflowException) and exc.error_code == "TEMPORARILY_UNAVAILABLE":
            return StoreUnavailable(str(exc))  # retry_sync's lock that outlived the deadline
        return None

    def apply_direct(self, records: Sequence[tuple], done: Callable[[list[Any]], None]) -> bool:
        """Apply ``records`` right here, in the caller's thread, on a connection of that
        thread's own, and call ``done(outcomes)`` before returning: a synchronous call while the
        writer is idle then costs its transaction and no thread hop at all. A store failure
        comes back as one ``StoreUnavailable`` outcome per record (the writer then takes its
        usual way, which retries and tells the caller)."""
        if self._identity is None or self._stale:
            return False
        local = self._inline
        conn = getattr(local, "conn", None)
        if conn is None or local.generation != self._generation:
            try:
                with SQLITE_FORK_GATE:  # opening allocates under SQLite's global mutexes too
                    if conn is not None:
                        conn.close()
                    conn = connect(self._path, check_same_thread=False, pragmas=WRITER_PRAGMAS)
            except (sqlite3.Error, MlflowException):
                local.conn = None
                return False
            local.conn, local.generation = conn, self._generation
        try:
            outcomes = retry_sync(lambda: self._transaction_on(conn, records))
        except Exception as exc:  # noqa: BLE001 - the caller gets it (KeyboardInterrupt goes up)
            unavailable = self._as_unavailable(exc)
            if unavailable is not None:
                exc = unavailable
                local.conn = None
                with SQLITE_FORK_GATE:
                    conn.close()
            outcomes = [exc] * len(records)
        done(outcomes)
        return True

    def _transaction(self, aconn: aiosqlite.Connection, records: Sequence[tuple], on_commit) -> list[Any]:
        # On aiosqlite's own thread: the one place that connection is used.
        outcomes = self._transaction_on(aconn._conn, records)
        if on_commit is not None:
            on_commit(outcomes)
        return outcomes

    def _transaction_on(self, conn: sqlite3.Connection, records: Sequence[tuple]) -> list[Any]:
        with SQLITE_FORK_GATE:  # no fork() while this thread is inside SQLite (see connection.py)
            before = conn.total_changes
            conn.execute("BEGIN IMMEDIATE")
            try:
                outcomes = self._apply_all(conn, records)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        self._unchecked += conn.total_changes - before
        if self._unchecked >= CHECKPOINT_ROWS:
            self.wants_checkpoint = True
        # A file removed or replaced under an open connection takes writes without a murmur,
        # into an inode nobody will read again: one stat per transaction (not per record)
        # catches it, and the batch is then kept as if it had failed (replaying is idempotent).
        try:
            same = _identity_of(self._path) == self._identity
        except OSError:
            same = False
        if not same:
            self._stale = True
            raise StoreUnavailable(f"the database file {self._path} was removed or replaced")
        return outcomes

    async def checkpoint(self) -> None:
        """Copy the WAL into the database file, on aiosqlite's thread and without the GIL, while
        callers go on committing (a PASSIVE checkpoint takes no lock a writer needs). Left to
        SQLite, the commit that crosses 1,000 WAL pages does it inline, fsyncs included: every
        few log_batch calls, one paid ~10 ms for it (1.8 ms a commit on average, 0.9 ms
        without); see WRITER_PRAGMAS for the backstop."""
        self.wants_checkpoint = False
        self._unchecked = 0
        aconn = self._conn
        if aconn is None or self._stale:
            return

        def run() -> None:
            with SQLITE_FORK_GATE:
                aconn._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

        try:
            await aconn._execute(run)
        except Exception as exc:  # noqa: BLE001 - a checkpoint left undone is done later
            _logger.debug("asynctrack: WAL checkpoint of %s skipped: %s", self._path, exc)

    def _apply_all(self, conn: sqlite3.Connection, records: Sequence[tuple]) -> list[Any]:
        """One outcome per record: runs of consecutive logging records in bulk (see _bulk),
        lifecycle records one by one, each in a savepoint of its own (see _lifecycle)."""
        outcomes: list[Any] = [None] * len(records)
        if type(records) is ev.MetricBlock:  # the usual batch: metric points, decoded flat
            _bulk.apply_metric_block(conn, records, outcomes)
            return outcomes
        for logging, i, j in segments(records):
            if logging:
                _bulk.apply_logging(conn, records, i, j, outcomes)
            else:
                outcomes[i] = isolated(conn, _lifecycle.apply, self._artifact_root, records[i])
        return outcomes
