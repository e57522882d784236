"""MLflow 3.18's file format: create it in a new file, accept it in an existing one.

A new file gets the whole schema (71 tables at alembic revision f4a9b2c7d1e6, exactly what
MLflow 3.18 creates) and the ``Default`` experiment in one exclusive transaction, so processes
racing to create the same file all end up with one complete schema. A file that MLflow created
at that revision is used as it is; any other revision is refused with what to do about it.
"""

from __future__ import annotations

import sqlite3
import time
from importlib import resources

from ...exceptions import INVALID_PARAMETER_VALUE, MlflowException
from .._schema_rules import (  # check_revision, artifact_location: re-exported for access, writes
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    DEFAULT_WORKSPACE,
    SCHEMA_REVISION,
    artifact_location,
    check_revision,
)
from .connection import connect, retry_sync

PAGE_SIZE = 4096  # bytes, for the files this store creates (see _create)


def _schema_statements() -> list[str]:
    """The schema file split into statements (a trigger body holds semicolons of its own)."""
    text = resources.files(__package__).joinpath("schema.sql").read_text(encoding="utf-8")
    statements, current = [], []
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("--")):
            continue
        current.append(line)
        candidate = "\n".join(current)
        if sqlite3.complete_statement(candidate):
            statements.append(candidate)
            current = []
    return statements


def _revision(conn: sqlite3.Connection) -> str | None:
    """The alembic revision recorded in the file, or None for a file with no MLflow tables."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "alembic_version" not in tables:
        if tables:
            raise MlflowException(
                f"The file has tables ({', '.join(sorted(tables)[:5])}...) but no MLflow schema "
                "(no alembic_version table): it is not an MLflow tracking database. Point the "
                "tracking URI at a new file or at one MLflow 3.18 created.",
                INVALID_PARAMETER_VALUE,
            )
        return None
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


def ensure_schema(path: str, artifact_root: str) -> None:
    """Make ``path`` a tracking database at MLflow 3.18's revision, or refuse it."""
    conn = connect(path, create=True)
    try:
        revision = retry_sync(lambda: _revision(conn))
        if revision is None:
            retry_sync(lambda: _create(conn, artifact_root))
            revision = retry_sync(lambda: _revision(conn))
        check_revision(revision)  # a file refused here is left exactly as it was
        # WAL is a property of the file: set once, it stays. Switching needs a moment of
        # exclusivity, which the busy timeout and retry provide.
        mode = retry_sync(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        if str(mode).lower() != "wal":
            raise MlflowException(f"Could not put {path} in WAL journal mode (got {mode!r}).")
        # MLflow's store adds Default to a database that has none (`mlflow db upgrade` makes
        # none): so does asynctrack.
        if not retry_sync(lambda: conn.execute(_HAS_DEFAULT, (DEFAULT_EXPERIMENT_ID,)).fetchone()):
            retry_sync(lambda: _insert_default_experiment(conn, artifact_root, "INSERT OR IGNORE"))
    finally:
        conn.close()


_HAS_DEFAULT = "SELECT 1 FROM experiments WHERE experiment_id = ?"


def _insert_default_experiment(
    conn: sqlite3.Connection, artifact_root: str, insert: str = "INSERT"
) -> None:
    now = int(time.time() * 1000)
    conn.execute(
        f"{insert} INTO experiments (experiment_id, name, artifact_location, lifecycle_stage,"
        " creation_time, last_update_time, workspace) VALUES (?, ?, ?, 'active', ?, ?, "
        "'default')",
        (
            DEFAULT_EXPERIMENT_ID,
            DEFAULT_EXPERIMENT_NAME,
            artifact_location(artifact_root, DEFAULT_EXPERIMENT_ID),
            now,
            now,
        ),
    )


def _create(conn: sqlite3.Connection, artifact_root: str) -> None:
    # A page size is the file's own (any SQLite, MLflow's included, reads any size) and can
    # only be chosen before the first table exists; in a file another process has already
    # created this is a no-op. Every metric point goes into four B-trees (the table, its
    # primary key, two indexes); larger pages mean fewer levels and splits, but every commit
    # writes whole pages to the WAL. benchmarks/constants.py, each size against 4 KiB in the
    # same round, on Python 3.11, 3.12 and 3.13 alike: 8 KiB stores 1,000,000 async points
    # 2-7 % faster and log_batch the same, but makes a synchronous log_metric (MLflow's
    # default) ~1.4x slower; 16 KiB ~2x slower. 4 KiB, SQLite's default and MLflow's, it is.
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
    conn.execute("BEGIN EXCLUSIVE")
    try:
        if _revision(conn) is None:  # another process may have won the race while we waited
            for statement in _schema_statements():
                conn.execute(statement)
            conn.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (SCHEMA_REVISION,))
            conn.execute("INSERT INTO workspaces (name, description) VALUES (?, ?)", DEFAULT_WORKSPACE)
            _insert_default_experiment(conn, artifact_root)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite has already rolled back after SQLITE_FULL or IOERR
            conn.execute("ROLLBACK")
        raise

