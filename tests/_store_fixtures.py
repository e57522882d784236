"""The SQLite store on its own, for the store tests: a fresh store, decoded records as the
writer hands them over, a run, and the rows SQLite holds."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid

import pytest

from asynctrack import events as ev
from asynctrack.store._sqlite import SqliteStore


def rec(op, *fields):
    """A decoded record, exactly as the writer hands it to the store."""
    return ev.decode(ev.encode(op, *fields))


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(f"sqlite:///{tmp_path}/mlflow.db", artifact_root=str(tmp_path / "mlruns"))
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
    con = sqlite3.connect(store.path)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()
