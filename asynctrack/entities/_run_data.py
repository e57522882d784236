"""RunData: a run's latest metrics, params and tags as key -> value dicts.

``search_runs`` returns pages of up to 50,000 runs whose data is mostly never looked at, so the
store may build a RunData from the raw rows it read (``RunData._from_raw``) and leave the
entities to be made on first access: the attributes ``_metric_objs``, ``_metrics``, ``_params``
and ``_tags`` then appear (each part on its own) the first time anything reads them, through
``__getattr__``, and from then on are ordinary attributes, exactly as ``__init__`` sets them.
"""

from __future__ import annotations

import json
import threading
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

    @classmethod
    def _from_raw(cls, metric_rows: Any, params: Any, tags: Any) -> RunData:
        """A RunData whose parts are built when first read, from store data: ``metric_rows`` is
        a list of ``(key, value, timestamp, step, ...)`` rows, value None for NaN (further
        fields ignored; None for no metrics); ``params`` and ``tags`` are each a JSON object text, a list of
        ``(key, value)`` pairs, or None (none)."""
        data = _new(cls)
        data.__dict__.update(_raw_metrics=metric_rows, _raw_params=params, _raw_tags=tags)
        return data

    def __getattr__(self, name: str) -> Any:
        # Only called while ``name`` is not set: a part of a lazily built RunData. One lock
        # for all (held for the build of one part, once per part): two threads reading the
        # same new run see the same objects, never a half-built part.
        raw_key = _LAZY_PARTS.get(name)
        if raw_key is not None:
            state = self.__dict__
            with _BUILD_LOCK:
                if name in state:  # another thread built it meanwhile
                    return state[name]
                if raw_key in state:
                    raw = state[raw_key]
                    if raw_key == "_raw_metrics":
                        objs = _metrics_from_rows(raw) if raw else []
                        state["_metric_objs"] = objs
                        state["_metrics"] = {m._key: m._value for m in objs}
                    else:
                        state[name] = _dict_from_raw(raw)
                    del state[raw_key]
                    return state[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def _materialize(self) -> None:
        """Build whatever is still raw (so that ``__dict__`` is what ``__init__`` makes)."""
        self._metric_objs, self._params, self._tags  # noqa: B018 - the reads build them

    def __getstate__(self) -> dict[str, Any]:
        self._materialize()
        return self.__dict__

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


_new = object.__new__
_NAN = float("nan")
_LAZY_PARTS = {
    "_metric_objs": "_raw_metrics",
    "_metrics": "_raw_metrics",
    "_params": "_raw_params",
    "_tags": "_raw_tags",
}
_BUILD_LOCK = threading.RLock()


def _columns_of_many(
    datas: list[RunData], metric_null: Any, text_null: Any
) -> tuple[dict[str, list], dict[str, list], dict[str, list]]:
    """The latest metric values, params and tags of many runs as columns (search_runs'
    DataFrame): key -> one value per run, the null where a run lacks the key, keys in order of
    first appearance, values as the built parts hold them. Parts still raw are read without
    being built or kept: no Metric objects, and all runs' params (tags) in one ``json.loads``,
    where one call a run cost more than the rest of the DataFrame together."""
    states = [data.__dict__ for data in datas]
    metric_rows = []
    for state in states:
        rows = state.get("_raw_metrics", _BUILT)
        # A build sets the part before it deletes the raw one: no raw part means built.
        metric_rows.append(state["_metrics"].items() if rows is _BUILT else rows or ())
    return (
        _columns(metric_rows, metric_null, nan_for_none=True),
        _columns(_text_parts(states, "_params", "_raw_params"), text_null),
        _columns(_text_parts(states, "_tags", "_raw_tags"), text_null),
    )


_BUILT = object()  # no raw part (any more): it is built


def _text_parts(states: list[dict[str, Any]], name: str, raw_key: str) -> list[Any]:
    """Each run's params (tags) as key -> value pairs: the JSON texts decoded at once."""
    parts = [state.get(raw_key, _BUILT) for state in states]
    try:  # the usual page: every part a JSON object's text (json_group_object's '{}' if none)
        decoded = json.loads("[" + ",".join(parts) + "]")
    except (TypeError, ValueError):  # a part built, None, '' or pairs (not str, or not JSON)
        decoded = None
    if decoded is not None and len(decoded) == len(parts):
        return [d.items() for d in decoded]
    texts = [i for i, raw in enumerate(parts) if type(raw) is str and raw]
    if texts:
        for i, value in zip(texts, json.loads("[" + ",".join([parts[i] for i in texts]) + "]")):
            parts[i] = value
    for i, part in enumerate(parts):
        if part is _BUILT:
            part = states[i][name]
        elif type(part) is not dict:
            part = _dict_from_raw(part)
        parts[i] = part.items()
    return parts


def _columns(runs: list[Any], null: Any, nan_for_none: bool = False) -> dict[str, list]:
    """key -> one value per run from each run's ``(key, value, ...)`` rows (a metric row's
    value None is NaN, as ``_metrics_from_rows`` makes it); a later row of a key wins."""
    n = len(runs)
    columns: dict[str, list] = {}
    get = columns.get
    nan = _NAN
    for i, rows in enumerate(runs):
        for row in rows:
            key = row[0]
            column = get(key)
            if column is None:
                column = columns[key] = [null] * n
            value = row[1]
            column[i] = nan if value is None and nan_for_none else value
    return columns


def _metrics_from_rows(rows: Any) -> list[Metric]:
    new = _new
    nan = _NAN
    out = []
    append = out.append
    for row in rows:
        m = new(Metric)
        m._key = row[0]
        value = row[1]
        m._value = nan if value is None else value
        m._timestamp = row[2]
        m._step = row[3]
        m._run_id = None
        m._extra = None
        append(m)
    return out


def _dict_from_raw(raw: Any) -> dict[str, Any]:
    if not raw:
        return {}
    if type(raw) is str:
        return json.loads(raw)
    return dict(raw)
