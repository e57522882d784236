"""search_runs / search_experiments on PostgreSQL against MLflow 3.18 itself, on one database.

MLflow 3.18 (the oracle, through psycopg2) fills a fresh PostgreSQL database with the search
tests' world (tests/_search_data.py's ``build``, run by MLflow's own client) and answers every
query of tests/test_search_vs_mlflow.py there, in one process. asynctrack's
``_postgres.search`` answers the same queries on a psycopg 3 connection to the same database:
run ids, their order, every page and its token, the runs' contents, and the error code and
message of every bad filter, order_by, page token and max_results must be the same.
PostgreSQL decides string order (its collation), NULL order, LIKE escapes and ILIKE for both.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from asynctrack.entities import ViewType
from tests import oracle
from tests._postgres import ROOT, fresh_database, postgres_server  # noqa: F401
from tests.oracle import error_of
from tests.oracle import needs_mlflow, oracle_python  # noqa: F401 - needs_mlflow evaluates it here
from tests.test_search_vs_mlflow import (
    _oracle_search,
    _queries,
    _run_aliases,
    check_contents,
    check_experiments,
    check_pages,
    check_runs,
)

pytestmark = needs_mlflow

# Offsets PostgreSQL itself refuses: MLflow's session answers BAD_REQUEST with the driver's words.
PG_BAD_TOKENS = ["eyJvZmZzZXQiOiAtNX0=", "eyJvZmZzZXQiOiA5MjIzMzcyMDM2ODU0Nzc1ODA4fQ=="]
BUILD_SCRIPT = """
import sys
sys.path.insert(0, ARGS["root"])
import mlflow
from tests._search_data import build
data = build(ARGS["uri"], lib=mlflow)
client = mlflow.MlflowClient(ARGS["uri"])
data["bad_tokens"] = []
for token in ARGS["tokens"]:
    try:
        client.search_runs(data["experiments"], page_token=token)
        data["bad_tokens"].append(None)
    except Exception as e:
        data["bad_tokens"].append(_err(e))
_out(data)
"""


class _Page(list):
    token = None


class PgSearch:
    """MlflowClient's search_runs / search_experiments (its defaults) over
    ``asynctrack.store._postgres.search`` on one psycopg connection: what the differential
    helpers of tests/test_search_vs_mlflow.py call."""

    def __init__(self, conn):
        from asynctrack.store._postgres import search

        self.conn, self.search = conn, search

    def search_runs(self, experiment_ids, filter_string="", run_view_type=ViewType.ACTIVE_ONLY,
                    max_results=1000, order_by=None, page_token=None):
        runs, token = self.search.search_runs(
            self.conn, experiment_ids, filter_string, run_view_type, max_results, order_by, page_token
        )
        page = _Page(runs)
        page.token = token
        return page

    def search_experiments(self, view_type=ViewType.ACTIVE_ONLY, max_results=1000,
                           filter_string=None, order_by=None, page_token=None):
        exps, token = self.search.search_experiments(
            self.conn, view_type, max_results, filter_string, order_by, page_token
        )
        page = _Page(exps)
        page.token = token
        return page


@contextlib.contextmanager
def _collated_template(server_uri: str, psycopg, collation: str) -> Iterator[str | None]:
    """An empty database to copy whose string order is ``collation``'s: None for the server's
    own (scripts/postgres.sh: C, byte order), else an ICU locale (case and accents ordered as
    people read them), where this PostgreSQL has ICU."""
    if collation == "C":
        yield None
        return
    name = f"asynctrack_icu_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_uri, autocommit=True) as conn:
        try:
            conn.execute(
                f"CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu "
                f"ICU_LOCALE '{collation}'"
            )
        except psycopg.Error as exc:
            pytest.skip(f"this PostgreSQL cannot make an ICU database ({exc.sqlstate})")
    try:
        yield name
    finally:
        with psycopg.connect(server_uri, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module", params=["C", "en-US"])
def pg_world(request, postgres_server, tmp_path_factory):  # noqa: F811 - the fixture
    """One database that MLflow filled (in the server's C collation, or an ICU one), MLflow's
    answers on it, and a psycopg connection to it."""
    psycopg = pytest.importorskip("psycopg")
    py = oracle.oracle_python()
    probe = oracle.subprocess.run([py, "-c", "import psycopg2"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("psycopg2 not installed in the MLflow oracle (.venv-oracle): pip install psycopg2-binary")
    cwd = tmp_path_factory.mktemp("pg-search")
    with _collated_template(postgres_server, psycopg, request.param) as template, \
            fresh_database(postgres_server, template) as uri:
        mlflow_uri = uri.replace("postgresql://", "postgresql+psycopg2://", 1)
        data = oracle.run(BUILD_SCRIPT, cwd=cwd, uri=mlflow_uri, root=str(ROOT), tokens=PG_BAD_TOKENS)
        queries = _queries(data)
        theirs = _oracle_search(mlflow_uri, cwd, data, queries)
        with psycopg.connect(uri, autocommit=True) as conn:
            yield {
                "data": data,
                "queries": queries,
                "oracle": theirs,
                "norm": _run_aliases(data),
                "conn": conn,
                "client": PgSearch(conn),
            }


def test_search_runs_same_ids_order_tokens_and_errors(pg_world):
    check_runs(pg_world["client"], pg_world)


def test_search_runs_pages_same_as_mlflow(pg_world):
    check_pages(pg_world["client"], pg_world)


def test_search_runs_contents_same_as_mlflow(pg_world):
    check_contents(pg_world["client"], pg_world)


def test_search_experiments_same_as_mlflow(pg_world):
    check_experiments(pg_world["client"], pg_world)


def test_offsets_postgresql_refuses_are_mlflows_bad_request(pg_world):
    """A token whose offset PostgreSQL refuses: MLflow's error code, and PostgreSQL's words
    in the message (MLflow's message adds its SQL text after them)."""
    exps = pg_world["data"]["experiments"]
    for token, theirs in zip(PG_BAD_TOKENS, pg_world["data"]["bad_tokens"]):
        ours = error_of(pg_world["client"].search_runs, exps, page_token=token)
        assert theirs is not None and ours["error_code"] == theirs["error_code"] == "BAD_REQUEST"
        assert theirs["message"].startswith(ours["message"].replace("psycopg.", "psycopg2.")), (ours, theirs)


class _Watched:
    """A psycopg connection that notes, at each query, the transaction it runs in."""

    def __init__(self, conn):
        self.conn, self.seen = conn, []
        self.info, self.transaction = conn.info, conn.transaction

    def execute(self, sql, args=None):
        cursor = self.conn.execute(sql, args)
        state = self.conn.execute("SELECT current_setting('transaction_isolation'), "
                                  "current_setting('transaction_read_only')").fetchone()
        self.seen.append((sql.split()[0], self.conn.info.transaction_status.name, *state))
        return cursor


def test_search_reads_one_snapshot_and_leaves_no_transaction(pg_world):
    """On an idle autocommit connection a search opens one REPEATABLE READ READ ONLY
    transaction for all its queries and ends it; inside the caller's transaction it uses
    that one."""
    from asynctrack.store._postgres import search
    from psycopg import pq

    conn, exps = pg_world["conn"], pg_world["data"]["experiments"]
    watched = _Watched(conn)
    runs, _ = search.search_runs(watched, exps, "metrics.m1 > 0", ViewType.ALL, 5, ["params.p1"], None)
    search.search_experiments(watched, ViewType.ALL, 5, "tags.team IS NOT NULL", None, None)
    # SET, page, pairs, metrics, the inputs probe (no run has inputs here); SET, page, tags
    assert runs and len(watched.seen) == 5 + 3
    assert {s[1:] for s in watched.seen} == {("INTRANS", "repeatable read", "on")}
    assert conn.info.transaction_status == pq.TransactionStatus.IDLE
    watched.seen.clear()
    with conn.transaction():
        search.search_runs(watched, exps, "", ViewType.ALL, 5, None, None)
        assert conn.info.transaction_status == pq.TransactionStatus.INTRANS
    assert [s[0] for s in watched.seen] == ["SELECT"] * 4  # no SET: the caller's transaction
    assert conn.info.transaction_status == pq.TransactionStatus.IDLE
