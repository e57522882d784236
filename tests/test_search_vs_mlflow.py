"""search_runs / search_experiments against MLflow 3.18 itself, on the same file.

asynctrack fills a file (tests/_search_data.py); MLflow's MlflowClient searches that same file
(the format is shared) and asynctrack searches it too: run ids, their order, every page and its
token, the runs' contents, and the error code and message of every bad filter, order_by, page
token and max_results must be the same. Messages that print a Python set are compared with the
set's items sorted (set order varies between processes, MLflow's own included).
"""

from __future__ import annotations

import json
import math
import re

import pytest

from asynctrack import MlflowClient
from asynctrack.entities import ViewType
from tests._backends import BACKENDS, server_set_fixture
from tests._servers import fresh_mlflow_server  # noqa: F401
from tests._search_data import build, build_frames
from tests.oracle import needs_mlflow, oracle_python, run  # noqa: F401

pytestmark = needs_mlflow

RUN_FILTERS = [
    "",
    "metrics.m1 > 0",
    "metrics.m1 >= 1",
    "metrics.m1 < 1",
    "metrics.m1 <= 0.5",
    "metrics.m1 = 1",
    "metrics.m1 != 1",
    "metrics.m1 != 0",
    "metrics.m1 > 1e308",
    "metrics.m1 < -1e308",
    "metrics.`m 3` > -5",
    "metric.m2 = 2.5 and metrics.m1 > 0",
    "metrics.m1 > 0 AND metrics.m1 < 10",
    "params.p1 = 'abc'",
    "params.p1 != 'abc'",
    "params.p1 = ''",
    "params.p1 LIKE 'a%'",
    "params.p1 LIKE 'A%'",
    "params.p1 ILIKE 'a%'",
    "params.p1 LIKE 'a_c'",
    "params.p1 LIKE '%*%'",
    "params.p1 LIKE '[ab]%'",
    "params.p1 LIKE 'a?c'",
    "params.p1 ILIKE '%C'",
    "params.`a b` = 'x y'",
    "params.`with.dot` LIKE '%b%'",
    "param.p2 IS NULL",
    "params.p2 IS NOT NULL",
    "params.p2 is null and params.p1 is not null",
    "tags.t1 = 'abc'",
    "tags.T1 LIKE '%'",
    "tags.t1 IS NULL",
    "tags.t2 IS NOT NULL AND tags.t1 != 'b'",
    "tags.mlflow.parentRunId IS NOT NULL",
    "tags.`mlflow.user` = 'Bob'",
    "tags.\"mlflow.user\" ILIKE 'bob'",
    "attributes.status = 'FINISHED'",
    "status != 'RUNNING'",
    "attribute.status IN ('FAILED', 'KILLED')",
    "run.status NOT IN ('FAILED', 'KILLED')",
    "attributes.status LIKE 'F%'",
    "attributes.status ILIKE 'f%'",
    "start_time > 1700000005000",
    "start_time >= 1700000005000 AND start_time < 1700000020000",
    "created = 1700000000000",
    "attributes.end_time IS NULL" if False else "attributes.end_time > 0",
    "end_time <= 1700000002000",
    "attributes.run_name = 'alpha'",
    "run_name LIKE 'a%'",
    "run_name ILIKE 'ALPHA'",
    "`Run name` != 'beta'",
    "attributes.`run name` LIKE '%\\_%'",
    "run_name LIKE 'a%z'",
    "user_id = 'bob'",
    "attributes.user_id ILIKE 'BOB'",
    "artifact_uri LIKE '%mlruns%'",
    "attributes.run_id != 'nope'",
    "datasets.name = 'd'",
    "metrics.missing > 0",
    "params.missing = 'x'",
    "params.p1 = 'abc' AND tags.t1 IS NULL AND metrics.m1 > -2",
    # several value comparisons: joined in the filter's order, then runs
    "metrics.m1 > 0 AND params.p1 = 'abc'",
    "params.p1 LIKE 'a%' AND metrics.m2 != 1 AND tags.t1 != 'b'",
    "metrics.m2 != 1 AND metrics.m1 != 0",
    "params.p1 != 'abc' AND params.p1 != 'b'",
    "params.p1 ILIKE 'A%' AND tags.t2 LIKE '%c' AND start_time > 1700000001000",
    "metrics.m1 >= 0.5 AND attributes.status = 'FINISHED' AND run_name LIKE 'a%' AND metrics.`m 3` <= 100",
    "tags.T1 = 'abc' AND params.p2 IS NULL AND metrics.m1 < 1e308",
]

ORDERS = [
    None,
    ["metrics.m1"],
    ["metrics.m1 DESC"],
    ["metrics.m1 ASC", "params.p1 DESC"],
    ["params.p1"],
    ["params.`a b` DESC"],
    ["tags.t1 DESC", "metrics.m2"],
    ["start_time"],
    ["attributes.start_time ASC"],
    ["created DESC"],
    ["end_time DESC"],
    ["end_time"],
    ["run_name"],
    ["attributes.run_name DESC", "status"],
    ["status DESC"],
    ["user_id", "metrics.`m 3` DESC"],
    ["artifact_uri DESC"],
    ["run_id"],
    ["metrics.missing DESC"],
]

BAD_FILTERS = [
    "metrics.m1 > 0 OR metrics.m2 < 1",
    "metrics.m1 > 0; metrics.m2 < 1",
    "metrics.m1 = 'x'",
    "params.p1 = 1",
    "params.p1 > 'a'",
    "tags.t1 < 'a'",
    "metrics.m1 LIKE 1",
    "metrics.m1 == 1",
    "status > 'A'",
    "start_time LIKE 1",
    "start_time = 'x'",
    "foo.x = 'y'",
    "attributes.lifecycle_stage = 'active'",
    "attributes.status IN ()",
    "status IN ('A')",
    "run_id IN (1, 2)",
    "metrics.m1 IS NULL",
    "attributes.status IS NULL",
    "metrics.m1",
    "metrics.m1 >",
    "params.p1 = abc",
    "1 = metrics.m1",
    "dataset.foo = 'x'",
]

BAD_ORDERS = [
    ["metrics.m1 DESC ASC"],
    ["metrics.m1 sideways"],
    ["foo.x"],
    ["lifecycle_stage"],
    ["metrics.m1", "metrics.m1 DESC"],
    ["created", "start_time"],
    ["metrics.m1, metrics.m2"],
    [" metrics.m1"],
    ["datasets.name"],
]

EXP_FILTERS = [
    "",
    "name = 'search-a'",
    "name != 'search-a'",
    "name LIKE 'search%'",
    "name LIKE 'Search%'",
    "name ILIKE 'SEARCH%'",
    "attribute.name LIKE '%\\_%'",
    "tags.team = 'x'",
    "tags.team != 'x'",
    "tags.k LIKE 'a%'",
    "tags.k ILIKE 'a%'",
    "tags.team IS NULL",
    "tags.team IS NOT NULL AND name LIKE '%b'",
    "creation_time > 0",
    "last_update_time >= 0 AND creation_time < 99999999999999",
    "experiment_id = '1'",
    "experiment_id != '1'",
    "experiment_id IN ('1', '2')",
    "experiment_id NOT IN ('0', '3')",
]
EXP_ORDERS = [
    None,
    ["name"],
    ["name DESC"],
    ["experiment_id"],
    ["experiment_id DESC"],
    ["creation_time", "name DESC"],
    ["last_update_time DESC"],
]
BAD_EXP_FILTERS = [
    "name = 'a' OR name = 'b'",
    "name IS NULL",
    "name IN ('a')",
    "name > 'a'",
    "tags.k > 'a'",
    "tags.k IN ('a')",
    "creation_time LIKE 1",
    "creation_time > 1.5",
    "creation_time = 'x'",
    "experiment_id = 'x'",
    "experiment_id > '1'",
    "experiment_id IN ('1', 'x')",
    "metrics.a > 1",
    "foo = 'x'",
    "tag.k = 'v'",
]
BAD_EXP_ORDERS = [["tags.k"], ["foo"], ["metrics.a"], ["name sideways"]]
BAD_TOKENS = ["not base64!", "bm90IGpzb24=", "eyJvZmZzZXQiOiAwfQ==", "eyJmb28iOiAxfQ==", "eyJvZmZzZXQiOiAieCJ9"]
BAD_MAX_RESULTS = [0, -1, 50001]


def _queries(data: dict) -> list[dict]:
    exps = data["experiments"]
    qs: list[dict] = []

    def q(**kw):
        base = {
            "experiment_ids": exps,
            "filter_string": "",
            "run_view_type": ViewType.ACTIVE_ONLY,
            "max_results": 1000,
            "order_by": None,
            "page_token": None,
        }
        base.update(kw)
        qs.append(base)

    for f in RUN_FILTERS:
        for o in (None, ["metrics.m1 DESC"], ["params.p1", "start_time"]):
            q(filter_string=f, order_by=o)
    for o in ORDERS:
        for f in ("", "metrics.m1 > -1e309" if False else "metrics.m2 != 1"):
            q(filter_string=f, order_by=o)
    for view in (ViewType.ACTIVE_ONLY, ViewType.DELETED_ONLY, ViewType.ALL):
        q(run_view_type=view, order_by=["params.p1 DESC"])
    q(experiment_ids=[exps[0]])
    q(experiment_ids=[exps[1], data["deleted_experiment"]], run_view_type=ViewType.ALL)
    q(experiment_ids=[])
    q(experiment_ids=["999"])
    q(experiment_ids=["x"])
    q(max_results=None)
    q(max_results=None, page_token="eyJvZmZzZXQiOiAxMH0=")
    q(run_id_filter=True)
    for f in BAD_FILTERS:
        q(filter_string=f)
    for o in BAD_ORDERS:
        q(order_by=o)
    for t in BAD_TOKENS:
        q(page_token=t)
    for m in BAD_MAX_RESULTS:
        q(max_results=m)
    # error precedence: a bad filter and a bad order_by together
    q(filter_string="metrics.m1 == 1", order_by=["foo.x"])
    q(filter_string="params.p1 > 'a'", order_by=["foo.x"])
    return qs


SEARCH_SCRIPT = r"""
import os
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"  # see NO_RETRIES
import mlflow
from mlflow import MlflowClient
client = MlflowClient(ARGS["uri"])
res = []
for q in ARGS["queries"]:
    q = dict(q)
    if q.pop("run_id_filter", False):
        some = [r.info.run_id for r in client.search_runs(q["experiment_ids"], max_results=5)]
        q["filter_string"] = "attributes.run_id IN (%s)" % ", ".join("'%s'" % r for r in some)
    try:
        page = client.search_runs(**q)
        res.append({"ids": [r.info.run_id for r in page], "token": page.token})
    except Exception as e:
        res.append(_err(e))
walks = []
for w in ARGS["walks"]:
    pages, token = [], None
    while True:
        page = client.search_runs(ARGS["exps"], w["filter"], 3, w["size"], w["order"], token)
        pages.append([[r.info.run_id for r in page], page.token])
        token = page.token
        if not token:
            break
    walks.append(pages)
exp_res = []
for q in ARGS["exp_queries"]:
    try:
        page = client.search_experiments(**q)
        exp_res.append({"ids": [e.experiment_id for e in page], "token": page.token})
    except Exception as e:
        exp_res.append(_err(e))
def num(x):
    return "nan" if isinstance(x, float) and math.isnan(x) else x
contents = [
    {"info": dict(r.info), "params": r.data.params, "tags": r.data.tags,
     "metrics": {k: num(v) for k, v in r.data.metrics.items()}}
    for r in client.search_runs(ARGS["exps"], "", 3, 1000, ["metrics.m1"])
]
exps = [
    {"id": e.experiment_id, "name": e.name, "tags": e.tags, "stage": e.lifecycle_stage,
     "created": e.creation_time, "updated": e.last_update_time, "location": e.artifact_location}
    for e in client.search_experiments(view_type=3)
]
_out({"runs": res, "walks": walks, "exps": exp_res, "contents": contents, "experiments": exps})
"""

WALKS = [
    {"filter": "", "order": None, "size": 7},
    {"filter": "metrics.m1 > -1", "order": ["metrics.m1 DESC"], "size": 5},
    {"filter": "", "order": ["params.p1", "tags.t1 DESC"], "size": 1},
    {"filter": "params.p1 IS NOT NULL", "order": ["start_time"], "size": 13},
    {"filter": "metrics.m1 != 5 AND params.p1 != 'zzz'", "order": ["metrics.m2 DESC"], "size": 4},
]


def _exp_queries() -> list[dict]:
    qs = []
    for f in EXP_FILTERS:
        for o in EXP_ORDERS:
            qs.append({"filter_string": f, "order_by": o, "view_type": 3, "max_results": 1000})
    for view in (1, 2, 3):
        qs.append({"view_type": view, "max_results": 1000})
    for size in (1, 2, 3):
        qs.append({"view_type": 3, "max_results": size})
    qs.append({"view_type": 3, "max_results": 2, "page_token": "eyJvZmZzZXQiOiAyfQ=="})
    for f in BAD_EXP_FILTERS:
        qs.append({"filter_string": f})
    for o in BAD_EXP_ORDERS:
        qs.append({"order_by": o})
    for t in BAD_TOKENS:
        qs.append({"page_token": t})
    for m in BAD_MAX_RESULTS + [None]:
        qs.append({"max_results": m})
    return qs


def _token(token):
    """A token as the oracle's JSON carries it (MLflow's are bytes, printed by ``str``)."""
    return None if token is None else str(token)


def norm(message: str) -> str:
    """Sort the items of printed sets: their order differs from process to process."""
    return re.sub(
        r"\{([^{}]*)\}", lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}", message
    )


def _err(e: Exception) -> dict:
    return {"error_code": getattr(e, "error_code", type(e).__name__), "message": str(getattr(e, "message", e))}


def _normalize(result):
    if isinstance(result, dict) and "message" in result:
        return {"error_code": result["error_code"], "message": norm(result["message"])}
    return result


def _run_aliases(data: dict):
    """A function replacing the world's run ids (anywhere in a JSON value) by their order of
    creation: worlds built alike on two servers then compare although uuids differ."""
    subs = {rid: f"<run:{i}>" for i, rid in enumerate(data["runs"])}
    pattern = re.compile("|".join(map(re.escape, subs))) if subs else None

    def norm(obj):
        text = json.dumps(obj)
        return json.loads(pattern.sub(lambda m: subs[m.group(0)], text)) if pattern else obj

    return norm


def _oracle_search(uri: str, cwd, data: dict, queries: list[dict]) -> dict:
    """MLflow's client's answers for the world at ``uri``, its run ids aliased."""
    out = run(
        SEARCH_SCRIPT,
        cwd=cwd,
        uri=uri,
        queries=queries,
        walks=WALKS,
        exps=data["experiments"],
        exp_queries=_exp_queries(),
    )
    return _run_aliases(data)(out)


def _world(uri: str, cwd, judge_uri: str | None = None, judge_cwd=None) -> dict:
    """asynctrack fills ``uri`` (tests/_search_data.py); MLflow's client searches it there (the
    judge). With ``judge_uri``, asynctrack fills an identical world there too, which MLflow's
    client searches ("mlflow_server": runs tied on the sort keys come in run-id order, and ids
    are random, so only what does not depend on ties compares across the two servers)."""
    data = build(uri)
    queries = _queries(data)
    world = {"uri": uri, "data": data, "queries": queries, "norm": _run_aliases(data), "cwd": cwd}
    world["oracle"] = _oracle_search(uri, cwd, data, queries)
    if judge_uri is not None:
        judge_data = build(judge_uri)
        world["mlflow_server"] = _oracle_search(judge_uri, judge_cwd, judge_data, _queries(judge_data))
    return world


@pytest.fixture(scope="module")
def sqlite_world(tmp_path_factory):
    path = tmp_path_factory.mktemp("search") / "mlflow.db"
    return _world(f"sqlite:///{path}", path.parent)


servers = server_set_fixture()


@pytest.fixture(scope="module")
def server_worlds(tmp_path_factory, servers):
    """``http``: asynctrack fills ``mlflow server``, both clients search it. ``asynctrack-server``:
    the same on ``asynctrack server``, and MLflow's client there is compared with MLflow's
    client on an identical world in ``mlflow server``."""
    worlds = {"http": _world(servers.ours["http"].url, tmp_path_factory.mktemp("search-http"))}
    if servers.has("asynctrack-server"):
        worlds["asynctrack-server"] = _world(
            servers.ours["asynctrack-server"].url, tmp_path_factory.mktemp("search-at"),
            servers.theirs["http"].url, tmp_path_factory.mktemp("search-judge"),
        )
    return worlds


# Some bad queries make a server answer 500, which MLflow's client (and asynctrack's, as
# MLflow's) retries for minutes before giving up with the same error: neither side retries here.
NO_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}


@pytest.fixture(params=BACKENDS)
def world(request, monkeypatch):
    backend = request.param
    for name, value in NO_RETRIES.items():
        monkeypatch.setenv(name, value)
    if backend == "sqlite":
        return {"backend": backend, **request.getfixturevalue("sqlite_world")}
    request.getfixturevalue("servers").require(backend)
    return {"backend": backend, **request.getfixturevalue("server_worlds")[backend]}


def _ours_runs(client, q):
    q = dict(q)
    if q.pop("run_id_filter", False):
        some = [r.info.run_id for r in client.search_runs(q["experiment_ids"], max_results=5)]
        q["filter_string"] = "attributes.run_id IN (%s)" % ", ".join("'%s'" % r for r in some)
    try:
        page = client.search_runs(**q)
        return {"ids": [r.info.run_id for r in page], "token": _token(page.token)}
    except Exception as e:  # noqa: BLE001 - compared with what MLflow raised
        return _err(e)


def check_runs(client, world) -> None:
    """Every query of ``world`` on ``client`` (asynctrack's, or any object with its
    search_runs) answered as MLflow answered it (``world["oracle"]``)."""
    mismatches = []
    for q, theirs in zip(world["queries"], world["oracle"]["runs"]):
        ours = _normalize(world["norm"](_ours_runs(client, q)))
        if ours != _normalize(theirs):
            mismatches.append((q, ours, theirs))
    assert not mismatches, json.dumps(mismatches[:5], indent=1)
    # the comparison is not vacuous: most queries found runs, errors were raised
    found = [r for r in world["oracle"]["runs"] if r.get("ids")]
    errors = [r for r in world["oracle"]["runs"] if "message" in r]
    assert len(found) > 150 and len(errors) >= len(BAD_FILTERS) + len(BAD_ORDERS)


def check_pages(client, world) -> None:
    """The WALKS page by page, tokens included, as MLflow's."""
    exps = world["data"]["experiments"]
    for walk, theirs in zip(WALKS, world["oracle"]["walks"]):
        pages, token = [], None
        while True:
            page = client.search_runs(exps, walk["filter"], 3, walk["size"], walk["order"], token)
            pages.append([[r.info.run_id for r in page], _token(page.token)])
            token = page.token
            if not token:
                break
        assert world["norm"](pages) == theirs
        ids = [i for p in pages for i in p[0]]
        assert len(ids) == len(set(ids))  # every run exactly once


def check_contents(client, world) -> None:
    """Every run's info, params, tags and metrics, as MLflow's."""

    def num(x):
        return "nan" if isinstance(x, float) and math.isnan(x) else x

    ours = [
        {
            "info": dict(r.info),
            "params": r.data.params,
            "tags": r.data.tags,
            "metrics": {k: num(v) for k, v in r.data.metrics.items()},
        }
        for r in client.search_runs(world["data"]["experiments"], "", 3, 1000, ["metrics.m1"])
    ]
    assert world["norm"](ours) == world["oracle"]["contents"]


def check_experiments(client, world) -> None:
    """Every experiment query (_exp_queries) and the experiments' contents, as MLflow's."""
    mismatches = []
    for q, theirs in zip(_exp_queries(), world["oracle"]["exps"]):
        try:
            page = client.search_experiments(**q)
            ours = {"ids": [e.experiment_id for e in page], "token": _token(page.token)}
        except Exception as e:  # noqa: BLE001
            ours = _err(e)
        if _normalize(ours) != _normalize(theirs):
            mismatches.append((q, ours, theirs))
    assert not mismatches, json.dumps(mismatches[:5], indent=1)
    ours = [
        {"id": e.experiment_id, "name": e.name, "tags": e.tags, "stage": e.lifecycle_stage,
         "created": e.creation_time, "updated": e.last_update_time, "location": e.artifact_location}
        for e in client.search_experiments(view_type=3)
    ]
    assert ours == world["oracle"]["experiments"]


def test_search_runs_same_ids_order_tokens_and_errors(world):
    check_runs(MlflowClient(world["uri"]), world)


def test_search_runs_pages_same_as_mlflow(world):
    check_pages(MlflowClient(world["uri"]), world)


def test_search_runs_contents_same_as_mlflow(world):
    check_contents(MlflowClient(world["uri"]), world)


def test_search_experiments_same_as_mlflow(world):
    check_experiments(MlflowClient(world["uri"]), world)


def _untied(query, result):
    """A search answer without what depends on how ties are broken (by random run id): the
    set of runs where the answer is whole, else their number; errors whole. Where the query
    involves run names, which MLflow generates at random for runs without one, nothing."""
    if "run_name" in json.dumps(query).lower().replace(" ", "_"):
        return None
    if isinstance(result, dict) and "ids" in result:
        if query.get("page_token") or result["token"] is not None or query.get("run_id_filter"):
            return {"count": len(result["ids"]), "more": result["token"] is not None}
        return {"ids": sorted(result["ids"])}
    return _normalize(result)


def test_mlflow_client_searches_asynctrack_server_as_mlflow_server(server_worlds, servers):
    """MLflow's own client gets the same answers from ``asynctrack server`` as from ``mlflow
    server`` holding an identical world: errors, runs found, pages, contents, experiments
    (the order of tied runs aside: see ``_world``; test_search_runs_* check the order on one
    server)."""
    servers.require("asynctrack-server")
    world = server_worlds["asynctrack-server"]
    ours, theirs = world["oracle"], world["mlflow_server"]
    mismatches = [
        (q, a, b) for q, a, b in zip(world["queries"], ours["runs"], theirs["runs"]) if _untied(q, a) != _untied(q, b)
    ]
    assert not mismatches, json.dumps(mismatches[:5], indent=1)
    mismatches = [
        (q, a, b) for q, a, b in zip(_exp_queries(), ours["exps"], theirs["exps"]) if _normalize(a) != _normalize(b)
    ]
    assert not mismatches, json.dumps(mismatches[:5], indent=1)
    for walk_ours, walk_theirs in zip(ours["walks"], theirs["walks"]):
        assert len(walk_ours) == len(walk_theirs)
        assert sorted(i for p in walk_ours for i in p[0]) == sorted(i for p in walk_theirs for i in p[0])
    def by_id(contents):
        """Sorted by run, without the (random) generated names."""
        out = []
        for c in sorted(contents, key=lambda c: c["info"]["run_id"]):
            info = {k: v for k, v in c["info"].items() if k != "run_name"}
            tags = {k: v for k, v in c["tags"].items() if k != "mlflow.runName"}
            out.append({**c, "info": info, "tags": tags})
        return out

    assert by_id(ours["contents"]) == by_id(theirs["contents"])
    timeless = lambda exps: [{k: v for k, v in e.items() if k not in ("created", "updated")} for e in exps]  # noqa: E731
    assert timeless(ours["experiments"]) == timeless(theirs["experiments"])


# -- module-level search_runs / search_experiments, DataFrames included -----------------------
FLUENT = r'''
import math


def frame(df):
    """Columns (in order, but sorted within each of metrics./params./tags., whose order MLflow
    takes from a set), dtypes and values of a DataFrame, JSON-friendly."""
    info = [c for c in df.columns if "." not in c]
    groups = [c.split(".", 1)[0] for c in df.columns if "." in c]
    rest = sorted(c for c in df.columns if "." in c)
    cols = info + rest
    df = df[cols]
    rows = []
    for row in df.itertuples(index=False):
        vals = []
        for v in row:
            if v is None:
                vals.append(None)
            elif isinstance(v, float) and math.isnan(v):
                vals.append("nan")
            else:
                vals.append(str(v))
        rows.append(vals)
    import pandas

    return {
        "pandas": pandas.__version__.split(".")[0],
        "columns": cols,
        "group_order": [g for i, g in enumerate(groups) if i == 0 or groups[i - 1] != g],
        "dtypes": {c: str(t) for c, t in df.dtypes.items()},
        "index": str(df.index),
        "rows": rows,
    }


def error(fn):
    try:
        fn()
    except Exception as e:
        return [type(e).__name__, str(getattr(e, "message", e))]
    return None


def fluent(m, uri, exps):
    m.set_tracking_uri(uri)
    out = {}
    out["df"] = frame(m.search_runs(experiment_ids=exps, order_by=["metrics.m1 DESC"]))
    out["df_deleted"] = frame(m.search_runs(experiment_ids=exps, run_view_type=2))
    out["empty"] = frame(m.search_runs(experiment_ids=exps, filter_string="params.p1 = 'nope'"))
    out["no_experiments"] = frame(m.search_runs(experiment_names=["nope"]))
    ids = lambda runs: [r.info.run_id for r in runs]
    out["names"] = ids(m.search_runs(experiment_names=["search-b", "nope"], output_format="list"))
    out["all"] = ids(m.search_runs(search_all_experiments=True, output_format="list",
                                   order_by=["params.p1"]))
    out["max"] = ids(m.search_runs(exps, max_results=5, output_format="list", order_by=["run_name"]))
    out["string_id"] = ids(m.search_runs(exps[0], output_format="list"))
    m.set_experiment(experiment_id=exps[1])
    out["active"] = ids(m.search_runs(output_format="list"))
    out["both"] = error(lambda: m.search_runs(experiment_ids=exps, experiment_names=["x"]))
    out["format"] = error(lambda: m.search_runs(exps, output_format="csv"))
    out["bad_filter"] = error(lambda: m.search_runs(exps, filter_string="metrics.m1 = 'x'"))
    out["exps"] = [e.experiment_id for e in m.search_experiments(view_type=3, order_by=["name"])]
    out["exps_max"] = [e.experiment_id for e in m.search_experiments(max_results=2)]
    out["exps_filter"] = [e.name for e in m.search_experiments(filter_string="name LIKE 'search%'")]
    return out
'''

FLUENT_SCRIPT = FLUENT + r'''
import os
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"  # see NO_RETRIES
import mlflow
_out(fluent(mlflow, ARGS["uri"], ARGS["exps"]))
'''


def _across_pandas(result):
    """``result``'s frames as they compare across pandas majors. The oracle has its own pandas
    (3 where its Python has it), ours is what pip resolved here (2 on Python 3.10): dtypes are
    then pandas' own (``str`` or ``object`` for strings), and so is how a missing value shows
    (a missing param or tag: NaN in pandas 3's ``str`` column, None in pandas 2's ``object``
    one; an all-missing time column: NaT or None), so all three read as missing here.
    tests/test_search_frame.py checks dtypes and missing values exactly, against MLflow's own
    code on our pandas."""
    if not isinstance(result, dict):
        return result
    if "rows" not in result:
        return {k: _across_pandas(v) for k, v in result.items()}
    rows = [[None if v in ("NaT", "nan") else v for v in row] for row in result["rows"]]
    return {**{k: v for k, v in result.items() if k not in ("pandas", "dtypes")}, "rows": rows}


def _comparable(ours, theirs):
    """Both sides whole where their pandas majors agree, else as _across_pandas has them."""
    majors = lambda r: {f["pandas"] for f in r.values() if isinstance(f, dict) and "pandas" in f}
    if majors(ours) == majors(theirs):
        return ours, theirs
    return _across_pandas(ours), _across_pandas(theirs)


def test_fluent_search_same_as_mlflow(world, fluent):
    """``fluent`` (conftest.py) puts back the tracking URI, experiment and environment."""
    pytest.importorskip("pandas")
    import asynctrack

    exps = world["data"]["experiments"]
    uri = world["uri"]
    theirs = world["norm"](run(FLUENT_SCRIPT, cwd=world["cwd"], uri=uri, exps=exps))
    ns: dict = {}
    exec(FLUENT, ns)
    ours = world["norm"](ns["fluent"](asynctrack, uri, exps))
    ours, theirs = _comparable(ours, theirs)
    for key in theirs:
        assert ours[key] == theirs[key], key
    assert len(theirs["df"]["rows"]) > 20 and theirs["empty"]["rows"] == []


FRAMES_SCRIPT = FLUENT + r'''
import mlflow
mlflow.set_tracking_uri(ARGS["uri"])
_out({name: frame(mlflow.search_runs(experiment_ids=[e])) for name, e in ARGS["exps"].items()})
'''


@pytest.mark.sqlite_only("each backend sets its own tracking URI: the fixture's store is not used")
@pytest.mark.parametrize("backend", BACKENDS)
def test_fluent_frames_same_as_mlflow(backend, tmp_path, fluent, request):
    """DataFrames of awkward runs (tests/_search_data.py's ``build_frames``): keys missing from
    some runs, NaN metrics, running runs, a time column with no time at all, no runs. Over
    HTTP both clients read one server of this test's own (``mlflow server``, or ``asynctrack
    server`` read by MLflow's client too)."""
    pytest.importorskip("pandas")
    import asynctrack

    if backend == "sqlite":
        uri = f"sqlite:///{tmp_path / 'frames.db'}"
    elif backend == "http":
        uri = request.getfixturevalue("fresh_mlflow_server").url
    else:  # the one server of the module's set that no other test uses
        request.getfixturevalue("servers").require(backend)
        uri = request.getfixturevalue("servers").theirs[backend].url
    made = build_frames(uri)
    exps = {name: made[name] for name in ("mixed", "running", "empty")}
    theirs = run(FRAMES_SCRIPT, cwd=tmp_path, uri=uri, exps=exps)
    ns: dict = {}
    exec(FLUENT, ns)
    asynctrack.set_tracking_uri(uri)
    ours = {name: ns["frame"](asynctrack.search_runs(experiment_ids=[e])) for name, e in exps.items()}
    assert theirs["running"]["dtypes"]["end_time"] != theirs["mixed"]["dtypes"]["end_time"]
    ours, theirs = _comparable(json.loads(json.dumps(ours)), theirs)
    assert ours == theirs
    assert len(theirs["mixed"]["rows"]) == 5 and theirs["empty"]["rows"] == []
