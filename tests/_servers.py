"""Real tracking servers for the HTTP tests: MLflow 3.18's own ``mlflow server``, from the oracle
venv, on loopback. Not a mock: the differential tests run against the real thing.

``start_mlflow_server`` starts one on a free port over a fresh SQLite file and waits until it
answers ``/health``; the ``mlflow_server`` fixture shares one per test session (starting one
costs seconds), ``fresh_mlflow_server`` gives a test its own, which it may kill and restart.
Tests that use them skip with one line where the oracle is not installed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .oracle import _env, oracle_python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen | None = None, timeout: float = 120.0) -> None:
    """Return once ``url``/health answers 200; raise with the server's output if it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise RuntimeError(f"server exited with {proc.returncode}:\n{out[-4000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not answer /health within {timeout} s")


@dataclass
class Server:
    """A server process on loopback, over ``backend_uri``, restartable on the same port."""

    argv: list[str]
    url: str
    port: int
    root: Path
    backend_uri: str
    artifacts: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    def start(self) -> "Server":
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # so that kill() reaches its workers too
        )
        wait_healthy(self.url, self.proc)
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group: what a crash looks like to the clients."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def mlflow_server(root: Path, *, backend_uri: str | None = None, extra: list[str] | None = None) -> Server:
    """MLflow 3.18's server (not started), serving artifacts from ``root/mlartifacts``."""
    py = oracle_python()
    if py is None:
        pytest.skip("MLflow oracle not installed (.venv-oracle): no real mlflow server to test against")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    backend_uri = backend_uri or f"sqlite:///{root / 'mlflow.db'}"
    artifacts = root / "mlartifacts"
    argv = [
        py, "-m", "mlflow", "server",
        "--backend-store-uri", backend_uri,
        "--artifacts-destination", str(artifacts),
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",
        *(extra or []),
    ]
    env = _env()
    # MLflow 3.18's server also starts a job runner (eight huey consumer processes, ~2 GB) for
    # its GenAI jobs; tracking needs none of it, and on a 2-CPU CI machine it costs seconds.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    return Server(argv, f"http://127.0.0.1:{port}", port, root, backend_uri, artifacts, env)


@pytest.fixture(scope="session")
def mlflow_server_session() -> Server:
    """One real ``mlflow server`` for the whole session (tests use their own experiments)."""
    with tempfile.TemporaryDirectory(prefix="mlflow-server-") as tmp:
        server = mlflow_server(Path(tmp)).start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def fresh_mlflow_server(tmp_path: Path) -> Server:
    """A real ``mlflow server`` of this test's own, which the test may kill and restart."""
    server = mlflow_server(tmp_path / "server").start()
    try:
        yield server
    finally:
        server.stop()
