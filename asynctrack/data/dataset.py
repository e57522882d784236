"""The Dataset base class of mlflow.data: name (``dataset`` by default), digest (computed when
not given), source, and the dict and entity that log_input stores."""

from __future__ import annotations

import json
from typing import Any

from ..entities import Dataset as DatasetEntity
from .sources import DatasetSource


class Dataset:
    """A dataset for MLflow Tracking: name, digest, source, schema and profile."""

    def __init__(self, source: DatasetSource, name: str | None = None, digest: str | None = None) -> None:
        self._name = name
        self._source = source
        self._digest = digest or self._compute_digest()

    def _compute_digest(self) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict[str, str]:
        """name, digest, source (JSON) and source type."""
        return {
            "name": self.name,
            "digest": self.digest,
            "source": self.source.to_json(),
            "source_type": self.source._get_source_type(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def _get_source_type(self) -> str:
        return self.source._get_source_type()

    @property
    def name(self) -> str:
        """The dataset's name; ``dataset`` when none was given."""
        return self._name if self._name is not None else "dataset"

    @property
    def digest(self) -> str:
        """A short hash of the dataset's content, e.g. ``498c7496``."""
        return self._digest

    @property
    def source(self) -> DatasetSource:
        return self._source

    @property
    def profile(self) -> Any | None:
        return None

    @property
    def schema(self) -> Any | None:
        return None

    def _to_mlflow_entity(self) -> DatasetEntity:
        """The entity that log_input stores."""
        d = self.to_dict()
        return DatasetEntity(
            name=d["name"],
            digest=d["digest"],
            source_type=d["source_type"],
            source=d["source"],
            schema=d.get("schema"),
            profile=d.get("profile"),
        )
