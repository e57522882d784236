"""The backends the differential tests run over (issue #15).

* ``sqlite``: each client on a ``sqlite:///`` file of its own, as the tests always did;
* ``http``: asynctrack's client and the oracle's MLflow client each talking to a real
  ``mlflow server`` (MLflow 3.18, from the oracle venv) — one server per side, so that
  experiment ids, which a server hands out in order, come out the same when both sides make the
  same calls; the oracle over HTTP is the judge;
* ``asynctrack-server``: both clients talking to ``asynctrack server`` (again one per side);
  judged by the oracle's client against ``mlflow server`` (the ``http`` variant's judge), which
  saw the same calls in the same order.

``ServerSet`` starts the four servers of a module at once (in threads: each start is mostly
waiting for an interpreter to import) and stops them at the end. A module owns its set, so no
module's data shows in another's experiments, ids or searches.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import pytest

from ._servers import Server, mlflow_server

BACKENDS = ["sqlite", "http", "asynctrack-server"]
SERVER_BACKENDS = ["http", "asynctrack-server"]


def _has_asynctrack_server() -> bool:
    try:
        import uvicorn  # noqa: F401
        import starlette  # noqa: F401
    except ImportError:
        return False
    return True


def drain(server: Server) -> None:
    """Read the server's output as it comes (its last 20,000 characters stay in
    ``server.output_tail``). ``Server`` pipes it and reads it only when the server dies: a
    server that logs each request (``mlflow server`` does) blocks once the pipe's buffer is
    full, which a few hundred requests do, and then answers nothing."""
    server.output_tail = ""  # type: ignore[attr-defined]

    def read() -> None:
        for line in server.proc.stdout:
            server.output_tail = (server.output_tail + line)[-20_000:]  # type: ignore[attr-defined]

    threading.Thread(target=read, daemon=True, name=f"drain-{server.port}").start()


def start_all(servers: list[Server]) -> None:
    """Start ``servers`` in parallel (their output drained); if one fails, stop the others and
    raise its error."""
    errors: list[BaseException] = []

    def start(server: Server) -> None:
        try:
            server.start()
            drain(server)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        for s in servers:
            s.stop()
        raise errors[0]


class ServerSet:
    """``ours`` / ``theirs`` servers per server backend: asynctrack's client talks to
    ``ours[b]``, the oracle's to ``theirs[b]``. ``asynctrack-server`` is absent where the
    ``server`` extra is not installed."""

    def __init__(self, root: Path) -> None:
        self.ours: dict[str, Server] = {}
        self.theirs: dict[str, Server] = {}
        self.ours["http"] = mlflow_server(root / "http-ours")  # skips without the oracle
        self.theirs["http"] = mlflow_server(root / "http-theirs")
        if _has_asynctrack_server():
            from ._asynctrack_server import asynctrack_server

            self.ours["asynctrack-server"] = asynctrack_server(root / "at-ours")
            self.theirs["asynctrack-server"] = asynctrack_server(root / "at-theirs")

    def all(self) -> list[Server]:
        return [*self.ours.values(), *self.theirs.values()]

    def has(self, backend: str) -> bool:
        return backend in self.ours

    def require(self, backend: str) -> None:
        if not self.has(backend):
            pytest.skip("asynctrack[server] not installed: no asynctrack server to test against")


def server_set_fixture():
    """A module-scoped fixture: that module's own, started ``ServerSet``."""

    @pytest.fixture(scope="module")
    def servers() -> ServerSet:
        with tempfile.TemporaryDirectory(prefix="diff-servers-") as tmp:
            s = ServerSet(Path(tmp))
            start_all(s.all())
            try:
                yield s
            finally:
                for server in s.all():
                    server.stop()

    return servers


def artifact_root(server: Server, artifact_uri: str) -> Path:
    """Where a server keeps the files of an ``mlflow-artifacts:/...`` URI."""
    prefix = "mlflow-artifacts:"
    assert artifact_uri.startswith(prefix), artifact_uri
    return server.artifacts / artifact_uri[len(prefix):].lstrip("/")
