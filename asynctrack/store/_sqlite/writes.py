"""Applying batches of event records to MLflow's tables, through aiosqlite.

One batch is one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``, retried whole on SQLITE_BUSY),
run as one function on aiosqlite's connection thread: a batch costs one hop between the writer's
event loop and SQLite, not one per statement.
Runs of consecutive logging records are checked against the database in bulk (run state, params
already logged) and written with one ``executemany`` per table; a record that breaks a rule is
left out with its own MlflowException and every other record is stored. Lifecycle records are
applied one by one, each inside a SAVEPOINT so that one failing leaves the rest of the batch
intact. The rules are MLflow's SQL store's: NaN stored as ``value=0, is_nan=1``, ±inf as ±max
float, an identical point stored once, ``latest_metrics`` holding the point with the highest
(step, timestamp, value), params immutable, the ``mlflow.runName`` tag mirrored in ``runs.name``.
"""

from __future__ import annotations

import itertools
import logging
import math
import operator
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ... import events as ev
from ...entities import LifecycleStage
from ...exceptions import (
    BAD_REQUEST,
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    INVALID_STATE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    MlflowException,
)
from .connection import (
    BUSY_TIMEOUT_S,
    PRAGMAS,
    WRITER_PRAGMAS,
    SQLITE_FORK_GATE,
    backoff_delays,
    connect,
    is_busy,
    is_store_failure,
    retry_sync,
    unavailable,
)
from ..base import StoreUnavailable
from .reads import experiment_not_found, run_not_found
from .schema import _revision as _revision_of
from .schema import artifact_location, check_revision

if TYPE_CHECKING:
    import aiosqlite

_logger = logging.getLogger("asynctrack")

RUN_NAME_TAG = "mlflow.runName"
MAX_FLOAT = 1.7976931348623157e308
ACTIVE = LifecycleStage.ACTIVE
DELETED = LifecycleStage.DELETED
_CHUNK = 500  # bound parameters per IN (...) query
CHECKPOINT_ROWS = 20_000  # rows committed between background WAL checkpoints
_NAN_MARK = -1  # replaces VERSION in a sanitized NaN record: "store with is_nan = 1"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1



_INSERT_METRIC_COLUMNS = "INSERT OR IGNORE INTO metrics (key, value, timestamp, step, is_nan, run_uuid) "


def _metric_insert(rows: int) -> str:
    """An INSERT bound to ``rows`` metric records laid end to end, each as it is:
    (VERSION, METRIC, run_id, key, value, timestamp, step), or as _sanitized made it (a NaN's
    VERSION replaced by _NAN_MARK, which sets is_nan).

    The records are bound in their own order to plain ``?`` placeholders of a VALUES table and
    picked apart by its columns: numbered ``?NNN`` placeholders bound from a sequence would do
    the same, but Python 3.12 runs its deprecation machinery for each of them (a 500-row
    statement ran 10-20x slower) and 3.14 refuses them."""
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * rows)
    return (
        f"{_INSERT_METRIC_COLUMNS}SELECT column4, column5, column6, column7, column1 = {_NAN_MARK}, "
        f"column3 FROM (VALUES {values})"
    )


def _batch_metric_insert(rows: int) -> str:
    """An INSERT bound to one run id then ``rows`` finite (key, value, timestamp, step) entries
    of a BATCH record laid end to end (plain ``?`` placeholders, see _metric_insert)."""
    values = ", ".join(["(?, ?, ?, ?)"] * rows)
    return (
        f"WITH run(id) AS (SELECT ?) {_INSERT_METRIC_COLUMNS}"
        f"SELECT column1, column2, column3, column4, 0, (SELECT id FROM run) FROM (VALUES {values})"
    )


# Rows per multi-row INSERT, largest first: a batch is bound in as few statements (so as few
# sqlite3_step calls, each a GIL hand-off) as the SQLite build allows, and a remainder takes
# the smaller sizes instead of one statement per point (a log_batch of 1,000 metrics: 512 +
# 256 + 128 + 64 + 32 + 8, six statements; without 256 and 128 it took ten, ~7 % of its time
# on Python 3.12 and 3.13). 32 rows (224 parameters) stay under old SQLite's limit of 999
# parameters; the larger sizes are used where the limit allows them (see _variable_limit).
_ROW_SIZES = (512, 256, 128, 64, 32, 8, 1)
_INSERT_METRICS = {r: _metric_insert(r) for r in _ROW_SIZES}
_INSERT_BATCH_METRICS = {r: _batch_metric_insert(r) for r in _ROW_SIZES}
_UPSERT_LATEST = (
    "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key, run_uuid) DO UPDATE SET "
    "value = excluded.value, timestamp = excluded.timestamp, step = excluded.step, "
    "is_nan = excluded.is_nan WHERE (excluded.step, excluded.timestamp, excluded.value) > "
    "(latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)"
)
# latest_metrics of one (run, key) from the points a batch has just stored (bound as run, key,
# run, key, then the highest rowid before the batch): among those at the highest step stored
# for the key, the one with the highest (timestamp, value), the first stored among equals
# (lowest rowid: MLflow keeps the first of equal points); the upsert replaces the current row
# only if that is higher. A batch whose points all lie below the key's highest step finds
# nothing: the current row, the best of the points stored before, stays. Only the index on
# (run_uuid, key, step) (its entries end with the rowid) serves this: it is named, as without
# statistics the planner would take the primary key's index (key first) and read every point
# of the key.
_UPSERT_LATEST_FROM_METRICS = (
    "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
    "SELECT key, value, timestamp, step, is_nan, run_uuid "
    "FROM metrics INDEXED BY index_metrics_run_uuid_key_step "
    "WHERE run_uuid = ? AND key = ? AND step = (SELECT max(step) FROM metrics INDEXED BY "
    "index_metrics_run_uuid_key_step WHERE run_uuid = ? AND key = ?) AND rowid > ? "
    "ORDER BY timestamp DESC, value DESC, rowid LIMIT 1 "
    "ON CONFLICT (key, run_uuid) DO UPDATE SET "
    "value = excluded.value, timestamp = excluded.timestamp, step = excluded.step, "
    "is_nan = excluded.is_nan WHERE (excluded.step, excluded.timestamp, excluded.value) > "
    "(latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)"
)
_MAX_ROWID = "SELECT max(rowid) FROM metrics"
_INSERT_PARAM = "INSERT OR IGNORE INTO params (key, value, run_uuid) VALUES (?, ?, ?)"
_UPSERT_TAG = (
    "INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?) "
    "ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value"
)
_SET_RUN_NAME = "UPDATE runs SET name = ? WHERE run_uuid = ?"


def _identity_of(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def run_not_active(run_id: str, stage: str) -> MlflowException:
    return MlflowException(
        f"The run {run_id} must be in the 'active' state. Current state is {stage}.",
        INVALID_PARAMETER_VALUE,
    )


def experiment_not_active(experiment_id: Any, stage: str) -> MlflowException:
    return MlflowException(
        f"The experiment {experiment_id} must be in the 'active' state. Current state is {stage}.",
        INVALID_PARAMETER_VALUE,
    )


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
        outcomes: list[Any] = [None] * len(records)
        logging_ops = ev.LOGGING_OPS
        i, n = 0, len(records)
        if type(records) is ev.MetricBlock:  # the usual batch: metric points, decoded flat
            self._apply_metric_block(conn, records, outcomes)
            return outcomes
        if n and logging_ops.issuperset(map(_OP, records)):  # one C-level pass
            self._apply_logging(conn, records, 0, n, outcomes)
            return outcomes
        while i < n:
            if records[i][1] in logging_ops:
                j = i + 1
                while j < n and records[j][1] in logging_ops:
                    j += 1
                self._apply_logging(conn, records, i, j, outcomes)
                i = j
            else:
                outcomes[i] = self._isolated(conn, self._apply_lifecycle, records[i])
                i += 1
        return outcomes

    def _isolated(self, conn, fn, *args) -> Any:
        """Run ``fn`` in a savepoint: its failure undoes only its own writes."""
        conn.execute("SAVEPOINT one")
        try:
            result = fn(conn, *args)
        except MlflowException as exc:
            conn.execute("ROLLBACK TO one")
            conn.execute("RELEASE one")
            return exc
        except sqlite3.OperationalError as exc:
            if is_store_failure(exc):
                raise  # the whole batch is kept and retried
            conn.execute("ROLLBACK TO one")
            conn.execute("RELEASE one")
            return MlflowException(f"SQLite error: {exc}", INTERNAL_ERROR)
        except sqlite3.Error as exc:
            if is_store_failure(exc):
                raise
            conn.execute("ROLLBACK TO one")
            conn.execute("RELEASE one")
            return MlflowException(f"SQLite error: {exc}", INTERNAL_ERROR)
        conn.execute("RELEASE one")
        return result

    # -- logging records, in bulk ----------------------------------------------------------------
    def _apply_logging(self, conn, records, start: int, stop: int, outcomes: list) -> None:
        """Check a run of logging records against the database, then write them in bulk."""
        seg = records[start:stop] if start or stop != len(records) else records
        run_ids = set(map(_RUN_ID, seg))
        stages = self._run_stages(conn, run_ids)
        if len(seg) > _FEW and _plain_metrics(seg, run_ids, stages):
            # Finite metric points of active runs as records (a retry, a replay, a batch with a
            # synchronous record in it): laid flat, and written as the writer's blocks are.
            block = ev.MetricBlock(tuple(itertools.chain.from_iterable(seg)))
            self._write_plain_metrics(conn, block, run_ids, records, range(start, stop), outcomes)
            return
        wanted: dict[str, set[str]] = {}  # run id -> param keys this batch logs
        for k in range(start, stop):
            rec = records[k]
            if rec[1] == _PARAM:
                wanted.setdefault(rec[2], set()).add(rec[3])
            elif rec[1] == ev.BATCH and rec[4]:
                wanted.setdefault(rec[2], set()).update(p[0] for p in rec[4] if p)
        params = self._existing_params(conn, wanted) if wanted else {}

        # A metric record (VERSION, METRIC, run_id, key, value, timestamp, step) is bound as it
        # is (see _metric_insert), a non-finite one after _sanitized; a BATCH record's finite
        # metrics are bound as they are, behind its run id (see _batch_metric_insert).
        metric_rows: list[tuple] = []
        batch_groups: list[tuple[str, Sequence]] = []
        pairs: set[tuple[str, str]] = set()
        param_rows: list[tuple] = []
        tag_rows: list[tuple] = []
        name_rows: list[tuple] = []
        accepted: list[int] = []
        add_metric = metric_rows.append
        add_pair = pairs.add
        nan_seen = False
        for k in range(start, stop):
            rec = records[k]
            op, run_id = rec[1], rec[2]
            stage = stages.get(run_id)
            if stage != ACTIVE:
                outcomes[k] = run_not_found(run_id) if stage is None else run_not_active(run_id, stage)
                continue
            if op == _METRIC:
                if len(rec) != 7:  # bound end to end with others: a wrong shape fails alone
                    outcomes[k] = MlflowException(f"Malformed metric record: {rec!r}", INTERNAL_ERROR)
                    continue
                value = rec[4]
                if value != value or value in _INFS:
                    rec = _sanitized(rec)
                    nan_seen = nan_seen or rec[0] == _NAN_MARK
                add_metric(rec)
                add_pair((run_id, rec[3]))
            elif op == _PARAM:
                key, value = rec[3], rec[4]
                old = params.get((run_id, key))
                if old is not None and old != value:
                    outcomes[k] = MlflowException(
                        f"Changing param values is not allowed. Param with key='{key}' was already"
                        f" logged with value='{old}' for run ID='{run_id}'. Attempted logging new"
                        f" value '{value}'.",
                        INVALID_PARAMETER_VALUE,
                    )
                    continue
                params[(run_id, key)] = value
                param_rows.append((key, value, run_id))
            elif op == _TAG:
                key, value = rec[3], rec[4]
                tag_rows.append((key, value, run_id))
                if key == RUN_NAME_TAG:
                    name_rows.append((value, run_id))
            else:  # BATCH: all of it or none of it
                metrics, batch_params, tags = rec[3], rec[4], rec[5]
                conflicts = [
                    {"key": key, "old_value": params[(run_id, key)], "new_value": value}
                    for key, value in batch_params
                    if (run_id, key) in params and params[(run_id, key)] != value
                ]
                if conflicts:
                    outcomes[k] = MlflowException(
                        "Changing param values is not allowed. Params were already"
                        f" logged='{conflicts}' for run ID='{run_id}'.",
                        INVALID_PARAMETER_VALUE,
                    )
                    continue
                for key, value in batch_params:
                    params[(run_id, key)] = value
                    param_rows.append((key, value, run_id))
                if metrics:
                    if _finite_entries(metrics):
                        if len(metrics) > _FEW:
                            # Key by key (a stable sort: each key's points keep their order):
                            # the primary key's index (key first) and (run, key, step)'s then
                            # take each key's points in one visit, not one per point.
                            metrics = sorted(metrics, key=_FIRST)
                        batch_groups.append((run_id, metrics))
                    else:
                        for key, value, ts, step in metrics:
                            row = _sanitized((ev.VERSION, _METRIC, run_id, key, value, ts, step))
                            nan_seen = nan_seen or row[0] == _NAN_MARK
                            add_metric(row)
                    pairs.update(zip(itertools.repeat(run_id), set(map(_FIRST, metrics))))
                for key, value in tags:
                    tag_rows.append((key, value, run_id))
                    if key == RUN_NAME_TAG:
                        name_rows.append((value, run_id))
            accepted.append(k)

        if not accepted:
            return
        if nan_seen or (len(metric_rows) <= _FEW and not batch_groups):
            # latest_metrics in Python, in logging order: among points equal in (step,
            # timestamp, value) (NaN is stored as 0) MLflow keeps the first logged one. (A few
            # records, a synchronous call's, are cheaper so than with a query per key.)
            latest = _latest_in_order(records, accepted)
        elif not metric_rows:  # log_batch calls only: their best points found at C speed
            latest = _latest_of_batches(batch_groups)
        else:
            latest = pairs  # from SQL: equal points can only be the same point
        if len(pairs) > _WIDE_BATCH_KEYS and metric_rows:
            # Many keys at once (a model's per-layer metrics): insert in the primary key's
            # order, so that each index leaf is filled in one visit per batch instead of a
            # visit per point across a thousand pages (a stable sort: equal points keep their
            # logging order).
            metric_rows.sort(key=_PK_ORDER)
        inserts = [(_INSERT_METRICS, list(itertools.chain.from_iterable(metric_rows)), 7, ())] if metric_rows else []
        # One run's BATCH records one after another go in together (the same rows in the same
        # order): a statement per record, each of its own sqlite3_step calls taking the GIL back
        # from a busy producer, made async log_metrics of 5 points ~40x slower than this.
        for run_id, groups in itertools.groupby(batch_groups, _FIRST):
            entries = itertools.chain.from_iterable(metrics for _, metrics in groups)
            inserts.append((_INSERT_BATCH_METRICS, list(itertools.chain.from_iterable(entries)), 4, (run_id,)))
        self._write_bulk(conn, records, accepted, outcomes, inserts, (param_rows, tag_rows, name_rows), latest)

    def _apply_metric_block(self, conn, block: ev.MetricBlock, outcomes: list) -> None:
        """A batch of metric points only, decoded flat (see events.MetricBlock): finite points
        of active runs (the common case) are written from the flat fields, anything else goes
        the general way, record by record."""
        fields = block.fields
        run_ids = set(fields[2::7])
        stages = self._run_stages(conn, run_ids)
        try:
            plain = all(stages.get(r) == ACTIVE for r in run_ids) and math.isfinite(sum(fields[4::7]))
        except (TypeError, OverflowError, ValueError):
            plain = False
        if plain:
            self._write_plain_metrics(conn, block, run_ids, block, range(len(block)), outcomes)
        else:
            self._apply_logging(conn, list(block), 0, len(block), outcomes)

    def _write_plain_metrics(self, conn, block: ev.MetricBlock, run_ids: set, records, accepted, outcomes) -> None:
        """Finite metric points of active runs (``records[k]`` for k in ``accepted``, laid flat
        in ``block``), with no Python work per point: one run's bound as (key, value,
        timestamp, step) behind its id, laid out by four C-level slice copies, several runs' as
        they are; latest_metrics from SQL per (run, key)."""
        fields = block.fields
        n = len(block)
        if len(run_ids) == 1:  # no (run, key) tuple per point
            (run_id,) = run_ids
            pairs = set(zip(itertools.repeat(run_id), set(fields[3::7])))
        else:
            pairs = set(zip(fields[2::7], fields[3::7]))
        if len(pairs) > _WIDE_BATCH_KEYS:  # in the primary key's order (see _apply_logging)
            rows = sorted(block, key=_PK_ORDER)
            inserts = [(_INSERT_METRICS, list(itertools.chain.from_iterable(rows)), 7, ())]
        elif len(run_ids) == 1:
            flat: list = [None] * (4 * n)
            flat[0::4], flat[1::4], flat[2::4], flat[3::4] = fields[3::7], fields[4::7], fields[5::7], fields[6::7]
            inserts = [(_INSERT_BATCH_METRICS, flat, 4, (run_id,))]
        else:
            inserts = [(_INSERT_METRICS, fields, 7, ())]
        self._write_bulk(conn, records, accepted, outcomes, inserts, (), pairs)

    def _write_bulk(self, conn, records, accepted, outcomes, inserts, others, latest) -> None:
        """Write what _apply_logging accepted, in one savepoint; should SQLite refuse any of it,
        find the record(s) at fault by applying the accepted ones one at a time. ``inserts``:
        the metric rows, as (statements by rows, parameters laid end to end, parameters per
        row, parameters bound before each statement's rows) for _insert_rows."""
        conn.execute("SAVEPOINT bulk")
        try:
            if latest and type(latest) is not dict:
                # New rows get rowids above the highest (SQLite's rule while it is below 2**63-1;
                # at that limit they are random, and every stored point is considered).
                last = conn.execute(_MAX_ROWID).fetchone()[0]
                if last is None or last >= _INT64_MAX:
                    last = _INT64_MIN
            for statements, flat, width, head in inserts:
                _insert_rows(conn, statements, flat, width, *head)
            if type(latest) is dict:
                conn.executemany(
                    _UPSERT_LATEST,
                    [(r[3], r[4], r[5], r[6], int(r[0] == _NAN_MARK), r[2]) for r in latest.values()],
                )
            elif latest:
                conn.executemany(
                    _UPSERT_LATEST_FROM_METRICS, [(run_id, key, run_id, key, last) for run_id, key in latest]
                )
            if others:
                param_rows, tag_rows, name_rows = others
                if param_rows:
                    conn.executemany(_INSERT_PARAM, param_rows)
                if tag_rows:
                    conn.executemany(_UPSERT_TAG, tag_rows)
                if name_rows:
                    conn.executemany(_SET_RUN_NAME, name_rows)
        except sqlite3.Error as exc:
            if is_store_failure(exc):
                raise
            conn.execute("ROLLBACK TO bulk")
            conn.execute("RELEASE bulk")
            if len(accepted) == 1:  # the one record at fault
                outcomes[accepted[0]] = MlflowException(f"SQLite error: {exc}", INTERNAL_ERROR)
                return
            for k in accepted:
                outcomes[k] = self._isolated(conn, self._apply_logging_one, records[k])
            return
        conn.execute("RELEASE bulk")

    def _apply_logging_one(self, conn, rec: tuple) -> None:
        outcomes: list[Any] = [None]
        self._apply_logging(conn, [rec], 0, 1, outcomes)
        if isinstance(outcomes[0], MlflowException):
            raise outcomes[0]

    def _run_stages(self, conn, run_ids: set[str]) -> dict[str, str]:
        stages: dict[str, str] = {}
        ids = list(run_ids)
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            stages.update(
                conn.execute(
                    f"SELECT run_uuid, lifecycle_stage FROM runs WHERE run_uuid IN ({marks})", chunk
                ).fetchall()
            )
        return stages

    def _existing_params(self, conn, wanted: dict[str, set[str]]) -> dict[tuple[str, str], str]:
        """The stored values of just the params a batch logs, by their primary key (key,
        run_uuid): a run's 5,000th param costs what its first did, not a read of all of them."""
        params: dict[tuple[str, str], str] = {}
        for run_id, keys in wanted.items():
            names = [k for k in keys if isinstance(k, str)]
            for i in range(0, len(names), _CHUNK):
                chunk = names[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, value in conn.execute(
                    f"SELECT key, value FROM params WHERE run_uuid = ? AND key IN ({marks})", (run_id, *chunk)
                ):
                    params[(run_id, key)] = value
        return params

    # -- lifecycle records, one at a time --------------------------------------------------------
    def _apply_lifecycle(self, conn, rec: tuple) -> Any:
        handler = _LIFECYCLE[rec[1]]
        return handler(self, conn, *rec[2:])

    def _fetchone(self, conn, sql: str, args: tuple) -> tuple | None:
        return conn.execute(sql, args).fetchone()

    def _experiment_stage(self, conn, experiment_id: str) -> str:
        row = self._fetchone(
            conn, "SELECT lifecycle_stage FROM experiments WHERE experiment_id = ?", (int(experiment_id),)
        )
        if row is None:
            raise experiment_not_found(int(experiment_id))
        return row[0]

    def _run_stage(self, conn, run_id: str) -> str:
        row = self._fetchone(conn, "SELECT lifecycle_stage FROM runs WHERE run_uuid = ?", (run_id,))
        if row is None:
            raise run_not_found(run_id)
        return row[0]

    def _create_experiment(self, conn, name, location, tags, created) -> str:
        try:
            cur = conn.execute(
                "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time,"
                " last_update_time) VALUES (?, ?, 'active', ?, ?)",
                (name, location, created, created),
            )
        except sqlite3.IntegrityError as exc:
            params = (name, "default", location, "active", created, created)
            raise MlflowException(
                f"Experiment(name={name}) already exists. Error: "
                + _sqlalchemy_error_text(exc, _INSERT_EXPERIMENT_AS_SQLALCHEMY, params),
                RESOURCE_ALREADY_EXISTS,
            ) from None
        exp_id = cur.lastrowid
        if not location:
            conn.execute(
                "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
                (artifact_location(self._artifact_root, exp_id), exp_id),
            )
        if tags:
            conn.executemany(
                "INSERT OR REPLACE INTO experiment_tags (key, value, experiment_id) VALUES (?, ?, ?)",
                [(k, v, exp_id) for k, v in tags],
            )
        return str(exp_id)

    def _delete_experiment(self, conn, experiment_id, now) -> None:
        if self._experiment_stage(conn, experiment_id) != ACTIVE:
            raise experiment_not_found(int(experiment_id))
        exp = int(experiment_id)
        conn.execute(
            "UPDATE experiments SET lifecycle_stage = 'deleted', last_update_time = ? "
            "WHERE experiment_id = ?",
            (now, exp),
        )
        conn.execute(
            "UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = ? WHERE experiment_id = ?",
            (now, exp),
        )

    def _restore_experiment(self, conn, experiment_id, now) -> None:
        if self._experiment_stage(conn, experiment_id) != DELETED:
            raise experiment_not_found(int(experiment_id))
        exp = int(experiment_id)
        conn.execute(
            "UPDATE experiments SET lifecycle_stage = 'active', last_update_time = ? "
            "WHERE experiment_id = ?",
            (now, exp),
        )
        conn.execute(
            "UPDATE runs SET lifecycle_stage = 'active', deleted_time = NULL WHERE experiment_id = ?",
            (exp,),
        )

    def _rename_experiment(self, conn, experiment_id, new_name, now) -> None:
        if self._experiment_stage(conn, experiment_id) != ACTIVE:
            raise MlflowException("Cannot rename a non-active experiment.", INVALID_STATE)
        try:
            conn.execute(
                "UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?",
                (new_name, now, int(experiment_id)),
            )
        except sqlite3.IntegrityError as exc:
            # MLflow lets SQLAlchemy's IntegrityError through here, which its REST layer and
            # client report as BAD_REQUEST with SQLAlchemy's text.
            params = (new_name, now, int(experiment_id))
            raise MlflowException(
                _sqlalchemy_error_text(exc, _RENAME_EXPERIMENT_AS_SQLALCHEMY, params), BAD_REQUEST
            ) from None

    def _set_experiment_tag(self, conn, experiment_id, key, value) -> None:
        stage = self._experiment_stage(conn, experiment_id)
        if stage != ACTIVE:
            raise experiment_not_active(experiment_id, stage)
        conn.execute(
            "INSERT INTO experiment_tags (key, value, experiment_id) VALUES (?, ?, ?) "
            "ON CONFLICT (key, experiment_id) DO UPDATE SET value = excluded.value",
            (key, value, int(experiment_id)),
        )

    def _delete_experiment_tag(self, conn, experiment_id, key) -> None:
        stage = self._experiment_stage(conn, experiment_id)
        if stage != ACTIVE:
            raise experiment_not_active(experiment_id, stage)
        cur = conn.execute(
            "DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?",
            (int(experiment_id), key),
        )
        if cur.rowcount == 0:
            raise MlflowException(
                f"No tag with name: {key} in experiment with id {experiment_id}",
                RESOURCE_DOES_NOT_EXIST,
            )

    def _create_run(self, conn, run_id, experiment_id, user_id, start_time, tags, run_name) -> None:
        row = self._fetchone(
            conn,
            "SELECT lifecycle_stage, artifact_location FROM experiments WHERE experiment_id = ?",
            (int(experiment_id),),
        )
        if row is None:
            raise experiment_not_found(int(experiment_id))
        stage, location = row
        if stage != ACTIVE:
            raise experiment_not_active(experiment_id, stage)
        if self._fetchone(conn, "SELECT 1 FROM runs WHERE run_uuid = ?", (run_id,)):
            return  # a replayed record: the run is there already
        conn.execute(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id,"
            " status, start_time, end_time, source_version, lifecycle_stage, artifact_uri,"
            " experiment_id, deleted_time) VALUES (?, ?, 'UNKNOWN', '', '', ?, 'RUNNING', ?, NULL,"
            " '', 'active', ?, ?, NULL)",
            (
                run_id,
                run_name,
                user_id,
                start_time,
                f"{(location or '').rstrip('/')}/{run_id}/artifacts",
                int(experiment_id),
            ),
        )
        tag_rows = [(k, v, run_id) for k, v in tags]
        if run_name and not any(k == RUN_NAME_TAG for k, _ in tags):
            tag_rows.append((RUN_NAME_TAG, run_name, run_id))
        if tag_rows:
            conn.executemany(_UPSERT_TAG, tag_rows)

    def _update_run(self, conn, run_id, status, end_time, run_name) -> None:
        stage = self._run_stage(conn, run_id)
        if stage != ACTIVE:
            raise run_not_active(run_id, stage)
        sets, args = [], []
        if status is not None:
            sets.append("status = ?")
            args.append(status)
        if end_time is not None:
            sets.append("end_time = ?")
            args.append(end_time)
        if run_name:
            sets.append("name = ?")
            args.append(run_name)
            conn.execute(_UPSERT_TAG, (RUN_NAME_TAG, run_name, run_id))
        if sets:
            conn.execute(f"UPDATE runs SET {', '.join(sets)} WHERE run_uuid = ?", (*args, run_id))

    def _delete_run(self, conn, run_id, now) -> None:
        self._run_stage(conn, run_id)
        conn.execute(
            "UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = ? WHERE run_uuid = ?",
            (now, run_id),
        )

    def _restore_run(self, conn, run_id) -> None:
        self._run_stage(conn, run_id)
        conn.execute(
            "UPDATE runs SET lifecycle_stage = 'active', deleted_time = NULL WHERE run_uuid = ?",
            (run_id,),
        )

    def _delete_tag(self, conn, run_id, key) -> None:
        stage = self._run_stage(conn, run_id)
        if stage != ACTIVE:
            raise run_not_active(run_id, stage)
        cur = conn.execute("DELETE FROM tags WHERE run_uuid = ? AND key = ?", (run_id, key))
        if cur.rowcount == 0:
            raise MlflowException(
                f"No tag with name: {key} in run with id {run_id}", RESOURCE_DOES_NOT_EXIST
            )


# The statements MLflow's SQLAlchemy models issue, as SQLAlchemy quotes them in its errors.
_INSERT_EXPERIMENT_AS_SQLALCHEMY = (
    "INSERT INTO experiments (name, workspace, artifact_location, lifecycle_stage, creation_time, "
    "last_update_time) VALUES (?, ?, ?, ?, ?, ?)"
)
_RENAME_EXPERIMENT_AS_SQLALCHEMY = (
    "UPDATE experiments SET name=?, last_update_time=? WHERE experiments.experiment_id = ?"
)


def _sqlalchemy_error_text(exc: sqlite3.Error, statement: str, params: tuple) -> str:
    """The text SQLAlchemy gives a DBAPI error, which MLflow passes on in its messages."""
    return (
        f"(sqlite3.{type(exc).__name__}) {exc}\n[SQL: {statement}]\n[parameters: {params!r}]\n"
        "(Background on this error at: https://sqlalche.me/e/21/gkpj)"
    )


def _row_sizes(conn: sqlite3.Connection, width: int) -> tuple[int, ...]:
    """The statement sizes (rows) usable under this SQLite's limit on bound parameters."""
    limit = _variable_limit(conn)
    sizes = _SIZES.get((limit, width))
    if sizes is None:
        sizes = _SIZES[(limit, width)] = tuple(r for r in _ROW_SIZES if r * width + 1 <= limit)
    return sizes


_SIZES: dict[tuple[int, int], tuple[int, ...]] = {}
_PROBED_LIMIT: list[int] = []  # the limit found by _variable_limit's probe (one SQLite a process)


def _variable_limit(conn: sqlite3.Connection) -> int:
    """How many parameters one statement may bind here: ``getlimit`` where the sqlite3 module
    has it (Python 3.11+), else found once by preparing the largest statement a batch would use
    (Python 3.10, pysqlite3), so that those too get the large statements when their SQLite
    allows them (32,766 since SQLite 3.32) instead of old SQLite's 999."""
    try:
        return conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except (AttributeError, sqlite3.Error):
        pass
    if not _PROBED_LIMIT:
        need = max(_ROW_SIZES) * 7 + 1
        try:
            conn.execute(f"SELECT 1 WHERE NULL IN ({', '.join(['?'] * need)})", (None,) * need)
            _PROBED_LIMIT.append(need)
        except sqlite3.OperationalError:  # "too many SQL variables"
            _PROBED_LIMIT.append(999)
    return _PROBED_LIMIT[0]


def _insert_rows(conn: sqlite3.Connection, statements: dict, flat: list, width: int, *head) -> None:
    """Insert rows of ``width`` parameters laid end to end in ``flat`` with the multi-row
    statements of ``statements`` (rows -> SQL), largest first; ``head`` (a run id) is bound
    before each statement's rows."""
    n = len(flat) // width
    if n == 1:  # a synchronous call's one point
        conn.execute(statements[1], (*head, *flat) if head else flat)
        return
    done = 0
    for rows in _row_sizes(conn, width):
        count = (n - done) // rows
        if not count:
            continue
        span = rows * width
        lo, hi = done * width, (done + count * rows) * width
        if head:
            params = [(*head, *flat[i : i + span]) for i in range(lo, hi, span)]
        else:
            params = [flat[i : i + span] for i in range(lo, hi, span)]
        conn.executemany(statements[rows], params)
        done += count * rows
        if done == n:
            break


def _plain_metrics(seg: Sequence[tuple], run_ids: set, stages: dict) -> bool:
    """True for records that are all well-formed METRIC records of active runs with finite
    values: those need no Python work per point (see _apply_logging)."""
    if set(map(_OP, seg)) != _ONLY_METRIC or set(map(len, seg)) != _METRIC_LEN:
        return False
    if any(stages.get(r) != ACTIVE for r in run_ids):
        return False
    try:
        # One C-level pass: the sum is finite iff every value is (an overflow to inf only
        # sends a batch the general way).
        return math.isfinite(sum(map(_VALUE, seg)))
    except (TypeError, OverflowError, ValueError):
        return False


def _finite_entries(metrics: Sequence) -> bool:
    """True if a BATCH record's (key, value, timestamp, step) entries are well-formed and finite."""
    try:
        return set(map(len, metrics)) == _ENTRY_LEN and math.isfinite(sum(map(_SECOND, metrics)))
    except (TypeError, OverflowError, ValueError):
        return False


def _latest_in_order(records: Sequence[tuple], accepted: Sequence[int]) -> dict[tuple[str, str], tuple]:
    """latest_metrics rows of the accepted records' metrics, taken in logging order as MLflow
    does: a point replaces the (run, key)'s best so far only if its (step, timestamp, value),
    value as stored, is higher."""
    latest: dict[tuple[str, str], tuple] = {}
    get = latest.get
    for k in accepted:
        rec = records[k]
        op, run_id = rec[1], rec[2]
        if op == _METRIC:
            rows: Any = (_sanitized(rec),)
        elif op == _BATCH:
            rows = (_sanitized((ev.VERSION, _METRIC, run_id, *m)) for m in rec[3])
        else:
            continue
        for row in rows:
            lkey = (run_id, row[3])
            best = get(lkey)
            if best is None or (row[6], row[5], row[4]) > (best[6], best[5], best[4]):
                latest[lkey] = row
    return latest


def _latest_of_batches(batch_groups: Sequence[tuple[str, Sequence]]) -> dict[tuple[str, str], tuple]:
    """latest_metrics rows of finite BATCH entries (key, value, timestamp, step), as metric
    records: per (run, key) the highest (step, timestamp, value), the first logged among equals
    (``max`` keeps the first maximum; a later group replaces it only if higher)."""
    best: dict[tuple[str, str], Sequence] = {}
    order = _STEP_TS_VALUE
    for run_id, metrics in batch_groups:
        for key, points in itertools.groupby(metrics, _FIRST):
            top = max(points, key=order)
            lkey = (run_id, key)
            current = best.get(lkey)
            if current is None or order(top) > order(current):
                best[lkey] = top
    return {lkey: (ev.VERSION, _METRIC, lkey[0], *e) for lkey, e in best.items()}


_METRIC, _PARAM, _TAG, _BATCH = ev.METRIC, ev.PARAM, ev.TAG, ev.BATCH
_ONLY_METRIC = {ev.METRIC}
_METRIC_LEN = {7}  # (VERSION, METRIC, run_id, key, value, timestamp, step)
_ENTRY_LEN = {4}  # a BATCH record's metric: (key, value, timestamp, step)
_OP = operator.itemgetter(1)
_RUN_ID = operator.itemgetter(2)
_VALUE = operator.itemgetter(4)
_FIRST = operator.itemgetter(0)
_SECOND = operator.itemgetter(1)
_STEP_TS_VALUE = operator.itemgetter(3, 2, 1)  # of a BATCH entry (key, value, timestamp, step)
_WIDE_BATCH_KEYS = 64
_FEW = 16  # records up to which latest_metrics is worked out in Python
_PK_ORDER = operator.itemgetter(3, 5, 6)  # (key, timestamp, step) of a metric record
_INFS = (math.inf, -math.inf)


def _sanitized(rec: tuple) -> tuple:
    """A metric record with its value as MLflow stores it (NaN -> 0 marked, ±inf -> ±max)."""
    value = rec[4]
    if value != value:
        return (_NAN_MARK, *rec[1:4], 0.0, *rec[5:])
    if value in _INFS:
        return (*rec[:4], MAX_FLOAT if value > 0 else -MAX_FLOAT, *rec[5:])
    return rec


_LIFECYCLE = {
    ev.CREATE_EXPERIMENT: SqliteWriter._create_experiment,
    ev.DELETE_EXPERIMENT: SqliteWriter._delete_experiment,
    ev.RESTORE_EXPERIMENT: SqliteWriter._restore_experiment,
    ev.RENAME_EXPERIMENT: SqliteWriter._rename_experiment,
    ev.SET_EXPERIMENT_TAG: SqliteWriter._set_experiment_tag,
    ev.DELETE_EXPERIMENT_TAG: SqliteWriter._delete_experiment_tag,
    ev.CREATE_RUN: SqliteWriter._create_run,
    ev.UPDATE_RUN: SqliteWriter._update_run,
    ev.DELETE_RUN: SqliteWriter._delete_run,
    ev.RESTORE_RUN: SqliteWriter._restore_run,
    ev.DELETE_TAG: SqliteWriter._delete_tag,
}
