"""The SQLite store: MLflow 3.18's file, shared by threads and processes."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ...exceptions import BAD_REQUEST, TEMPORARILY_UNAVAILABLE, MlflowException
from ..base import Store, StoreUnavailable
from .._sql.logged_model_store import SqlLoggedModels
from .._sql.store_reads import SqlReads
from . import search
from .access import Access, open_error, open_file, why_read_only
from .connection import (
    READER_PRAGMAS,
    SQLITE_FORK_GATE,
    WRITER_PRAGMAS,
    connect,
    path_from_uri,
    retry_sync,
)
from .writes import SqliteWriter

_fork_generation = 0


def _after_fork() -> None:
    # SQLite connections must not cross fork(): bump the generation so that every store in the
    # child opens connections of its own instead of reusing the parent's.
    global _fork_generation
    _fork_generation += 1


os.register_at_fork(after_in_child=_after_fork)


class SqliteStore(SqlLoggedModels, SqlReads, Store):
    """Reads on a per-thread sqlite3 connection in the caller's thread; writes through aiosqlite.

    A file this process cannot write (read-only mount, immutable, no write permission) is opened
    read-only: reads work, and every write is refused as ``StoreUnavailable`` (see ``apply``)
    until the file can be written again."""

    def __init__(self, uri: str, artifact_root: str | None = None) -> None:
        self.uri = uri
        self.path = os.path.abspath(path_from_uri(uri))
        # MLflow's default artifact root for a database-backed store: ./mlruns, made absolute
        # when the store is created.
        self.artifact_root = artifact_root or os.path.abspath("mlruns")
        self._access: Access = open_file(self.path, self.artifact_root)
        self._local = threading.local()
        self._writer = SqliteWriter(self.path, self.artifact_root)

    @property
    def replay_uri(self) -> str:
        return "sqlite:///" + self.path  # absolute: "sqlite:////abs/path.db"

    def limit_retries(self, until: float | None) -> None:
        self._writer.give_up_at = until

    @property
    def read_only(self) -> str | None:
        """Why this store refuses writes (a reason to show), or None when it takes them."""
        return self._access.read_only

    def _still_read_only(self) -> str | None:
        """The reason, looked at again: a store remounted writable takes writes from then on
        (and its readers reopen the file the normal way, no longer trusting it immutable)."""
        if self._access.read_only is None:
            return None
        try:
            reason = why_read_only(self.path)
        except OSError as exc:  # it cannot even be looked at: still no writing to it
            reason = f"the file cannot be checked ({exc})"
        if reason is None:
            self._access = Access("rw")  # each thread's reader sees a new Access and reopens
        return reason

    # -- writes ---------------------------------------------------------------------------------
    def prepare_writer(self) -> None:
        import aiosqlite  # noqa: F401  (not with asynctrack: a reading process never needs it)

    async def open_writer(self) -> None:
        if self._still_read_only() is None:  # else the first apply says why, to its callers
            await self._writer.open()

    async def apply(
        self, records: Sequence[tuple], on_commit: Callable[[list[Any]], None] | None = None
    ) -> list[Any]:
        reason = self._still_read_only()
        if reason is not None:
            raise StoreUnavailable(f"{self.path} is read-only: {reason}", lasting=True)
        return await self._writer.apply(records, on_commit)

    def apply_direct(self, records: Sequence[tuple], done: Callable[[list[Any]], None]) -> bool:
        # A read-only store never opened its writer, which then declines: the writer's way
        # (apply) refuses the record, and keeps asynchronous ones.
        return self._writer.apply_direct(records, done)

    @property
    def wants_upkeep(self) -> bool:  # type: ignore[override]
        return self._writer.wants_checkpoint

    async def upkeep(self) -> None:
        await self._writer.checkpoint()

    async def close_writer(self) -> None:
        await self._writer.close()

    def reset_after_fork(self) -> None:
        """The child of a fork starts with a writer of its own (never the parent's connection)."""
        self._writer = SqliteWriter(self.path, self.artifact_root)

    def _write_now(self, fn, *args):
        """``fn(conn, *args)`` in a transaction of its own on a short-lived connection, retried
        through SQLITE_BUSY (logged models: see _sql.logged_model_store)."""
        reason = self._still_read_only()
        if reason is not None:
            raise MlflowException(f"{self.path} is read-only: {reason}")

        def write():
            with SQLITE_FORK_GATE:
                conn = connect(self.path, pragmas=WRITER_PRAGMAS)
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn, *args)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return result
            finally:
                with SQLITE_FORK_GATE:
                    conn.close()

        try:
            return retry_sync(write)
        except sqlite3.Error as exc:  # as MLflow's managed session reports SQLAlchemy's errors
            code = TEMPORARILY_UNAVAILABLE if isinstance(exc, sqlite3.OperationalError) else BAD_REQUEST
            raise MlflowException(f"({type(exc).__module__}.{type(exc).__name__}) {exc}", code) from exc

    # -- reads ----------------------------------------------------------------------------------
    def _conn(self):
        local = self._local
        conn = getattr(local, "conn", None)
        access = self._access
        if conn is None or local.generation != _fork_generation or local.access is not access:
            if conn is not None and local.generation == _fork_generation:
                with SQLITE_FORK_GATE:
                    conn.close()
            local.conn = None
            try:
                with SQLITE_FORK_GATE:  # opening allocates under SQLite's global mutexes too
                    conn = connect(self.path, pragmas=READER_PRAGMAS, mode=access.mode)
            except sqlite3.Error as exc:
                raise open_error(self.path, exc) from exc
            local.conn, local.generation, local.access = conn, _fork_generation, access
        return conn

    _search = search

    def _read(self, fn, *args, raw: bool = False, heavy: bool = False):  # sqlite3 takes ? as it is
        conn = self._conn()

        def read():
            with SQLITE_FORK_GATE:
                return fn(conn, *args)

        return retry_sync(read)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.generation == _fork_generation:
            with SQLITE_FORK_GATE:
                conn.close()
        self._local = threading.local()


__all__ = ["SqliteStore"]
