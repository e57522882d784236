"""Artifact errors: MlflowExceptions that are also the built-in error MLflow lets through.

MLflow 3.18 raises a bare FileNotFoundError, IsADirectoryError... for some bad inputs. Here they
carry an MLflow error code and a clear message, and still match ``except FileNotFoundError``.
"""

from __future__ import annotations

import os

from ...exceptions import (
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    RESOURCE_DOES_NOT_EXIST,
    MlflowException,
)


class _OSMlflowException(MlflowException):
    def __str__(self) -> str:  # OSError's own __str__ would print "[Errno ...]"
        return self.message


class ArtifactFileNotFound(_OSMlflowException, FileNotFoundError):
    """A local file or directory to log, or an artifact to read, does not exist."""


class ArtifactIsADirectory(_OSMlflowException, IsADirectoryError):
    """A directory was given where a file is expected."""


class ArtifactNotADirectory(_OSMlflowException, NotADirectoryError):
    """A file was given where a directory is expected."""


def local_file_not_found(path: str) -> ArtifactFileNotFound:
    return ArtifactFileNotFound(
        f"No such file or directory to log as an artifact: '{path}'", RESOURCE_DOES_NOT_EXIST
    )


def require_local_dir(local_dir: str) -> None:
    """log_artifacts' source must be an existing directory (MLflow silently logs nothing)."""
    if not os.path.exists(local_dir):
        raise local_file_not_found(local_dir)
    if not os.path.isdir(local_dir):
        raise ArtifactNotADirectory(
            f"'{local_dir}' is a file, not a directory: log it with log_artifact.",
            INVALID_PARAMETER_VALUE,
        )


def invalid_artifact_path(artifact_path: str, normalized: str) -> MlflowException:
    """MLflow's verify_artifact_path error (its code is INTERNAL_ERROR, kept for equality)."""
    return MlflowException(
        f"Invalid artifact path: '{artifact_path}'. Names may be treated as files in certain "
        "cases, and must not resolve to other names when treated as such. This name would "
        f"resolve to {normalized!r}",
        INTERNAL_ERROR,
    )


def invalid_path() -> MlflowException:
    return MlflowException("Invalid path", INVALID_PARAMETER_VALUE)


def outside_artifact_dir() -> MlflowException:
    return MlflowException(
        "Invalid path: resolved path is outside the artifact directory", INVALID_PARAMETER_VALUE
    )


def download_failed(artifact_path: str) -> MlflowException:
    return MlflowException(
        f"Failed to download artifacts from path {artifact_path!r}, please ensure that the path "
        "is correct.",
        RESOURCE_DOES_NOT_EXIST,
    )
