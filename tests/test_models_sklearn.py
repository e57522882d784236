"""mlflow.sklearn / mlflow.pyfunc / LoggedModel in asynctrack: MLflow 3.18's model format on
disk, log_model's rows (logged_models, their params and tags, the run's RUN_OUTPUT input), the
models:/ and runs:/ URIs, and get/search/set_tags, on each store kind."""

from __future__ import annotations

import json
import os
import sqlite3

import numpy as np
import pandas as pd
import pytest
import yaml

pytest.importorskip("sklearn")
pytest.importorskip("cloudpickle")
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402

import asynctrack as mlflow  # noqa: E402
from asynctrack.entities import LoggedModel, LoggedModelOutput, LoggedModelStatus  # noqa: E402
from asynctrack.exceptions import MlflowException  # noqa: E402

X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [1, 2, 4, 3]})
Y = [1.0, 2.0, 3.5, 3.9]

MLMODEL_KEYS_SAVED = {
    "flavors", "is_signature_from_type_hint", "mlflow_version", "model_id", "model_size_bytes",
    "model_uuid", "prompts", "saved_input_example_info", "signature", "type_hint_from_example",
    "utc_time_created",
}


@pytest.fixture
def model():
    return LinearRegression().fit(X, Y)


def _mlmodel(path) -> dict:
    with open(os.path.join(path, "MLmodel")) as f:
        return yaml.safe_load(f)


def test_save_model_writes_mlflows_format(tmp_path, model):
    path = tmp_path / "m"
    mlflow.sklearn.save_model(model, path, input_example=X.iloc[:2])
    assert sorted(os.listdir(path)) == [
        "MLmodel", "conda.yaml", "input_example.json", "model.pkl", "python_env.yaml",
        "requirements.txt", "serving_input_example.json",
    ]
    mm = _mlmodel(path)
    assert set(mm) == MLMODEL_KEYS_SAVED
    assert mm["mlflow_version"] == "3.18.0"
    assert mm["model_id"] is None and mm["prompts"] is None
    assert len(mm["model_uuid"]) == 32
    import sklearn

    assert mm["flavors"] == {
        "python_function": {
            "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
            "loader_module": "mlflow.sklearn",
            "model_path": "model.pkl",
            "predict_fn": "predict",
            "python_version": mm["flavors"]["python_function"]["python_version"],
        },
        "sklearn": {
            "code": None,
            "pickled_model": "model.pkl",
            "serialization_format": "cloudpickle",
            "sklearn_version": sklearn.__version__,
            "skops_trusted_types": None,
        },
    }
    assert mm["signature"] == {
        "inputs": '[{"type": "double", "name": "a", "required": true}, '
        '{"type": "long", "name": "b", "required": true}]',
        "outputs": '[{"type": "double", "required": true}]',
        "params": None,
    }
    assert mm["saved_input_example_info"] == {
        "artifact_path": "input_example.json",
        "pandas_orient": "split",
        "serving_input_path": "serving_input_example.json",
        "type": "dataframe",
    }
    assert json.loads((path / "input_example.json").read_text()) == {
        "columns": ["a", "b"], "data": [[1.0, 1], [2.0, 2]],
    }
    assert json.loads((path / "serving_input_example.json").read_text()) == {
        "dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 1], [2.0, 2]]}
    }
    reqs = (path / "requirements.txt").read_text().splitlines()
    assert reqs[0] == "mlflow==3.18.0"
    assert [r.split("==")[0] for r in reqs[1:]] == [
        "cloudpickle", "numpy", "pandas", "scikit-learn", "scipy",
    ]
    conda = yaml.safe_load((path / "conda.yaml").read_text())
    assert conda["name"] == "mlflow-env" and conda["channels"] == ["conda-forge"]
    assert conda["dependencies"][-1] == {"pip": reqs}
    env = yaml.safe_load((path / "python_env.yaml").read_text())
    assert list(env) == ["python", "build_dependencies", "dependencies"]
    assert env["dependencies"] == ["-r requirements.txt"]


def test_round_trip_predicts_the_same(tmp_path, model):
    path = str(tmp_path / "m")
    mlflow.sklearn.save_model(model, path)
    assert "signature" not in _mlmodel(path) and "saved_input_example_info" not in _mlmodel(path)
    loaded = mlflow.sklearn.load_model(path)
    assert type(loaded) is LinearRegression
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    pyf = mlflow.pyfunc.load_model(f"file://{path}")
    np.testing.assert_array_equal(pyf.predict(X), model.predict(X))
    assert pyf.loader_module == "mlflow.sklearn"
    assert pyf.get_raw_model().coef_.tolist() == model.coef_.tolist()


def test_numpy_example_gives_tensor_signature(tmp_path):
    arr = X.to_numpy()
    m = LinearRegression().fit(arr, Y)
    path = tmp_path / "m"
    mlflow.sklearn.save_model(m, path, input_example=arr[:2], serialization_format="pickle")
    mm = _mlmodel(path)
    assert mm["signature"]["inputs"] == (
        '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 2]}}]'
    )
    assert mm["signature"]["outputs"] == (
        '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}]'
    )
    assert mm["saved_input_example_info"]["type"] == "ndarray"
    assert json.loads((path / "serving_input_example.json").read_text()) == {
        "inputs": arr[:2].tolist()
    }
    assert mm["flavors"]["sklearn"]["serialization_format"] == "pickle"
    assert "cloudpickle" not in (path / "requirements.txt").read_text()
    np.testing.assert_array_equal(mlflow.pyfunc.load_model(str(path)).predict(arr), m.predict(arr))


def test_pyfunc_enforces_column_signature(tmp_path, model):
    path = str(tmp_path / "m")
    mlflow.sklearn.save_model(model, path, input_example=X.iloc[:2])
    pyf = mlflow.pyfunc.load_model(path)
    # columns in another order, and an extra one: the signature's order is used
    shuffled = X[["b", "a"]].assign(c=0)
    np.testing.assert_array_equal(pyf.predict(shuffled), model.predict(X))
    with pytest.raises(MlflowException) as e:
        pyf.predict(X[["a"]])
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Model is missing inputs ['b']" in e.value.message


def test_save_model_refusals(tmp_path, model):
    with pytest.raises(MlflowException) as e:
        mlflow.sklearn.save_model(model, tmp_path / "x", serialization_format="json")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert e.value.message == (
        "Unrecognized serialization format: json. Please specify one of the following "
        "supported formats: ['skops', 'pickle', 'cloudpickle']."
    )
    assert not (tmp_path / "x").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(MlflowException) as e:
        mlflow.sklearn.save_model(model, tmp_path / "full")
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert e.value.message == f"Path '{tmp_path / 'full'}' already exists and is not empty"
    with pytest.raises(MlflowException) as e:
        mlflow.pyfunc.load_model(str(tmp_path / "nothing"))
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_signature_false_and_no_predict(tmp_path, model):
    mlflow.sklearn.save_model(model, tmp_path / "m", input_example=X.iloc[:1], signature=False)
    assert "signature" not in _mlmodel(tmp_path / "m")

    class NoPredict:
        pass

    mlflow.sklearn.save_model(NoPredict(), tmp_path / "n")
    assert set(_mlmodel(tmp_path / "n")["flavors"]) == {"sklearn"}
    with pytest.raises(MlflowException) as e:
        mlflow.pyfunc.load_model(str(tmp_path / "n"))
    assert e.value.message == 'Model does not have the "python_function" flavor'


def _rows(fluent, table: str) -> list[tuple]:
    uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite"):
        with sqlite3.connect(uri[len("sqlite:///"):]) as c:
            return c.execute(f"SELECT * FROM {table}").fetchall()
    import psycopg

    from asynctrack.store._postgres.uri import libpq_uri

    with psycopg.connect(libpq_uri(uri)) as c:
        return c.execute(f"SELECT * FROM {table}").fetchall()


def test_log_model_rows_and_uris(fluent, model):
    with fluent.start_run() as run:
        fluent.log_param("alpha", "0.5")
        fluent.set_tag("t", "v")
        fluent.log_metric("acc", 0.5, step=1, timestamp=1000)
        fluent.log_metric("acc", 0.7, step=3, timestamp=2000)
        fluent.log_metric("loss", 0.1, step=3, timestamp=2000)
        info = fluent.sklearn.log_model(
            model, name="model", input_example=X.iloc[:2], params={"own": 1}, tags={"k": "v"},
            model_type="regressor", step=3,
        )
    run_id = run.info.run_id
    mid = info.model_id
    assert mid.startswith("m-") and len(mid) == 34
    assert info.model_uri == f"models:/{mid}" and info.run_id == run_id
    (row,) = _rows(fluent, "logged_models")
    location = row[3]
    assert row[:3] == (mid, 0, "model")
    assert location.endswith(f"/0/models/{mid}/artifacts")
    assert row[6:] == (2, "active", "regressor", run_id, None)
    assert sorted(r[2:] for r in _rows(fluent, "logged_model_params")) == [
        ("alpha", "0.5"), ("own", "1"),
    ]
    tags = {r[2]: r[3] for r in _rows(fluent, "logged_model_tags")}
    assert tags["k"] == "v" and tags["mlflow.source.type"] == "LOCAL" and "mlflow.user" in tags
    assert "t" not in tags
    (inp,) = _rows(fluent, "inputs")
    assert inp[1:] == ("RUN_OUTPUT", run_id, "MODEL_OUTPUT", mid, 3)
    assert fluent.get_run(run_id).outputs.model_outputs == [LoggedModelOutput(mid, 3)]
    assert run.outputs.model_outputs == [LoggedModelOutput(mid, 3)]
    (found,) = fluent.search_runs(output_format="list")  # search returns outputs as get_run does
    assert found.outputs.model_outputs == [LoggedModelOutput(mid, 3)]
    with pytest.raises(MlflowException) as e:  # the same output twice: the store's unique key
        fluent.MlflowClient().log_outputs(run_id, [LoggedModelOutput(mid, 3)])
    assert e.value.error_code == "BAD_REQUEST"
    assert fluent.get_run(run_id).outputs.model_outputs == [LoggedModelOutput(mid, 3)]
    assert fluent.models.Model.load(f"models:/{mid}").model_id == mid
    assert fluent.models.Model.load(f"runs:/{run_id}/model").run_id == run_id
    assert sorted(r[1:5] + r[6:] for r in _rows(fluent, "logged_model_metrics")) == [
        ("acc", 2000, 3, 0.7, run_id, None, None, None),
        ("loss", 2000, 3, 0.1, run_id, None, None, None),
    ]
    metrics = sorted(fluent.get_logged_model(mid).metrics, key=lambda m: m.key)
    assert [(m.key, m.value, m.step, m.model_id, m.run_id) for m in metrics] == [
        ("acc", 0.7, 3, mid, run_id), ("loss", 0.1, 3, mid, run_id),
    ]
    assert fluent.search_logged_models(filter_string="metrics.acc > 0.6", output_format="list")
    assert not fluent.search_logged_models(filter_string="metrics.acc > 0.8", output_format="list")
    assert sorted(os.listdir(location)) == [
        "MLmodel", "conda.yaml", "input_example.json", "model.pkl", "python_env.yaml",
        "requirements.txt", "serving_input_example.json",
    ]
    mm = _mlmodel(location)
    assert mm["artifact_path"] == location and mm["run_id"] == run_id
    assert mm["model_id"] == mid and mm["model_uuid"] == mid
    expected = model.predict(X)
    for uri in (f"models:/{mid}", f"runs:/{run_id}/model", location):
        np.testing.assert_array_equal(fluent.pyfunc.load_model(uri).predict(X), expected)
        np.testing.assert_array_equal(fluent.sklearn.load_model(uri).predict(X), expected)
    with pytest.raises(MlflowException) as e:
        fluent.sklearn.load_model(f"runs:/{run_id}/other")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        fluent.pyfunc.load_model("models:/m-0123")
    assert (e.value.error_code, e.value.message) == (
        "RESOURCE_DOES_NOT_EXIST", "Logged model with ID 'm-0123' not found.",
    )


def test_get_search_and_tag_logged_models(fluent):
    clf = LogisticRegression().fit(X, [0, 1, 0, 1])
    with fluent.start_run():
        fluent.log_param("kind", "lr")
        a = fluent.sklearn.log_model(clf, name="first")
    b = fluent.sklearn.log_model(clf, name="second", params={"kind": "other"})
    assert b.run_id is None
    got = fluent.get_logged_model(a.model_id)
    assert isinstance(got, LoggedModel)
    assert (got.name, got.status, got.params) == ("first", LoggedModelStatus.READY, {"kind": "lr"})
    assert got.source_run_id == a.run_id and got.model_uri == f"models:/{a.model_id}"
    assert fluent.get_logged_model(b.model_id).source_run_id is None
    assert _rows(fluent, "inputs") and len(_rows(fluent, "inputs")) == 1

    fluent.set_logged_model_tags(a.model_id, {"stage": "prod", "n": 2})
    fluent.set_logged_model_tags(a.model_id, {"stage": "staging"})
    tags = fluent.get_logged_model(a.model_id).tags
    assert (tags["stage"], tags["n"]) == ("staging", "2")
    fluent.delete_logged_model_tag(a.model_id, "n")
    assert "n" not in fluent.get_logged_model(a.model_id).tags

    def ids(flt=None, **kw):
        return [m.model_id for m in fluent.search_logged_models(filter_string=flt, output_format="list", **kw)]

    # newest first
    assert ids() == [b.model_id, a.model_id]
    assert ids("name = 'first'") == [a.model_id]
    assert ids("params.kind = 'other'") == [b.model_id]
    assert ids("tags.stage = 'staging' AND name = 'first'") == [a.model_id]
    assert ids("tags.stage = 'prod'") == []
    assert ids("name LIKE 'sec%'") == [b.model_id]
    assert ids("name IN ('first', 'second')") == [b.model_id, a.model_id]
    assert ids("name NOT IN ('first')") == [b.model_id]
    assert ids("status = 'READY'") == [b.model_id, a.model_id]
    assert ids("status != 'READY'") == []
    assert ids(f"creation_time >= {fluent.get_logged_model(b.model_id).creation_timestamp}") == [
        b.model_id
    ]
    assert ids("params.kind LIKE 'l%' AND tags.stage != 'prod'") == [a.model_id]
    assert ids(order_by=[{"field_name": "name", "ascending": True}]) == [a.model_id, b.model_id]
    assert ids(max_results=1) == [b.model_id]
    page = fluent.MlflowClient().search_logged_models(["0"], max_results=1)
    assert [m.model_id for m in page] == [b.model_id] and page.token
    page2 = fluent.MlflowClient().search_logged_models(["0"], max_results=1, page_token=page.token)
    assert [m.model_id for m in page2] == [a.model_id] and page2.token is None
    df = fluent.search_logged_models()
    assert list(df["name"]) == ["second", "first"]
    assert list(df["status"]) == [LoggedModelStatus.READY, LoggedModelStatus.READY]
    with pytest.raises(MlflowException) as e:
        fluent.set_logged_model_tags("m-missing", {"a": "b"})
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert e.value.message.startswith("Failed to get logged model with ID m-missing. ")
    with pytest.raises(MlflowException) as e:
        fluent.set_logged_model_tags("", {"a": "b"})
    assert e.value.message == "`model_id` must be a non-empty string, but got ''"
    with pytest.raises(MlflowException) as e:
        fluent.search_logged_models(filter_string="params.kind > 'a'")
    assert e.value.message == (
        "Invalid comparison operator for params.kind: '>'. "
        "Expected one of ('=', '!=', 'LIKE', 'ILIKE', 'IN', 'NOT IN')."
    )
    with pytest.raises(MlflowException) as e:
        fluent.search_logged_models(order_by=[{"field_name": "metrics.acc"}])
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as e:
        fluent.sklearn.log_model(clf, name="bad/name")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert e.value.message.startswith("Invalid model name ('bad/name') provided.")


def test_create_and_finalize_logged_model(fluent, model):
    from asynctrack.fluent import _models

    _models._last.model_id = None  # an earlier test's model, in another store
    assert fluent.last_logged_model() is None
    m = fluent.create_logged_model(name="manual", params={"p": 1}, model_type="agent")
    assert fluent.last_logged_model() == m
    assert m.status == LoggedModelStatus.PENDING and m.source_run_id is None
    assert m.params == {"p": "1"} and m.model_type == "agent"
    done = fluent.finalize_logged_model(m.model_id, LoggedModelStatus.FAILED)
    assert done.status == LoggedModelStatus.FAILED
    assert done.last_updated_timestamp >= m.last_updated_timestamp
    unnamed = fluent.create_logged_model()
    assert unnamed.name and "-" in unnamed.name
    fluent.log_outputs([LoggedModelOutput(unnamed.model_id, 7)])  # starts a run
    run_id = fluent.active_run().info.run_id
    assert fluent.get_run(run_id).outputs.model_outputs == [LoggedModelOutput(unnamed.model_id, 7)]
    fluent.end_run()
    info = fluent.sklearn.log_model(model, name="last")
    assert fluent.last_logged_model().model_id == info.model_id
    fluent.delete_logged_model(m.model_id)
    with pytest.raises(MlflowException) as e:
        fluent.get_logged_model(m.model_id)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    gone = fluent.MlflowClient().get_logged_model(m.model_id, allow_deleted=True)
    assert gone.last_updated_timestamp >= done.last_updated_timestamp
    names = [x.name for x in fluent.search_logged_models(output_format="list")]
    assert sorted(names) == sorted(["last", unnamed.name])


def test_requirements_as_mlflow_processes_them(tmp_path, model):
    mlflow.sklearn.save_model(model, tmp_path / "a", pip_requirements=["scikit-learn", "x==1", "x==1"])
    assert (tmp_path / "a" / "requirements.txt").read_text() == "mlflow==3.18.0\nscikit-learn\nx==1"
    mlflow.sklearn.save_model(model, tmp_path / "b", pip_requirements=["mlflow>=3", "numpy"])
    assert (tmp_path / "b" / "requirements.txt").read_text() == "mlflow>=3\nnumpy"
    (tmp_path / "reqs.txt").write_text("# pinned\nscikit-learn==1.9.1\n\nnumpy  # any\n")
    mlflow.sklearn.save_model(model, tmp_path / "f", pip_requirements=str(tmp_path / "reqs.txt"))
    assert (tmp_path / "f" / "requirements.txt").read_text() == (
        "mlflow==3.18.0\nscikit-learn==1.9.1\nnumpy"
    )
    mlflow.sklearn.save_model(model, tmp_path / "c", extra_pip_requirements=["extra-pkg"])
    reqs = (tmp_path / "c" / "requirements.txt").read_text().splitlines()
    assert reqs[0] == "mlflow==3.18.0" and reqs[-1] == "extra-pkg" and len(reqs) == 7


def test_log_model_artifact_path_is_the_name(fluent, model, caplog):
    with fluent.start_run():
        info = fluent.sklearn.log_model(model, "legacy")
        with pytest.raises(MlflowException) as e:
            fluent.sklearn.log_model(model, "a", name="b")
    assert info.name == "legacy" == fluent.get_logged_model(info.model_id).name
    assert "`artifact_path` is deprecated. Please use `name` instead." in caplog.text
    assert e.value.message == (
        "Both `artifact_path` (deprecated) and `name` parameters were specified. "
        "Please only specify `name`."
    )
    assert len(_rows(fluent, "logged_models")) == 1


def test_skops_needs_its_extra(tmp_path, model):
    try:
        import skops  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("skops is installed here")
    with pytest.raises(ImportError) as e:
        mlflow.sklearn.save_model(model, tmp_path / "s", serialization_format="skops")
    assert "pip install 'asynctrack[skops]'" in str(e.value)
    assert not (tmp_path / "s").exists()
