"""The models behind the property tests, checked against MLflow 3.18 itself.

A property test is only as right as its model of MLflow's rules. These tests feed the model's
boundary cases through MLflow (one oracle subprocess for the whole module) and check the
model's verdict on each:

  * test_fuzz_logging.py: every @example boundary of its five fuzz tests (key names, value
    lengths 250/251 ... 20000/20001, None, numbers, NaN/inf/-0.0, int64 bounds of step and
    timestamp) through MLflow's MlflowClient: what the model says is stored is what MLflow
    stores; what it says is refused MLflow refuses with INVALID_PARAMETER_VALUE, except the
    documented divergences (test_validation.py's table: MLflow crashes, or stores a step or
    timestamp that is no int64), where MLflow must not store the call cleanly either.
  * test_store_bulk.py: model() (stored rows and latest_metrics) for examples drawn from its
    own strategy, replayed through MLflow's SqlAlchemyStore.log_metric / log_batch.
  * test_search_properties.py: reference() for queries drawn from its own strategy, against
    MLflow's search_runs on the same file.
  * test_validation.py: _reference_name_ok against MLflow's three name validators.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asynctrack import MlflowClient
from asynctrack.entities import ViewType
from tests import test_fuzz_logging as fz
from tests import test_search_properties as sp
from tests import test_store_bulk as sb
from tests import test_validation as tv
from tests._search_data import build
from tests.oracle import needs_mlflow, oracle_python, run  # noqa: F401 (skipif evaluates oracle_python)

pytestmark = [pytest.mark.mlflow, needs_mlflow]

# -------------------------------------------------------------------------- the oracle's side
ORACLE = r'''
import os, sqlite3
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.utils import validation as V

def outcome(fn):
    try:
        return {"ok": fn()}
    except Exception as e:
        return {"error": getattr(e, "error_code", type(e).__name__), "message": str(getattr(e, "message", e))}

c = MlflowClient(ARGS["uri"])

def client_case(kind, a):
    if kind == "creation":
        def go():
            e = c.create_experiment(a["name"], tags=a["tags"])
            x = c.get_experiment(e)
            r = outcome(lambda: c.get_run(c.create_run(e, run_name=a["run_name"], tags=a["run_tags"]).info.run_id).data.tags)
            return {"name": x.name, "tags": dict(x.tags), "run": r}
        return outcome(go)
    run_id = c.create_run("0").info.run_id
    if kind == "metric":
        def go():
            c.log_metric(run_id, a["key"], a["value"], timestamp=a["timestamp"], step=a["step"])
            return [[m.value, m.timestamp, m.step] for m in c.get_metric_history(run_id, a["key"])]
    elif kind == "param":
        def go():
            c.log_param(run_id, a["key"], a["value"])
            return c.get_run(run_id).data.params
    elif kind == "tag":
        def go():
            c.set_tag(run_id, a["key"], a["value"])
            return {k: v for k, v in c.get_run(run_id).data.tags.items() if not k.startswith("mlflow.") or k == a["key"]}
    elif kind == "batch":
        def go():
            c.log_batch(run_id, [Metric(k, v, t, s) for k, v, t, s in a["metrics"]],
                        [Param(k, v) for k, v in a["params"]], [RunTag(k, v) for k, v in a["tags"]])
            d = c.get_run(run_id).data
            keys = {m[0] for m in a["metrics"]}
            hist = {k: [[m.value, m.timestamp, m.step] for m in c.get_metric_history(run_id, k)] for k in keys}
            return {"metrics": hist, "params": d.params, "tags": {k: d.tags.get(k) for k, _ in a["tags"]}}
    return outcome(go)

clients = [client_case(kind, a) for kind, a in ARGS["client_cases"]]

# test_store_bulk.model: the records replayed through MLflow's store
store = SqlAlchemyStore("sqlite:///" + os.path.join(ARGS["dir"], "bulk.db"), os.path.join(ARGS["dir"], "bulk"))
bulk = []
for example in ARGS["bulk"]:
    rid = store.create_run("0", "u", 0, [], "r").info.run_id
    for batch in example:
        for kind, points in batch:
            points = [points] if kind == "m" else points
            ms = [Metric(k, v, ts, step) for k, v, ts, step in points]
            store.log_metric(rid, ms[0]) if kind == "m" else store.log_batch(rid, ms, [], [])
    con = sqlite3.connect(os.path.join(ARGS["dir"], "bulk.db"))
    q = "SELECT key, value, timestamp, step, is_nan FROM {} WHERE run_uuid = ?"
    bulk.append([sorted(map(list, con.execute(q.format(t), (rid,)))) for t in ("metrics", "latest_metrics")])
    con.close()

# test_search_properties.reference: the same queries on the same file
s = MlflowClient(ARGS["search_uri"])
searches = [outcome(lambda: [r.info.run_id for r in s.search_runs(ARGS["exps"], f, v, 1000, o)])
            for f, o, v in ARGS["searches"]]

names = [[outcome(lambda: fn(n)).get("error") is None for fn in (V._validate_metric_name, V._validate_param_name, V._validate_tag_name)]
         for n in ARGS["names"]]
_out({"clients": clients, "bulk_out": bulk, "searches_out": searches, "names_out": names})
'''


# --------------------------------------------------------------------------- the cases
def _client_cases():
    m = dict(fz._METRIC)
    del m["synchronous"]
    cases = []
    for arg, variants in (("key", fz.BOUNDARY_KEYS), ("value", fz.BOUNDARY_METRIC_VALUES),
                          ("step", fz.BOUNDARY_STEPS), ("timestamp", fz.BOUNDARY_TIMESTAMPS)):
        cases += [("metric", {**m, arg: x}) for x in variants]
    cases += [("param", {**fz._PARAM, "key": k}) for k in fz.BOUNDARY_KEYS]
    cases += [("param", {**fz._PARAM, "value": x})
              for x in ["é" * n for n in fz.BOUNDARY_VALUES] + fz.BOUNDARY_OTHER_VALUES]
    cases += [("tag", {**fz._TAG, "key": k}) for k in fz.BOUNDARY_KEYS]
    cases += [("tag", {**fz._TAG, "value": x})
              for x in ["v" * n for n in fz.BOUNDARY_VALUES] + fz.BOUNDARY_OTHER_VALUES]
    for b in fz._batch_examples():
        cases.append(("batch", {k: [list(e) for e in b[k]] for k in ("metrics", "params", "tags")}))
    cases += [("creation", c) for c in fz._creation_examples()]
    return cases


def _drawn(strategy, n):
    """n examples of a strategy, drawn as the suite's profile draws them (derandomized)."""
    out = []

    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(x):
        out.append(x)

    collect()
    return out


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("models")
    search_uri = f"sqlite:///{tmp / 'search.db'}"
    data = build(search_uri, n_runs=80, seed=11)  # test_search_properties' world
    client = MlflowClient(search_uri)
    world = sp._World({"client": client, "data": data, "runs": [client.get_run(r) for r in data["runs"]]})
    searches = []
    for clauses, order, view in _drawn(sp.query(), 100):
        filter_string, structured, order_by = sp._render(world, clauses, order)
        stages = {ViewType.ACTIVE_ONLY: {"active"}, ViewType.DELETED_ONLY: {"deleted"}}.get(view, {"active", "deleted"})
        searches.append((filter_string, order_by, int(view), sp.reference(world["runs"], structured, order, stages)))
    client.flush()
    bulk = sb.TIE_EXAMPLES + _drawn(st.lists(sb.records, min_size=1, max_size=3), 15)
    names = sorted(set(_drawn(st.lists(tv._name_chars, max_size=8).map("".join), 300)))
    client_cases = _client_cases()
    result = run(
        ORACLE, cwd=tmp, uri=f"sqlite:///{tmp / 'clients.db'}", dir=str(tmp),
        client_cases=client_cases, bulk=bulk, search_uri=search_uri, exps=data["experiments"],
        searches=[s[:3] for s in searches], names=names,
    )
    return {"client_cases": client_cases, "bulk": bulk, "searches": searches, "names": names, **result}


# --------------------------------------------------------------- test_fuzz_logging's models
def _is_int64(x) -> bool:
    return type(x) is int and fz.INT64_MIN <= x <= fz.INT64_MAX


def _metric_divergence(step, timestamp) -> bool:
    """A step or timestamp MLflow's _validate_metric accepts (a number; a timestamp not below 0)
    that is no int64: its store keeps 1.5 or inf as such, or fails on it (NaN: NOT NULL
    constraint, BAD_REQUEST; 2**63: OverflowError, INTERNAL_ERROR)."""

    def odd(x):
        return isinstance(x, (int, float)) and not fz._int64(x)

    return odd(step) or (odd(timestamp) and not timestamp < 0)


def _check_refused(kind, a, theirs, divergent):
    if not divergent:
        assert theirs.get("error") == "INVALID_PARAMETER_VALUE", (kind, a, theirs)
    elif "ok" in theirs:  # stored, but mangled: a step or timestamp that is no int64
        rows = theirs["ok"] if kind == "metric" else [m for ms in theirs["ok"]["metrics"].values() for m in ms]
        assert any(not _is_int64(t) or not _is_int64(s) for _, t, s in rows), (kind, a, theirs)
    else:  # or crashed: an error MLflow does not raise for bad input
        assert theirs.get("error") != "INVALID_PARAMETER_VALUE", (kind, a, theirs)


def _same_metric(stored, want) -> bool:
    value, timestamp, step = want
    v, t, s = stored
    return (math.isnan(v) if math.isnan(value) else v == value) and s == step and (timestamp is fz.NOW or t == timestamp)


def _check_client_case(kind, a, theirs):
    if kind == "metric":
        want = fz.metric_model(a["key"], a["value"], a["timestamp"], a["step"])
        if want == fz.REFUSED:
            return _check_refused(kind, a, theirs, fz.name_ok(a["key"]) and _metric_divergence(a["step"], a["timestamp"]))
        assert "ok" in theirs and any(_same_metric(m, want) for m in theirs["ok"]), (a, want, theirs)
    elif kind in ("param", "tag"):
        model = fz.param_model if kind == "param" else fz.set_tag_model
        want = model(a["key"], a["value"])
        if want == fz.REFUSED:
            return _check_refused(kind, a, theirs, False)
        assert theirs.get("ok", {}).get(a["key"]) == want, (kind, a, want, theirs)
    elif kind == "batch":
        want = fz.batch_model(a["metrics"], a["params"], a["tags"])
        if want == fz.REFUSED:
            divergent = any(fz.name_ok(k) and not (v is None or isinstance(v, str)) for k, v in a["tags"]) or any(
                fz.name_ok(k) and _metric_divergence(s, t) for k, _, t, s in a["metrics"]
            )
            return _check_refused(kind, a, theirs, divergent)
        metrics, params, tags = want
        assert "ok" in theirs, (a, theirs)
        for (key, *_), stored in zip(a["metrics"], metrics):
            assert any(_same_metric(m, stored) for m in theirs["ok"]["metrics"][key]), (a, theirs)
        assert theirs["ok"]["params"] == params and theirs["ok"]["tags"] == tags, (a, want, theirs)
    else:  # creation
        name = fz.experiment_name_model(a["name"])
        tags = {k: fz.experiment_tag_model(k, v) for k, v in (a["tags"] or {}).items()}
        if fz.REFUSED in (name, *tags.values()):
            divergent = name != fz.REFUSED and any(
                fz.name_ok(k) and not (v is None or isinstance(v, str)) for k, v in (a["tags"] or {}).items()
            )
            return _check_refused(kind, a, theirs, divergent)
        assert theirs.get("ok", {}).get("name") == name and theirs["ok"]["tags"] == tags, (a, theirs)
        run_tags = {k: fz.create_run_tag_model(v) for k, v in (a["run_tags"] or {}).items()}
        run = theirs["ok"]["run"]
        if fz.REFUSED in run_tags.values() or (
            isinstance(a["run_name"], int) and not fz.INT64_MIN <= a["run_name"] <= fz.INT64_MAX
        ):
            assert run == {"error": "INTERNAL_ERROR", "message": "Python int too large to convert to SQLite INTEGER"}
            return
        assert {k: run["ok"].get(k) for k in run_tags} == run_tags, (a, run)


def test_fuzz_logging_models_agree_with_mlflow(oracle):
    cases, theirs = oracle["client_cases"], oracle["clients"]
    assert len(cases) == len(theirs) > 300
    failures = []
    for (kind, a), t in zip(cases, theirs):
        try:
            _check_client_case(kind, a, t)
        except AssertionError as e:
            failures.append(f"{kind} {json.dumps(a)[:300]}: {str(e)[:600]}")
    assert not failures, "\n".join(failures[:10])


def test_the_client_boundaries_are_not_all_refused(oracle):
    """Not vacuous: MLflow stores many of the boundary cases, and refuses many."""
    stored = sum("ok" in t for t in oracle["clients"])
    refused = sum(t.get("error") == "INVALID_PARAMETER_VALUE" for t in oracle["clients"])
    assert stored > 150 and refused > 80, (stored, refused)


# ---------------------------------------------------------------- the other property models
def _floats(rows):
    return json.dumps(sorted([list(r) for r in rows]))


def test_store_bulk_model_agrees_with_mlflow(oracle):
    bad = []
    for example, got in zip(oracle["bulk"], oracle["bulk_out"]):
        stored, latest = sb.model(example)
        if _floats(stored) != json.dumps(got[0]) or _floats(latest) != json.dumps(got[1]):
            bad.append((example, got))
    assert not bad, json.dumps(bad[:3])[:3000]
    assert len(oracle["bulk_out"]) == len(oracle["bulk"]) > 10


def test_search_reference_agrees_with_mlflow(oracle):
    bad = [
        (f, o, v, want, got) for (f, o, v, want), got in zip(oracle["searches"], oracle["searches_out"])
        if got.get("ok") != want
    ]
    assert not bad, json.dumps(bad[:3])[:3000]
    assert sum(bool(s[3]) for s in oracle["searches"]) > 30  # many queries find runs


def test_name_reference_rule_agrees_with_mlflow(oracle):
    bad = [(n, got) for n, got in zip(oracle["names"], oracle["names_out"]) if got != [tv._reference_name_ok(n)] * 3]
    assert not bad, bad[:10]
    assert sum(tv._reference_name_ok(n) for n in oracle["names"]) > 20
