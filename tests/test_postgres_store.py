"""The PostgreSQL store's own ways in: the URI forms MLflow accepts, libpq's environment, a
server that cannot be reached, a password never shown, a read connection the server dropped.
(What it stores and how it reads are the shared suites' business, run on both stores.)"""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from asynctrack import MlflowClient, MlflowException
from asynctrack.store import store_for_uri
from asynctrack.store._postgres.uri import libpq_uri
from tests._postgres import fresh_database, postgres_db, postgres_server  # noqa: F401


def _log_and_read(uri: str) -> dict:
    c = MlflowClient(uri)
    exp = c.create_experiment("e")
    run = c.create_run(exp)
    c.log_metric(run.info.run_id, "m", 1.5, step=2)
    c.log_param(run.info.run_id, "p", "v")
    got = c.get_run(run.info.run_id).data
    return {"metrics": got.metrics, "params": got.params}


@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg2", "postgresql+psycopg", "postgres"])
def test_mlflows_uri_forms_name_the_same_database(postgres_db: str, scheme: str) -> None:
    uri = scheme + postgres_db[len("postgresql") :]
    assert _log_and_read(uri) == {"metrics": {"m": 1.5}, "params": {"p": "v"}}
    assert libpq_uri(uri) == postgres_db
    # the same database: a plain URI sees what the other form wrote
    assert MlflowClient(postgres_db).get_experiment_by_name("e") is not None


def test_libpq_environment_fills_what_the_uri_leaves_out(postgres_db: str) -> None:
    """A URI with only the database name: host, port and user come from PGHOST, PGPORT and
    PGUSER, for the reads (libpq) and the writes (asyncpg) alike; in a process of its own, as
    the environment is read at connection time."""
    parts = urlsplit(postgres_db)
    code = (
        "import asynctrack as mlflow\n"
        f"mlflow.set_tracking_uri('postgresql:///{parts.path.lstrip('/')}')\n"
        "mlflow.set_experiment('env')\n"
        "with mlflow.start_run() as run:\n"
        "    mlflow.log_metric('m', 2.0, synchronous=False)\n"
        "print(mlflow.get_run(run.info.run_id).data.metrics)\n"
    )
    env = {"PGHOST": parts.hostname, "PGPORT": str(parts.port), "PGUSER": parts.username, "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "{'m': 2.0}"


def test_unreachable_server_is_a_clear_error_without_the_password() -> None:
    uri = "postgresql://someone:s3cret@127.0.0.1:1/nowhere"
    with pytest.raises(MlflowException) as info:
        store_for_uri(uri)
    assert info.value.error_code == "TEMPORARILY_UNAVAILABLE"
    assert "Cannot connect to the PostgreSQL store postgresql://someone:***@127.0.0.1:1/nowhere" in info.value.message
    assert "s3cret" not in str(info.value)


def test_a_read_connection_the_server_dropped_is_replaced(postgres_db: str, postgres_server: str) -> None:
    import psycopg

    c = MlflowClient(postgres_db)
    exp = c.create_experiment("kept")
    store = store_for_uri(postgres_db)
    reader_pid = store._conn().info.backend_pid
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (reader_pid,))
    assert c.get_experiment(exp).name == "kept"  # on a new connection, not an error
    assert store._conn().info.backend_pid != reader_pid


def test_an_experiment_id_out_of_the_columns_range_is_not_found(postgres_db: str) -> None:
    """MLflow answers "No Experiment with id=... exists" for any integer id it has not stored;
    PostgreSQL's integer column would raise "out of range" for 2**40."""
    with pytest.raises(MlflowException) as info:
        MlflowClient(postgres_db).get_experiment(str(2**40))
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert info.value.message == f"No Experiment with id={2**40} exists"


def test_fresh_database_helper_drops_what_it_made(postgres_server: str) -> None:
    import psycopg

    with fresh_database(postgres_server) as uri:
        name = urlsplit(uri).path.lstrip("/")
        MlflowClient(uri).get_experiment("0")
        store_for_uri(uri).close()
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        assert admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None
