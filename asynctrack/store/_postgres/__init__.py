"""PostgreSQL in MLflow 3.18's own schema (issue #16), so MLflow's client, server and UI share
the database with asynctrack.

schema.py creates the schema in an empty database exactly as MLflow's alembic chain leaves it,
accepts it where MLflow made it and refuses any other revision; store.py reads through psycopg 3
in the caller's thread and writes through asyncpg on the writer's loop. Both drivers are the
optional ``postgres`` extra, imported when a PostgreSQL store is opened, never by
``import asynctrack``.
"""

from typing import Any

__all__ = ["PostgresStore"]


def __getattr__(name: str) -> Any:
    # The store on first use: importing .schema (or .uri) must not load the write path.
    if name == "PostgresStore":
        from .store import PostgresStore

        return PostgresStore
    raise AttributeError(name)
