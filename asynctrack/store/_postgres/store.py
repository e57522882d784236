"""The PostgreSQL store: MLflow 3.18's schema on a PostgreSQL server, shared by hosts.

Reads are psycopg 3 (libpq) calls in the caller's thread, on a connection of that thread's
own: blocking, as the Store interface's reads are, with no event loop and no thread hop, and
a process that only reads starts no writer thread. (asyncpg is async-only: a read would have to
hop onto the writer's loop, or run a loop per call.) Writes go through the writer's loop on one
asyncpg connection (``writes``): its binary COPY is the fastest way into PostgreSQL.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ...exceptions import (
    BAD_REQUEST,
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    INVALID_STATE,
    TEMPORARILY_UNAVAILABLE,
    MlflowException,
)
from .._schema_rules import check_revision
from .._sql.logged_model_store import SqlLoggedModels
from .._sql.store_reads import SqlReads
from ..base import Store, redacted
from . import search
from .errors import READ_ONLY, describe, is_store_failure, sqlstate
from .schema import ensure_schema, read_revision
from .uri import libpq_uri
from .writes import PostgresWriter

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT_S = 10
REPLICA_SCHEMA_WAIT_S = 10  # for a schema the primary has just made to reach its replica


def _driver():
    try:
        import psycopg
    except ImportError as exc:
        raise MlflowException(
            "PostgreSQL tracking URIs need asynctrack's PostgreSQL drivers: "
            "pip install 'asynctrack[postgres]'.",
            INVALID_PARAMETER_VALUE,
        ) from exc
    return psycopg


class _Reader:
    """A psycopg connection as ``_sql.reads`` wants one: ``?`` placeholders (see reads.Reader)."""

    __slots__ = ("raw",)
    _sql: dict[str, str] = {}

    def __init__(self, raw: psycopg.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, args: Any = ()) -> Any:
        text = self._sql.get(sql)
        if text is None:
            text = self._sql[sql] = sql.replace("%", "%%").replace("?", "%s")
        return self.raw.execute(text, args)


class PostgresStore(SqlLoggedModels, SqlReads, Store):
    """MLflow's tracking tables on PostgreSQL (``postgresql://`` and SQLAlchemy's
    ``postgresql+driver://`` forms; libpq's environment fills what the URI leaves out)."""

    _search = search

    def __init__(
        self, uri: str, artifact_root: str | None = None, read_replica_uri: str | None = None
    ) -> None:
        self.uri = uri
        self.dsn = libpq_uri(uri)
        self.artifact_root = artifact_root or os.path.abspath("mlruns")
        self._local = threading.local()
        # MLflow's --read-replica-backend-store-uri: searches and histories are read there.
        self.read_replica_uri = read_replica_uri if read_replica_uri != uri else None
        self._replica_dsn = libpq_uri(read_replica_uri) if self.read_replica_uri else None
        self._shown_replica = redacted(self.read_replica_uri or "")
        self._replica_local = threading.local()
        self._connect_schema()
        if self._replica_dsn:
            self._check_replica()
        self._writer = PostgresWriter(self.dsn, self.artifact_root, self.shown_uri)

    def _connect_schema(self) -> None:
        """Make the database MLflow 3.18's (or refuse it), as opening a SQLite file does."""
        conn = self._connect()
        try:
            ensure_schema(conn, self.artifact_root)
        except MlflowException:
            raise
        except Exception as exc:
            if sqlstate(exc) == READ_ONLY:  # an empty database on a replica: retrying won't help
                raise MlflowException(
                    f"The PostgreSQL database {self.shown_uri} has no MLflow schema yet and is "
                    "read-only (a hot standby, or default_transaction_read_only), so asynctrack "
                    "cannot create it: open it once where it can be written (the primary).",
                    INVALID_STATE,
                ) from exc
            raise self._error(exc) from exc
        finally:
            conn.close()

    def _check_replica(self) -> None:
        """The read replica must hold the primary's schema at MLflow 3.18's revision (MLflow
        verifies its read engine's schema too); it is only read, never created. A schema the
        primary has just made is given a few seconds to be replayed there."""
        deadline = time.monotonic() + REPLICA_SCHEMA_WAIT_S
        conn = self._connect(replica=True)
        try:
            while True:
                with conn.transaction():
                    made, found = read_revision(conn)
                if made or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        except MlflowException:
            raise
        except Exception as exc:
            raise self._error(exc, replica=True) from exc
        finally:
            conn.close()
        if not made:
            raise MlflowException(
                f"The read replica {self._shown_replica} has no MLflow schema: "
                f"it must be a replica of {self.shown_uri} (a streaming standby, once caught up).",
                INVALID_STATE,
            )
        check_revision(found)

    def _connect(self, replica: bool = False) -> psycopg.Connection:
        psycopg = _driver()
        dsn = self._replica_dsn if replica else self.dsn
        kwargs: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in dsn and not os.environ.get("PGCONNECT_TIMEOUT"):
            kwargs["connect_timeout"] = CONNECT_TIMEOUT_S
        try:
            return psycopg.connect(dsn, **kwargs)
        except psycopg.Error as exc:
            raise MlflowException(
                f"Cannot connect to the PostgreSQL store {self._shown(replica)}: {describe(exc)}",
                TEMPORARILY_UNAVAILABLE,
            ) from exc

    def _shown(self, replica: bool) -> str:
        if replica:
            return f"{self.shown_uri} (its read replica {self._shown_replica})"
        return self.shown_uri

    def _error(self, exc: BaseException, replica: bool = False) -> MlflowException:
        """A driver error met while reading, as the MlflowException a user can act on."""
        if is_store_failure(exc):
            return MlflowException(
                f"The PostgreSQL store {self._shown(replica)} is unavailable: {describe(exc)}",
                TEMPORARILY_UNAVAILABLE,
            )
        return MlflowException(f"PostgreSQL error: {describe(exc)}", INTERNAL_ERROR)

    @property
    def replay_uri(self) -> str:
        return self.uri

    def limit_retries(self, until: float | None) -> None:
        self._writer.give_up_at = until

    # -- writes ---------------------------------------------------------------------------------
    def prepare_writer(self) -> None:
        try:
            import asyncpg  # noqa: F401  (see Store.prepare_writer)
        except ImportError:
            _driver()  # psycopg may be there without asyncpg: the same message either way
            raise MlflowException(
                "Writing to PostgreSQL needs asyncpg: pip install 'asynctrack[postgres]'.",
                INVALID_PARAMETER_VALUE,
            ) from None

    async def open_writer(self) -> None:
        try:
            await self._writer.open()
        except Exception:  # noqa: BLE001 - the first apply reconnects, and tells its callers
            pass

    async def apply(
        self, records: Sequence[tuple], on_commit: Callable[[list[Any]], None] | None = None
    ) -> list[Any]:
        return await self._writer.apply(records, on_commit)

    async def close_writer(self) -> None:
        await self._writer.close()

    def reset_after_fork(self) -> None:
        """The child of a fork opens connections of its own (never the parent's sockets)."""
        self._writer = PostgresWriter(self.dsn, self.artifact_root, self.shown_uri)
        self._local = threading.local()
        self._replica_local = threading.local()

    # -- reads ----------------------------------------------------------------------------------
    def _conn(self, replica: bool = False) -> psycopg.Connection:
        local = self._replica_local if replica else self._local
        conn = getattr(local, "conn", None)
        pid = os.getpid()
        if conn is None or local.pid != pid or conn.closed:
            conn = self._connect(replica)
            local.conn, local.pid = conn, pid
        return conn

    def _write_now(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(connection, *args)`` in one transaction on a connection of its own (logged
        models: see _sql.logged_model_store); a driver error as an MlflowException."""
        psycopg = _driver()
        conn = self._connect()
        try:
            with conn.transaction():
                return fn(_Reader(conn), *args)
        except psycopg.Error as exc:
            error = self._error(exc)
            if (sqlstate(exc) or "").startswith("23"):  # a constraint: MLflow's session says BAD_REQUEST
                error = MlflowException(error.message, BAD_REQUEST)
            raise error from exc
        finally:
            conn.close()

    def _read(self, fn: Callable[..., Any], *args: Any, raw: bool = False, heavy: bool = False) -> Any:
        """``fn(connection, *args)`` on this thread's connection (to the read replica for a
        ``heavy`` read, where there is one); a connection the server dropped (a restart, an
        idle timeout) is replaced once, then the error is the user's."""
        psycopg = _driver()
        replica = heavy and self._replica_dsn is not None
        for attempt in (0, 1):
            conn = self._conn(replica)
            try:
                return fn(conn if raw else _Reader(conn), *args)
            except psycopg.Error as exc:
                if conn.broken or conn.closed:
                    (self._replica_local if replica else self._local).conn = None
                    if attempt == 0:
                        continue
                raise self._error(exc, replica) from exc
        raise AssertionError("unreachable")

    def _experiment_key(self, experiment_id: str) -> int:
        return _experiment_id(experiment_id)

    def close(self) -> None:
        for local in (self._local, self._replica_local):
            conn = getattr(local, "conn", None)
            if conn is not None and local.pid == os.getpid():
                conn.close()
        self._local = threading.local()
        self._replica_local = threading.local()


_INT4_MAX = 2**31 - 1


def _experiment_id(experiment_id: str) -> int:
    """The id as the integer column holds it; one no experiment can have is not found (as
    MLflow says), rather than PostgreSQL's out-of-range error."""
    value = int(experiment_id)
    if not -_INT4_MAX - 1 <= value <= _INT4_MAX:
        from .._sql.rules import experiment_not_found

        raise experiment_not_found(value)
    return value

