"""Dataset sources as MLflow 3.18 resolves and serialises them: the code that built the dataset
(``code``, with the run-context tags), a local path (``local``), an http(s) URL (``http``) and
the blob-store schemes of MLflow's artifact repositories (``s3``, ``gs``, ...). Stdlib only."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..exceptions import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, MlflowException


class DatasetSource:
    """Where a dataset came from; ``to_json`` is what the ``datasets`` table stores."""

    @staticmethod
    def _get_source_type() -> str:
        raise NotImplementedError

    def load(self) -> Any:
        raise NotImplementedError

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False

    @classmethod
    def _resolve(cls, raw_source: Any) -> DatasetSource:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> DatasetSource:
        raise NotImplementedError

    @classmethod
    def from_json(cls, source_json: str) -> DatasetSource:
        return cls.from_dict(json.loads(source_json))


class CodeDatasetSource(DatasetSource):
    """The code that built the dataset, identified by the run-context tags (user, source...)."""

    def __init__(self, tags: dict[Any, Any]) -> None:
        self._tags = tags

    @staticmethod
    def _get_source_type() -> str:
        return "code"

    def to_dict(self) -> dict[Any, Any]:
        return {"tags": self._tags}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> CodeDatasetSource:
        return cls(tags=source_dict.get("tags"))


class HTTPDatasetSource(DatasetSource):
    """An http(s) URL."""

    def __init__(self, url: str) -> None:
        self._url = url

    @property
    def url(self) -> str:
        return self._url

    @staticmethod
    def _get_source_type() -> str:
        return "http"

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        if not isinstance(raw_source, str):
            return False
        try:
            return urlparse(raw_source).scheme in ("http", "https")
        except Exception:  # noqa: BLE001 - MLflow: not resolvable
            return False

    @classmethod
    def _resolve(cls, raw_source: Any) -> HTTPDatasetSource:
        return cls(raw_source)

    def to_dict(self) -> dict[Any, Any]:
        return {"url": self.url}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> HTTPDatasetSource:
        url = source_dict.get("url")
        if url is None:
            raise MlflowException('Failed to parse HTTPDatasetSource. Missing expected key: "url"')
        return cls(url=url)


def _is_local_uri(uri: str) -> bool:
    """mlflow.utils.uri.is_local_uri(uri, is_tracking_or_registry_uri=False) off Windows."""
    parsed = urlparse(uri)
    if parsed.scheme == "":
        return True
    host = parsed.hostname
    remote = host and not (host == "." or host.startswith("localhost") or host.startswith("127.0.0.1"))
    if parsed.scheme == "file":
        if remote:
            raise MlflowException(f"{uri} is not a valid remote uri.")
        return True
    return False


class _ArtifactSource(DatasetSource):
    """MLflow's FileSystemDatasetSource made for one artifact-repository scheme."""

    scheme = ""
    source_type = "local"

    def __init__(self, uri: str) -> None:
        self._uri = uri

    @property
    def uri(self) -> str:
        return self._uri

    @classmethod
    def _get_source_type(cls) -> str:  # type: ignore[override]
        return cls.source_type

    @classmethod
    def _can_resolve(cls, raw_source: Any) -> bool:  # type: ignore[override]
        local = cls.source_type == "local"
        if not isinstance(raw_source, str) and (not isinstance(raw_source, Path) and local):
            return False
        try:
            if local:
                return _is_local_uri(str(raw_source))
            return urlparse(str(raw_source)).scheme == cls.scheme
        except Exception:  # noqa: BLE001 - MLflow: not resolvable
            return False

    @classmethod
    def _resolve(cls, raw_source: Any) -> _ArtifactSource:
        return cls(str(raw_source))

    def to_dict(self) -> dict[Any, Any]:
        return {"uri": self.uri}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> _ArtifactSource:
        uri = source_dict.get("uri")
        if uri is None:
            raise MlflowException(
                f'Failed to parse {cls.__name__}. Missing expected key: "uri"', INVALID_PARAMETER_VALUE
            )
        return cls(uri=uri)


def _artifact_source(name: str, scheme: str) -> type[_ArtifactSource]:
    source_type = "local" if scheme in ("", "file") else scheme
    return type(name, (_ArtifactSource,), {"scheme": scheme, "source_type": source_type})


LocalArtifactDatasetSource = _artifact_source("LocalArtifactDatasetSource", "")

# MLflow's registration order (the last that can resolve a source wins).
_SOURCES: list[Any] = [
    LocalArtifactDatasetSource,
    _artifact_source("LocalArtifactDatasetSource", "file"),
    _artifact_source("S3ArtifactDatasetSource", "s3"),
    _artifact_source("R2ArtifactDatasetSource", "r2"),
    _artifact_source("B2ArtifactDatasetSource", "b2"),
    _artifact_source("GCSArtifactDatasetSource", "gs"),
    _artifact_source("AzureBlobArtifactDatasetSource", "wasbs"),
    _artifact_source("FTPArtifactDatasetSource", "ftp"),
    _artifact_source("SFTPArtifactDatasetSource", "sftp"),
    _artifact_source("HdfsArtifactDatasetSource", "hdfs"),
    _artifact_source("HdfsArtifactDatasetSource", "viewfs"),
    _artifact_source("AzureDataLakeArtifactDatasetSource", "abfss"),
    HTTPDatasetSource,
    CodeDatasetSource,
]


__all__ = []
for _source in _SOURCES:  # MLflow names every registered source here (the last of a name wins)
    globals()[_source.__name__] = _source
    __all__.append(_source.__name__)


def get_registered_sources() -> list[Any]:
    """The registered source classes, in MLflow's order."""
    return list(_SOURCES)


def resolve_dataset_source(raw_source: Any) -> DatasetSource:
    """The source MLflow's registry resolves ``raw_source`` (a URI or path) to, with its
    warning when several could, and its error when none can."""
    matching = [s for s in _SOURCES if s._can_resolve(raw_source)]
    if len(matching) > 1:
        names = ", ".join(s.__name__ for s in matching)
        warnings.warn(
            f"The specified dataset source can be interpreted in multiple ways: {names}. MLflow "
            f"will assume that this is a {matching[-1].__name__} source.",
            stacklevel=2,
        )
    for source in reversed(matching):
        return source._resolve(raw_source)
    raise MlflowException(
        f"Could not find a source information resolver for the specified dataset source: {raw_source}.",
        RESOURCE_DOES_NOT_EXIST,
    )


def get_dataset_source_from_json(source_json: str, source_type: str) -> DatasetSource:
    """The source a stored ``(source, source_type)`` pair describes."""
    for source in reversed(_SOURCES):
        if source._get_source_type() == source_type:
            return source.from_json(source_json)
    raise MlflowException(
        f"Could not parse dataset source from JSON due to unrecognized source type: {source_type}.",
        RESOURCE_DOES_NOT_EXIST,
    )


def code_source() -> CodeDatasetSource:
    """The default source: this code, as the run-context tags describe it."""
    from ..fluent._context import resolve_tags

    return CodeDatasetSource(tags=resolve_tags(None))


def source_of(source: Any) -> DatasetSource:
    """A from_* call's ``source`` argument as a DatasetSource (None: the calling code)."""
    if source is None:
        return code_source()
    if isinstance(source, DatasetSource):
        return source
    return resolve_dataset_source(source)
