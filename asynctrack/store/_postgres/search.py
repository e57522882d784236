"""search_runs / search_experiments on PostgreSQL, as MLflow 3.18's SqlAlchemyStore answers them
on the same database.

The query is the shared one (``_sql/search_sql.py``) in PostgreSQL's spelling
(:class:`PostgresDialect`): the operators MLflow's SQLAlchemy emits on PostgreSQL, so that the
database decides what it decides for MLflow: ``LIKE`` (case-sensitive, ``\\`` its escape
character) and ``ILIKE`` natively, string ORDER BY in the database's collation, NULLs of a
``DESC`` order first (where MLflow's query does not put them last itself). A list is one bound
array (``= ANY(%s)``, the same test as MLflow's ``IN (...)``, NULLs included).

Each search reads one snapshot: a REPEATABLE READ READ ONLY transaction on the caller's
(autocommit) psycopg 3 connection, or the transaction the caller already has open. A page of
runs is one query that selects the page's runs in order (LIMIT/OFFSET), then their params and
tags (one query) and latest metrics (another), batched by ``run_uuid = ANY(%s)``.

psycopg is imported here only for type checking and the transaction status: this module is
loaded by the PostgreSQL store alone (the optional ``postgres`` extra).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from ..._gc import paused_gc
from ...entities import Experiment, Run, RunData, RunInfo
from ...exceptions import BAD_REQUEST, MlflowException
from .._sql import search_sql
from .._sql.reads import add_inputs_and_outputs, run_info_from_row
from .._sql.search_sql import Dialect, compile_run_search, create_page_token

if TYPE_CHECKING:
    import psycopg


class PostgresDialect(Dialect):
    """PostgreSQL's spelling of the shared search query, with psycopg's ``%s`` placeholders."""

    join = "JOIN"  # PostgreSQL has no CROSS JOIN ... ON; it orders inner joins itself
    true = "true"
    false = "false"

    def sql(self, text: str) -> str:
        return text.replace("?", "%s")

    def like(self, column: str, pattern: str, args: list) -> str:
        args.append(pattern)
        return f"{column} LIKE ?"

    def ilike(self, column: str, pattern: str, args: list) -> str:
        args.append(pattern)
        return f"{column} ILIKE ?"

    def in_list(self, column: str, values: Sequence, args: list) -> str:
        args.append(list(values))
        return f"{column} = ANY(?)"


POSTGRES = PostgresDialect()


@contextlib.contextmanager
def _snapshot(conn: psycopg.Connection) -> Iterator[None]:
    """One snapshot around a search's queries: the page and its params, metrics and tags come
    from the same state of the database, whatever writers commit meanwhile."""
    from psycopg import pq

    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        yield  # the caller's transaction is the snapshot
        return
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


# The page query selects these columns of ``runs r`` (the page's runs, whole, in order).
_PAGE_COLUMNS = (
    "r.run_uuid, r.name, r.user_id, r.status, r.start_time, r.end_time, r.lifecycle_stage, "
    "r.artifact_uri, r.experiment_id"
)
# A run's params (0) and tags (1) in one query; latest metrics in another, NaN as NULL (value
# is NOT NULL in the schema, is_nan BOOLEAN), as RunData._from_raw takes them.
_PAGE_PAIRS_SQL = (
    "SELECT run_uuid, 0, key, value FROM params WHERE run_uuid = ANY(%s) "
    "UNION ALL SELECT run_uuid, 1, key, value FROM tags WHERE run_uuid = ANY(%s)"
)
_PAGE_METRICS_SQL = (
    'SELECT key, CASE WHEN is_nan THEN NULL ELSE value END, "timestamp", step, run_uuid '
    "FROM latest_metrics WHERE run_uuid = ANY(%s)"
)


def search_runs(
    conn: psycopg.Connection,
    experiment_ids: list,
    filter_string: str | None,
    run_view_type: int,
    max_results: int | None,
    order_by: list[str] | None,
    page_token: str | None,
) -> tuple[list[Run], str | None]:
    """One page of runs and the next page's token (None on the last page), as MLflow."""
    query = compile_run_search(
        POSTGRES, _PAGE_COLUMNS, experiment_ids, filter_string, run_view_type, max_results,
        order_by, page_token,
    )
    offset = query.offset
    sql, args = query.sql, list(query.args)
    if max_results is not None:
        sql += " LIMIT %s"
        args.append(max_results + 1)
    if offset:
        sql += " OFFSET %s"
        args.append(offset)
    with _snapshot(conn):
        rows = _page_rows(conn, sql, args)
        token = None
        if max_results is not None and len(rows) == max_results + 1:
            token = create_page_token(offset + max_results)
            del rows[max_results:]
        return _load_page(conn, rows), token


def _page_rows(conn: psycopg.Connection, sql: str, args: list) -> list:
    """The page query's rows. A page token's offset that PostgreSQL refuses (negative, past
    bigint) is MLflow's BAD_REQUEST with the database's words, as its session wraps them."""
    from psycopg import errors

    try:
        return conn.execute(sql, args).fetchall()
    except errors.DataError as exc:
        raise MlflowException(
            f"({type(exc).__module__}.{type(exc).__name__}) {str(exc).strip()}", BAD_REQUEST
        ) from None


def _load_page(conn: psycopg.Connection, page: list) -> list[Run]:
    """The runs of ``page`` (rows of _PAGE_COLUMNS, in order) with their params, tags and
    latest metrics read in two batched queries and kept raw: each run's RunData builds its
    entities when first read (``RunData._from_raw``), as the SQLite store's page does."""
    if not page:
        return []
    ids = [row[0] for row in page]
    position = {run_uuid: i for i, run_uuid in enumerate(ids)}
    n = len(ids)
    params: list = [None] * n
    tags: list = [None] * n
    metrics: list = [None] * n
    info_from_store, data_from_raw, run_from_store = RunInfo._from_store, RunData._from_raw, Run._from_store
    with paused_gc():  # tens of thousands of small objects
        for run_uuid, kind, key, value in conn.execute(_PAGE_PAIRS_SQL, (ids, ids)):
            parts = tags if kind else params
            i = position[run_uuid]
            pairs = parts[i]
            if pairs is None:
                pairs = parts[i] = []
            pairs.append((key, value))
        for row in conn.execute(_PAGE_METRICS_SQL, (ids,)):
            i = position[row[4]]
            rows = metrics[i]
            if rows is None:
                metrics[i] = [row]
            else:
                rows.append(row)
        runs = []
        for i, (run_uuid, name, user, status, start, end, stage, uri, exp_id) in enumerate(page):
            if user is None or status is None or start is None or exp_id is None:
                # RunInfo's constructor refuses these (MLflow's search fails the same way).
                run_info_from_row((run_uuid, name, user, status, start, end, stage, uri, exp_id))
            info = info_from_store(run_uuid, str(exp_id), user, status, start, end, stage, uri, name)
            runs.append(run_from_store(info, data_from_raw(metrics[i], params[i], tags[i])))
    add_inputs_and_outputs(conn, runs, mark="%s")
    return runs


def search_experiments(
    conn: psycopg.Connection,
    view_type: int,
    max_results: int | None,
    filter_string: str | None,
    order_by: list[str] | None,
    page_token: str | None,
) -> tuple[list[Experiment], str | None]:
    """One page of experiments and the next page's token, as MLflow's ``_search_experiments``."""
    return search_sql.search_experiments(
        POSTGRES,
        lambda sql, args: conn.execute(sql, args).fetchall(),
        lambda: _snapshot(conn),
        view_type,
        max_results,
        filter_string,
        order_by,
        page_token,
    )
