"""PostgreSQL tracking URIs: the forms MLflow accepts, as one libpq URI both drivers take.

MLflow passes its URI to SQLAlchemy, so ``postgresql://`` and ``postgresql+<driver>://`` (e.g.
``+psycopg2``, ``+psycopg``, ``+pg8000``) all name the same database; asynctrack drops the
driver part. Whatever the URI leaves out comes from libpq's environment (PGHOST, PGPORT,
PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE, PGPASSFILE, ...), which psycopg (libpq itself) and
asyncpg both read. A password is never shown (``Store.shown_uri``).
"""

from __future__ import annotations

SCHEMES = ("postgresql", "postgres")


def libpq_uri(uri: str) -> str:
    """``uri`` without SQLAlchemy's ``+driver`` part: ``postgresql://...``."""
    scheme, rest = uri.split(":", 1)
    return "postgresql:" + rest if scheme.split("+", 1)[0].lower() in SCHEMES else uri
