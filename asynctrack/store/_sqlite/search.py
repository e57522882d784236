"""search_runs / search_experiments in SQL, as MLflow 3.18's SQLAlchemy store answers them.

The filter and order_by are parsed by ``asynctrack._search`` (MLflow's grammar and errors); this
module turns the checked clauses into one parameterized query (values and keys are always bound,
never spliced) that selects the rowids of a page of runs in MLflow's order, then loads the
page's runs, params and tags (one query) and metrics (another) by rowid instead of one query per
run.

Equivalences with MLflow's query: its inner joins on ``(run_uuid, key)``-unique subqueries are
inner joins on the ``(key, run_uuid)``-unique tables here, in a fixed order (_run_from_sql), and
EXISTS for ``IS [NOT] NULL``; ``LIKE`` under MLflow's ``PRAGMA case_sensitive_like = true`` is
the same match as ``GLOB`` on the translated pattern; ``ILIKE`` is ``lower(x) LIKE lower(y)`` in
both.
"""

from __future__ import annotations

import base64
import contextlib
import json
import sqlite3
from collections.abc import Iterator
from itertools import groupby
from operator import itemgetter
from typing import Any

from ..._gc import paused_gc
from ..._search import (
    SEARCH_MAX_RESULTS_THRESHOLD,
    experiment_clauses,
    parse_experiment_filter,
    parse_experiment_order_by,
    parse_run_filter,
    parse_run_order_by,
    run_clauses,
)
from ..._search.filters import ATTRIBUTE, DATASET, METRIC, PARAM, TAG, Clause
from ...entities import (
    Experiment,
    ExperimentTag,
    LifecycleStage,
    Run,
    RunData,
    RunInfo,
)
from ...exceptions import INVALID_PARAMETER_VALUE, MlflowException
from .._sql.reads import parse_page_token, run_info_from_row


def create_page_token(offset: int) -> bytes:
    """MLflow's search page token. Bytes, as MLflow's ``SearchUtils.create_page_token`` returns
    (base64 of ``{"offset": n}``); it is accepted back as bytes or str."""
    return base64.b64encode(json.dumps({"offset": offset}).encode("utf-8"))


# Run attributes -> columns of ``runs`` (a fixed whitelist: column names are never user text).
_RUN_COLUMNS = {
    "run_id": "r.run_uuid",
    "run_name": "r.name",
    "status": "r.status",
    "user_id": "r.user_id",
    "artifact_uri": "r.artifact_uri",
    "start_time": "r.start_time",
    "end_time": "r.end_time",
}
_EXPERIMENT_COLUMNS = {
    "experiment_id": "e.experiment_id",
    "name": "e.name",
    "creation_time": "e.creation_time",
    "last_update_time": "e.last_update_time",
}
_ENTITY_TABLES = {METRIC: "latest_metrics", PARAM: "params", TAG: "tags"}
_NULL_TESTS = ("IS NULL", "IS NOT NULL")
_SIMPLE_OPS = {"=": "=", "!=": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


def validate_max_results(max_results: Any, allow_null: bool = False) -> None:
    """MLflow's ``_validate_max_results_param``."""
    if (not allow_null and max_results is None) or (max_results is not None and max_results < 1):
        raise MlflowException(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be "
            "a positive integer",
            INVALID_PARAMETER_VALUE,
        )
    if max_results is not None and max_results > SEARCH_MAX_RESULTS_THRESHOLD:
        raise MlflowException(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be at "
            f"most {SEARCH_MAX_RESULTS_THRESHOLD}",
            INVALID_PARAMETER_VALUE,
        )


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


def _compare(column: str, comparator: str, value: Any, args: list) -> str:
    """SQL for ``column <comparator> value``, appending the bound values to ``args``."""
    if comparator in _SIMPLE_OPS:
        args.append(value)
        return f"{column} {_SIMPLE_OPS[comparator]} ?"
    if comparator == "LIKE":
        args.append(like_to_glob(value))
        return f"{column} GLOB ?"
    if comparator == "ILIKE":
        args.append(like_to_glob(value))
        return f"lower({column}) GLOB lower(?)"
    if comparator in ("IN", "NOT IN"):
        args.append(json.dumps(list(value)))
        sql = f"{column} IN (SELECT value FROM json_each(?))"
        return sql if comparator == "IN" else f"NOT ({sql})"
    raise MlflowException(f"Invalid comparator '{comparator}'", INVALID_PARAMETER_VALUE)


def _run_filter_sql(clause: Clause, args: list) -> str:
    """SQL for one filter clause, a condition on the run ``r``."""
    kind, key, comparator, value = clause.kind, clause.key, clause.comparator, clause.value
    if kind == ATTRIBUTE:
        if key == "run_name":
            # MLflow filters run names on the mlflow.runName tag (runs of MLflow <= 1.29 have
            # no name column value).
            args.append("mlflow.runName")
            cond = _compare("t.value", comparator, value, args)
            return (
                "EXISTS (SELECT 1 FROM tags t WHERE t.run_uuid = r.run_uuid AND t.key = ? "
                f"AND {cond})"
            )
        return _compare(_RUN_COLUMNS[key], comparator, value, args)
    if kind == DATASET:
        return _dataset_filter_sql(key, comparator, value, args)
    table = _ENTITY_TABLES[kind]
    if comparator in ("IS NULL", "IS NOT NULL"):
        args.append(key)
        exists = f"EXISTS (SELECT 1 FROM {table} x WHERE x.run_uuid = r.run_uuid AND x.key = ?)"
        return f"NOT {exists}" if comparator == "IS NULL" else exists
    # Value comparisons are joins (_run_from_sql), not conditions on r.
    raise AssertionError(clause)


def _entity_condition(alias: str, clause: Clause, args: list) -> str:
    """``alias.key = ? AND <the comparison on alias.value>`` for a metric/param/tag clause."""
    args.append(clause.key)
    cond = _compare(f"{alias}.value", clause.comparator, clause.value, args)
    if clause.kind == METRIC:
        # NaN is stored as value 0 with is_nan set: it satisfies "!=" only.
        if clause.comparator == "!=":
            cond = f"({cond} OR {alias}.is_nan = 1)"
        else:
            cond = f"({cond} AND {alias}.is_nan = 0)"
    return f"{alias}.key = ? AND {cond}"


def _run_from_sql(joined: list[Clause], args: list, where: list, where_args: list) -> str:
    """The FROM clause of the page query: ``runs r`` alone, or, when the filter compares
    metric/param/tag values, those tables first, joined in the filter's order on
    ``run_uuid``, then ``runs``, in that fixed order (CROSS JOIN is SQLite's fixed join
    order). SQLite then starts from the first clause's key range of the table's
    ``(key, run_uuid)`` primary key, probes the other clauses' keys for the runs it found, and
    looks up in ``runs`` only the runs that passed them all: on the benchmark's filter (1,000
    of 10,000 runs) half the ``runs`` lookups of a plan that looks each candidate up in
    ``runs`` first, and no temporary list. Each joined table holds at most one row per
    ``(key, run_uuid)`` (its primary key; neither column can be NULL), so the joins select
    the runs an EXISTS per clause (MLflow's inner joins) selects, each once. The order of the
    result is ORDER BY's alone (it ends on the unique run_uuid): plans differ in cost only.

    ``args`` gets the FROM clause's bound values; the first clause's condition goes to
    ``where`` (its values to ``where_args``), as the FROM clause's first table has no ON."""
    if not joined:
        return "runs r"
    parts = []
    for n, clause in enumerate(joined):
        alias = f"d{n}"
        table = _ENTITY_TABLES[clause.kind]
        if n == 0:
            parts.append(f"{table} {alias}")
            where.append(_entity_condition(alias, clause, where_args))
        else:
            cond = _entity_condition(alias, clause, args)
            parts.append(f"CROSS JOIN {table} {alias} ON {alias}.run_uuid = d0.run_uuid AND {cond}")
    parts.append("CROSS JOIN runs r ON r.run_uuid = d0.run_uuid")
    return " ".join(parts)


def _dataset_filter_sql(key: str, comparator: str, value: Any, args: list) -> str:
    if key == "context":
        args.append("mlflow.data.context")
        cond = _compare("it.value", comparator, value, args)
        return (
            "EXISTS (SELECT 1 FROM datasets d JOIN inputs i ON i.source_id = d.dataset_uuid "
            "JOIN input_tags it ON it.input_uuid = i.input_uuid AND it.name = ? AND "
            f"{cond} WHERE i.destination_id = r.run_uuid)"
        )
    column = {"name": "d.name", "digest": "d.digest"}[key]
    cond = _compare(column, comparator, value, args)
    return (
        "EXISTS (SELECT 1 FROM datasets d JOIN inputs i ON i.source_id = d.dataset_uuid "
        f"WHERE i.destination_id = r.run_uuid AND {cond})"
    )


def _run_order_sql(order: list[tuple[str, str, bool]], joins: list[str], args: list) -> str:
    """MLflow's ``_get_orderby_clauses``: per key, missing (then NaN) last, then the value."""
    terms = []
    for n, (kind, key, ascending) in enumerate(order):
        direction = "" if ascending else " DESC"
        if kind == ATTRIBUTE:
            column = _RUN_COLUMNS[key]
            terms += [f"({column} IS NULL)", column + direction]
            continue
        alias = f"o{n}"
        joins.append(
            f"LEFT JOIN {_ENTITY_TABLES[kind]} {alias} "
            f"ON {alias}.run_uuid = r.run_uuid AND {alias}.key = ?"
        )
        args.append(key)
        if kind == METRIC:
            terms.append(
                f"CASE WHEN {alias}.is_nan = 1 THEN 1 WHEN {alias}.value IS NULL THEN 2 ELSE 0 END"
            )
        else:
            terms.append(f"({alias}.value IS NULL)")
        terms.append(f"{alias}.value{direction}")
    if (ATTRIBUTE, "start_time") not in {(k, key) for k, key, _ in order}:
        terms.append("r.start_time DESC")
    terms.append("r.run_uuid")
    return ", ".join(terms)


def _in_list(column: str, values: list, args: list) -> str:
    """``column IN values``: one bound value compares with ``=`` (cheaper per row), more go in
    as one JSON array."""
    if len(values) == 1:
        args.append(values[0])
        return f"{column} = ?"
    args.append(json.dumps(values))
    return f"{column} IN (SELECT value FROM json_each(?))"


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


def _parse_experiment_id(experiment_id: Any) -> int:
    try:
        return int(experiment_id)
    except (ValueError, TypeError):
        raise MlflowException(
            f"Invalid experiment ID '{experiment_id}'. Experiment ID must be a valid integer.",
            INVALID_PARAMETER_VALUE,
        ) from None


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
    validate_max_results(max_results, allow_null=True)
    stages = LifecycleStage.view_type_to_stages(run_view_type)
    parsed = parse_run_filter(filter_string)
    order = parse_run_order_by(order_by)
    clauses = run_clauses(parsed)
    offset = parse_page_token(page_token)
    exp_ids = [_parse_experiment_id(e) for e in experiment_ids]

    # Metric/param/tag value comparisons are joins that drive the query (_run_from_sql); the
    # other clauses are conditions on the run.
    joined = [c for c in clauses if c.kind in _ENTITY_TABLES and c.comparator not in _NULL_TESTS]
    others = [c for c in clauses if all(c is not j for j in joined)]
    from_args: list = []
    where: list[str] = []
    where_args: list = []
    from_sql = _run_from_sql(joined, from_args, where, where_args)
    joins: list[str] = []
    join_args: list = []
    order_sql = _run_order_sql(order, joins, join_args)
    where.append(_in_list("r.experiment_id", exp_ids, where_args))
    where.append(_in_list("r.lifecycle_stage", stages, where_args))
    where += [_run_filter_sql(c, where_args) for c in others]
    # Only the runs' rowids, in order, and no LIMIT: with a LIMIT SQLite keeps a top-N b-tree,
    # one insertion per matching run (3x the cost of its plain sorter here); the sorted ids
    # are read off the statement up to the page's end instead (skipping a later page's offset
    # in Python costs a few hundred ns a run). The page's runs are then read by rowid (an
    # integer b-tree search instead of one in the run_uuid index, then the table).
    sql = (
        f"SELECT r.rowid FROM {from_sql} "
        + " ".join(joins)
        + " WHERE "
        + " AND ".join(where)
        + f" ORDER BY {order_sql}"
    )
    with _snapshot(conn):
        cursor = conn.execute(sql, from_args + join_args + where_args)
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
def _experiment_filter_sql(clause: Clause, args: list) -> str:
    kind, key, comparator, value = clause.kind, clause.key, clause.comparator, clause.value
    if kind == ATTRIBUTE:
        return _compare(_EXPERIMENT_COLUMNS[key], comparator, value, args)
    args.append(key)
    exists = "SELECT 1 FROM experiment_tags x WHERE x.experiment_id = e.experiment_id AND x.key = ?"
    if comparator == "IS NULL":
        return f"NOT EXISTS ({exists})"
    if comparator == "IS NOT NULL":
        return f"EXISTS ({exists})"
    return f"EXISTS ({exists} AND {_compare('x.value', comparator, value, args)})"


def search_experiments(
    conn: sqlite3.Connection,
    view_type: int,
    max_results: int | None,
    filter_string: str | None,
    order_by: list[str] | None,
    page_token: str | None,
) -> tuple[list[Experiment], str | None]:
    """One page of experiments and the next page's token, as MLflow's ``_search_experiments``."""
    validate_max_results(max_results)
    parsed = parse_experiment_filter(filter_string)
    args: list = []
    where = [_experiment_filter_sql(c, args) for c in experiment_clauses(parsed)]
    order = parse_experiment_order_by(order_by)
    offset = parse_page_token(page_token)
    stages = LifecycleStage.view_type_to_stages(view_type)
    where.append("e.lifecycle_stage IN (SELECT value FROM json_each(?))")
    args.append(json.dumps(stages))
    order_sql = ", ".join(
        _EXPERIMENT_COLUMNS[key] + ("" if asc else " DESC") for key, asc in order
    )
    with _snapshot(conn):
        rows = conn.execute(
            "SELECT e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, "
            "e.creation_time, e.last_update_time, e.workspace FROM experiments e WHERE "
            + " AND ".join(where)
            + f" ORDER BY {order_sql} LIMIT ? OFFSET ?",
            args + [max_results + 1, offset],
        ).fetchall()
        token = None
        if len(rows) == max_results + 1:
            token = create_page_token(offset + max_results)
            rows = rows[:max_results]
        tags: dict[int, list] = {}
        if rows:
            for exp_id, key, value in conn.execute(
                "SELECT experiment_id, key, value FROM experiment_tags "
                "WHERE experiment_id IN (SELECT value FROM json_each(?))",
                (json.dumps([row[0] for row in rows]),),
            ):
                tags.setdefault(exp_id, []).append(ExperimentTag(key, value))
    experiments = [
        Experiment(
            str(exp_id),
            name,
            location,
            stage,
            tags=tags.get(exp_id, []),
            creation_time=created,
            last_update_time=updated,
            workspace=workspace,
        )
        for exp_id, name, location, stage, created, updated, workspace in rows
    ]
    return experiments, token
