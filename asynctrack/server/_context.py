"""What a handler sees of its request, and the server's configuration.

Handlers are plain blocking functions ``handler(ctx, req) -> dict`` run in the thread pool; the
app reads the body (bounded) before handing over, so no handler touches the event loop.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

CONFIG_ENV = "_ASYNCTRACK_SERVER_CONFIG"  # the CLI's settings, for uvicorn's worker processes

DEFAULT_MAX_JSON_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_ARTIFACT_BYTES = 5 * 1024**3


@dataclass
class ServerConfig:
    backend_store_uri: str = "sqlite:///mlflow.db"
    read_replica_backend_store_uri: str | None = None
    default_artifact_root: str = "mlflow-artifacts:/"
    serve_artifacts: bool = True
    artifacts_destination: str = "./mlartifacts"
    artifacts_only: bool = False
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES
    max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES
    basic_auth: dict[str, str] = field(default_factory=dict)  # user -> password

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServerConfig:
        raw = os.environ.get(CONFIG_ENV)
        return cls(**json.loads(raw)) if raw else cls()


@dataclass
class Request:
    """A parsed HTTP request: method, query pairs, body bytes, path parameters."""

    method: str
    query: list[tuple[str, str]]
    body: bytes
    content_type: str | None
    path_params: dict[str, Any]
