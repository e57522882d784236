"""Which PostgreSQL errors mean the store, not one statement, is failing.

A store failure (the server gone or restarting, the connection killed, the database read-only
or out of disk, a statement timeout, a deadlock or serialization failure) leaves nothing of the
batch stored (its transaction is rolled back) and passes: the writer keeps the batch and tries
again (``StoreUnavailable``), or reruns the transaction at once after a deadlock. A statement's
own fault (a value too long for its column, a NUL in a string, a value the driver cannot
encode) fails the record(s) that caused it, while the rest of the batch is stored. Both
drivers (psycopg for reads, asyncpg for writes) are judged by SQLSTATE; asyncpg is imported
only where one of its errors can be met.
"""

from __future__ import annotations

import sys

# SQLSTATE classes that are never a record's fault: connection exception (08), transaction
# rollback (40: serialization failure, deadlock), insufficient resources (53: disk full, out
# of memory, too many connections), operator intervention (57: admin/crash shutdown, cannot
# connect now, query canceled by statement_timeout, database dropped), system error (58: I/O),
# configuration file error (F0), internal error (XX: data or index corrupted).
_FAILURE_CLASSES = frozenset({"08", "40", "53", "57", "58", "F0", "XX"})
# Single codes outside those classes: read-only transaction (hot standby, or
# default_transaction_read_only), a transaction already aborted, idle-in-transaction and
# transaction timeouts, a lock not granted within lock_timeout, an object in use, tables or the
# database gone (replaced under us), authentication refused.
_FAILURE_CODES = frozenset(
    {"25006", "25P02", "25P03", "25P04", "55P03", "55006", "42P01", "3D000", "28000", "28P01"}
)
READ_ONLY = "25006"
UNIQUE_VIOLATION = "23505"
RETRY_AT_ONCE = ("40001", "40P01")  # serialization failure, deadlock: rerun the transaction


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a psycopg or asyncpg error, else None."""
    state = getattr(exc, "sqlstate", None)
    return state if isinstance(state, str) else None


def _asyncpg():
    return sys.modules.get("asyncpg")  # only a process that wrote can meet its errors


def describe(exc: BaseException) -> str:
    """An error's text for a message: its first line (a driver's DETAIL and HINT lines
    follow it), or its class where it says nothing (a bare timeout)."""
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]


def is_store_failure(exc: BaseException) -> bool:
    """True if ``exc`` means the store (server, connection, transaction) is failing, not the
    statement: the whole batch must be kept and retried, none of its records failed."""
    asyncpg = _asyncpg()
    if asyncpg is not None:
        from asyncpg.exceptions import _base

        if isinstance(exc, _base.DataError):
            # The driver refused an argument before sending it (a str where a number goes):
            # the record's fault, the connection is fine (asyncpg's DataError is an
            # InterfaceError).
            return False
        if isinstance(exc, (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, _base.InternalClientError)):
            # InternalClientError: the protocol's state is lost, as when the server ended an
            # idle connection ("cannot switch to state 15; another operation (2) is in
            # progress" at the next BEGIN): the connection is dropped and a new one runs it.
            return True
    state = sqlstate(exc)
    if state is not None:
        return state[:2] in _FAILURE_CLASSES or state in _FAILURE_CODES
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return True  # a connection lost or refused: libpq gives it no SQLSTATE
    # OSError includes ConnectionError and (3.11+) TimeoutError
    return isinstance(exc, (OSError, TimeoutError, ConnectionError))


def is_statement_error(exc: BaseException) -> bool:
    """True when ``exc`` is a statement's (so some record's) fault: a PostgreSQL error that is
    not a store failure, or a value the driver could not encode (asyncpg raises TypeError or
    ValueError for those while building a COPY stream, DataError for a bound argument)."""
    if is_store_failure(exc):
        return False
    if sqlstate(exc) is not None:
        return True
    asyncpg = _asyncpg()
    if asyncpg is not None:
        from asyncpg.exceptions import _base

        if isinstance(exc, _base.DataError):
            return True
    return isinstance(exc, (TypeError, ValueError, OverflowError))
