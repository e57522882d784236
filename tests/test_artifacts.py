"""Artifacts: the repository, MlflowClient's calls, asynctrack.artifacts, errors and layout.

Every call is checked by a round trip (log, then list/download/load and compare), every bad input
by its exact error code, and "nothing half-written" by listing the run's directory afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

import asynctrack
from asynctrack import MlflowException, RunOperations
from asynctrack.entities import FileInfo
from asynctrack.store.artifact import (
    ArtifactRepository,
    LocalArtifactRepository,
    register_repository,
    repository_for_uri,
)
from tests._artifact_fixtures import env, files_under  # noqa: F401 (fixture)


def _tree(tmp_path):
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("a")
    (d / "sub" / "b.txt").write_text("bb")
    return d


def _artifact_dir(client, run_id):
    return client.get_run(run_id).info.artifact_uri


# -- layout -----------------------------------------------------------------------------------------
def test_default_locations_are_mlflows(env):
    client, run_id, tmp = env
    assert client.get_experiment("0").artifact_location == f"{tmp}/mlruns/0"
    assert _artifact_dir(client, run_id) == f"{tmp}/mlruns/0/{run_id}/artifacts"
    exp = client.create_experiment("e", artifact_location="file:rel/dir")
    run = client.create_run(exp)
    assert run.info.artifact_uri == f"file://{tmp}/rel/dir/{run.info.run_id}/artifacts"


def test_file_uri_experiment_round_trip(env):
    client, _, tmp = env
    exp = client.create_experiment("f", artifact_location=f"file://{tmp}/elsewhere")
    run_id = client.create_run(exp).info.run_id
    client.log_text(run_id, "hi", "t.txt")
    assert (tmp / "elsewhere" / run_id / "artifacts" / "t.txt").read_text() == "hi"
    assert client.list_artifacts(run_id) == [FileInfo("t.txt", False, 2)]


# -- log_artifact / log_artifacts -------------------------------------------------------------------
def test_log_artifact_file_and_directory(env):
    client, run_id, tmp = env
    d = _tree(tmp)
    assert client.log_artifact(run_id, str(d / "a.txt")) is None
    client.log_artifact(run_id, d / "a.txt", "x/y")  # PathLike too
    client.log_artifact(run_id, str(d), "z")  # a directory keeps its name
    assert client.list_artifacts(run_id) == [
        FileInfo("a.txt", False, 1),
        FileInfo("x", True, None),
        FileInfo("z", True, None),
    ]
    assert client.list_artifacts(run_id, "z/d") == [
        FileInfo("z/d/a.txt", False, 1),
        FileInfo("z/d/sub", True, None),
    ]
    assert client.list_artifacts(run_id, "x/y") == [FileInfo("x/y/a.txt", False, 1)]


def test_log_artifact_keeps_mode_and_mtime(env):
    client, run_id, tmp = env
    src = tmp / "exe.sh"
    src.write_text("#!/bin/sh\n")
    os.chmod(src, 0o751)
    os.utime(src, (1_000_000, 1_000_000))
    client.log_artifact(run_id, str(src))
    dst = os.path.join(_artifact_dir(client, run_id), "exe.sh")
    assert os.stat(dst).st_mode & 0o777 == 0o751
    assert os.stat(dst).st_mtime == 1_000_000


def test_log_artifacts_recursive_and_overwrite(env):
    client, run_id, tmp = env
    d = _tree(tmp)
    client.log_artifacts(run_id, str(d))
    client.log_artifacts(run_id, str(d), "copy")
    (d / "a.txt").write_text("new")
    client.log_artifacts(run_id, str(d), "copy")
    root = _artifact_dir(client, run_id)
    assert files_under(root) == ["a.txt", "copy/a.txt", "copy/sub/b.txt", "sub/b.txt"]
    assert open(os.path.join(root, "copy/a.txt")).read() == "new"


def test_log_artifacts_empty_subdirectory_is_kept(env):
    client, run_id, tmp = env
    (tmp / "e" / "empty").mkdir(parents=True)
    client.log_artifacts(run_id, str(tmp / "e"))
    assert client.list_artifacts(run_id) == [FileInfo("empty", True, None)]


# -- synchronous=False ------------------------------------------------------------------------------
def test_log_artifact_async_round_trip(env):
    client, run_id, tmp = env
    d = _tree(tmp)
    ops = client.log_artifact(run_id, str(d / "a.txt"), "async", synchronous=False)
    assert isinstance(ops, RunOperations)
    ops.wait()
    ops = client.log_artifacts(run_id, str(d), "dir", synchronous=False)
    client.flush()  # flush waits for pending copies too
    ops.wait()
    assert files_under(_artifact_dir(client, run_id)) == [
        "async/a.txt",
        "dir/a.txt",
        "dir/sub/b.txt",
    ]


def test_async_copy_error_reaches_caller_through_run_operations(env, monkeypatch):
    client, run_id, tmp = env
    d = _tree(tmp)
    gate = threading.Event()
    real = LocalArtifactRepository.log_artifact

    def slow_then_fail(self, local_file, artifact_path=None):
        gate.wait()
        raise MlflowException("disk full", "IO_ERROR")

    monkeypatch.setattr(LocalArtifactRepository, "log_artifact", slow_then_fail)
    ops = client.log_artifact(run_id, str(d / "a.txt"), synchronous=False)
    gate.set()
    with pytest.raises(MlflowException, match="disk full"):
        ops.wait()
    monkeypatch.setattr(LocalArtifactRepository, "log_artifact", real)


def test_wait_artifact_copies_waits_for_one_run(env, monkeypatch):
    client, run_id, tmp = env
    other = client.create_run("0").info.run_id
    d = _tree(tmp)
    gate = threading.Event()
    real = LocalArtifactRepository.log_artifact

    def gated(self, local_file, artifact_path=None):
        gate.wait()
        real(self, local_file, artifact_path)

    monkeypatch.setattr(LocalArtifactRepository, "log_artifact", gated)
    client.log_artifact(run_id, str(d / "a.txt"), synchronous=False)
    client._wait_artifact_copies(other)  # nothing pending for the other run: returns at once
    threading.Timer(0.05, gate.set).start()
    client._wait_artifact_copies(run_id)
    assert client.list_artifacts(run_id) == [FileInfo("a.txt", False, 1)]


def test_async_bad_input_is_refused_in_callers_thread(env):
    client, run_id, tmp = env
    with pytest.raises(MlflowException) as e:
        client.log_artifact(run_id, str(tmp / "missing"), synchronous=False)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        client.log_artifacts(run_id, str(_tree(tmp)), "../x", synchronous=False)
    assert e.value.error_code == "INTERNAL_ERROR"


# -- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["log_artifact", "log_artifacts"])
def test_missing_local_path(env, method):
    client, run_id, tmp = env
    with pytest.raises(MlflowException) as e:
        getattr(client, method)(run_id, str(tmp / "nope"))
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert isinstance(e.value, FileNotFoundError)  # what MLflow raises, still caught the same way
    assert "nope" in e.value.message


def test_log_artifacts_of_a_file_is_refused(env):
    client, run_id, tmp = env
    d = _tree(tmp)
    with pytest.raises(MlflowException) as e:
        client.log_artifacts(run_id, str(d / "a.txt"))
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert isinstance(e.value, NotADirectoryError)


@pytest.mark.parametrize("artifact_path", ["../x", "a/../../x", "/etc", "a/./b", "..", "."])
def test_artifact_path_escaping_the_run_is_refused(env, artifact_path):
    client, run_id, tmp = env
    d = _tree(tmp)
    for call in (
        lambda: client.log_artifact(run_id, str(d / "a.txt"), artifact_path),
        lambda: client.log_artifacts(run_id, str(d), artifact_path),
    ):
        with pytest.raises(MlflowException) as e:
            call()
        assert e.value.error_code == "INTERNAL_ERROR"  # MLflow's code for this message
        assert e.value.message.startswith(f"Invalid artifact path: '{artifact_path}'")
    assert not os.path.exists(os.path.join(tmp, "mlruns", "0", run_id, "artifacts"))
    assert not os.path.exists(os.path.join(tmp, "x"))


@pytest.mark.parametrize("artifact_file", ["../t.txt", "../../t.txt", "a/../../t.txt"])
def test_artifact_file_escaping_the_run_is_refused(env, artifact_file):
    client, run_id, tmp = env
    with pytest.raises(MlflowException) as e:
        client.log_text(run_id, "x", artifact_file)
    assert e.value.error_code == "INTERNAL_ERROR"
    assert files_under(tmp / "mlruns") == []


def test_symlink_out_of_the_run_is_refused(env):
    client, run_id, tmp = env
    root = _artifact_dir(client, run_id)
    os.makedirs(root)
    outside = tmp / "outside"
    outside.mkdir()
    os.symlink(outside, os.path.join(root, "link"))
    with pytest.raises(MlflowException) as e:
        client.log_text(run_id, "x", "link/t.txt")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("artifact_file", ["", "dir/", "."])
def test_directory_where_a_file_is_expected(env, artifact_file):
    client, run_id, tmp = env
    with pytest.raises(MlflowException) as e:
        client.log_text(run_id, "x", artifact_file)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert isinstance(e.value, IsADirectoryError)


def test_file_over_an_existing_directory_is_refused(env):
    client, run_id, tmp = env
    client.log_text(run_id, "x", "name/inner.txt")
    with pytest.raises(MlflowException) as e:
        client.log_text(run_id, "x", "name")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_reserved_temp_name_is_refused(env):
    client, run_id, _ = env
    with pytest.raises(MlflowException) as e:
        client.log_text(run_id, "x", ".artifact.uploading.x")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_unknown_run(env):
    client, _, _ = env
    with pytest.raises(MlflowException) as e:
        client.log_text("0" * 32, "x", "t.txt")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_failed_write_leaves_nothing(env):
    client, run_id, _ = env
    client.log_text(run_id, "old", "t.txt")

    class Boom:
        def __str__(self):
            raise RuntimeError("cannot serialize")

    with pytest.raises(RuntimeError):
        client.log_dict(run_id, {"a": Boom()}, "t.txt")
    root = _artifact_dir(client, run_id)
    assert files_under(root) == ["t.txt"]  # no temp file left, old content intact
    assert open(os.path.join(root, "t.txt")).read() == "old"


def test_interrupted_copy_leaves_nothing(env, monkeypatch):
    client, run_id, tmp = env
    d = _tree(tmp)
    from asynctrack.store.artifact import local

    def broken_copy(src, fd, dst):
        os.write(fd, b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(local, "copy_into", broken_copy)
    with pytest.raises(OSError):
        client.log_artifact(run_id, str(d / "a.txt"))
    assert files_under(_artifact_dir(client, run_id)) == []


# -- text and dicts ---------------------------------------------------------------------------------
def test_log_text_round_trip(env):
    client, run_id, _ = env
    text = "héllo\nwörld ✓"
    client.log_text(run_id, text, "notes/t.txt")
    assert asynctrack.artifacts.load_text(f"runs:/{run_id}/notes/t.txt") == text
    path = os.path.join(_artifact_dir(client, run_id), "notes", "t.txt")
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("artifact_file", ["d.json", "d.yaml", "d.yml", "d.txt", "sub/d"])
def test_log_dict_round_trip(env, artifact_file):
    client, run_id, _ = env
    data = {"a": 1, "b": [1, 2, {"c": "x"}], "d": None, "e": 1.5}
    client.log_dict(run_id, data, artifact_file)
    assert asynctrack.artifacts.load_dict(f"runs:/{run_id}/{artifact_file}") == data


def test_log_dict_formats_are_mlflows(env):
    client, run_id, _ = env
    client.log_dict(run_id, {"b": 1, "a": [1]}, "d.json")
    client.log_dict(run_id, {"b": 1, "a": [1]}, "d.yaml")
    client.log_dict(run_id, {"when": object}, "o.json")  # str() of what JSON cannot hold
    root = _artifact_dir(client, run_id)
    assert open(os.path.join(root, "d.json")).read() == '{\n  "b": 1,\n  "a": [\n    1\n  ]\n}'
    assert open(os.path.join(root, "d.yaml")).read() == "a:\n- 1\nb: 1\n"
    assert json.load(open(os.path.join(root, "o.json"))) == {"when": "<class 'object'>"}


def test_load_dict_and_text_errors(env):
    client, run_id, _ = env
    client.log_text(run_id, "not json", "t.json")
    client.log_text(run_id, "a: [", "t.yaml")
    (tmp_bin := os.path.join(os.getcwd(), "bin.txt"))
    with open(tmp_bin, "wb") as f:
        f.write(b"\xff\xfe\x00")
    client.log_artifact(run_id, tmp_bin)
    for uri, code in [
        (f"runs:/{run_id}/t.json", "BAD_REQUEST"),
        (f"runs:/{run_id}/t.yaml", "BAD_REQUEST"),
        (f"runs:/{run_id}/missing.json", "RESOURCE_DOES_NOT_EXIST"),
    ]:
        with pytest.raises(MlflowException) as e:
            asynctrack.artifacts.load_dict(uri)
        assert e.value.error_code == code, uri
    with pytest.raises(MlflowException) as e:
        asynctrack.artifacts.load_text(f"runs:/{run_id}/bin.txt")
    assert e.value.error_code == "BAD_REQUEST"
    assert "not valid UTF-8" in e.value.message


def test_loads_read_local_artifacts_in_place(env, monkeypatch):
    """load_text/load_dict/load_image/load_table read a local artifact where it is: no
    temporary copy (each cost ~3 ms here, mostly removing its directory)."""
    import tempfile

    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    pytest.importorskip("PIL")
    client, run_id, _ = env
    client.log_dict(run_id, {"a": 1}, "d/x.json")
    client.log_text(run_id, "t", "t.txt")
    client.log_image(run_id, np.zeros((2, 3, 3), dtype=np.uint8), "i.png")
    client.log_table(run_id, pd.DataFrame({"x": [1, 2]}), "t.json")

    def no_temp(*args, **kwargs):
        raise AssertionError("a temporary directory was made")

    monkeypatch.setattr(tempfile, "mkdtemp", no_temp)
    arts = asynctrack.artifacts
    assert arts.load_dict(f"runs:/{run_id}/d/x.json") == {"a": 1}
    assert arts.load_text(f"{_artifact_dir(client, run_id)}/t.txt") == "t"
    assert arts.load_image(f"runs:/{run_id}/i.png").size == (3, 2)
    assert client.load_table("0", "t.json")["x"].tolist() == [1, 2]


def test_loads_download_what_is_not_local(tmp_path, monkeypatch):
    """A repository without local files: the load_* calls download into a temporary
    directory, removed afterwards, as before."""
    import tempfile

    from asynctrack import _client_artifacts
    from asynctrack.exceptions import RESOURCE_DOES_NOT_EXIST
    from asynctrack.store import artifact

    files = {"d.json": b'{"k": [1]}', "t.txt": "é".encode()}

    class Remote(ArtifactRepository):
        def log_artifact(self, local_file, artifact_path=None):
            raise NotImplementedError

        def log_artifacts(self, local_dir, artifact_path=None):
            raise NotImplementedError

        def list_artifacts(self, path=None):
            return [FileInfo(k, False, len(v)) for k, v in sorted(files.items()) if not path]

        def _download_file(self, remote_file_path, local_path):
            if remote_file_path not in files:
                raise MlflowException(f"no {remote_file_path}", RESOURCE_DOES_NOT_EXIST)
            with open(local_path, "wb") as f:
                f.write(files[remote_file_path])

    monkeypatch.setitem(artifact._factories, "remote", Remote)
    made = []
    real = tempfile.mkdtemp
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    assert asynctrack.artifacts.load_dict("remote://host/d.json") == {"k": [1]}
    assert asynctrack.artifacts.load_text("remote://host/t.txt") == "é"
    with pytest.raises(MlflowException) as e:
        asynctrack.artifacts.load_dict("remote://host/missing.json")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    read = _client_artifacts.read_from(Remote("remote://host"), "d.json", lambda p: open(p).read())
    assert read == '{"k": [1]}'
    assert len(made) == 4 and not any(os.path.exists(d) for d in made)


# -- listing and downloading ------------------------------------------------------------------------
def test_list_artifacts(env):
    client, run_id, tmp = env
    assert client.list_artifacts(run_id) == []  # nothing logged yet: no directory, no error
    client.log_artifacts(run_id, str(_tree(tmp)))
    assert client.list_artifacts(run_id) == [
        FileInfo("a.txt", False, 1),
        FileInfo("sub", True, None),
    ]
    assert client.list_artifacts(run_id, "sub") == [FileInfo("sub/b.txt", False, 2)]
    assert client.list_artifacts(run_id, "sub/b.txt") == []  # a file: [] as MLflow
    assert client.list_artifacts(run_id, "missing") == []
    with pytest.raises(MlflowException) as e:
        client.list_artifacts(run_id, "../")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_download_artifacts_like_mlflow(env):
    client, run_id, tmp = env
    client.log_artifacts(run_id, str(_tree(tmp)), "top")
    # a file lands under its own name in a new temporary directory
    path = client.download_artifacts(run_id, "top/sub/b.txt")
    assert os.path.basename(path) == "b.txt" and open(path).read() == "bb"
    assert not path.startswith(_artifact_dir(client, run_id))
    # a directory: dst/<last component>, the directory created when missing
    path = client.download_artifacts(run_id, "top", str(tmp / "new" / "dst"))
    assert path == str(tmp / "new" / "dst" / "top")
    assert files_under(path) == ["a.txt", "sub/b.txt"]
    path = client.download_artifacts(run_id, "top/sub", str(tmp / "dst2"))
    assert path == str(tmp / "dst2" / "sub")
    # the root, without dst: the artifact directory itself (MLflow: nothing copied)
    assert client.download_artifacts(run_id, "") == _artifact_dir(client, run_id)
    path = client.download_artifacts(run_id, "", str(tmp / "all"))
    assert files_under(path) == ["top/a.txt", "top/sub/b.txt"]


def test_download_errors(env):
    client, run_id, tmp = env
    client.log_text(run_id, "x", "t.txt")
    with pytest.raises(MlflowException) as e:
        client.download_artifacts(run_id, "missing")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert e.value.message == (
        "Failed to download artifacts from path 'missing', please ensure that the path is correct."
    )
    with pytest.raises(MlflowException) as e:
        client.download_artifacts(run_id, "../x")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    (tmp / "afile").write_text("")
    with pytest.raises(MlflowException) as e:
        client.download_artifacts(run_id, "t.txt", str(tmp / "afile"))
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert isinstance(e.value, NotADirectoryError)


def test_artifacts_module_download_and_list(env):
    client, run_id, tmp = env
    client.log_artifacts(run_id, str(_tree(tmp)), "top")
    arts = asynctrack.artifacts
    assert arts.list_artifacts(run_id=run_id) == [FileInfo("top", True, None)]
    assert arts.list_artifacts(run_id=run_id, artifact_path="top/sub") == [
        FileInfo("top/sub/b.txt", False, 2)
    ]
    # through a URI, paths are relative to the URI's parent (MLflow's split)
    assert arts.list_artifacts(f"runs:/{run_id}/top/sub") == [FileInfo("sub/b.txt", False, 2)]
    root = _artifact_dir(client, run_id)
    assert arts.list_artifacts(f"file://{root}/top/sub") == [FileInfo("sub/b.txt", False, 2)]
    path = arts.download_artifacts(run_id=run_id, artifact_path="top", dst_path=str(tmp / "o"))
    assert files_under(path) == ["a.txt", "sub/b.txt"]
    path = arts.download_artifacts(f"runs:/{run_id}/top/a.txt", dst_path=str(tmp / "o2"))
    assert path == str(tmp / "o2" / "a.txt")
    # a local URI without dst: the file itself, as MLflow
    assert arts.download_artifacts(f"{root}/top/a.txt") == f"{root}/top/a.txt"
    assert arts.download_artifacts(run_id=run_id) == root


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"artifact_uri": "runs:/x/y", "run_id": "x"}, {"artifact_uri": "/a", "artifact_path": "b"}],
)
def test_artifacts_module_argument_errors(env, kwargs):
    for fn in (asynctrack.artifacts.download_artifacts, asynctrack.artifacts.list_artifacts):
        with pytest.raises(MlflowException) as e:
            fn(**kwargs)
        assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_bad_runs_uri(env):
    with pytest.raises(MlflowException) as e:
        asynctrack.artifacts.load_text("runs:/")
    assert e.value.error_code == "INTERNAL_ERROR"
    assert "Not a proper runs:/ URI" in e.value.message


# -- the repository interface -----------------------------------------------------------------------
def test_repository_for_uri_and_registry(tmp_path):
    assert isinstance(repository_for_uri(str(tmp_path)), LocalArtifactRepository)
    assert isinstance(repository_for_uri(f"file://{tmp_path}"), LocalArtifactRepository)
    with pytest.raises(MlflowException) as e:
        repository_for_uri("s3://bucket/path")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"

    class MemoryRepo(ArtifactRepository):
        """A non-local backend: only the four abstract methods."""

        files: dict[str, bytes] = {}

        def log_artifact(self, local_file, artifact_path=None):
            name = os.path.basename(local_file)
            key = f"{artifact_path}/{name}" if artifact_path else name
            self.files[key] = open(local_file, "rb").read()

        def log_artifacts(self, local_dir, artifact_path=None):
            raise NotImplementedError

        def list_artifacts(self, path=None):
            prefix = f"{path}/" if path else ""
            return [FileInfo(k, False, len(v)) for k, v in sorted(self.files.items())
                    if k.startswith(prefix)]

        def _download_file(self, remote_file_path, local_path):
            with open(local_path, "wb") as f:
                f.write(self.files[remote_file_path])

    register_repository("mem", MemoryRepo)
    repo = repository_for_uri("mem://root")
    repo.write_artifact("a/b.txt", lambda p: open(p, "w").write("generic"))
    assert repo.list_artifacts("a") == [FileInfo("a/b.txt", False, 7)]
    out = repo.download_artifacts("a", str(tmp_path))
    assert open(os.path.join(out, "b.txt")).read() == "generic"


def test_import_stays_light():
    code = (
        "import sys, asynctrack, asynctrack.artifacts;"
        "heavy = [m for m in ('numpy', 'PIL', 'matplotlib', 'pandas', 'yaml', 'plotly')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_async_source_removed_before_the_copy(env, monkeypatch):
    client, run_id, tmp = env
    src = tmp / "gone.txt"
    src.write_text("x")
    gate = threading.Event()
    real = LocalArtifactRepository.log_artifact

    def gated(self, local_file, artifact_path=None):
        gate.wait()
        real(self, local_file, artifact_path)

    monkeypatch.setattr(LocalArtifactRepository, "log_artifact", gated)
    ops = client.log_artifact(run_id, str(src), synchronous=False)
    os.remove(src)
    gate.set()
    with pytest.raises(MlflowException) as e:
        ops.wait()
    assert "gone.txt" in e.value.message
    assert client.list_artifacts(run_id) == []


def test_flush_waits_for_every_runs_copies(env, monkeypatch):
    client, run_id, tmp = env
    other = client.create_run("0").info.run_id
    d = _tree(tmp)
    gate = threading.Event()
    real = LocalArtifactRepository.log_artifacts

    def gated(self, local_dir, artifact_path=None):
        gate.wait()
        real(self, local_dir, artifact_path)

    monkeypatch.setattr(LocalArtifactRepository, "log_artifacts", gated)
    client.log_artifacts(run_id, str(d), synchronous=False)
    client.log_artifacts(other, str(d), synchronous=False)
    threading.Timer(0.05, gate.set).start()
    client.flush()
    for rid in (run_id, other):
        assert files_under(_artifact_dir(client, rid)) == ["a.txt", "sub/b.txt"]


def test_trace_id_is_not_a_run(env):
    client, _, tmp = env
    with pytest.raises(MlflowException, match="must map to a valid run"):
        client.log_artifact("tr-123", str(_tree(tmp) / "a.txt"))
