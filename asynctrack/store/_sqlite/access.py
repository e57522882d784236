"""Opening the store's file: read-write when this process can write it, read-only when it
cannot, and an ``MlflowException`` that says what is wrong when it cannot be opened at all.

A database on a read-only mount, in an archive or made immutable can still be read: SQLite
opens it with ``mode=ro``. A WAL database needs a ``-shm`` file beside it even to be read;
where the directory cannot take one either, ``immutable=1`` reads the file alone, which is
right only if no committed transaction still waits in a ``-wal`` file (a process that ended
without its last checkpoint), and if nobody writes the file meanwhile (a WAL writer keeps a
``-shm`` beside it, so where there is none nobody is writing): a file with a non-empty ``-wal``
is refused rather than read without those transactions. Writes to a read-only store are refused by the store (see ``SqliteStore.apply``)
with the reason found here; asynchronous ones are kept by the writer as in any outage.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from dataclasses import dataclass

from ...exceptions import (
    INVALID_PARAMETER_VALUE,
    IO_ERROR,
    PERMISSION_DENIED,
    RESOURCE_EXHAUSTED,
    MlflowException,
)
from .connection import connect, retry_sync
from .schema import _revision, check_revision, ensure_schema

# SQLite's primary result codes met at open.
_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_IOERR = 3, 8, 10
_SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_AUTH, _SQLITE_NOTADB = 13, 14, 23, 26
_PERMISSION_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
_CODE_OF_MESSAGE = (
    ("unable to open", _SQLITE_CANTOPEN),
    ("readonly", _SQLITE_READONLY),
    ("disk is full", _SQLITE_FULL),
    ("not a database", _SQLITE_NOTADB),
    ("disk i/o", _SQLITE_IOERR),
)


@dataclass(frozen=True)
class Access:
    """How the store's connections open the file, and why writes are refused (None: they are
    not)."""

    mode: str  # a key of connection.OPEN_MODES
    read_only: str | None = None


def open_file(path: str, artifact_root: str) -> Access:
    """Make ``path`` ready: a writable file gets MLflow 3.18's schema (see ``ensure_schema``);
    a read-only one is checked and read as it is. Raises ``MlflowException`` for every way it
    cannot be opened."""
    _make_parent(path)
    try:
        reason = why_read_only(path)
        if reason is None:
            ensure_schema(path, artifact_root)
            return Access("rw")
        if not os.path.exists(path):
            raise MlflowException(
                f"Cannot create the tracking database {path}: {reason}.", PERMISSION_DENIED
            )
        return Access(_read_only_mode(path), reason)
    except MlflowException as exc:
        if exc.error_code == "TEMPORARILY_UNAVAILABLE":  # a lock that outlived every retry
            raise MlflowException(f"Cannot open {path}: {exc.message}", exc.error_code) from exc
        raise
    except (sqlite3.Error, OSError) as exc:
        raise open_error(path, exc) from exc


def _make_parent(path: str) -> None:
    """MLflow creates a missing directory for its database; so does asynctrack."""
    parent = os.path.dirname(path)
    if not parent:
        return
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        if exc.errno in _PERMISSION_ERRNOS:
            code = PERMISSION_DENIED
        elif exc.errno == errno.ENOSPC:
            code = RESOURCE_EXHAUSTED
        else:  # a file where a directory should be
            code = INVALID_PARAMETER_VALUE
        raise MlflowException(
            f"Cannot create the directory {parent} for the tracking database: {exc}.", code
        ) from exc


def why_read_only(path: str) -> str | None:
    """Why this process cannot write ``path`` (a reason to show), or None when it can. Asks the
    kernel, not the mode bits: root writes a 0444 file, nobody writes an immutable one or one
    on a read-only mount."""
    parent = os.path.dirname(path) or "."
    if os.path.exists(path):
        try:
            os.close(os.open(path, os.O_RDWR))
        except OSError as exc:
            if exc.errno in _PERMISSION_ERRNOS:
                return f"the file cannot be written ({os.strerror(exc.errno)})"
            raise
        version = _write_version(path)
        if version > 2:
            return f"SQLite only reads its file format (write version {version})"
        if _wal_files_writable(path):
            return None  # a WAL database whose -wal and -shm exist needs nothing new beside it
    if not os.access(parent, os.W_OK | os.X_OK):
        name = os.path.basename(path)
        return (
            f"its directory {parent} cannot be written, so SQLite cannot create the {name}-wal, "
            f"{name}-shm or {name}-journal files it needs beside it"
        )
    return None


def _write_version(path: str) -> int:
    """Byte 18 of an SQLite file's header: 1 (rollback journal) or 2 (WAL) for a file SQLite
    writes; above 2, SQLite opens it read-only (0 where it is not an SQLite file)."""
    with open(path, "rb") as f:
        header = f.read(19)
    return header[18] if len(header) == 19 and header.startswith(b"SQLite format 3\0") else 0


def _wal_files_writable(path: str) -> bool:
    return all(os.access(path + suffix, os.W_OK) for suffix in ("-wal", "-shm"))


def _read_only_mode(path: str) -> str:
    """"ro" if SQLite can read ``path`` read-only, else "immutable" if that reads all of it;
    checks the schema either way."""
    try:
        _check_schema(path, "ro")
        return "ro"
    except sqlite3.OperationalError as exc:
        if _primary(exc) != _SQLITE_CANTOPEN:
            raise
    # A WAL database in a directory that takes no -shm: only immutable=1 opens it, and that
    # reads the main file alone.
    wal = path + "-wal"
    if os.path.exists(wal) and os.path.getsize(wal) > 0:
        raise MlflowException(
            f"Cannot read {path}: it is read-only, and {wal} may hold transactions that are not "
            "in the database file yet; SQLite can only read them with a -shm file, which the "
            f"read-only directory {os.path.dirname(path)} cannot take. Open the database once "
            "where it can be written (or copy the file and its -wal elsewhere) so that SQLite "
            "checkpoints the WAL into it.",
            PERMISSION_DENIED,
        )
    _check_schema(path, "immutable")
    return "immutable"


def _check_schema(path: str, mode: str) -> None:
    conn = connect(path, mode=mode)
    try:
        check_revision(retry_sync(lambda: _revision(conn)))
    finally:
        conn.close()


def open_error(path: str, exc: BaseException) -> MlflowException:
    """``exc``, met while opening ``path``, as the MlflowException a user can act on."""
    primary = _primary(exc)
    os_errno = exc.errno if isinstance(exc, OSError) else None
    if primary == _SQLITE_FULL or os_errno == errno.ENOSPC or (
        primary == _SQLITE_IOERR and _disk_full(path)
    ):
        return MlflowException(
            f"Cannot open {path}: the disk is full ({exc}). Free some space and try again.",
            RESOURCE_EXHAUSTED,
        )
    if primary == _SQLITE_NOTADB:
        return MlflowException(
            f"Cannot open {path}: it is not an SQLite database ({exc}). Point the tracking URI "
            "at a new file or at a database MLflow created.",
            INVALID_PARAMETER_VALUE,
        )
    if primary in (_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_CANTOPEN, _SQLITE_AUTH) or (
        os_errno in _PERMISSION_ERRNOS
    ):
        return MlflowException(f"Cannot open {path}: {exc}.", PERMISSION_DENIED)
    return MlflowException(f"Cannot open {path}: {exc}.", IO_ERROR)


def _primary(exc: BaseException) -> int | None:
    """SQLite's primary result code of ``exc``, or None. Python >= 3.11 gives it; before, the
    message (SQLite's own text for the code) tells."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF
    if isinstance(exc, sqlite3.Error):
        message = str(exc).lower()
        for words, primary in _CODE_OF_MESSAGE:
            if words in message:
                return primary
    return None


def _disk_full(path: str) -> bool:
    """An I/O error at open on a full disk (SQLite then reports growing its -shm as I/O)."""
    try:
        st = os.statvfs(os.path.dirname(path) or ".")
    except OSError:
        return False
    free = st.f_bfree if os.geteuid() == 0 else st.f_bavail  # root may use the reserve
    return free == 0


__all__ = ["Access", "open_error", "open_file", "why_read_only"]
