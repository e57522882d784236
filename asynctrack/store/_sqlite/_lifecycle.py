"""Lifecycle records on sqlite3: runs the statements of the shared ``_sql.lifecycle`` (MLflow's
rules and SQL, written once for every SQL store) on the batch's connection. Each record runs in
a savepoint of its own (see connection.isolated): an error it raises undoes its writes only.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .._sql import lifecycle
from .._sql.lifecycle import MANY, NEW_ID, ROW, ROWCOUNT, Conflict
from .._sql.rules import sqlalchemy_error_text

# The statements MLflow's SQLAlchemy models issue, as SQLAlchemy quotes them in its errors.
_AS_SQLALCHEMY = {
    "insert_experiment": (
        "INSERT INTO experiments (name, workspace, artifact_location, lifecycle_stage, "
        "creation_time, last_update_time) VALUES (?, ?, ?, ?, ?, ?)"
    ),
    "rename_experiment": (
        "UPDATE experiments SET name=?, last_update_time=? WHERE experiments.experiment_id = ?"
    ),
    "insert_input_tags": "INSERT INTO input_tags (input_uuid, name, value) VALUES (?, ?, ?)",
}


def apply(conn: sqlite3.Connection, artifact_root: str, rec: tuple) -> Any:
    """Apply one lifecycle record; its result (CREATE_EXPERIMENT: the new id), or raise."""
    gen = lifecycle.steps(artifact_root, rec)
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = gen.send(reply) if error is None else gen.throw(error)
        except StopIteration as done:
            return done.value
        error = None
        try:
            reply = _run(conn, step)
        except sqlite3.IntegrityError as exc:
            reply, error = None, Conflict(
                lambda statement, params, exc=exc: sqlalchemy_error_text("sqlite3", exc, statement, params),
                _AS_SQLALCHEMY,
            )


def _run(conn: sqlite3.Connection, step: lifecycle.Step) -> Any:
    if step.want == MANY:
        conn.executemany(step.sql, step.args)
        return None
    cur = conn.execute(step.sql, step.args)
    if step.want == ROW:
        return cur.fetchone()
    if step.want == ROWCOUNT:
        return cur.rowcount
    if step.want == NEW_ID:
        return cur.lastrowid
    return None
