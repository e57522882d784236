"""The store suite's fixtures: one fresh store of each kind (SQLite, PostgreSQL), decoded
records as the writer hands them over, a run, and the rows the database holds.

A test that takes ``store`` (or ``store_kind``, or the ``fluent`` fixture of conftest.py) runs
once per store kind (``[sqlite]``, ``[postgres]``); ``@pytest.mark.sqlite_only("why")`` keeps
it to SQLite. The PostgreSQL variants skip with one line where PostgreSQL is missing."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path

import pytest

from asynctrack import events as ev
from asynctrack.store._sqlite import SqliteStore

STORE_KINDS = ("sqlite", "postgres")


def parametrize_store_kind(metafunc: pytest.Metafunc) -> None:
    """``store_kind`` over every kind, or SQLite alone for a ``sqlite_only`` test (conftest's
    pytest_generate_tests). A sqlite_only marker must say why."""
    if "store_kind" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("sqlite_only")
    if marker is not None and not (marker.args or marker.kwargs.get("reason")):
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: sqlite_only needs a reason")
    kinds = ["sqlite"] if marker is not None else list(STORE_KINDS)
    metafunc.parametrize("store_kind", kinds, scope="function")


def tracking_uri_of_kind(kind: str, directory: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, empty tracking store of ``kind`` for this test: its URI. SQLite: a new
    ``mlflow.db`` in ``directory``; PostgreSQL: a new database (Default's artifacts under
    ``directory/mlruns``, as a store opened with that root would put them), dropped when the
    test's fixtures have finished."""
    if kind == "sqlite":
        return f"sqlite:///{directory}/mlflow.db"
    from tests._postgres import tracking_database

    server = request.getfixturevalue("postgres_server")
    template = request.getfixturevalue("postgres_template")
    database = tracking_database(server, template, str(directory / "mlruns"))
    uri = database.__enter__()
    request.addfinalizer(lambda: database.__exit__(None, None, None))
    return uri


def rec(op, *fields):
    """A decoded record, exactly as the writer hands it to the store."""
    return ev.decode(ev.encode(op, *fields))


@pytest.fixture
def store(store_kind, tmp_path, request):
    """A fresh store of each kind, its artifacts under ``tmp_path/mlruns``."""
    root = str(tmp_path / "mlruns")
    if store_kind == "sqlite":
        s = SqliteStore(f"sqlite:///{tmp_path}/mlflow.db", artifact_root=root)
    else:
        from asynctrack.store._postgres import PostgresStore

        s = PostgresStore(tracking_uri_of_kind(store_kind, tmp_path, request), artifact_root=root)
    yield s
    # The async tests open the write connection on their own loop; close it (aiosqlite's thread
    # would otherwise keep the interpreter from exiting) before the read side.
    asyncio.run(s.close_writer())
    s.close()


async def new_run(store, exp="0", tags=()):
    run_id = uuid.uuid4().hex
    out = await store.apply([rec(ev.CREATE_RUN, run_id, exp, "me", 1000, list(tags), "r-1")])
    assert out == [None]
    return run_id


def rows(store, sql, *args):
    """The rows of ``sql`` (``?`` placeholders) on the store's database, read on a connection
    of its own. PostgreSQL's booleans compare equal to SQLite's 0/1."""
    if isinstance(store, SqliteStore):
        con = sqlite3.connect(store.path)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()
    import psycopg

    with psycopg.connect(store.dsn, autocommit=True) as con:
        return [tuple(r) for r in con.execute(sql.replace("?", "%s"), args).fetchall()]



def fetch_all(uri: str, sql: str, *args) -> list[tuple]:
    """The rows of ``sql`` (``?`` placeholders) on the tracking database at ``uri``
    (``sqlite:///`` or ``postgresql://``), read on a connection of its own."""
    if uri.startswith("sqlite:"):
        from asynctrack.store._sqlite.connection import path_from_uri

        con = sqlite3.connect(path_from_uri(uri))
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()
    import psycopg

    from asynctrack.store._postgres.uri import libpq_uri

    with psycopg.connect(libpq_uri(uri), autocommit=True) as con:
        return [tuple(r) for r in con.execute(sql.replace("?", "%s"), args).fetchall()]


def scalar(uri: str, sql: str, *args):
    """The first column of the first row of ``sql`` on the tracking database at ``uri``."""
    return fetch_all(uri, sql, *args)[0][0]
