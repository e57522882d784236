"""Logging records (METRIC, PARAM, TAG, BATCH) written in bulk to PostgreSQL through asyncpg:
the counterpart of ``_sqlite/_bulk.py``, with the same rules (``_sql.batch``, ``_sql.rules``)
and the same outcomes.

Metric points go by binary COPY straight into ``metrics``, then ``latest_metrics`` is upserted
with each (run, key)'s best point of the batch, replacing a stored row only with a higher one:
in READ COMMITTED the upsert re-checks against the latest committed row, so processes logging
to one run and key at once lose no update. A point stored already (a replay) or twice in the
batch fails that COPY (MLflow's primary key is its duplicate rule); the records are then
written again the slower way, which applies the rule in SQL: binary COPY into a temporary
table, then one statement moving them into ``metrics`` with ``ON CONFLICT DO NOTHING`` and
upserting ``latest_metrics``. (``INSERT ... ON CONFLICT`` costs about twice what COPY does per
row, and the temporary table's way three more round trips, so the usual batch, with no
duplicate, goes straight.) Params are
inserted first-value-wins and a value lost to a concurrent writer is detected, never silent;
tags are upserted. Everything a run of records writes is in one savepoint: should PostgreSQL
refuse any of it, the records are applied one at a time, each in its own, so a bad record
fails alone. A store failure (``errors.is_store_failure``) goes up untouched.

The lead's writer calls these inside its open transaction, after ``prepare_connection`` once
per new connection.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import operator
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from ... import events as ev
from ...exceptions import INTERNAL_ERROR, MlflowException
from .._sql.batch import FEW, params_wanted, plain_block, plain_metrics, sort_out
from .._sql.rules import LATEST_ORDER, NAN_MARK, latest_of_block, latest_of_columns, points_in_order
from .errors import UNIQUE_VIOLATION, is_statement_error, sqlstate

if TYPE_CHECKING:
    import asyncpg


_POINTS = "asynctrack_points"  # the connection's temporary table of a batch's points
# ``ord``: a point's place in logging order, which breaks ties between points equal in
# LATEST_ORDER that are not the same row (NaN and 0.0, both stored as 0; -0.0 and 0.0).
_CREATE_POINTS = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_POINTS} (key text, value float8, timestamp int8, step int8, "
    "is_nan boolean NOT NULL DEFAULT false, run_uuid text, ord int8) ON COMMIT DELETE ROWS"
)
_PLAIN_COLUMNS = ("key", "value", "timestamp", "step", "run_uuid", "ord")
_ALL_COLUMNS = ("key", "value", "timestamp", "step", "is_nan", "run_uuid", "ord")

_QUOTED_ORDER = [f'"{c}"' for c in LATEST_ORDER]
# The upserts replace a (run, key)'s row only with a point higher in MLflow's order.
_HIGHER = (
    f"({', '.join('excluded.' + c for c in _QUOTED_ORDER)}) > "
    f"({', '.join('latest_metrics.' + c for c in _QUOTED_ORDER)})"
)
_ON_LATEST_CONFLICT = (
    "ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value, "
    f'"timestamp" = excluded."timestamp", step = excluded.step, is_nan = excluded.is_nan WHERE {_HIGHER}'
)
_LATEST_COLUMNS = 'key, value, "timestamp", step, is_nan, run_uuid'
# The batch's points move out of the temporary table (emptied for the next use in this
# transaction) into metrics in the primary key's order: an index leaf is visited once per
# batch, and two transactions storing the same points wait for each other in one order. Among
# points equal under the key (-0.0 and 0.0) the first logged is stored.
_FROM_POINTS = f"WITH pts AS MATERIALIZED (DELETE FROM pg_temp.{_POINTS} RETURNING *) "
_STORE_POINTS = (
    'INSERT INTO metrics (key, value, "timestamp", run_uuid, step, is_nan) '
    'SELECT key, value, "timestamp", run_uuid, step, is_nan FROM pts '
    'ORDER BY key, "timestamp", step, run_uuid, value, is_nan, ord ON CONFLICT DO NOTHING'
)
# ... and each (run, key)'s best point (the first logged among equals) is upserted, in
# (run_uuid, key) order by code point (collation "C", Python's order of str): transactions
# updating the same rows, whichever way, lock them in one order.
_MOVE_WITH_LATEST = (
    f"{_FROM_POINTS}, stored AS ({_STORE_POINTS}) INSERT INTO latest_metrics ({_LATEST_COLUMNS}) "
    f'SELECT DISTINCT ON (run_uuid COLLATE "C", key COLLATE "C") {_LATEST_COLUMNS} FROM pts '
    f"ORDER BY run_uuid COLLATE \"C\", key COLLATE \"C\", {', '.join(c + ' DESC' for c in _QUOTED_ORDER)}, ord "
    f"{_ON_LATEST_CONFLICT}"
)
_UPSERT_LATEST = (
    f"INSERT INTO latest_metrics ({_LATEST_COLUMNS}) "
    "SELECT * FROM unnest($1::text[], $2::float8[], $3::int8[], $4::int8[], $5::boolean[], $6::text[]) "
    f"{_ON_LATEST_CONFLICT}"
)
_STORED_COLUMNS = _ALL_COLUMNS[:-1]  # a point of ``_apply`` as COPY writes it into metrics
# A few points stored straight (see _store_straight) and latest_metrics upserted, in one statement.
_INSERT_WITH_LATEST = (
    'WITH stored AS (INSERT INTO metrics (key, value, "timestamp", step, is_nan, run_uuid) '
    "SELECT * FROM unnest($1::text[], $2::float8[], $3::int8[], $4::int8[], $5::boolean[], $6::text[])) "
    f"INSERT INTO latest_metrics ({_LATEST_COLUMNS}) "
    "SELECT * FROM unnest($7::text[], $8::float8[], $9::int8[], $10::int8[], $11::boolean[], $12::text[]) "
    f"{_ON_LATEST_CONFLICT}"
)
# One point (a synchronous log_metric) checked, stored and upserted by one statement, one round
# trip where the general way takes two: nothing is written unless its run is active, and the
# count of active runs found (0 or 1) says which.
_ONE_POINT = (
    "WITH ok AS (SELECT run_uuid FROM runs WHERE run_uuid = $5::text AND lifecycle_stage = 'active'), "
    'stored AS (INSERT INTO metrics (key, value, "timestamp", step, is_nan, run_uuid) '
    "SELECT $1::text, $2::float8, $3::int8, $4::int8, false, run_uuid FROM ok), "
    f"latest AS (INSERT INTO latest_metrics ({_LATEST_COLUMNS}) "
    f"SELECT $1::text, $2::float8, $3::int8, $4::int8, false, run_uuid FROM ok {_ON_LATEST_CONFLICT}) "
    "SELECT count(*) FROM ok"
)
_RUN_STAGES = "SELECT run_uuid, lifecycle_stage FROM runs WHERE run_uuid = ANY($1::text[])"
_EXISTING_PARAMS = (
    "SELECT p.run_uuid, p.key, p.value FROM params p "
    "JOIN unnest($1::text[], $2::text[]) AS w(run_uuid, key) ON p.run_uuid = w.run_uuid AND p.key = w.key"
)
_INSERT_PARAMS = (
    "INSERT INTO params (key, value, run_uuid) SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) "
    "ON CONFLICT DO NOTHING RETURNING run_uuid, key"
)
_UPSERT_TAGS = (
    "INSERT INTO tags (key, value, run_uuid) SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) "
    "ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value"
)
_SET_RUN_NAMES = (
    "UPDATE runs SET name = w.name FROM unnest($1::text[], $2::text[]) AS w(name, run_uuid) "
    "WHERE runs.run_uuid = w.run_uuid"
)

_RUN_ID = operator.itemgetter(2)
_RACE_ATTEMPTS = 100  # each retry knows one more conflicting param: far more than ever needed


class _LostRace(Exception):
    """A param this batch inserted was inserted first, with another value, by a concurrent
    transaction: the savepoint is rolled back and the records sorted out again, seeing it."""


class Redo(Exception):
    """A batch written without a savepoint of its own (it was the whole transaction, see
    ``apply_logging``'s ``savepoint``) needs one: a record was refused, a param lost a race or
    a point is a duplicate. The writer rolls the transaction back and applies the batch again,
    the careful way."""


class _Duplicate(Exception):
    """A point of the batch is stored already, or is in it twice: the straight COPY into
    metrics failed, the savepoint is rolled back and the records written the way that applies
    the duplicate rule."""


async def prepare_connection(conn: asyncpg.Connection) -> None:
    """Once per new connection: the temporary table of a batch's points (emptied at every
    commit, and by each use)."""
    await conn.execute(_CREATE_POINTS)


# -- what the rules need from the database ---------------------------------------------------


async def run_stages(conn: asyncpg.Connection, run_ids: set) -> dict[str, str]:
    """run id -> lifecycle stage, of those of ``run_ids`` that exist (a run id that is not a
    string names no run)."""
    ids = [r for r in run_ids if type(r) is str]
    return dict(await conn.fetch(_RUN_STAGES, ids)) if ids else {}


async def existing_params(conn: asyncpg.Connection, wanted: dict[str, set]) -> dict[tuple[str, str], str]:
    """The stored values of just the params a batch logs, by their primary key (key,
    run_uuid): a run's 5,000th param costs what its first did."""
    runs: list[str] = []
    keys: list[str] = []
    for run_id, names in wanted.items():
        if type(run_id) is not str:
            continue
        for key in names:
            if type(key) is str:
                runs.append(run_id)
                keys.append(key)
    if not keys:
        return {}
    return {(r, k): v for r, k, v in await conn.fetch(_EXISTING_PARAMS, runs, keys)}


# -- applying a run of logging records -------------------------------------------------------


async def apply_logging(
    conn: asyncpg.Connection,
    records: Sequence[tuple],
    start: int,
    stop: int,
    outcomes: list,
    straight: bool = True,
    savepoint: bool = True,
) -> None:
    """Check ``records[start:stop]`` (all logging records) against the database and write
    what MLflow's rules accept, in one savepoint; each record's outcome goes to ``outcomes``
    (same index): None if stored, else its MlflowException. ``straight``: try the straight
    COPY into metrics first (False when the points are known to hold a duplicate).
    ``savepoint=False``: the records are the writer's whole transaction, whose rollback
    serves as their savepoint (two round trips fewer, what a synchronous call waits for):
    anything that needs one raises ``Redo`` instead."""
    accepted: list[int] = []
    if not savepoint:
        with _redo_instead():
            await _apply(conn, records, start, stop, outcomes, accepted, straight)
        return
    for _ in range(_RACE_ATTEMPTS):
        accepted.clear()
        try:
            async with conn.transaction():
                await _apply(conn, records, start, stop, outcomes, accepted, straight)
            return
        except _LostRace:
            outcomes[start:stop] = [None] * (stop - start)
        except _Duplicate:
            outcomes[start:stop] = [None] * (stop - start)
            straight = False
        except Exception as exc:  # noqa: BLE001 - sorted by is_statement_error
            if not is_statement_error(exc):
                raise
            await _isolate(conn, records, start, stop, outcomes, accepted, exc)
            return
    raise RuntimeError("params kept being inserted concurrently with other values")  # pragma: no cover


async def _isolate(conn, records, start: int, stop: int, outcomes: list, accepted: list, exc) -> None:
    """PostgreSQL refused something of ``records[start:stop]``: apply the records it was
    about (those accepted by the rules; all of them if it was a read) one at a time, each in
    its own savepoint, so that only the one(s) at fault fail."""
    if stop - start == 1:
        outcomes[start] = MlflowException(f"PostgreSQL error: {exc}", INTERNAL_ERROR)
        return
    for k in accepted or range(start, stop):
        outcomes[k] = None
        await apply_logging(conn, records, k, k + 1, outcomes)


async def _apply(conn, records, start: int, stop: int, outcomes: list, accepted_out: list, straight: bool) -> None:
    seg = records[start:stop] if start or stop != len(records) else records
    run_ids = set(map(_RUN_ID, seg))
    stages = await run_stages(conn, run_ids)
    if len(seg) > FEW and plain_metrics(seg, run_ids, stages):
        # Finite metric points of active runs as records (a retry, a replay): laid flat and
        # written as the writer's blocks are.
        accepted_out.extend(range(start, stop))
        fields = tuple(itertools.chain.from_iterable(seg))
        if straight:
            await _copy_plain(conn, fields)
        else:
            await _write_plain(conn, fields)
        return
    wanted = params_wanted(records, start, stop)
    before = await existing_params(conn, wanted) if wanted else {}
    got = sort_out(records, start, stop, stages, dict(before), outcomes)
    accepted_out.extend(got.accepted)
    if not got.accepted:
        return
    metric_rows, batch_groups = got.metric_rows, got.batch_groups
    if metric_rows and batch_groups:
        # Records and log_batch entries together: their rows no longer say in which order
        # they were logged, which decides between equal points; taken again in that order.
        metric_rows, batch_groups = list(points_in_order(records, got.accepted)), ()
    if len(batch_groups) == 1 and not metric_rows and straight:  # one log_batch's points
        await _copy_entries(conn, *batch_groups[0])
    elif metric_rows or batch_groups:
        points: list[tuple] = []
        add = points.append
        ordinal = itertools.count()
        for r in metric_rows:  # stored form: a NaN's VERSION is NAN_MARK
            add((r[3], r[4], r[5], r[6], r[0] == NAN_MARK, r[2], next(ordinal)))
        for run_id, entries in batch_groups:
            points.extend(
                (key, value, ts, step, False, run_id, i) for (key, value, ts, step), i in zip(entries, ordinal)
            )
        if straight:
            await _copy_points(conn, points)
        else:
            await conn.copy_records_to_table(_POINTS, records=points, columns=_ALL_COLUMNS)
            await conn.execute(_MOVE_WITH_LATEST)
    if got.param_rows:
        await _insert_params(conn, got.param_rows, before)
    if got.tag_rows:
        tags = {(run_id, key): value for key, value, run_id in got.tag_rows}  # the last logged wins
        order = sorted(tags)
        await conn.execute(_UPSERT_TAGS, [k for _, k in order], [tags[p] for p in order], [r for r, _ in order])
    if got.name_rows:
        names = {run_id: name for name, run_id in got.name_rows}
        order = sorted(names)
        await conn.execute(_SET_RUN_NAMES, [names[r] for r in order], order)


async def _insert_params(conn, param_rows: list[tuple], before: dict) -> None:
    """Insert params first-value-wins. A key that was not there when read but is not
    inserted now was inserted meanwhile by a concurrent transaction (ON CONFLICT waited for it
    to commit): with the same value that is fine, with another it is MLflow's conflict, which
    a retry (raising _LostRace) sees and reports for the record(s) that logged it."""
    ours = {(run_id, key): value for key, value, run_id in param_rows}
    order = sorted(ours)
    inserted = await conn.fetch(_INSERT_PARAMS, [k for _, k in order], [ours[p] for p in order], [r for r, _ in order])
    missing = ours.keys() - before.keys() - {(r, k) for r, k in inserted}
    if not missing:
        return
    stored = await existing_params(conn, _by_run(missing))
    if any(stored.get(p) != ours[p] for p in missing):
        raise _LostRace


def _by_run(pairs) -> dict[str, set]:
    out: dict[str, set] = {}
    for run_id, key in pairs:
        out.setdefault(run_id, set()).add(key)
    return out


# -- metric points decoded flat --------------------------------------------------------------


async def apply_metric_block(
    conn: asyncpg.Connection, block: ev.MetricBlock, outcomes: list, savepoint: bool = True
) -> None:
    """A batch of metric points only, decoded flat (see events.MetricBlock): finite points
    of active runs (the common case) are copied from the flat fields, with no Python work per
    point; anything else goes the general way, record by record. ``savepoint``: as
    ``apply_logging``'s."""
    fields = block.fields
    run_ids = set(fields[2::7])
    stages = await run_stages(conn, run_ids)
    if plain_block(fields, run_ids, stages):
        if not savepoint:
            with _redo_instead():
                await _copy_plain(conn, fields)
            return
        try:
            async with conn.transaction():
                await _copy_plain(conn, fields)
            return
        except _Duplicate:
            # a point stored already (a replay) or twice in the block: the way that applies
            # the duplicate rule
            await apply_logging(conn, list(block), 0, len(block), outcomes, straight=False)
            return
        except Exception as exc:  # noqa: BLE001 - sorted by is_statement_error
            # a value PostgreSQL refuses: the general way finds out, record by record
            if not is_statement_error(exc):
                raise
    await apply_logging(conn, list(block), 0, len(block), outcomes, savepoint=savepoint)


async def store_one_point(conn: asyncpg.Connection, record: tuple) -> bool:
    """A batch of one METRIC record (a synchronous log_metric) written with no savepoint
    (see ``apply_logging``), by one statement when its value is finite: True if stored; False
    if nothing was written because its run is not active or not there, or the value is not
    finite (the general way then applies the rules). Raises ``Redo`` as ``apply_logging``."""
    if len(record) != 7 or record[1] != ev.METRIC:
        return False
    _, _, run_id, key, value, ts, step = record
    try:
        if not math.isfinite(value):
            return False
    except TypeError:
        return False
    with _redo_instead():  # a duplicate or a refused value: the careful way sorts it out
        return bool(await conn.fetchval(_ONE_POINT, key, value, ts, step, run_id))


@contextlib.contextmanager
def _redo_instead() -> Iterator[None]:
    """Around writes made with no savepoint: what would roll back to one raises ``Redo``."""
    try:
        yield
    except (_LostRace, _Duplicate) as exc:
        raise Redo from exc
    except Exception as exc:  # noqa: BLE001 - sorted by is_statement_error
        if is_statement_error(exc):
            raise Redo from exc
        raise


async def _copy_plain(conn, fields: tuple) -> None:
    """Finite points of active runs, laid flat, stored straight into metrics (their columns
    are the flat fields' slices: no Python work per point): the usual block holds no point
    stored already, and then costs what a COPY into metrics does (the temporary table's way,
    which applies the duplicate rule in SQL, took twice as long). A duplicate fails the COPY
    (unique violation), and the caller goes that way instead. latest_metrics: each (run,
    key)'s best point."""
    latest = latest_of_block(fields)
    rows = [latest[p] for p in sorted(latest)]  # in (run, key) order: see _MOVE_WITH_LATEST
    n = len(fields) // 7
    await _store_straight(
        conn,
        (fields[3::7], fields[4::7], fields[5::7], fields[6::7], (False,) * n, fields[2::7]),
        ([r[3] for r in rows], [r[4] for r in rows], [r[5] for r in rows], [r[6] for r in rows],
         [False] * len(rows), [r[2] for r in rows]),
    )


async def _copy_points(conn, points: list[tuple]) -> None:
    """``_apply``'s points (key, value, timestamp, step, is_nan, run_uuid, ord), in logging
    order, stored straight into metrics; latest_metrics: each (run, key)'s highest point in
    MLflow's order, the first logged among equals (rules.latest_of_columns)."""
    key, value, ts, step, is_nan, run, order = zip(*points)
    best = latest_of_columns(run, key, step, ts, value, order, points)
    await _store_straight(conn, (key, value, ts, step, is_nan, run), tuple(map(list, zip(*best)))[:6])


async def _copy_entries(conn, run_id: str, entries: Sequence[tuple]) -> None:
    """One BATCH record's finite points, ``(key, value, timestamp, step)`` entries (a large
    one's sorted by key, each key's in logging order), stored straight: each COPY row is an
    entry and one constant tail joined in C, where the general way builds ordered points, then
    unzips and zips them again (a third of the Python a synchronous log_batch paid)."""
    tail = (False, run_id)
    # Entries are tuples: the writer decodes records with use_list=False (events.decode_many),
    # and tuple + tuple is 3-5x cheaper than (*entry, False, run_id).
    rows = [e + tail for e in entries]
    n = len(rows)
    key, value, ts, step = zip(*entries)
    best = latest_of_columns((run_id,) * n, key, step, ts, value, range(n), rows)
    columns = (key, value, ts, step, (False,) * n, (run_id,) * n)
    await _store_straight(conn, columns, tuple(map(list, zip(*best))), rows)


async def _store_straight(conn, columns: tuple, latest: tuple, rows: Sequence[tuple] | None = None) -> None:
    """Points (``columns``: key, value, timestamp, step, is_nan, run_uuid, each a sequence)
    inserted into metrics with no duplicate rule, and ``latest`` (the same columns, one row a
    (run, key), in (run, key) order) upserted into latest_metrics. A few points go by one
    statement (one round trip, where COPY takes two and the upsert a third: what a synchronous
    call waits for), more by binary COPY (of ``rows``, the same points as tuples, when the
    caller has them). A duplicate point raises _Duplicate."""
    try:
        if len(columns[0]) <= FEW:
            await conn.execute(_INSERT_WITH_LATEST, *map(list, columns), *latest)
        else:
            records = zip(*columns) if rows is None else rows
            await conn.copy_records_to_table("metrics", records=records, columns=_STORED_COLUMNS)
            await conn.execute(_UPSERT_LATEST, *latest)
    except Exception as exc:
        if sqlstate(exc) == UNIQUE_VIOLATION:
            raise _Duplicate from exc
        raise


async def _write_plain(conn, f: tuple) -> None:
    """Finite metric points of active runs, laid flat (see events.MetricBlock), by the
    temporary table: COPY records built by zip over the flat fields' slices, then moved into
    metrics and latest_metrics by one statement that applies the duplicate rule."""
    points = zip(f[3::7], f[4::7], f[5::7], f[6::7], f[2::7], itertools.count())
    await conn.copy_records_to_table(_POINTS, records=points, columns=_PLAIN_COLUMNS)
    await conn.execute(_MOVE_WITH_LATEST)
