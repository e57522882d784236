"""MLflow's SQL store rules, dialect-neutral: each SQL store reads what a rule needs (a stage,
the params already logged) its own way and gets the same decision and the same error text.

Errors come back as values (``MlflowException`` or None), not raised: a logging record that
breaks a rule fails alone while the rest of its batch is stored, and a lifecycle op raises it
inside its own savepoint.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ... import events as ev
from ..._validation import MAX_FLOAT_VALUE as MAX_FLOAT
from ..._validation import sanitize_metric_value as sanitize_metric_value  # the scalar rule
from ...entities import LifecycleStage
from ...exceptions import (
    BAD_REQUEST,
    INVALID_PARAMETER_VALUE,
    INVALID_STATE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    MlflowException,
)

ACTIVE = LifecycleStage.ACTIVE
DELETED = LifecycleStage.DELETED
RUN_NAME_TAG = "mlflow.runName"  # mirrors runs.name: set either way, the other follows

# MLflow's primary key of ``metrics``: a point logged again with all of these equal is stored
# once (the SQL stores insert and ignore the conflict).
POINT_IDENTITY = ("key", "timestamp", "step", "run_uuid", "value", "is_nan")
# ``latest_metrics`` holds, per (run, key), the point highest in this order, values as stored;
# among equal points the first logged.
LATEST_ORDER = ("step", "timestamp", "value")

# A metric record (VERSION, METRIC, run_id, key, value, timestamp, step) in its stored form:
# a NaN's VERSION is replaced by NAN_MARK, which means "store with is_nan = 1", so that a
# record stays one flat tuple a store binds as it is.
NAN_MARK = -1
_INFS = (float("inf"), float("-inf"))


# -- errors, in MLflow's words ---------------------------------------------------------------


def experiment_not_found(experiment_id: int | str) -> MlflowException:
    return MlflowException(f"No Experiment with id={experiment_id} exists", RESOURCE_DOES_NOT_EXIST)


def run_not_found(run_id: str) -> MlflowException:
    return MlflowException(f"Run with id={run_id} not found", RESOURCE_DOES_NOT_EXIST)


def run_not_active(run_id: str, stage: str) -> MlflowException:
    return MlflowException(
        f"The run {run_id} must be in the 'active' state. Current state is {stage}.",
        INVALID_PARAMETER_VALUE,
    )


def experiment_not_active(experiment_id: Any, stage: str) -> MlflowException:
    return MlflowException(
        f"The experiment {experiment_id} must be in the 'active' state. Current state is {stage}.",
        INVALID_PARAMETER_VALUE,
    )


def param_changed(run_id: str, key: str, old: Any, new: Any) -> MlflowException:
    """A PARAM record's value differs from the one logged: params are immutable."""
    return MlflowException(
        f"Changing param values is not allowed. Param with key='{key}' was already"
        f" logged with value='{old}' for run ID='{run_id}'. Attempted logging new"
        f" value '{new}'.",
        INVALID_PARAMETER_VALUE,
    )


def batch_param_conflicts(
    run_id: str, params: Iterable[Sequence], logged: dict[tuple[str, str], Any]
) -> MlflowException | None:
    """MLflow's error for a log_batch whose (key, value) ``params`` change any param already
    ``logged`` (by (run_id, key)), naming every one of them; None if none does."""
    conflicts = [
        {"key": key, "old_value": logged[(run_id, key)], "new_value": value}
        for key, value in params
        if (run_id, key) in logged and logged[(run_id, key)] != value
    ]
    if not conflicts:
        return None
    return MlflowException(
        "Changing param values is not allowed. Params were already"
        f" logged='{conflicts}' for run ID='{run_id}'.",
        INVALID_PARAMETER_VALUE,
    )


def no_run_tag(run_id: str, key: str) -> MlflowException:
    return MlflowException(f"No tag with name: {key} in run with id {run_id}", RESOURCE_DOES_NOT_EXIST)


def no_experiment_tag(experiment_id: Any, key: str) -> MlflowException:
    return MlflowException(
        f"No tag with name: {key} in experiment with id {experiment_id}", RESOURCE_DOES_NOT_EXIST
    )


def sqlalchemy_error_text(driver: str, exc: BaseException, statement: str, params: tuple) -> str:
    """The text SQLAlchemy gives a DBAPI error (``driver``: the module MLflow's engine names
    it by, e.g. ``sqlite3``), which MLflow passes on in its messages; ``statement`` as
    SQLAlchemy printed it for that dialect."""
    return (
        f"({driver}.{type(exc).__name__}) {exc}\n[SQL: {statement}]\n[parameters: {params!r}]\n"
        "(Background on this error at: https://sqlalche.me/e/21/gkpj)"
    )


def experiment_exists(name: str, detail: str) -> MlflowException:
    """CREATE_EXPERIMENT met a unique-name violation (``detail``: sqlalchemy_error_text's)."""
    return MlflowException(f"Experiment(name={name}) already exists. Error: {detail}", RESOURCE_ALREADY_EXISTS)


def rename_conflict(detail: str) -> MlflowException:
    """RENAME_EXPERIMENT met a unique-name violation: MLflow lets SQLAlchemy's IntegrityError
    through, which its REST layer and client report as BAD_REQUEST with SQLAlchemy's text."""
    return MlflowException(detail, BAD_REQUEST)


# -- lifecycle -------------------------------------------------------------------------------


def experiment_refusal(op: int, experiment_id: Any, stage: str | None) -> MlflowException | None:
    """MLflow's error for lifecycle ``op`` on an experiment in ``stage`` (None: there is no such
    experiment), or None where MLflow allows it. Delete wants an active experiment and restore
    a deleted one, each reporting any other as not found; renaming, tagging and creating a run
    in it want it active."""
    if stage is None:
        return experiment_not_found(int(experiment_id))
    if op == ev.RESTORE_EXPERIMENT:
        return None if stage == DELETED else experiment_not_found(int(experiment_id))
    if stage == ACTIVE:
        return None
    if op == ev.DELETE_EXPERIMENT:
        return experiment_not_found(int(experiment_id))
    if op == ev.RENAME_EXPERIMENT:
        return MlflowException("Cannot rename a non-active experiment.", INVALID_STATE)
    return experiment_not_active(experiment_id, stage)


def run_refusal(op: int, run_id: str, stage: str | None) -> MlflowException | None:
    """MLflow's error for ``op`` (logging or lifecycle) on a run in ``stage`` (None: no such
    run), or None where MLflow allows it: deleting and restoring want the run to exist, every
    other write wants it active."""
    if stage is None:
        return run_not_found(run_id)
    if stage == ACTIVE or op == ev.DELETE_RUN or op == ev.RESTORE_RUN:
        return None
    return run_not_active(run_id, stage)


def new_run_tags(run_id: str, tags: Iterable[Sequence], run_name: str | None) -> list[tuple]:
    """A new run's tag rows (key, value, run_id): MLflow adds the run name as the
    ``mlflow.runName`` tag unless the caller set that tag itself."""
    rows = [(k, v, run_id) for k, v in tags]
    if run_name and not any(row[0] == RUN_NAME_TAG for row in rows):
        rows.append((RUN_NAME_TAG, run_name, run_id))
    return rows


def run_artifact_uri(experiment_location: str | None, run_id: str) -> str:
    """Where a new run's artifacts go: MLflow's ``<experiment location>/<run id>/artifacts``."""
    return f"{(experiment_location or '').rstrip('/')}/{run_id}/artifacts"


# -- metric values and latest_metrics --------------------------------------------------------


def stored_metric(rec: tuple) -> tuple:
    """A metric record with its value as MLflow stores it (see sanitize_metric_value): NaN as
    0 marked with NAN_MARK, ±inf as ±max float; a finite one as it is."""
    value = rec[4]
    if value != value:
        return (NAN_MARK, *rec[1:4], 0.0, *rec[5:])
    if value in _INFS:
        return (*rec[:4], MAX_FLOAT if value > 0 else -MAX_FLOAT, *rec[5:])
    return rec


def points_in_order(records: Sequence[tuple], accepted: Iterable[int]) -> Iterator[tuple]:
    """The metric points of ``records[k]`` for k in ``accepted`` (METRIC records and BATCH
    entries), as stored metric records, in logging order: the order that decides between
    points equal in LATEST_ORDER (the first logged stays) and between points equal under
    POINT_IDENTITY with different bits (-0.0 and 0.0: the first logged is stored)."""
    for k in accepted:
        rec = records[k]
        op = rec[1]
        if op == ev.METRIC:
            yield stored_metric(rec)
        elif op == ev.BATCH:
            run_id = rec[2]
            for m in rec[3]:
                yield stored_metric((ev.VERSION, ev.METRIC, run_id, *m))


def latest_in_order(records: Sequence[tuple], accepted: Iterable[int]) -> dict[tuple[str, str], tuple]:
    """latest_metrics rows, by (run, key), of the metrics of ``records[k]`` for k in
    ``accepted``, as stored metric records, taken in logging order as MLflow does: a point
    replaces the best so far only if its (step, timestamp, value), value as stored (NaN as 0),
    is higher."""
    latest: dict[tuple[str, str], tuple] = {}
    get = latest.get
    for row in points_in_order(records, accepted):
        lkey = (row[2], row[3])
        best = get(lkey)
        if best is None or (row[6], row[5], row[4]) > (best[6], best[5], best[4]):
            latest[lkey] = row
    return latest


_FIRST = operator.itemgetter(0)
_STEP_TS_VALUE = operator.itemgetter(3, 2, 1)  # of a BATCH entry (key, value, timestamp, step)


def latest_of_batches(batch_groups: Iterable[tuple[str, Sequence]]) -> dict[tuple[str, str], tuple]:
    """latest_metrics rows of finite BATCH entries (key, value, timestamp, step) given as
    (run_id, entries) in logging order, as metric records: per (run, key) the highest (step,
    timestamp, value), the first logged among equals (``max`` keeps the first maximum; a later
    group replaces it only if higher). No Python per point: each key's best is found by
    ``max``, the entries of a key consecutive or not."""
    best: dict[tuple[str, str], Sequence] = {}
    order = _STEP_TS_VALUE
    for run_id, metrics in batch_groups:
        for key, points in itertools.groupby(metrics, _FIRST):
            top = max(points, key=order)
            lkey = (run_id, key)
            current = best.get(lkey)
            if current is None or order(top) > order(current):
                best[lkey] = top
    return {lkey: (ev.VERSION, ev.METRIC, lkey[0], *e) for lkey, e in best.items()}


_RUN_KEY = operator.itemgetter(0, 1)


def latest_of_columns(
    run: Sequence, key: Sequence, step: Sequence, ts: Sequence, value: Sequence, order: Sequence, rows: Sequence
) -> list:
    """latest_metrics rows of points given column by column in logging order (``order``
    rising; ``rows[i]``: the i-th point as the caller stores it): per (run, key) the row of the
    highest (step, timestamp, value), the first logged among equals, in (run, key) order (the
    order a store takes its locks in). One C-level ``max`` when all points share one (run, key)."""
    pairs = set(zip(run, key))
    if len(pairs) == 1:  # a falling ordinal breaks ties: the first logged is the maximum
        return [max(zip(step, ts, value, map(operator.neg, order), rows))[-1]]
    top: dict[tuple[str, str], tuple] = {}
    get = top.get
    for pair, rank, row in zip(zip(run, key), zip(step, ts, value), rows):
        held = get(pair)
        if held is None or rank > held[0]:
            top[pair] = (rank, row)
    return [top[p][1] for p in sorted(pairs)]


def latest_of_block(fields: Sequence) -> dict[tuple[str, str], tuple]:
    """latest_metrics rows, by (run, key), of finite metric points laid flat as in an
    ``events.MetricBlock`` (seven fields a point, in logging order), as metric records: per
    (run, key) the highest (step, timestamp, value), the first logged among equals (-0.0 and
    0.0). No Python per point: the points are ranked by one C-level sort, a falling ordinal
    last so that the first logged of equal points sorts last, where the dict keeps it."""
    ranked = sorted(zip(fields[2::7], fields[3::7], fields[6::7], fields[5::7], fields[4::7], itertools.count(0, -1)))
    best = dict(zip(map(_RUN_KEY, ranked), ranked))
    return {lkey: (ev.VERSION, ev.METRIC, lkey[0], lkey[1], r[4], r[3], r[2]) for lkey, r in best.items()}
