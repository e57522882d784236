"""MLflow 3.18's PostgreSQL schema: create it in an empty database, accept it in one MLflow made.

An empty database gets exactly what MLflow 3.18's initialisation leaves on PostgreSQL
(schema.sql: 71 tables at alembic revision f4a9b2c7d1e6), the ``default`` workspace row its
alembic chain inserts, and, given an artifact root, the ``Default`` experiment, all in one
transaction: another process sees all of it or nothing. Processes racing to create it queue
on a transaction-scoped advisory lock and the losers find it made; a creator that takes no
such lock (MLflow itself) makes our CREATE fail on its tables, and we read its result instead.
A database that MLflow created at that revision is used as it is: opening it only reads
``alembic_version``. Any other revision is refused, naming ``mlflow db upgrade``.

psycopg (3) is imported only by :func:`ensure_schema_at`: ``import asynctrack`` must not need
the optional ``postgres`` extra.
"""

from __future__ import annotations

import time
from importlib import resources
from typing import TYPE_CHECKING

from ...exceptions import INVALID_PARAMETER_VALUE, MlflowException
from .._schema_rules import (
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    DEFAULT_WORKSPACE,
    SCHEMA_REVISION,
    artifact_location,
    check_revision,
)

from .errors import UNIQUE_VIOLATION

if TYPE_CHECKING:
    import psycopg

# pg_advisory_xact_lock's key for "creating the schema" (per database): b"asynctrk" as a bigint.
SCHEMA_LOCK_KEY = int.from_bytes(b"asynctrk", "big")
# What MLflow's alembic chain inserts besides the schema (its workspaces migration).
_DATA = (
    "INSERT INTO public.alembic_version (version_num) VALUES (%s)",
    "INSERT INTO public.workspaces (name, description) VALUES (%s, %s)",
)
# SQLSTATEs a CREATE raises when another session (one not taking our lock) has just made the
# same object: duplicate_table, duplicate_object, duplicate_function, unique_violation (a
# catalog unique index).
_RACE_STATES = {"42P07", "42710", "42723", UNIQUE_VIOLATION}


def schema_sql() -> str:
    """schema.sql: MLflow 3.18's DDL for PostgreSQL, as one script."""
    return resources.files(__package__).joinpath("schema.sql").read_text(encoding="utf-8")


def read_revision(conn: psycopg.Connection) -> tuple[bool, str | None]:
    """Whether the database has MLflow's schema (False: no tables at all), and the alembic
    revision it records (None where alembic_version is empty).

    A database with tables but no ``alembic_version`` is not MLflow's: refused, untouched."""
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    ]
    if "alembic_version" not in tables:
        if tables:
            raise MlflowException(
                f"The database has tables ({', '.join(tables[:5])}...) but no MLflow schema (no "
                "alembic_version table): it is not an MLflow tracking database. Point the "
                "tracking URI at an empty database or at one MLflow 3.18 created.",
                INVALID_PARAMETER_VALUE,
            )
        return False, None
    row = conn.execute("SELECT version_num FROM public.alembic_version").fetchone()
    return True, (row[0] if row else None)


def ensure_schema(conn: psycopg.Connection, artifact_root: str | None = None) -> None:
    """Make the database MLflow 3.18's tracking database, or refuse it (MlflowException).

    ``conn``: a psycopg connection with no transaction open (autocommit or not); each step runs
    in a transaction of its own, committed here. ``artifact_root``: where the Default
    experiment's artifacts go (``<root>/0``), for a database created here; None: no Default
    experiment (MLflow's alembic chain makes none; its store adds it, as asynctrack's will)."""
    from psycopg import pq

    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        raise ValueError("ensure_schema needs a connection with no transaction open")
    with conn.transaction():
        made, found = read_revision(conn)
    attempts = 3
    while not made:
        try:
            with conn.transaction():
                # read committed (whatever the server's default): the read after the lock
                # sees what the process that held it committed
                conn.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
                made, found = read_revision(conn)
                if not made:
                    _create(conn, artifact_root)
                    made, found = True, SCHEMA_REVISION
        except Exception as exc:  # noqa: BLE001 - only a creation race is retried
            attempts -= 1
            if getattr(exc, "sqlstate", None) not in _RACE_STATES or attempts == 0:
                raise
            time.sleep(0.2)  # the other creator commits; read what it made
            with conn.transaction():
                made, found = read_revision(conn)
    check_revision(found)  # a database refused here is left exactly as it was
    if artifact_root is not None:
        _ensure_default_experiment(conn, artifact_root)


def _ensure_default_experiment(conn: psycopg.Connection, artifact_root: str) -> None:
    """MLflow's store adds the Default experiment (id 0) to a database that has none (one
    ``mlflow db upgrade`` made, or whose Default was removed): so does asynctrack. A read-only
    database (a hot standby) is left alone: it shows what its primary has."""
    with conn.transaction():
        if conn.execute(
            "SELECT 1 FROM public.experiments WHERE experiment_id = %s", (DEFAULT_EXPERIMENT_ID,)
        ).fetchone():
            return
        read_only = conn.execute(
            "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'"
        ).fetchone()[0]
        if read_only:
            return
        now = int(time.time() * 1000)
        conn.execute(
            _INSERT_DEFAULT + " ON CONFLICT DO NOTHING",
            (
                DEFAULT_EXPERIMENT_ID,
                DEFAULT_EXPERIMENT_NAME,
                artifact_location(artifact_root, DEFAULT_EXPERIMENT_ID),
                now,
                now,
            ),
        )


_INSERT_DEFAULT = (
    "INSERT INTO public.experiments (experiment_id, name, artifact_location, "
    "lifecycle_stage, creation_time, last_update_time, workspace) "
    "VALUES (%s, %s, %s, 'active', %s, %s, 'default')"
)


def _create(conn: psycopg.Connection, artifact_root: str | None) -> None:
    # No parameters: psycopg sends the script with the simple query protocol, which runs
    # several statements (and the $$-quoted function body) in the open transaction.
    conn.execute(schema_sql())
    conn.execute(_DATA[0], (SCHEMA_REVISION,))
    conn.execute(_DATA[1], DEFAULT_WORKSPACE)
    if artifact_root is not None:
        now = int(time.time() * 1000)
        conn.execute(
            _INSERT_DEFAULT,
            (
                DEFAULT_EXPERIMENT_ID,
                DEFAULT_EXPERIMENT_NAME,
                artifact_location(artifact_root, DEFAULT_EXPERIMENT_ID),
                now,
                now,
            ),
        )


def ensure_schema_at(uri: str, artifact_root: str | None = None) -> None:
    """:func:`ensure_schema` over a connection of its own to ``uri`` (``postgresql://...``)."""
    try:
        import psycopg
    except ImportError as exc:
        raise MlflowException(
            f"Tracking URI {uri!r} needs the PostgreSQL driver: pip install 'asynctrack[postgres]'."
        ) from exc
    with psycopg.connect(uri, autocommit=True) as conn:
        ensure_schema(conn, artifact_root)
