"""MLflow 3.18's PostgreSQL schema (issue #16), against a real PostgreSQL and MLflow itself.

A database asynctrack creates dumps (pg_dump --schema-only) exactly as one MLflow initialised;
opening one MLflow made changes nothing; another revision is refused naming `mlflow db
upgrade`; processes racing to create the schema in one empty database make it once.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asynctrack.exceptions import MlflowException
from asynctrack.store._postgres import schema
from tests._postgres import (  # noqa: F401 (fixtures)
    ROOT,
    SCHEMA_SQL,
    SCRIPT,
    bindir,
    fresh_database,
    mlflow_initialise,
    pg_dump,
    postgres_db,
    postgres_server,
    schema_sql_from_dump,
)

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 not installed: pip install -e '.[postgres]'")

ROOT_DIR = "/tmp/asynctrack-artifacts"  # artifact root for the Default experiment, both sides


@pytest.fixture(scope="module")
def mlflow_template(postgres_server: str) -> Iterator[str]:
    """The name of a database MLflow 3.18 initialised (once a module; tests take copies)."""
    with fresh_database(postgres_server) as uri:
        mlflow_initialise(uri, ROOT_DIR)
        yield uri.rsplit("/", 1)[1]


@pytest.fixture
def mlflow_db(postgres_server: str, mlflow_template: str) -> Iterator[str]:
    """A database MLflow made (a copy of the template), for this test alone."""
    with fresh_database(postgres_server, template=mlflow_template) as uri:
        yield uri


def _rows(uri: str, sql: str) -> list[tuple]:
    with psycopg.connect(uri, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def _data_without_default_times(uri: str) -> tuple[str, list[tuple]]:
    """The database's data: pg_dump's (every table but experiments, sequence positions
    included), and the experiments without their creation times (the moment each side ran)."""
    dump = pg_dump(uri, "--data-only", "--exclude-table-data=public.experiments")
    experiments = _rows(
        uri,
        "SELECT experiment_id, name, artifact_location, lifecycle_stage, workspace "
        "FROM experiments ORDER BY experiment_id",
    )
    return dump, experiments


@pytest.mark.mlflow
def test_created_schema_dumps_as_mlflows(postgres_db: str, mlflow_db: str) -> None:
    schema.ensure_schema_at(postgres_db, ROOT_DIR)
    assert pg_dump(postgres_db, "--schema-only") == pg_dump(mlflow_db, "--schema-only")
    # ...and holds the same rows: alembic_version, the default workspace, the Default experiment
    assert _data_without_default_times(postgres_db) == _data_without_default_times(mlflow_db)
    assert _rows(postgres_db, "SELECT version_num FROM alembic_version") == [("f4a9b2c7d1e6",)]


@pytest.mark.mlflow
def test_schema_sql_is_generated_from_mlflows_dump(mlflow_db: str) -> None:
    expected = schema_sql_from_dump(pg_dump(mlflow_db, "--schema-only"))
    assert SCHEMA_SQL.read_text(encoding="utf-8") == expected, (
        "schema.sql is not what MLflow's dump gives: regenerate it with python -m tests._postgres"
    )


def test_types_are_mlflows(postgres_db: str) -> None:
    """The issue's examples, readable without a dump: DOUBLE PRECISION values, BOOLEAN is_nan."""
    schema.ensure_schema_at(postgres_db)
    columns = dict(
        _rows(
            postgres_db,
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE table_name IN ('metrics', 'latest_metrics') AND column_name IN ('value', 'is_nan')",
        )
    )
    assert columns == {
        "metrics.value": "double precision",
        "metrics.is_nan": "boolean",
        "latest_metrics.value": "double precision",
        "latest_metrics.is_nan": "boolean",
    }
    assert len(_rows(postgres_db, "SELECT 1 FROM pg_tables WHERE schemaname = 'public'")) == 71


@pytest.mark.mlflow
def test_opening_mlflows_database_changes_nothing(mlflow_db: str) -> None:
    before = pg_dump(mlflow_db)  # schema and data
    schema.ensure_schema_at(mlflow_db, "/elsewhere")
    schema.ensure_schema_at(mlflow_db)
    assert pg_dump(mlflow_db) == before


def test_a_database_without_the_default_experiment_gets_it_as_mlflows_store_adds_it(
    postgres_db: str,
) -> None:
    """``mlflow db upgrade`` makes the schema without Default; MLflow's store adds it when it
    opens the database, and so does asynctrack (once: opening again changes nothing)."""
    schema.ensure_schema_at(postgres_db)  # the schema alone, as alembic leaves it
    assert _rows(postgres_db, "SELECT count(*) FROM experiments") == [(0,)]
    schema.ensure_schema_at(postgres_db, ROOT_DIR)
    assert _rows(postgres_db, "SELECT experiment_id, name, artifact_location, lifecycle_stage FROM experiments") == [
        (0, "Default", f"{ROOT_DIR}/0", "active")
    ]
    before = pg_dump(postgres_db)
    schema.ensure_schema_at(postgres_db, "/elsewhere")
    assert pg_dump(postgres_db) == before
    with psycopg.connect(postgres_db, autocommit=True) as conn:  # next id: 1, as MLflow's
        conn.execute("INSERT INTO experiments (name, lifecycle_stage) VALUES ('x', 'active')")
    assert _rows(postgres_db, "SELECT max(experiment_id) FROM experiments") == [(1,)]


def test_opening_again_changes_nothing(postgres_db: str) -> None:
    schema.ensure_schema_at(postgres_db, ROOT_DIR)
    before = pg_dump(postgres_db)
    schema.ensure_schema_at(postgres_db, "/elsewhere")
    assert pg_dump(postgres_db) == before


@pytest.mark.parametrize("found", ["1b5f0d9ad7c1", "ffffffffffff", None])
def test_other_revision_is_refused_naming_mlflow_db_upgrade(postgres_db: str, found: str | None) -> None:
    schema.ensure_schema_at(postgres_db, ROOT_DIR)
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        if found is None:
            conn.execute("DELETE FROM alembic_version")
        else:
            conn.execute("UPDATE alembic_version SET version_num = %s", (found,))
    before = pg_dump(postgres_db)
    with pytest.raises(MlflowException, match="mlflow db upgrade") as info:
        schema.ensure_schema_at(postgres_db, ROOT_DIR)
    assert f"found version {found}, but expected f4a9b2c7d1e6" in info.value.message
    assert pg_dump(postgres_db) == before  # refused, untouched


def test_database_of_other_tables_is_refused_untouched(postgres_db: str) -> None:
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE inventory (id integer)")
    before = pg_dump(postgres_db)
    with pytest.raises(MlflowException, match="not an MLflow tracking database"):
        schema.ensure_schema_at(postgres_db, ROOT_DIR)
    assert pg_dump(postgres_db) == before


def test_connection_in_a_transaction_is_refused(postgres_db: str) -> None:
    with psycopg.connect(postgres_db) as conn:
        conn.execute("SELECT 1")  # not autocommit: a transaction is now open
        with pytest.raises(ValueError, match="no transaction open"):
            schema.ensure_schema(conn)


RACER = """
import sys
from asynctrack.store._postgres.schema import ensure_schema_at
sys.stdin.readline()  # the start signal: everyone has imported and waits here
ensure_schema_at(sys.argv[1], sys.argv[2])
"""


def test_processes_racing_on_an_empty_database_make_one_schema(postgres_db: str, postgres_server: str) -> None:
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, postgres_db, ROOT_DIR],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(8)
    ]
    try:
        time.sleep(1.0)  # let all of them import
        for proc in racers:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [(proc.wait(timeout=120), proc.stderr.read()) for proc in racers]
    finally:
        for proc in racers:
            if proc.poll() is None:
                proc.kill()
    assert results == [(0, "")] * 8
    assert _rows(postgres_db, "SELECT version_num FROM alembic_version") == [("f4a9b2c7d1e6",)]
    assert _rows(postgres_db, "SELECT name FROM workspaces") == [("default",)]
    assert _rows(postgres_db, "SELECT experiment_id, name FROM experiments") == [(0, "Default")]
    with fresh_database(postgres_server) as alone:
        schema.ensure_schema_at(alone, ROOT_DIR)
        assert pg_dump(postgres_db, "--schema-only") == pg_dump(alone, "--schema-only")


def test_a_creator_without_the_lock_wins_and_we_use_its_schema(postgres_db: str) -> None:
    """MLflow takes no advisory lock: while it creates the schema, our CREATE waits on its
    uncommitted tables and fails once it commits; we then read and accept what it made."""
    import threading

    other = psycopg.connect(postgres_db)  # a transaction, as MLflow's, holding new tables
    try:
        other.execute(schema.schema_sql())
        other.execute("INSERT INTO alembic_version (version_num) VALUES ('f4a9b2c7d1e6')")
        errors: list[BaseException] = []

        def ours() -> None:
            try:
                schema.ensure_schema_at(postgres_db, ROOT_DIR)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        thread = threading.Thread(target=ours)
        thread.start()
        time.sleep(1.0)  # ours saw no tables, took the lock, and now waits on the other's
        assert thread.is_alive()
        other.commit()
        thread.join(60)
        assert not thread.is_alive() and errors == []
    finally:
        other.close()
    # the other's schema, untouched (one alembic row); the Default experiment it lacked is
    # added, as MLflow's store adds it after its alembic chain
    assert _rows(postgres_db, "SELECT version_num FROM alembic_version") == [("f4a9b2c7d1e6",)]
    assert _rows(postgres_db, "SELECT experiment_id, name FROM experiments") == [(0, "Default")]


def test_import_asynctrack_needs_no_postgres_driver() -> None:
    code = (
        "import sys, asynctrack, asynctrack.store._postgres.schema; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'asyncpg')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_script_stop_touches_only_its_own_folders(tmp_path: Path) -> None:
    (tmp_path / "keep").write_text("x")
    proc = subprocess.run(["bash", str(SCRIPT), "stop", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode != 0 and "not touching it" in proc.stderr
    assert (tmp_path / "keep").exists()


def test_script_watcher_stops_the_server_when_its_owner_dies() -> None:
    if bindir() is None:
        pytest.skip("PostgreSQL not found (initdb): the PostgreSQL tests need Debian's postgresql")
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        env = {**__import__("os").environ, "ASYNCTRACK_POSTGRES_WATCH_PID": str(owner.pid)}
        started = subprocess.run(
            ["bash", str(SCRIPT), "start"], capture_output=True, text=True, env=env, timeout=120
        )
        assert started.returncode == 0, started.stderr
        uri, folder = started.stdout.split()
        with psycopg.connect(uri) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        owner.kill()
        owner.wait()
    deadline = time.monotonic() + 15
    while Path(folder).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(folder).exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(uri, connect_timeout=2)
