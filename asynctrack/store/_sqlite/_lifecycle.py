"""Lifecycle records (experiments and runs created, deleted, restored, renamed, tagged), applied
one at a time: the SQL that reads what MLflow's rules (``_sql.rules``) decide on and writes
what they allow. Each runs inside the batch's transaction, in a savepoint of its own (see
connection.isolated): an error it raises undoes its writes only.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ... import events as ev
from .._sql.rules import (
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
    sqlalchemy_error_text,
)
from ._bulk import UPSERT_TAG
from .schema import artifact_location

# The statements MLflow's SQLAlchemy models issue, as SQLAlchemy quotes them in its errors.
_INSERT_EXPERIMENT_AS_SQLALCHEMY = (
    "INSERT INTO experiments (name, workspace, artifact_location, lifecycle_stage, creation_time, "
    "last_update_time) VALUES (?, ?, ?, ?, ?, ?)"
)
_RENAME_EXPERIMENT_AS_SQLALCHEMY = (
    "UPDATE experiments SET name=?, last_update_time=? WHERE experiments.experiment_id = ?"
)


def apply(conn: sqlite3.Connection, artifact_root: str, rec: tuple) -> Any:
    """Apply one lifecycle record; its result (CREATE_EXPERIMENT: the new id), or raise."""
    if rec[1] == ev.CREATE_EXPERIMENT:
        return _create_experiment(conn, artifact_root, *rec[2:])
    return _HANDLERS[rec[1]](conn, rec[1], *rec[2:])


def _experiment_stage(conn, op: int, experiment_id) -> str:
    """The experiment's stage, once the rules allow ``op`` on it (else their error is raised)."""
    row = conn.execute(
        "SELECT lifecycle_stage FROM experiments WHERE experiment_id = ?", (int(experiment_id),)
    ).fetchone()
    stage = None if row is None else row[0]
    refused = experiment_refusal(op, experiment_id, stage)
    if refused is not None:
        raise refused
    return stage


def _check_run(conn, op: int, run_id: str) -> None:
    """Raise the rules' error if ``op`` may not touch the run as it is stored."""
    row = conn.execute("SELECT lifecycle_stage FROM runs WHERE run_uuid = ?", (run_id,)).fetchone()
    refused = run_refusal(op, run_id, None if row is None else row[0])
    if refused is not None:
        raise refused


def _create_experiment(conn, artifact_root, name, location, tags, created) -> str:
    try:
        cur = conn.execute(
            "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time,"
            " last_update_time) VALUES (?, ?, 'active', ?, ?)",
            (name, location, created, created),
        )
    except sqlite3.IntegrityError as exc:
        params = (name, "default", location, "active", created, created)
        raise experiment_exists(
            name, sqlalchemy_error_text("sqlite3", exc, _INSERT_EXPERIMENT_AS_SQLALCHEMY, params)
        ) from None
    exp_id = cur.lastrowid
    if not location:
        conn.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
            (artifact_location(artifact_root, exp_id), exp_id),
        )
    if tags:
        conn.executemany(
            "INSERT OR REPLACE INTO experiment_tags (key, value, experiment_id) VALUES (?, ?, ?)",
            [(k, v, exp_id) for k, v in tags],
        )
    return str(exp_id)


def _delete_or_restore_experiment(conn, op, experiment_id, now) -> None:
    """Its runs go with it: deleted with it, restored with it."""
    _experiment_stage(conn, op, experiment_id)
    stage, deleted_time = (DELETED, now) if op == ev.DELETE_EXPERIMENT else (ACTIVE, None)
    exp = int(experiment_id)
    conn.execute(
        "UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE experiment_id = ?",
        (stage, now, exp),
    )
    conn.execute(
        "UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE experiment_id = ?",
        (stage, deleted_time, exp),
    )


def _rename_experiment(conn, op, experiment_id, new_name, now) -> None:
    _experiment_stage(conn, op, experiment_id)
    try:
        conn.execute(
            "UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?",
            (new_name, now, int(experiment_id)),
        )
    except sqlite3.IntegrityError as exc:
        params = (new_name, now, int(experiment_id))
        raise rename_conflict(
            sqlalchemy_error_text("sqlite3", exc, _RENAME_EXPERIMENT_AS_SQLALCHEMY, params)
        ) from None


def _set_experiment_tag(conn, op, experiment_id, key, value) -> None:
    _experiment_stage(conn, op, experiment_id)
    conn.execute(
        "INSERT INTO experiment_tags (key, value, experiment_id) VALUES (?, ?, ?) "
        "ON CONFLICT (key, experiment_id) DO UPDATE SET value = excluded.value",
        (key, value, int(experiment_id)),
    )


def _delete_experiment_tag(conn, op, experiment_id, key) -> None:
    _experiment_stage(conn, op, experiment_id)
    cur = conn.execute(
        "DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?",
        (int(experiment_id), key),
    )
    if cur.rowcount == 0:
        raise no_experiment_tag(experiment_id, key)


def _create_run(conn, op, run_id, experiment_id, user_id, start_time, tags, run_name) -> None:
    row = conn.execute(
        "SELECT lifecycle_stage, artifact_location FROM experiments WHERE experiment_id = ?",
        (int(experiment_id),),
    ).fetchone()
    refused = experiment_refusal(op, experiment_id, None if row is None else row[0])
    if refused is not None:
        raise refused
    if conn.execute("SELECT 1 FROM runs WHERE run_uuid = ?", (run_id,)).fetchone():
        return  # a replayed record: the run is there already
    conn.execute(
        "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id,"
        " status, start_time, end_time, source_version, lifecycle_stage, artifact_uri,"
        " experiment_id, deleted_time) VALUES (?, ?, 'UNKNOWN', '', '', ?, 'RUNNING', ?, NULL,"
        " '', 'active', ?, ?, NULL)",
        (run_id, run_name, user_id, start_time, run_artifact_uri(row[1], run_id), int(experiment_id)),
    )
    tag_rows = new_run_tags(run_id, tags, run_name)
    if tag_rows:
        conn.executemany(UPSERT_TAG, tag_rows)


def _update_run(conn, op, run_id, status, end_time, run_name) -> None:
    _check_run(conn, op, run_id)
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
        conn.execute(UPSERT_TAG, (RUN_NAME_TAG, run_name, run_id))  # the name's mirror
    if sets:
        conn.execute(f"UPDATE runs SET {', '.join(sets)} WHERE run_uuid = ?", (*args, run_id))


def _delete_or_restore_run(conn, op, run_id, now=None) -> None:
    _check_run(conn, op, run_id)
    stage, deleted_time = (DELETED, now) if op == ev.DELETE_RUN else (ACTIVE, None)
    conn.execute(
        "UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE run_uuid = ?",
        (stage, deleted_time, run_id),
    )


def _delete_tag(conn, op, run_id, key) -> None:
    _check_run(conn, op, run_id)
    cur = conn.execute("DELETE FROM tags WHERE run_uuid = ? AND key = ?", (run_id, key))
    if cur.rowcount == 0:
        raise no_run_tag(run_id, key)


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
}
