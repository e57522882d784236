"""``asynctrack server``'s work once click has parsed the flags: check them as MLflow does,
resolve MLflow's defaults, and run uvicorn (N worker processes, each its own writer on the one
store). uvicorn stops on SIGTERM/SIGINT gracefully: it stops accepting, lets in-flight requests
finish, then the app's lifespan shutdown drains the writer."""

from __future__ import annotations

import os
import urllib.parse

from ._context import CONFIG_ENV, ServerConfig

DEFAULT_ARTIFACTS_URI = "mlflow-artifacts:/"
DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH = "./mlruns"


class ServerUsageError(ValueError):
    """A flag combination the server cannot run with (shown as a click usage error)."""


def resolve_default_artifact_root(serve_artifacts: bool, default_artifact_root: str | None) -> str:
    """MLflow's ``resolve_default_artifact_root`` for a database backend."""
    if default_artifact_root:
        return default_artifact_root
    return DEFAULT_ARTIFACTS_URI if serve_artifacts else DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH


def local_destination(uri: str) -> str:
    """``--artifacts-destination`` as an absolute local directory (only local ones are served)."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        return os.path.abspath(urllib.parse.unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:
        raise ServerUsageError(
            f"--artifacts-destination {uri!r}: asynctrack server serves artifacts from a local "
            "directory only (a path or a file:// URI)."
        )
    return os.path.abspath(uri)


from ..exceptions import MlflowException
from ..store.base import redacted


def serve(config: ServerConfig, host: str, port: int, workers: int) -> None:
    """Run the server in the foreground until it is told to stop."""
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise ServerUsageError(
            f"asynctrack server needs Starlette and uvicorn ({exc.name} is missing): "
            "pip install 'asynctrack[server]'"
        ) from None
    scheme = config.backend_store_uri.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise ServerUsageError(
            f"--backend-store-uri {redacted(config.backend_store_uri)!r}: asynctrack server stores "
            "to SQLite (sqlite:///path/to/mlflow.db) or PostgreSQL (postgresql://user@host/db)."
        )
    if config.read_replica_backend_store_uri and scheme == "sqlite":
        raise ServerUsageError(
            "--read-replica-backend-store-uri: a SQLite store has no read replicas (PostgreSQL "
            "stores have: postgresql://user@replica-host/db)."
        )
    if workers < 1:
        raise ServerUsageError("--workers must be at least 1.")
    if config.serve_artifacts or config.artifacts_only:
        os.makedirs(config.artifacts_destination, exist_ok=True)
    os.environ[CONFIG_ENV] = config.to_env()
    if not config.artifacts_only:
        # Create (or migrate-check) the store once, here, before the workers race to it.
        from ._backend import open_client

        try:
            open_client(
                config.backend_store_uri,
                config.default_artifact_root,
                config.read_replica_backend_store_uri,
            )
        except MlflowException as exc:  # unreachable, refused revision, not a replica: say so
            raise ServerUsageError(exc.message) from None
    uvicorn.run(
        "asynctrack.server._app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=30,
    )
