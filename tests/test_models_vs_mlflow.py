"""MLflow 3.18 and asynctrack on one SQLite file and artifact root: real MLflow loads, predicts
with, gets and searches the models asynctrack logged, and asynctrack does the same with
MLflow's; both write the same MLmodel fields and logged-model rows."""

from __future__ import annotations

import os
import sqlite3

import numpy as np
import pandas as pd
import pytest
import yaml

pytest.importorskip("sklearn")
pytest.importorskip("cloudpickle")
from sklearn.linear_model import LinearRegression  # noqa: E402

import asynctrack as mlflow  # noqa: E402
from asynctrack.entities import LoggedModelStatus  # noqa: E402
from tests import oracle  # noqa: E402
from tests.oracle import oracle_python  # noqa: E402,F401 (skipif evaluates oracle_python)
from tests._store_fixtures import tracking_uri_of_kind  # noqa: E402

pytestmark = [pytest.mark.mlflow, oracle.needs_mlflow]

X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [1, 2, 4, 3]})
Y = [1.0, 2.0, 3.5, 3.9]

SEARCHES = [
    "",
    "name = 'reg'",
    "name != 'reg'",
    "params.alpha = '0.5'",
    "params.alpha IN ('0.5', '1')",
    "tags.stage = 'prod' AND name = 'reg'",
    "model_type = 'c'",
    "name LIKE 're%'",
    "name ILIKE 'OTH%'",
    "tags.stage = 'none'",
]

BAD_SEARCHES = [
    "foo = 'x'",
    "name = ",
    "name > 'a'",
    "creation_time LIKE '1'",
    "stuff.a = 'b'",
    "status = 'NOPE'",
    "status LIKE 'R%'",
]

_ORACLE_SETUP = """
def _err_of(fn):
    try:
        fn()
    except Exception as e:
        return _err(e)
    return None
import os, warnings, logging
warnings.simplefilter("ignore")
logging.disable(logging.WARNING)
import mlflow, pandas as pd
mlflow.set_tracking_uri(ARGS["uri"])
X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [1, 2, 4, 3]})
def model_fields(m):
    return {"model_id": m.model_id, "name": m.name, "experiment_id": m.experiment_id,
            "artifact_location": m.artifact_location, "status": str(m.status),
            "source_run_id": m.source_run_id, "params": m.params, "tags": m.tags,
            "model_type": m.model_type, "creation_timestamp": m.creation_timestamp,
            "last_updated_timestamp": m.last_updated_timestamp}
"""


def _fields(m) -> dict:
    return {
        "model_id": m.model_id, "name": m.name, "experiment_id": m.experiment_id,
        "artifact_location": m.artifact_location, "status": str(m.status),
        "source_run_id": m.source_run_id, "params": m.params, "tags": m.tags,
        "model_type": m.model_type, "creation_timestamp": m.creation_timestamp,
        "last_updated_timestamp": m.last_updated_timestamp,
    }


def _oracle_uri(uri: str) -> str:
    """The URI as the oracle opens it: its venv has psycopg2, not psycopg 3."""
    scheme, rest = uri.split("://", 1)
    return f"postgresql+psycopg2://{rest}" if scheme.startswith("postgres") else uri


@pytest.fixture
def shared(store_kind, tmp_path, monkeypatch, request):
    """One tracking URI (SQLite, or a PostgreSQL database; artifacts under tmp_path/mlruns)
    for both sides."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("MLFLOW_")]:
        monkeypatch.delenv(name)
    uri = tracking_uri_of_kind(store_kind, tmp_path, request)
    from asynctrack import tracking_uri
    from asynctrack.fluent import _experiments

    monkeypatch.setattr(tracking_uri, "_tracking_uri", uri)
    monkeypatch.setattr(_experiments, "_active_experiment_id", None)
    yield uri
    while mlflow.active_run() is not None:
        mlflow.end_run()


def test_mlflow_loads_and_searches_what_asynctrack_logged(shared, tmp_path):
    model = LinearRegression().fit(X, Y)
    with mlflow.start_run() as run:
        mlflow.log_param("alpha", "0.5")
        info = mlflow.sklearn.log_model(model, name="reg", input_example=X.iloc[:2], model_type="r")
    mlflow.set_logged_model_tags(info.model_id, {"stage": "prod"})
    ours = _fields(mlflow.get_logged_model(info.model_id))
    # two more models to search among (no run: source_run_id NULL)
    mlflow.create_logged_model(name="other", params={"alpha": "1"}, tags={"stage": "dev"})
    mlflow.create_logged_model(name="reg", model_type="c", params={"beta": "x"})
    mine = {
        flt: [m.model_id for m in mlflow.search_logged_models(filter_string=flt, output_format="list")]
        for flt in SEARCHES
    }
    by_name = [
        m.model_id for m in mlflow.search_logged_models(
            order_by=[{"field_name": "name", "ascending": False}], output_format="list"
        )
    ]
    out = oracle.run(
        _ORACLE_SETUP
        + """
c = mlflow.MlflowClient()
mid, rid = ARGS["model_id"], ARGS["run_id"]
res = {
    "pyfunc": mlflow.pyfunc.load_model(f"models:/{mid}").predict(X).tolist(),
    "sklearn_runs": mlflow.sklearn.load_model(f"runs:/{rid}/reg").predict(X).tolist(),
    "get": model_fields(c.get_logged_model(mid)),
    "search": [m.model_id for m in c.search_logged_models(["0"], filter_string="name = 'reg'")],
    "search_tag": [m.model_id for m in c.search_logged_models(["0"], filter_string="tags.stage = 'prod'")],
    "search_param": [m.model_id for m in c.search_logged_models(["0"], filter_string="params.alpha = '0.5'")],
    "run_outputs": [o.model_id for o in c.get_run(rid).outputs.model_outputs],
    "signature": mlflow.models.get_model_info(f"models:/{mid}").signature.to_dict(),
    "searches": {f: [m.model_id for m in c.search_logged_models(["0"], filter_string=f)]
                 for f in ARGS["searches"]},
    "by_name": [m.model_id for m in c.search_logged_models(
        ["0"], order_by=[{"field_name": "name", "ascending": False}])],
    "search_errors": {f: _err_of(lambda: c.search_logged_models(["0"], filter_string=f))
                      for f in ARGS["bad_searches"]},
    "order_error": _err_of(lambda: c.search_logged_models(["0"], order_by=[{"field_name": "foo"}])),
    "order_error2": _err_of(lambda: c.search_logged_models(["0"], order_by=[{"field_name": "params.a"}])),
    "tag_error": _err_of(lambda: c.set_logged_model_tags("m-nope", {"a": "b"})),
    "get_error": _err_of(lambda: c.get_logged_model("m-nope")),
    "delete_tag_error": _err_of(lambda: c.delete_logged_model_tag(mid, "nokey")),
    "name_error": _err_of(lambda: c.create_logged_model("0", name="a.b")),
    "experiment_error": _err_of(lambda: c.create_logged_model("12345", name="x")),
}
_out(res)
""",
        cwd=tmp_path,
        uri=_oracle_uri(shared),
        model_id=info.model_id,
        run_id=run.info.run_id,
        searches=SEARCHES,
        bad_searches=BAD_SEARCHES,
    )
    expected = model.predict(X).tolist()
    assert out["pyfunc"] == expected and out["sklearn_runs"] == expected
    assert out["get"] == ours
    assert out["get"]["status"] == "READY" and out["get"]["params"] == {"alpha": "0.5"}
    assert out["search_tag"] == out["search_param"] == [info.model_id]
    assert out["search"][1:] == [info.model_id] and len(out["search"]) == 2  # newest first
    assert out["run_outputs"] == [info.model_id]
    assert out["signature"] == info.signature.to_dict()
    assert out["searches"] == mine
    assert out["by_name"] == by_name
    assert [len(mine[f]) for f in SEARCHES] == [3, 2, 1, 1, 2, 1, 1, 2, 1, 0]
    client = mlflow.MlflowClient()
    for flt in BAD_SEARCHES:
        assert oracle.error_of(client.search_logged_models, ["0"], filter_string=flt) == (
            out["search_errors"][flt]
        ), flt
    assert out["order_error"] == oracle.error_of(
        client.search_logged_models, ["0"], order_by=[{"field_name": "foo"}]
    )
    assert out["order_error2"] == oracle.error_of(
        client.search_logged_models, ["0"], order_by=[{"field_name": "params.a"}]
    )
    assert out["tag_error"] == oracle.error_of(client.set_logged_model_tags, "m-nope", {"a": "b"})
    assert out["get_error"] == oracle.error_of(client.get_logged_model, "m-nope")
    assert out["delete_tag_error"] == oracle.error_of(
        client.delete_logged_model_tag, info.model_id, "nokey"
    )
    assert out["name_error"] == oracle.error_of(client.create_logged_model, "0", name="a.b")
    assert out["experiment_error"] == oracle.error_of(client.create_logged_model, "12345", name="x")


@pytest.mark.sqlite_only("reads the rows of both sides from the SQLite file")
def test_asynctrack_loads_what_mlflow_logged(shared, tmp_path):
    out = oracle.run(
        _ORACLE_SETUP
        + """
from sklearn.linear_model import LinearRegression
m = LinearRegression().fit(X, [1.0, 2.0, 3.5, 3.9])
with mlflow.start_run() as run:
    mlflow.log_param("alpha", "0.5")
    mlflow.log_metric("acc", 0.5, step=1, timestamp=1000)
    mlflow.log_metric("acc", 0.7, step=2, timestamp=2000)
    info = mlflow.sklearn.log_model(
        m, name="reg", input_example=X.iloc[:2], serialization_format="cloudpickle",
        pip_requirements=["scikit-learn"], tags={"k": "v"}, model_type="r", step=2,
    )
c = mlflow.MlflowClient()
import platform, sys as _sys, sklearn, cloudpickle, pip
_out({"model_id": info.model_id, "run_id": run.info.run_id,
      "env": [platform.python_version(), sklearn.__version__, cloudpickle.__version__, pip.__version__],
      "get": model_fields(c.get_logged_model(info.model_id)),
      "predict": m.predict(X).tolist()})
""",
        cwd=tmp_path,
        uri=shared,
    )
    mid, rid = out["model_id"], out["run_id"]
    assert _fields(mlflow.get_logged_model(mid)) == out["get"]
    assert mlflow.get_logged_model(mid).status == LoggedModelStatus.READY
    for uri in (f"models:/{mid}", f"runs:/{rid}/reg"):
        assert mlflow.pyfunc.load_model(uri).predict(X).tolist() == out["predict"]
        assert mlflow.sklearn.load_model(uri).predict(X).tolist() == out["predict"]
    found = mlflow.search_logged_models(filter_string="tags.k = 'v'", output_format="list")
    assert [m.model_id for m in found] == [mid]

    # asynctrack logs the same model the same way: the same rows and MLmodel fields
    with mlflow.start_run() as run:
        mlflow.log_param("alpha", "0.5")
        mlflow.log_metric("acc", 0.5, step=1, timestamp=1000)
        mlflow.log_metric("acc", 0.7, step=2, timestamp=2000)
        ours = mlflow.sklearn.log_model(
            LinearRegression().fit(X, Y), name="reg", input_example=X.iloc[:2],
            pip_requirements=["scikit-learn"], tags={"k": "v"}, model_type="r", step=2,
        )
    with sqlite3.connect(tmp_path / "mlflow.db") as c:
        rows = {
            r[0]: r[1:] for r in c.execute(
                "SELECT model_id, experiment_id, name, status, lifecycle_stage, model_type, "
                "status_message FROM logged_models"
            )
        }
        params = {
            mid_: sorted(c.execute(
                "SELECT param_key, param_value FROM logged_model_params WHERE model_id = ?", (mid_,)
            ).fetchall())
            for mid_ in rows
        }
        tag_keys = {
            mid_: sorted(k for (k,) in c.execute(
                "SELECT tag_key FROM logged_model_tags WHERE model_id = ? "
                "AND tag_key NOT LIKE 'mlflow.source.git%'",  # pytest's checkout, not the oracle's
                (mid_,),
            ))
            for mid_ in rows
        }
        model_metrics = sorted(
            c.execute(
                "SELECT metric_name, metric_timestamp_ms, metric_step, metric_value, "
                "experiment_id, dataset_uuid, dataset_name, dataset_digest FROM logged_model_metrics"
            ).fetchall()
        )
        inputs = sorted(
            c.execute("SELECT source_type, destination_type, step FROM inputs").fetchall()
        )
    assert rows[mid] == rows[ours.model_id] == (0, "reg", 2, "active", "r", None)
    assert params[mid] == params[ours.model_id] == [("alpha", "0.5")]
    assert tag_keys[mid] == tag_keys[ours.model_id]
    assert inputs == [("RUN_OUTPUT", "MODEL_OUTPUT", 2)] * 2
    assert model_metrics == [("acc", 2000, 2, 0.7, 0, None, None, None)] * 2

    def mlmodel(model_id):
        loc = mlflow.get_logged_model(model_id).artifact_location
        with open(os.path.join(loc, "MLmodel")) as f:
            return yaml.safe_load(f), sorted(os.listdir(loc)), open(os.path.join(loc, "requirements.txt")).read()

    theirs_mm, theirs_files, theirs_reqs = mlmodel(mid)
    ours_mm, ours_files, ours_reqs = mlmodel(ours.model_id)
    # CI runs this on every Python against one oracle: versions (Python's, scikit-learn's, pip's)
    # are each side's own, and the pickle's size depends on them; all else must be the same.
    same_env = out["env"] == _env()
    same = (lambda a, b: a == b) if same_env else (lambda a, b: _unversioned(a) == _unversioned(b))
    assert set(ours_mm) == set(theirs_mm)
    assert same(yaml.safe_dump(ours_mm["flavors"]), yaml.safe_dump(theirs_mm["flavors"]))
    assert ours_mm["signature"] == theirs_mm["signature"]
    assert ours_mm["saved_input_example_info"] == theirs_mm["saved_input_example_info"]
    assert ours_mm["mlflow_version"] == theirs_mm["mlflow_version"]
    if same_env:
        assert ours_mm["model_size_bytes"] == theirs_mm["model_size_bytes"]
    assert ours_files == theirs_files
    assert ours_reqs == theirs_reqs
    for name in ("input_example.json", "serving_input_example.json", "python_env.yaml", "conda.yaml"):
        theirs_text = open(os.path.join(mlflow.get_logged_model(mid).artifact_location, name)).read()
        ours_text = open(os.path.join(ours.logged_model.artifact_location, name)).read()
        assert same(ours_text, theirs_text), name
    np.testing.assert_array_equal(
        mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/reg").predict(X), out["predict"]
    )


def _env() -> list[str]:
    import platform

    import cloudpickle
    import pip
    import sklearn

    return [platform.python_version(), sklearn.__version__, cloudpickle.__version__, pip.__version__]


def _unversioned(text: str) -> str:
    """``text`` with every version number (3.10.13, 1.7.2, 24.0) made one mark, and pins
    dropped: a 3.12+ venv has no setuptools, so both MLflow and asynctrack write it unpinned."""
    import re

    return re.sub(r"\d+(\.\d+)+", "V", re.sub(r"==[^\s'\"]+", "", text))
