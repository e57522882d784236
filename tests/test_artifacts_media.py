"""log_image, log_figure and log_table/load_table: round trips, MLflow's rules, and refusals."""

from __future__ import annotations

import json
import os
import re
import sys
import warnings

import pytest

import asynctrack
from asynctrack import MlflowException, RunOperations
from tests._artifact_fixtures import env, files_under  # noqa: F401 (fixture)

np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")


def _root(client, run_id):
    return client.get_run(run_id).info.artifact_uri


# -- images -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "array, mode",
    [
        (np.arange(12, dtype=np.uint8).reshape(3, 4), "L"),
        (np.zeros((3, 4, 1), dtype=np.int64), "L"),
        (np.full((3, 4, 3), 200, dtype=np.uint8), "RGB"),
        (np.full((3, 4, 4), 7, dtype=np.int32), "RGBA"),
        (np.ones((3, 4), dtype=bool), "L"),
        (np.full((3, 4, 3), 0.5, dtype=np.float32), "RGB"),
    ],
)
def test_log_image_array_round_trip(env, array, mode):
    client, run_id, _ = env
    client.log_image(run_id, array, "img/a.png")
    loaded = asynctrack.artifacts.load_image(f"runs:/{run_id}/img/a.png")
    assert loaded.mode == mode and loaded.size == (4, 3)
    squeezed = array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array
    expected = squeezed.astype(np.uint8) if squeezed.dtype.kind in "iu" else (squeezed * 255).astype(np.uint8)
    assert np.array_equal(np.asarray(loaded), expected)


def test_float_out_of_range_is_rescaled_with_a_warning(env):
    client, run_id, _ = env
    with pytest.warns(UserWarning, match="Rescaling values"):
        client.log_image(run_id, np.array([[-1.0, 1.0], [3.0, 0.0]]), "f.png")
    loaded = np.asarray(asynctrack.artifacts.load_image(f"runs:/{run_id}/f.png"))
    assert loaded.tolist() == [[0, 127], [255, 63]]


def test_log_pil_image_and_formats(env):
    client, run_id, _ = env
    img = Image.new("RGB", (5, 6), (10, 20, 30))
    for name in ("p.png", "p.jpg", "p.bmp", "p.webp"):
        client.log_image(run_id, img, name)
        loaded = asynctrack.artifacts.load_image(f"runs:/{run_id}/{name}")
        assert loaded.size == (5, 6)
    assert asynctrack.artifacts.load_image(f"runs:/{run_id}/p.png").getpixel((0, 0)) == (10, 20, 30)


@pytest.mark.parametrize(
    "image, code_type, match",
    [
        (np.zeros((2, 2, 2), np.uint8), ValueError, "Invalid channel length: 2"),
        (np.zeros((2,), np.uint8), ValueError, "must be a 2D or 3D array"),
        (np.zeros((2, 2, 3, 1), np.uint8), ValueError, "must be a 2D or 3D array"),
        (np.zeros((2, 2), np.complex64), TypeError, "Invalid array data type: 'complex64'"),
        (np.array([["a"]]), TypeError, "Invalid array data type"),
        (np.full((2, 2), 300, np.int32), ValueError, "out of acceptable range"),
        (np.full((2, 2), -1, np.int8), ValueError, "out of acceptable range"),
        ([[1, 2]], TypeError, "Unsupported image object type"),
    ],
)
def test_bad_images_are_refused(env, image, code_type, match):
    client, run_id, _ = env
    with pytest.raises(MlflowException, match=re.escape(match)) as e:
        client.log_image(run_id, image, "bad.png")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert isinstance(e.value, code_type)  # MLflow raises this built-in type
    assert files_under(os.getcwd() + "/mlruns") == []


@pytest.mark.parametrize("artifact_file", ["x.xyz", "x"])
def test_unsupported_image_extension(env, artifact_file):
    client, run_id, _ = env
    with pytest.raises(MlflowException) as e:
        client.log_image(run_id, np.zeros((2, 2), np.uint8), artifact_file)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert isinstance(e.value, ValueError)
    assert files_under(os.getcwd() + "/mlruns") == []


def test_image_that_the_format_cannot_hold_leaves_nothing(env):
    client, run_id, _ = env
    with pytest.raises(OSError):
        client.log_image(run_id, Image.new("RGBA", (2, 2)), "x.jpg")  # JPEG has no alpha
    assert files_under(_root(client, run_id)) == []


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"artifact_file": "a.png", "key": "k"}, {"artifact_file": "a.png", "step": 1}],
)
def test_log_image_argument_errors(env, kwargs):
    client, run_id, _ = env
    with pytest.raises(MlflowException) as e:
        client.log_image(run_id, np.zeros((2, 2), np.uint8), **kwargs)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert isinstance(e.value, TypeError)


def test_bad_image_key(env):
    client, run_id, _ = env
    with pytest.raises(MlflowException) as e:
        client.log_image(run_id, np.zeros((2, 2), np.uint8), key="k@")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize("synchronous", [True, False])
def test_image_series_layout_is_mlflows(env, synchronous):
    client, run_id, _ = env
    image = np.random.default_rng(0).random((300, 600, 3))
    for step in (0, 1):
        ops = client.log_image(
            run_id, image, key="val/pred", step=step, timestamp=1000 + step, synchronous=synchronous
        )
        if synchronous:
            assert ops is None
        else:
            assert isinstance(ops, RunOperations)
            ops.wait()
    names = [f.path for f in client.list_artifacts(run_id, "images")]
    pattern = r"images/val~pred\+step\+(\d)\+timestamp\+100\1\+[0-9a-f-]{36}(\+compressed\.webp|\.png)"
    assert len(names) == 4 and all(re.fullmatch(pattern, n) for n in names), names
    full = [n for n in names if n.endswith(".png")][0]
    small = full[: -len(".png")] + "+compressed.webp"
    assert small in names
    assert asynctrack.artifacts.load_image(f"runs:/{run_id}/{full}").size == (600, 300)
    assert asynctrack.artifacts.load_image(f"runs:/{run_id}/{small}").size == (256, 128)
    assert client.get_run(run_id).data.tags["mlflow.loggedImages"] == "True"


def test_image_series_defaults_step_and_timestamp(env):
    client, run_id, _ = env
    client.log_image(run_id, np.zeros((2, 2), np.uint8), key="k", synchronous=True)
    names = [f.path for f in client.list_artifacts(run_id, "images")]
    assert all(re.match(r"images/k\+step\+0\+timestamp\+\d{13}\+", n) for n in names)


def test_load_image_of_a_non_image(env):
    client, run_id, _ = env
    client.log_text(run_id, "text", "t.png")
    with pytest.raises(MlflowException) as e:
        asynctrack.artifacts.load_image(f"runs:/{run_id}/t.png")
    assert e.value.error_code == "BAD_REQUEST"


# -- figures ------------------------------------------------------------------------------------------
@pytest.fixture
def mpl_figure():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1), dpi=50)
    ax.plot([0, 1], [1, 0])
    yield fig
    plt.close(fig)


def test_log_matplotlib_figure_png_svg_pdf(env, mpl_figure):
    client, run_id, _ = env
    client.log_figure(run_id, mpl_figure, "fig/f.png")
    client.log_figure(run_id, mpl_figure, "fig/f.svg")
    client.log_figure(run_id, mpl_figure, "fig/f.pdf", save_kwargs={"metadata": {"Title": "t"}})
    assert asynctrack.artifacts.load_image(f"runs:/{run_id}/fig/f.png").size == (100, 50)
    svg = asynctrack.artifacts.load_text(f"runs:/{run_id}/fig/f.svg")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    root = _root(client, run_id)
    assert open(os.path.join(root, "fig", "f.pdf"), "rb").read(5) == b"%PDF-"


def test_figure_errors(env, mpl_figure):
    client, run_id, _ = env
    with pytest.raises(MlflowException) as e:
        client.log_figure(run_id, object(), "f.png")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE" and isinstance(e.value, TypeError)
    for name in ("f.xyz", "f", "f.html"):
        with pytest.raises(MlflowException) as e:
            client.log_figure(run_id, mpl_figure, name)
        assert e.value.error_code == "INVALID_PARAMETER_VALUE" and isinstance(e.value, ValueError)
    assert files_under(os.getcwd() + "/mlruns") == []


@pytest.fixture
def plotly_figure():
    go = pytest.importorskip("plotly.graph_objects")
    return go.Figure(data=[go.Scatter(x=[1, 2], y=[3, 4])])


def test_log_plotly_figure_html(env, plotly_figure):
    client, run_id, _ = env
    client.log_figure(run_id, plotly_figure, "p.html")
    html = asynctrack.artifacts.load_text(f"runs:/{run_id}/p.html")
    assert "<html>" in html and "cdn.plot.ly" in html  # include_plotlyjs="cdn", as MLflow


def test_plotly_image_without_kaleido_names_the_extra(env, plotly_figure, monkeypatch):
    import sys

    from asynctrack._extras import MissingExtraError

    monkeypatch.setitem(sys.modules, "kaleido", None)  # as if it were not installed
    client, run_id, _ = env
    with pytest.raises(MissingExtraError) as e:
        client.log_figure(run_id, plotly_figure, "p.png")
    assert "pip install 'asynctrack[plotly-images]'" in e.value.message
    assert e.value.error_code == "INTERNAL_ERROR"
    assert not any(a.path == "p.png" for a in client.list_artifacts(run_id))


def test_log_plotly_figure_images(env, plotly_figure):
    pytest.importorskip("kaleido")
    try:  # kaleido >= 1 drives a Chrome: .ci/run installs Debian's chromium where it can
        plotly_figure.to_image(format="png")
    except Exception as exc:  # noqa: BLE001 - no browser for kaleido here
        pytest.skip(f"kaleido cannot render here: {type(exc).__name__}")
    client, run_id, _ = env
    client.log_figure(run_id, plotly_figure, "p.png")
    client.log_figure(run_id, plotly_figure, "p.svg")
    assert asynctrack.artifacts.load_image(f"runs:/{run_id}/p.png").size[0] > 0
    assert "<svg" in asynctrack.artifacts.load_text(f"runs:/{run_id}/p.svg")


def test_plotly_bad_extension(env, plotly_figure):
    client, run_id, _ = env
    with pytest.raises(MlflowException) as e:
        client.log_figure(run_id, plotly_figure, "p.txt")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE" and isinstance(e.value, ValueError)


# -- tables -------------------------------------------------------------------------------------------
pd = pytest.importorskip("pandas")


def test_log_table_dict_appends_and_tags(env):
    client, run_id, _ = env
    client.log_table(run_id, {"a": [1, 2], "b": ["x", "y"]}, "tables/t.json")
    client.log_table(run_id, pd.DataFrame({"a": [3], "b": ["z"]}), "tables/t.json")
    root = _root(client, run_id)
    stored = json.load(open(os.path.join(root, "tables", "t.json")))
    assert stored == {"columns": ["a", "b"], "data": [[1, "x"], [2, "y"], [3, "z"]]}
    tag = json.loads(client.get_run(run_id).data.tags["mlflow.loggedArtifacts"])
    assert tag == [{"path": "tables/t.json", "type": "table"}]
    client.log_table(run_id, {"q": "what?"}, "one.json")  # scalars: one row
    tag = json.loads(client.get_run(run_id).data.tags["mlflow.loggedArtifacts"])
    assert tag[-1] == {"path": "one.json", "type": "table"} and len(tag) == 2


def test_load_table_across_runs_with_extra_columns(env):
    client, run_id, _ = env
    other = client.create_run("0", start_time=1).info.run_id  # older: listed after
    client.log_table(run_id, {"a": [1], "run_id": ["mine"]}, "t.json")
    client.log_table(other, {"a": [2], "run_id": ["theirs"]}, "t.json")
    client.log_table(other, {"a": [9]}, "other.json")
    frame = client.load_table("0", "t.json", extra_columns=["run_id"])
    assert frame["a"].tolist() == [1, 2]
    assert frame["run_id_"].tolist() == [run_id, other]  # clash: MLflow appends "_"
    frame = client.load_table("0", "t.json", run_ids=[other])
    assert frame["a"].tolist() == [2]


def test_table_errors(env):
    client, run_id, _ = env
    for name, builtin in [("t.csv", ValueError), ("t:x.json", ValueError)]:
        with pytest.raises(MlflowException) as e:
            client.log_table(run_id, {"a": [1]}, name)
        assert e.value.error_code == "INVALID_PARAMETER_VALUE" and isinstance(e.value, builtin)
    with pytest.raises(MlflowException) as e:
        client.log_table(run_id, [1, 2], "t.json")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as e:
        client.load_table("0", "absent.json")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert files_under(os.getcwd() + "/mlruns") == []


def test_log_table_with_image_column(env):
    client, run_id, _ = env
    images = [Image.new("RGB", (4, 4), (i, 0, 0)) for i in range(2)]
    client.log_table(run_id, {"img": images, "label": ["a", "b"]}, "preds.json")
    stored = json.load(open(os.path.join(_root(client, run_id), "preds.json")))
    cell = stored["data"][0][0]
    assert cell["type"] == "image" and cell["filepath"].startswith("table_images/preds/")
    assert asynctrack.artifacts.load_image(f"runs:/{run_id}/{cell['filepath']}").size == (4, 4)
    with pytest.raises(MlflowException) as e:
        client.log_table(run_id, {"mix": [images[0], "text"]}, "mix.json")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


# -- optional dependencies ------------------------------------------------------------------------
def test_missing_extra_names_it(env, monkeypatch):
    client, run_id, _ = env
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml now raises ImportError
    with pytest.raises(MlflowException) as e:
        client.log_dict(run_id, {"a": 1}, "d.yaml")
    assert isinstance(e.value, ImportError)
    assert "pip install 'asynctrack[yaml]'" in e.value.message
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(ImportError, match=re.escape("asynctrack[images]")):
        client.log_image(run_id, Image.new("L", (1, 1)), "x.png")
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=re.escape("asynctrack[pandas]")):
        client.log_table(run_id, {"a": [1]}, "t.json")
    assert files_under(os.getcwd() + "/mlruns") == []


def test_no_warning_for_in_range_images(env):
    client, run_id, _ = env
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client.log_image(run_id, np.linspace(0, 1, 6).reshape(2, 3), "ok.png")


def test_async_image_failure_reaches_run_operations(env, monkeypatch):
    client, run_id, _ = env
    from asynctrack.store.artifact import LocalArtifactRepository

    def fail(self, artifact_file, write):
        raise MlflowException("disk full", "IO_ERROR")

    monkeypatch.setattr(LocalArtifactRepository, "write_artifact", fail)
    ops = client.log_image(run_id, np.zeros((2, 2), np.uint8), key="k", synchronous=False)
    with pytest.raises(MlflowException, match="disk full"):
        ops.wait()


def test_appending_keeps_stored_values(env):
    """Appending reads the stored table without type inference (MLflow: "02108" stays text)."""
    client, run_id, _ = env
    client.log_table(run_id, {"zip": ["02108"], "n": [1]}, "z.json")
    client.log_table(run_id, {"zip": ["10001"], "n": [2]}, "z.json")
    stored = json.load(open(os.path.join(_root(client, run_id), "z.json")))
    assert stored["data"] == [["02108", 1], ["10001", 2]]


def test_parquet_table_round_trip(env):
    pytest.importorskip("pyarrow")
    client, run_id, _ = env
    client.log_table(run_id, {"a": [1, 2]}, "t.parquet")
    client.log_table(run_id, {"a": [3]}, "t.parquet")
    assert client.load_table("0", "t.parquet")["a"].tolist() == [1, 2, 3]


def test_parquet_without_pyarrow_names_the_extra(env, monkeypatch):
    client, run_id, _ = env
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ImportError, match=re.escape("asynctrack[parquet]")):
        client.log_table(run_id, {"a": [1]}, "t.parquet")
