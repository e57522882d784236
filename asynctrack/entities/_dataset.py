"""Dataset, DatasetInput and InputTag: a run's dataset inputs, as MLflow 3.18's entities (stored
in the ``datasets``, ``inputs`` and ``input_tags`` tables)."""

from __future__ import annotations

from typing import Any

from asynctrack.entities._mlflow_object import _MlflowObject


class Dataset(_MlflowObject):
    """Dataset object: name, digest, source type and source (JSON), schema and profile (JSON)."""

    def __init__(
        self,
        name: str,
        digest: str,
        source_type: str,
        source: str,
        schema: str | None = None,
        profile: str | None = None,
    ) -> None:
        self._name = name
        self._digest = digest
        self._source_type = source_type
        self._source = source
        self._schema = schema
        self._profile = profile

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self.__dict__ == other.__dict__
        return False

    __hash__ = None  # type: ignore[assignment]

    @property
    def name(self) -> str:
        """String name of the dataset."""
        return self._name

    @property
    def digest(self) -> str:
        """String digest of the dataset."""
        return self._digest

    @property
    def source_type(self) -> str:
        """String source_type of the dataset."""
        return self._source_type

    @property
    def source(self) -> str:
        """String source of the dataset."""
        return self._source

    @property
    def schema(self) -> str | None:
        """String schema of the dataset."""
        return self._schema

    @property
    def profile(self) -> str | None:
        """String profile of the dataset."""
        return self._profile

    def to_dictionary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "digest": self.digest,
            "source_type": self.source_type,
            "source": self.source,
            "schema": self.schema,
            "profile": self.profile,
        }


class InputTag(_MlflowObject):
    """Input tag object associated with a dataset input."""

    def __init__(self, key: str, value: str) -> None:
        self._key = key
        self._value = value

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self.__dict__ == other.__dict__
        return False

    __hash__ = None  # type: ignore[assignment]

    @property
    def key(self) -> str:
        """String name of the input tag."""
        return self._key

    @property
    def value(self) -> str:
        """String value of the input tag."""
        return self._value


class DatasetInput(_MlflowObject):
    """DatasetInput object: a dataset and the tags of its use by a run."""

    def __init__(self, dataset: Dataset, tags: list[InputTag] | None = None) -> None:
        self._dataset = dataset
        self._tags: list[InputTag] = tags or []

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self.__dict__ == other.__dict__
        return False

    __hash__ = None  # type: ignore[assignment]

    def _add_tag(self, tag: InputTag) -> None:
        self._tags.append(tag)

    @property
    def tags(self) -> list[InputTag]:
        """Array of input tags."""
        return self._tags

    @property
    def dataset(self) -> Dataset:
        """Dataset."""
        return self._dataset

    def to_dictionary(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.to_dictionary(),
            "tags": {tag.key: tag.value for tag in self.tags},
        }
