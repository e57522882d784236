"""SQLite in MLflow 3.18's format: the only place that speaks SQL."""

from .store import SqliteStore

__all__ = ["SqliteStore"]
