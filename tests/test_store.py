"""The SQLite store on its own: schema, the format's rules, batches that fail record by record."""

from __future__ import annotations

import shutil
import time
import math
import multiprocessing
import sqlite3
import uuid

import pytest

from asynctrack import events as ev
from asynctrack.exceptions import MlflowException
from asynctrack.store._sqlite import SqliteStore
from asynctrack.store._sqlite.connection import path_from_uri
from asynctrack.store._sqlite.schema import SCHEMA_REVISION
from tests._store_fixtures import new_run, rec, rows, store  # noqa: F401 (fixture)

MAX = 1.7976931348623157e308


# -- schema ------------------------------------------------------------------------------------


@pytest.mark.sqlite_only("SQLite's catalogue (PostgreSQL's schema: tests/test_postgres_schema.py)")
def test_new_file_gets_the_whole_schema_and_default_experiment(store):
    tables = rows(store, "SELECT name FROM sqlite_master WHERE type='table'")
    assert len(tables) == 71
    assert rows(store, "SELECT version_num FROM alembic_version") == [(SCHEMA_REVISION,)]
    assert rows(store, "PRAGMA journal_mode") == [("wal",)]
    exp = store.get_experiment("0")
    assert (exp.experiment_id, exp.name, exp.lifecycle_stage) == ("0", "Default", "active")
    assert exp.artifact_location.endswith("/mlruns/0")


@pytest.mark.sqlite_only("SQLite's schema.sql (PostgreSQL's is compared with MLflow's dump: tests/test_postgres_schema.py)")
def test_schema_matches_the_reference_text(store):
    """Every CREATE statement of MLflow's schema is in the file, verbatim."""
    from importlib import resources

    text = resources.files("asynctrack.store._sqlite").joinpath("schema.sql").read_text()
    created = {r[0] for r in rows(store, "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")}
    for stmt in text.split(";\n"):
        stmt = stmt.strip()
        if stmt.startswith("CREATE TABLE") or stmt.startswith("CREATE INDEX"):
            body = stmt.split("\n", 1)[-1].strip()[:60]
            assert any(body in c for c in created), stmt[:80]


def test_reopening_keeps_data_and_does_not_recreate(tmp_path):
    uri = f"sqlite:///{tmp_path}/x.db"
    a = SqliteStore(uri)
    before = rows(a, "SELECT creation_time FROM experiments WHERE experiment_id = 0")
    b = SqliteStore(uri)
    assert rows(b, "SELECT creation_time FROM experiments WHERE experiment_id = 0") == before
    assert rows(b, "SELECT count(*) FROM experiments") == [(1,)]


def test_a_file_without_the_default_experiment_gets_it_as_mlflows_store_adds_it(tmp_path):
    """``mlflow db upgrade`` makes the schema without Default; MLflow's store adds it when it
    opens the file, and so does asynctrack."""
    uri = f"sqlite:///{tmp_path}/x.db"
    SqliteStore(uri, artifact_root="/first").close()
    con = sqlite3.connect(tmp_path / "x.db")
    con.execute("DELETE FROM experiments")
    con.commit()
    con.close()
    store = SqliteStore(uri, artifact_root="/second")
    try:
        e = store.get_experiment("0")
        assert (e.name, e.artifact_location, e.lifecycle_stage) == ("Default", "/second/0", "active")
    finally:
        store.close()


def test_other_revision_is_refused_with_what_to_do(tmp_path):
    uri = f"sqlite:///{tmp_path}/old.db"
    SqliteStore(uri)
    con = sqlite3.connect(tmp_path / "old.db")
    con.execute("UPDATE alembic_version SET version_num = 'abc123'")
    con.commit()
    con.close()
    with pytest.raises(MlflowException) as e:
        SqliteStore(uri)
    assert "abc123" in e.value.message and "mlflow db upgrade" in e.value.message


def test_foreign_sqlite_file_is_refused(tmp_path):
    con = sqlite3.connect(tmp_path / "other.db")
    con.execute("CREATE TABLE users (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(MlflowException, match="not an MLflow tracking database"):
        SqliteStore(f"sqlite:///{tmp_path}/other.db")


def test_uri_paths_as_sqlalchemy_reads_them():
    assert path_from_uri("sqlite:///mlflow.db") == "mlflow.db"
    assert path_from_uri("sqlite:////abs/dir/m.db") == "/abs/dir/m.db"
    assert path_from_uri("sqlite:///sub%20dir/m.db") == "sub dir/m.db"
    with pytest.raises(MlflowException):
        path_from_uri("sqlite://")
    with pytest.raises(MlflowException):
        path_from_uri("postgresql://x/y")


def _open(uri):
    SqliteStore(uri)
    return "ok"


def test_many_processes_creating_one_new_file_at_once(tmp_path):
    uri = f"sqlite:///{tmp_path}/race.db"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(6) as pool:
        assert pool.map(_open, [uri] * 12) == ["ok"] * 12
    con = sqlite3.connect(tmp_path / "race.db")
    assert con.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone() == (71,)
    assert con.execute("SELECT count(*) FROM experiments").fetchone() == (1,)
    assert con.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# -- the format's rules ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_nan_and_inf_are_stored_as_mlflow_stores_them(store):
    run_id = await new_run(store)
    out = await store.apply(
        [
            rec(ev.METRIC, run_id, "nan", math.nan, 10, 0),
            rec(ev.METRIC, run_id, "pinf", math.inf, 10, 0),
            rec(ev.METRIC, run_id, "ninf", -math.inf, 10, 0),
        ]
    )
    assert out == [None, None, None]
    stored = dict(
        (k, (v, n)) for k, v, n in rows(store, "SELECT key, value, is_nan FROM metrics")
    )
    assert stored == {"nan": (0.0, 1), "pinf": (MAX, 0), "ninf": (-MAX, 0)}
    latest = dict((k, (v, n)) for k, v, n in rows(store, "SELECT key, value, is_nan FROM latest_metrics"))
    assert latest == stored
    metrics = store.get_run(run_id).data.metrics
    assert math.isnan(metrics["nan"]) and metrics["pinf"] == MAX and metrics["ninf"] == -MAX
    (point,), _ = store.get_metric_history(run_id, "nan")
    assert math.isnan(point.value)


@pytest.mark.asyncio
async def test_a_wide_batch_stores_every_point_and_the_latest_of_each_key(store):
    """Over 64 keys in one batch the rows go in primary-key order: nothing may change but speed."""
    run_id = await new_run(store)
    keys = [f"k{i:03d}" for i in range(150)]
    batch = [rec(ev.METRIC, run_id, k, float(step * 1000 + i), 10 + step, step)
             for step in range(4) for i, k in enumerate(keys)]
    batch.append(batch[0])  # an identical point, stored once
    batch.append(rec(ev.METRIC, run_id, "k007", float("nan"), 99, 9))  # a NaN, the latest of k007
    await store.apply(batch)
    assert rows(store, "SELECT count(*) FROM metrics") == [(4 * 150 + 1,)]
    latest = dict(rows(store, "SELECT key, step FROM latest_metrics WHERE run_uuid = ?", run_id))
    assert len(latest) == 150 and latest["k149"] == 3 and latest["k007"] == 9
    history, _ = store.get_metric_history(run_id, "k042")
    assert [(m.step, m.value, m.timestamp) for m in history] == [
        (s, float(s * 1000 + 42), 10 + s) for s in range(4)
    ]


@pytest.mark.asyncio
async def test_identical_point_is_stored_once(store):
    run_id = await new_run(store)
    point = rec(ev.METRIC, run_id, "m", 1.5, 100, 3)
    await store.apply([point, point])
    await store.apply([point, rec(ev.BATCH, run_id, [["m", 1.5, 100, 3]], [], [])])
    assert rows(store, "SELECT count(*) FROM metrics") == [(1,)]
    # the same step and time with another value is another point
    await store.apply([rec(ev.METRIC, run_id, "m", 2.5, 100, 3)])
    assert rows(store, "SELECT count(*) FROM metrics") == [(2,)]


# (value, timestamp, step) of points logged in turn, and the one latest_metrics keeps (also the
# rules' own test, tests/test_store_rules.py)
LATEST_CASES = [
    # highest step wins, even when logged earlier in time
    ([(1.0, 500, 2), (2.0, 900, 1)], (1.0, 500, 2)),
    # equal steps: the later timestamp wins
    ([(1.0, 500, 2), (2.0, 400, 2)], (1.0, 500, 2)),
    ([(1.0, 400, 2), (2.0, 500, 2)], (2.0, 500, 2)),
    # equal step and timestamp: the higher value wins
    ([(3.0, 500, 2), (2.0, 500, 2)], (3.0, 500, 2)),
    ([(2.0, 500, 2), (3.0, 500, 2)], (3.0, 500, 2)),
    # negative steps are steps too
    ([(1.0, 500, -5), (2.0, 100, -1)], (2.0, 100, -1)),
]


@pytest.mark.asyncio
@pytest.mark.parametrize("points, expected", LATEST_CASES)
async def test_latest_metric_is_highest_step_then_timestamp_then_value(store, points, expected):
    run_id = await new_run(store)
    # once within one batch, once across batches: both must agree
    await store.apply([rec(ev.METRIC, run_id, "a", v, t, s) for v, t, s in points])
    for v, t, s in points:
        await store.apply([rec(ev.METRIC, run_id, "b", v, t, s)])
    got = {
        k: (v, t, s)
        for k, v, t, s in rows(store, "SELECT key, value, timestamp, step FROM latest_metrics")
    }
    assert got == {"a": expected, "b": expected}


@pytest.mark.asyncio
async def test_metric_history_order_and_pages(store):
    run_id = await new_run(store)
    pts = [(float(i % 7), 1000 - i, i) for i in range(25)]
    await store.apply([rec(ev.METRIC, run_id, "m", v, t, s) for v, t, s in pts])
    history, token = store.get_metric_history(run_id, "m")
    assert token is None
    assert [(m.value, m.timestamp, m.step) for m in history] == sorted(
        pts, key=lambda p: (p[1], p[2], p[0])
    )
    paged, token = [], None
    while True:
        page, token = store.get_metric_history(run_id, "m", max_results=10, page_token=token)
        paged += page
        if token is None:
            break
    assert [(m.timestamp, m.step) for m in paged] == [(m.timestamp, m.step) for m in history]
    with pytest.raises(MlflowException, match="Invalid page token"):
        store.get_metric_history(run_id, "m", max_results=10, page_token="!!notbase64")


@pytest.mark.asyncio
async def test_params_are_immutable_but_relogging_the_same_value_is_fine(store):
    run_id = await new_run(store)
    out = await store.apply(
        [
            rec(ev.PARAM, run_id, "lr", "0.1"),
            rec(ev.PARAM, run_id, "lr", "0.1"),
            rec(ev.PARAM, run_id, "lr", "0.2"),
            rec(ev.BATCH, run_id, [], [["lr", "0.3"], ["depth", "3"]], []),
            rec(ev.BATCH, run_id, [], [["lr", "0.1"], ["depth", "4"]], []),
        ]
    )
    assert out[:2] == [None, None]
    assert out[2].error_code == "INVALID_PARAMETER_VALUE"
    assert out[2].message == (
        "Changing param values is not allowed. Param with key='lr' was already logged with "
        f"value='0.1' for run ID='{run_id}'. Attempted logging new value '0.2'."
    )
    assert out[3].message == (
        "Changing param values is not allowed. Params were already logged="
        f"'[{{'key': 'lr', 'old_value': '0.1', 'new_value': '0.3'}}]' for run ID='{run_id}'."
    )
    assert out[4] is None
    # the failed batch stored nothing, not even its valid 'depth'; the good one stored it
    assert store.get_run(run_id).data.params == {"lr": "0.1", "depth": "4"}


@pytest.mark.asyncio
async def test_a_bad_record_fails_alone_and_the_rest_of_the_batch_is_stored(store):
    good = await new_run(store)
    deleted = await new_run(store)
    await store.apply([rec(ev.DELETE_RUN, deleted, 5)])
    missing = uuid.uuid4().hex
    batch = []
    for i in range(100):
        batch.append(rec(ev.METRIC, good, "m", float(i), 10 + i, i))
    batch.insert(10, rec(ev.METRIC, deleted, "m", 1.0, 1, 1))
    batch.insert(20, rec(ev.METRIC, missing, "m", 1.0, 1, 1))
    batch.insert(30, rec(ev.CREATE_EXPERIMENT, "Default", None, [], 1))  # duplicate name
    batch.insert(40, rec(ev.SET_EXPERIMENT_TAG, "0", "k", "v"))
    out = await store.apply(batch)
    errors = {i: o for i, o in enumerate(out) if o is not None}
    assert set(errors) == {10, 20, 30}
    assert errors[10].message == f"The run {deleted} must be in the 'active' state. Current state is deleted."
    assert errors[10].error_code == "INVALID_PARAMETER_VALUE"
    assert errors[20].message == f"Run with id={missing} not found"
    assert errors[20].error_code == "RESOURCE_DOES_NOT_EXIST"
    assert errors[30].error_code == "RESOURCE_ALREADY_EXISTS"
    assert errors[30].message.startswith("Experiment(name=Default) already exists.")
    assert len(store.get_metric_history(good, "m")[0]) == 100
    assert store.get_metric_history(deleted, "m")[0] == []
    assert store.get_experiment("0").tags == {"k": "v"}


@pytest.mark.asyncio
async def test_logging_to_a_finished_run_is_allowed(store):
    run_id = await new_run(store)
    await store.apply([rec(ev.UPDATE_RUN, run_id, "FINISHED", 2000, None)])
    assert await store.apply([rec(ev.METRIC, run_id, "late", 1.0, 3000, 0)]) == [None]
    assert store.get_run(run_id).data.metrics == {"late": 1.0}


@pytest.mark.asyncio
async def test_run_name_tag_renames_the_run(store):
    run_id = await new_run(store)
    await store.apply([rec(ev.TAG, run_id, "mlflow.runName", "renamed")])
    run = store.get_run(run_id)
    assert run.info.run_name == "renamed" and run.data.tags["mlflow.runName"] == "renamed"
    await store.apply([rec(ev.UPDATE_RUN, run_id, None, None, "again")])
    run = store.get_run(run_id)
    assert run.info.run_name == "again" and run.data.tags["mlflow.runName"] == "again"


@pytest.mark.asyncio
async def test_experiment_lifecycle(store):
    (exp,) = await store.apply([rec(ev.CREATE_EXPERIMENT, "e", None, [["a", "b"]], 77)])
    assert exp == "1"
    e = store.get_experiment(exp)
    assert (e.name, e.tags, e.creation_time, e.last_update_time) == ("e", {"a": "b"}, 77, 77)
    assert e.artifact_location.endswith("/mlruns/1")
    run_id = await new_run(store, exp)
    out = await store.apply(
        [
            rec(ev.DELETE_EXPERIMENT, exp, 100),
            rec(ev.DELETE_EXPERIMENT, exp, 101),
            rec(ev.RENAME_EXPERIMENT, exp, "x", 102),
            rec(ev.SET_EXPERIMENT_TAG, exp, "k", "v"),
            rec(ev.CREATE_RUN, uuid.uuid4().hex, exp, "me", 1, [], "n"),
        ]
    )
    assert out[0] is None
    assert out[1].message == "No Experiment with id=1 exists"
    assert (out[2].error_code, out[2].message) == ("INVALID_STATE", "Cannot rename a non-active experiment.")
    assert out[3].message == "The experiment 1 must be in the 'active' state. Current state is deleted."
    assert out[4].message == "The experiment 1 must be in the 'active' state. Current state is deleted."
    assert store.get_run(run_id).info.lifecycle_stage == "deleted"
    assert await store.apply([rec(ev.RESTORE_EXPERIMENT, exp, 200)]) == [None]
    assert store.get_run(run_id).info.lifecycle_stage == "active"
    assert store.get_experiment(exp).last_update_time == 200
    assert store.get_experiment_by_name("e").experiment_id == exp
    assert store.get_experiment_by_name("nope") is None
    with pytest.raises(MlflowException, match="No Experiment with id=42 exists"):
        store.get_experiment("42")


@pytest.mark.asyncio
async def test_replaying_records_stores_nothing_twice(store):
    run_id = uuid.uuid4().hex
    batch = [
        rec(ev.CREATE_RUN, run_id, "0", "me", 1000, [["t", "1"]], "r"),
        rec(ev.METRIC, run_id, "m", 1.0, 5, 0),
        rec(ev.PARAM, run_id, "p", "1"),
        rec(ev.TAG, run_id, "t", "2"),
        rec(ev.BATCH, run_id, [["m", 2.0, 6, 1]], [["q", "x"]], [["u", "v"]]),
    ]
    assert await store.apply(batch) == [None] * 5
    assert await store.apply(batch) == [None] * 5
    run = store.get_run(run_id)
    assert run.data.params == {"p": "1", "q": "x"}
    assert run.data.tags == {"t": "2", "u": "v", "mlflow.runName": "r"}
    assert rows(store, "SELECT count(*) FROM metrics") == [(2,)]
    assert rows(store, "SELECT count(*) FROM runs") == [(1,)]


@pytest.mark.asyncio
async def test_delete_tag_and_missing_tag(store):
    run_id = await new_run(store, tags=[["k", "v"]])
    out = await store.apply([rec(ev.DELETE_TAG, run_id, "k"), rec(ev.DELETE_TAG, run_id, "k")])
    assert out[0] is None
    assert (out[1].error_code, out[1].message) == (
        "RESOURCE_DOES_NOT_EXIST",
        f"No tag with name: k in run with id {run_id}",
    )


def test_a_new_file_gets_4k_pages_and_an_existing_file_keeps_its_own(tmp_path):
    from asynctrack import MlflowClient
    from asynctrack.store._sqlite import schema

    assert schema.PAGE_SIZE == 4096
    MlflowClient(f"sqlite:///{tmp_path}/new.db").create_experiment("x")
    con = sqlite3.connect(tmp_path / "new.db")
    assert con.execute("PRAGMA page_size").fetchone() == (4096,)
    con.close()
    # A file made elsewhere with other pages (asynctrack before 2026-12 made 8 KiB pages) is
    # used as it is.
    old = tmp_path / "old.db"
    shutil.copy(tmp_path / "new.db", old)
    con = sqlite3.connect(old)
    con.execute("PRAGMA journal_mode=DELETE")
    con.execute("PRAGMA page_size=8192")
    con.execute("VACUUM")
    assert con.execute("PRAGMA page_size").fetchone() == (8192,)
    con.close()
    client = MlflowClient(f"sqlite:///{old}")
    run = client.create_run(client.create_experiment("y")).info.run_id
    client.log_metric(run, "m", 1.0)
    con = sqlite3.connect(old)
    assert con.execute("PRAGMA page_size").fetchone() == (8192,)
    assert con.execute("SELECT count(*) FROM metrics").fetchone() == (1,)
    con.close()


def test_the_wal_is_checkpointed_in_the_background_without_a_commit_paying_for_it(tmp_path):
    """Synchronous log_batch calls commit in the caller's thread; past CHECKPOINT_ROWS rows the
    writer's loop copies the WAL into the database file. The main file alone (no -wal) then
    holds the rows: proof that a checkpoint ran, while SQLite's own autocheckpoint (8,000 pages,
    far more than these rows fill) never did."""
    from asynctrack import MlflowClient
    from asynctrack.entities import Metric
    from asynctrack.store._sqlite import writes

    db = tmp_path / "ck.db"
    client = MlflowClient(f"sqlite:///{db}")
    run = client.create_run("0").info.run_id
    batches = writes.CHECKPOINT_ROWS // 1000 + 2
    for j in range(batches):
        client.log_batch(run, metrics=[Metric("m", float(i), 1, j * 1000 + i) for i in range(1000)])

    def rows_in_main_file() -> int:
        copy = tmp_path / "main-only.db"
        shutil.copy(db, copy)  # the database file without its WAL: what was checkpointed
        con = sqlite3.connect(copy)
        try:
            return con.execute("SELECT count(*) FROM metrics").fetchone()[0]
        except sqlite3.DatabaseError:
            return 0  # copied while a checkpoint was writing it: look again
        finally:
            con.close()
            for leftover in tmp_path.glob("main-only.db*"):
                leftover.unlink()

    deadline = time.monotonic() + 10
    while rows_in_main_file() < writes.CHECKPOINT_ROWS and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rows_in_main_file() >= writes.CHECKPOINT_ROWS
    # and everything is there through the store, as ever
    assert len(client.get_metric_history(run, "m")) == batches * 1000


def test_read_connections_hold_a_search_s_pages_and_writers_keep_theirs_small(tmp_path):
    """A filtered search over 10,000 runs touches ~18 MB of pages: readers keep 32 MB, the
    writer's connections 8 MB (its RSS is a target while logging)."""
    from asynctrack import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/c.db")
    run = client.create_run("0").info.run_id
    store = client._store
    # A synchronous call takes the caller's own connection when the writer is idle (it may
    # still be busy with create_run's upkeep for the first few).
    for step in range(100):
        client.log_metric(run, "m", 1.0, step=step)
        if getattr(store._writer._inline, "conn", None) is not None:
            break
        time.sleep(0.01)
    assert store._conn().execute("PRAGMA cache_size").fetchone() == (-32768,)
    assert store._writer._inline.conn.execute("PRAGMA cache_size").fetchone() == (-8192,)


@pytest.mark.asyncio
async def test_tag_values_that_are_not_text_are_stored_as_mlflows_sqlite_store_stores_them(store):
    """create_run(tags={"k": 1}) reaches the store as an int: every store keeps the text that
    MLflow's SQLite store makes of it (PostgreSQL's driver would refuse a non-text value)."""
    (exp,) = await store.apply([rec(ev.CREATE_EXPERIMENT, "typed", None, [["n", 2]], 1)])
    tags = [["i", 1], ["b", True], ["f", 2.5], ["e", 1e20], ["nan", math.nan], ["inf", -math.inf], ["s", "x"]]
    run_id = await new_run(store, exp, tags=tags)
    assert store.get_run(run_id).data.tags == {
        "i": "1", "b": "1", "f": "2.5", "e": "1.0e+20", "nan": None, "inf": "-Inf", "s": "x", "mlflow.runName": "r-1"
    }
    assert store.get_experiment(exp).tags == {"n": "2"}
