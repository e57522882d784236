"""The module-level API call for call against MLflow 3.18: the same scenario runs in a fresh
interpreter under each (``import mlflow`` / ``import asynctrack as mlflow``), every call logged
as [label, "ok", result] or [label, "error", {error_code, message}] with run ids, times and paths
replaced by placeholders; the two logs must be equal but where asynctrack is better on purpose
(``DIVERGENCES``, each one asserting what MLflow does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests._backends import BACKENDS, SERVER_BACKENDS, server_set_fixture
from tests._postgres import fresh_database, oracle_postgres_uri, postgres_db  # noqa: F401 (fixture)
from tests.oracle import needs_mlflow, oracle_python, run  # noqa: F401

pytestmark = [needs_mlflow, pytest.mark.mlflow]

SCENARIO = r'''
import math, os, re, time, json, logging
logging.disable(logging.WARNING)
LOG = []
IDS = {}

GENERATED = re.compile(r"^[a-z]+-[a-z]+-\d{1,3}$")  # MLflow's generated run names

def norm(x):
    if isinstance(x, str):
        for real, alias in sorted(IDS.items(), key=lambda kv: -len(kv[0])):
            x = x.replace(real, alias)
        x = re.sub(r"\b1\d{12}\b", "<ms>", x)  # wall-clock milliseconds in messages
        if GENERATED.match(x):
            return "<generated name>"
        return x.replace(os.getcwd(), "<CWD>")
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    if isinstance(x, dict):
        return {norm(k): norm(v) for k, v in sorted(x.items())}
    if isinstance(x, (list, tuple)):
        return [norm(v) for v in x]
    return x

def alias(run):
    if run is not None and run.info.run_id not in IDS:
        IDS[run.info.run_id] = "<run:%d>" % len(IDS)
    return run

def describe(r):
    if r is None or isinstance(r, (str, int, float, bool)):
        return r
    if hasattr(r, "info") and hasattr(r, "data"):
        alias(r)
        tags = {k: v for k, v in r.data.tags.items()
                if k in ("mlflow.runName", "mlflow.parentRunId", "mlflow.note.content", "mlflow.source.type") or not k.startswith("mlflow.")}
        return {"run_id": r.info.run_id, "status": r.info.status, "run_name": r.info.run_name,
                "experiment_id": r.info.experiment_id, "lifecycle_stage": r.info.lifecycle_stage,
                "ended": r.info.end_time is not None, "params": r.data.params,
                "metrics": r.data.metrics, "tags": tags, "type": type(r).__name__}
    if hasattr(r, "experiment_id") and hasattr(r, "lifecycle_stage"):
        return {"experiment_id": r.experiment_id, "name": r.name, "stage": r.lifecycle_stage, "tags": r.tags}
    if type(r).__name__ == "RunOperations":
        return "RunOperations"
    return "<%s>" % type(r).__name__

def call(label, fn, *a, **kw):
    try:
        result = fn(*a, **kw)
    except BaseException as e:
        LOG.append([label, "error", {"error_code": getattr(e, "error_code", type(e).__name__),
                                      "message": str(getattr(e, "message", e))}])
        return None
    LOG.append([label, "ok", describe(result)])
    return result

def note(label, value):
    LOG.append([label, "ok", describe(value)])

def scenario(mlflow, uri=None):
    mlflow.set_tracking_uri(uri or "sqlite:///" + os.path.join(os.getcwd(), "mlflow.db"))
    http = uri is not None and uri.startswith("http")
    call("set_experiment neither", mlflow.set_experiment)
    call("set_experiment both", mlflow.set_experiment, "x", "1")
    call("set_experiment missing id", mlflow.set_experiment, experiment_id="999")
    exp = call("set_experiment new", mlflow.set_experiment, "fluent-exp")
    call("set_experiment again", mlflow.set_experiment, "fluent-exp")
    note("env experiment id", os.environ.get("MLFLOW_EXPERIMENT_ID"))
    call("set_experiment_tag", mlflow.set_experiment_tag, "team", "a")
    call("set_experiment_tags", mlflow.set_experiment_tags, {"n": 1, "x": "y"})
    call("delete_experiment_tag", mlflow.delete_experiment_tag, "x")
    call("get_experiment", mlflow.get_experiment, exp.experiment_id)
    call("get_experiment_by_name missing", mlflow.get_experiment_by_name, "nope")
    note("no active run", mlflow.active_run())
    note("no last active run", mlflow.last_active_run())
    call("start_run bad experiment id type", mlflow.start_run, experiment_id=1.5)
    call("start_run missing experiment", mlflow.start_run, experiment_id="12345")
    call("start_run missing run id", mlflow.start_run, run_id="a" * 32)
    call("start_run malformed run id", mlflow.start_run, run_id="bad id!")
    call("start_run description clash", mlflow.start_run, description="d", tags={"mlflow.note.content": "n"})
    # Over HTTP, MLflow's client crashes on tag values that are not strings (see the end).
    tags = {"k": "1", "f": "2.5"} if http else {"k": 1, "f": 2.5}
    parent = call("start_run", mlflow.start_run, run_name="parent", tags=tags, description="about")
    note("active is parent", mlflow.active_run().info.run_id == parent.info.run_id)
    call("start_run while active", mlflow.start_run)
    call("start_run parent mismatch", mlflow.start_run, nested=True, parent_run_id="f" * 32)
    child = call("start_run nested", mlflow.start_run, nested=True, run_name="child")
    call("log_param", mlflow.log_param, "p", 1)
    call("log_param same", mlflow.log_param, "p", "1")
    call("log_param changed", mlflow.log_param, "p", 2)
    call("log_params", mlflow.log_params, {"q": 0.5, "r": None})
    call("log_params changed", mlflow.log_params, {"q": 0.6})
    call("log_metric", mlflow.log_metric, "loss", 0.5, step=1, timestamp=1000)
    call("log_metric later", mlflow.log_metric, "loss", 0.25, step=2, timestamp=2000)
    call("log_metric int", mlflow.log_metric, "count", 3)
    call("log_metric nan", mlflow.log_metric, "nan", float("nan"))
    call("log_metric bad key", mlflow.log_metric, "bad key!", 1.0)
    call("log_metric bad value", mlflow.log_metric, "m", "x")
    call("log_metric bad step", mlflow.log_metric, "m", 1.0, step=2**70)
    call("log_metrics", mlflow.log_metrics, {"a": 1, "b": 2.5}, step=3, timestamp=3000)
    call("log_metrics floats", mlflow.log_metrics, {"a": 1.5, "nan": float("nan"), "z": -0.0}, step=4, timestamp=4000)
    call("log_metrics floats again", mlflow.log_metrics, {"a": 0.5, "b": 3.5}, step=4, timestamp=4001)
    call("log_metrics bad key", mlflow.log_metrics, {"ok": 1.0, "bad key!": 2.0}, step=5)
    call("log_metrics 1001", mlflow.log_metrics, {f"k{i}": float(i) for i in range(1001)}, step=6, timestamp=6000)
    call("log_metrics bad step", mlflow.log_metrics, {"a": 1.0}, step=2**70)
    call("log_metrics negative time", mlflow.log_metrics, {"a": 1.0}, step=7, timestamp=-1)
    call("log_metrics empty", mlflow.log_metrics, {})
    ops = mlflow.log_metrics({"async_a": 1.0, "async b!": 2.0}, step=8, synchronous=False)
    call("log_metrics async wait error", ops.wait)
    ops = mlflow.log_metrics({"async_a": 2.0, "async_b": 3.0}, step=9, timestamp=9000, synchronous=False)
    call("log_metrics async wait", ops.wait)
    call("log_metric async", mlflow.log_metric, "async", 1.0, synchronous=False)
    ops = mlflow.log_metric("async bad!", 1.0, synchronous=False)
    call("async wait error", ops.wait)
    call("set_tag", mlflow.set_tag, "t", 7)
    call("set_tags", mlflow.set_tags, {"u": True, "v": "w"})
    call("set_tag empty key", mlflow.set_tag, "", "x")
    call("delete_tag", mlflow.delete_tag, "v")
    call("delete_tag missing", mlflow.delete_tag, "nope")
    mlflow.flush_async_logging()
    call("get child", mlflow.get_run, child.info.run_id)
    call("get_parent_run", mlflow.get_parent_run, child.info.run_id)
    call("get_parent_run of top", mlflow.get_parent_run, parent.info.run_id)
    call("end_run child", mlflow.end_run)
    note("active after child ended", mlflow.active_run())
    call("last_active_run after child", mlflow.last_active_run)
    call("end_run KILLED", mlflow.end_run, "KILLED")
    call("get parent", mlflow.get_run, parent.info.run_id)
    call("end_run none active", mlflow.end_run)
    call("resume", mlflow.start_run, run_id=parent.info.run_id, tags={"again": "y"})
    call("end resumed", mlflow.end_run)
    call("get resumed", mlflow.get_run, parent.info.run_id)
    try:
        with mlflow.start_run(run_name="failing") as failing:
            raise ValueError("boom")
    except ValueError:
        pass
    call("failed by exception", mlflow.get_run, failing.info.run_id)
    with mlflow.start_run(run_name="ok") as ok:
        mlflow.log_metric("m", 1.0)
    call("finished by with", mlflow.get_run, ok.info.run_id)
    call("delete_run", mlflow.delete_run, ok.info.run_id)
    call("resume deleted", mlflow.start_run, run_id=ok.info.run_id)
    call("parent deleted", mlflow.start_run, parent_run_id=ok.info.run_id)
    call("restore_run", mlflow.restore_run, ok.info.run_id)
    call("get restored", mlflow.get_run, ok.info.run_id)
    call("log_metric to missing run", mlflow.log_metric, "m", 1.0, run_id="b" * 32)
    call("log_metric no active run", mlflow.log_metric, "auto", 2.0)
    auto = alias(mlflow.active_run())
    note("logging started a run", auto is not None)
    call("end auto", mlflow.end_run)
    call("auto run", mlflow.get_run, auto.info.run_id)
    call("delete_experiment", mlflow.delete_experiment, exp.experiment_id)
    call("set deleted experiment", mlflow.set_experiment, "fluent-exp")
    call("restore_experiment", mlflow.restore_experiment, exp.experiment_id)
    call("create_experiment", mlflow.create_experiment, "made", tags={"a": "b"})
    call("create_experiment dup", mlflow.create_experiment, "made")
    if http:  # last: asynctrack makes a run here that MLflow does not
        call("start_run non-str tags", mlflow.start_run, run_name="int-tags", tags={"k": 1, "f": 2.5})
        mlflow.end_run()
    return norm(LOG)
'''


servers = server_set_fixture()


def _asynctrack_log(tmp_path, uri=None):
    code = (SCENARIO + "\nimport asynctrack as mlflow\n"
            f"print('@@RESULT@@' + json.dumps(scenario(mlflow, {uri!r})))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.rsplit("@@RESULT@@", 1)[1])


def _enter(request, context):
    """``context`` entered for the rest of this test: its value."""
    value = context.__enter__()
    request.addfinalizer(lambda: context.__exit__(None, None, None))
    return value


def _mlflow_log(tmp_path, uri=None):
    return run(SCENARIO + "\nimport mlflow\n_out(scenario(mlflow, ARGS['uri']))\n", cwd=tmp_path, uri=uri)


def _bare_exception(entry):
    """MLflow raises a bare Exception here; asynctrack a MlflowException with the same text."""
    label, kind, err = entry
    assert kind == "error" and err["error_code"] == "Exception", entry
    return [label, "error", {"error_code": "INVALID_PARAMETER_VALUE", "message": err["message"]}]


def _tags_as_stored(entry):
    """MLflow's start_run returns the caller's tag values as given (1, 2.5) although the store
    holds strings; asynctrack returns the run as stored, so get_run and active_run agree."""
    label, kind, run = entry
    assert kind == "ok" and run["tags"]["k"] == 1 and run["tags"]["f"] == 2.5, entry
    run = json.loads(json.dumps(run))
    run["tags"] = {k: str(v) for k, v in run["tags"].items()}
    return [label, kind, run]


def _step_overflow(entry, path="step", key="m"):
    """MLflow lets a step beyond 64 bits reach SQLite and fails with its INTERNAL_ERROR;
    asynctrack refuses it up front with MLflow's own step message (see test_validation.py)."""
    label, kind, err = entry
    assert kind == "error" and err == {
        "error_code": "INTERNAL_ERROR", "message": "Python int too large to convert to SQLite INTEGER"
    }, entry
    return [label, "error", {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": f"Invalid value 1180591620717411303424 for parameter '{path}' supplied: metric "
        f"'{key}' (value=1.0). Step must be a valid long (64-bit integer).",
    }]


def _step_overflow_postgres(entry, path="step", key="m"):
    """On PostgreSQL, MLflow's step beyond 64 bits reaches psycopg2 and fails on flush with
    SQLAlchemy's text of PostgreSQL's range error (as BAD_REQUEST); asynctrack refuses it up
    front, with MLflow's own step message, as on SQLite."""
    label, kind, err = entry
    assert kind == "error" and err["error_code"] == "BAD_REQUEST", entry
    assert "(psycopg2.errors.NumericValueOutOfRange) bigint out of range" in err["message"], entry
    return _step_overflow([label, "error", {
        "error_code": "INTERNAL_ERROR", "message": "Python int too large to convert to SQLite INTEGER"
    }], path, key)


DIVERGENCES = {
    "start_run while active": _bare_exception,
    "start_run": _tags_as_stored,
    "active after child ended": _tags_as_stored,
    "last_active_run after child": _tags_as_stored,
    "log_metric bad step": _step_overflow,
    "log_metrics bad step": lambda entry: _step_overflow(entry, "metrics[0].step", "a"),
}
# Both sides on PostgreSQL: as on SQLite, but for MLflow's error for a step beyond 64 bits.
POSTGRES_DIVERGENCES = {
    **DIVERGENCES,
    "log_metric bad step": _step_overflow_postgres,
    "log_metrics bad step": lambda entry: _step_overflow_postgres(entry, "metrics[0].step", "a"),
}


def _proto_error(kind: str, message: str, ours: dict):
    """Over HTTP MLflow's client builds a protobuf request and crashes in protobuf with a bare
    ``kind`` (TypeError/ValueError) where its SQLite store refuses the value with an
    MlflowException, or stores it: asynctrack's client is the same over every store, so it does
    over HTTP what it does (like MLflow) over SQLite, ``ours``."""

    def divergence(entry):
        label, status, err = entry
        assert status == "error" and err == {"error_code": kind, "message": message}, entry
        return [label, *ours]

    return divergence


def _stored_as_text(entry):
    """MLflow's client crashes in protobuf ("bad argument type") on tag values that are not
    strings; asynctrack stores them as text, as MLflow's SQLite store does (its own run)."""
    label, status, err = entry
    assert status == "error" and err == {
        "error_code": "TypeError", "message": "bad argument type for built-in operation"
    }, entry
    return [label, "ok", {
        "ended": False, "experiment_id": "1", "lifecycle_stage": "active", "metrics": {}, "params": {},
        "run_id": "<run:5>", "run_name": "int-tags", "status": "RUNNING",
        "tags": {"f": "2.5", "k": "1", "mlflow.runName": "int-tags", "mlflow.source.type": "LOCAL"},
        "type": "ActiveRun",
    }]


def validated_here(entry):
    """MLflow's client sends these to the server, which refuses them: its RestException's
    message is "<CODE>: <message>" (and the async wrapper names RestException). asynctrack's
    client refuses them before queueing, over every store alike (so an asynchronous call fails
    at once, as on SQLite), with the same code and message but without the REST prefix."""
    label, status, err = entry
    code, message = err["error_code"], err["message"]
    assert status == "error", entry
    if message.startswith(f"{code}: "):
        message = message[len(code) + 2:]
    else:
        assert "RestException('INVALID_PARAMETER_VALUE: " in message, entry
        message = message.replace("RestException('INVALID_PARAMETER_VALUE: ", "MlflowException('")
    return [label, "error", {"error_code": code, "message": message}]


def _empty_tag_key(entry):
    """MLflow's server refuses an empty key as a missing field; asynctrack's client (before
    sending) with MLflow's own rule for keys, as MLflow's SQLite store does."""
    label, status, err = entry
    assert status == "error" and err == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "INVALID_PARAMETER_VALUE: Missing value for required parameter 'key'. "
        "See the API docs for more information about request parameters.",
    }, entry
    return [label, "error", {"error_code": "INVALID_PARAMETER_VALUE", "message": (
        "Invalid value \"\" for parameter 'key' supplied: Names may be treated as files in certain cases, "
        "and must not resolve to other names when treated as such. This name would resolve to '.'"
    )}]


_STEP = "Invalid value 1180591620717411303424 for parameter '{}' supplied: metric '{}' (value=1.0). " \
    "Step must be a valid long (64-bit integer)."

# Over HTTP (the judge: MLflow's client against ``mlflow server``): the SQLite-only entries do
# not apply (tags are given as strings there), these do.
HTTP_DIVERGENCES = {
    "log_metric bad value": _proto_error("TypeError", "must be real number, not str", [
        "error", {"error_code": "INVALID_PARAMETER_VALUE", "message": "Invalid value \"x\" for parameter "
                  "'value' supplied: (timestamp=<ms>). Please specify value as a valid double (64-bit floating point)"},
    ]),
    "log_metric bad step": _proto_error("ValueError", "Value out of range: 1180591620717411303424", [
        "error", {"error_code": "INVALID_PARAMETER_VALUE", "message": _STEP.format("step", "m")},
    ]),
    "log_metrics bad step": _proto_error("ValueError", "Value out of range: 1180591620717411303424", [
        "error", {"error_code": "INVALID_PARAMETER_VALUE", "message": _STEP.format("metrics[0].step", "a")},
    ]),
    "start_run while active": _bare_exception,
    "start_run non-str tags": _stored_as_text,
    "log_metric bad key": validated_here,
    "log_metrics bad key": validated_here,
    "log_metrics negative time": validated_here,
    "log_metrics async wait error": validated_here,
    "async wait error": validated_here,
    "set_tag empty key": _empty_tag_key,
}

# Where MLflow's client gets something else from ``asynctrack server`` than from ``mlflow
# server`` (asynctrack/server/ is not this module's): label -> why; test_known_server_bug.
SERVER_BUGS: dict[str, str] = {}


def _compare(ours: list, theirs: list, divergences: dict) -> list[str]:
    assert [e[0] for e in ours] == [e[0] for e in theirs]
    problems = []
    for a, b in zip(ours, theirs):
        expected = divergences[a[0]](b) if a[0] in divergences else b
        if a != expected:
            problems.append(f"{a[0]}:\n  asynctrack {a[1:]}\n  mlflow     {expected[1:]}")
    return problems


@pytest.fixture(scope="module")
def server_logs(tmp_path_factory, servers):
    """The scenario over HTTP (tests/_backends.py), per server backend: "ours" (asynctrack on its
    server), "theirs" (the judge: MLflow on ``mlflow server``), "oracle" (MLflow on ours)."""
    def log(fn, backend, side):
        path = tmp_path_factory.mktemp(f"{side}-{backend}")
        server = (servers.ours if side == "ours" else servers.theirs)[backend]
        return fn(path, server.url)

    theirs = log(_mlflow_log, "http", "theirs")
    out = {}
    for backend in servers.ours:
        out[backend] = {"ours": log(_asynctrack_log, backend, "ours"), "theirs": theirs}
        if backend == "asynctrack-server":
            out[backend]["oracle"] = log(_mlflow_log, backend, "theirs")
    return out


@pytest.mark.parametrize("backend", [*BACKENDS, "postgres"])
def test_fluent_api_matches_mlflow(backend, tmp_path, request):
    if backend in ("sqlite", "postgres"):
        (tmp_path / "a").mkdir()
        (tmp_path / "m").mkdir()
        ours_uri = theirs_uri = None  # a sqlite file in each side's directory
        if backend == "postgres":  # an empty database each: both sides create the schema
            server = request.getfixturevalue("postgres_server")
            ours_uri = request.getfixturevalue("postgres_db")
            theirs_uri = oracle_postgres_uri(_enter(request, fresh_database(server)))
        ours = _asynctrack_log(tmp_path / "a", ours_uri)
        theirs = _mlflow_log(tmp_path / "m", theirs_uri)
    else:
        request.getfixturevalue("servers").require(backend)
        logs = request.getfixturevalue("server_logs")[backend]
        ours, theirs = logs["ours"], logs["theirs"]
        if backend == "asynctrack-server":  # the server's known bugs: test_known_server_bug
            ours = [e for e in ours if e[0] not in SERVER_BUGS]
            theirs = [e for e in theirs if e[0] not in SERVER_BUGS]
    divergences = {"sqlite": DIVERGENCES, "postgres": POSTGRES_DIVERGENCES}.get(backend, HTTP_DIVERGENCES)
    problems = _compare(ours, theirs, divergences)
    assert not problems, "\n".join(problems)


def test_mlflow_fluent_api_on_asynctrack_server(server_logs, servers):
    """MLflow's own module-level API gets from ``asynctrack server`` what it gets from ``mlflow
    server``."""
    servers.require("asynctrack-server")
    logs = server_logs["asynctrack-server"]
    problems = _compare(
        [e for e in logs["oracle"] if e[0] not in SERVER_BUGS], [e for e in logs["theirs"] if e[0] not in SERVER_BUGS], {}
    )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "label",
    [pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=f"asynctrack server bug: {v}")) for k, v in SERVER_BUGS.items()],
)
def test_known_server_bug(label, server_logs, servers):
    servers.require("asynctrack-server")
    logs = server_logs["asynctrack-server"]
    ours = next(e for e in logs["oracle"] if e[0] == label)
    theirs = next(e for e in logs["theirs"] if e[0] == label)
    assert ours == theirs
