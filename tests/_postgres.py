"""A real PostgreSQL for the tests: one throwaway server a session, one fresh database a test.

The server comes from scripts/postgres.sh (the same script a developer or CI uses by hand), or
is the one named by ASYNCTRACK_TEST_POSTGRES_URI (a superuser URI; databases are created and
dropped in it). Where PostgreSQL or the psycopg driver is missing, the tests that use these
fixtures skip with one line saying what to install. No mocks, no SQLite stand-in.

Also here: MLflow 3.18 initialising a database (the oracle, through psycopg2), pg_dump of a
database, and the generator of asynctrack/store/_postgres/schema.sql from MLflow's dump:
``python -m tests._postgres`` rewrites that file (run it when the oracle's MLflow changes).
"""

from __future__ import annotations

import contextlib
import functools
import glob
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests import oracle

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "postgres.sh"
SCHEMA_SQL = ROOT / "asynctrack" / "store" / "_postgres" / "schema.sql"
URI_VAR = "ASYNCTRACK_TEST_POSTGRES_URI"

NO_POSTGRES = "PostgreSQL not found (initdb): the PostgreSQL tests need Debian's postgresql"
NO_PSYCOPG = "psycopg 3 not installed: the PostgreSQL tests need pip install -e '.[postgres]'"


def bindir() -> Path | None:
    """Where the PostgreSQL binaries are, found as scripts/postgres.sh finds them."""
    if os.environ.get("PG_BINDIR"):  # PG_BINDIR=/nowhere shows what a machine without it does
        named = Path(os.environ["PG_BINDIR"])
        return named if (named / "initdb").exists() else None
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


REQUIRE_VAR = "ASYNCTRACK_REQUIRE_POSTGRES"  # set by .ci/run: CI must run these tests


def _skip(reason: str):
    """Skip with ``reason``, or fail where PostgreSQL is required (CI): a CI run without it
    would pass without having run the PostgreSQL tests."""
    if os.environ.get(REQUIRE_VAR):
        pytest.fail(f"{reason} ({REQUIRE_VAR} is set)")
    pytest.skip(reason)


def _require_psycopg():
    try:
        import psycopg
    except ImportError:
        _skip(NO_PSYCOPG)
    return psycopg


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URI of a PostgreSQL superuser connection (to database ``postgres``) for this session.

    The server is stopped and its folder deleted at the end of the session; should the session
    be killed first, the script's watcher (ASYNCTRACK_POSTGRES_WATCH_PID) stops it."""
    external = os.environ.get(URI_VAR)
    if external:
        yield external
        return
    if bindir() is None:
        _skip(NO_POSTGRES)
    if os.geteuid() == 0 and subprocess.run(["id", "postgres"], capture_output=True).returncode:
        _skip("PostgreSQL tests: running as root and no 'postgres' OS user to run initdb as")
    env = dict(os.environ, ASYNCTRACK_POSTGRES_WATCH_PID=str(os.getpid()))
    proc = subprocess.run(
        ["bash", str(SCRIPT), "start"], capture_output=True, text=True, env=env, timeout=120
    )
    if proc.returncode != 0:  # PostgreSQL is here but would not start: a failure, not a skip
        pytest.fail(f"scripts/postgres.sh start failed (rc={proc.returncode}):\n{proc.stderr}")
    uri, folder = proc.stdout.split()
    try:
        yield uri
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", folder], capture_output=True, timeout=60)


def with_database(uri: str, database: str) -> str:
    """``uri`` pointing at another database of the same server."""
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(path="/" + database))


@contextlib.contextmanager
def fresh_database(server_uri: str, template: str | None = None) -> Iterator[str]:
    """A new database on the server (a copy of ``template`` if named, else empty): its URI; it
    is dropped afterwards, whatever connections are still open to it."""
    psycopg = _require_psycopg()
    name = f"asynctrack_test_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(server_uri, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield with_database(server_uri, name)
    finally:
        with psycopg.connect(server_uri, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_db(postgres_server: str) -> Iterator[str]:
    """A new, empty database for this test alone (dropped afterwards): its URI."""
    with fresh_database(postgres_server) as uri:
        yield uri


@pytest.fixture(scope="session")
def postgres_template(postgres_server: str) -> Iterator[str]:
    """A database holding MLflow 3.18's schema and the Default experiment, made once a session:
    its name. Copying it (``CREATE DATABASE ... TEMPLATE``, :func:`tracking_database`) takes a
    few tens of milliseconds where creating the 71 tables takes several hundred."""
    psycopg = _require_psycopg()
    from asynctrack.store._postgres.schema import ensure_schema_at

    name = f"asynctrack_template_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        ensure_schema_at(with_database(postgres_server, name), "/template-artifact-root")
        yield name
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def tracking_database(server_uri: str, template: str, artifact_root: str) -> Iterator[str]:
    """A new tracking database, as asynctrack creates one for a store whose artifact root is
    ``artifact_root`` (Default's location and times are this database's own), copied from
    :func:`postgres_template`'s: its URI; dropped afterwards."""
    import time

    from asynctrack.store._schema_rules import artifact_location

    psycopg = _require_psycopg()
    with fresh_database(server_uri, template) as uri:
        now = int(time.time() * 1000)
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute(
                "UPDATE experiments SET artifact_location = %s, creation_time = %s, "
                "last_update_time = %s WHERE experiment_id = 0",
                (artifact_location(artifact_root, "0"), now, now),
            )
        yield uri


@contextlib.contextmanager
def mlflow_template(server_uri: str, artifact_root: str) -> Iterator[str]:
    """A database that MLflow 3.18 itself initialised (its alembic chain, then Default, with
    its artifacts under ``artifact_root``), to copy with :func:`fresh_database`: its name.
    The differential tests start both sides on copies of it, so that asynctrack also opens and
    writes a database MLflow made."""
    psycopg = _require_psycopg()
    name = f"asynctrack_mlflow_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_uri, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        mlflow_initialise(with_database(server_uri, name), artifact_root)
        yield name
    finally:
        with psycopg.connect(server_uri, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_dump(uri: str, *args: str) -> str:
    """pg_dump's text for the database at ``uri`` (e.g. ``--schema-only``), owner-free.

    Normalised in one way only: pg_dump (15.14 on) brackets its output with ``\\restrict KEY``
    and ``\\unrestrict KEY`` lines, KEY random on every run; those two lines are dropped. Both
    sides of a comparison are dumped from the same server by the same pg_dump, so nothing else
    (version header, SET lines) can differ but what the databases hold."""
    directory = bindir()
    exe = directory / "pg_dump" if directory else shutil.which("pg_dump")
    if exe is None or not Path(exe).exists():
        _skip("pg_dump not found: the schema comparisons need PostgreSQL's client binaries")
    proc = subprocess.run(
        [str(exe), "--no-owner", "--no-privileges", *args, "--dbname", uri],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise AssertionError(f"pg_dump failed: {proc.stderr}")
    return "".join(
        line
        for line in proc.stdout.splitlines(keepends=True)
        if not line.startswith(("\\restrict ", "\\unrestrict "))
    )


def oracle_postgres_uri(uri: str) -> str:
    """``uri`` as MLflow (the oracle) opens it, through psycopg2; skips where the oracle lacks
    psycopg2 or is missing."""
    py = oracle.oracle_python()
    if py is None:
        pytest.skip("MLflow 3.18 oracle not installed (.venv-oracle)")
    if not _oracle_has_psycopg2(py):
        pytest.skip("psycopg2 not installed in the MLflow oracle (.venv-oracle): pip install psycopg2-binary")
    return uri.replace("postgresql://", "postgresql+psycopg2://", 1)


@functools.lru_cache(maxsize=None)
def _oracle_has_psycopg2(py: str) -> bool:
    return subprocess.run([py, "-c", "import psycopg2"], capture_output=True).returncode == 0


def mlflow_initialise(uri: str, artifact_root: str) -> None:
    """MLflow 3.18 itself opens the database at ``uri`` (its SqlAlchemyStore: the whole alembic
    chain on an empty database, then the Default experiment), through psycopg2 in the oracle."""
    mlflow_uri = oracle_postgres_uri(uri)
    oracle.run(
        """
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
        store = SqlAlchemyStore(ARGS["uri"], ARGS["root"])
        store.engine.dispose()
        _out(True)
        """,
        uri=mlflow_uri,
        root=artifact_root,
    )


HEADER = """\
-- MLflow 3.18's PostgreSQL schema (alembic revision f4a9b2c7d1e6), exactly as MLflow's own
-- initialisation leaves it (create_all, then its whole alembic chain): tables, types,
-- constraints, indexes, sequences, one trigger and its function. Generated, do not edit:
-- `python -m tests._postgres` reads it from `pg_dump --schema-only` of a database that
-- MLflow 3.18 initialised (comments, SET lines and \\restrict lines removed; every name is
-- qualified with public.), and tests/test_postgres_schema.py checks that a database made from
-- this file dumps the same. asynctrack/store/_postgres/schema.py runs it in one transaction.
"""


# pg_dump's text of `varchar_col IN ('a', 'b')`: ((col)::text = ANY ((ARRAY['a'::character
# varying, 'b'::character varying])::text[]))
_VARCHAR_IN = re.compile(r"\(\((\w+)\)::text = ANY \(\(ARRAY\[((?:'[^']*'::character varying(?:, )?)+)\]\)::text\[\]\)\)")


def _as_in_list(match: re.Match) -> str:
    values = re.findall(r"'[^']*'", match.group(2))
    return f"({match.group(1)} IN ({', '.join(values)}))"


def schema_sql_from_dump(dump: str) -> str:
    """schema.sql's text from MLflow's ``pg_dump --schema-only``: its statements only.

    Dropped: comment lines, pg_dump's session settings (SET, set_config of search_path: they
    would outlive the script on the caller's connection, and every name is qualified) and the
    \\restrict lines. Runs of blank lines become one. Rewritten: a CHECK that a varchar column is
    one of a list (SQLAlchemy's ``col IN ('a', 'b')`` for a non-native Enum), which pg_dump
    prints in a form that PostgreSQL would store as another expression (ARRAY[('a'::varchar)::
    text, ...] instead of (ARRAY['a'::varchar, ...])::text[]), goes back to the IN list."""
    out: list[str] = []
    for line in dump.splitlines():
        if line.startswith(("--", "SET ", "SELECT pg_catalog.set_config(", "\\restrict", "\\unrestrict")):
            continue
        line = _VARCHAR_IN.sub(_as_in_list, line)
        if not line.strip() and (not out or not out[-1].strip()):
            continue
        out.append(line)
    while out and not out[-1].strip():
        out.pop()
    return HEADER + "\n" + "\n".join(out) + "\n"


def _write_schema() -> int:
    """Start a server, let MLflow initialise a database in it, write schema.sql from its dump."""
    import tempfile

    proc = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, check=True)
    uri, folder = proc.stdout.split()
    try:
        psycopg = __import__("psycopg")
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute("CREATE DATABASE mlflow_schema")
        target = with_database(uri, "mlflow_schema")
        with tempfile.TemporaryDirectory() as root:
            mlflow_initialise(target, root)
        SCHEMA_SQL.write_text(schema_sql_from_dump(pg_dump(target, "--schema-only")), encoding="utf-8")
        print(f"wrote {SCHEMA_SQL.relative_to(ROOT)}")
        return 0
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", folder], capture_output=True)


if __name__ == "__main__":
    sys.exit(_write_schema())
