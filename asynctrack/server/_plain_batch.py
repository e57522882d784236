"""The common ``runs/log-batch`` request, checked column by column instead of field by field.

What nearly every client sends is a run id and up to 1,000 metrics, each ``{"key", "value",
"timestamp"[, "step"]}`` with a valid name, a finite float value and int64 integers. Such a body
is valid under every rule the general path applies (protobuf's parsing, MLflow's schema checks,
asynctrack's validation), so checking it as columns at C speed gives the same outcome at a
fraction of the cost (~1 µs a metric instead of ~6). Anything else, down to a metric with an
integer value or a params list, takes the general path unchanged, which gives MLflow's errors.
"""

from __future__ import annotations

import math
from itertools import repeat
from operator import itemgetter
from typing import Any

from .. import _validation as v
from ..exceptions import MlflowException

_TOP_FIELDS = frozenset({"run_id", "metrics", "params", "tags"})
_METRIC_FIELDS = frozenset({"key", "value", "timestamp", "step"})
_REQUIRED = frozenset({"key", "value", "timestamp"})
_DICT_ONLY = {dict}
_FLOAT_ONLY = {float}
_INT_ONLY = {int}
_STR_ONLY = {str}
_KEY, _VALUE, _TIMESTAMP = itemgetter("key"), itemgetter("value"), itemgetter("timestamp")


def plain_log_batch(body: Any) -> tuple[str, list[tuple]] | None:
    """(run id, ``(key, value, timestamp, step)`` entries) of a plain metrics-only log-batch
    body (see the module's docstring), else None: the general path decides."""
    if type(body) is not dict or not _TOP_FIELDS.issuperset(body):
        return None
    run_id, metrics = body.get("run_id"), body.get("metrics")
    if body.get("params") or body.get("tags") or type(run_id) is not str or type(metrics) is not list:
        return None
    if not 0 < len(metrics) <= v.MAX_METRICS_PER_BATCH or set(map(type, metrics)) != _DICT_ONLY:
        return None
    for shape in set(map(frozenset, metrics)):
        if not (_REQUIRED <= shape <= _METRIC_FIELDS):
            return None
    values = list(map(_VALUE, metrics))
    stamps = list(map(_TIMESTAMP, metrics))
    steps = list(map(dict.get, metrics, repeat("step"), repeat(0)))
    if set(map(type, values)) != _FLOAT_ONLY or not all(map(math.isfinite, values)):
        return None  # ints, strings ("NaN"), unquoted NaN/Infinity: protobuf's rules apply
    if set(map(type, stamps)) != _INT_ONLY or set(map(type, steps)) != _INT_ONLY:
        return None
    if min(stamps) < 0 or max(stamps) > v.INT64_MAX or min(steps) < v.INT64_MIN or max(steps) > v.INT64_MAX:
        return None
    keys = list(map(_KEY, metrics))
    if set(map(type, keys)) != _STR_ONLY or not all(map(v.plain_metric_key, set(keys))):
        return None
    try:
        v.validate_run_id(run_id)
    except MlflowException:
        return None
    return run_id, list(zip(keys, values, stamps, steps))
