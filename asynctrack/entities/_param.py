"""Param: a run's write-once hyperparameter; equality and hashing look at the key only (MLflow)."""

from __future__ import annotations

import sys

from asynctrack.entities._mlflow_object import _MlflowObject


class Param(_MlflowObject):
    """A parameter (key, string value), as `mlflow.entities.Param`."""

    __slots__ = ("_key", "_value")

    def __init__(self, key: str, value: str) -> None:
        if "pyspark.ml" in sys.modules:  # MLflow accepts pyspark.ml Param objects as keys
            import pyspark.ml.param

            if isinstance(key, pyspark.ml.param.Param):
                key = key.name
                value = str(value)
        self._key = key
        self._value = value

    @property
    def key(self) -> str:
        """String key corresponding to the parameter name."""
        return self._key

    @property
    def value(self) -> str:
        """String value of the parameter."""
        return self._value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, self.__class__):
            return self._key == other._key
        return False

    def __hash__(self) -> int:
        return hash(self._key)
