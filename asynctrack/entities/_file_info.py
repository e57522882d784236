"""FileInfo: one entry of an artifact listing, as `mlflow.entities.FileInfo`."""

from __future__ import annotations

from asynctrack.entities._mlflow_object import _MlflowObject


class FileInfo(_MlflowObject):
    """Metadata about a file or directory of a run's artifacts."""

    __slots__ = ("_path", "_is_dir", "_bytes")

    def __init__(self, path: str, is_dir: bool, file_size: int | None) -> None:
        self._path = path
        self._is_dir = is_dir
        self._bytes = file_size

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return (self._path, self._is_dir, self._bytes) == (
                other._path,  # type: ignore[attr-defined]
                other._is_dir,  # type: ignore[attr-defined]
                other._bytes,  # type: ignore[attr-defined]
            )
        return False

    __hash__ = None  # type: ignore[assignment]  # MLflow's FileInfo is unhashable too

    @property
    def path(self) -> str:
        """String path of the file or directory, relative to the artifact root."""
        return self._path

    @property
    def is_dir(self) -> bool:
        """Whether the FileInfo corresponds to a directory."""
        return self._is_dir

    @property
    def file_size(self) -> int | None:
        """Size of the file in bytes; None for a directory."""
        return self._bytes
