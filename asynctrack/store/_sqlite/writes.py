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

import asyncio
import itertools
import math
import operator
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

import aiosqlite

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

RUN_NAME_TAG = "mlflow.runName"
MAX_FLOAT = 1.7976931348623157e308
ACTIVE = LifecycleStage.ACTIVE
DELETED = LifecycleStage.DELETED
_CHUNK = 500  # bound parameters per IN (...) query



def _metric_insert(rows: int, is_nan: int) -> str:
    """An INSERT bound to ``rows`` metric records laid end to end, each as it is:
    (VERSION, METRIC, run_id, key, value, timestamp, step)."""
    values = ", ".join(
        f"(?{7 * j + 4}, ?{7 * j + 5}, ?{7 * j + 6}, ?{7 * j + 7}, {is_nan}, ?{7 * j + 3})"
        for j in range(rows)
    )
    return f"INSERT OR IGNORE INTO metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES {values}"


# Rows per multi-row INSERT: one sqlite3_step (and one GIL hand-off) per 32 points instead of
# one per point; 224 bound parameters stay under old SQLite's limit of 999.
_ROWS_PER_INSERT = 32
_INSERT_METRIC = _metric_insert(1, 0)
_INSERT_METRICS = _metric_insert(_ROWS_PER_INSERT, 0)
_INSERT_NAN_METRIC = _metric_insert(1, 1)
_UPSERT_LATEST = (
    "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key, run_uuid) DO UPDATE SET "
    "value = excluded.value, timestamp = excluded.timestamp, step = excluded.step, "
    "is_nan = excluded.is_nan WHERE (excluded.step, excluded.timestamp, excluded.value) > "
    "(latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)"
)
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

    async def open(self) -> None:
        """Open the existing file (never create one: the store did, and a file that vanished
        must not come back empty) and check it is still MLflow's at our revision."""
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
        if not hasattr(conn, "_execute"):
            await conn.close()
            raise MlflowException(
                f"aiosqlite {aiosqlite.__version__} lacks Connection._execute, which asynctrack "
                "uses to run a whole batch in one hop; install a supported aiosqlite (>=0.20)."
            )
        try:
            for pragma in PRAGMAS:
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
        except StoreUnavailable:
            await self.close()
            raise
        except sqlite3.Error as exc:
            if not is_store_failure(exc):
                raise
            await self.close()
            raise StoreUnavailable(f"cannot write {self._path}: {exc}") from exc

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
            if conn is not None:
                conn.close()
            try:
                conn = connect(self._path, check_same_thread=False)
            except sqlite3.Error:
                return False
            local.conn, local.generation = conn, self._generation
        try:
            outcomes = retry_sync(lambda: self._transaction_on(conn, records))
        except Exception as exc:  # noqa: BLE001 - the caller gets it (KeyboardInterrupt goes up)
            if isinstance(exc, sqlite3.Error) and is_store_failure(exc):
                exc = StoreUnavailable(f"cannot write {self._path}: {exc}")
            elif isinstance(exc, MlflowException) and exc.error_code == "TEMPORARILY_UNAVAILABLE":
                exc = StoreUnavailable(str(exc))
            if isinstance(exc, StoreUnavailable):
                local.conn = None
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
            conn.execute("BEGIN IMMEDIATE")
            try:
                outcomes = self._apply_all(conn, records)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
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

    def _apply_all(self, conn: sqlite3.Connection, records: Sequence[tuple]) -> list[Any]:
        outcomes: list[Any] = [None] * len(records)
        logging_ops = ev.LOGGING_OPS
        i, n = 0, len(records)
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
        run_ids = {records[k][2] for k in range(start, stop)}
        stages = self._run_stages(conn, run_ids)
        param_runs = {records[k][2] for k in range(start, stop) if records[k][1] in _PARAM_OPS}
        params = self._existing_params(conn, param_runs) if param_runs else {}

        # A finite metric record (VERSION, METRIC, run_id, key, value, timestamp, step) is bound
        # as it is (see _INSERT_METRIC): the hot loop below allocates nothing for it.
        metric_rows: list[tuple] = []
        nan_rows: list[tuple] = []
        latest: dict[tuple[str, str], tuple] = {}
        param_rows: list[tuple] = []
        tag_rows: list[tuple] = []
        name_rows: list[tuple] = []
        accepted: list[int] = []
        add_metric = metric_rows.append
        latest_get = latest.get
        for k in range(start, stop):
            rec = records[k]
            op, run_id = rec[1], rec[2]
            stage = stages.get(run_id)
            if stage != ACTIVE:
                outcomes[k] = run_not_found(run_id) if stage is None else run_not_active(run_id, stage)
                continue
            if op == _METRIC:
                value = rec[4]
                if value != value or value in _INFS:
                    rec = _sanitized(rec)
                    (nan_rows if rec[0] == _NAN_MARK else metric_rows).append(rec)
                else:
                    add_metric(rec)
                lkey = (run_id, rec[3])
                best = latest_get(lkey)
                if best is None or (rec[6], rec[5], rec[4]) > (best[6], best[5], best[4]):
                    latest[lkey] = rec
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
                for key, value, ts, step in metrics:
                    row = _sanitized((ev.VERSION, _METRIC, run_id, key, value, ts, step))
                    (nan_rows if row[0] == _NAN_MARK else metric_rows).append(row)
                    lkey = (run_id, key)
                    best = latest_get(lkey)
                    if best is None or (row[6], row[5], row[4]) > (best[6], best[5], best[4]):
                        latest[lkey] = row
                for key, value in tags:
                    tag_rows.append((key, value, run_id))
                    if key == RUN_NAME_TAG:
                        name_rows.append((value, run_id))
            accepted.append(k)

        if not accepted:
            return
        conn.execute("SAVEPOINT bulk")
        try:
            if metric_rows:
                if len(latest) > _WIDE_BATCH_KEYS:
                    # Many keys at once (a model's per-layer metrics): insert in the primary
                    # key's order, so that each index leaf is filled in one visit per batch
                    # instead of a visit per point across a thousand pages.
                    metric_rows.sort(key=_PK_ORDER)
                _insert_metrics(conn, metric_rows)
            if nan_rows:
                conn.executemany(_INSERT_NAN_METRIC, nan_rows)
            if latest:
                conn.executemany(
                    _UPSERT_LATEST,
                    [(r[3], r[4], r[5], r[6], int(r[0] == _NAN_MARK), r[2]) for r in latest.values()],
                )
            if param_rows:
                conn.executemany(_INSERT_PARAM, param_rows)
            if tag_rows:
                conn.executemany(_UPSERT_TAG, tag_rows)
            if name_rows:
                conn.executemany(_SET_RUN_NAME, name_rows)
        except sqlite3.Error as exc:
            if is_store_failure(exc):
                raise
            # Something the checks above did not foresee: find the record(s) at fault by
            # applying the accepted ones one at a time.
            conn.execute("ROLLBACK TO bulk")
            conn.execute("RELEASE bulk")
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

    def _existing_params(self, conn, run_ids: set[str]) -> dict[tuple[str, str], str]:
        params: dict[tuple[str, str], str] = {}
        ids = list(run_ids)
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for run_id, key, value in conn.execute(
                f"SELECT run_uuid, key, value FROM params WHERE run_uuid IN ({marks})", chunk
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


def _insert_metrics(conn: sqlite3.Connection, records: list[tuple]) -> None:
    n = len(records)
    full = n - n % _ROWS_PER_INSERT
    if full:
        chain, r = itertools.chain.from_iterable, _ROWS_PER_INSERT
        conn.executemany(_INSERT_METRICS, [tuple(chain(records[i : i + r])) for i in range(0, full, r)])
    if full < n:
        conn.executemany(_INSERT_METRIC, records[full:])


_METRIC, _PARAM, _TAG = ev.METRIC, ev.PARAM, ev.TAG
_WIDE_BATCH_KEYS = 64
_PK_ORDER = operator.itemgetter(3, 5, 6)  # (key, timestamp, step) of a metric record
_PARAM_OPS = (ev.PARAM, ev.BATCH)
_INFS = (math.inf, -math.inf)
_NAN_MARK = -1  # replaces VERSION in a sanitized NaN record: "store with is_nan = 1"


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
