"""What every SQL store accepts, whatever the dialect: MLflow 3.18's alembic revision.

asynctrack reads and writes MLflow's own schema (SQLite and PostgreSQL alike), at exactly one
revision; a database at any other revision is refused with what to do about it, in one wording
for all dialects.
"""

from __future__ import annotations

from ..exceptions import MlflowException

SCHEMA_REVISION = "f4a9b2c7d1e6"
# The row MLflow's workspaces migration (1b5f0d9ad7c1) inserts: (name, description).
DEFAULT_EXPERIMENT_ID = 0
DEFAULT_EXPERIMENT_NAME = "Default"
DEFAULT_WORKSPACE = ("default", "Default workspace for legacy resources")


def check_revision(revision: str | None) -> None:
    """Refuse a database whose alembic revision is not MLflow 3.18's (naming `mlflow db upgrade`)."""
    if revision != SCHEMA_REVISION:
        raise MlflowException(
            f"Detected out-of-date database schema (found version {revision}, but expected "
            f"{SCHEMA_REVISION}). asynctrack reads and writes MLflow 3.18's schema. If the "
            "database comes from an older MLflow, take a backup of it, then run 'mlflow db "
            "upgrade <database_uri>' with MLflow 3.18 to migrate it to that schema; if it comes "
            "from a newer MLflow, asynctrack cannot use it (use that MLflow with it)."
        )


def artifact_location(artifact_root: str, experiment_id: int | str) -> str:
    """Where an experiment's artifacts go by default: MLflow's ``<root>/<id>``."""
    return f"{artifact_root.rstrip('/')}/{experiment_id}"
