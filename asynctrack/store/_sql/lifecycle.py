"""Lifecycle records (experiments and runs created, deleted, restored, renamed, tagged) for every
SQL store, written once: each record is a generator of the statements it needs, so that the
sqlite3 store runs it synchronously and the asyncpg store with ``await``, over the same SQL and
the same calls to MLflow's rules (``rules``). The SQL is plain ANSI with ``?`` placeholders,
which both dialects take (asyncpg's driver numbers them).

A generator yields a ``Step`` and is sent what it asked for (a row, a row count, the id of a
new row); a unique-constraint violation is thrown back into it as ``Conflict`` at the yield
that caused it. Each record runs inside the batch's transaction in a savepoint of its own (the
driver's business): an error raised here undoes that record's writes only.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from typing import Any

from ... import events as ev
from ...exceptions import BAD_REQUEST, MlflowException
from .._schema_rules import artifact_location
from .rules import (
    ACTIVE,
    DELETED,
    RUN_NAME_TAG,
    experiment_exists,
    experiment_refusal,
    new_run_tags,
    no_experiment_tag,
    no_run_tag,
    rename_conflict,
    run_artifact_uri,
    run_refusal,
)

# What a step wants back.
NOTHING, ROW, ROWCOUNT, NEW_ID, MANY = range(5)

UPSERT_TAG = (
    "INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?) "
    "ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value"
)
_UPSERT_EXPERIMENT_TAG = (
    "INSERT INTO experiment_tags (key, value, experiment_id) VALUES (?, ?, ?) "
    "ON CONFLICT (key, experiment_id) DO UPDATE SET value = excluded.value"
)
_INSERT_EXPERIMENT = (
    "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time,"
    " last_update_time) VALUES (?, ?, 'active', ?, ?)"
)
_INSERT_RUN = (
    "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id,"
    " status, start_time, end_time, source_version, lifecycle_stage, artifact_uri,"
    " experiment_id, deleted_time) VALUES (?, ?, 'UNKNOWN', '', '', ?, 'RUNNING', ?, NULL,"
    " '', 'active', ?, ?, NULL)"
)


class Step:
    """One statement of a record: ``sql`` with ``?`` placeholders, its ``args`` (for MANY, a
    list of argument tuples), and what the generator wants back (``want``). For NEW_ID,
    ``id_column`` names the generated key (SQLite reads lastrowid, PostgreSQL RETURNING)."""

    __slots__ = ("sql", "args", "want", "id_column")

    def __init__(self, sql: str, args: Any = (), want: int = NOTHING, id_column: str = "") -> None:
        self.sql, self.args, self.want, self.id_column = sql, args, want, id_column


class Conflict(Exception):
    """A unique constraint refused a step. ``detail(statement, params)``: the text SQLAlchemy
    would give that error in MLflow's store on this dialect (MLflow passes it on in its
    messages); ``statements`` names the dialect's SQLAlchemy renderings of our statements."""

    def __init__(self, render: Any, statements: dict[str, Any]) -> None:
        super().__init__("unique constraint violated")
        self._render = render
        self.statements = statements

    def detail(self, statement: str, params: tuple) -> str:
        return self._render(self.statements[statement], params)


Steps = Generator[Step, Any, Any]


def steps(artifact_root: str, rec: tuple) -> Steps:
    """The statements of one lifecycle record; the generator's return value is the record's
    result (CREATE_EXPERIMENT: the new experiment's id as a string, else None)."""
    if rec[1] == ev.CREATE_EXPERIMENT:
        return _create_experiment(artifact_root, *rec[2:])
    return _HANDLERS[rec[1]](rec[1], *rec[2:])


def _experiment_stage(op: int, experiment_id: Any) -> Steps:
    """The experiment's stage, once the rules allow ``op`` on it (else their error is raised)."""
    row = yield Step(
        "SELECT lifecycle_stage FROM experiments WHERE experiment_id = ?", (int(experiment_id),), ROW
    )
    stage = None if row is None else row[0]
    refused = experiment_refusal(op, experiment_id, stage)
    if refused is not None:
        raise refused
    return stage


def _check_run(op: int, run_id: str) -> Steps:
    """Raise the rules' error if ``op`` may not touch the run as it is stored."""
    row = yield Step("SELECT lifecycle_stage FROM runs WHERE run_uuid = ?", (run_id,), ROW)
    refused = run_refusal(op, run_id, None if row is None else row[0])
    if refused is not None:
        raise refused


def _create_experiment(
    artifact_root: str, name: str, location: str | None, tags: Iterable[Sequence], created: int
) -> Steps:
    try:
        exp_id = yield Step(
            _INSERT_EXPERIMENT, (name, location, created, created), NEW_ID, "experiment_id"
        )
    except Conflict as conflict:
        params = (name, "default", location, "active", created, created)
        raise experiment_exists(name, conflict.detail("insert_experiment", params)) from None
    if not location:
        yield Step(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
            (artifact_location(artifact_root, exp_id), exp_id),
        )
    if tags:
        yield Step(_UPSERT_EXPERIMENT_TAG, [(k, v, exp_id) for k, v in tags], MANY)
    return str(exp_id)


def _delete_or_restore_experiment(op: int, experiment_id: Any, now: int) -> Steps:
    """Its runs go with it: deleted with it, restored with it."""
    yield from _experiment_stage(op, experiment_id)
    stage, deleted_time = (DELETED, now) if op == ev.DELETE_EXPERIMENT else (ACTIVE, None)
    exp = int(experiment_id)
    yield Step(
        "UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE experiment_id = ?",
        (stage, now, exp),
    )
    yield Step(
        "UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE experiment_id = ?",
        (stage, deleted_time, exp),
    )


def _rename_experiment(op: int, experiment_id: Any, new_name: str, now: int) -> Steps:
    yield from _experiment_stage(op, experiment_id)
    params = (new_name, now, int(experiment_id))
    try:
        yield Step(
            "UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?", params
        )
    except Conflict as conflict:
        raise rename_conflict(conflict.detail("rename_experiment", params)) from None


def _set_experiment_tag(op: int, experiment_id: Any, key: str, value: str) -> Steps:
    yield from _experiment_stage(op, experiment_id)
    yield Step(_UPSERT_EXPERIMENT_TAG, (key, value, int(experiment_id)))


def _delete_experiment_tag(op: int, experiment_id: Any, key: str) -> Steps:
    yield from _experiment_stage(op, experiment_id)
    deleted = yield Step(
        "DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?",
        (int(experiment_id), key),
        ROWCOUNT,
    )
    if deleted == 0:
        raise no_experiment_tag(experiment_id, key)


def _create_run(
    op: int,
    run_id: str,
    experiment_id: Any,
    user_id: str,
    start_time: int,
    tags: Iterable[Sequence],
    run_name: str | None,
) -> Steps:
    row = yield Step(
        "SELECT lifecycle_stage, artifact_location FROM experiments WHERE experiment_id = ?",
        (int(experiment_id),),
        ROW,
    )
    refused = experiment_refusal(op, experiment_id, None if row is None else row[0])
    if refused is not None:
        raise refused
    there = yield Step("SELECT 1 FROM runs WHERE run_uuid = ?", (run_id,), ROW)
    if there:
        return None  # a replayed record: the run is there already
    uri = run_artifact_uri(row[1], run_id)
    try:
        yield Step(_INSERT_RUN, (run_id, run_name, user_id, start_time, uri, int(experiment_id)))
    except Conflict:
        return None  # replayed by another process at the same moment: the run is there
    tag_rows = new_run_tags(run_id, tags, run_name)
    if tag_rows:
        yield Step(UPSERT_TAG, tag_rows, MANY)
    return None


def _update_run(op: int, run_id: str, status: str | None, end_time: int | None, run_name: str | None) -> Steps:
    yield from _check_run(op, run_id)
    sets, args = [], []
    if status is not None:
        sets.append("status = ?")
        args.append(status)
    if end_time is not None:
        sets.append("end_time = ?")
        args.append(end_time)
    if run_name:
        sets.append("name = ?")
        args.append(run_name)
        yield Step(UPSERT_TAG, (RUN_NAME_TAG, run_name, run_id))  # the name's mirror
    if sets:
        yield Step(f"UPDATE runs SET {', '.join(sets)} WHERE run_uuid = ?", (*args, run_id))


def _delete_or_restore_run(op: int, run_id: str, now: int | None = None) -> Steps:
    yield from _check_run(op, run_id)
    stage, deleted_time = (DELETED, now) if op == ev.DELETE_RUN else (ACTIVE, None)
    yield Step(
        "UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE run_uuid = ?",
        (stage, deleted_time, run_id),
    )


def _delete_tag(op: int, run_id: str, key: str) -> Steps:
    yield from _check_run(op, run_id)
    deleted = yield Step("DELETE FROM tags WHERE run_uuid = ? AND key = ?", (run_id, key), ROWCOUNT)
    if deleted == 0:
        raise no_run_tag(run_id, key)


_INSERT_DATASET = (
    "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, dataset_source_type,"
    " dataset_source, dataset_schema, dataset_profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_INPUT = (
    "INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id,"
    " step) VALUES (?, 'DATASET', ?, 'RUN', ?, 0)"
)


def _integrity(columns: str) -> MlflowException:
    """A unique key refused a log_inputs row: MLflow's session reports its IntegrityError as
    BAD_REQUEST (the rows of that call are not stored)."""
    return MlflowException(f"(IntegrityError) UNIQUE constraint failed: {columns}", BAD_REQUEST)


def _log_inputs(op: int, run_id: str, datasets: Sequence[Sequence]) -> Steps:
    """MLflow's SqlAlchemyStore.log_inputs: the run must exist and be active; inputs with the
    same (name, digest) count once (the first); a dataset already in the experiment under that
    (name, digest) is reused as it is; a run's link to a dataset is made once, with its tags."""
    row = yield Step("SELECT lifecycle_stage, experiment_id FROM runs WHERE run_uuid = ?", (run_id,), ROW)
    refused = run_refusal(op, run_id, None if row is None else row[0])
    if refused is not None:
        raise refused
    experiment_id = row[1]
    firsts: dict[tuple, Sequence] = {}
    for d in datasets:
        firsts.setdefault((d[2], d[3]), d)
    for key, d in firsts.items():
        dataset_uuid, input_uuid, name, digest, source_type, source, schema, profile, tags = d
        found = yield Step(
            "SELECT dataset_uuid FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?",
            (experiment_id, name, digest),
            ROW,
        )
        if found is not None:
            dataset_uuid = found[0]
        else:
            try:
                yield Step(
                    _INSERT_DATASET,
                    (dataset_uuid, experiment_id, name, digest, source_type, source, schema, profile),
                )
            except Conflict:  # stored by a concurrent log_inputs since the SELECT
                raise _integrity("datasets.experiment_id, datasets.name, datasets.digest") from None
        linked = yield Step(
            "SELECT 1 FROM inputs WHERE source_type = 'DATASET' AND source_id = ?"
            " AND destination_type = 'RUN' AND destination_id = ?",
            (dataset_uuid, run_id),
            ROW,
        )
        if linked is not None:
            continue
        try:
            yield Step(_INSERT_INPUT, (input_uuid, dataset_uuid, run_id))
        except Conflict:
            raise _integrity(
                "inputs.source_type, inputs.source_id, inputs.destination_type, inputs.destination_id"
            ) from None
        if tags:
            try:
                yield Step(
                    "INSERT INTO input_tags (input_uuid, name, value) VALUES (?, ?, ?)",
                    [(input_uuid, k, v) for k, v in tags],
                    MANY,
                )
            except Conflict as conflict:  # one key twice (a tag named like the context's)
                rows = [(input_uuid, k, v) for k, v in tags]
                if "insert_input_tags" not in conflict.statements:
                    raise _integrity("input_tags.input_uuid, input_tags.name") from None
                raise MlflowException(conflict.detail("insert_input_tags", rows), BAD_REQUEST) from None


_HANDLERS = {
    ev.DELETE_EXPERIMENT: _delete_or_restore_experiment,
    ev.RESTORE_EXPERIMENT: _delete_or_restore_experiment,
    ev.RENAME_EXPERIMENT: _rename_experiment,
    ev.SET_EXPERIMENT_TAG: _set_experiment_tag,
    ev.DELETE_EXPERIMENT_TAG: _delete_experiment_tag,
    ev.CREATE_RUN: _create_run,
    ev.UPDATE_RUN: _update_run,
    ev.DELETE_RUN: _delete_or_restore_run,
    ev.RESTORE_RUN: _delete_or_restore_run,
    ev.DELETE_TAG: _delete_tag,
    ev.LOG_INPUTS: _log_inputs,
}
