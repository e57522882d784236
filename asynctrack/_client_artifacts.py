"""The artifact calls of MlflowClient, with MLflow 3.18's signatures and file layout.

Kept out of client.py so the client stays a list of signatures. Everything that can be refused
(paths, file names, image shapes, extensions) is checked in the caller's thread before a file is
touched; writes go through the run's artifact repository, which stages and renames.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from . import _artifact_copies
from ._media import dicts, figures, images, tables
from ._search import SEARCH_MAX_RESULTS_THRESHOLD
from .entities import FileInfo
from .exceptions import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, MlflowException
from .run_operations import RunOperations, get_combined_run_operations
from .store.artifact import ArtifactRepository, append_to_uri_path, repository_for_uri
from .store.artifact._errors import (
    ArtifactNotADirectory,
    download_failed,
    local_file_not_found,
    require_local_dir,
)
from .store.artifact._paths import is_local_uri, validate_path_is_safe, verify_artifact_path

if TYPE_CHECKING:
    from .client import MlflowClient

# A run's artifact_uri never changes: cache it (bounded, as MLflow's repository cache).
_uri_cache: OrderedDict[tuple[str, str], str] = OrderedDict()
_uri_lock = threading.Lock()
_MAX_CACHED = 1024


class InvalidImageArguments(MlflowException, TypeError):
    """log_image's artifact_file/key arguments misused (MLflow raises TypeError)."""


def _async_default() -> bool:
    return os.environ.get("MLFLOW_ENABLE_ASYNC_LOGGING", "false").strip().lower() in ("true", "1")


def artifact_uri(client: MlflowClient, run_id: str) -> str:
    """The run's artifact root; read without flushing the writer when the run is already stored."""
    cache_key = (client.tracking_uri, run_id)
    uri = _uri_cache.get(cache_key)
    if uri is not None:
        return uri
    try:
        uri = client._store.get_run(run_id).info.artifact_uri
    except MlflowException as e:
        if e.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        uri = client.get_run(run_id).info.artifact_uri  # flushes: a run still in the queue
    with _uri_lock:
        _uri_cache[cache_key] = uri
        if len(_uri_cache) > _MAX_CACHED:
            _uri_cache.popitem(last=False)
    return uri


def repo(client: MlflowClient, run_id: str) -> ArtifactRepository:
    return repository_for_uri(artifact_uri(client, run_id), client.tracking_uri)


def _run_async(run_id: str, fn) -> RunOperations:
    return RunOperations([_artifact_copies.submit(run_id, fn)])


# -- files and directories --------------------------------------------------------------------------
def log_artifact(client, run_id, local_path, artifact_path, synchronous) -> RunOperations | None:
    if run_id.startswith("tr-"):  # MLflow's trace id prefix
        raise MlflowException(
            f"Invalid run id: {run_id}. `log_artifact` run id must map to a valid run."
        )
    local_path = os.fspath(local_path)
    if not os.path.exists(local_path):
        raise local_file_not_found(local_path)
    verify_artifact_path(artifact_path)
    repository = repo(client, run_id)
    if os.path.isdir(local_path):
        # MLflow logs a directory under its own name.
        name = os.path.basename(os.path.normpath(local_path))
        target = posixpath.join(artifact_path, name) if artifact_path is not None else name
        verify_artifact_path(target)

        def copy() -> None:
            repository.log_artifacts(local_path, target)
    else:

        def copy() -> None:
            repository.log_artifact(local_path, artifact_path)

    if synchronous is None or synchronous:
        copy()
        return None
    return _run_async(run_id, copy)


def log_artifacts(client, run_id, local_dir, artifact_path, synchronous) -> RunOperations | None:
    local_dir = os.fspath(local_dir)
    require_local_dir(local_dir)
    verify_artifact_path(artifact_path)
    repository = repo(client, run_id)
    if synchronous is None or synchronous:
        repository.log_artifacts(local_dir, artifact_path)
        return None
    return _run_async(run_id, lambda: repository.log_artifacts(local_dir, artifact_path))


# -- generated content ------------------------------------------------------------------------------
def log_text(client, run_id: str, text: str, artifact_file: str) -> None:
    def write(path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    repo(client, run_id).write_artifact(artifact_file, write)


def log_dict(client, run_id: str, dictionary: Any, artifact_file: str) -> None:
    repo(client, run_id).write_artifact(
        artifact_file, lambda path: dicts.dump(dictionary, artifact_file, path)
    )


def log_figure(client, run_id, figure, artifact_file, save_kwargs) -> None:
    figures.check(figure, artifact_file)
    repo(client, run_id).write_artifact(
        artifact_file, lambda path: figures.save(figure, artifact_file, path, save_kwargs)
    )


def log_image(
    client, run_id, image, artifact_file, key, step, timestamp, synchronous
) -> RunOperations | None:
    if synchronous is None:
        synchronous = not _async_default()
    if artifact_file is not None and any(a is not None for a in (key, step, timestamp)):
        raise InvalidImageArguments(
            "The `artifact_file` parameter cannot be used in conjunction with `key`, `step`, or "
            "`timestamp` parameters. Please ensure that `artifact_file` is specified alone, "
            "without any of these conflicting parameters.",
            INVALID_PARAMETER_VALUE,
        )
    if artifact_file is None and key is None:
        raise InvalidImageArguments(
            "Invalid arguments: Please specify exactly one of `artifact_file` or `key`. Use "
            "`key` to log dynamic image charts or `artifact_file` for saving static images. ",
            INVALID_PARAMETER_VALUE,
        )
    pil = images.to_pil(image)
    repository = repo(client, run_id)
    if artifact_file is not None:
        images.check_save_extension(artifact_file)
        repository.write_artifact(artifact_file, pil.save)
        return None
    images.check_key(key)
    step = step or 0
    timestamp = timestamp if timestamp is not None else int(time.time() * 1000)
    full_path, compressed_path = images.series_paths(key, step, timestamp)

    def save_both() -> None:
        repository.write_artifact(full_path, pil.save)
        repository.write_artifact(compressed_path, images.compress(pil).save)

    if synchronous:
        save_both()
        client.set_tag(run_id, images.LOGGED_IMAGES_TAG, True, synchronous=True)
        return None
    copies = _run_async(run_id, save_both)
    tag = client.set_tag(run_id, images.LOGGED_IMAGES_TAG, True, synchronous=False)
    return get_combined_run_operations([copies, tag])


# -- tables -----------------------------------------------------------------------------------------
def log_table(client, run_id: str, data: Any, artifact_file: str) -> None:
    tables.check_artifact_file(artifact_file, logging=True)
    frame = tables.to_frame(data)
    tables.check_engine(artifact_file)
    repository = repo(client, run_id)
    for column in tables.image_columns(frame):
        frame[column] = frame[column].map(
            lambda img: _log_table_image(repository, artifact_file, img)
        )
    directory = posixpath.dirname(posixpath.normpath(artifact_file))
    existing = [f.path for f in repository.list_artifacts(directory or None)]
    if artifact_file in existing:
        import tempfile  # lazily: import asynctrack stays fast
        with tempfile.TemporaryDirectory() as tmp:
            local = repository.download_artifacts(artifact_file, tmp)
            previous = tables.read(local, infer_dtypes=False)
        frame = tables.pandas().concat([previous, frame], ignore_index=True)
    repository.write_artifact(artifact_file, lambda path: tables.write(frame, path, artifact_file))
    run = client.get_run(run_id)
    new_tag = tables.tag_with(run.data.tags.get(tables.LOGGED_ARTIFACTS_TAG), artifact_file)
    if new_tag is not None:
        client.set_tag(run_id, tables.LOGGED_ARTIFACTS_TAG, new_tag)


def _log_table_image(repository: ArtifactRepository, artifact_file: str, image: Any) -> dict:
    import uuid

    base = posixpath.join("table_images", tables.split_ext(artifact_file), str(uuid.uuid4()))
    full, compressed = base + ".png", base + ".webp"
    repository.write_artifact(full, image.save)
    repository.write_artifact(compressed, images.compress(image).save)
    return {"type": "image", "filepath": full, "compressed_filepath": compressed}


def load_table(client, experiment_id, artifact_file, run_ids, extra_columns) -> Any:
    tables.check_artifact_file(artifact_file, logging=False)
    pd = tables.pandas()
    tables.check_engine(artifact_file)
    wanted = set(run_ids) if run_ids else None
    runs = [
        run
        for run in _runs_with_logged_artifacts(client, experiment_id)
        if (wanted is None or run.info.run_id in wanted)
        and tables.lists_table(run.data.tags.get(tables.LOGGED_ARTIFACTS_TAG), artifact_file)
    ]
    if not runs:
        raise MlflowException(
            "No runs found with the corresponding table artifact.", RESOURCE_DOES_NOT_EXIST
        )
    frames = []
    for run in runs:
        run_id = run.info.run_id
        repository = repo(client, run_id)
        directory = posixpath.dirname(posixpath.normpath(artifact_file)) or None
        files = [f.path for f in repository.list_artifacts(directory) if not f.is_dir]
        if artifact_file not in files:
            raise MlflowException(
                f"Artifact {artifact_file} not found for run {run_id}.", RESOURCE_DOES_NOT_EXIST
            )
        frame = read_from(repository, artifact_file, tables.read)
        if extra_columns is not None:
            columns = tables.run_columns(run)
            for column in extra_columns:
                target = f"{column}_" if column in frame else column
                frame[target] = columns.get(column)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _runs_with_logged_artifacts(client, experiment_id: str):
    """The experiment's active runs that carry the loggedArtifacts tag, in search_runs' default
    order (newest first), every page of them."""
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            f"tags.`{tables.LOGGED_ARTIFACTS_TAG}` LIKE '%'",
            max_results=SEARCH_MAX_RESULTS_THRESHOLD,
            page_token=token,
        )
        yield from page
        token = page.token
        if not token:
            return


# -- reading ----------------------------------------------------------------------------------------
def list_artifacts(client, run_id: str, path: str | None) -> list[FileInfo]:
    return repo(client, run_id).list_artifacts(path)


def prepare_dst(dst_path: str | None) -> str | None:
    """MLflow creates the destination directory (and its parents) when it is missing."""
    if dst_path is None:
        return None
    dst_path = os.fspath(dst_path)
    if os.path.exists(dst_path) and not os.path.isdir(dst_path):
        raise ArtifactNotADirectory(
            "The destination path for downloaded artifacts must be a directory! Destination "
            f"path: {os.path.abspath(dst_path)}",
            INVALID_PARAMETER_VALUE,
        )
    os.makedirs(dst_path, exist_ok=True)
    return dst_path


def download_from_root(
    root_uri: str, path: str | None, dst_path: str | None, copy: bool, tracking_uri: str | None = None
) -> str:
    """Download ``path`` of the repository at ``root_uri`` as MLflow does for a ``runs:/`` URI:
    into ``dst_path/<basename(path)>`` (a new temporary directory when None and ``copy``)."""
    if not path:
        return repository_for_uri(root_uri, tracking_uri).download_artifacts("", dst_path)
    path = validate_path_is_safe(path.rstrip("/")) if path.rstrip("/") else path
    parent, name = posixpath.split(path.rstrip("/"))
    root = append_to_uri_path(root_uri, parent) if parent else root_uri
    repository = repository_for_uri(root, tracking_uri)
    if dst_path is None and copy:
        import tempfile  # lazily: import asynctrack stays fast
        dst_path = tempfile.mkdtemp()
    try:
        return repository.download_artifacts(name, dst_path)
    except MlflowException as e:
        if e.error_code == "INVALID_PARAMETER_VALUE":
            raise
        raise download_failed(name) from e


@contextlib.contextmanager
def readable(root_uri: str, path: str) -> Iterator[str]:
    """A local path to read the artifact ``path`` under ``root_uri`` from (the load_* calls):
    the artifact's own file where its repository is local, else a download into a temporary
    directory removed afterwards. MLflow copies in both cases; the copy cost ~3 ms a file here
    (most of it removing the directory), more than reading a small JSON file. Paths are checked
    and errors raised as for the download (download_from_root's)."""
    if is_local_uri(root_uri):
        yield download_from_root(root_uri, path, None, copy=False)
        return
    import tempfile  # lazily: import asynctrack stays fast
    with tempfile.TemporaryDirectory() as tmp:
        yield download_from_root(root_uri, path, tmp, copy=True)


def read_from(repository: ArtifactRepository, path: str, read: Callable[[str], Any]) -> Any:
    """``read`` applied to a local path holding the repository's file ``path``: the file itself
    where the repository has one (``get_local_path``), else a temporary download of it."""
    local = repository.get_local_path(path)
    if local is not None:
        return read(local)
    import tempfile  # lazily: import asynctrack stays fast
    with tempfile.TemporaryDirectory() as tmp:
        return read(repository.download_artifacts(path, tmp))


def download_artifacts(client, run_id: str, path: str, dst_path: str | None) -> str:
    dst_path = prepare_dst(dst_path)
    return download_from_root(
        artifact_uri(client, run_id), path, dst_path, copy=True, tracking_uri=client.tracking_uri
    )
