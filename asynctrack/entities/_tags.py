"""RunTag and ExperimentTag: mutable-valued labels; like MLflow they compare by value and are
unhashable (MLflow defines `__eq__` without `__hash__`)."""

from __future__ import annotations

from asynctrack.entities._mlflow_object import _MlflowObject


class RunTag(_MlflowObject):
    """Tag object associated with a run."""

    __slots__ = ("_key", "_value")
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, key: str, value: str) -> None:
        self._key = key
        self._value = value

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return (self._key, self._value) == (other._key, other._value)
        return False

    @property
    def key(self) -> str:
        """String name of the tag."""
        return self._key

    @property
    def value(self) -> str:
        """String value of the tag."""
        return self._value


class ExperimentTag(_MlflowObject):
    """Tag object associated with an experiment."""

    __slots__ = ("_key", "_value")
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, key: str, value: str) -> None:
        self._key = key
        self._value = value

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return (self._key, self._value) == (other._key, other._value)
        return False

    @property
    def key(self) -> str:
        """String name of the tag."""
        return self._key

    @property
    def value(self) -> str:
        """String value of the tag."""
        return self._value
