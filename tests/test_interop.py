"""The file format is MLflow 3.18's: each side opens, reads and keeps writing what the other wrote.

* Both on a SQLite file and on a PostgreSQL database (MLflow through psycopg2):
* A store asynctrack created (from an empty file or database) and filled reads the same through
  ``mlflow.MlflowClient("sqlite:///...")`` as through asynctrack: experiments, runs (info), params,
  tags, latest metrics and whole metric histories, compared exactly; MLflow's search over it works.
* A file MLflow created and filled reads the same through asynctrack; asynctrack keeps writing to
  it, and MLflow reads the result as asynctrack does.
* Files at another alembic revision, and SQLite files that are not MLflow's, are refused;
  an empty file is initialized, with the same tables, columns, indexes and keys as MLflow's.
* ``PRAGMA integrity_check`` is ``ok`` on every file asynctrack wrote.

``DUMP`` (below) is executed verbatim by both sides, so both read with the same calls. Values are
compared exactly; NaN is carried as the string "nan" (NaN != NaN), and ±inf, which MLflow's store
writes as ±1.7976931348623157e308, is read back as that number by both.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from asynctrack import MlflowClient, MlflowException
from asynctrack.entities import Metric, Param, RunTag
from tests._postgres import fresh_database, oracle_postgres_uri, pg_dump, postgres_server  # noqa: F401
from tests.oracle import needs_mlflow, oracle_python, run  # noqa: F401 (skipif evaluates oracle_python)

REVISION = "f4a9b2c7d1e6"
MAX_FLOAT = 1.7976931348623157e308

DUMP = r'''
import math


def _num(x):
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return x


def _metric(m):
    return [m.key, _num(m.value), m.timestamp, m.step]


def dump_experiment(e):
    return {
        "experiment_id": e.experiment_id,
        "name": e.name,
        "artifact_location": e.artifact_location,
        "lifecycle_stage": e.lifecycle_stage,
        "creation_time": e.creation_time,
        "last_update_time": e.last_update_time,
        "tags": dict(e.tags),
    }


def dump_run(r):
    i = r.info
    return {
        "info": {
            "run_id": i.run_id,
            "experiment_id": i.experiment_id,
            "status": i.status,
            "start_time": i.start_time,
            "end_time": i.end_time,
            "lifecycle_stage": i.lifecycle_stage,
            "artifact_uri": i.artifact_uri,
            "run_name": i.run_name,
            "user_id": i.user_id,
        },
        "params": dict(r.data.params),
        "tags": dict(r.data.tags),
        "metrics": {k: _num(v) for k, v in r.data.metrics.items()},
        # the latest point of each key, with its timestamp and step
        "latest": sorted(_metric(m) for m in r.data._metric_objs),
    }


def dump(client, experiment_ids, run_ids):
    out = {"experiments": {}, "by_name": {}, "runs": {}, "histories": {}}
    for e in experiment_ids:
        exp = client.get_experiment(e)
        out["experiments"][e] = dump_experiment(exp)
        by_name = client.get_experiment_by_name(exp.name)
        out["by_name"][exp.name] = by_name.experiment_id if by_name is not None else None
    for r in run_ids:
        run = client.get_run(r)
        out["runs"][r] = dump_run(run)
        out["histories"][r] = {
            key: [_metric(m) for m in client.get_metric_history(r, key)]
            for key in sorted(run.data.metrics)
        }
    return out
'''

# MLflow's own client filling a store (run in the oracle): experiments, runs, params, tags and
# metrics of every kind. ``mlflow_fill(client)`` returns (experiment ids, run ids).
MLFLOW_FILL = r'''
from mlflow.entities import Metric, Param, RunTag


def mlflow_fill(c):
    e1 = c.create_experiment("ml-a", tags={"team": "vision", "mlflow.note.content": "notes"})
    e2 = c.create_experiment("ml-b", artifact_location="s3://bucket/ml-b")
    c.rename_experiment(e2, "ml-b-renamed")
    c.set_experiment_tag(e2, "stage", "prod")
    e3 = c.create_experiment("ml-gone")
    r1 = c.create_run(e1, start_time=1000, tags={"mlflow.user": "bob", "k": "v"}, run_name="first").info.run_id
    for step in range(5):
        c.log_metric(r1, "loss", 1.0 / (step + 1), timestamp=2000 + step, step=step)
    c.log_metric(r1, "loss", 0.5, timestamp=1500, step=1)   # out of order
    c.log_metric(r1, "nan", float("nan"), timestamp=2000, step=0)
    c.log_metric(r1, "inf", float("inf"), timestamp=2000, step=0)
    c.log_metric(r1, "ninf", float("-inf"), timestamp=2000, step=0)
    c.log_metric(r1, "acc", 0.9, timestamp=3000, step=7)
    c.log_metric(r1, "acc", 0.95, timestamp=2500, step=7)
    c.log_param(r1, "lr", "0.01")
    c.log_param(r1, "layers", 3)
    c.set_tag(r1, "mlflow.runName", "first-renamed")
    c.log_batch(r1, metrics=[Metric("batch", float(i), 4000 + i, i) for i in range(50)],
                params=[Param("bp", "x")], tags=[RunTag("bt", "y")])
    c.set_terminated(r1, end_time=9000)
    r2 = c.create_run(e1, tags={"mlflow.runName": "by-tag"}).info.run_id
    c.log_metric(r2, "loss", 2.0, timestamp=100, step=0)
    r3 = c.create_run(e1, run_name="doomed").info.run_id
    c.log_param(r3, "p", "q")
    c.log_metric(r3, "m", 1.0, timestamp=100, step=0)
    c.delete_run(r3)
    r4 = c.create_run(e2).info.run_id
    c.update_run(r4, status="FAILED", name="updated-name")
    r5 = c.create_run("0", run_name="in-default").info.run_id
    r6 = c.create_run(e3, run_name="gone-with-exp").info.run_id
    c.delete_experiment(e3)
    exps, runs = ["0", e1, e2, e3], [r1, r2, r3, r4, r5, r6]
    return exps, runs
'''


def _dump_ns() -> dict:
    ns: dict = {}
    exec(DUMP, ns)
    return ns


def dump(client, experiment_ids, run_ids) -> dict:
    """asynctrack's reading of a file, JSON round-tripped like the oracle's."""
    return json.loads(json.dumps(_dump_ns()["dump"](client, experiment_ids, run_ids)))


def integrity(path) -> str:
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def sql(path, statement, *args):
    con = sqlite3.connect(path)
    try:
        with con:
            return con.execute(statement, args).fetchall()
    finally:
        con.close()


def schema(path) -> dict:
    """Tables with their columns, primary and foreign keys, and indexes (auto-indexes included),
    as SQLite reports them: what a reader of the file depends on."""
    con = sqlite3.connect(path)
    try:
        out = {}
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )]
        for t in tables:
            columns = [tuple(r) for r in con.execute(f"PRAGMA table_xinfo('{t}')")]
            fks = sorted(tuple(r[2:]) for r in con.execute(f"PRAGMA foreign_key_list('{t}')"))
            indexes = {}
            for _, name, unique, origin, partial in con.execute(f"PRAGMA index_list('{t}')"):
                cols = [r[2] for r in con.execute(f"PRAGMA index_info('{name}')")]
                key = name if origin == "c" else f"<{origin}:{','.join(map(str, cols))}>"
                indexes[key] = (unique, origin, partial, cols)
            out[t] = {"columns": columns, "foreign_keys": fks, "indexes": indexes}
        # every CREATE statement (CHECK constraints and triggers included), whitespace aside
        out["<sqlite_master>"] = sorted(
            [type_, name, tbl, _canonical(text or "")]
            for type_, name, tbl, text in con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master")
        )
        return out
    finally:
        con.close()


def _canonical(statement: str) -> list:
    """A CREATE statement, whitespace aside, with a table's top-level clauses as a sorted list:
    MLflow's own migrations emit the table constraints of `runs` in a varying order (set
    iteration), so two files MLflow created differ there."""
    text = " ".join(statement.split())
    if not text.upper().startswith("CREATE TABLE") or "(" not in text:
        return [text]
    head, body = text.split("(", 1)
    body = body.rstrip().removesuffix(")")
    clauses, depth, current = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            clauses.append(current.strip())
            current = ""
            continue
        depth += (ch == "(") - (ch == ")")
        current += ch
    clauses.append(current.strip())
    return [head.strip(), *sorted(clauses)]


def _assert_same(ours, theirs, what):
    assert ours == theirs, f"{what}: asynctrack and MLflow read differently"
    # == treats 1 and 1.0 (and True and 1) as equal: check the JSON types too.
    assert json.dumps(ours, sort_keys=True) == json.dumps(theirs, sort_keys=True), what


# ------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def mlflow_files(tmp_path_factory):
    """Files MLflow 3.18 created (one oracle subprocess): `plain.db` (just initialized) and
    `filled.db` (experiments, runs, params, tags and metrics of every kind), with MLflow's own
    reading of `filled.db`."""
    base = tmp_path_factory.mktemp("mlflow_files")
    out = run(
        """
        import os, logging
        logging.disable(logging.WARNING)
        from mlflow import MlflowClient
        from mlflow.entities import Metric, Param, RunTag
        exec(ARGS["dump"], globals())
        exec(ARGS["fill"], globals())
        MlflowClient("sqlite:///" + os.path.join(ARGS["base"], "plain.db")).get_experiment("0")
        c = MlflowClient("sqlite:///" + os.path.join(ARGS["base"], "filled.db"))
        exps, runs = mlflow_fill(c)
        _out({"experiments": exps, "runs": runs, "dump": dump(c, exps, runs)})
        """,
        cwd=base,
        dump=DUMP,
        fill=MLFLOW_FILL,
        base=str(base),
    )
    out["dir"] = base
    return out


@dataclass
class Target:
    """A store both sides open: asynctrack by ``uri``, MLflow by ``mlflow_uri``; ``sound()``
    checks the store itself after writing (SQLite: integrity_check)."""

    uri: str
    mlflow_uri: str
    sound: Callable[[], bool]


@pytest.fixture(params=["sqlite", "postgres"])
def target(request, tmp_path) -> Iterator[Target]:
    """A new, empty store of each kind (PostgreSQL: a fresh database, which MLflow reaches
    through psycopg2)."""
    if request.param == "sqlite":
        path = tmp_path / "asynctrack.db"
        path.touch()  # an empty file: asynctrack initializes it
        yield Target(f"sqlite:///{path}", f"sqlite:///{path}", lambda: integrity(path) == "ok")
        return
    server = request.getfixturevalue("postgres_server")
    with fresh_database(server) as uri:
        mlflow_uri = oracle_postgres_uri(uri)
        reference = _schema_made_by_asynctrack(server)
        # Whoever made the schema, writing leaves it exactly MLflow's (no table, index or
        # column of ours: the writer's COPY table is a session's temporary one).
        yield Target(uri, mlflow_uri, lambda: pg_dump(uri, "--schema-only") == reference)


_SCHEMA_DUMPS: dict[str, str] = {}


def _schema_made_by_asynctrack(server: str) -> str:
    """pg_dump --schema-only of a database asynctrack initialised (which
    test_postgres_schema proves is MLflow's), once a server."""
    if server not in _SCHEMA_DUMPS:
        from asynctrack.store._postgres.schema import ensure_schema_at

        with fresh_database(server) as uri:
            ensure_schema_at(uri)
            _SCHEMA_DUMPS[server] = pg_dump(uri, "--schema-only")
    return _SCHEMA_DUMPS[server]


# ---------------------------------------------------------------------------- asynctrack -> MLflow
def _fill_with_asynctrack(c: MlflowClient):
    """The same kinds of content as the MLflow-made file, written by asynctrack."""
    e1 = c.create_experiment("at-a", tags={"team": "nlp", "mlflow.note.content": "hello"})
    e2 = c.create_experiment("at-b", artifact_location="s3://bucket/at-b")
    c.rename_experiment(e2, "at-b-renamed")
    c.set_experiment_tag(e2, "stage", "dev")
    e3 = c.create_experiment("at-gone")
    r1 = c.create_run(e1, start_time=1000, tags={"mlflow.user": "alice", "k": "v"}, run_name="first").info.run_id
    for step in range(5):
        c.log_metric(r1, "loss", 1.0 / (step + 1), timestamp=2000 + step, step=step)
    c.log_metric(r1, "loss", 0.5, timestamp=1500, step=1)  # out of order
    c.log_metric(r1, "nan", float("nan"), timestamp=2000, step=0)
    c.log_metric(r1, "inf", float("inf"), timestamp=2000, step=0)
    c.log_metric(r1, "ninf", float("-inf"), timestamp=2000, step=0)
    c.log_metric(r1, "acc", 0.9, timestamp=3000, step=7)
    c.log_metric(r1, "acc", 0.95, timestamp=2500, step=7)
    c.log_param(r1, "lr", "0.01")
    c.log_param(r1, "layers", 3)
    c.set_tag(r1, "mlflow.runName", "first-renamed")
    c.log_batch(
        r1,
        metrics=[Metric("batch", float(i), 4000 + i, i) for i in range(50)],
        params=[Param("bp", "x")],
        tags=[RunTag("bt", "y")],
    )
    ops = [c.log_metric(r1, "async", float(i), timestamp=5000 + i, step=i, synchronous=False) for i in range(300)]
    for op in ops:
        op.wait()
    c.set_terminated(r1, end_time=9000)
    r2 = c.create_run(e1, tags={"mlflow.runName": "by-tag"}).info.run_id
    c.log_metric(r2, "loss", 2.0, timestamp=100, step=0)
    c.set_terminated(r2, "KILLED")
    r3 = c.create_run(e1, run_name="doomed").info.run_id
    c.log_param(r3, "p", "q")
    c.log_metric(r3, "m", 1.0, timestamp=100, step=0)
    c.delete_run(r3)
    r4 = c.create_run(e2).info.run_id  # a generated name
    c.update_run(r4, status="FAILED", name="updated-name")
    r5 = c.create_run("0", run_name="in-default").info.run_id
    r6 = c.create_run(e3, run_name="gone-with-exp").info.run_id
    c.delete_experiment(e3)
    return ["0", e1, e2, e3], [r1, r2, r3, r4, r5, r6]


@needs_mlflow
@pytest.mark.mlflow
def test_asynctrack_store_reads_the_same_in_mlflow(tmp_path, monkeypatch, target):
    monkeypatch.chdir(tmp_path)
    c = MlflowClient(target.uri)
    exps, runs = _fill_with_asynctrack(c)
    ours = dump(c, exps, runs)
    assert target.sound()

    # What asynctrack wrote is what it was given (MLflow's storage of ±inf included).
    r1 = ours["runs"][runs[0]]
    assert r1["metrics"]["inf"] == MAX_FLOAT and r1["metrics"]["ninf"] == -MAX_FLOAT
    assert r1["metrics"]["nan"] == "nan"
    assert r1["info"]["run_name"] == "first-renamed" and r1["info"]["status"] == "FINISHED"
    assert ours["runs"][runs[1]]["info"]["run_name"] == "by-tag"
    assert ours["runs"][runs[2]]["info"]["lifecycle_stage"] == "deleted"
    assert ours["runs"][runs[5]]["info"]["lifecycle_stage"] == "deleted"
    assert ours["experiments"][exps[2]]["name"] == "at-b-renamed"
    assert len(ours["histories"][runs[0]]["async"]) == 300

    theirs = run(
        """
        import logging
        logging.disable(logging.WARNING)
        from mlflow import MlflowClient
        from mlflow.entities import ViewType
        exec(ARGS["dump"], globals())
        c = MlflowClient(ARGS["uri"])
        exps, runs = ARGS["experiments"], ARGS["runs"]
        out = {"dump": dump(c, exps, runs)}
        found = c.search_runs(exps, run_view_type=ViewType.ALL, max_results=1000)
        out["search_all"] = {r.info.run_id: dump_run(r) for r in found}
        out["search_active"] = sorted(r.info.run_id for r in c.search_runs(exps))
        out["search_filtered"] = {
            f: [r.info.run_id for r in c.search_runs(exps, f, run_view_type=ViewType.ALL)]
            for f in ARGS["filters"]
        }
        out["search_ordered"] = [r.info.run_id for r in c.search_runs(
            exps, run_view_type=ViewType.ALL, order_by=["attributes.start_time ASC", "attributes.run_name ASC"])]
        out["search_experiments"] = sorted(
            (e.experiment_id, e.name, e.lifecycle_stage) for e in c.search_experiments(view_type=ViewType.ALL))
        # MLflow can keep writing to asynctrack's file
        e = c.create_experiment("by-mlflow")
        r = c.create_run(e, run_name="mlflow-run").info.run_id
        c.log_metric(r, "x", 1.5, timestamp=7, step=3)
        c.log_param(r, "from", "mlflow")
        c.log_metric(runs[1], "loss", 1.0, timestamp=200, step=1)
        out["written"] = {"experiment": e, "run": r}
        _out(out)
        """,
        cwd=tmp_path,
        dump=DUMP,
        uri=target.mlflow_uri,
        experiments=exps,
        runs=runs,
        filters=[
            "metrics.loss < 0.6",
            "params.lr = '0.01'",
            "tags.k = 'v'",
            "attributes.run_name = 'first-renamed'",
            "attributes.status = 'FAILED'",
        ],
    )
    _assert_same(ours, theirs["dump"], "the file asynctrack wrote")
    # MLflow's search reads the same runs, with the same data.
    _assert_same(theirs["search_all"], ours["runs"], "search_runs(ViewType.ALL)")
    live = sorted(r for r in runs if ours["runs"][r]["info"]["lifecycle_stage"] == "active")
    assert theirs["search_active"] == live
    r1, r2, r3, r4, r5, r6 = runs
    assert theirs["search_filtered"] == {
        "metrics.loss < 0.6": [r1],  # latest loss of r1 is 0.2 (step 4); r2's is 2.0
        "params.lr = '0.01'": [r1],
        "tags.k = 'v'": [r1],
        "attributes.run_name = 'first-renamed'": [r1],
        "attributes.status = 'FAILED'": [r4],
    }
    by_start = sorted(runs, key=lambda r: (ours["runs"][r]["info"]["start_time"], ours["runs"][r]["info"]["run_name"]))
    assert theirs["search_ordered"] == by_start
    assert theirs["search_experiments"] == sorted(
        [e["experiment_id"], e["name"], e["lifecycle_stage"]] for e in ours["experiments"].values()
    )
    # ... and asynctrack reads what MLflow then wrote into its file.
    written = theirs["written"]
    new_run = c.get_run(written["run"])
    assert new_run.info.experiment_id == written["experiment"]
    assert new_run.data.params == {"from": "mlflow"}
    assert [(m.key, m.value, m.timestamp, m.step) for m in c.get_metric_history(written["run"], "x")] == [
        ("x", 1.5, 7, 3)
    ]
    assert c.get_run(r2).data.metrics["loss"] == 1.0
    assert c.get_experiment_by_name("by-mlflow").experiment_id == written["experiment"]
    c.log_metric(written["run"], "x", 2.5, timestamp=8, step=4)
    assert c.get_run(written["run"]).data.metrics["x"] == 2.5
    assert target.sound()


# ---------------------------------------------------------------------------- MLflow -> asynctrack
@needs_mlflow
@pytest.mark.mlflow
def test_mlflow_store_reads_the_same_in_asynctrack_which_keeps_writing(tmp_path, monkeypatch, request, target):
    monkeypatch.chdir(tmp_path)
    if target.uri.startswith("sqlite:"):  # MLflow's file, copied over the empty one
        filled = request.getfixturevalue("mlflow_files")
        shutil.copy(filled["dir"] / "filled.db", target.uri.removeprefix("sqlite:///"))
    else:  # MLflow fills the empty database itself
        filled = _mlflow_filled(target.mlflow_uri, tmp_path)
    exps, runs = filled["experiments"], filled["runs"]
    c = MlflowClient(target.uri)
    _assert_same(dump(c, exps, runs), filled["dump"], "the store MLflow wrote")

    # asynctrack keeps writing to it.
    r1, r2, r3, r4, r5, r6 = runs
    c.log_metric(r2, "loss", 1.5, timestamp=200, step=1)
    c.log_metric(r2, "loss", 1.75, timestamp=300, step=0)  # lower step: not the latest
    c.log_metric(r2, "nan", float("nan"), timestamp=200, step=0)
    c.log_metric(r2, "inf", float("inf"), timestamp=200, step=0)
    ops = [c.log_metric(r2, "async", float(i), timestamp=1000 + i, step=i, synchronous=False) for i in range(100)]
    for op in ops:
        op.wait()
    c.log_batch(r2, metrics=[Metric("batch", 0.5, 10, 0)], params=[Param("bp", "1")], tags=[RunTag("bt", "2")])
    c.log_param(r2, "new", "param")
    c.set_tag(r2, "mlflow.runName", "by-asynctrack")
    c.set_terminated(r2)
    c.set_terminated(r5, "KILLED", end_time=12345)
    c.restore_run(r3)
    c.log_metric(r3, "m", 2.0, timestamp=200, step=1)
    c.delete_run(r4)
    c.restore_experiment(exps[3])
    e4 = c.create_experiment("by-asynctrack", tags={"x": "y"})
    r7 = c.create_run(e4, run_name="asynctrack-run", start_time=777).info.run_id
    c.log_metric(r7, "z", 3.0, timestamp=1, step=1)
    c.delete_experiment(exps[2])
    exps, runs = exps + [e4], runs + [r7]
    ours = dump(c, exps, runs)
    assert target.sound()

    # What asynctrack wrote is visible to asynctrack itself.
    assert ours["runs"][r2]["metrics"]["loss"] == 1.5
    assert ours["runs"][r2]["info"]["status"] == "FINISHED" and ours["runs"][r2]["info"]["run_name"] == "by-asynctrack"
    assert ours["runs"][r5]["info"]["end_time"] == 12345
    assert ours["runs"][r3]["info"]["lifecycle_stage"] == "active"
    assert ours["runs"][r6]["info"]["lifecycle_stage"] == "active"  # restored with its experiment
    assert ours["runs"][r4]["info"]["lifecycle_stage"] == "deleted"  # with its experiment
    assert e4 == str(max(int(e) for e in filled["experiments"]) + 1)

    theirs = run(
        """
        import logging
        logging.disable(logging.WARNING)
        from mlflow import MlflowClient
        from mlflow.entities import ViewType
        exec(ARGS["dump"], globals())
        c = MlflowClient(ARGS["uri"])
        out = {"dump": dump(c, ARGS["experiments"], ARGS["runs"])}
        out["search"] = sorted(r.info.run_id for r in c.search_runs(ARGS["experiments"], run_view_type=ViewType.ALL))
        # and MLflow goes on writing after asynctrack
        out["next_experiment"] = c.create_experiment("after-asynctrack")
        c.log_metric(ARGS["runs"][-1], "z", 4.0, timestamp=2, step=2)
        out["latest_z"] = c.get_run(ARGS["runs"][-1]).data.metrics["z"]
        _out(out)
        """,
        cwd=tmp_path,
        dump=DUMP,
        uri=target.mlflow_uri,
        experiments=exps,
        runs=runs,
    )
    _assert_same(ours, theirs["dump"], "the MLflow store after asynctrack wrote to it")
    assert theirs["search"] == sorted(runs)
    assert theirs["next_experiment"] == str(int(e4) + 1)
    assert theirs["latest_z"] == 4.0
    assert c.get_run(r7).data.metrics["z"] == 4.0
    assert target.sound()


def _mlflow_filled(mlflow_uri: str, cwd) -> dict:
    """MLflow 3.18 fills the store at ``mlflow_uri`` (mlflow_fill) and reads it back."""
    return run(
        """
        import logging
        logging.disable(logging.WARNING)
        from mlflow import MlflowClient
        exec(ARGS["dump"], globals())
        exec(ARGS["fill"], globals())
        c = MlflowClient(ARGS["uri"])
        exps, runs = mlflow_fill(c)
        _out({"experiments": exps, "runs": runs, "dump": dump(c, exps, runs)})
        """,
        cwd=cwd,
        dump=DUMP,
        fill=MLFLOW_FILL,
        uri=mlflow_uri,
    )


# ------------------------------------------------------------------------------- what is refused
@needs_mlflow
@pytest.mark.mlflow
def test_other_alembic_revision_is_refused(tmp_path, mlflow_files):
    path = tmp_path / "old.db"
    shutil.copy(mlflow_files["dir"] / "plain.db", path)
    assert sql(path, "SELECT version_num FROM alembic_version") == [(REVISION,)]
    sql(path, "UPDATE alembic_version SET version_num = 'abc'")
    before = sql(path, "SELECT type, name, sql FROM sqlite_master ORDER BY name")
    with pytest.raises(MlflowException) as info:
        MlflowClient(f"sqlite:///{path}")
    message = info.value.message
    assert "abc" in message and REVISION in message and "mlflow db upgrade" in message, message
    # Refused, and its tables left as they were (its journal mode: see the next tests).
    assert sql(path, "SELECT version_num FROM alembic_version") == [("abc",)]
    assert sql(path, "SELECT type, name, sql FROM sqlite_master ORDER BY name") == before
    # Refused again on the next attempt (nothing cached from the failed one).
    with pytest.raises(MlflowException):
        MlflowClient(f"sqlite:///{path}")


def test_non_mlflow_sqlite_file_is_refused(tmp_path):
    path = tmp_path / "other.db"
    sql(path, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    sql(path, "INSERT INTO customers (name) VALUES ('ada')")
    with pytest.raises(MlflowException):
        MlflowClient(f"sqlite:///{path}")
    assert sql(path, "SELECT name FROM sqlite_master") == [("customers",)]
    assert sql(path, "SELECT id, name FROM customers") == [(1, "ada")]
    with pytest.raises(MlflowException):
        MlflowClient(f"sqlite:///{path}")


def test_refused_file_keeps_its_journal_mode(tmp_path):
    """A database asynctrack refuses is not modified at all, its journal mode included."""
    path = tmp_path / "other.db"
    sql(path, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    assert sql(path, "PRAGMA journal_mode") == [("delete",)]
    with pytest.raises(MlflowException):
        MlflowClient(f"sqlite:///{path}")
    assert sql(path, "PRAGMA journal_mode") == [("delete",)]


def test_empty_file_is_initialized(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "empty.db"
    path.touch()
    c = MlflowClient(f"sqlite:///{path}")
    default = c.get_experiment("0")
    assert (default.experiment_id, default.name, default.lifecycle_stage) == ("0", "Default", "active")
    assert default.artifact_location == str(tmp_path.resolve() / "mlruns" / "0")
    assert sql(path, "SELECT version_num FROM alembic_version") == [(REVISION,)]
    assert integrity(path) == "ok"


@needs_mlflow
@pytest.mark.mlflow
def test_initialized_schema_is_mlflows(tmp_path, monkeypatch, mlflow_files):
    """Tables, columns (type, nullability, default, key), indexes, foreign keys, CHECK
    constraints and triggers of a file asynctrack initialized are those of a file MLflow 3.18
    initialized."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "fresh.db"
    MlflowClient(f"sqlite:///{path}").get_experiment("0")
    ours, theirs = schema(path), schema(mlflow_files["dir"] / "plain.db")
    assert sorted(ours) == sorted(theirs)
    assert len(theirs["<sqlite_master>"]) > 200  # MLflow 3.18: 71 tables and their indexes
    for table in theirs:
        assert ours[table] == theirs[table], table
    # Both hold the Default experiment, alike but for its times and directory.
    cols = "experiment_id, name, lifecycle_stage, workspace"
    query = f"SELECT {cols} FROM experiments"
    assert sql(path, query) == sql(mlflow_files["dir"] / "plain.db", query) == [(0, "Default", "active", "default")]
    # And the row MLflow's workspaces migration inserts (asynctrack left it out until #16).
    query = "SELECT * FROM workspaces"
    assert sql(path, query) == sql(mlflow_files["dir"] / "plain.db", query) == [
        ("default", "Default workspace for legacy resources", None, None, None)
    ]
