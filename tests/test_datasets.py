"""Datasets (issue #17): mlflow.data's datasets, ``log_input``/``log_inputs`` into MLflow's
``datasets``, ``inputs`` and ``input_tags`` tables, and ``run.inputs.dataset_inputs`` on get_run
and search_runs, on both stores; MLflow 3.18 as the judge of digests, JSON, rows and errors."""

from __future__ import annotations

import json
import os
import re
import uuid
import warnings

import pytest

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

import asynctrack as mlflow  # noqa: E402
from asynctrack import MlflowClient, MlflowException  # noqa: E402
from asynctrack.entities import Dataset, DatasetInput, InputTag  # noqa: E402
from tests._asynctrack_server import asynctrack_server_session  # noqa: E402,F401 (fixture)
from tests._store_fixtures import fetch_all  # noqa: E402
from tests.oracle import needs_mlflow, oracle_python, run  # noqa: E402,F401 (skipif evaluates oracle_python)

# Built the same way by both sides (``m`` is mlflow or asynctrack): every dataset's to_dict(),
# or the error a bad one raises.
BUILD = r'''
import warnings
import numpy as np, pandas as pd
warnings.simplefilter("ignore")
df = pd.DataFrame({
    "a": [1, 2, None], "b": ["x", None, "z"], "c": [1, 2, 3], "d": [True, False, True],
    "e": [[1, 2], [3], [4]], "f": pd.to_datetime(["2020-01-01"] * 3),
    "g": np.array([1, 2, 3], dtype="int32"), "h": np.array([1, 2, 3], dtype="float32"),
    "i": [b"a", b"b", b"c"], "j": [{"k": 1}, {"k": 2, "l": "x"}, None],
})
big = pd.DataFrame({"x": range(12000), "y": ["s%d" % i for i in range(12000)]})
OUT = []
def keep(fn):
    try:
        OUT.append(fn().to_dict())
    except Exception as e:
        OUT.append({"error": type(e).__name__, "code": getattr(e, "error_code", None), "message": str(e)})
keep(lambda: m.data.from_pandas(df, name="n", source="/tmp/x.csv"))
keep(lambda: m.data.from_pandas(big, source="s3://bucket/big.parquet", targets="x"))
keep(lambda: m.data.from_pandas(df[["a", "c"]], source="https://h/d.csv", digest="given"))
keep(lambda: m.data.from_pandas(pd.DataFrame({"o": [object(), object()]}), source="/p"))
keep(lambda: m.data.from_numpy(np.arange(12).reshape(3, 4).astype("float32"), source="gs://b/k",
                               targets=np.array([1, 0, 1])))
keep(lambda: m.data.from_numpy({"x": np.arange(12).reshape(3, 4), "s": np.array(["a", "b"])},
                               targets={"y": np.array([1, 0, 1])}, source="file:///b/k", name="d"))
keep(lambda: m.data.from_numpy(np.array([b"ab", b"c"]), source="rel/path.csv"))
keep(lambda: m.data.from_numpy(np.zeros(3), source="hdfs://nn/x"))
keep(lambda: m.data.from_numpy(np.zeros(3), source="nosuch://x"))
keep(lambda: m.data.from_pandas(df, source="/p", targets="zz"))
keep(lambda: m.data.from_pandas(df, source="/p", predictions="zz"))
for frame in (
    pd.DataFrame({"s": pd.array(["a", None, "c"], dtype="string")}),
    pd.DataFrame({"c": pd.Categorical(["a", "b", "a"])}),
    pd.DataFrame({"i": pd.array([1, None, 3], dtype="Int64"), "u": np.array([1, 2, 3], dtype="uint32")}),
    pd.DataFrame({"t": pd.to_timedelta([1, 2], unit="s")}),
    pd.DataFrame(),
    pd.DataFrame({0: [1.5], 1: ["x"]}),
    pd.DataFrame({"l": [["a", "b"], None, []], "n": [[["a"]], [["b", "c"]], [[]]]}),
    pd.DataFrame({"x": [1, "a", 2.0]}),
    pd.DataFrame({"d": [{"a": [1]}, {"a": [2], "b": {"c": "x"}}, {}]}),
):
    keep(lambda: m.data.from_pandas(frame, source="/p"))
for array in (np.array([1, "a"], dtype=object), np.array(5), [1, 2, 3], np.array([]),
              {"a": np.zeros(2), "b": [1]}):
    keep(lambda: m.data.from_numpy(array, source="/p"))
'''


TIMEDELTA_CASE = 14  # BUILD's frame of pd.to_timedelta([1, 2], unit="s")


ORACLE = r'''
import mlflow as m, json, os, pandas as pd
RESULT = {}
exec(ARGS["build"], globals()); RESULT["build"] = OUT
import numpy as _np
RESULT["versions"] = [pd.__version__, _np.__version__]
RESULT["code_tags"] = json.loads(m.data.from_pandas(pd.DataFrame({"a": [1]})).to_dict()["source"])["tags"]
URI = "sqlite:///" + os.path.join(ARGS["dir"], "theirs.db")
exec(ARGS["scenario"], globals())
PATH = os.path.join(ARGS["dir"], "theirs.db")
exec(ARGS["dump"], globals()); RESULT["rows"] = rows
URI = ARGS["ours"]
exec(ARGS["read"], globals()); RESULT["read"] = READ_OUT
URI = "sqlite:///" + os.path.join(ARGS["dir"], "theirs.db")
exec(ARGS["errors"], globals()); RESULT["errors"] = [ERRS, rid]
exec(ARGS["entities"], globals()); RESULT["entities"] = ENT
_out(RESULT)
'''


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    """Everything MLflow is asked, in one subprocess (MLflow's import and its new database's
    migrations cost seconds each): its datasets JSON, code source tags, the scenario's rows, its
    reads of asynctrack's file (written here first), and its errors."""
    if oracle_python() is None:
        pytest.skip("MLflow oracle not installed")
    d = tmp_path_factory.mktemp("oracle")
    ours = f"sqlite:///{d}/ours.db"
    from asynctrack import tracking_uri

    saved_env, saved_uri = dict(os.environ), tracking_uri._tracking_uri
    try:
        _ours(SCENARIO, URI=ours)
        mlflow.flush_async_logging()
    finally:
        tracking_uri._tracking_uri = saved_uri
        os.environ.clear()
        os.environ.update(saved_env)
    result = run(ORACLE, cwd=d, build=BUILD, dir=str(d), scenario=SCENARIO, dump=DUMP, read=READ,
                 errors=ERRORS, ours=ours, entities=ENTITIES)
    result["ours_path"] = str(d / "ours.db")
    result["ours_uri"] = ours
    return result


def _build(module) -> list:
    scope = {"m": module}
    exec(BUILD, scope)
    return scope["OUT"]


@needs_mlflow
def test_datasets_json_same_as_mlflow(oracle):
    ours = json.loads(json.dumps(_build(mlflow)))
    theirs = oracle["build"]
    assert len(ours) == 25
    import numpy as np

    if oracle["versions"][0].split(".")[0] != pd.__version__.split(".")[0]:
        # CI runs every Python against one oracle: on 3.10, pandas 2 (3.x needs 3.11). pandas 3
        # gives to_timedelta(unit="s") second resolution, so the same frame hashes to another
        # digest there (MLflow's own digest differs the same way); the rest must still agree.
        for side in (ours, theirs):
            side[TIMEDELTA_CASE].pop("digest")
    assert ours == theirs, (oracle["versions"], pd.__version__, np.__version__)


@needs_mlflow
def test_code_source_is_the_run_context(oracle):
    """No source: the code, as the run-context tags describe it (the same keys as MLflow's)."""
    ds = mlflow.data.from_pandas(pd.DataFrame({"a": [1]}))
    assert ds.to_dict()["source_type"] == "code"
    tags = json.loads(ds.to_dict()["source"])["tags"]
    assert set(oracle["code_tags"]) <= set(tags)  # ours may add git tags: pytest runs in a checkout
    from asynctrack.fluent._context import resolve_tags

    assert tags == resolve_tags(None)
    assert tags["mlflow.source.type"] == "LOCAL"


ENTITIES = r'''
E = m.entities
d = E.Dataset("n", "d1", "local", '{"uri": "/a"}', schema='{"s": 1}')
i = E.DatasetInput(d, [E.InputTag("k", "v"), E.InputTag("mlflow.data.context", "train")])
r = E.RunInputs(dataset_inputs=[i])
ENT = [repr(d), repr(i), repr(E.InputTag("k", "v")), d.to_dictionary(), i.to_dictionary(),
       r.to_dictionary(), d == E.Dataset("n", "d1", "local", '{"uri": "/a"}', schema='{"s": 1}'),
       d == E.Dataset("n", "d2", "local", "{}"), i == E.DatasetInput(d, list(i.tags)),
       E.InputTag("k", "v") == E.InputTag("k", "v"), sorted(dict(d)), sorted(dict(i))]
for st, src in (("local", '{"uri": "/a"}'), ("s3", '{"uri": "s3://b/k"}'), ("http", '{"url": "https://h/x"}'),
                ("code", '{"tags": {"a": "b"}}'), ("gs", '{"uri": "gs://b/k"}')):
    got = m.data.get_source(E.DatasetInput(E.Dataset("n", "d", st, src)))
    ENT.append([type(got).__name__, got.to_json(), got._get_source_type()])
for bad in (("nosuch", "{}"), ("local", "{}")):
    try:
        m.data.get_source(E.Dataset("n", "d", *bad))
    except Exception as e:
        ENT.append([type(e).__name__, getattr(e, "error_code", None), str(e)])
'''


@needs_mlflow
def test_entities_same_as_mlflow(oracle):
    ent = _ours(ENTITIES)["ENT"]
    assert len(ent) == 19
    assert json.loads(json.dumps(ent)) == oracle["entities"]


def test_dataset_defaults_and_entity():
    df = pd.DataFrame({"a": [1, 2]})
    ds = mlflow.data.from_pandas(df, source="/d.csv")
    assert (ds.name, len(ds.digest), ds.profile) == ("dataset", 8, {"num_rows": 2, "num_elements": 2})
    assert ds.schema.to_dict() == [{"type": "long", "name": "a", "required": True}]
    ent = ds._to_mlflow_entity()
    assert ent == Dataset("dataset", ds.digest, "local", '{"uri": "/d.csv"}', ds.to_dict()["schema"],
                          '{"num_rows": 2, "num_elements": 2}')
    assert mlflow.data.get_source(ent).uri == "/d.csv"
    assert DatasetInput(ent, [InputTag("k", "v")]).to_dictionary()["tags"] == {"k": "v"}


# -- logging, both stores ----------------------------------------------------------------------

def _inputs(run) -> list:
    return [
        (d.dataset.name, d.dataset.digest, d.dataset.source_type, d.dataset.source,
         sorted((t.key, t.value) for t in d.tags))
        for d in sorted(run.inputs.dataset_inputs, key=lambda d: d.dataset.name)
    ]


def test_log_input_rows_and_reads(fluent):
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    train = mlflow.data.from_pandas(df, source="/tmp/train.csv", name="train")
    test = mlflow.data.from_numpy(np.arange(6).reshape(2, 3), source="s3://b/test", name="test")
    with mlflow.start_run() as r1:
        mlflow.log_input(train, context="training", tags={"k": "v"})
        mlflow.log_input(train, context="again")  # linked already: no new input, no new tags
        mlflow.log_input(test)
    with mlflow.start_run() as r2:
        mlflow.log_inputs([train, test], contexts=["eval", None], tags_list=[None, {"t": "1"}])
    uri = mlflow.get_tracking_uri()
    assert len(fetch_all(uri, "SELECT * FROM datasets")) == 2  # one row per (experiment, name, digest)
    assert len(fetch_all(uri, "SELECT * FROM inputs")) == 4
    assert sorted(fetch_all(uri, "SELECT name, value FROM input_tags")) == [
        ("k", "v"), ("mlflow.data.context", "eval"), ("mlflow.data.context", "training"), ("t", "1")
    ]
    assert fetch_all(uri, "SELECT DISTINCT source_type, destination_type, step FROM inputs") == [
        ("DATASET", "RUN", 0)
    ]
    stored = fetch_all(uri, "SELECT name, dataset_source_type, dataset_source, dataset_schema, "
                       "dataset_profile FROM datasets WHERE name = 'train'")
    d = train.to_dict()
    assert stored == [("train", "local", d["source"], d["schema"], d["profile"])]
    got1 = mlflow.get_run(r1.info.run_id)
    assert _inputs(got1) == [
        ("test", test.digest, "s3", '{"uri": "s3://b/test"}', []),
        ("train", train.digest, "local", '{"uri": "/tmp/train.csv"}',
         [("k", "v"), ("mlflow.data.context", "training")]),
    ]
    assert _inputs(mlflow.get_run(r2.info.run_id))[1][4] == [("mlflow.data.context", "eval")]
    found = {r.info.run_id: _inputs(r) for r in mlflow.search_runs(output_format="list")}
    assert found == {r1.info.run_id: _inputs(got1), r2.info.run_id: _inputs(mlflow.get_run(r2.info.run_id))}
    with mlflow.start_run() as r3:
        pass
    assert mlflow.get_run(r3.info.run_id).inputs.dataset_inputs == []
    assert [r.inputs.dataset_inputs for r in mlflow.search_runs(output_format="list")
            if r.info.run_id == r3.info.run_id] == [[]]
    # MLflow's dataset filters find these rows.
    def ids(f):
        return sorted(r.info.run_id for r in mlflow.search_runs(filter_string=f, output_format="list"))
    assert ids("datasets.name = 'train'") == sorted([r1.info.run_id, r2.info.run_id])
    assert ids("datasets.context = 'training'") == [r1.info.run_id]
    assert ids(f"datasets.digest = '{test.digest}' and datasets.context = 'eval'") == [r2.info.run_id]
    assert ids("datasets.name = 'nope'") == []


def test_same_name_and_digest_logged_once_per_call(fluent):
    """MLflow keeps the first of two inputs with one (name, digest); a dataset already stored
    keeps its first source."""
    c = MlflowClient()
    run_id = c.create_run("0").info.run_id
    a = DatasetInput(Dataset("n", "d1", "local", '{"uri": "/a"}'), [InputTag("k", "first")])
    b = DatasetInput(Dataset("n", "d1", "local", '{"uri": "/b"}'), [InputTag("k", "second")])
    c.log_inputs(run_id, [a, b])
    run2 = c.create_run("0").info.run_id
    c.log_inputs(run2, [b])
    got = c.get_run(run_id).inputs.dataset_inputs
    assert [(d.dataset.source, [t.value for t in d.tags]) for d in got] == [('{"uri": "/a"}', ["first"])]
    got2 = c.get_run(run2).inputs.dataset_inputs
    assert [(d.dataset.source, [t.value for t in d.tags]) for d in got2] == [('{"uri": "/a"}', ["second"])]
    assert len(fetch_all(mlflow.get_tracking_uri(), "SELECT * FROM datasets")) == 1
    # Another experiment gets a row of its own.
    exp = c.create_experiment("other")
    run3 = c.create_run(exp).info.run_id
    c.log_inputs(run3, [b])
    assert len(fetch_all(mlflow.get_tracking_uri(), "SELECT * FROM datasets")) == 2
    assert c.log_inputs(run3, None) is None and c.log_inputs(run3, []) is None


def test_log_metric_with_dataset_links_it(fluent):
    ds = mlflow.data.from_pandas(pd.DataFrame({"a": [1.0]}), source="/m.csv", name="eval")
    with mlflow.start_run() as r:
        mlflow.log_metric("acc", 0.9, dataset=ds, synchronous=True)
        mlflow.log_metric("acc", 0.95, step=1, dataset=ds)
        mlflow.log_metrics({"f1": 0.5}, dataset=ds)
        with pytest.raises(MlflowException, match="model_id"):
            mlflow.log_metric("acc", 1.0, model_id="m-1")
    got = mlflow.get_run(r.info.run_id)
    assert got.data.metrics == {"acc": 0.95, "f1": 0.5}
    assert _inputs(got) == [("eval", ds.digest, "local", '{"uri": "/m.csv"}', [])]
    assert len(fetch_all(mlflow.get_tracking_uri(), "SELECT * FROM inputs")) == 1
    with mlflow.start_run() as r2:
        mlflow.log_metrics({}, dataset=ds)  # MLflow links a dataset per metric: none here
    assert mlflow.get_run(r2.info.run_id).inputs.dataset_inputs == []


def test_log_metric_with_dataset_links_once_per_run(fluent, monkeypatch):
    """A loop logging every step with dataset= waits for the link once per run and dataset,
    not at every step (the link is waited for; asynchronous points must stay asynchronous)."""
    links = []
    real = MlflowClient.log_inputs

    def counted(self, run_id, datasets=None, models=None):
        links.append((run_id, [d.dataset.name for d in datasets or []]))
        return real(self, run_id, datasets, models)

    monkeypatch.setattr(MlflowClient, "log_inputs", counted)
    train = mlflow.data.from_pandas(pd.DataFrame({"a": [1.0]}), source="/t.csv", name="train")
    val = mlflow.data.from_pandas(pd.DataFrame({"a": [2.0]}), source="/v.csv", name="val")
    runs = []
    for _ in range(2):
        with mlflow.start_run() as r:
            runs.append(r.info.run_id)
            for step in range(50):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step, dataset=train, synchronous=False)
                mlflow.log_metrics({"acc": step / 50}, step=step, dataset=val, synchronous=False)
    assert links == [(runs[0], ["train"]), (runs[0], ["val"]), (runs[1], ["train"]), (runs[1], ["val"])]
    for run_id in runs:
        got = mlflow.get_run(run_id)
        assert sorted(i.dataset.name for i in got.inputs.dataset_inputs) == ["train", "val"]
        assert len(mlflow.MlflowClient().get_metric_history(run_id, "loss")) == 50


def _err(fn, *args, **kw):
    with pytest.raises(MlflowException) as info:
        fn(*args, **kw)
    return info.value.error_code, info.value.message


def test_validation_rules(fluent):
    c = MlflowClient()
    run_id = c.create_run("0").info.run_id

    def ds(**kw):
        fields = {"name": "n", "digest": "d", "source_type": "local", "source": "{}"} | kw
        return [DatasetInput(Dataset(**fields))]

    bad = "INVALID_PARAMETER_VALUE"
    assert _err(c.log_inputs, run_id, ds(name="x" * 501)) == (
        bad, "'name' exceeds the maximum length of 500 characters")
    assert _err(c.log_inputs, run_id, ds(digest="x" * 37))[1] == "'digest' exceeds the maximum length of 36 characters"
    assert _err(c.log_inputs, run_id, ds(source="x" * 65536))[1] == "'source' exceeds the maximum length of 65535 characters"
    assert _err(c.log_inputs, run_id, ds(schema="x" * 1048576))[1] == "'schema' exceeds the maximum length of 1048575 characters"
    assert _err(c.log_inputs, run_id, ds(name=None)) == (bad, "Dataset name cannot be None")
    assert _err(c.log_inputs, run_id, ds(digest=None)) == (bad, "Dataset digest cannot be None")
    assert _err(c.log_inputs, run_id, ds(source_type=None)) == (bad, "Dataset source_type cannot be None")
    assert _err(c.log_inputs, run_id, ds(source=None)) == (bad, "Dataset source cannot be None")
    assert _err(c.log_inputs, run_id, [DatasetInput(None)]) == (bad, "Dataset cannot be None")
    tagged = lambda k, v: [DatasetInput(Dataset("n", "d", "local", "{}"), [InputTag(k, v)])]  # noqa: E731
    assert _err(c.log_inputs, run_id, tagged("k" * 256, "v")) == (bad, "'key' exceeds the maximum length of 255 characters")
    assert _err(c.log_inputs, run_id, tagged("k", "v" * 501)) == (bad, "'value' exceeds the maximum length of 500 characters")
    assert _err(c.log_inputs, run_id, tagged(None, "v")) == (bad, "InputTag key cannot be None")
    assert _err(c.log_inputs, run_id, tagged("k", None)) == (bad, "InputTag value cannot be None")
    with pytest.raises(TypeError, match="should be a list"):
        c.log_inputs(run_id, tuple(ds()))
    assert _err(c.log_inputs, "a" * 300, ds())[0] == bad
    assert _err(c.log_inputs, "0" * 32, ds()) == ("RESOURCE_DOES_NOT_EXIST", f"Run with id={'0' * 32} not found")
    c.delete_run(run_id)
    assert _err(c.log_inputs, run_id, ds()) == (
        bad, f"The run {run_id} must be in the 'active' state. Current state is deleted.")
    assert fetch_all(mlflow.get_tracking_uri(), "SELECT * FROM inputs") == []
    # One tag key twice in an input: MLflow's flush fails on input_tags' key, nothing is stored.
    other = c.create_run("0").info.run_id
    code, message = _err(c.log_inputs, other, [DatasetInput(Dataset("n", "d", "local", "{}"),
                                                            [InputTag("k", "1"), InputTag("k", "2")])])
    assert code == "BAD_REQUEST" and "input_tags" in message
    assert [fetch_all(mlflow.get_tracking_uri(), f"SELECT * FROM {t}") for t in ("datasets", "inputs", "input_tags")] == [[], [], []]
    # A finished run still takes inputs (MLflow checks the lifecycle stage only).
    finished = c.create_run("0").info.run_id
    c.set_terminated(finished)
    c.log_inputs(finished, ds())
    assert len(c.get_run(finished).inputs.dataset_inputs) == 1
    # The fluent rules.
    with mlflow.start_run():
        assert mlflow.log_input(None, context="x") is None  # MLflow builds no input then
        assert _err(mlflow.log_inputs, [None], ["x"], [None]) == (
            bad, "`dataset` must be specified if `context` or `tags` is specified.")
        assert _err(mlflow.log_inputs, [None], [], [])[1].startswith("`mlflow.log_inputs` requires")


# -- MLflow reads what asynctrack wrote, and writes the same rows --------------------------------

SCENARIO = r'''
import warnings, numpy as np, pandas as pd
warnings.simplefilter("ignore")
m.set_tracking_uri(URI)
df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
train = m.data.from_pandas(df, source="/tmp/train.csv", name="train")
test = m.data.from_numpy(np.arange(6).reshape(2, 3), source="s3://b/test", name="test")
with m.start_run(run_name="one"):
    m.log_input(train, context="training", tags={"k": "v"})
    m.log_input(train, context="again")
    m.log_input(test)
    m.log_metric("acc", 0.5, dataset=m.data.from_pandas(df.head(1), source="/x.csv", name="x"))
with m.start_run(run_name="two"):
    m.log_inputs([train, test], contexts=["eval", None], tags_list=[None, {"t": "1"}])
'''

DUMP = r'''
import sqlite3
con = sqlite3.connect(PATH)
rows = {
    "datasets": con.execute("SELECT experiment_id, name, digest, dataset_source_type, dataset_source,"
                            " dataset_schema, dataset_profile FROM datasets ORDER BY name").fetchall(),
    "inputs": con.execute("SELECT i.source_type, d.name, i.destination_type, r.name, i.step FROM inputs i"
                          " JOIN datasets d ON d.dataset_uuid = i.source_id JOIN runs r ON r.run_uuid ="
                          " i.destination_id ORDER BY r.name, d.name").fetchall(),
    "tags": con.execute("SELECT r.name, d.name, t.name, t.value FROM input_tags t JOIN inputs i ON"
                        " i.input_uuid = t.input_uuid JOIN datasets d ON d.dataset_uuid = i.source_id"
                        " JOIN runs r ON r.run_uuid = i.destination_id ORDER BY 1, 2, 3").fetchall(),
    "uuid_lengths": sorted({len(u) for (u,) in con.execute(
        "SELECT dataset_uuid FROM datasets UNION SELECT input_uuid FROM inputs")}),
}
'''

READ = r'''
c = m.MlflowClient(URI)
runs = c.search_runs(["0"], order_by=["attributes.run_name"])
READ_OUT = {
    "search": [[r.info.run_name, [d.to_dictionary() for d in r.inputs.dataset_inputs]] for r in runs],
    "get": [[r.info.run_name, [d.to_dictionary() for d in c.get_run(r.info.run_id).inputs.dataset_inputs]]
            for r in runs],
}
'''


def _ours(script: str, **names) -> dict:
    scope = {"m": mlflow, **names}
    with warnings.catch_warnings():
        exec(script, scope)
    return scope


def _normalise_order(read: dict) -> dict:
    """Within a run, inputs come in the store's order (MLflow's query has no order but the run)."""
    return {
        k: [[name, sorted(inputs, key=lambda d: d["dataset"]["name"])] for name, inputs in v]
        for k, v in read.items()
    }


ERRORS = r'''
c = m.MlflowClient(URI)
rid = c.create_run(c.create_experiment("errors")).info.run_id
E = m.entities
def ds(**kw):
    f = dict(name="n", digest="d", source_type="local", source="{}"); f.update(kw)
    return [E.DatasetInput(E.Dataset(**f))]
ERRS = []
def err(fn, *a):
    try:
        fn(*a); ERRS.append(None)
    except Exception as e:
        ERRS.append([getattr(e, "error_code", type(e).__name__), str(getattr(e, "message", e))])
err(c.log_inputs, rid, ds(name="x" * 501))
err(c.log_inputs, rid, ds(digest="x" * 37))
err(c.log_inputs, rid, ds(profile="x" * 16777216))
err(c.log_inputs, rid, [E.DatasetInput(E.Dataset("n", "d", "local", "{}"), [E.InputTag("k" * 256, "v")])])
err(c.log_inputs, "0" * 32, ds())
err(c.log_inputs, rid, ds())
c.delete_run(rid)
err(c.log_inputs, rid, ds())
rid2 = c.create_run(c.get_experiment_by_name("errors").experiment_id).info.run_id
err(c.log_inputs, rid2, [E.DatasetInput(E.Dataset("n", "d", "local", "{}"), [E.InputTag("k", "1"), E.InputTag("k", "2")])])
ERRS.append([[d.to_dictionary() for d in c.get_run(rid2).inputs.dataset_inputs]])
'''


@needs_mlflow
def test_rows_and_reads_same_as_mlflow(oracle):
    ours_rows = json.loads(json.dumps(_ours(DUMP, PATH=oracle["ours_path"])["rows"]))
    assert ours_rows["uuid_lengths"] == [32]
    assert len(ours_rows["datasets"]) == 3 and len(ours_rows["inputs"]) == 5 and len(ours_rows["tags"]) == 4
    assert ours_rows == oracle["rows"]
    # MLflow's client reads asynctrack's file as asynctrack does.
    our_read = _ours(READ, URI=oracle["ours_uri"])["READ_OUT"]
    assert _normalise_order(json.loads(json.dumps(our_read))) == _normalise_order(oracle["read"])
    assert len(our_read["search"][0][1]) == 3


@needs_mlflow
def test_errors_same_as_mlflow(oracle, tmp_path):
    scope = _ours(ERRORS, URI=f"sqlite:///{tmp_path}/ours.db")
    ours = scope["ERRS"]
    theirs = oracle["errors"][0]
    assert len(ours) == 9 and ours[5] is None and ours[8] == [[]]
    assert ours[7][0] == "BAD_REQUEST"
    ours, theirs = (json.loads(re.sub("[0-9a-f]{32}", "ID", json.dumps(x))) for x in (ours, theirs))
    assert ours == theirs


# -- over HTTP: asynctrack's server and HTTP store, and MLflow's client reading that server -----

HTTP_READ = r'''
import mlflow
out = {}
for label, url in ARGS["urls"].items():
    c = mlflow.MlflowClient(url)
    exp = c.get_experiment_by_name(ARGS["experiment"])
    runs = c.search_runs([exp.experiment_id], order_by=["attributes.run_name"])
    out[label] = {
        "search": [[r.info.run_name, [d.to_dictionary() for d in r.inputs.dataset_inputs]] for r in runs],
        "get": [[r.info.run_name, [d.to_dictionary() for d in c.get_run(r.info.run_id).inputs.dataset_inputs]]
                for r in runs],
    }
_out(out)
'''


def _http_scenario(url: str, name: str) -> dict:
    """The same calls through asynctrack's HTTP store to ``url``; what it reads back."""
    c = MlflowClient(url)
    exp = c.create_experiment(name)
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    train = mlflow.data.from_pandas(df, source="/tmp/train.csv", name="train")._to_mlflow_entity()
    bare = Dataset("bare", "d0", "http", '{"url": "https://h/x"}')  # no schema, no profile
    one = c.create_run(exp, run_name="one").info.run_id
    c.log_inputs(one, [DatasetInput(train, [InputTag("mlflow.data.context", "training"), InputTag("k", "v")])])
    c.log_inputs(one, [DatasetInput(train, [InputTag("mlflow.data.context", "again")]), DatasetInput(bare)])
    two = c.create_run(exp, run_name="two").info.run_id
    c.log_inputs(two, [DatasetInput(bare, [InputTag("t", "1")])])
    errors = []
    for call in (lambda: c.log_inputs("0" * 32, [DatasetInput(bare)]),
                 lambda: c.log_inputs(two, [DatasetInput(Dataset("x" * 501, "d", "local", "{}"))])):
        try:
            call()
        except MlflowException as e:
            errors.append(e.error_code)
    runs = c.search_runs([exp], order_by=["attributes.run_name"])
    return {
        "search": [[r.info.run_name, [d.to_dictionary() for d in r.inputs.dataset_inputs]] for r in runs],
        "get": [[r.info.run_name, [d.to_dictionary() for d in c.get_run(r.info.run_id).inputs.dataset_inputs]]
                for r in runs],
        "errors": errors,
    }


@needs_mlflow
def test_http_same_as_a_local_store(asynctrack_server_session, tmp_path):  # noqa: F811
    """asynctrack's HTTP store and server store and read back what a local store does (whose rows
    the tests above compare with MLflow's), and MLflow's own client reads the server the same."""
    url = asynctrack_server_session.url
    name = f"datasets-http-{uuid.uuid4().hex}"
    ours = _http_scenario(url, name)
    local = _http_scenario(f"sqlite:///{tmp_path}/local.db", name)
    assert ours["errors"] == local["errors"] == ["RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"]
    assert [len(i) for _, i in ours["get"]] == [2, 1]
    ours.pop("errors"), local.pop("errors")
    assert _normalise_order(ours) == _normalise_order(local)
    read = run(HTTP_READ, urls={"ours": url}, experiment=name)
    assert _normalise_order(read["ours"]) == _normalise_order(ours)


def test_missing_pandas_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError
    with pytest.raises(ImportError, match=r"asynctrack\[pandas\]"):
        mlflow.data.from_pandas(object(), source="/x")
    with pytest.raises(ImportError, match=r"asynctrack\[pandas\]"):
        mlflow.data.from_numpy(np.zeros(2), source="/x")
