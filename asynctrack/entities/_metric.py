"""Metric: one (key, value, timestamp, step) point, slotted because the store builds millions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from asynctrack._gc import paused_gc
from asynctrack.entities._mlflow_object import _MlflowObject
from asynctrack.exceptions import INVALID_PARAMETER_VALUE, MlflowException

_new = object.__new__
_NAN = float("nan")


class Metric(_MlflowObject):
    """A metric value at a timestamp and step, as `mlflow.entities.Metric`."""

    # The rarely set model/dataset fields share one slot, `_extra`: None or
    # (model_id, dataset_name, dataset_digest). Fewer stores make `_from_row` ~35% faster.
    __slots__ = ("_key", "_value", "_timestamp", "_step", "_run_id", "_extra")

    def __init__(
        self,
        key: str,
        value: float,
        timestamp: int,
        step: int,
        model_id: str | None = None,
        dataset_name: str | None = None,
        dataset_digest: str | None = None,
        run_id: str | None = None,
    ) -> None:
        if (dataset_name, dataset_digest).count(None) == 1:
            raise MlflowException(
                "Both dataset_name and dataset_digest must be provided if one is provided",
                INVALID_PARAMETER_VALUE,
            )
        self._key = key
        self._value = value
        self._timestamp = timestamp
        self._step = step
        self._run_id = run_id
        if model_id is None and dataset_name is None and dataset_digest is None:
            self._extra = None
        else:
            self._extra = (model_id, dataset_name, dataset_digest)

    @classmethod
    def _from_row(
        cls, key: str, value: float, timestamp: int, step: int, run_id: str | None = None
    ) -> Metric:
        """Build a Metric from trusted store data, skipping `__init__` and its checks."""
        m = _new(cls)
        m._key = key
        m._value = value
        m._timestamp = timestamp
        m._step = step
        m._run_id = run_id
        m._extra = None
        return m

    @classmethod
    def _from_rows(
        cls, rows: Iterable[tuple[str, float, int, int, Any]], run_id: str | None = None
    ) -> list[Metric]:
        """Metrics from store rows (key, value, timestamp, step, is_nan), NaN restored where
        is_nan is set, as MLflow's SqlMetric does. The cyclic GC is paused meanwhile: its passes
        over a heap that grows by 100,000 objects cost more than building them."""
        new = _new
        nan = _NAN
        out: list[Metric] = []
        append = out.append
        with paused_gc():
            for key, value, timestamp, step, is_nan in rows:
                m = new(cls)
                m._key = key
                m._value = nan if is_nan else value
                m._timestamp = timestamp
                m._step = step
                m._run_id = run_id
                m._extra = None
                append(m)
        return out

    @classmethod
    def _from_history(cls, key: str, rows: Iterable[tuple[int, int, float, Any]]) -> list[Metric]:
        """Metrics of one key from store rows (timestamp, step, value, is_nan): the history
        read path, where the key is known and need not be read 100,000 times."""
        new = _new
        nan = _NAN
        out: list[Metric] = []
        append = out.append
        with paused_gc():
            for timestamp, step, value, is_nan in rows:
                m = new(cls)
                m._key = key
                m._value = nan if is_nan else value
                m._timestamp = timestamp
                m._step = step
                m._run_id = None
                m._extra = None
                append(m)
        return out

    @property
    def key(self) -> str:
        """String key corresponding to the metric name."""
        return self._key

    @property
    def value(self) -> float:
        """Float value of the metric."""
        return self._value

    @property
    def timestamp(self) -> int:
        """Metric timestamp as an integer (milliseconds since the Unix epoch)."""
        return self._timestamp

    @property
    def step(self) -> int:
        """Integer metric step (x-coordinate)."""
        return self._step

    @property
    def model_id(self) -> str | None:
        """ID of the Model associated with the metric."""
        return None if self._extra is None else self._extra[0]

    @property
    def dataset_name(self) -> str | None:
        """Name of the dataset associated with the metric."""
        return None if self._extra is None else self._extra[1]

    @property
    def dataset_digest(self) -> str | None:
        """Digest of the dataset associated with the metric."""
        return None if self._extra is None else self._extra[2]

    @property
    def run_id(self) -> str | None:
        """Run ID associated with the metric."""
        return self._run_id

    def _fields(self) -> tuple[Any, ...]:
        """MLflow's identity tuple: key, value, timestamp, step, model_id, dataset name and
        digest, run_id."""
        model_id, dataset_name, dataset_digest = self._extra or (None, None, None)
        return (
            self._key,
            self._value,
            self._timestamp,
            self._step,
            model_id,
            dataset_name,
            dataset_digest,
            self._run_id,
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, self.__class__):
            return self._fields() == other._fields()
        return False

    def __hash__(self) -> int:
        return hash(self._fields())

    def to_dictionary(self) -> dict[str, Any]:
        """The metric as a plain dict (MLflow's key set and order)."""
        model_id, dataset_name, dataset_digest = self._extra or (None, None, None)
        return {
            "key": self._key,
            "value": self._value,
            "timestamp": self._timestamp,
            "step": self._step,
            "model_id": model_id,
            "dataset_name": dataset_name,
            "dataset_digest": dataset_digest,
            "run_id": self._run_id,
        }

    @classmethod
    def from_dictionary(cls, metric_dict: dict[str, Any]) -> Metric:
        """Build a Metric from `to_dictionary()` output; key, value, timestamp, step required."""
        required_keys = ["key", "value", "timestamp", "step"]
        if missing_keys := [key for key in required_keys if key not in metric_dict]:
            raise MlflowException(
                f"Missing required keys {missing_keys} in metric dictionary",
                INVALID_PARAMETER_VALUE,
            )
        return cls(**metric_dict)
