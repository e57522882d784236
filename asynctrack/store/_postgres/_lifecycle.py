"""Lifecycle records on asyncpg: runs the statements of the shared ``_sql.lifecycle`` (MLflow's
rules and SQL, written once for every SQL store), each record in a savepoint of its own so that
an error it raises undoes its writes only."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ... import events as ev
from ...exceptions import INTERNAL_ERROR, MlflowException
from .._sql import lifecycle
from .._sql.lifecycle import MANY, NEW_ID, ROW, ROWCOUNT, Conflict
from .errors import UNIQUE_VIOLATION, is_store_failure, sqlstate

if TYPE_CHECKING:
    import asyncpg

# MLflow's SQLAlchemy statements on PostgreSQL, as SQLAlchemy quotes them in its errors.
# Each with the names of its bound parameters (SQLAlchemy shows them as a dict here).
_AS_SQLALCHEMY = {
    "insert_experiment": (
        "INSERT INTO experiments (name, workspace, artifact_location, lifecycle_stage, "
        "creation_time, last_update_time) VALUES (%(name)s, %(workspace)s, "
        "%(artifact_location)s, %(lifecycle_stage)s, %(creation_time)s, %(last_update_time)s) "
        "RETURNING experiments.experiment_id",
        ("name", "workspace", "artifact_location", "lifecycle_stage", "creation_time", "last_update_time"),
    ),
    "rename_experiment": (
        "UPDATE experiments SET name=%(name)s, last_update_time=%(last_update_time)s "
        "WHERE experiments.experiment_id = %(experiments_experiment_id)s",
        ("name", "last_update_time", "experiments_experiment_id"),
    ),
}
_numbered: dict[str, str] = {}


def numbered(sql: str) -> str:
    """``sql`` with its ``?`` placeholders numbered as PostgreSQL's ``$1, $2, ...``."""
    out = _numbered.get(sql)
    if out is None:
        parts = sql.split("?")
        out = parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], 1))
        _numbered[sql] = out
    return out


class _Undo(Exception):
    """Roll the record's savepoint back although it ended well (a conflict it got past)."""


async def apply(conn: asyncpg.Connection, artifact_root: str, rec: tuple) -> Any:
    """Apply one lifecycle record in a savepoint; its result, or its MlflowException (a store
    failure goes up, for the whole batch to be retried)."""
    try:
        async with conn.transaction():
            result, conflicted = await _run_steps(conn, artifact_root, rec)
            if conflicted:
                raise _Undo(result)
    except _Undo as undo:
        return undo.args[0]
    except MlflowException as exc:
        return exc
    except Exception as exc:
        if is_store_failure(exc) or sqlstate(exc) is None:
            raise
        return MlflowException(f"PostgreSQL error: {exc}", INTERNAL_ERROR)
    return result


def sqlite_text(value: Any) -> Any:
    """``value`` as MLflow's SQLite store keeps it in a text column (SQLite's text affinity:
    ``1`` -> ``'1'``, ``True`` -> ``'1'``, ``2.5`` -> ``'2.5'``, ``1e20`` -> ``'1.0e+20'``,
    NaN -> NULL), for asyncpg, which binds only text there: ``create_run(tags={"k": 1})`` reads
    back the same from both SQL stores. Floats are written as SQLite 3.40 writes them
    (``%!.15g``)."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, (bool, int)):
        return str(int(value))
    if isinstance(value, float):
        if value != value:
            return None
        if value in (math.inf, -math.inf):
            return "Inf" if value > 0 else "-Inf"
        if value == 0:
            return "0.0"
        mantissa, e, exponent = ("%.15g" % value).partition("e")
        if "." not in mantissa:
            mantissa += ".0"
        return mantissa + e + exponent
    return str(value)


def _as_texts(rec: tuple) -> tuple:
    """The free-form values of a CREATE_RUN or CREATE_EXPERIMENT record (tag values, the user,
    the run name) as text (see :func:`sqlite_text`); other records carry text already."""
    op = rec[1]
    if op == ev.CREATE_RUN:  # (..., run_id, experiment_id, user_id, start_time, tags, run_name)
        tags = [(k, sqlite_text(v)) for k, v in rec[6]]
        return (*rec[:4], sqlite_text(rec[4]), rec[5], tags, sqlite_text(rec[7]), *rec[8:])
    if op == ev.CREATE_EXPERIMENT:  # (..., name, location, tags, created)
        return (*rec[:4], [(k, sqlite_text(v)) for k, v in rec[4]], *rec[5:])
    return rec


async def _run_steps(conn: asyncpg.Connection, artifact_root: str, rec: tuple) -> tuple[Any, bool]:
    gen = lifecycle.steps(artifact_root, _as_texts(rec))
    reply: Any = None
    error: BaseException | None = None
    conflicted = False
    while True:
        try:
            step = gen.send(reply) if error is None else gen.throw(error)
        except StopIteration as done:
            return done.value, conflicted
        error = None
        try:
            reply = await _run(conn, step)
        except Exception as exc:
            if sqlstate(exc) != UNIQUE_VIOLATION:
                raise
            # The transaction is aborted until the savepoint is rolled back: no more steps
            # may run (each conflict handler raises or returns).
            conflicted = True
            reply, error = None, Conflict(lambda stmt, params, exc=exc: _sqlalchemy_text(exc, stmt, params), _AS_SQLALCHEMY)


async def _run(conn: asyncpg.Connection, step: lifecycle.Step) -> Any:
    sql = numbered(step.sql)
    if step.want == MANY:
        await conn.executemany(sql, step.args)
        return None
    if step.want == ROW:
        return await conn.fetchrow(sql, *step.args)
    if step.want == NEW_ID:
        return await conn.fetchval(f"{sql} RETURNING {step.id_column}", *step.args)
    status = await conn.execute(sql, *step.args)
    if step.want == ROWCOUNT:
        return int(status.rsplit(" ", 1)[-1])
    return None


def _sqlalchemy_text(exc: BaseException, statement: tuple[str, tuple[str, ...]], params: tuple) -> str:
    """What SQLAlchemy over psycopg2 (MLflow's driver on PostgreSQL) says of a unique violation."""
    detail = getattr(exc, "detail", None)
    message = getattr(exc, "message", None) or str(exc)
    message = f"{message}\nDETAIL:  {detail}\n" if detail else f"{message}\n"
    sql, names = statement
    return (
        f"(psycopg2.errors.UniqueViolation) {message}\n[SQL: {sql}]\n"
        f"[parameters: {dict(zip(names, params))!r}]\n"
        "(Background on this error at: https://sqlalche.me/e/21/gkpj)"
    )
