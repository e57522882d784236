"""Artifacts on a local (or mounted) filesystem: plain paths and ``file:`` URIs.

Every file appears whole or not at all: it is written to a hidden temporary file in its
destination directory (MLflow's ``.artifact.uploading.`` prefix, which MLflow's listing skips
too), then renamed over the destination with os.replace. Copies run in the kernel.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
from collections.abc import Callable

from ...entities import FileInfo
from ...exceptions import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, MlflowException
from ._copy import copy_file, copy_into
from ._errors import ArtifactIsADirectory, local_file_not_found, require_local_dir
from ._paths import (
    local_file_uri_to_path,
    split_artifact_file,
    validate_path_is_safe,
    validate_path_within_directory,
    verify_artifact_path,
)
from .base import ArtifactRepository

TEMP_PREFIX = ".artifact.uploading."
_umask_lock = threading.Lock()
_counter = itertools.count()
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _create_temp(directory: str, suffix: str) -> tuple[int, str]:
    """A new hidden file (mode 0600) in ``directory``: mkstemp's guarantees, one syscall."""
    while True:
        name = f"{TEMP_PREFIX}{os.getpid()}.{threading.get_ident()}.{next(_counter)}{suffix}"
        path = os.path.join(directory, name)
        try:
            return os.open(path, _TEMP_FLAGS, 0o600), path
        except FileExistsError:  # left by a crashed process that had our pid
            continue


def _default_file_mode() -> int:
    """What open() would give a new file (mkstemp makes 0600)."""
    with _umask_lock:
        umask = os.umask(0)
        os.umask(umask)
    return 0o666 & ~umask


def verify_artifact_file_name(file_name: str) -> None:
    """MLflow's local repository reserves its temporary files' prefix (a name with it would
    be swept as a leftover upload)."""
    if file_name.startswith(TEMP_PREFIX):
        raise MlflowException.invalid_parameter_value(
            f"Invalid artifact file name: '{file_name}'. Artifact names starting with "
            f"'{TEMP_PREFIX}' are reserved."
        )


class LocalArtifactRepository(ArtifactRepository):
    """Artifacts as files under one local directory."""

    def __init__(self, artifact_uri: str) -> None:
        super().__init__(artifact_uri)
        self.artifact_dir = local_file_uri_to_path(artifact_uri)

    # -- writing ------------------------------------------------------------------------------
    def _directory(self, artifact_path: str | None) -> str:
        """The destination directory for ``artifact_path``, checked and created."""
        verify_artifact_path(artifact_path)
        path = os.path.normpath(artifact_path) if artifact_path else ""
        directory = os.path.join(self.artifact_dir, path) if path else self.artifact_dir
        validate_path_within_directory(self.artifact_dir, directory)
        os.makedirs(directory, exist_ok=True)
        return directory

    def _destination(self, directory: str, file_name: str) -> str:
        verify_artifact_file_name(file_name)
        if file_name in ("", ".", ".."):
            raise ArtifactIsADirectory(
                "An artifact file name is needed, got a directory path: "
                f"'{file_name or '(empty)'}'",
                INVALID_PARAMETER_VALUE,
            )
        destination = os.path.join(directory, file_name)
        validate_path_within_directory(self.artifact_dir, destination)
        if os.path.isdir(destination):
            raise ArtifactIsADirectory(
                f"Cannot write artifact file '{file_name}': a directory of that name exists at "
                f"'{destination}'",
                INVALID_PARAMETER_VALUE,
            )
        return destination

    def _publish(
        self, directory: str, destination: str, fill: Callable[[int, str], None], suffix: str = ""
    ) -> None:
        """Run ``fill(fd, temp_path)`` on a temp file beside ``destination``, then rename it
        over ``destination``; on any failure the temp file is removed."""
        fd, temp = _create_temp(directory, suffix)
        try:
            try:
                fill(fd, temp)
            finally:
                os.close(fd)
            os.replace(temp, destination)
        except BaseException:
            try:
                os.remove(temp)
            except FileNotFoundError:
                pass
            raise

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        local_file = os.fspath(local_file)
        if not os.path.exists(local_file):
            raise local_file_not_found(local_file)
        if os.path.isdir(local_file):
            raise ArtifactIsADirectory(
                f"'{local_file}' is a directory: log it with log_artifacts, or with the client's "
                "log_artifact, which logs a directory under its own name.",
                INVALID_PARAMETER_VALUE,
            )
        directory = self._directory(artifact_path)
        destination = self._destination(directory, os.path.basename(local_file))
        try:
            if os.path.samefile(local_file, destination):
                return
        except FileNotFoundError:
            pass

        self._publish(directory, destination, lambda fd, temp: _copy_with_stat(local_file, fd, temp))

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        local_dir = os.fspath(local_dir)
        require_local_dir(local_dir)
        root = self._directory(artifact_path)
        for dirpath, dirnames, filenames in os.walk(local_dir):
            rel = os.path.relpath(dirpath, local_dir)
            target = root if rel == "." else os.path.join(root, rel)
            # Checked once a directory: a walked file name has no separator, and os.replace
            # replaces a symlink at the destination instead of following it.
            validate_path_within_directory(self.artifact_dir, target)
            for name in dirnames:
                os.makedirs(os.path.join(target, name), exist_ok=True)
            for name in filenames:
                source = os.path.join(dirpath, name)
                destination = os.path.join(target, name)
                if name.startswith(TEMP_PREFIX) or os.path.isdir(destination):
                    destination = self._destination(target, name)  # raises the right error
                self._publish(
                    target, destination, lambda fd, temp, s=source: _copy_with_stat(s, fd, temp)
                )

    def write_artifact(self, artifact_file: str, write: Callable[[str], None]) -> None:
        """Straight into the destination directory: no second copy."""
        name, directory_path = split_artifact_file(artifact_file)
        directory = self._directory(directory_path)
        destination = self._destination(directory, name)
        mode = _default_file_mode()

        def fill(fd: int, temp: str) -> None:
            write(temp)
            os.chmod(temp, mode)

        self._publish(directory, destination, fill, suffix=os.path.splitext(name)[1])

    # -- reading ------------------------------------------------------------------------------
    def _local(self, artifact_path: str) -> str:
        artifact_path = validate_path_is_safe(artifact_path)
        local = os.path.join(self.artifact_dir, os.path.normpath(artifact_path))
        validate_path_within_directory(self.artifact_dir, local)
        return local

    def get_local_path(self, artifact_path: str) -> str:
        local = self._local(artifact_path) if artifact_path else self.artifact_dir
        if not os.path.exists(local):
            raise MlflowException(f"No such artifact: '{artifact_path}'", RESOURCE_DOES_NOT_EXIST)
        return os.path.abspath(local)

    def is_directory(self, artifact_path: str | None) -> bool:
        path = os.path.normpath(artifact_path) if artifact_path else ""
        return os.path.isdir(os.path.join(self.artifact_dir, path) if path else self.artifact_dir)

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        rel = os.path.normpath(path) if path else ""
        list_dir = os.path.join(self.artifact_dir, rel) if rel else self.artifact_dir
        validate_path_within_directory(self.artifact_dir, list_dir)
        if not os.path.isdir(list_dir):
            return []
        infos = []
        with os.scandir(list_dir) as entries:
            for entry in entries:
                if entry.name.startswith(TEMP_PREFIX):
                    continue
                artifact = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_dir():
                    infos.append(FileInfo(artifact, True, None))
                else:
                    infos.append(FileInfo(artifact, False, entry.stat().st_size))
        return sorted(infos, key=lambda f: f.path)

    def download_artifacts(self, artifact_path: str | None, dst_path: str | None = None) -> str:
        """Without ``dst_path``, the artifact's own path (nothing copied), as MLflow does."""
        if dst_path:
            return super().download_artifacts(artifact_path, dst_path)
        return self.get_local_path(artifact_path or "")

    def _download_file(self, remote_file_path: str, local_path: str) -> None:
        source = self._local(remote_file_path)
        if not os.path.exists(source):
            raise MlflowException(
                f"No such artifact: '{os.path.relpath(source, self.artifact_dir)}'",
                RESOURCE_DOES_NOT_EXIST,
            )
        copy_file(source, local_path)
        shutil.copystat(source, local_path)


def _copy_with_stat(source: str, fd: int, temp: str) -> None:
    copy_into(source, fd, temp)
    shutil.copystat(source, temp)
