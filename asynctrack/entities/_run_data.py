"""RunData: a run's latest metrics, params and tags as key -> value dicts."""

from __future__ import annotations

from typing import Any

from asynctrack.entities._metric import Metric
from asynctrack.entities._mlflow_object import _MlflowObject
from asynctrack.entities._param import Param
from asynctrack.entities._tags import RunTag


class RunData(_MlflowObject):
    """Run data (metrics, params, tags), as `mlflow.entities.RunData`."""

    def __init__(
        self,
        metrics: list[Metric] | None = None,
        params: list[Param] | None = None,
        tags: list[RunTag] | None = None,
    ) -> None:
        # The Metric objects are kept (same list object, as in MLflow) for callers that need
        # timestamps and steps; the dicts keep the last value per key.
        self._metric_objs = metrics or []
        self._metrics = {metric.key: metric.value for metric in self._metric_objs}
        self._params = {param.key: param.value for param in (params or [])}
        self._tags = {tag.key: tag.value for tag in (tags or [])}

    @property
    def metrics(self) -> dict[str, float]:
        """Metric key -> latest value (latest timestamp; max value on a timestamp tie)."""
        return self._metrics

    @property
    def params(self) -> dict[str, str]:
        """Param key -> value."""
        return self._params

    @property
    def tags(self) -> dict[str, str]:
        """Tag key -> value."""
        return self._tags

    def _add_metric(self, metric: Metric) -> None:
        self._metrics[metric.key] = metric.value
        self._metric_objs.append(metric)

    def _add_param(self, param: Param) -> None:
        self._params[param.key] = param.value

    def _add_tag(self, tag: RunTag) -> None:
        self._tags[tag.key] = tag.value

    def to_dictionary(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "params": self.params, "tags": self.tags}
