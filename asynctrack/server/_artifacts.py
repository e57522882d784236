"""The ``mlflow-artifacts`` endpoints over a local directory (``--artifacts-destination``), and
``artifacts/list`` for runs. No user path leaves the root: MLflow's ``validate_path_is_safe``
(decoded until stable, no ``..``, no absolute or Windows paths, no ``#``), then the resolved path
(symlinks followed) must still lie inside the root. Uploads stream to a temporary file beside
the target, bounded, and replace it only when complete."""

from __future__ import annotations

import mimetypes
import os
import pathlib
import posixpath
import shutil
import tempfile
import urllib.parse
from typing import Any

from ..exceptions import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, MlflowException
from ..store.artifact.local import verify_artifact_file_name
from . import _json
from ._context import Request
from ._handlers_experiments import request_message
from ._requests import assert_required, assert_string

_CHUNK = 1024 * 1024


def _invalid_path() -> MlflowException:
    return MlflowException("Invalid path", INVALID_PARAMETER_VALUE)


def _decode(url: str) -> str:
    for _ in range(10):
        decoded = urllib.parse.unquote(url)
        parsed = urllib.parse.urlunparse(urllib.parse.urlparse(decoded))
        if parsed == url:
            return url
        url = parsed
    raise _invalid_path()


def validate_path_is_safe(path: str) -> str:
    """MLflow's check, without its ``file:`` URI case (a ``file:`` path is refused here)."""
    path = _decode(path)
    path = "".join(f"%{ord(c):02x}" if ord(c) <= 31 or ord(c) == 127 else c for c in path)
    if (
        "#" in path
        or "\\" in path
        or "\x00" in path
        or path.startswith("file:")
        or ".." in path.split("/")
        or pathlib.PureWindowsPath(path).is_absolute()
        or pathlib.PurePosixPath(path).is_absolute()
        or (len(path) >= 2 and path[1] == ":")
    ):
        raise _invalid_path()
    return path


def resolve_under(root: str, relative: str | None) -> str:
    """``root/relative`` with symlinks resolved; refused when it lands outside ``root``."""
    real_root = os.path.realpath(root)
    target = os.path.realpath(os.path.join(real_root, relative or ""))
    if target != real_root and not target.startswith(real_root + os.sep):
        raise _invalid_path()
    return target


def _list_dir(directory: str, prefix: str | None) -> list[dict[str, Any]]:
    if not os.path.isdir(directory):
        return []
    out = []
    for name in sorted(os.listdir(directory)):
        full = os.path.join(directory, name)
        rel = posixpath.join(prefix, name) if prefix else name
        if os.path.isdir(full):
            out.append(_json.file_info(rel, True, None))
        else:
            out.append(_json.file_info(rel, False, os.path.getsize(full)))
    return out


class Artifacts:
    """Artifact handlers over ``root`` (the resolved ``--artifacts-destination``)."""

    def __init__(self, root: str, max_upload_bytes: int) -> None:
        self.root = os.path.abspath(root)
        self.max_upload_bytes = max_upload_bytes

    def _path(self, artifact_path: str) -> str:
        return resolve_under(self.root, validate_path_is_safe(artifact_path))

    def download(self, artifact_path: str) -> tuple[str, str, str]:
        """(local file, filename, media type) to send as an attachment."""
        path = self._path(artifact_path)
        if not os.path.isfile(path):
            raise MlflowException(f"No such artifact: '{artifact_path}'", RESOURCE_DOES_NOT_EXIST)
        media = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if media.startswith("text/") or media in ("application/json", "application/x-yaml"):
            media = "text/plain"
        return path, posixpath.basename(artifact_path), media

    def start_upload(self, artifact_path: str) -> tuple[str, Any, str]:
        """(final path, open temporary file, temporary path) for a streamed upload."""
        verify_artifact_file_name(posixpath.basename(artifact_path))
        path = self._path(artifact_path)
        if path == os.path.realpath(self.root) or os.path.isdir(path):
            raise _invalid_path()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        resolve_under(self.root, os.path.relpath(os.path.dirname(path), self.root))
        fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=os.path.dirname(path))
        return path, os.fdopen(fd, "wb"), tmp

    def list(self, req: Request) -> dict:
        msg = request_message(req, "ListArtifactsMlflowArtifacts")
        rel = validate_path_is_safe(msg.path) if msg.has("path") else None
        directory = resolve_under(self.root, rel)
        files = [_json.file_info(posixpath.basename(f["path"]), f["is_dir"], f.get("file_size")) for f in _list_dir(directory, None)]
        return {"files": files} if files else {}

    def delete(self, artifact_path: str) -> dict:
        path = self._path(artifact_path)
        if path == os.path.realpath(self.root):
            raise _invalid_path()
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)
        return {}

    def list_run(self, backend, req: Request) -> dict:
        """``GET /mlflow/artifacts/list``: a run's artifacts, paths relative to the run."""
        msg = request_message(
            req,
            "ListArtifacts",
            {"run_id": [assert_string, assert_required], "path": [assert_string], "page_token": [assert_string]},
        )
        rel = validate_path_is_safe(msg.path) if msg.has("path") else None
        run = backend.client.get_run(msg.run_id or msg.run_uuid)
        root_uri = run.info.artifact_uri
        out: dict[str, Any] = {"root_uri": root_uri}
        parsed = urllib.parse.urlparse(root_uri)
        if parsed.scheme == "mlflow-artifacts":
            run_root = resolve_under(self.root, parsed.path.lstrip("/"))
        elif parsed.scheme in ("", "file"):
            run_root = parsed.path if parsed.scheme == "file" else root_uri
        else:
            raise MlflowException(
                f"Listing artifacts stored at {parsed.scheme}:// is not supported by asynctrack's server.",
                INVALID_PARAMETER_VALUE,
            )
        files = _list_dir(resolve_under(run_root, rel), rel)
        if files:
            out["files"] = files
        return out
