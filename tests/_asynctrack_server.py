"""``asynctrack server`` as a real subprocess on a free loopback port, like ``_servers.py``'s
``mlflow server`` (whose ``Server``, ``wait_healthy`` and ``free_port`` it reuses)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

from ._servers import Server, free_port

ROOT = Path(__file__).resolve().parent.parent


def asynctrack_server(
    root: Path, *, workers: int = 1, extra: list[str] | None = None, env: dict[str, str] | None = None
) -> Server:
    """asynctrack's server (not started) over ``root/mlflow.db``, artifacts in ``root/mlartifacts``."""
    pytest.importorskip("uvicorn", reason="asynctrack[server] not installed")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    backend_uri = f"sqlite:///{root / 'mlflow.db'}"
    artifacts = root / "mlartifacts"
    argv = [
        sys.executable, "-m", "asynctrack", "server",
        "--backend-store-uri", backend_uri,
        "--artifacts-destination", str(artifacts),
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers),
        *(extra or []),
    ]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    return Server(argv, f"http://127.0.0.1:{port}", port, root, backend_uri, artifacts, full_env)


@pytest.fixture(scope="session")
def asynctrack_server_session() -> Server:
    """One ``asynctrack server`` (2 workers) for the session; tests use their own experiments."""
    with tempfile.TemporaryDirectory(prefix="asynctrack-server-") as tmp:
        server = asynctrack_server(Path(tmp), workers=2).start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def fresh_asynctrack_server(tmp_path: Path) -> Server:
    """An ``asynctrack server`` of this test's own (1 worker), which the test may stop."""
    server = asynctrack_server(tmp_path / "server").start()
    try:
        yield server
    finally:
        server.stop()
