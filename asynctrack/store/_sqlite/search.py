"""search_runs / search_experiments on SQLite, as MLflow 3.18's SQLAlchemy store answers them.

The query is the shared one (``_sql/search_sql.py``) in SQLite's spelling (:class:`SqliteDialect`);
this module runs it: it selects the rowids of a page of runs in MLflow's order, then loads the
page's runs, params and tags (one query) and metrics (another) by rowid instead of one query per
run.

SQLite's spelling: ``LIKE`` under MLflow's ``PRAGMA case_sensitive_like = true`` is the same
match as ``GLOB`` on the translated pattern; ``ILIKE`` is ``lower(x) LIKE lower(y)`` in both;
a list is one bound JSON array read by ``json_each``; CROSS JOIN fixes the join order.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from itertools import groupby
from operator import itemgetter

from ..._gc import paused_gc
from ...entities import Experiment, Run, RunData, RunInfo
from .._sql import search_sql
from .._sql.search_sql import Dialect, compile_run_search, create_page_token
from .._sql.reads import add_inputs_and_outputs, run_info_from_row


def like_to_glob(pattern: str) -> str:
    """A LIKE pattern (``%``, ``_``, no escape character) as the GLOB pattern that matches the
    same strings case-sensitively, which is what LIKE does under case_sensitive_like."""
    out = []
    for ch in pattern:
        if ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


class SqliteDialect(Dialect):
    """SQLite's spelling of the shared search query."""

    join = "CROSS JOIN"  # SQLite's fixed join order (see search_sql._run_from_sql)

    def like(self, column: str, pattern: str, args: list) -> str:
        args.append(like_to_glob(pattern))
        return f"{column} GLOB ?"

    def ilike(self, column: str, pattern: str, args: list) -> str:
        args.append(like_to_glob(pattern))
        return f"lower({column}) GLOB lower(?)"

    def in_list(self, column: str, values: Sequence, args: list) -> str:
        args.append(json.dumps(list(values)))
        return f"{column} IN (SELECT value FROM json_each(?))"


SQLITE = SqliteDialect()


@contextlib.contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction around a search's queries: the page and its params, metrics and tags
    come from the same snapshot of the file, whatever writers commit meanwhile (WAL)."""
    if conn.in_transaction:  # already inside one: it is the snapshot
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")  # nothing was written: ending the read is all it does


def search_runs(
    conn: sqlite3.Connection,
    experiment_ids: list,
    filter_string: str | None,
    run_view_type: int,
    max_results: int | None,
    order_by: list[str] | None,
    page_token: str | None,
) -> tuple[list[Run], str | None]:
    """One page of runs and the next page's token (None on the last page), as MLflow."""
    query = compile_run_search(
        SQLITE, "r.rowid", experiment_ids, filter_string, run_view_type, max_results, order_by,
        page_token,
    )
    offset = query.offset
    # Only the runs' rowids, in order, and no LIMIT: with a LIMIT SQLite keeps a top-N b-tree,
    # one insertion per matching run (3x the cost of its plain sorter here); the sorted ids
    # are read off the statement up to the page's end instead (skipping a later page's offset
    # in Python costs a few hundred ns a run). The page's runs are then read by rowid (an
    # integer b-tree search instead of one in the run_uuid index, then the table).
    with _snapshot(conn):
        cursor = conn.execute(query.sql, query.args)
        try:
            if offset:
                skipped = cursor.fetchmany(offset)
                del skipped
            if max_results is None:
                ids = cursor.fetchall()
            else:
                ids = cursor.fetchmany(max_results + 1)
        finally:
            cursor.close()  # resets the statement: its sorter is freed now
        token = None
        if max_results is not None and len(ids) == max_results + 1:
            token = create_page_token(offset + max_results)
            del ids[max_results:]
        return _load_page(conn, [row[0] for row in ids]), token


def _load_page(conn: sqlite3.Connection, rowids: list[int]) -> list[Run]:
    """The runs of ``rowids`` (of table ``runs``), in that order, with their metrics, params
    and tags read in two batched queries and kept raw: each run's RunData builds its entities
    when first read (``RunData._from_raw``), so a page of 1,000 runs costs the rows, not
    25,000 entities nobody may look at.

    A run's columns, params and tags come in one row, the params and tags as one JSON object
    each (text, exact) built by SQLite: one Python row per run instead of one per value. The
    latest metrics come one row per metric: their REAL values must reach Python as the exact
    doubles. SQLite 3.40's text for a REAL does not carry them: JSON and CAST print 15
    digits, ``quote()`` and ``printf('%!.17g')`` miss some doubles, and ``printf('%!.20e')``,
    exact only where SQLite computes in 80-bit long double, costs more per value (~3,000
    instructions) than the row it would save. Within a run, params, tags and
    metrics come in the order of the ``run_uuid`` index, as in the eager queries before."""
    if not rowids:
        return []
    # The page's runs are numbered by their position in the JSON array (json_each's key).
    n = len(rowids)
    rowids_json = json.dumps(rowids)
    runs: list = [None] * n
    info_from_store, data_from_raw, run_from_store = RunInfo._from_store, RunData._from_raw, Run._from_store
    with paused_gc():  # tens of thousands of small objects
        metric_rows = conn.execute(_PAGE_METRICS_SQL, (rowids_json,)).fetchall()
        try:
            page = conn.execute(_PAGE_RUNS_SQL, (rowids_json,)).fetchall()
        except sqlite3.OperationalError as error:
            if "JSON" not in str(error):
                raise
            # A value that JSON cannot hold (a BLOB written by something else): pairs instead.
            page = conn.execute(_PAGE_RUNS_ONLY_SQL, (rowids_json,)).fetchall()
            ids = json.dumps([row[1] for row in page])
            params = _pairs_by_run(conn, "params", ids, len(page))
            tags = _pairs_by_run(conn, "tags", ids, len(page))
            page = [row + (params[k], tags[k]) for k, row in enumerate(page)]
        by_position: list = [None] * n
        # Rows arrive grouped by run (json_each drives the join); a run seen twice (another
        # plan) still gets all its rows.
        for k, group in groupby(metric_rows, _fifth_field):
            current = by_position[k]
            if current is None:
                by_position[k] = list(group)
            else:
                current.extend(group)
        for i, run_uuid, name, user, status, start, end, stage, uri, exp_id, p, t in page:
            if user is None or status is None or start is None or exp_id is None:
                # RunInfo's constructor refuses these (MLflow's search fails the same way).
                run_info_from_row((run_uuid, name, user, status, start, end, stage, uri, exp_id))
            info = info_from_store(run_uuid, str(exp_id), user, status, start, end, stage, uri, name)
            runs[i] = run_from_store(info, data_from_raw(by_position[i], p, t))
    add_inputs_and_outputs(conn, runs)
    return runs


_fifth_field = itemgetter(4)
# NaN comes as NULL (value is NOT NULL in the schema): one column fewer to convert per row.
_PAGE_METRICS_SQL = (
    "SELECT x.key, iif(x.is_nan, NULL, x.value), x.timestamp, x.step, j.key "
    "FROM json_each(?) j JOIN runs r ON r.rowid = j.value "
    "JOIN latest_metrics x ON x.run_uuid = r.run_uuid"
)
_PAGE_RUN_COLUMNS = (
    "j.key, r.run_uuid, r.name, r.user_id, r.status, r.start_time, r.end_time, "
    "r.lifecycle_stage, r.artifact_uri, r.experiment_id"
)
_PAGE_RUNS_ONLY_SQL = (
    f"SELECT {_PAGE_RUN_COLUMNS} FROM json_each(?) j JOIN runs r ON r.rowid = j.value"
)
_PAGE_RUNS_SQL = (
    f"SELECT {_PAGE_RUN_COLUMNS}, "
    "(SELECT json_group_object(x.key, x.value) FROM params x WHERE x.run_uuid = r.run_uuid), "
    "(SELECT json_group_object(x.key, x.value) FROM tags x WHERE x.run_uuid = r.run_uuid) "
    "FROM json_each(?) j JOIN runs r ON r.rowid = j.value"
)


def _pairs_by_run(conn: sqlite3.Connection, table: str, ids: str, n: int) -> list:
    out: list = [None] * n
    for i, key, value in conn.execute(
        f"SELECT j.key, x.key, x.value FROM json_each(?) j JOIN {table} x "
        "ON x.run_uuid = j.value",
        (ids,),
    ):
        pairs = out[i]
        if pairs is None:
            pairs = out[i] = []
        pairs.append((key, value))
    return out


# -- experiments ------------------------------------------------------------------------------
def search_experiments(
    conn: sqlite3.Connection,
    view_type: int,
    max_results: int | None,
    filter_string: str | None,
    order_by: list[str] | None,
    page_token: str | None,
) -> tuple[list[Experiment], str | None]:
    """One page of experiments and the next page's token, as MLflow's ``_search_experiments``."""
    return search_sql.search_experiments(
        SQLITE,
        lambda sql, args: conn.execute(sql, args).fetchall(),
        lambda: _snapshot(conn),
        view_type,
        max_results,
        filter_string,
        order_by,
        page_token,
    )
