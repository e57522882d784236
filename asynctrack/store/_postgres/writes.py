"""Applying batches of event records to MLflow's tables on PostgreSQL, through asyncpg.

One batch is one transaction on the writer's one connection (READ COMMITTED, the server's
default and MLflow's): runs of consecutive logging records in bulk (``_bulk``: binary COPY into
a temporary table, then INSERT ... ON CONFLICT), lifecycle records one by one, each in a
savepoint of its own (``_lifecycle``). A deadlock or serialization failure rolls the batch back
and it is run again at once; any other failure of the store (the server down or restarting,
the connection killed, a read-only or full database, a hot standby, a statement timeout) rolls
it back and surfaces as ``StoreUnavailable``, so the writer keeps the batch and retries it
later. The connection is then reopened, never reused.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ... import events as ev
from .._schema_rules import check_revision
from .._sql.batch import segments
from ..base import StoreUnavailable
from . import _bulk, _lifecycle
from .errors import READ_ONLY, RETRY_AT_ONCE, describe, is_store_failure, sqlstate

if TYPE_CHECKING:
    import asyncpg

CONNECT_TIMEOUT_S = 10.0
# A deadlock or serialization failure is retried this many times before the batch is kept
# for later (the writer's outage path) instead.
CONFLICT_RETRIES = 20
# On connecting: the schema's revision, and whether the server is a hot standby (read-only).
_OPENING = "SELECT (SELECT version_num FROM alembic_version), pg_is_in_recovery()"


class PostgresWriter:
    """The write side of the PostgreSQL store: one asyncpg connection, owned by the writer."""

    def __init__(self, dsn: str, artifact_root: str, shown: str) -> None:
        self._dsn = dsn
        self._artifact_root = artifact_root
        self._shown = shown  # the URI as messages print it (no password)
        self._conn: asyncpg.Connection | None = None
        self.give_up_at: float | None = None  # see Store.limit_retries

    def _timeout(self) -> float:
        if self.give_up_at is None:
            return CONNECT_TIMEOUT_S
        return max(0.1, min(CONNECT_TIMEOUT_S, self.give_up_at - time.monotonic()))

    async def open(self) -> None:
        """Connect, check the database is still MLflow's at our revision and writable (not a
        hot standby: a lasting outage), prepare the bulk path."""
        import asyncpg  # with the writer's thread (see PostgresStore.prepare_writer)

        try:
            conn = await asyncpg.connect(self._dsn, timeout=self._timeout())
        except Exception as exc:
            raise StoreUnavailable(f"cannot connect to {self._shown}: {describe(exc)}") from exc
        try:
            revision, standby = await conn.fetchrow(_OPENING)
            if not standby:
                check_revision(revision)
                await _bulk.prepare_connection(conn)
        except BaseException as exc:
            conn.terminate()
            if isinstance(exc, Exception):
                # a read-only database refuses the bulk path's temporary table: lasting
                raise StoreUnavailable(
                    f"cannot use {self._shown}: {describe(exc)}", lasting=sqlstate(exc) == READ_ONLY
                ) from exc
            raise
        if standby:  # a read replica: reads are served there, writes only by its primary
            conn.terminate()
            raise StoreUnavailable(
                f"cannot write {self._shown}: it is a hot standby (a read-only replica); "
                "log to its primary", lasting=True
            )
        self._conn = conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), timeout=2.0)
            except Exception:  # noqa: BLE001 - a connection that will not close politely
                conn.terminate()

    async def apply(
        self, records: Sequence[tuple], on_commit: Callable[[list[Any]], None] | None = None
    ) -> list[Any]:
        """Apply ``records`` in one transaction; one outcome (result or MlflowException) each.
        Raises ``StoreUnavailable`` when the store cannot take the batch: nothing of it is
        stored, unless the connection was lost during COMMIT (``maybe_stored``: the server may
        have committed it; a rerun stores nothing twice)."""
        conflicts = 0
        careful = False  # every run of logging records in a savepoint of its own
        while True:
            if self._conn is None or self._conn.is_closed():
                await self.open()
            conn = self._conn
            assert conn is not None
            committing = False
            try:
                transaction = conn.transaction()
                await transaction.start()
                try:
                    outcomes = await self._apply_all(conn, records, careful)
                except _bulk.Redo:
                    await transaction.rollback()
                    careful = True
                    continue
                except BaseException:
                    if not conn.is_closed():
                        await transaction.rollback()
                    raise
                committing = True
                await transaction.commit()
            except Exception as exc:
                state = sqlstate(exc)
                if state in RETRY_AT_ONCE and conflicts < CONFLICT_RETRIES:
                    conflicts += 1  # another transaction won a lock race: run it again
                    await asyncio.sleep(random.random() * 0.002 * conflicts)
                    continue
                if not is_store_failure(exc):
                    raise
                await self._drop()
                raise StoreUnavailable(
                    f"cannot write {self._shown}: {describe(exc)}",
                    lasting=state == READ_ONLY,
                    maybe_stored=committing and state is None,  # no answer to the COMMIT
                ) from exc
            if on_commit is not None:
                on_commit(outcomes)
            return outcomes

    async def _drop(self) -> None:
        """Forget a connection after a store failure (it may be dead or mid-transaction)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def _apply_all(self, conn: asyncpg.Connection, records: Sequence[tuple], careful: bool) -> list[Any]:
        """``careful=False``: a batch of logging records only is written with no savepoint of
        its own (the transaction's rollback is one; see ``_bulk.Redo``)."""
        outcomes: list[Any] = [None] * len(records)
        if not careful and len(records) == 1 and await _bulk.store_one_point(conn, records[0]):
            return outcomes
        if type(records) is ev.MetricBlock:  # the usual batch: metric points, decoded flat
            await _bulk.apply_metric_block(conn, records, outcomes, savepoint=careful)
            return outcomes
        parts = list(segments(records))
        whole = not careful and len(parts) == 1
        for logging, i, j in parts:
            if logging:
                await _bulk.apply_logging(conn, records, i, j, outcomes, savepoint=not whole)
            else:
                outcomes[i] = await _lifecycle.apply(conn, self._artifact_root, records[i])
        return outcomes

