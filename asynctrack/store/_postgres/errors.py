"""Which PostgreSQL errors mean the store, not one statement, is failing.

A store failure (the server gone or restarting, the connection killed, the database read-only
or out of disk, a statement timeout, a deadlock or serialization failure) leaves nothing of the
batch stored (its transaction is rolled back) and passes: the writer keeps the batch and tries
again (``StoreUnavailable``). Any other error belongs to the record that caused it, which fails
alone with an ``MlflowException``.
"""

from __future__ import annotations

# SQLSTATE classes and codes of store failures: 08 connection exception, 53 insufficient
# resources (disk full, out of memory, too many connections), 57 operator intervention
# (admin/crash shutdown, cannot connect now, query canceled by statement_timeout), 58 system
# error (I/O), 40 transaction rollback (deadlock, serialization), 25006 read-only transaction,
# XX internal error.
_FAILURE_CLASSES = ("08", "53", "57", "58", "40", "XX")
READ_ONLY = "25006"
RETRY_AT_ONCE = ("40001", "40P01")  # serialization failure, deadlock: retry the transaction


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a psycopg or asyncpg error, else None."""
    state = getattr(exc, "sqlstate", None)
    return state if isinstance(state, str) else None


def is_store_failure(exc: BaseException) -> bool:
    """True if ``exc`` means the store failed (see the module), not the statement."""
    state = sqlstate(exc)
    if state is not None:
        return state == READ_ONLY or state[:2] in _FAILURE_CLASSES
    if isinstance(exc, (OSError, TimeoutError, ConnectionError)):
        return True
    try:
        import asyncpg
    except ImportError:
        return False
    return isinstance(exc, (asyncpg.InterfaceError, asyncpg.PostgresConnectionError))
