"""search_runs / search_experiments as SQL, dialect-neutral: MLflow 3.18's SqlAlchemyStore query.

The filter and order_by are parsed by ``asynctrack._search`` (MLflow's grammar and errors); this
module turns the checked clauses into one parameterized query (values and keys are always bound,
never spliced; column names come from fixed whitelists) that selects a page of runs in MLflow's
order. A store gives a :class:`Dialect` (how its database spells LIKE, ILIKE, IN, a join of fixed
order, a boolean, a placeholder) and runs the query its own way (SQLite: ``_sqlite/search.py``,
PostgreSQL: ``_postgres/search.py``). The SQL is written with ``?`` placeholders; a dialect
with another style rewrites them (the text holds no other ``?`` and no ``%``: every value is
bound).

Equivalences with MLflow's query: its inner joins on ``(run_uuid, key)``-unique subqueries are
inner joins on the ``(key, run_uuid)``-unique tables here (_run_from_sql), and EXISTS for
``IS [NOT] NULL``, the run-name filter (one ``mlflow.runName`` tag a run) and the dataset
filters (MLflow's DISTINCT removes the duplicates its joins make); ORDER BY is MLflow's
``_get_orderby_clauses`` term for term, so the database's own collation and NULL order decide
exactly as they do for MLflow.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

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
from ...entities import Experiment, ExperimentTag, LifecycleStage
from ...exceptions import INVALID_PARAMETER_VALUE, MlflowException
from .reads import parse_page_token

__all__ = [
    "Dialect",
    "RunQuery",
    "compile_run_search",
    "create_page_token",
    "parse_page_token",
    "search_experiments",
    "validate_max_results",
]


class Dialect:
    """How one database spells the few things the compiler emits differently.

    Subclasses set ``join`` (a join whose tables are taken in the written order where the
    database allows it), ``true``/``false`` (boolean literals for ``is_nan``) and implement the
    comparisons below; ``sql`` rewrites the ``?`` placeholders if the driver wants another."""

    join = "JOIN"
    true = "1"
    false = "0"

    def sql(self, text: str) -> str:
        """``text`` with the driver's placeholders."""
        return text

    def like(self, column: str, pattern: str, args: list) -> str:
        """``column LIKE pattern``, case-sensitive, as MLflow's query on this database."""
        raise NotImplementedError

    def ilike(self, column: str, pattern: str, args: list) -> str:
        """``column ILIKE pattern``, as MLflow's query on this database."""
        raise NotImplementedError

    def in_list(self, column: str, values: Sequence, args: list) -> str:
        """``column IN (values)`` with all of ``values`` bound as one value."""
        raise NotImplementedError

    def one_of(self, column: str, values: Sequence, args: list) -> str:
        """``column IN values`` for the query's own lists (experiments, stages): one value
        compares with ``=`` (cheaper per row on both databases)."""
        if len(values) == 1:
            args.append(values[0])
            return f"{column} = ?"
        return self.in_list(column, values, args)


def create_page_token(offset: int) -> bytes:
    """MLflow's search page token. Bytes, as MLflow's ``SearchUtils.create_page_token`` returns
    (base64 of ``{"offset": n}``); it is accepted back as bytes or str."""
    return base64.b64encode(json.dumps({"offset": offset}).encode("utf-8"))


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
ENTITY_TABLES = {METRIC: "latest_metrics", PARAM: "params", TAG: "tags"}
_NULL_TESTS = ("IS NULL", "IS NOT NULL")
_SIMPLE_OPS = {"=": "=", "!=": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


def _compare(d: Dialect, column: str, comparator: str, value: Any, args: list) -> str:
    """SQL for ``column <comparator> value``, appending the bound values to ``args``."""
    if comparator in _SIMPLE_OPS:
        args.append(value)
        return f"{column} {_SIMPLE_OPS[comparator]} ?"
    if comparator == "LIKE":
        return d.like(column, value, args)
    if comparator == "ILIKE":
        return d.ilike(column, value, args)
    if comparator in ("IN", "NOT IN"):
        sql = d.in_list(column, list(value), args)
        return sql if comparator == "IN" else f"NOT ({sql})"
    raise MlflowException(f"Invalid comparator '{comparator}'", INVALID_PARAMETER_VALUE)


def _run_filter_sql(d: Dialect, clause: Clause, args: list) -> str:
    """SQL for one filter clause, a condition on the run ``r``."""
    kind, key, comparator, value = clause.kind, clause.key, clause.comparator, clause.value
    if kind == ATTRIBUTE:
        if key == "run_name":
            # MLflow filters run names on the mlflow.runName tag (runs of MLflow <= 1.29 have
            # no name column value).
            args.append("mlflow.runName")
            cond = _compare(d, "t.value", comparator, value, args)
            return (
                "EXISTS (SELECT 1 FROM tags t WHERE t.run_uuid = r.run_uuid AND t.key = ? "
                f"AND {cond})"
            )
        return _compare(d, _RUN_COLUMNS[key], comparator, value, args)
    if kind == DATASET:
        return _dataset_filter_sql(d, key, comparator, value, args)
    table = ENTITY_TABLES[kind]
    if comparator in _NULL_TESTS:
        args.append(key)
        exists = f"EXISTS (SELECT 1 FROM {table} x WHERE x.run_uuid = r.run_uuid AND x.key = ?)"
        return f"NOT {exists}" if comparator == "IS NULL" else exists
    # Value comparisons are joins (_run_from_sql), not conditions on r.
    raise AssertionError(clause)


def _entity_condition(d: Dialect, alias: str, clause: Clause, args: list) -> str:
    """``alias.key = ? AND <the comparison on alias.value>`` for a metric/param/tag clause."""
    args.append(clause.key)
    cond = _compare(d, f"{alias}.value", clause.comparator, clause.value, args)
    if clause.kind == METRIC:
        # NaN is stored as value 0 with is_nan set: it satisfies "!=" only.
        if clause.comparator == "!=":
            cond = f"({cond} OR {alias}.is_nan = {d.true})"
        else:
            cond = f"({cond} AND {alias}.is_nan = {d.false})"
    return f"{alias}.key = ? AND {cond}"


def _run_from_sql(d: Dialect, joined: list[Clause], args: list, where: list, where_args: list) -> str:
    """The FROM clause of the page query: ``runs r`` alone, or, when the filter compares
    metric/param/tag values, those tables first, joined in the filter's order on
    ``run_uuid``, then ``runs``.

    On SQLite the join is CROSS JOIN (its fixed join order): it starts from the first clause's
    key range of the table's ``(key, run_uuid)`` primary key, probes the other clauses' keys
    for the runs it found, and looks up in ``runs`` only the runs that passed them all (on the
    benchmark's filter, 1,000 of 10,000 runs, half the ``runs`` lookups of a plan that looks
    each candidate up first, and no temporary list). PostgreSQL plans the inner joins itself.
    Each joined table holds at most one row per ``(key, run_uuid)`` (its primary key; neither
    column can be NULL), so the joins select the runs an EXISTS per clause (MLflow's inner
    joins) selects, each once. The order of the result is ORDER BY's alone (it ends on the
    unique run_uuid): plans differ in cost only.

    ``args`` gets the FROM clause's bound values; the first clause's condition goes to
    ``where`` (its values to ``where_args``), as the FROM clause's first table has no ON."""
    if not joined:
        return "runs r"
    parts = []
    for n, clause in enumerate(joined):
        alias = f"d{n}"
        table = ENTITY_TABLES[clause.kind]
        if n == 0:
            parts.append(f"{table} {alias}")
            where.append(_entity_condition(d, alias, clause, where_args))
        else:
            cond = _entity_condition(d, alias, clause, args)
            parts.append(f"{d.join} {table} {alias} ON {alias}.run_uuid = d0.run_uuid AND {cond}")
    parts.append(f"{d.join} runs r ON r.run_uuid = d0.run_uuid")
    return " ".join(parts)


def _dataset_filter_sql(d: Dialect, key: str, comparator: str, value: Any, args: list) -> str:
    if key == "context":
        args.append("mlflow.data.context")
        cond = _compare(d, "it.value", comparator, value, args)
        return (
            "EXISTS (SELECT 1 FROM datasets d JOIN inputs i ON i.source_id = d.dataset_uuid "
            "JOIN input_tags it ON it.input_uuid = i.input_uuid AND it.name = ? AND "
            f"{cond} WHERE i.destination_id = r.run_uuid)"
        )
    column = {"name": "d.name", "digest": "d.digest"}[key]
    cond = _compare(d, column, comparator, value, args)
    return (
        "EXISTS (SELECT 1 FROM datasets d JOIN inputs i ON i.source_id = d.dataset_uuid "
        f"WHERE i.destination_id = r.run_uuid AND {cond})"
    )


def _run_order_sql(
    d: Dialect, order: list[tuple[str, str, bool]], joins: list[str], args: list
) -> str:
    """MLflow's ``_get_orderby_clauses``: per key, missing (then NaN) last, then the value in
    the database's own order (collation, NULLs), then ``start_time DESC`` unless ordered on,
    then ``run_uuid``."""
    terms = []
    for n, (kind, key, ascending) in enumerate(order):
        direction = "" if ascending else " DESC"
        if kind == ATTRIBUTE:
            column = _RUN_COLUMNS[key]
            terms += [f"({column} IS NULL)", column + direction]
            continue
        alias = f"o{n}"
        joins.append(
            f"LEFT JOIN {ENTITY_TABLES[kind]} {alias} "
            f"ON {alias}.run_uuid = r.run_uuid AND {alias}.key = ?"
        )
        args.append(key)
        if kind == METRIC:
            terms.append(
                f"CASE WHEN {alias}.is_nan = {d.true} THEN 1 "
                f"WHEN {alias}.value IS NULL THEN 2 ELSE 0 END"
            )
        else:
            terms.append(f"({alias}.value IS NULL)")
        terms.append(f"{alias}.value{direction}")
    if (ATTRIBUTE, "start_time") not in {(k, key) for k, key, _ in order}:
        terms.append("r.start_time DESC")
    terms.append("r.run_uuid")
    return ", ".join(terms)


def _parse_experiment_id(experiment_id: Any) -> int:
    try:
        return int(experiment_id)
    except (ValueError, TypeError):
        raise MlflowException(
            f"Invalid experiment ID '{experiment_id}'. Experiment ID must be a valid integer.",
            INVALID_PARAMETER_VALUE,
        ) from None


@dataclass(frozen=True)
class RunQuery:
    """A page query: ``sql`` (the dialect's placeholders, no LIMIT/OFFSET) and its ``args``
    select ``select`` of every matching run in MLflow's order; ``offset`` and ``max_results``
    say which of them make the page."""

    sql: str
    args: list
    offset: int
    max_results: int | None


def compile_run_search(
    d: Dialect,
    select: str,
    experiment_ids: list,
    filter_string: str | None,
    run_view_type: int,
    max_results: int | None,
    order_by: list[str] | None,
    page_token: str | None,
) -> RunQuery:
    """The query of one search_runs page, checking the arguments in MLflow's order (its
    errors first come first). ``select``: the columns of ``runs r`` to select."""
    validate_max_results(max_results, allow_null=True)
    stages = LifecycleStage.view_type_to_stages(run_view_type)
    parsed = parse_run_filter(filter_string)
    order = parse_run_order_by(order_by)
    clauses = run_clauses(parsed)
    offset = parse_page_token(page_token)
    exp_ids = [_parse_experiment_id(e) for e in experiment_ids]

    # Metric/param/tag value comparisons are joins that drive the query (_run_from_sql); the
    # other clauses are conditions on the run.
    joined = [c for c in clauses if c.kind in ENTITY_TABLES and c.comparator not in _NULL_TESTS]
    others = [c for c in clauses if all(c is not j for j in joined)]
    from_args: list = []
    where: list[str] = []
    where_args: list = []
    from_sql = _run_from_sql(d, joined, from_args, where, where_args)
    joins: list[str] = []
    join_args: list = []
    order_sql = _run_order_sql(d, order, joins, join_args)
    where.append(d.one_of("r.experiment_id", exp_ids, where_args))
    where.append(d.one_of("r.lifecycle_stage", stages, where_args))
    where += [_run_filter_sql(d, c, where_args) for c in others]
    sql = (
        f"SELECT {select} FROM {from_sql} "
        + " ".join(joins)
        + " WHERE "
        + " AND ".join(where)
        + f" ORDER BY {order_sql}"
    )
    return RunQuery(d.sql(sql), from_args + join_args + where_args, offset, max_results)


# -- experiments ------------------------------------------------------------------------------
def _experiment_filter_sql(d: Dialect, clause: Clause, args: list) -> str:
    kind, key, comparator, value = clause.kind, clause.key, clause.comparator, clause.value
    if kind == ATTRIBUTE:
        return _compare(d, _EXPERIMENT_COLUMNS[key], comparator, value, args)
    args.append(key)
    exists = "SELECT 1 FROM experiment_tags x WHERE x.experiment_id = e.experiment_id AND x.key = ?"
    if comparator == "IS NULL":
        return f"NOT EXISTS ({exists})"
    if comparator == "IS NOT NULL":
        return f"EXISTS ({exists})"
    return f"EXISTS ({exists} AND {_compare(d, 'x.value', comparator, value, args)})"


Rows = Iterable[Sequence[Any]]


def search_experiments(
    d: Dialect,
    execute: Callable[[str, list], Rows],
    snapshot: Callable[[], AbstractContextManager],
    view_type: int,
    max_results: int | None,
    filter_string: str | None,
    order_by: list[str] | None,
    page_token: str | None,
) -> tuple[list[Experiment], bytes | None]:
    """One page of experiments and the next page's token, as MLflow's ``_search_experiments``.

    ``execute(sql, args)``: the rows of a query on the store's connection; ``snapshot()``: a
    context in which its queries see one state of the database (the page and its tags)."""
    validate_max_results(max_results)
    parsed = parse_experiment_filter(filter_string)
    args: list = []
    where = [_experiment_filter_sql(d, c, args) for c in experiment_clauses(parsed)]
    order = parse_experiment_order_by(order_by)
    offset = parse_page_token(page_token)
    stages = LifecycleStage.view_type_to_stages(view_type)
    where.append(d.in_list("e.lifecycle_stage", stages, args))
    order_sql = ", ".join(
        _EXPERIMENT_COLUMNS[key] + ("" if asc else " DESC") for key, asc in order
    )
    page_sql = d.sql(
        "SELECT e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, "
        "e.creation_time, e.last_update_time, e.workspace FROM experiments e WHERE "
        + " AND ".join(where)
        + f" ORDER BY {order_sql} LIMIT ? OFFSET ?"
    )
    with snapshot():
        rows = list(execute(page_sql, args + [max_results + 1, offset]))
        token = None
        if len(rows) == max_results + 1:
            token = create_page_token(offset + max_results)
            rows = rows[:max_results]
        tags: dict[int, list] = {}
        if rows:
            tag_args: list = []
            cond = d.in_list("experiment_id", [row[0] for row in rows], tag_args)
            tag_sql = d.sql(f"SELECT experiment_id, key, value FROM experiment_tags WHERE {cond}")
            for exp_id, key, value in execute(tag_sql, tag_args):
                tags.setdefault(exp_id, []).append(ExperimentTag(key, value))
    return list(_experiments(rows, tags)), token


def _experiments(rows: list, tags: dict[int, list]) -> Iterator[Experiment]:
    for exp_id, name, location, stage, created, updated, workspace in rows:
        yield Experiment(
            str(exp_id),
            name,
            location,
            stage,
            tags=tags.get(exp_id, []),
            creation_time=created,
            last_update_time=updated,
            workspace=workspace,
        )
