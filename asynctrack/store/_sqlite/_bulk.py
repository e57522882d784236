"""Logging records written in bulk: SQLite's statements for metrics, params and tags, and the
multi-row mechanics that bind a batch in as few statements as this SQLite allows.

A run of consecutive logging records is checked against the database at once (run stages,
the params it logs that are already there) and put through MLflow's rules (``_sql.batch``);
what they let through is written with one multi-row INSERT or ``executemany`` per table, in a
savepoint. Metric points of active runs with finite values, the usual batch, take no Python
work per point: bound flat, with ``latest_metrics`` worked out in SQL.
"""

from __future__ import annotations

import itertools
import operator
import sqlite3
from collections.abc import Sequence
from typing import Any

from ... import events as ev
from ...exceptions import INTERNAL_ERROR, MlflowException
from .._sql.batch import FEW, params_wanted, plain_block, plain_metrics, sort_out
from .._sql.lifecycle import UPSERT_TAG
from .._sql.rules import LATEST_ORDER, NAN_MARK, latest_in_order, latest_of_batches
from .connection import is_store_failure, isolated

_CHUNK = 500  # bound parameters per IN (...) query
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# INSERT OR IGNORE: a point already stored (MLflow's primary key, rules.POINT_IDENTITY) is not
# stored again.
_INSERT_METRIC_COLUMNS = "INSERT OR IGNORE INTO metrics (key, value, timestamp, step, is_nan, run_uuid) "


def _metric_insert(rows: int) -> str:
    """An INSERT bound to ``rows`` metric records laid end to end, each as it is:
    (VERSION, METRIC, run_id, key, value, timestamp, step), or in its stored form (a NaN's
    VERSION replaced by NAN_MARK, which sets is_nan; see rules.stored_metric).

    The records are bound in their own order to plain ``?`` placeholders of a VALUES table and
    picked apart by its columns: numbered ``?NNN`` placeholders bound from a sequence would do
    the same, but Python 3.12 runs its deprecation machinery for each of them (a 500-row
    statement ran 10-20x slower) and 3.14 refuses them."""
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * rows)
    return (
        f"{_INSERT_METRIC_COLUMNS}SELECT column4, column5, column6, column7, column1 = {NAN_MARK}, "
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
# The upserts replace a (run, key)'s row only with a point higher in MLflow's order.
_HIGHER = (
    f"({', '.join('excluded.' + c for c in LATEST_ORDER)}) > "
    f"({', '.join('latest_metrics.' + c for c in LATEST_ORDER)})"
)
_UPSERT_LATEST = (
    "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key, run_uuid) DO UPDATE SET "
    "value = excluded.value, timestamp = excluded.timestamp, step = excluded.step, "
    f"is_nan = excluded.is_nan WHERE {_HIGHER}"
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
    f"is_nan = excluded.is_nan WHERE {_HIGHER}"
)
_MAX_ROWID = "SELECT max(rowid) FROM metrics"
_INSERT_PARAM = "INSERT OR IGNORE INTO params (key, value, run_uuid) VALUES (?, ?, ?)"
_SET_RUN_NAME = "UPDATE runs SET name = ? WHERE run_uuid = ?"

_RUN_ID = operator.itemgetter(2)
_FIRST = operator.itemgetter(0)
_PK_ORDER = operator.itemgetter(3, 5, 6)  # (key, timestamp, step) of a metric record
_WIDE_BATCH_KEYS = 64


# -- statement sizes -------------------------------------------------------------------------


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


# -- what the rules need from the database ---------------------------------------------------


def run_stages(conn: sqlite3.Connection, run_ids: set[str]) -> dict[str, str]:
    """run id -> lifecycle stage, of those of ``run_ids`` that exist."""
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


def existing_params(conn: sqlite3.Connection, wanted: dict[str, set[str]]) -> dict[tuple[str, str], str]:
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


# -- applying a run of logging records -------------------------------------------------------


def apply_logging(
    conn: sqlite3.Connection, records: Sequence[tuple], start: int, stop: int, outcomes: list
) -> None:
    """Check ``records[start:stop]`` (all logging records) against the database, then write
    what the rules accept in bulk; each record's outcome goes to ``outcomes`` (same index)."""
    seg = records[start:stop] if start or stop != len(records) else records
    run_ids = set(map(_RUN_ID, seg))
    stages = run_stages(conn, run_ids)
    if len(seg) > FEW and plain_metrics(seg, run_ids, stages):
        # Finite metric points of active runs as records (a retry, a replay, a batch with a
        # synchronous record in it): laid flat, and written as the writer's blocks are.
        block = ev.MetricBlock(tuple(itertools.chain.from_iterable(seg)))
        _write_plain_metrics(conn, block, run_ids, records, range(start, stop), outcomes)
        return
    wanted = params_wanted(records, start, stop)
    params = existing_params(conn, wanted) if wanted else {}
    got = sort_out(records, start, stop, stages, params, outcomes)
    accepted = got.accepted
    if not accepted:
        return
    metric_rows, batch_groups, pairs = got.metric_rows, got.batch_groups, got.pairs
    latest: Any
    if got.nan_seen or (len(metric_rows) <= FEW and not batch_groups):
        # latest_metrics in Python, in logging order: among points equal in (step,
        # timestamp, value) (NaN is stored as 0) MLflow keeps the first logged one. (A few
        # records, a synchronous call's, are cheaper so than with a query per key.)
        latest = latest_in_order(records, accepted)
    elif not metric_rows:  # log_batch calls only: their best points found at C speed
        latest = latest_of_batches(batch_groups)
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
    _write_bulk(conn, records, accepted, outcomes, inserts, (got.param_rows, got.tag_rows, got.name_rows), latest)


def apply_metric_block(conn: sqlite3.Connection, block: ev.MetricBlock, outcomes: list) -> None:
    """A batch of metric points only, decoded flat (see events.MetricBlock): finite points
    of active runs (the common case) are written from the flat fields, anything else goes
    the general way, record by record."""
    fields = block.fields
    run_ids = set(fields[2::7])
    stages = run_stages(conn, run_ids)
    if plain_block(fields, run_ids, stages):
        _write_plain_metrics(conn, block, run_ids, block, range(len(block)), outcomes)
    else:
        apply_logging(conn, list(block), 0, len(block), outcomes)


def _write_plain_metrics(conn, block: ev.MetricBlock, run_ids: set, records, accepted, outcomes) -> None:
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
    if len(pairs) > _WIDE_BATCH_KEYS:  # in the primary key's order (see apply_logging)
        rows = sorted(block, key=_PK_ORDER)
        inserts = [(_INSERT_METRICS, list(itertools.chain.from_iterable(rows)), 7, ())]
    elif len(run_ids) == 1:
        flat: list = [None] * (4 * n)
        flat[0::4], flat[1::4], flat[2::4], flat[3::4] = fields[3::7], fields[4::7], fields[5::7], fields[6::7]
        inserts = [(_INSERT_BATCH_METRICS, flat, 4, (run_id,))]
    else:
        inserts = [(_INSERT_METRICS, fields, 7, ())]
    _write_bulk(conn, records, accepted, outcomes, inserts, (), pairs)


def _write_bulk(conn, records, accepted, outcomes, inserts, others, latest) -> None:
    """Write what apply_logging accepted, in one savepoint; should SQLite refuse any of it,
    find the record(s) at fault by applying the accepted ones one at a time. ``inserts``:
    the metric rows, as (statements by rows, parameters laid end to end, parameters per
    row, parameters bound before each statement's rows) for _insert_rows; ``latest``: the
    latest_metrics rows by (run, key) (a dict), or the (run, key) pairs to find them for."""
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
                [(r[3], r[4], r[5], r[6], int(r[0] == NAN_MARK), r[2]) for r in latest.values()],
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
                conn.executemany(UPSERT_TAG, tag_rows)
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
            outcomes[k] = isolated(conn, _apply_logging_one, records[k])
        return
    conn.execute("RELEASE bulk")


def _apply_logging_one(conn, rec: tuple) -> None:
    outcomes: list[Any] = [None]
    apply_logging(conn, [rec], 0, 1, outcomes)
    if isinstance(outcomes[0], MlflowException):
        raise outcomes[0]
