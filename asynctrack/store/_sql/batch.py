"""A run of logging records (METRIC, PARAM, TAG, BATCH) put through MLflow's rules, given what
the store read for them: each refused record gets its own error, the rest become rows.

The rows keep the shapes a store binds as they are, laid end to end in multi-row statements:
a metric record (VERSION, METRIC, run_id, key, value, timestamp, step) in its stored form (see
rules.stored_metric), a BATCH record's finite (key, value, timestamp, step) entries behind
their run id, params and tags as (key, value, run_id), run names as (name, run_id). The checks
made here are per record, never per point: metric points of active runs with finite values
need none (``plain_metrics``, ``plain_block``).
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Iterator, Sequence
from typing import Any

from ... import events as ev
from ...exceptions import INTERNAL_ERROR, MlflowException
from .rules import (
    ACTIVE,
    NAN_MARK,
    RUN_NAME_TAG,
    batch_param_conflicts,
    param_changed,
    run_refusal,
    stored_metric,
)

FEW = 16  # records (or a BATCH's metrics) up to which per-key work in Python is cheaper

_METRIC, _PARAM, _TAG, _BATCH = ev.METRIC, ev.PARAM, ev.TAG, ev.BATCH
_ONLY_METRIC = {ev.METRIC}
_METRIC_LEN = {7}  # (VERSION, METRIC, run_id, key, value, timestamp, step)
_ENTRY_LEN = {4}  # a BATCH record's metric: (key, value, timestamp, step)
_OP = operator.itemgetter(1)
_VALUE = operator.itemgetter(4)
_FIRST = operator.itemgetter(0)
_SECOND = operator.itemgetter(1)
_INFS = (math.inf, -math.inf)


def segments(records: Sequence[tuple]) -> Iterator[tuple[bool, int, int]]:
    """A batch cut into (logging, start, stop): each run of consecutive logging records, to be
    written in bulk, and each lifecycle record alone (applied one by one, in order)."""
    logging_ops = ev.LOGGING_OPS
    n = len(records)
    if n and logging_ops.issuperset(map(_OP, records)):  # one C-level pass
        yield True, 0, n
        return
    i = 0
    while i < n:
        if records[i][1] in logging_ops:
            j = i + 1
            while j < n and records[j][1] in logging_ops:
                j += 1
            yield True, i, j
            i = j
        else:
            yield False, i, i + 1
            i += 1


def plain_metrics(seg: Sequence[tuple], run_ids: set, stages: dict) -> bool:
    """True for records that are all well-formed METRIC records of active runs with finite
    values: those need no Python work per point."""
    if set(map(_OP, seg)) != _ONLY_METRIC or set(map(len, seg)) != _METRIC_LEN:
        return False
    if any(stages.get(r) != ACTIVE for r in run_ids):
        return False
    try:
        # One C-level pass: the sum is finite iff every value is (an overflow to inf only
        # sends a batch the general way).
        return math.isfinite(sum(map(_VALUE, seg)))
    except (TypeError, OverflowError, ValueError):
        return False


def plain_block(fields: tuple, run_ids: set, stages: dict) -> bool:
    """plain_metrics for an ``events.MetricBlock``'s flat fields (well-formed by decoding)."""
    try:
        return all(stages.get(r) == ACTIVE for r in run_ids) and math.isfinite(sum(fields[4::7]))
    except (TypeError, OverflowError, ValueError):
        return False


def finite_entries(metrics: Sequence) -> bool:
    """True if a BATCH record's (key, value, timestamp, step) entries are well-formed and finite."""
    try:
        return set(map(len, metrics)) == _ENTRY_LEN and math.isfinite(sum(map(_SECOND, metrics)))
    except (TypeError, OverflowError, ValueError):
        return False


def params_wanted(records: Sequence[tuple], start: int, stop: int) -> dict[str, set[str]]:
    """run id -> the param keys ``records[start:stop]`` log: what a store reads back (only
    those, not all of a run's params) for ``sort_out``."""
    wanted: dict[str, set[str]] = {}
    for k in range(start, stop):
        rec = records[k]
        if rec[1] == _PARAM:
            wanted.setdefault(rec[2], set()).add(rec[3])
        elif rec[1] == _BATCH and rec[4]:
            wanted.setdefault(rec[2], set()).update(p[0] for p in rec[4] if p)
    return wanted


class Accepted:
    """What ``sort_out`` let through, as rows (see the module's docstring).

    ``accepted``: the indices of the records stored; ``metric_rows``: stored-form metric
    records; ``batch_groups``: (run_id, finite entries) of BATCH records, a large one's sorted
    by key (stably: each key's points keep their order); ``pairs``: every (run_id, key) with a
    point; ``nan_seen``: a NaN is among ``metric_rows``."""

    __slots__ = (
        "accepted", "metric_rows", "batch_groups", "pairs", "param_rows", "tag_rows", "name_rows", "nan_seen"
    )

    def __init__(self) -> None:
        self.accepted: list[int] = []
        self.metric_rows: list[tuple] = []
        self.batch_groups: list[tuple[str, Sequence]] = []
        self.pairs: set[tuple[str, str]] = set()
        self.param_rows: list[tuple] = []
        self.tag_rows: list[tuple] = []
        self.name_rows: list[tuple] = []
        self.nan_seen = False


def sort_out(
    records: Sequence[tuple],
    start: int,
    stop: int,
    stages: dict[str, str],
    params: dict[tuple[str, str], Any],
    outcomes: list,
) -> Accepted:
    """Apply MLflow's rules to ``records[start:stop]``: a refused record gets its error in
    ``outcomes`` (same index) and nothing of it is stored; a BATCH record is stored whole or
    not at all. ``stages``: run id -> lifecycle stage of the runs there are; ``params``:
    (run_id, key) -> the value already logged, of the keys ``params_wanted`` named (updated
    with this batch's, so that a later record in it is checked against an earlier one)."""
    out = Accepted()
    metric_rows, batch_groups, pairs = out.metric_rows, out.batch_groups, out.pairs
    param_rows, tag_rows, name_rows, accepted = out.param_rows, out.tag_rows, out.name_rows, out.accepted
    add_metric = metric_rows.append
    add_pair = pairs.add
    nan_seen = False
    for k in range(start, stop):
        rec = records[k]
        op, run_id = rec[1], rec[2]
        stage = stages.get(run_id)
        if stage != ACTIVE:
            outcomes[k] = run_refusal(op, run_id, stage)
            continue
        if op == _METRIC:
            if len(rec) != 7:  # bound end to end with others: a wrong shape fails alone
                outcomes[k] = MlflowException(f"Malformed metric record: {rec!r}", INTERNAL_ERROR)
                continue
            value = rec[4]
            if value != value or value in _INFS:
                rec = stored_metric(rec)
                nan_seen = nan_seen or rec[0] == NAN_MARK
            add_metric(rec)
            add_pair((run_id, rec[3]))
        elif op == _PARAM:
            key, value = rec[3], rec[4]
            old = params.get((run_id, key))
            if old is not None and old != value:
                outcomes[k] = param_changed(run_id, key, old, value)
                continue
            params[(run_id, key)] = value
            param_rows.append((key, value, run_id))
        elif op == _TAG:
            key, value = rec[3], rec[4]
            tag_rows.append((key, value, run_id))
            if key == RUN_NAME_TAG:
                name_rows.append((value, run_id))
        else:  # BATCH: all of it or none of it
            metrics, batch_params, tags = rec[3], rec[4], rec[5]
            if batch_params:
                conflict = batch_param_conflicts(run_id, batch_params, params)
                if conflict is not None:
                    outcomes[k] = conflict
                    continue
                for key, value in batch_params:
                    params[(run_id, key)] = value
                    param_rows.append((key, value, run_id))
            if metrics:
                if finite_entries(metrics):
                    if len(metrics) > FEW:
                        # Key by key (a stable sort: each key's points keep their order): an
                        # index with the key first then takes each key's points in one visit,
                        # not one per point.
                        metrics = sorted(metrics, key=_FIRST)
                    batch_groups.append((run_id, metrics))
                else:
                    for key, value, ts, step in metrics:
                        row = stored_metric((ev.VERSION, _METRIC, run_id, key, value, ts, step))
                        nan_seen = nan_seen or row[0] == NAN_MARK
                        add_metric(row)
                pairs.update(zip(itertools.repeat(run_id), set(map(_FIRST, metrics))))
            for key, value in tags:
                tag_rows.append((key, value, run_id))
                if key == RUN_NAME_TAG:
                    name_rows.append((value, run_id))
        accepted.append(k)
    out.nan_seen = nan_seen
    return out
