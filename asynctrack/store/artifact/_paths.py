"""Artifact paths and URIs, checked with MLflow 3.18's rules (mlflow/utils/uri.py, validation.py).

Everything here is string work on POSIX paths plus the one filesystem check that matters:
after resolving symlinks, a destination must stay inside the run's artifact directory.
"""

from __future__ import annotations

import os
import pathlib
import posixpath
import urllib.parse

from ...exceptions import INVALID_PARAMETER_VALUE, MlflowException
from ._errors import ArtifactIsADirectory, invalid_artifact_path, invalid_path, outside_artifact_dir


def path_not_unique(name: str) -> bool:
    """MLflow's test for an artifact path that would resolve to another name (``a/../b``, ``/x``)."""
    norm = posixpath.normpath(name)
    return norm != str(name) or norm == "." or norm.startswith("..") or norm.startswith("/")


def verify_artifact_path(artifact_path: str | None) -> None:
    """The directory argument of log_artifact(s): relative, normalized, not escaping."""
    if artifact_path and path_not_unique(artifact_path):
        raise invalid_artifact_path(artifact_path, posixpath.normpath(artifact_path))


def _decode(url: str) -> str:
    for _ in range(10):
        decoded = urllib.parse.unquote(url)
        parsed = urllib.parse.urlunparse(urllib.parse.urlparse(decoded))
        if parsed == url:
            return url
        url = parsed
    raise invalid_path()


def validate_path_is_safe(path: str) -> str:
    """A path read from a run (list/download): no ``..`` segment, no absolute path, no ``#``."""
    decoded = _decode(path)
    if "#" in decoded:
        raise invalid_path()
    if decoded.startswith("file:"):
        decoded = local_file_uri_to_path(decoded)
    if (
        "\\" in decoded
        or ".." in decoded.split("/")
        or pathlib.PureWindowsPath(decoded).is_absolute()
        or pathlib.PurePosixPath(decoded).is_absolute()
    ):
        raise invalid_path()
    return decoded


def validate_path_within_directory(base_dir: str, constructed_path: str) -> str:
    """Refuse a path that, symlinks resolved, leaves ``base_dir``."""
    real_base = pathlib.Path(base_dir).resolve()
    target = pathlib.Path(constructed_path)
    if target.is_symlink() or target.exists():
        real = target.resolve()
    else:
        real = target.parent.resolve() / target.name
    if not real.is_relative_to(real_base):
        raise outside_artifact_dir()
    return constructed_path


def split_artifact_file(artifact_file: str) -> tuple[str, str | None]:
    """``dir/sub/name.ext`` → (``name.ext``, ``dir/sub``), as MLflow's _log_artifact_helper."""
    norm = posixpath.normpath(artifact_file)
    name = posixpath.basename(norm)
    if not artifact_file or artifact_file.endswith("/") or name in ("", ".", ".."):
        raise ArtifactIsADirectory(
            f"An artifact file path is needed, got a directory path: '{artifact_file}'",
            INVALID_PARAMETER_VALUE,
        )
    directory = posixpath.dirname(norm)
    return name, (directory or None)


def local_file_uri_to_path(uri: str) -> str:
    """``file:///a/b`` → ``/a/b``; a plain path is returned unchanged."""
    path = uri
    if uri.startswith("file:"):
        path = urllib.parse.urlparse(uri).path
    if os.name == "nt":  # urllib.request is slow to import: only where it is needed
        from urllib.request import url2pathname

        return url2pathname(path)
    return urllib.parse.unquote(path)


def _join_posix(prefix: str, suffix: str) -> str:
    if not prefix:
        return suffix
    return posixpath.join(prefix, suffix.lstrip("/"))


def append_to_uri_path(uri: str, *paths: str) -> str:
    """MLflow's append_to_uri_path: POSIX paths appended to a URI's path component."""
    path = ""
    for sub in paths:
        path = _join_posix(path, sub)
    parsed = urllib.parse.urlparse(uri)
    if ".." in _decode(parsed.query):
        raise MlflowException("Invalid query string", INVALID_PARAMETER_VALUE)
    if not parsed.scheme:
        return _join_posix(uri, path)
    prefix = ""
    if not parsed.path.startswith("/"):
        prefix = parsed.scheme + ":"
        parsed = parsed._replace(scheme="")
    return prefix + urllib.parse.urlunparse(parsed._replace(path=_join_posix(parsed.path, path)))


def is_local_uri(uri: str) -> bool:
    """A plain path or a ``file:`` URI without a remote host."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "":
        return True
    if parsed.scheme == "file":
        host = parsed.hostname
        return not host or host == "." or host.startswith(("localhost", "127.0.0.1"))
    return len(parsed.scheme) == 1 and os.name == "nt"  # a Windows drive letter
